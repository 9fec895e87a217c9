/* The schema: every known option with its type, default and range, and the
 * typed parsers that check values against it.  This table is the one source
 * of truth for defaults: derecho-sample.cfg and docs/conf.md are checked
 * against it by the conf test suite. */
#include "conf-private.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

static const char *const send_algorithms[] = {
    "binomial_send", "chain_send", "sequential_send", "tree_send", NULL};
static const char *const log_levels[] = {"trace", "debug",    "info", "warning",
                                         "error", "critical", "off",  NULL};
static const char *const module_log_levels[] = {"default",  "trace",   "debug",
                                                "info",     "warning", "error",
                                                "critical", "off",     NULL};

/* Shorthands keeping the table one line per fact. */
#define STR(sec, k, def, desc)                                                 \
    {                                                                          \
        .section = sec, .key = k, .type = CONF_TYPE_STRING,                    \
        .default_value = def, .description = desc                              \
    }
#define UINT(sec, k, def, lo, hi, desc)                                        \
    {                                                                          \
        .section = sec, .key = k, .type = CONF_TYPE_UINT,                      \
        .default_value = def, .min_u = lo, .max_u = hi, .description = desc    \
    }
#define PORT(sec, k, def, desc) UINT(sec, k, def, 1, 65535, desc)
#define BOOL(sec, k, def, desc)                                                \
    {                                                                          \
        .section = sec, .key = k, .type = CONF_TYPE_BOOL,                      \
        .default_value = def, .description = desc                              \
    }
#define SIZE(sec, k, def, lo, hi, fl, desc)                                    \
    {                                                                          \
        .section = sec, .key = k, .type = CONF_TYPE_SIZE,                      \
        .default_value = def, .min_u = lo, .max_u = hi, .flags = fl,           \
        .description = desc                                                    \
    }
#define ENUM(sec, k, def, vals, fl, desc)                                      \
    {                                                                          \
        .section = sec, .key = k, .type = CONF_TYPE_ENUM,                      \
        .default_value = def, .enum_values = vals, .flags = fl,                \
        .description = desc                                                    \
    }
/* A key of [SUBGROUP/NAME] profiles only, with no default. */
#define PROFILE_UINT(k, lo, hi, desc)                                          \
    {                                                                          \
        .section = "SUBGROUP/DEFAULT", .key = k, .type = CONF_TYPE_UINT,       \
        .min_u = lo, .max_u = hi, .flags = CONF_OPT_PROFILE_ONLY,              \
        .description = desc                                                    \
    }
#define MODULE_LEVEL(mod)                                                      \
    ENUM("LOGGER", mod "_log_level", "default", module_log_levels, 0,          \
         "log level of lib" mod " (default: default_log_level)")

static const struct conf_option schema[] = {
    /* ---- DERECHO: membership and addresses ---- */
    STR("DERECHO", "contact_ip", "127.0.0.1",
        "IP address of the member a new process contacts to join"),
    PORT("DERECHO", "contact_port", "23580", "GMS port of the contact member"),
    {.section = "DERECHO",
     .key = "restart_leaders",
     .type = CONF_TYPE_LIST,
     .default_value = "127.0.0.1",
     .list_item_type = CONF_TYPE_STRING,
     .description = "IP addresses of the restart leaders, in order"},
    {.section = "DERECHO",
     .key = "restart_leader_ports",
     .type = CONF_TYPE_LIST,
     .default_value = "23580",
     .list_item_type = CONF_TYPE_UINT,
     .min_u = 1,
     .max_u = 65535,
     .description = "GMS ports of the restart leaders, same order"},
    UINT("DERECHO", "local_id", "0", 0, UINT32_MAX - 1,
         "this node's id, unique in the group"),
    STR("DERECHO", "local_ip", "127.0.0.1", "this node's IP address"),
    PORT("DERECHO", "gms_port", "23580",
         "TCP port of group membership (joins, views)"),
    PORT("DERECHO", "state_transfer_port", "28366",
         "TCP port of state transfer to joining members"),
    PORT("DERECHO", "sst_port", "27683",
         "port of the process's one connection pool: SST and RDMC "
         "(below the ephemeral range)"),
    PORT("DERECHO", "rdmc_port", "31675",
         "accepted and carried in views for compatibility; nothing "
         "listens on it (RDMC shares sst_port)"),
    PORT("DERECHO", "external_port", "32645",
         "port for P2P calls from non-member clients"),
    UINT("DERECHO", "max_node_id", "1024", 1, UINT32_MAX,
         "node ids must be below this value"),
    STR("DERECHO", "auth_key_file", "",
        "file holding the group key that authenticates every connection "
        "set-up (empty: none)"),
    /* ---- DERECHO: timing ---- */
    UINT("DERECHO", "heartbeat_ms", "20", 1, 3600000,
         "interval between SST heartbeats (sst_options.heartbeat_ms)"),
    UINT("DERECHO", "sst_poll_cq_timeout_ms", "100", 1, 3600000,
         "a member silent this long is suspected "
         "(sst_options.suspect_timeout_ms; >= 3 heartbeats)"),
    UINT("DERECHO", "join_timeout_ms", "30000", 0, 86400000,
         "how long a joiner retries its contact and waits to be admitted "
         "(derecho_group_options.join_timeout_ms)"),
    UINT("DERECHO", "restart_timeout_ms", "2000", 1, 86400000,
         "how long a restart leader waits for a quorum of logs"),
    BOOL("DERECHO", "enable_backup_restart_leaders", "false",
         "let the next restart leader take over when one fails"),
    BOOL("DERECHO", "disable_partitioning_safety", "false",
         "allow a minority partition to go on (risks split brain)"),
    /* ---- DERECHO: P2P ---- */
    SIZE("DERECHO", "max_p2p_request_payload_size", "10240", 1, 1 * GIB, 0,
         "largest P2P request payload in bytes"),
    SIZE("DERECHO", "max_p2p_reply_payload_size", "10240", 1, 1 * GIB, 0,
         "largest P2P reply payload in bytes"),
    UINT("DERECHO", "p2p_window_size", "16", 1, 65536,
         "P2P messages in flight per peer"),
    UINT("DERECHO", "p2p_loop_busy_wait_before_sleep_ms", "1", 0, 60000,
         "how long the P2P thread spins before it sleeps"),
    /* ---- DERECHO: legacy per-group settings; those flagged PROFILE are the
     * defaults of the [SUBGROUP/NAME] profiles ---- */
    SIZE("DERECHO", "max_payload_size", "10240", 1, 64 * GIB, CONF_OPT_PROFILE,
         "largest message payload in bytes"),
    SIZE("DERECHO", "max_reply_payload_size", "10240", 1, 64 * GIB,
         CONF_OPT_PROFILE, "largest reply payload of an ordered query"),
    SIZE("DERECHO", "max_smc_payload_size", "10240", 1, 1 * MIB,
         CONF_OPT_PROFILE, "messages up to this size go through SMC"),
    SIZE("DERECHO", "block_size", "1M", 1, 4 * GIB, CONF_OPT_PROFILE,
         "RDMC block size for larger messages"),
    {.section = "DERECHO",
     .key = "window_size",
     .type = CONF_TYPE_UINT,
     .default_value = "16",
     .min_u = 1,
     .max_u = 65536,
     .flags = CONF_OPT_PROFILE,
     .description = "SMC messages in flight per sender"},
    {.section = "DERECHO",
     .key = "timeout_ms",
     .type = CONF_TYPE_UINT,
     .default_value = "1",
     .min_u = 0,
     .max_u = 3600000,
     .description = "libderecho's sender batching wait (not an RDMC "
                    "timeout; see rdmc_timeout_ms)"},
    UINT("DERECHO", "rdmc_timeout_ms", "10000", 1, 86400000,
         "an RDMC message making no progress this long fails its group "
         "(rdmc_options.timeout_ms; twice that in the sender's own group) "
         "and suspects the member it waited for (docs/derecho.md)"),
    ENUM("DERECHO", "rdmc_send_algorithm", "binomial_send", send_algorithms,
         CONF_OPT_PROFILE, "RDMC block schedule"),
    /* ---- SUBGROUP/NAME only: the shape of a subgroup made from a profile
     * (derecho_layout_spec_add_profile_subgroup, the original's
     * flexible_even_shards); no default, each must be set where used.
     * 4096 is libderecho's DERECHO_MAX_SHARDS (its tests check they agree).
     */
    PROFILE_UINT("num_shards", 1, 4096,
                 "shards of a subgroup made from this profile (required "
                 "there)"),
    PROFILE_UINT("min_nodes", 1, UINT32_MAX,
                 "fewest members of each such shard (required there)"),
    PROFILE_UINT("max_nodes", 1, UINT32_MAX,
                 "most members of each such shard, at least min_nodes "
                 "(required there)"),
    /* ---- DERECHO: old names ---- */
    {.section = "DERECHO",
     .key = "leader_ip",
     .type = CONF_TYPE_STRING,
     .flags = CONF_OPT_DEPRECATED,
     .alias_of = "contact_ip",
     .description = "deprecated name of contact_ip"},
    {.section = "DERECHO",
     .key = "leader_gms_port",
     .type = CONF_TYPE_UINT,
     .min_u = 1,
     .max_u = 65535,
     .flags = CONF_OPT_DEPRECATED,
     .alias_of = "contact_port",
     .description = "deprecated name of contact_port"},
    {.section = "DERECHO",
     .key = "rpc_port",
     .type = CONF_TYPE_UINT,
     .flags = CONF_OPT_OBSOLETE,
     .description = "obsolete (RPC uses the SST/RDMC connections), ignored"},
    /* ---- RDMA ---- */
    STR("RDMA", "provider", "tcp",
        "libfabric provider: tcp, sockets, verbs, ..."),
    STR("RDMA", "domain", "lo", "libfabric domain: lo, eth0, mlx5_0, ..."),
    UINT("RDMA", "tx_depth", "256", 1, 1048576,
         "send requests in flight per connection"),
    UINT("RDMA", "rx_depth", "256", 1, 1048576,
         "receive requests in flight per connection"),
    UINT("RDMA", "cq_data_limit", "0", 0, 8,
         "bytes of remote completion data used: 0 what the provider carries "
         "(8 on tcp, 4 on verbs), 4 or 8 (fab_options.cq_data_limit; the "
         "same in every member)"),
    /* ---- PERS ---- */
    STR("PERS", "file_path", ".plog", "folder of the persistent logs"),
    STR("PERS", "ramdisk_path", "/dev/shm/volatile_t",
        "folder of the volatile (memory-backed) logs"),
    BOOL("PERS", "reset", "false",
         "discard existing logs when a log is opened (loses data)"),
    UINT("PERS", "max_log_entry", "1048576", 1, UINT64_C(1) << 32,
         "most entries a log keeps (libpersistent's limit: 2^32)"),
    SIZE("PERS", "max_data_size", "512G", 4 * KIB, UINT64_C(1) << 46, 0,
         "most bytes of data a log keeps (libpersistent: 4K .. 2^46)"),
    /* ---- LOGGER ---- */
    ENUM("LOGGER", "default_log_level", "info", log_levels, 0,
         "log level of every module without its own"),
    MODULE_LEVEL("mutils"),
    MODULE_LEVEL("conf"),
    MODULE_LEVEL("fab"),
    MODULE_LEVEL("sst"),
    MODULE_LEVEL("rdmc"),
    MODULE_LEVEL("persistent"),
    MODULE_LEVEL("derecho"),
    /* ---- LAYOUT: kept as strings for libderecho ---- */
    STR("LAYOUT", "json_layout", "",
        "subgroup layout as inline JSON (empty: none)"),
    STR("LAYOUT", "json_layout_file", "",
        "file holding the JSON subgroup layout (empty: none)"),
};

static const char *const fixed_sections[] = {"DERECHO", "RDMA",   "PERS",
                                             "LOGGER",  "LAYOUT", NULL};

size_t conf_schema_count(void)
{
    return sizeof(schema) / sizeof(schema[0]);
}

const struct conf_option *conf_schema_get(size_t i)
{
    return i < conf_schema_count() ? &schema[i] : NULL;
}

bool conf__is_profile(const char *section)
{
    return strncmp(section, "SUBGROUP/", 9) == 0 && section[9] != '\0' &&
           strchr(section + 9, '/') == NULL;
}

bool conf__section_known(const char *section)
{
    for (int i = 0; fixed_sections[i]; i++)
        if (strcmp(section, fixed_sections[i]) == 0)
            return true;
    return conf__is_profile(section);
}

const struct conf_option *conf_schema_find(const char *section, const char *key)
{
    if (!section || !key)
        return NULL;
    bool profile = conf__is_profile(section);
    for (size_t i = 0; i < conf_schema_count(); i++) {
        const struct conf_option *o = &schema[i];
        if (strcmp(o->key, key) != 0)
            continue;
        if (profile
                ? (o->flags & (CONF_OPT_PROFILE | CONF_OPT_PROFILE_ONLY)) != 0
                : strcmp(o->section, section) == 0)
            return o;
    }
    return NULL;
}

const char *conf_type_name(enum conf_type type)
{
    switch (type) {
    case CONF_TYPE_STRING:
        return "string";
    case CONF_TYPE_INT:
        return "integer";
    case CONF_TYPE_UINT:
        return "unsigned integer";
    case CONF_TYPE_DOUBLE:
        return "number";
    case CONF_TYPE_BOOL:
        return "boolean";
    case CONF_TYPE_SIZE:
        return "byte size";
    case CONF_TYPE_ENUM:
        return "enumeration";
    case CONF_TYPE_LIST:
        return "list";
    }
    return "unknown";
}

/* ---- parsers ------------------------------------------------------------ */

/* strto* accept leading spaces and a sign on unsigned values: we do not. */
int conf__parse_i64(const char *text, int64_t *out)
{
    const char *p = text[0] == '-' || text[0] == '+' ? text + 1 : text;
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    return 0;
}

/* Parses leading decimal digits; *end points after them. */
static int parse_digits(const char *text, uint64_t *out, const char **end)
{
    if (!isdigit((unsigned char)*text))
        return -EINVAL;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(text, &e, 10);
    if (errno == ERANGE)
        return -ERANGE;
    *out = v;
    *end = e;
    return 0;
}

int conf__parse_u64(const char *text, uint64_t *out)
{
    const char *end;
    uint64_t v;
    int rc = parse_digits(text, &v, &end);
    if (rc == 0 && *end != '\0')
        rc = -EINVAL;
    if (rc == 0)
        *out = v;
    return rc;
}

int conf__parse_size(const char *text, uint64_t *out)
{
    const char *end;
    uint64_t v;
    int rc = parse_digits(text, &v, &end);
    if (rc != 0)
        return rc;
    uint64_t unit = 1;
    switch (*end) {
    case '\0':
        break;
    case 'K':
    case 'k':
        unit = KIB;
        break;
    case 'M':
    case 'm':
        unit = MIB;
        break;
    case 'G':
    case 'g':
        unit = GIB;
        break;
    default:
        return -EINVAL;
    }
    if (unit != 1 && end[1] != '\0')
        return -EINVAL;
    if (v > UINT64_MAX / unit)
        return -ERANGE;
    *out = v * unit;
    return 0;
}

int conf__parse_double(const char *text, double *out)
{
    if (text[0] == '\0' || isspace((unsigned char)text[0]))
        return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end != '\0')
        return -EINVAL;
    if (!isfinite(v))
        return -EINVAL; /* "inf", "nan": not a usable setting */
    if (errno == ERANGE && fabs(v) > 1.0)
        return -ERANGE;
    *out = v;
    return 0;
}

int conf__parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int conf__parse_enum(const struct conf_option *opt, const char *text)
{
    if (!opt || opt->type != CONF_TYPE_ENUM)
        return -EINVAL;
    for (int i = 0; opt->enum_values[i]; i++)
        if (strcmp(text, opt->enum_values[i]) == 0)
            return i;
    return -EINVAL;
}

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

int conf__split_list(const char *text, char ***items, size_t *count)
{
    size_t len = strlen(text);
    size_t n = 0;
    bool blank = true;
    for (size_t i = 0; i < len; i++)
        if (!is_blank(text[i]))
            blank = false;
    if (!blank) {
        n = 1;
        for (size_t i = 0; i < len; i++)
            n += text[i] == ',';
    }
    /* One block: the pointer array, then the items' text. */
    size_t ptrs = (n + 1) * sizeof(char *);
    char **v = malloc(ptrs + len + 1);
    if (!v)
        return -ENOMEM;
    char *store = (char *)v + ptrs;
    memcpy(store, text, len + 1);
    char *p = store;
    for (size_t i = 0; i < n; i++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        while (is_blank(*p))
            p++;
        char *e = p + strlen(p);
        while (e > p && is_blank(e[-1]))
            *--e = '\0';
        if (*p == '\0') {
            free(v);
            return -EINVAL;
        }
        v[i] = p;
        p = comma ? comma + 1 : e;
    }
    v[n] = NULL;
    *items = v;
    *count = n;
    return 0;
}

static int check_u64(const struct conf_option *opt, const char *text, bool size,
                     char *msg, size_t msglen)
{
    uint64_t v;
    int rc = size ? conf__parse_size(text, &v) : conf__parse_u64(text, &v);
    if (rc == -EINVAL) {
        snprintf(msg, msglen, "expected %s, got \"%s\"",
                 size ? "a byte size (e.g. 4096, 64K, 1M, 2G)"
                      : "an unsigned decimal integer",
                 text);
        return rc;
    }
    if (rc == 0 && (v < opt->min_u || v > opt->max_u))
        rc = -ERANGE;
    if (rc == -ERANGE)
        snprintf(msg, msglen, "%s is out of range [%llu, %llu]", text,
                 (unsigned long long)opt->min_u,
                 (unsigned long long)opt->max_u);
    return rc;
}

int conf__validate(const struct conf_option *opt, const char *text, char *msg,
                   size_t msglen)
{
    int rc = 0;
    switch (opt->type) {
    case CONF_TYPE_STRING:
        return 0;
    case CONF_TYPE_INT: {
        int64_t v;
        rc = conf__parse_i64(text, &v);
        if (rc == -EINVAL) {
            snprintf(msg, msglen, "expected a decimal integer, got \"%s\"",
                     text);
            return rc;
        }
        if (rc == 0 && (v < opt->min_i || v > opt->max_i))
            rc = -ERANGE;
        if (rc == -ERANGE)
            snprintf(msg, msglen, "%s is out of range [%lld, %lld]", text,
                     (long long)opt->min_i, (long long)opt->max_i);
        return rc;
    }
    case CONF_TYPE_UINT:
        return check_u64(opt, text, false, msg, msglen);
    case CONF_TYPE_SIZE:
        return check_u64(opt, text, true, msg, msglen);
    case CONF_TYPE_DOUBLE: {
        double v;
        rc = conf__parse_double(text, &v);
        if (rc != 0)
            snprintf(msg, msglen, "expected a finite number, got \"%s\"", text);
        return rc;
    }
    case CONF_TYPE_BOOL: {
        bool v;
        rc = conf__parse_bool(text, &v);
        if (rc != 0)
            snprintf(msg, msglen,
                     "expected true/false/yes/no/on/off/1/0, got \"%s\"", text);
        return rc;
    }
    case CONF_TYPE_ENUM: {
        if (conf__parse_enum(opt, text) >= 0)
            return 0;
        int n = snprintf(msg, msglen, "expected one of");
        for (int i = 0; opt->enum_values[i] && n >= 0 && (size_t)n < msglen;
             i++)
            n += snprintf(msg + n, msglen - (size_t)n, "%s%s", i ? ", " : " ",
                          opt->enum_values[i]);
        if (n >= 0 && (size_t)n < msglen)
            snprintf(msg + n, msglen - (size_t)n, "; got \"%s\"", text);
        return -EINVAL;
    }
    case CONF_TYPE_LIST: {
        char **items;
        size_t count;
        rc = conf__split_list(text, &items, &count);
        if (rc == -EINVAL)
            snprintf(msg, msglen, "empty item in list \"%s\"", text);
        if (rc != 0)
            return rc;
        if (opt->list_item_type == CONF_TYPE_UINT)
            for (size_t i = 0; i < count && rc == 0; i++)
                rc = check_u64(opt, items[i], false, msg, msglen);
        free(items);
        return rc;
    }
    }
    return 0;
}
