/* derecho-config run as a process: stdout, stderr and exit codes of its
 * output contract (docs/conf.md). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct run {
    int status; /* exit code */
    char out[65536];
    char err[8192];
};

static char workdir[512];

static void read_all(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void write_text(const char *name, const char *text)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", workdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Where the tool's stdout goes: workdir/.stdout unless set. */
static const char *stdout_path;

/* Runs the tool in workdir with args (NULL-terminated, argv[0] excluded). */
static void run_tool(struct run *r, const char *const *args)
{
    const char *tool = getenv("DERECHO_CONFIG_TOOL");
    ck_assert_msg(tool != NULL, "DERECHO_CONFIG_TOOL not set");
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)tool;
    for (; args[n - 1]; n++) {
        ck_assert_int_lt(n, 31);
        argv[n] = (char *)args[n - 1];
    }
    argv[n] = NULL;
    char out[700], err[700];
    snprintf(out, sizeof(out), "%s/.stdout", workdir);
    snprintf(err, sizeof(err), "%s/.stderr", workdir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, stdout_path ? stdout_path : out,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    pid_t pid;
    ck_assert_int_eq(posix_spawn(&pid, tool, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "tool died (status %d)", st);
    r->status = WEXITSTATUS(st);
    if (stdout_path)
        r->out[0] = '\0';
    else
        read_all(out, r->out, sizeof(r->out));
    read_all(err, r->err, sizeof(r->err));
}

#define RUN(r, ...) run_tool((r), (const char *const[]){__VA_ARGS__, NULL})

/* Writes len bytes (NUL bytes included) into workdir/name. */
static void write_bytes(const char *name, const char *bytes, size_t len)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", workdir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void setup(void)
{
    ck_assert_int_eq(th_tmpdir(workdir, sizeof(workdir)), 0);
    ck_assert_int_eq(chdir(workdir), 0);
    unsetenv("DERECHO_CONF_FILE");
}

static struct run r; /* big: keep it off the stack */

START_TEST(get_prints_typed_values)
{
    write_text("a.cfg", "[DERECHO]\nblock_size = 64K\n"
                        "restart_leaders = a, b ,c\n"
                        "[PERS]\nreset = yes\n"
                        "[SUBGROUP/DEFAULT]\nwindow_size = 3\n");
    static const char *const cases[][2] = {
        {"DERECHO/local_id", "0\n"},
        {"DERECHO/block_size", "65536\n"},
        {"PERS/reset", "true\n"},
        {"PERS/file_path", ".plog\n"},
        {"DERECHO/rdmc_send_algorithm", "binomial_send\n"},
        {"DERECHO/restart_leaders", "a\nb\nc\n"},
        {"DERECHO/leader_gms_port", "23580\n"},
        {"SUBGROUP/LARGE/window_size", "3\n"},
        {"SUBGROUP/LARGE/block_size", "65536\n"},
        {"LAYOUT/json_layout", "\n"},
        {"LOGGER/default_log_level", "info\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        RUN(&r, "--file", "a.cfg", "--get", cases[i][0]);
        ck_assert_msg(r.status == 0, "%s: %d %s", cases[i][0], r.status, r.err);
        ck_assert_str_eq(r.out, cases[i][1]);
        ck_assert_str_eq(r.err, "");
    }
}
END_TEST

START_TEST(overrides_win_and_are_consumed)
{
    write_text("a.cfg", "[DERECHO]\nlocal_id = 1\n");
    RUN(&r, "--DERECHO/local_id=5", "--file", "a.cfg", "--get",
        "DERECHO/local_id");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "5\n");
    RUN(&r, "--file=a.cfg", "--DERECHO/local_id", "6",
        "--get=DERECHO/local_id");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "6\n");
    RUN(&r, "--SUBGROUP/BIG/window_size=9", "--", "--get",
        "SUBGROUP/BIG/window_size");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "9\n");
}
END_TEST

START_TEST(default_file_rules)
{
    write_text("derecho.cfg", "[DERECHO]\nlocal_id = 1\n");
    write_text("env.cfg", "[DERECHO]\nlocal_id = 2\n");
    RUN(&r, "--get", "DERECHO/local_id");
    ck_assert_str_eq(r.out, "1\n");
    setenv("DERECHO_CONF_FILE", "env.cfg", 1);
    RUN(&r, "--get", "DERECHO/local_id");
    ck_assert_str_eq(r.out, "2\n");
    setenv("DERECHO_CONF_FILE", "missing.cfg", 1);
    RUN(&r, "--check");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "missing.cfg: cannot open: No such file or "
                            "directory\n");
}
END_TEST

START_TEST(errors_name_file_line_and_key)
{
    write_text("bad.cfg", "[DERECHO]\n\nlocal_id = x\n");
    RUN(&r, "--file", "bad.cfg", "--check");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "bad.cfg:3: DERECHO/local_id: expected an "
                            "unsigned decimal integer, got \"x\"\n");
    write_text("dup.cfg", "[RDMA]\ntx_depth = 1\ntx_depth = 2\n");
    RUN(&r, "--file", "dup.cfg", "--dump");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "dup.cfg:3: RDMA/tx_depth: duplicate key (first "
                            "set at line 2)\n");
    RUN(&r, "--file", "none.cfg");
    ck_assert_int_eq(r.status, 2);
    RUN(&r, "--DERECHO/gms_port=0", "--check");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "command line: --DERECHO/gms_port=0: 0 is out of "
                            "range [1, 65535]\n");
    RUN(&r, "--DERECHO/gms_port");
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(
        strstr(r.err, "command line: --DERECHO/gms_port: missing value"));
    RUN(&r, "--get", "DERECHO/no_such_key");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err,
                     "command line: DERECHO/no_such_key: no such option\n");
}
END_TEST

START_TEST(warnings_fail_only_when_strict)
{
    write_text("w.cfg", "[DERECHO]\nfoo = 1\nleader_ip = 10.0.0.9\n");
    RUN(&r, "--file", "w.cfg", "--check");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err,
                     "w.cfg:2: DERECHO/foo: unknown key (kept, but nothing "
                     "uses it)\n"
                     "w.cfg:3: DERECHO/leader_ip: deprecated, use "
                     "contact_ip\n");
    RUN(&r, "--file", "w.cfg", "--get", "DERECHO/contact_ip");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "10.0.0.9\n");
    RUN(&r, "--strict", "--file", "w.cfg", "--check");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "w.cfg:2: DERECHO/foo: unknown key (kept, but "
                            "nothing uses it)\n");
    RUN(&r, "--DERECHO/rpc_port=1", "--check");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.err,
                     "command line: --DERECHO/rpc_port=1: obsolete, ignored\n");
    RUN(&r, "--strict", "--DERECHO/rpc_port=1", "--check");
    ck_assert_int_eq(r.status, 2);
}
END_TEST

START_TEST(usage_errors)
{
    static const char *const bad[][4] = {
        {"--bogus", NULL},
        {"--get", NULL},
        {"--get", "local_id", NULL},
        {"--dump", "--check", NULL},
        {"stray", NULL},
        {"--file", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        run_tool(&r, bad[i]);
        ck_assert_msg(r.status == 64, "%s: %d", bad[i][0], r.status);
        ck_assert_ptr_nonnull(strstr(r.err, "usage:"));
    }
    RUN(&r, "--help");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "usage:"));
}
END_TEST

START_TEST(dump_is_rereadable)
{
    write_text("a.cfg", "[DERECHO]\nlocal_id = 4\nblock_size = 2M\n"
                        "[LAYOUT]\njson_layout = \" x ; y \"\n"
                        "[SUBGROUP/LARGE]\nwindow_size = 8\n");
    RUN(&r, "--file", "a.cfg", "--PERS/reset=on", "--dump");
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "\nlocal_id = 4  ; source: a.cfg:2\n"));
    ck_assert_ptr_nonnull(
        strstr(r.out, "\nreset = on  ; source: command line\n"));
    ck_assert_ptr_nonnull(
        strstr(r.out, "\nsst_port = 27683  ; source: default\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "\n[SUBGROUP/LARGE]\nwindow_size = 8"));
    write_text("dump.cfg", r.out);
    static const char *const keys[][2] = {
        {"DERECHO/local_id", "4\n"},
        {"DERECHO/block_size", "2097152\n"},
        {"PERS/reset", "true\n"},
        {"LAYOUT/json_layout", " x ; y \n"},
        {"SUBGROUP/LARGE/window_size", "8\n"},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        RUN(&r, "--strict", "--file", "dump.cfg", "--get", keys[i][0]);
        ck_assert_msg(r.status == 0, "%s", r.err);
        ck_assert_str_eq(r.out, keys[i][1]);
    }
}
END_TEST

static char *read_source(const char *rel)
{
    const char *root = getenv("CONF_SOURCE_ROOT");
    ck_assert_ptr_nonnull(root);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    read_all(path, buf, 1 << 20);
    return buf;
}

START_TEST(sample_config_checks_strictly)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/derecho-sample.cfg",
             getenv("CONF_SOURCE_ROOT"));
    RUN(&r, "--strict", "--file", path, "--check");
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.err, "");
    ck_assert_str_eq(r.out, "");
}
END_TEST

/* docs/conf.md carries the option table exactly as --schema prints it. */
START_TEST(docs_table_matches_schema)
{
    RUN(&r, "--schema");
    ck_assert_int_eq(r.status, 0);
    char *doc = read_source("docs/conf.md");
    const char *begin = "<!-- options table: derecho-config --schema -->\n";
    const char *end = "<!-- end of options table -->";
    char *b = strstr(doc, begin);
    ck_assert_msg(b != NULL, "docs/conf.md lacks \"%s\"", begin);
    b += strlen(begin);
    char *e = strstr(b, end);
    ck_assert_ptr_nonnull(e);
    *e = '\0';
    ck_assert_msg(strcmp(b, r.out) == 0,
                  "docs/conf.md's table is stale: regenerate it with "
                  "derecho-config --schema");
    free(doc);
}
END_TEST

/* Files no configuration should be: each is a configuration error (2)
 * that names the file and, where there is one, the line. */
START_TEST(hostile_files)
{
    ck_assert_int_eq(mkdir("d.cfg", 0700), 0);
    RUN(&r, "--file", "d.cfg");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "d.cfg: cannot read: Is a directory\n");
    write_bytes("nul.cfg", "[DERECHO]\nlocal_id = 1\0\n", 24);
    RUN(&r, "--file", "nul.cfg", "--dump");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.out, "");
    ck_assert_str_eq(r.err, "nul.cfg:2: NUL byte in line\n");
    write_text("utf8.cfg", "[PERS]\nfile_path = \xc3\x28\n");
    RUN(&r, "--file", "utf8.cfg");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err,
                     "utf8.cfg:2: PERS/file_path: invalid UTF-8 in value\n");
    static char line[6000];
    memcpy(line, "[LAYOUT]\n", 9);
    memset(line + 9, 'k', 5000);
    memcpy(line + 5009, "=1\n", 4);
    write_text("long.cfg", line);
    RUN(&r, "--file", "long.cfg");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "long.cfg:2: line longer than 4096 bytes\n");
    /* 17 MiB (sparse): refused before it is parsed. */
    int fd = open("big.cfg", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, 17 << 20), 0);
    ck_assert_int_eq(close(fd), 0);
    RUN(&r, "--file", "big.cfg");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.err, "big.cfg: cannot read: larger than 16 MiB\n");
    RUN(&r, "--file", "");
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "cannot open"));
    write_text("empty.cfg", "");
    RUN(&r, "--file", "empty.cfg", "--get", "DERECHO/local_id");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "0\n");
}
END_TEST

/* Usage errors say which argument is wrong, never the program's path. */
START_TEST(usage_errors_name_the_argument)
{
    static const char *const cases[][3] = {
        {"-xy", "unknown option: -x\n"},
        {"-q", "unknown option: -q\n"},
        {"--bogus=1", "unknown option: --bogus=1\n"},
        {"--dump=yes", "unknown option: --dump=yes\n"},
        {"--file", "missing argument: --file\n"},
        {"--get", "missing argument: --get\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        RUN(&r, cases[i][0]);
        ck_assert_msg(r.status == 64, "%s: %d", cases[i][0], r.status);
        char first[256];
        snprintf(first, sizeof(first), "derecho-config: %s", cases[i][1]);
        ck_assert_msg(strncmp(r.err, first, strlen(first)) == 0, "%s: %s",
                      cases[i][0], r.err);
    }
}
END_TEST

/* An override never becomes the value of the one before it, and after
 * `--` an override is no override. */
START_TEST(override_is_never_a_value)
{
    RUN(&r, "--DERECHO/contact_ip", "--DERECHO/gms_port=5", "--get",
        "DERECHO/contact_ip");
    ck_assert_int_eq(r.status, 2);
    ck_assert_str_eq(r.out, "");
    ck_assert_ptr_nonnull(
        strstr(r.err, "command line: --DERECHO/contact_ip: missing value"));
    RUN(&r, "--", "--DERECHO/local_id=1", "--get", "DERECHO/local_id");
    ck_assert_int_eq(r.status, 64);
    ck_assert_str_eq(r.out, "");
    ck_assert_ptr_nonnull(strstr(r.err, "--DERECHO/local_id=1"));
    static char arg[6000];
    memcpy(arg, "--LAYOUT/json_layout=", 21);
    memset(arg + 21, 'j', 5000);
    RUN(&r, arg, "--check");
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "too long"));
    RUN(&r, "--LAYOUT/json_layout=a\xff", "--check");
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "UTF-8"));
}
END_TEST

/* Output that cannot be written (a full device) fails the run: every
 * action that prints checks it, not only --get and --dump. */
START_TEST(output_to_a_full_device)
{
    static const char *const actions[][3] = {
        {"--schema", NULL},
        {"--help", NULL},
        {"--dump", NULL},
        {"--get", "DERECHO/local_id", NULL}};
    stdout_path = "/dev/full";
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        run_tool(&r, actions[i]);
        ck_assert_msg(r.status == 2, "%s: %d", actions[i][0], r.status);
        ck_assert_msg(strstr(r.err, "No space left") != NULL, "%s: %s",
                      actions[i][0], r.err);
    }
    stdout_path = NULL;
}
END_TEST

static Suite *tool_suite(void)
{
    Suite *s = suite_create("derecho-config");
    TCase *tc = tcase_create("tool");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, get_prints_typed_values);
    tcase_add_test(tc, overrides_win_and_are_consumed);
    tcase_add_test(tc, default_file_rules);
    tcase_add_test(tc, errors_name_file_line_and_key);
    tcase_add_test(tc, warnings_fail_only_when_strict);
    tcase_add_test(tc, usage_errors);
    tcase_add_test(tc, dump_is_rereadable);
    tcase_add_test(tc, sample_config_checks_strictly);
    tcase_add_test(tc, docs_table_matches_schema);
    tcase_add_test(tc, hostile_files);
    tcase_add_test(tc, usage_errors_name_the_argument);
    tcase_add_test(tc, override_is_never_a_value);
    tcase_add_test(tc, output_to_a_full_device);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    static Suite *(*const suites[])(void) = {tool_suite, NULL};
    return th_main(argc, argv, suites, NULL);
}
