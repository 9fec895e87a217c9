/* Command-line overrides, conf_open's file rules and the precedence of
 * defaults < files < command line. */
#include "test-conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t u64(struct conf *c, const char *section, const char *key)
{
    uint64_t v = 0;
    ck_assert_int_eq(conf_get_u64(c, section, key, &v), 0);
    return v;
}

START_TEST(overrides_consumed_rest_kept_in_order)
{
    struct conf *c = new_conf(NULL, true);
    struct args a;
    args_init(&a, (const char *const[]){"app", "first", "--DERECHO/local_id=3",
                                        "-v", "--RDMA/provider", "verbs",
                                        "--SUBGROUP/LARGE/window_size=8",
                                        "--PERS/file_path=/a=b", "--",
                                        "--DERECHO/local_id=9", "last", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    ck_assert_int_eq(a.argc, 5);
    ck_assert_str_eq(a.argv[0], "app");
    ck_assert_str_eq(a.argv[1], "first");
    ck_assert_str_eq(a.argv[2], "-v");
    ck_assert_str_eq(a.argv[3], "--DERECHO/local_id=9");
    ck_assert_str_eq(a.argv[4], "last");
    ck_assert_ptr_null(a.argv[5]);
    ck_assert_uint_eq(u64(c, "DERECHO", "local_id"), 3);
    ck_assert_uint_eq(u64(c, "SUBGROUP/LARGE", "window_size"), 8);
    const char *s;
    ck_assert_int_eq(conf_get_string(c, "RDMA", "provider", &s), 0);
    ck_assert_str_eq(s, "verbs");
    ck_assert_int_eq(conf_get_string(c, "PERS", "file_path", &s), 0);
    ck_assert_str_eq(s, "/a=b");
    enum conf_source src;
    ck_assert_int_eq(
        conf_get_source(c, "DERECHO", "local_id", &src, NULL, NULL), 0);
    ck_assert_int_eq(src, CONF_SOURCE_COMMAND_LINE);
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

START_TEST(no_overrides_and_option_lookalikes)
{
    struct conf *c = new_conf(NULL, true);
    struct args a;
    args_init(&a, (const char *const[]){"app", "--file=/etc/x.cfg", "--get",
                                        "DERECHO/local_id", "-x/y", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    ck_assert_int_eq(a.argc, 5);
    ck_assert_str_eq(a.argv[1], "--file=/etc/x.cfg");
    ck_assert_str_eq(a.argv[3], "DERECHO/local_id");
    args_fini(&a);
    args_init(&a, (const char *const[]){"app", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    ck_assert_int_eq(a.argc, 1);
    args_fini(&a);
    args_init(&a, (const char *const[]){"app", "--", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    ck_assert_int_eq(a.argc, 1);
    ck_assert_ptr_null(a.argv[1]);
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

/* Runs conf_parse_args expecting an error about arg; argv stays as it was
 * and nothing is applied. */
static void expect_arg_error(bool strict, const char *const *src, int want_rc,
                             const char *arg, const char *msg_part)
{
    struct log_capture cap;
    struct conf *c = new_conf(&cap, strict);
    struct args a;
    args_init(&a, src);
    int argc = a.argc;
    struct conf_error err;
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), want_rc);
    ck_assert_int_eq(a.argc, argc);
    for (int i = 0; i < argc; i++)
        ck_assert_ptr_eq(a.argv[i], a.orig[i]);
    ck_assert_str_eq(err.arg, arg);
    ck_assert_str_eq(err.file, "");
    ck_assert_int_eq(err.line, 0);
    ck_assert_msg(strstr(err.msg, msg_part), "\"%s\" lacks \"%s\"", err.msg,
                  msg_part);
    char line[1200], want[1200];
    conf_error_format(&err, line, sizeof(line));
    snprintf(want, sizeof(want), "command line: %s: ", arg);
    ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "%s", line);
    enum conf_source s;
    ck_assert_int_eq(conf_get_source(c, "DERECHO", "local_id", &s, NULL, NULL),
                     0);
    ck_assert_int_eq(s, CONF_SOURCE_DEFAULT);
    args_fini(&a);
    conf_destroy(c);
}

START_TEST(override_errors)
{
    expect_arg_error(true,
                     (const char *const[]){"app", "--DERECHO/local_id=1",
                                           "--DERECHO/gms_port", NULL},
                     -EINVAL, "--DERECHO/gms_port", "missing value");
    expect_arg_error(true,
                     (const char *const[]){"app", "--DERECHO/local_id=1",
                                           "--DERECHO/gms_port", "--", "x",
                                           NULL},
                     -EINVAL, "--DERECHO/gms_port", "missing value");
    expect_arg_error(true, (const char *const[]){"app", "--NOPE/x=1", NULL},
                     -EINVAL, "--NOPE/x=1", "unknown section");
    expect_arg_error(true,
                     (const char *const[]){"app", "--DERECHO/local_id=1",
                                           "--DERECHO/gms_port=x", NULL},
                     -EINVAL, "--DERECHO/gms_port=x", "unsigned");
    expect_arg_error(true,
                     (const char *const[]){"app", "--DERECHO/local_id=1",
                                           "--DERECHO/gms_port=65536", NULL},
                     -ERANGE, "--DERECHO/gms_port=65536", "out of range");
    expect_arg_error(true,
                     (const char *const[]){"app", "--DERECHO/local_id=1",
                                           "--DERECHO/bogus=1", NULL},
                     -EINVAL, "--DERECHO/bogus=1", "unknown key");
    expect_arg_error(true, (const char *const[]){"app", "--DERECHO/=1", NULL},
                     -EINVAL, "--DERECHO/=1", "malformed");
    expect_arg_error(true, (const char *const[]){"app", "--/x=1", NULL},
                     -EINVAL, "--/x=1", "malformed");
    expect_arg_error(
        true, (const char *const[]){"app", "--PERS/file_path= a\"b", NULL},
        -EINVAL, "--PERS/file_path= a\"b", "could not be written");
    expect_arg_error(
        true, (const char *const[]){"app", "--PERS/file_path=a\nb", NULL},
        -EINVAL, "--PERS/file_path=a\nb", "control character");
    expect_arg_error(
        true, (const char *const[]){"app", "--PERS/file_path=\xff", NULL},
        -EINVAL, "--PERS/file_path=\xff", "UTF-8");
    expect_arg_error(false,
                     (const char *const[]){"app", "--DERECHO/leader_ip=a",
                                           "--DERECHO/contact_ip=b", NULL},
                     -EINVAL, "--DERECHO/contact_ip=b", "conflicts");
}
END_TEST

START_TEST(override_repeated_later_wins)
{
    struct log_capture cap;
    struct conf *c = new_conf(&cap, false);
    struct args a;
    args_init(&a, (const char *const[]){
                      "app", "--DERECHO/local_id=1", "--DERECHO/local_id", "2",
                      "--DERECHO/ratio=x", "--DERECHO/rpc_port=1", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    ck_assert_int_eq(a.argc, 1);
    ck_assert_uint_eq(u64(c, "DERECHO", "local_id"), 2);
    ck_assert_int_eq(cap.warnings, 2);
    ck_assert_str_eq(cap.last, "command line: --DERECHO/rpc_port=1: "
                               "obsolete, ignored");
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

START_TEST(command_line_beats_files_in_any_order)
{
    struct conf *c = new_conf(NULL, false);
    struct args a;
    args_init(&a, (const char *const[]){"app", "--DERECHO/local_id=7", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, NULL), 0);
    const char *text = "[DERECHO]\nlocal_id = 5\ngms_port = 5000\n";
    ck_assert_int_eq(conf_load_buffer(c, "f", text, strlen(text), NULL), 0);
    ck_assert_uint_eq(u64(c, "DERECHO", "local_id"), 7);
    ck_assert_uint_eq(u64(c, "DERECHO", "gms_port"), 5000);
    ck_assert_uint_eq(u64(c, "DERECHO", "sst_port"), 27683);
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

/* conf_open in a fresh working directory with the environment given. */
struct open_case {
    const char *env;    /* DERECHO_CONF_FILE or NULL */
    bool cwd_file;      /* write ./derecho.cfg (local_id = 1) */
    bool explicit_file; /* opts.file = dir/explicit.cfg (local_id = 3) */
    int want_rc;
    uint64_t want_local_id;
};

static void run_open_case(const struct open_case *oc)
{
    char dir[512], path[700], envpath[700];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chdir(dir), 0);
    if (oc->cwd_file)
        write_file(dir, "derecho.cfg", "[DERECHO]\nlocal_id = 1\n", path,
                   sizeof(path));
    write_file(dir, "env.cfg", "[DERECHO]\nlocal_id = 2\n", path, sizeof(path));
    write_file(dir, "explicit.cfg", "[DERECHO]\nlocal_id = 3\n", path,
               sizeof(path));
    if (oc->env) {
        snprintf(envpath, sizeof(envpath), "%s/%s", dir, oc->env);
        setenv(CONF_FILE_ENV, envpath, 1);
    } else {
        unsetenv(CONF_FILE_ENV);
    }
    struct conf_options opts;
    conf_options_init(&opts);
    if (oc->explicit_file)
        opts.file = path;
    struct conf *c = (struct conf *)&opts;
    struct conf_error err;
    int rc = conf_open(&c, &opts, NULL, NULL, &err);
    ck_assert_msg(rc == oc->want_rc, "rc %d: %s", rc, err.msg);
    if (rc != 0) {
        ck_assert_ptr_null(c);
        ck_assert_str_eq(err.file, envpath);
        return;
    }
    ck_assert_uint_eq(u64(c, "DERECHO", "local_id"), oc->want_local_id);
    conf_destroy(c);
}

START_TEST(open_file_rules)
{
    static const struct open_case cases[] = {
        {NULL, false, false, 0, 0},               /* nothing: defaults */
        {NULL, true, false, 0, 1},                /* ./derecho.cfg */
        {"env.cfg", true, false, 0, 2},           /* env beats ./derecho.cfg */
        {"env.cfg", true, true, 0, 3},            /* explicit beats env */
        {"missing.cfg", true, false, -ENOENT, 0}, /* missing env file */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_open_case(&cases[i]);
}
END_TEST

START_TEST(open_missing_explicit_file_and_args)
{
    char dir[512], path[700];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/none.cfg", dir);
    struct conf_options opts;
    conf_options_init(&opts);
    opts.file = path;
    struct conf *c;
    struct conf_error err;
    struct args a;
    args_init(&a,
              (const char *const[]){"app", "--DERECHO/local_id=4", "x", NULL});
    ck_assert_int_eq(conf_open(&c, &opts, &a.argc, a.argv, &err), -ENOENT);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err.file, path);
    ck_assert_int_eq(a.argc, 3); /* untouched */
    /* An empty environment variable means "not set". */
    ck_assert_int_eq(chdir(dir), 0);
    setenv(CONF_FILE_ENV, "", 1);
    write_file(dir, "derecho.cfg", "[DERECHO]\nlocal_id = 1\ngms_port = 9\n",
               path, sizeof(path));
    opts.file = NULL;
    ck_assert_int_eq(conf_open(&c, &opts, &a.argc, a.argv, &err), 0);
    ck_assert_int_eq(a.argc, 2);
    ck_assert_str_eq(a.argv[1], "x");
    ck_assert_uint_eq(u64(c, "DERECHO", "local_id"), 4);
    ck_assert_uint_eq(u64(c, "DERECHO", "gms_port"), 9);
    conf_destroy(c);
    /* no_env ignores the variable */
    setenv(CONF_FILE_ENV, "/nonexistent/derecho.cfg", 1);
    opts.no_env = true;
    ck_assert_int_eq(conf_open(&c, &opts, NULL, NULL, &err), 0);
    ck_assert_uint_eq(u64(c, "DERECHO", "gms_port"), 9);
    conf_destroy(c);
    args_fini(&a);
}
END_TEST

Suite *args_suite(void)
{
    Suite *s = suite_create("args");
    TCase *tc = tcase_create("overrides");
    tcase_add_test(tc, overrides_consumed_rest_kept_in_order);
    tcase_add_test(tc, no_overrides_and_option_lookalikes);
    tcase_add_test(tc, override_errors);
    tcase_add_test(tc, override_repeated_later_wins);
    tcase_add_test(tc, command_line_beats_files_in_any_order);
    suite_add_tcase(s, tc);
    tc = tcase_create("open");
    tcase_add_test(tc, open_file_rules);
    tcase_add_test(tc, open_missing_explicit_file_and_args);
    suite_add_tcase(s, tc);
    return s;
}
