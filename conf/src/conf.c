/* The configuration object: layers of values, loading, command-line
 * overrides, typed getters and the dump. */
#include "conf-private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>
#include <xxhash.h>

#define MAX_FILE_SIZE (16u * 1024u * 1024u)

/* ---- errors and logging -------------------------------------------------- */

/* Every code the library returns, with its text: the one table. */
#define CONF__ERRORS(X)                                                        \
    X(0, "success")                                                            \
    X(ENOENT, "no such file or option")                                        \
    X(EACCES, "permission denied")                                             \
    X(EISDIR, "is a directory")                                                \
    X(EFBIG, "configuration file too large")                                   \
    X(EBADMSG, "syntax error in configuration")                                \
    X(EINVAL, "invalid configuration value or argument")                       \
    X(ERANGE, "value out of range")                                            \
    X(EEXIST, "duplicate key")                                                 \
    X(ENOMEM, "out of memory")                                                 \
    X(EIO, "input/output error")

const char *conf_strerror(int err)
{
    /* Either sign; INT_MIN has no positive int (and is no errno). */
    unsigned code = err < 0 ? 0u - (unsigned)err : (unsigned)err;
    switch (code) {
#define CONF__ERROR_CASE(e, text)                                              \
    case e:                                                                    \
        return text;
        CONF__ERRORS(CONF__ERROR_CASE)
#undef CONF__ERROR_CASE
    default: {
        /* Any other errno of open/read (-ENAMETOOLONG, -ELOOP, ...): the
         * system's own static text (strerror()'s may not be). */
        const char *text = code <= INT_MAX ? strerrordesc_np((int)code) : NULL;
        return text ? text : "unknown error";
    }
    }
}

/* The system's text of errno e, thread-safe (never NULL). */
static const char *errno_text(int e)
{
    const char *text = strerrordesc_np(e);
    return text ? text : "unknown error";
}

static void copy_str(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src ? src : "");
}

void conf__set_error(struct conf_error *err, const char *file, int line,
                     const char *section, const char *key, const char *arg,
                     const char *fmt, ...)
{
    if (!err)
        return;
    /* Built aside: the strings may be err's own fields (a caller loading
     * the file its last error named, conf_load_file(c, err.file, &err)). */
    struct conf_error e;
    memset(&e, 0, sizeof(e));
    e.code = CONF__ERROR_FILLED;
    copy_str(e.file, sizeof(e.file), file);
    e.line = line;
    copy_str(e.section, sizeof(e.section), section);
    copy_str(e.key, sizeof(e.key), key);
    copy_str(e.arg, sizeof(e.arg), arg);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    *err = e;
}

/* Length of a field of struct conf_error, which the caller may have filled
 * itself: never read past the field, terminated or not. */
#define FIELD_LEN(f) ((int)strnlen((f), sizeof(f)))

int conf_error_format(const struct conf_error *e, char *buf, size_t len)
{
    if (!e || (!buf && len))
        return -EINVAL;
    /* Formatted aside first: buf may be one of e's own fields (formatting
     * an error into its msg), which snprintf must not read while writing.
     * The longest line is a full where and a full msg. */
    char line[1200 + 2 + sizeof(e->msg)];
    int n;
    if (e->arg[0]) {
        n = snprintf(line, sizeof(line), "command line: %.*s: %.*s",
                     FIELD_LEN(e->arg), e->arg, FIELD_LEN(e->msg), e->msg);
    } else {
        char where[1200] = "";
        int w = 0;
        if (e->file[0])
            w += snprintf(where + w, sizeof(where) - (size_t)w, "%.*s",
                          FIELD_LEN(e->file), e->file);
        if (e->file[0] && e->line > 0)
            w += snprintf(where + w, sizeof(where) - (size_t)w, ":%d", e->line);
        if (e->section[0] || e->key[0])
            snprintf(where + w, sizeof(where) - (size_t)w, "%s%.*s%s%.*s",
                     w ? ": " : "", FIELD_LEN(e->section), e->section,
                     e->section[0] && e->key[0] ? "/" : "", FIELD_LEN(e->key),
                     e->key);
        n = snprintf(line, sizeof(line), "%s%s%.*s", where,
                     where[0] ? ": " : "", FIELD_LEN(e->msg), e->msg);
    }
    if (len) {
        size_t copy = (size_t)n < len ? (size_t)n : len - 1;
        memmove(buf, line, copy);
        buf[copy] = '\0';
    }
    return n;
}

static void log_stderr(void *ctx, int level, const char *module,
                       const char *msg)
{
    (void)ctx;
    (void)module; /* always "conf" */
    fprintf(stderr, "conf: %s: %s\n",
            level <= LOG_ERR       ? "error"
            : level <= LOG_WARNING ? "warning"
            : level <= LOG_INFO    ? "info"
                                   : "debug",
            msg);
}

void conf__log(const struct conf *c, int level, const char *fmt, ...)
{
    if (level > c->opts.log_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    conf_log_fn log = c->opts.log ? c->opts.log : log_stderr;
    log(c->opts.log_ctx, level, "conf", msg);
}

/* ---- entries ------------------------------------------------------------- */

static void entry_free(struct conf__entry *e)
{
    free(e->section);
    free(e->key);
    free(e->value);
    free(e->file);
    free(e->alias);
    free(e->arg);
}

void conf__entries_free(struct conf__entries *es)
{
    for (size_t i = 0; i < es->n; i++)
        entry_free(&es->v[i]);
    free(es->v);
    free(es->slots);
    es->v = NULL;
    es->slots = NULL;
    es->n = es->cap = es->nslots = 0;
}

static size_t entry_slot(const struct conf__entries *es, const char *section,
                         const char *key)
{
    uint64_t h = XXH3_64bits_withSeed(key, strlen(key),
                                      XXH3_64bits(section, strlen(section)));
    return (size_t)h & (es->nslots - 1);
}

/* The staged entry for (section, key), or NULL. */
static struct conf__entry *entries_find(const struct conf__entries *es,
                                        const char *section, const char *key)
{
    if (es->nslots == 0)
        return NULL;
    for (size_t i = entry_slot(es, section, key);;
         i = (i + 1) & (es->nslots - 1)) {
        size_t idx = es->slots[i];
        if (idx == 0)
            return NULL;
        struct conf__entry *e = &es->v[idx - 1];
        if (strcmp(e->section, section) == 0 && strcmp(e->key, key) == 0)
            return e;
    }
}

static void index_insert(struct conf__entries *es, size_t idx)
{
    const struct conf__entry *e = &es->v[idx];
    size_t i = entry_slot(es, e->section, e->key);
    while (es->slots[i] != 0)
        i = (i + 1) & (es->nslots - 1);
    es->slots[i] = idx + 1;
}

/* Keeps the index at most half full, so probes stay short. */
static int index_reserve(struct conf__entries *es, size_t n)
{
    if (2 * n <= es->nslots)
        return 0;
    size_t nslots = es->nslots ? es->nslots : 64;
    while (2 * n > nslots)
        nslots *= 2;
    size_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return -ENOMEM;
    free(es->slots);
    es->slots = slots;
    es->nslots = nslots;
    for (size_t i = 0; i < es->n; i++)
        index_insert(es, i);
    return 0;
}

static char *dup_or_null(const char *s, bool *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = true;
    return d;
}

static int entries_push(struct conf__entries *es, const struct conf__entry *src,
                        const char *key, const char *alias)
{
    if (index_reserve(es, es->n + 1) != 0)
        return -ENOMEM;
    if (es->n == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 16;
        struct conf__entry *v = realloc(es->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        es->v = v;
        es->cap = cap;
    }
    bool oom = false;
    struct conf__entry e = {
        .section = dup_or_null(src->section, &oom),
        .key = dup_or_null(key, &oom),
        .value = dup_or_null(src->value, &oom),
        .source = src->source,
        .file = dup_or_null(src->file, &oom),
        .line = src->line,
        .alias = dup_or_null(alias, &oom),
        .arg = dup_or_null(src->arg, &oom),
    };
    if (oom) {
        entry_free(&e);
        return -ENOMEM;
    }
    es->v[es->n] = e;
    index_insert(es, es->n);
    es->n++;
    return 0;
}

/* "FILE:LINE: SECTION/key" or "command line: ARG", as in conf_error. */
static void describe(const struct conf__entry *e, const char *key, char *buf,
                     size_t len)
{
    if (e->source == CONF_SOURCE_COMMAND_LINE)
        snprintf(buf, len, "command line: %s", e->arg ? e->arg : "");
    else
        snprintf(buf, len, "%s:%d: %s/%s", e->file, e->line, e->section, key);
}

static void set_entry_error(struct conf_error *err, const struct conf__entry *e,
                            const char *key, const char *msg)
{
    bool cmd = e->source == CONF_SOURCE_COMMAND_LINE;
    conf__set_error(err, cmd ? NULL : e->file, cmd ? 0 : e->line, e->section,
                    key, cmd ? e->arg : NULL, "%s", msg);
}

/* A warning, or in strict mode an error. */
static int warn_or_fail(struct conf *c, const struct conf__entry *e,
                        const char *msg, struct conf_error *err)
{
    if (c->opts.strict) {
        set_entry_error(err, e, e->key, msg);
        return -EINVAL;
    }
    char where[1200];
    describe(e, e->key, where, sizeof(where));
    conf__log(c, LOG_WARNING, "%s: %s", where, msg);
    return 0;
}

/* Whether two texts are the same setting of opt (so "023580" = "23580"). */
static bool same_value(const struct conf_option *opt, const char *a,
                       const char *b)
{
    uint64_t x, y;
    if (opt && opt->type == CONF_TYPE_UINT && conf__parse_u64(a, &x) == 0 &&
        conf__parse_u64(b, &y) == 0)
        return x == y;
    return strcmp(a, b) == 0;
}

int conf__stage(struct conf *c, struct conf__entries *staged,
                const struct conf__entry *where, struct conf_error *err)
{
    char msg[512];
    const char *key = where->key;
    const char *alias = NULL;
    if (!conf__section_known(where->section)) {
        set_entry_error(err, where, key,
                        "unknown section (expected DERECHO, RDMA, PERS, "
                        "LOGGER, LAYOUT or SUBGROUP/NAME)");
        return -EINVAL;
    }
    const struct conf_option *opt = conf_schema_find(where->section, key);
    int rc = 0;
    if (!opt) {
        rc = warn_or_fail(c, where, "unknown key (kept, but nothing uses it)",
                          err);
    } else if (opt->flags & CONF_OPT_OBSOLETE) {
        return warn_or_fail(c, where, "obsolete, ignored", err);
    } else if (opt->flags & CONF_OPT_DEPRECATED) {
        snprintf(msg, sizeof(msg), "deprecated, use %s", opt->alias_of);
        rc = warn_or_fail(c, where, msg, err);
        alias = key;
        key = opt->alias_of;
    }
    if (rc != 0)
        return rc;
    if (opt) {
        rc = conf__validate(opt, where->value, msg, sizeof(msg));
        if (rc != 0) {
            set_entry_error(err, where, where->key, msg);
            return rc;
        }
    }

    struct conf__entry *old = entries_find(staged, where->section, key);
    if (old) {
        const char *old_name = old->alias ? old->alias : old->key;
        const char *new_name = alias ? alias : key;
        bool cmd = where->source == CONF_SOURCE_COMMAND_LINE;
        if (strcmp(old_name, new_name) != 0) {
            /* contact_ip and its old name leader_ip both given. */
            if (same_value(opt, old->value, where->value))
                return 0;
            if (cmd)
                snprintf(msg, sizeof(msg), "conflicts with %s",
                         old->arg ? old->arg : old_name);
            else
                snprintf(msg, sizeof(msg),
                         "conflicts with %s = %s at line %d (%s is the old "
                         "name of %s)",
                         old_name, old->value, old->line,
                         alias ? alias : old_name, key);
            set_entry_error(err, where, new_name, msg);
            if (err && !cmd)
                err->other_line = old->line;
            return -EINVAL;
        }
        if (cmd) {
            /* The same override twice: the later one wins, as usual on a
             * command line. */
            char *value = strdup(where->value);
            char *arg = strdup(where->arg ? where->arg : "");
            if (!value || !arg) {
                free(value);
                free(arg);
                return -ENOMEM;
            }
            free(old->value);
            free(old->arg);
            old->value = value;
            old->arg = arg;
            return 0;
        }
        snprintf(msg, sizeof(msg), "duplicate key (first set at line %d)",
                 old->line);
        set_entry_error(err, where, new_name, msg);
        if (err)
            err->other_line = old->line;
        return -EEXIST;
    }
    return entries_push(staged, where, key, alias);
}

/* The rules a value's range cannot say, on the effective values of c (the
 * staged load included): RDMA/cq_data_limit is 0, 4 or 8; a suspicion
 * timeout shorter than CONF_MIN_SUSPECT_HEARTBEATS heartbeats suspects
 * members that are merely slow.  The error points at the key this load
 * set. */
static int check_rules(const struct conf *c, const struct conf__entries *staged,
                       struct conf_error *err)
{
    uint64_t cq = 0;
    if (conf_get_u64(c, "RDMA", "cq_data_limit", &cq) == 0 && cq != 0 &&
        cq != 4 && cq != 8) {
        const struct conf__entry *at =
            entries_find(staged, "RDMA", "cq_data_limit");
        conf__set_error(err, at ? at->file : NULL, at ? at->line : 0, "RDMA",
                        "cq_data_limit", at ? at->arg : NULL,
                        "%llu: expected 0 (the provider's size), 4 or 8",
                        (unsigned long long)cq);
        return -EINVAL;
    }
    uint64_t hb, suspect;
    if (conf_get_u64(c, "DERECHO", "heartbeat_ms", &hb) != 0 ||
        conf_get_u64(c, "DERECHO", "sst_poll_cq_timeout_ms", &suspect) != 0)
        return 0; /* each was checked alone against its range */
    if (suspect >= CONF_MIN_SUSPECT_HEARTBEATS * hb)
        return 0;
    const struct conf__entry *at =
        entries_find(staged, "DERECHO", "sst_poll_cq_timeout_ms");
    if (!at)
        at = entries_find(staged, "DERECHO", "heartbeat_ms");
    conf__set_error(err, at ? at->file : NULL, at ? at->line : 0, "DERECHO",
                    at ? at->key : "sst_poll_cq_timeout_ms",
                    at ? at->arg : NULL,
                    "sst_poll_cq_timeout_ms (%llu) must be at least %d "
                    "heartbeats (%d x heartbeat_ms = %llu): a shorter "
                    "suspicion timeout suspects members that are only slow",
                    (unsigned long long)suspect, CONF_MIN_SUSPECT_HEARTBEATS,
                    CONF_MIN_SUSPECT_HEARTBEATS,
                    (unsigned long long)(CONF_MIN_SUSPECT_HEARTBEATS * hb));
    return -EINVAL;
}

/* Moves every staged entry into c as the newest load, when the result
 * passes the cross-option rules; else changes nothing (staged keeps its
 * entries). */
static int commit(struct conf *c, struct conf__entries *staged,
                  struct conf_error *err)
{
    size_t need = c->entries.n + staged->n;
    if (need > c->entries.cap) {
        struct conf__entry *v = realloc(c->entries.v, need * sizeof(*v));
        if (!v)
            return -ENOMEM;
        c->entries.v = v;
        c->entries.cap = need;
    }
    size_t old_n = c->entries.n;
    uint64_t seq = ++c->next_seq;
    for (size_t i = 0; i < staged->n; i++) {
        staged->v[i].seq = seq;
        c->entries.v[c->entries.n++] = staged->v[i];
    }
    int rc = check_rules(c, staged, err);
    if (rc != 0) {
        c->entries.n = old_n; /* the entries still belong to staged */
        c->next_seq--;
        return rc;
    }
    free(staged->v);
    free(staged->slots);
    staged->v = NULL;
    staged->slots = NULL;
    staged->n = staged->cap = staged->nslots = 0;
    return 0;
}

/* ---- lifecycle and loading ------------------------------------------------
 */

void conf_options_init(struct conf_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->size = sizeof(*opts);
    opts->log_level = LOG_WARNING;
}

/* Sizes of the released layouts of struct conf_options: the first ended
 * before file, the second before no_env. */
#define OPTS_V1_SIZE offsetof(struct conf_options, file)
#define OPTS_V2_SIZE offsetof(struct conf_options, no_env)

/* Copies opts into *o under the size rule (docs/api.md). */
static int options_copy(const struct conf_options *opts, struct conf_options *o,
                        struct conf_error *err)
{
    conf_options_init(o);
    if (!opts)
        return 0;
    size_t size = opts->size;
    if (size > sizeof(*o)) {
        const unsigned char *extra = (const unsigned char *)opts + sizeof(*o);
        for (size_t i = 0; i < size - sizeof(*o); i++)
            if (extra[i]) {
                conf__set_error(err, NULL, 0, NULL, NULL, NULL,
                                "invalid options: size %zu is larger than "
                                "this library's struct conf_options (%zu) "
                                "and the extra bytes are not zero (options "
                                "this version does not know)",
                                size, sizeof(*o));
                return -EINVAL;
            }
        size = sizeof(*o);
    } else if (size != OPTS_V1_SIZE && size != OPTS_V2_SIZE &&
               size != sizeof(*o)) {
        conf__set_error(err, NULL, 0, NULL, NULL, NULL,
                        "invalid options: size %zu is no released layout of "
                        "struct conf_options (%zu, %zu or %zu); call "
                        "conf_options_init",
                        size, (size_t)OPTS_V1_SIZE, (size_t)OPTS_V2_SIZE,
                        sizeof(*o));
        return -EINVAL;
    }
    memcpy(o, opts, size);
    o->size = sizeof(*o);
    return 0;
}

/* The end of a public call taking err: on failure err->code is the code
 * returned and msg is set (the generic text when nothing more precise was
 * said); on success err is left as the caller had it. */
static int finish(struct conf_error *err, int saved_code, int rc)
{
    if (!err)
        return rc;
    if (rc == 0) {
        err->code = saved_code;
        return 0;
    }
    if (err->code != CONF__ERROR_FILLED)
        conf__set_error(err, NULL, 0, NULL, NULL, NULL, "%s",
                        conf_strerror(rc));
    err->code = rc;
    return rc;
}

/* Marks err as not yet filled by this call; returns the caller's code. */
static int start(struct conf_error *err)
{
    if (!err)
        return 0;
    int saved = err->code;
    err->code = 0;
    return saved;
}

static int create(const struct conf_options *opts, struct conf **out,
                  struct conf_error *err)
{
    struct conf_options o;
    int rc = options_copy(opts, &o, err);
    if (rc != 0)
        return rc;
    o.file = NULL; /* only read by conf_startup */
    struct conf *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->opts = o;
    *out = c;
    return 0;
}

int conf_new(const struct conf_options *opts, struct conf **out,
             struct conf_error *err)
{
    int saved = start(err);
    if (!out) {
        conf__set_error(err, NULL, 0, NULL, NULL, NULL,
                        "invalid argument: nowhere to store the "
                        "configuration");
        return finish(err, saved, -EINVAL);
    }
    *out = NULL;
    return finish(err, saved, create(opts, out, err));
}

int conf_create(struct conf **out, const struct conf_options *opts)
{
    return conf_new(opts, out, NULL);
}

void conf_destroy(struct conf *c)
{
    if (!c)
        return;
    conf__entries_free(&c->entries);
    free(c);
}

/* A NULL argument where an object is needed: -EINVAL, said in err. */
static int bad_argument(struct conf_error *err, const char *what)
{
    conf__set_error(err, NULL, 0, NULL, NULL, NULL, "invalid argument: %s",
                    what);
    return -EINVAL;
}

static int load_buffer(struct conf *c, const char *name, const char *text,
                       size_t len, struct conf_error *err)
{
    if (!c)
        return bad_argument(err, "no configuration object");
    if (!name)
        return bad_argument(err, "no buffer name");
    if (!text && len)
        return bad_argument(err, "no text");
    struct conf__entries staged = {0};
    int rc = conf__parse_ini(c, name, text, len, &staged, err);
    if (rc == 0)
        rc = commit(c, &staged, err);
    conf__entries_free(&staged);
    return rc;
}

static int read_file(const char *path, char **out, size_t *len,
                     struct conf_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        conf__set_error(err, path, 0, NULL, NULL, NULL, "cannot open: %s",
                        errno_text(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    if (rc != 0) {
        conf__set_error(err, path, 0, NULL, NULL, NULL, "cannot read: %s",
                        errno_text(-rc));
        close(fd);
        return rc;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= MAX_FILE_SIZE) {
                /* Full: a file of exactly the limit ends here. */
                char probe;
                ssize_t r = read(fd, &probe, 1);
                if (r < 0 && errno == EINTR)
                    continue;
                if (r < 0)
                    rc = -errno;
                else if (r > 0)
                    rc = -EFBIG;
                break;
            }
            char *b = realloc(buf, cap * 2);
            if (!b) {
                rc = -ENOMEM;
                break;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf)
        rc = -ENOMEM;
    if (rc != 0) {
        free(buf);
        conf__set_error(err, path, 0, NULL, NULL, NULL, "cannot read: %s",
                        rc == -EFBIG ? "larger than 16 MiB" : errno_text(-rc));
        return rc;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int load_file(struct conf *c, const char *path, struct conf_error *err)
{
    if (!c)
        return bad_argument(err, "no configuration object");
    if (!path)
        return bad_argument(err, "no file name");
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc != 0)
        return rc;
    rc = load_buffer(c, path, text, len, err);
    free(text);
    return rc;
}

static int load_default(struct conf *c, struct conf_error *err)
{
    if (!c)
        return bad_argument(err, "no configuration object");
    const char *env = c->opts.no_env ? NULL : getenv(CONF_FILE_ENV);
    if (env && env[0])
        return load_file(c, env, err);
    if (access(CONF_DEFAULT_FILE, F_OK) != 0 && errno == ENOENT)
        return 0;
    return load_file(c, CONF_DEFAULT_FILE, err);
}

int conf_load_buffer(struct conf *c, const char *name, const char *text,
                     size_t len, struct conf_error *err)
{
    int saved = start(err);
    return finish(err, saved, load_buffer(c, name, text, len, err));
}

int conf_load_file(struct conf *c, const char *path, struct conf_error *err)
{
    int saved = start(err);
    return finish(err, saved, load_file(c, path, err));
}

int conf_load_default(struct conf *c, struct conf_error *err)
{
    int saved = start(err);
    return finish(err, saved, load_default(c, err));
}

/* ---- command line ---------------------------------------------------------
 */

/* An override is "--" then a name holding a '/' before any '='. */
static bool is_override(const char *arg)
{
    if (strncmp(arg, "--", 2) != 0)
        return false;
    const char *eq = strchr(arg, '=');
    const char *slash = strchr(arg + 2, '/');
    return slash && (!eq || slash < eq);
}

static int stage_override(struct conf *c, struct conf__entries *staged,
                          const char *arg, const char *value,
                          struct conf_error *err)
{
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    char *buf = strndup(name, name_len);
    if (!buf)
        return -ENOMEM;
    char *slash = strrchr(buf, '/');
    *slash = '\0';
    const char *section = buf, *key = slash + 1;
    char msg[512];
    int rc = 0;
    if (!conf__section_name_valid(section) || !conf__key_valid(key)) {
        conf__set_error(err, NULL, 0, NULL, NULL, arg,
                        "malformed override (expected --SECTION/key=value)");
        rc = -EINVAL;
    } else if (!conf__value_writable(section, key, value, msg, sizeof(msg))) {
        conf__set_error(err, NULL, 0, section, key, arg, "%s", msg);
        rc = -EINVAL;
    } else {
        struct conf__entry where = {
            .section = (char *)section,
            .key = (char *)key,
            .value = (char *)value,
            .source = CONF_SOURCE_COMMAND_LINE,
            .arg = (char *)arg,
        };
        rc = conf__stage(c, staged, &where, err);
    }
    free(buf);
    return rc;
}

static int parse_args(struct conf *c, int *argc, char **argv,
                      struct conf_error *err)
{
    if (!c)
        return bad_argument(err, "no configuration object");
    if (!argc || *argc < 0)
        return bad_argument(err, "no argument count, or a negative one");
    int n = *argc;
    if (n == 0)
        return 0;
    if (!argv)
        return bad_argument(err, "no argument vector");
    for (int i = 1; i < n; i++)
        if (!argv[i])
            return bad_argument(err, "NULL argument before argv[argc]");
    char **keep = calloc((size_t)n + 1, sizeof(*keep));
    if (!keep)
        return -ENOMEM;
    struct conf__entries staged = {0};
    int kept = 0, rc = 0;
    keep[kept++] = argv[0];
    for (int i = 1; i < n && rc == 0; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) {
            while (++i < n)
                keep[kept++] = argv[i];
            break;
        }
        if (!is_override(arg)) {
            keep[kept++] = argv[i];
            continue;
        }
        const char *eq = strchr(arg, '=');
        if (eq) {
            rc = stage_override(c, &staged, arg, eq + 1, err);
        } else if (i + 1 < n && strcmp(argv[i + 1], "--") != 0 &&
                   !is_override(argv[i + 1])) {
            /* The next argument is the value, unless it is "--" or an
             * override itself, which would be silently lost. */
            rc = stage_override(c, &staged, arg, argv[i + 1], err);
            i++;
        } else {
            conf__set_error(err, NULL, 0, NULL, NULL, arg,
                            "missing value (expected --SECTION/key=value or "
                            "--SECTION/key value)");
            rc = -EINVAL;
        }
    }
    if (rc == 0)
        rc = commit(c, &staged, err);
    if (rc == 0) {
        for (int i = 0; i < kept; i++)
            argv[i] = keep[i];
        /* argv[n] is the caller's own terminator: only write inside the
         * argc slots we were given. */
        if (kept < n)
            argv[kept] = NULL;
        *argc = kept;
    }
    conf__entries_free(&staged);
    free(keep);
    return rc;
}

int conf_parse_args(struct conf *c, int *argc, char **argv,
                    struct conf_error *err)
{
    int saved = start(err);
    return finish(err, saved, parse_args(c, argc, argv, err));
}

static int startup(const struct conf_options *opts, int *argc, char **argv,
                   struct conf **out, struct conf_error *err)
{
    struct conf *c;
    if (!out)
        return bad_argument(err, "nowhere to store the configuration");
    *out = NULL;
    int rc = create(opts, &c, err);
    if (rc != 0)
        return rc;
    /* An options struct of an older, shorter layout has no file field. */
    const char *file = NULL;
    if (opts && opts->size >= OPTS_V2_SIZE)
        file = opts->file;
    if (file)
        rc = load_file(c, file, err);
    else
        rc = load_default(c, err);
    if (rc == 0 && argc && argv)
        rc = parse_args(c, argc, argv, err);
    if (rc != 0) {
        conf_destroy(c);
        return rc;
    }
    *out = c;
    return 0;
}

int conf_startup(const struct conf_options *opts, int *argc, char **argv,
                 struct conf **out, struct conf_error *err)
{
    int saved = start(err);
    return finish(err, saved, startup(opts, argc, argv, out, err));
}

int conf_open(struct conf **out, const struct conf_options *opts, int *argc,
              char **argv, struct conf_error *err)
{
    return conf_startup(opts, argc, argv, out, err);
}

/* ---- lookup and getters -------------------------------------------------- */

/* The winning entry for exactly (section, key): the command line beats
 * files, a later load beats an earlier one. */
static const struct conf__entry *
find_exact(const struct conf *c, const char *section, const char *key)
{
    const struct conf__entry *best = NULL;
    for (size_t i = 0; i < c->entries.n; i++) {
        const struct conf__entry *e = &c->entries.v[i];
        if (strcmp(e->key, key) != 0 || strcmp(e->section, section) != 0)
            continue;
        if (!best || e->source > best->source ||
            (e->source == best->source && e->seq > best->seq))
            best = e;
    }
    return best;
}

/* Effective text of (section, key) with the profile fallback; *entry
 * (entry may be NULL) is NULL for a default, *opt the schema entry (may be
 * NULL). */
static int resolve(const struct conf *c, const char *section, const char *key,
                   const struct conf__entry **entry,
                   const struct conf_option **opt, const char **text)
{
    if (!c || !section || !key)
        return -EINVAL;
    const struct conf_option *o = conf_schema_find(section, key);
    if (o && (o->flags & CONF_OPT_OBSOLETE))
        return -ENOENT;
    if (o && (o->flags & CONF_OPT_DEPRECATED)) {
        key = o->alias_of;
        o = conf_schema_find(section, key);
    }
    const struct conf__entry *e = find_exact(c, section, key);
    if (!e && conf__is_profile(section)) {
        e = find_exact(c, "SUBGROUP/DEFAULT", key);
        if (!e && o && (o->flags & CONF_OPT_PROFILE_ONLY) == 0)
            e = find_exact(c, "DERECHO", key);
    }
    if (entry)
        *entry = e;
    *opt = o;
    if (e)
        *text = e->value;
    else if (o && o->default_value)
        *text = o->default_value;
    else
        return -ENOENT;
    return 0;
}

int conf_get_string(const struct conf *c, const char *section, const char *key,
                    const char **out)
{
    const struct conf_option *o;
    const char *text;
    if (!out)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    if (rc == 0)
        *out = text;
    return rc;
}

int conf_get_source(const struct conf *c, const char *section, const char *key,
                    enum conf_source *source, const char **file, int *line)
{
    const struct conf__entry *e;
    const struct conf_option *o;
    const char *text;
    int rc = resolve(c, section, key, &e, &o, &text);
    if (rc != 0)
        return rc;
    if (source)
        *source = e ? e->source : CONF_SOURCE_DEFAULT;
    if (file)
        *file = e ? e->file : NULL;
    if (line)
        *line = e ? e->line : 0;
    return 0;
}

int conf_get_i64_range(const struct conf *c, const char *section,
                       const char *key, int64_t min, int64_t max, int64_t *out)
{
    const struct conf_option *o;
    const char *text;
    int64_t v;
    if (!out || min > max)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    if (rc == 0)
        rc = conf__parse_i64(text, &v);
    if (rc != 0)
        return rc;
    if (o && o->type == CONF_TYPE_INT && (v < o->min_i || v > o->max_i))
        return -ERANGE;
    if (o && (o->type == CONF_TYPE_UINT || o->type == CONF_TYPE_SIZE) &&
        (v < 0 || (uint64_t)v < o->min_u || (uint64_t)v > o->max_u))
        return -ERANGE;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int conf_get_i64(const struct conf *c, const char *section, const char *key,
                 int64_t *out)
{
    return conf_get_i64_range(c, section, key, INT64_MIN, INT64_MAX, out);
}

int conf_get_u64_range(const struct conf *c, const char *section,
                       const char *key, uint64_t min, uint64_t max,
                       uint64_t *out)
{
    const struct conf_option *o;
    const char *text;
    uint64_t v;
    if (!out || min > max)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    if (rc != 0)
        return rc;
    bool size = o && o->type == CONF_TYPE_SIZE;
    rc = size ? conf__parse_size(text, &v) : conf__parse_u64(text, &v);
    if (rc != 0)
        return rc;
    if (o && (o->type == CONF_TYPE_UINT || size) &&
        (v < o->min_u || v > o->max_u))
        return -ERANGE;
    if (o && o->type == CONF_TYPE_INT &&
        (v > (uint64_t)INT64_MAX || (int64_t)v < o->min_i ||
         (int64_t)v > o->max_i))
        return -ERANGE;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int conf_get_u64(const struct conf *c, const char *section, const char *key,
                 uint64_t *out)
{
    return conf_get_u64_range(c, section, key, 0, UINT64_MAX, out);
}

int conf_get_size(const struct conf *c, const char *section, const char *key,
                  uint64_t *out)
{
    const struct conf_option *o;
    const char *text;
    uint64_t v;
    if (!out)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    if (rc == 0)
        rc = conf__parse_size(text, &v);
    if (rc != 0)
        return rc;
    if (o && (o->type == CONF_TYPE_UINT || o->type == CONF_TYPE_SIZE) &&
        (v < o->min_u || v > o->max_u))
        return -ERANGE;
    *out = v;
    return 0;
}

int conf_get_double(const struct conf *c, const char *section, const char *key,
                    double *out)
{
    const struct conf_option *o;
    const char *text;
    if (!out)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    return rc != 0 ? rc : conf__parse_double(text, out);
}

int conf_get_bool(const struct conf *c, const char *section, const char *key,
                  bool *out)
{
    const struct conf_option *o;
    const char *text;
    if (!out)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    return rc != 0 ? rc : conf__parse_bool(text, out);
}

int conf_get_enum(const struct conf *c, const char *section, const char *key,
                  int *index, const char **name)
{
    const struct conf_option *o;
    const char *text;
    int rc = resolve(c, section, key, NULL, &o, &text);
    if (rc != 0)
        return rc;
    int i = conf__parse_enum(o, text);
    if (i < 0)
        return i;
    if (index)
        *index = i;
    if (name)
        *name = o->enum_values[i];
    return 0;
}

int conf_get_list(const struct conf *c, const char *section, const char *key,
                  char ***items, size_t *count)
{
    const struct conf_option *o;
    const char *text;
    if (!items || !count)
        return -EINVAL;
    int rc = resolve(c, section, key, NULL, &o, &text);
    return rc != 0 ? rc : conf__split_list(text, items, count);
}

/* ---- dump -------------------------------------------------------------------
 */

/* Writes "key = value  ; source: ..." on one line.  The dump must always
 * load back, so two cases are written compactly as "key=value": a value
 * that would need quotes after "key = " but holds a '"' (e.g. `;"x` read
 * from "k=;"x"), and a line that would pass CONF_MAX_LINE.  The compact form
 * never needs more than the line the value was read from (command-line
 * values are checked to fit).  A source comment that does not fit goes on
 * the next line, cut to fit. */
static void dump_key(FILE *f, const char *key, const char *value,
                     const struct conf__entry *e)
{
    char source[CONF_MAX_LINE + 1];
    if (!e) {
        snprintf(source, sizeof(source), "; source: default");
    } else if (e->source == CONF_SOURCE_COMMAND_LINE) {
        snprintf(source, sizeof(source), "; source: command line");
    } else {
        snprintf(source, sizeof(source), "; source: %s:%d", e->file, e->line);
        /* A file name may hold anything: keep the comment on one line. */
        for (char *p = source; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    size_t klen = strlen(key), vlen = strlen(value);
    bool quotes = conf__value_needs_quotes(value, false);
    size_t len = klen + 3 + vlen + (quotes ? 2 : 0);
    const char *eq = " = ";
    if (len > CONF_MAX_LINE || (quotes && strchr(value, '"'))) {
        quotes = conf__value_needs_quotes(value, true);
        len = klen + 1 + vlen + (quotes ? 2 : 0);
        eq = "=";
    }
    fprintf(f, quotes ? "%s%s\"%s\"" : "%s%s%s", key, eq, value);
    if (len + 2 + strlen(source) <= CONF_MAX_LINE)
        fprintf(f, "  %s\n", source);
    else
        fprintf(f, "\n%s\n", source);
}

/* A (section, key) that was set: its first entry in load order (which
 * places it in the dump), the first entry of its section, and the entry
 * that wins (find_exact's rule). */
struct set_key {
    size_t first;
    size_t section_first;
    const struct conf__entry *winner;
};

/* Entries (pointers into one array) by section, key, then load order. */
static int cmp_entry(const void *a, const void *b)
{
    const struct conf__entry *x = *(const struct conf__entry *const *)a;
    const struct conf__entry *y = *(const struct conf__entry *const *)b;
    int d = strcmp(x->section, y->section);
    if (d == 0)
        d = strcmp(x->key, y->key);
    return d != 0 ? d : (x > y) - (x < y);
}

/* Keys by the first appearance of their section, then their own. */
static int cmp_set_key(const void *a, const void *b)
{
    const struct set_key *x = a, *y = b;
    if (x->section_first != y->section_first)
        return x->section_first < y->section_first ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

/* The distinct keys that were set, in dump order (sections and keys by
 * first appearance), in O(n log n): the dump of a file of a million keys
 * must not take O(n^2).  *out is NULL when nothing was set. */
static int set_keys(const struct conf *c, struct set_key **out, size_t *count)
{
    size_t n = c->entries.n;
    *out = NULL;
    *count = 0;
    if (n == 0)
        return 0;
    const struct conf__entry **by_name = malloc(n * sizeof(*by_name));
    struct set_key *keys = malloc(n * sizeof(*keys));
    if (!by_name || !keys) {
        free(by_name);
        free(keys);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        by_name[i] = &c->entries.v[i];
    qsort(by_name, n, sizeof(*by_name), cmp_entry);
    size_t nkeys = 0, section_start = 0;
    for (size_t i = 0; i < n; i++) {
        const struct conf__entry *e = by_name[i];
        bool new_section =
            i == 0 || strcmp(e->section, by_name[i - 1]->section) != 0;
        if (new_section)
            section_start = nkeys;
        if (new_section || strcmp(e->key, by_name[i - 1]->key) != 0) {
            keys[nkeys].first = (size_t)(e - c->entries.v);
            keys[nkeys].section_first = keys[nkeys].first;
            keys[nkeys].winner = e;
            nkeys++;
        } else {
            const struct conf__entry *w = keys[nkeys - 1].winner;
            if (e->source > w->source ||
                (e->source == w->source && e->seq > w->seq))
                keys[nkeys - 1].winner = e;
        }
        /* A section first appears with the earliest first of its keys. */
        struct set_key *k = &keys[nkeys - 1];
        if (k->first < keys[section_start].section_first)
            keys[section_start].section_first = k->first;
        if (i + 1 == n || strcmp(by_name[i + 1]->section, e->section) != 0)
            for (size_t j = section_start + 1; j < nkeys; j++)
                keys[j].section_first = keys[section_start].section_first;
    }
    free(by_name);
    qsort(keys, nkeys, sizeof(*keys), cmp_set_key);
    *out = keys;
    *count = nkeys;
    return 0;
}

int conf_dump(const struct conf *c, char **out, size_t *len)
{
    static const char *const sections[] = {"DERECHO", "RDMA", "PERS", "LOGGER",
                                           "LAYOUT"};
    char *buf = NULL;
    size_t size = 0;
    if (!c || !out)
        return -EINVAL;
    struct set_key *keys;
    size_t nkeys;
    if (set_keys(c, &keys, &nkeys) != 0)
        return -ENOMEM;
    FILE *f = open_memstream(&buf, &size);
    if (!f) {
        free(keys);
        return -ENOMEM;
    }
    fputs("; Effective Derecho configuration (written by libconf).\n", f);
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
        fprintf(f, "\n[%s]\n", sections[s]);
        for (size_t i = 0; i < conf_schema_count(); i++) {
            const struct conf_option *o = conf_schema_get(i);
            if (strcmp(o->section, sections[s]) != 0 || !o->default_value)
                continue;
            const struct conf__entry *e = find_exact(c, o->section, o->key);
            dump_key(f, o->key, e ? e->value : o->default_value, e);
        }
        /* Then the keys set in it that the schema does not know. */
        for (size_t k = 0; k < nkeys; k++) {
            const struct conf__entry *e = &c->entries.v[keys[k].first];
            if (strcmp(e->section, sections[s]) == 0 &&
                !conf_schema_find(sections[s], e->key))
                dump_key(f, e->key, keys[k].winner->value, keys[k].winner);
        }
    }
    /* Each profile with every key set in it. */
    for (size_t k = 0; k < nkeys; k++) {
        const struct conf__entry *e = &c->entries.v[keys[k].first];
        if (!conf__is_profile(e->section))
            continue;
        if (k == 0 || keys[k].section_first != keys[k - 1].section_first)
            fprintf(f, "\n[%s]\n", e->section);
        dump_key(f, e->key, keys[k].winner->value, keys[k].winner);
    }
    free(keys);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    if (len)
        *len = size;
    return 0;
}
