/* The API contract (docs/api.md) as it applies to libconf, and the
 * cross-option rules of the configuration (issue 12, "Config"). */
#include "test-conf.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#ifndef DERECHO_CONF_H
#error "<conf/conf.h> must be guarded by DERECHO_CONF_H"
#endif

/* The error struct leads with code, then msg, like every library's. */
_Static_assert(offsetof(struct conf_error, code) == 0, "code first");
_Static_assert(offsetof(struct conf_error, msg) == sizeof(int), "msg second");

static struct conf_options defaults(void)
{
    struct conf_options o;
    conf_options_init(&o);
    o.no_env = true;
    return o;
}

START_TEST(options_null_means_defaults)
{
    struct conf *c = NULL;
    struct conf_error err;
    ck_assert_int_eq(conf_new(NULL, &c, &err), 0);
    ck_assert_ptr_nonnull(c);
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "heartbeat_ms", &v), 0);
    ck_assert_uint_eq(v, 20);
    conf_destroy(c);
}
END_TEST

START_TEST(options_short_sizes)
{
    struct conf_options o = defaults();
    struct conf *c = NULL;
    struct conf_error err;
    /* The two older released layouts. */
    o.size = offsetof(struct conf_options, file);
    ck_assert_int_eq(conf_new(&o, &c, &err), 0);
    conf_destroy(c);
    o.size = offsetof(struct conf_options, no_env);
    ck_assert_int_eq(conf_new(&o, &c, &err), 0);
    conf_destroy(c);
    /* Shorter than the first layout, or cutting a field in two. */
    const size_t bad[] = {0, 4, offsetof(struct conf_options, file) - 1,
                          offsetof(struct conf_options, file) + 4};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.size = bad[i];
        c = (struct conf *)&o;
        memset(&err, 0, sizeof err);
        ck_assert_int_eq(conf_new(&o, &c, &err), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_int_eq(err.code, -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "size"));
    }
}
END_TEST

START_TEST(options_long_and_zeroed)
{
    struct {
        struct conf_options o;
        unsigned char future[32];
    } longer;
    memset(&longer, 0, sizeof longer);
    longer.o = defaults();
    longer.o.size = sizeof longer;
    struct conf *c = NULL;
    struct conf_error err;
    ck_assert_int_eq(conf_new(&longer.o, &c, &err), 0); /* zero tail */
    conf_destroy(c);
    longer.future[31] = 1;
    ck_assert_int_eq(conf_new(&longer.o, &c, &err), -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, -EINVAL);
    /* A zeroed struct (never initialised): size 0 is refused. */
    struct conf_options zero;
    memset(&zero, 0, sizeof zero);
    ck_assert_int_eq(conf_new(&zero, &c, &err), -EINVAL);
    ck_assert_ptr_null(c);
    /* The old constructor follows the same rule. */
    ck_assert_int_eq(conf_create(&c, &zero), -EINVAL);
    ck_assert_int_eq(conf_create(&c, &longer.o), -EINVAL);
}
END_TEST

START_TEST(null_out)
{
    struct conf_error err;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(conf_new(NULL, NULL, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_str_ne(err.msg, "");
    ck_assert_int_eq(conf_new(NULL, NULL, NULL), -EINVAL);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(conf_startup(NULL, NULL, NULL, NULL, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    struct conf *c = new_conf(NULL, false);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", NULL), -EINVAL);
    ck_assert_int_eq(conf_dump(c, NULL, NULL), -EINVAL);
    conf_destroy(c);
}
END_TEST

START_TEST(error_code_set_on_failure_kept_on_success)
{
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    memset(&err, 0, sizeof err);
    const char *bad = "[DERECHO]\nlocal_id = x\n";
    ck_assert_int_eq(conf_load_buffer(c, "b", bad, strlen(bad), &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_int_eq(err.line, 2);
    /* A failure without a more precise text still gets code and msg. */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(conf_load_file(c, "/nonexistent/derecho.cfg", &err),
                     -ENOENT);
    ck_assert_int_eq(err.code, -ENOENT);
    ck_assert_str_ne(err.msg, "");
    /* Success leaves err as it was. */
    err.code = -123;
    const char *good = "[DERECHO]\nlocal_id = 3\n";
    ck_assert_int_eq(conf_load_buffer(c, "g", good, strlen(good), &err), 0);
    ck_assert_int_eq(err.code, -123);
    conf_destroy(c);
}
END_TEST

static const int codes[] = {ENOENT, EACCES, EISDIR, EFBIG,  EBADMSG,
                            EINVAL, ERANGE, EEXIST, ENOMEM, EIO};

START_TEST(strerror_any_sign)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        ck_assert_str_eq(conf_strerror(codes[i]), conf_strerror(-codes[i]));
        ck_assert_ptr_null(strstr(conf_strerror(codes[i]), "unknown"));
    }
    const int others[] = {ETIMEDOUT, EMFILE, ENAMETOOLONG, ECONNRESET};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        ck_assert_str_eq(conf_strerror(others[i]), strerrordesc_np(others[i]));
        ck_assert_str_eq(conf_strerror(-others[i]), strerrordesc_np(others[i]));
    }
    ck_assert_str_eq(conf_strerror(0), "success");
    ck_assert_ptr_nonnull(conf_strerror(INT_MIN));
}
END_TEST

START_TEST(getters_on_null)
{
    uint64_t v = 77;
    ck_assert_int_eq(conf_get_u64(NULL, "DERECHO", "local_id", &v), -EINVAL);
    ck_assert_uint_eq(v, 77); /* untouched */
    const char *s = "keep";
    ck_assert_int_eq(conf_get_string(NULL, "DERECHO", "local_ip", &s), -EINVAL);
    ck_assert_str_eq(s, "keep");
    ck_assert_ptr_null(conf_schema_get(conf_schema_count()));
    ck_assert_ptr_null(conf_schema_find(NULL, "x"));
    ck_assert_ptr_null(conf_schema_find("DERECHO", NULL));
    ck_assert_str_eq(conf_type_name((enum conf_type)99), "unknown");
    ck_assert_int_eq(conf_dump(NULL, NULL, NULL), -EINVAL);
}
END_TEST

/* The default logger writes "conf: LEVEL: message" on stderr. */
START_TEST(default_log_line)
{
    char dir[512], path[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof dir), 0);
    snprintf(path, sizeof path, "%s/stderr", dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *f = freopen(path, "w", stderr);
    ck_assert_ptr_nonnull(f);
    struct conf *c = NULL;
    struct conf_options o = defaults();
    ck_assert_int_eq(conf_new(&o, &c, NULL), 0);
    const char *text = "[DERECHO]\nbogus_key = 1\n";
    ck_assert_int_eq(conf_load_buffer(c, "t.cfg", text, strlen(text), NULL), 0);
    conf_destroy(c);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    FILE *r = fopen(path, "r");
    ck_assert_ptr_nonnull(r);
    char line[1024] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, r));
    fclose(r);
    ck_assert_msg(strncmp(line, "conf: warning: ", 15) == 0, "got: %s", line);
    ck_assert_ptr_nonnull(strstr(line, "bogus_key"));
}
END_TEST

/* A log callback may call back into the library on the same object. */
struct reader {
    struct conf *c;
    int reads;
};

static void log_reads_back(void *ctx, int level, const char *module,
                           const char *msg)
{
    (void)level;
    (void)module;
    (void)msg;
    struct reader *r = ctx;
    uint64_t v;
    char *dump = NULL;
    if (r->c && conf_get_u64(r->c, "DERECHO", "heartbeat_ms", &v) == 0 &&
        conf_dump(r->c, &dump, NULL) == 0)
        r->reads++;
    free(dump);
}

START_TEST(callback_calls_back)
{
    struct reader r = {NULL, 0};
    struct conf_options o = defaults();
    o.log = log_reads_back;
    o.log_ctx = &r;
    ck_assert_int_eq(conf_new(&o, &r.c, NULL), 0);
    const char *text = "[DERECHO]\nunknown_one = 1\n";
    ck_assert_int_eq(conf_load_buffer(r.c, "t.cfg", text, strlen(text), NULL),
                     0);
    ck_assert_int_eq(r.reads, 1);
    conf_destroy(r.c);
}
END_TEST

START_TEST(suspicion_at_least_three_heartbeats)
{
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    uint64_t v;
    /* The defaults pass: 100 >= 3 x 20. */
    const char *bad = "[DERECHO]\nheartbeat_ms = 50\n";
    ck_assert_int_eq(conf_load_buffer(c, "f.cfg", bad, strlen(bad), &err),
                     -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_str_eq(err.file, "f.cfg");
    ck_assert_int_eq(err.line, 2);
    ck_assert_str_eq(err.key, "heartbeat_ms");
    ck_assert_ptr_nonnull(strstr(err.msg, "3 heartbeats"));
    /* Nothing changed. */
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "heartbeat_ms", &v), 0);
    ck_assert_uint_eq(v, 20);
    /* Exactly three heartbeats is fine. */
    const char *ok = "[DERECHO]\nheartbeat_ms = 30\nsst_poll_cq_timeout_ms = "
                     "90\n";
    ck_assert_int_eq(conf_load_buffer(c, "g.cfg", ok, strlen(ok), &err), 0);
    /* On the command line too; argv unchanged on failure. */
    struct args a;
    args_init(&a, (const char *const[]){
                      "app", "--DERECHO/sst_poll_cq_timeout_ms=89", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), -EINVAL);
    ck_assert_int_eq(a.argc, 2);
    ck_assert_str_eq(err.arg, "--DERECHO/sst_poll_cq_timeout_ms=89");
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "sst_poll_cq_timeout_ms", &v),
                     0);
    ck_assert_uint_eq(v, 90);
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

/* RDMA/cq_data_limit (fab_options.cq_data_limit): 0, 4 or 8 only, with
 * file:line or the argument; a failed load changes nothing. */
START_TEST(cq_data_limit_values)
{
    struct conf *c = new_conf(NULL, true);
    struct conf_error err;
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "RDMA", "cq_data_limit", &v), 0);
    ck_assert_uint_eq(v, 0);
    static const char *const bad[] = {"1", "3", "5", "7"};
    for (size_t i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof(text), "[RDMA]\n\ncq_data_limit = %s\n", bad[i]);
        ck_assert_int_eq(conf_load_buffer(c, "f.cfg", text, strlen(text), &err),
                         -EINVAL);
        ck_assert_str_eq(err.file, "f.cfg");
        ck_assert_int_eq(err.line, 3);
        ck_assert_str_eq(err.key, "cq_data_limit");
        ck_assert_ptr_nonnull(strstr(err.msg, "expected 0"));
    }
    const char *over = "[RDMA]\ncq_data_limit = 16\n";
    ck_assert_int_eq(conf_load_buffer(c, "f.cfg", over, strlen(over), &err),
                     -ERANGE);
    ck_assert_int_eq(conf_get_u64(c, "RDMA", "cq_data_limit", &v), 0);
    ck_assert_uint_eq(v, 0);
    const char *four = "[RDMA]\ncq_data_limit = 4\n";
    ck_assert_int_eq(conf_load_buffer(c, "f.cfg", four, strlen(four), &err), 0);
    struct args a;
    args_init(&a, (const char *const[]){"app", "--RDMA/cq_data_limit=2", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), -EINVAL);
    ck_assert_str_eq(err.arg, "--RDMA/cq_data_limit=2");
    args_fini(&a);
    args_init(&a, (const char *const[]){"app", "--RDMA/cq_data_limit=8", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), 0);
    args_fini(&a);
    ck_assert_int_eq(conf_get_u64(c, "RDMA", "cq_data_limit", &v), 0);
    ck_assert_uint_eq(v, 8);
    conf_destroy(c);
}
END_TEST

START_TEST(defaults_agree_with_the_libraries)
{
    struct conf *c = new_conf(NULL, false);
    uint64_t v;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "sst_port", &v), 0);
    ck_assert_uint_lt(v, 32768); /* below Linux's ephemeral range */
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "rdmc_timeout_ms", &v), 0);
    ck_assert_uint_eq(v, 10000);
    /* The original's sst_port is still accepted. */
    const char *old = "[DERECHO]\nsst_port = 37683\n";
    ck_assert_int_eq(conf_load_buffer(c, "o", old, strlen(old), NULL), 0);
    /* PERS/max_log_entry: libpersistent's range, 1 .. 2^32. */
    struct conf_error err;
    const char *max = "[PERS]\nmax_log_entry = 4294967296\n";
    ck_assert_int_eq(conf_load_buffer(c, "m", max, strlen(max), &err), 0);
    const char *over = "[PERS]\nmax_log_entry = 4294967297\n";
    ck_assert_int_eq(conf_load_buffer(c, "m", over, strlen(over), &err),
                     -ERANGE);
    ck_assert_int_eq(err.code, -ERANGE);
    ck_assert_str_eq(err.key, "max_log_entry");
    conf_destroy(c);
}
END_TEST

Suite *contract_suite(void)
{
    Suite *s = suite_create("conf-contract");
    TCase *tc = tcase_create("contract");
    tcase_add_test(tc, options_null_means_defaults);
    tcase_add_test(tc, options_short_sizes);
    tcase_add_test(tc, options_long_and_zeroed);
    tcase_add_test(tc, null_out);
    tcase_add_test(tc, error_code_set_on_failure_kept_on_success);
    tcase_add_test(tc, strerror_any_sign);
    tcase_add_test(tc, getters_on_null);
    tcase_add_test(tc, default_log_line);
    tcase_add_test(tc, callback_calls_back);
    tcase_add_test(tc, suspicion_at_least_three_heartbeats);
    tcase_add_test(tc, defaults_agree_with_the_libraries);
    tcase_add_test(tc, cq_data_limit_values);
    suite_add_tcase(s, tc);
    return s;
}
