/* Typed getters, defaults, layering between files and profile fallback. */
#include "test-conf.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct conf *load_ok(const char *text)
{
    struct conf_error err;
    int rc;
    struct conf *c = load_text(text, false, NULL, &rc, &err);
    ck_assert_msg(rc == 0, "%s: %s", err.key, err.msg);
    return c;
}

START_TEST(defaults_come_from_the_schema)
{
    struct conf *c = new_conf(NULL, true);
    for (size_t i = 0; i < conf_schema_count(); i++) {
        const struct conf_option *o = conf_schema_get(i);
        const char *v;
        int rc = conf_get_string(c, o->section, o->key, &v);
        /* Obsolete keys have no value; profile-only keys none until set. */
        if (o->flags & (CONF_OPT_OBSOLETE | CONF_OPT_PROFILE_ONLY)) {
            ck_assert_int_eq(rc, -ENOENT);
            continue;
        }
        ck_assert_int_eq(rc, 0);
        if (o->flags & CONF_OPT_DEPRECATED)
            continue;
        ck_assert_str_eq(v, o->default_value);
        enum conf_source src = CONF_SOURCE_FILE;
        const char *file = "x";
        int line = 9;
        ck_assert_int_eq(
            conf_get_source(c, o->section, o->key, &src, &file, &line), 0);
        ck_assert_int_eq(src, CONF_SOURCE_DEFAULT);
        ck_assert_ptr_null(file);
        ck_assert_int_eq(line, 0);
    }
    ck_assert_ptr_null(conf_schema_get(conf_schema_count()));
    conf_destroy(c);
}
END_TEST

START_TEST(every_schema_default_is_valid_for_its_getter)
{
    struct conf *c = new_conf(NULL, true);
    for (size_t i = 0; i < conf_schema_count(); i++) {
        const struct conf_option *o = conf_schema_get(i);
        if (!o->default_value)
            continue;
        ck_assert_ptr_nonnull(o->description);
        uint64_t u;
        int64_t s;
        bool b;
        int idx;
        char **items;
        size_t n;
        int rc = 0;
        switch (o->type) {
        case CONF_TYPE_UINT:
            rc = conf_get_u64(c, o->section, o->key, &u);
            break;
        case CONF_TYPE_INT:
            rc = conf_get_i64(c, o->section, o->key, &s);
            break;
        case CONF_TYPE_SIZE:
            rc = conf_get_size(c, o->section, o->key, &u);
            break;
        case CONF_TYPE_BOOL:
            rc = conf_get_bool(c, o->section, o->key, &b);
            break;
        case CONF_TYPE_ENUM:
            rc = conf_get_enum(c, o->section, o->key, &idx, NULL);
            break;
        case CONF_TYPE_LIST:
            rc = conf_get_list(c, o->section, o->key, &items, &n);
            if (rc == 0)
                free(items);
            break;
        case CONF_TYPE_STRING:
        case CONF_TYPE_DOUBLE:
            break;
        }
        ck_assert_msg(rc == 0, "%s/%s: %d", o->section, o->key, rc);
    }
    conf_destroy(c);
}
END_TEST

START_TEST(schema_lookup)
{
    const struct conf_option *o = conf_schema_find("DERECHO", "window_size");
    ck_assert_ptr_nonnull(o);
    ck_assert_ptr_eq(conf_schema_find("SUBGROUP/ANY", "window_size"), o);
    ck_assert_ptr_null(conf_schema_find("SUBGROUP/ANY", "local_id"));
    ck_assert_ptr_null(conf_schema_find("RDMA", "window_size"));
    ck_assert_ptr_null(conf_schema_find(NULL, "window_size"));
    ck_assert_str_eq(conf_type_name(CONF_TYPE_SIZE), "byte size");
    /* The seed README's options and the list are all there. */
    static const char *const must[][2] = {
        {"DERECHO", "contact_ip"},
        {"DERECHO", "leader_ip"},
        {"DERECHO", "leader_gms_port"},
        {"DERECHO", "rpc_port"},
        {"DERECHO", "local_id"},
        {"DERECHO", "local_ip"},
        {"DERECHO", "gms_port"},
        {"DERECHO", "sst_port"},
        {"DERECHO", "rdmc_port"},
        {"DERECHO", "max_payload_size"},
        {"DERECHO", "max_smc_payload_size"},
        {"DERECHO", "block_size"},
        {"DERECHO", "window_size"},
        {"DERECHO", "timeout_ms"},
        {"DERECHO", "rdmc_send_algorithm"},
        {"RDMA", "provider"},
        {"RDMA", "domain"},
        {"RDMA", "tx_depth"},
        {"RDMA", "rx_depth"},
        {"PERS", "file_path"},
        {"PERS", "ramdisk_path"},
        {"PERS", "reset"},
        {"PERS", "max_log_entry"},
        {"PERS", "max_data_size"},
        {"LOGGER", "default_log_level"},
        {"LAYOUT", "json_layout"},
        {"LAYOUT", "json_layout_file"},
        {"DERECHO", "external_port"},
        {"DERECHO", "p2p_loop_busy_wait_before_sleep_ms"},
        {"SUBGROUP/DEFAULT", "max_reply_payload_size"},
    };
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        ck_assert_msg(conf_schema_find(must[i][0], must[i][1]), "%s/%s",
                      must[i][0], must[i][1]);
    /* The profile-only keys: found in any profile, in no fixed section. */
    static const char *const shape[] = {"num_shards", "min_nodes", "max_nodes"};
    for (size_t i = 0; i < 3; i++) {
        o = conf_schema_find("SUBGROUP/ANY", shape[i]);
        ck_assert_ptr_nonnull(o);
        ck_assert_uint_eq(o->flags, CONF_OPT_PROFILE_ONLY);
        ck_assert_int_eq(o->type, CONF_TYPE_UINT);
        ck_assert_ptr_null(o->default_value);
        ck_assert_ptr_null(conf_schema_find("DERECHO", shape[i]));
    }
    /* Never lose data by default. */
    ck_assert_str_eq(conf_schema_find("PERS", "reset")->default_value, "false");
}
END_TEST

START_TEST(get_bool_all_spellings)
{
    static const struct {
        const char *text;
        bool value;
    } cases[] = {{"true", true},  {"TRUE", true}, {"yes", true},
                 {"On", true},    {"1", true},    {"false", false},
                 {"No", false},   {"off", false}, {"0", false},
                 {"FALSE", false}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "[PERS]\nreset = %s\n", cases[i].text);
        struct conf *c = load_ok(text);
        bool b = !cases[i].value;
        ck_assert_int_eq(conf_get_bool(c, "PERS", "reset", &b), 0);
        ck_assert_int_eq(b, cases[i].value);
        conf_destroy(c);
    }
    struct conf *c = load_ok("[DERECHO]\nx = 2\n");
    bool b;
    ck_assert_int_eq(conf_get_bool(c, "DERECHO", "x", &b), -EINVAL);
    ck_assert_int_eq(conf_get_bool(c, "DERECHO", "missing", &b), -ENOENT);
    conf_destroy(c);
}
END_TEST

START_TEST(get_integers_with_ranges)
{
    struct conf *c = load_ok("[DERECHO]\nlocal_id = 42\nneg = -17\n"
                             "big = 18446744073709551615\n"
                             "huge = 18446744073709551616\nword = 12a\n"
                             "space = \" 5\"\nplus = +5\n");
    uint64_t u;
    int64_t s;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", &u), 0);
    ck_assert_uint_eq(u, 42);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "local_id", &s), 0);
    ck_assert_int_eq(s, 42);
    ck_assert_int_eq(conf_get_u64_range(c, "DERECHO", "local_id", 0, 41, &u),
                     -ERANGE);
    ck_assert_int_eq(conf_get_u64_range(c, "DERECHO", "local_id", 42, 42, &u),
                     0);
    ck_assert_int_eq(conf_get_i64_range(c, "DERECHO", "local_id", 43, 50, &s),
                     -ERANGE);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "neg", &s), 0);
    ck_assert_int_eq(s, -17);
    ck_assert_int_eq(conf_get_i64_range(c, "DERECHO", "neg", -17, -17, &s), 0);
    ck_assert_int_eq(conf_get_i64_range(c, "DERECHO", "neg", -16, 0, &s),
                     -ERANGE);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "neg", &u), -EINVAL);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "big", &u), 0);
    ck_assert_uint_eq(u, UINT64_MAX);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "big", &s), -ERANGE);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "huge", &u), -ERANGE);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "word", &u), -EINVAL);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "word", &s), -EINVAL);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "space", &u), -EINVAL);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "space", &s), -EINVAL);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "plus", &u), -EINVAL);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "plus", &s), 0);
    ck_assert_int_eq(s, 5);
    /* A string option is not a number. */
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_ip", &u), -EINVAL);
    conf_destroy(c);
}
END_TEST

START_TEST(get_sizes)
{
    static const struct {
        const char *text;
        uint64_t value;
    } cases[] = {{"4096", 4096},
                 {"1K", 1024},
                 {"64k", 65536},
                 {"3M", 3ull << 20},
                 {"2G", 2ull << 30},
                 {"0", 0},
                 {"17179869183G", 17179869183ull << 30}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[96];
        snprintf(text, sizeof(text),
                 "[PERS]\nmax_data_size = 4K\n"
                 "[DERECHO]\nsize = %s\n",
                 cases[i].text);
        struct conf *c = load_ok(text);
        uint64_t v;
        ck_assert_int_eq(conf_get_size(c, "DERECHO", "size", &v), 0);
        ck_assert_uint_eq(v, cases[i].value);
        conf_destroy(c);
    }
    struct conf *c =
        load_ok("[DERECHO]\nblock_size = 2M\na = 17179869184G\nb = K\n"
                "c = 1KK\nd = -1K\n");
    uint64_t v;
    ck_assert_int_eq(conf_get_size(c, "DERECHO", "block_size", &v), 0);
    ck_assert_uint_eq(v, 2u << 20);
    /* u64 getter on a size option understands the suffix too */
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "block_size", &v), 0);
    ck_assert_uint_eq(v, 2u << 20);
    ck_assert_int_eq(conf_get_size(c, "DERECHO", "a", &v), -ERANGE);
    ck_assert_int_eq(conf_get_size(c, "DERECHO", "b", &v), -EINVAL);
    ck_assert_int_eq(conf_get_size(c, "DERECHO", "c", &v), -EINVAL);
    ck_assert_int_eq(conf_get_size(c, "DERECHO", "d", &v), -EINVAL);
    conf_destroy(c);
}
END_TEST

START_TEST(get_doubles)
{
    struct conf *c = load_ok("[DERECHO]\na = 0.1\nb = -2.5e3\nc = nan\n"
                             "d = inf\ne = 1e999\nf = 1.5x\ng = 7\n");
    double d;
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "a", &d), 0);
    ck_assert(d == 0.1);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "b", &d), 0);
    ck_assert(d == -2500.0);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "c", &d), -EINVAL);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "d", &d), -EINVAL);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "e", &d), -EINVAL);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "f", &d), -EINVAL);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "g", &d), 0);
    ck_assert(d == 7.0);
    conf_destroy(c);
}
END_TEST

START_TEST(get_enums)
{
    static const char *const algos[] = {"binomial_send", "chain_send",
                                        "sequential_send", "tree_send"};
    for (int i = 0; i < 4; i++) {
        char text[96];
        snprintf(text, sizeof(text), "[DERECHO]\nrdmc_send_algorithm = %s\n",
                 algos[i]);
        struct conf *c = load_ok(text);
        int idx = -1;
        const char *name = NULL;
        ck_assert_int_eq(
            conf_get_enum(c, "DERECHO", "rdmc_send_algorithm", &idx, &name), 0);
        ck_assert_int_eq(idx, i);
        ck_assert_str_eq(name, algos[i]);
        conf_destroy(c);
    }
    struct conf *c = new_conf(NULL, false);
    int idx;
    const char *name;
    ck_assert_int_eq(
        conf_get_enum(c, "LOGGER", "default_log_level", &idx, &name), 0);
    ck_assert_str_eq(name, "info");
    ck_assert_int_eq(conf_get_enum(c, "LOGGER", "sst_log_level", NULL, &name),
                     0);
    ck_assert_str_eq(name, "default");
    /* Not an enumeration */
    ck_assert_int_eq(conf_get_enum(c, "DERECHO", "local_id", &idx, &name),
                     -EINVAL);
    conf_destroy(c);
}
END_TEST

/* Lists of every length from 0 to 100 come back whole (the original
 * corrupted lists of three or more). */
START_TEST(get_lists_of_any_length)
{
    for (int n = 0; n <= 100; n++) {
        char text[2048] = "[DERECHO]\nrestart_leaders = ";
        char ports[1024] = "";
        for (int i = 0; i < n; i++) {
            char item[32];
            snprintf(item, sizeof(item), "%s10.0.%d.%d", i ? " , " : "",
                     i / 250, i % 250 + 1);
            strcat(text, item);
            snprintf(item, sizeof(item), "%s%d", i ? "," : "", 20000 + i);
            strcat(ports, item);
        }
        strcat(text, "\nrestart_leader_ports = ");
        strcat(text, ports);
        strcat(text, "\n");
        struct conf *c = load_ok(text);
        char **items = NULL;
        size_t count = 999;
        ck_assert_int_eq(
            conf_get_list(c, "DERECHO", "restart_leaders", &items, &count), 0);
        ck_assert_uint_eq(count, (size_t)n);
        for (int i = 0; i < n; i++) {
            char want[32];
            snprintf(want, sizeof(want), "10.0.%d.%d", i / 250, i % 250 + 1);
            ck_assert_str_eq(items[i], want);
        }
        ck_assert_ptr_null(items[n]);
        free(items);
        ck_assert_int_eq(
            conf_get_list(c, "DERECHO", "restart_leader_ports", &items, &count),
            0);
        ck_assert_uint_eq(count, (size_t)n);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(atoi(items[i]), 20000 + i);
        free(items);
        conf_destroy(c);
    }
}
END_TEST

START_TEST(get_list_errors_and_defaults)
{
    struct conf *c = load_ok("[DERECHO]\na = x,\nb = ,\nc = \" , \"\n"
                             "d = \"   \"\ne = one\n");
    char **items;
    size_t n;
    ck_assert_int_eq(conf_get_list(c, "DERECHO", "a", &items, &n), -EINVAL);
    ck_assert_int_eq(conf_get_list(c, "DERECHO", "b", &items, &n), -EINVAL);
    ck_assert_int_eq(conf_get_list(c, "DERECHO", "c", &items, &n), -EINVAL);
    ck_assert_int_eq(conf_get_list(c, "DERECHO", "d", &items, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(items);
    ck_assert_int_eq(conf_get_list(c, "DERECHO", "e", &items, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(items[0], "one");
    free(items);
    ck_assert_int_eq(
        conf_get_list(c, "DERECHO", "restart_leader_ports", &items, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(items[0], "23580");
    free(items);
    conf_destroy(c);
}
END_TEST

START_TEST(later_file_wins_and_failed_load_keeps_state)
{
    struct conf *c = new_conf(NULL, false);
    const char *a = "[DERECHO]\nlocal_id = 1\ngms_port = 2000\n";
    const char *b = "[DERECHO]\nlocal_id = 2\n";
    const char *bad = "[DERECHO]\nlocal_id = 3\ngms_port = x\n";
    ck_assert_int_eq(conf_load_buffer(c, "a.cfg", a, strlen(a), NULL), 0);
    ck_assert_int_eq(conf_load_buffer(c, "b.cfg", b, strlen(b), NULL), 0);
    ck_assert_int_eq(conf_load_buffer(c, "bad.cfg", bad, strlen(bad), NULL),
                     -EINVAL);
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", &v), 0);
    ck_assert_uint_eq(v, 2);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "gms_port", &v), 0);
    ck_assert_uint_eq(v, 2000);
    const char *file;
    int line;
    ck_assert_int_eq(
        conf_get_source(c, "DERECHO", "gms_port", NULL, &file, &line), 0);
    ck_assert_str_eq(file, "a.cfg");
    ck_assert_int_eq(line, 3);
    conf_destroy(c);
}
END_TEST

START_TEST(profile_fallback_order)
{
    /* window_size: set in LARGE; block_size: only in DEFAULT;
     * max_payload_size: only legacy DERECHO; rdmc_send_algorithm: nowhere;
     * timeout_ms is no profile key. */
    struct conf *c = load_ok("[DERECHO]\nwindow_size = 3\nblock_size = 4K\n"
                             "max_payload_size = 5K\ntimeout_ms = 5\n"
                             "[SUBGROUP/DEFAULT]\nwindow_size = 7\n"
                             "block_size = 8K\nmine = d\n"
                             "[SUBGROUP/LARGE]\nwindow_size = 9\n");
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/LARGE", "window_size", &v), 0);
    ck_assert_uint_eq(v, 9);
    ck_assert_int_eq(conf_get_size(c, "SUBGROUP/LARGE", "block_size", &v), 0);
    ck_assert_uint_eq(v, 8192);
    ck_assert_int_eq(conf_get_size(c, "SUBGROUP/LARGE", "max_payload_size", &v),
                     0);
    ck_assert_uint_eq(v, 5120);
    const char *name;
    ck_assert_int_eq(
        conf_get_enum(c, "SUBGROUP/LARGE", "rdmc_send_algorithm", NULL, &name),
        0);
    ck_assert_str_eq(name, "binomial_send");
    /* not a profile key: no fallback to [DERECHO] */
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/LARGE", "timeout_ms", &v),
                     -ENOENT);
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/OTHER", "window_size", &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/DEFAULT", "window_size", &v), 0);
    ck_assert_uint_eq(v, 7);
    ck_assert_int_eq(
        conf_get_size(c, "SUBGROUP/LARGE", "max_reply_payload_size", &v), 0);
    ck_assert_uint_eq(v, 10240);
    /* The legacy key itself is not affected by profiles. */
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "window_size", &v), 0);
    ck_assert_uint_eq(v, 3);
    /* Unknown profile keys fall back to DEFAULT only. */
    const char *s;
    ck_assert_int_eq(conf_get_string(c, "SUBGROUP/LARGE", "mine", &s), 0);
    ck_assert_str_eq(s, "d");
    ck_assert_int_eq(conf_get_string(c, "SUBGROUP/LARGE", "local_id", &s),
                     -ENOENT);
    /* Where it came from */
    int line;
    enum conf_source src;
    ck_assert_int_eq(
        conf_get_source(c, "SUBGROUP/LARGE", "block_size", &src, NULL, &line),
        0);
    ck_assert_int_eq(src, CONF_SOURCE_FILE);
    ck_assert_int_eq(line, 8);
    ck_assert_int_eq(conf_get_source(c, "SUBGROUP/LARGE",
                                     "max_smc_payload_size", &src, NULL, &line),
                     0);
    ck_assert_int_eq(src, CONF_SOURCE_DEFAULT);
    conf_destroy(c);
}
END_TEST

/* num_shards, min_nodes, max_nodes: profile keys with no [DERECHO] key
 * behind them and no default. */
START_TEST(profile_only_keys)
{
    struct log_capture cap = {0};
    int rc;
    struct conf_error err;
    struct conf *c = load_text("[DERECHO]\nnum_shards = 5\n"
                               "[SUBGROUP/DEFAULT]\nmin_nodes = 2\n"
                               "[SUBGROUP/SHARDED]\nnum_shards = 3\n"
                               "max_nodes = 4\n",
                               false, &cap, &rc, &err);
    ck_assert_int_eq(rc, 0);
    /* [DERECHO] num_shards is an unknown key (a warning), never used. */
    ck_assert_int_eq(cap.warnings, 1);
    ck_assert_ptr_nonnull(strstr(cap.last, "num_shards"));
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/SHARDED", "num_shards", &v), 0);
    ck_assert_uint_eq(v, 3);
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/SHARDED", "min_nodes", &v), 0);
    ck_assert_uint_eq(v, 2); /* from [SUBGROUP/DEFAULT] */
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/SHARDED", "max_nodes", &v), 0);
    ck_assert_uint_eq(v, 4);
    /* Not set in the profile nor in DEFAULT: no default, no [DERECHO]. */
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/OTHER", "num_shards", &v),
                     -ENOENT);
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/OTHER", "max_nodes", &v),
                     -ENOENT);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "num_shards", &v), 0);
    ck_assert_uint_eq(v, 5);
    conf_destroy(c);
    /* Strict mode accepts them in a profile. */
    c = load_text("[SUBGROUP/A]\nnum_shards = 4096\nmin_nodes = 1\n"
                  "max_nodes = 4294967295\n",
                  true, NULL, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    conf_destroy(c);
}
END_TEST

START_TEST(profile_value_beats_command_line_legacy_key)
{
    /* Fallback happens only when a profile does not set the key, whatever
     * layer the legacy key comes from. */
    struct conf *c = load_ok("[SUBGROUP/LARGE]\nwindow_size = 9\n");
    struct args a;
    args_init(&a,
              (const char *const[]){"app", "--DERECHO/window_size=2", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    args_fini(&a);
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/LARGE", "window_size", &v), 0);
    ck_assert_uint_eq(v, 9);
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/SMALL", "window_size", &v), 0);
    ck_assert_uint_eq(v, 2);
    conf_destroy(c);
}
END_TEST

START_TEST(several_objects_coexist)
{
    struct conf *a = load_ok("[DERECHO]\nlocal_id = 1\n");
    struct conf *b = load_ok("[DERECHO]\nlocal_id = 2\n");
    uint64_t va, vb;
    ck_assert_int_eq(conf_get_u64(a, "DERECHO", "local_id", &va), 0);
    ck_assert_int_eq(conf_get_u64(b, "DERECHO", "local_id", &vb), 0);
    ck_assert_uint_eq(va, 1);
    ck_assert_uint_eq(vb, 2);
    conf_destroy(a);
    conf_destroy(b);
    conf_destroy(NULL);
}
END_TEST

START_TEST(options_size_checked)
{
    struct conf_options opts;
    conf_options_init(&opts);
    opts.size = 4;
    struct conf *c = (struct conf *)&opts;
    ck_assert_int_eq(conf_create(&c, &opts), -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(conf_create(&c, NULL), 0);
    conf_destroy(c);
}
END_TEST

Suite *getters_suite(void)
{
    Suite *s = suite_create("getters");
    TCase *tc = tcase_create("schema");
    tcase_add_test(tc, defaults_come_from_the_schema);
    tcase_add_test(tc, every_schema_default_is_valid_for_its_getter);
    tcase_add_test(tc, schema_lookup);
    suite_add_tcase(s, tc);
    tc = tcase_create("typed");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, get_bool_all_spellings);
    tcase_add_test(tc, get_integers_with_ranges);
    tcase_add_test(tc, get_sizes);
    tcase_add_test(tc, get_doubles);
    tcase_add_test(tc, get_enums);
    tcase_add_test(tc, get_lists_of_any_length);
    tcase_add_test(tc, get_list_errors_and_defaults);
    suite_add_tcase(s, tc);
    tc = tcase_create("precedence");
    tcase_add_test(tc, later_file_wins_and_failed_load_keeps_state);
    tcase_add_test(tc, profile_fallback_order);
    tcase_add_test(tc, profile_only_keys);
    tcase_add_test(tc, profile_value_beats_command_line_legacy_key);
    tcase_add_test(tc, several_objects_coexist);
    tcase_add_test(tc, options_size_checked);
    suite_add_tcase(s, tc);
    return s;
}
