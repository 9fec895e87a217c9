/* Issue 12 (libpersistent): what libderecho needs: a clear limit for
 * max_log_entry, thousands of logs with huge limits open at once, small
 * logs that take little disk.  Through <persistent/persistent.h> only. */
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

START_TEST(max_log_entry_limit_is_named)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.max_log_entry = (1ull << 32) + 1; /* what libconf may accept */
    struct persistent_log *log = NULL;
    struct persistent_error err;
    ck_assert_int_eq(persistent_log_open(&opts, "t", &log, &err), -EINVAL);
    ck_assert_ptr_null(log);
    ck_assert_msg(strstr(err.msg, "max_log_entry") &&
                      strstr(err.msg, "4294967296"),
                  "%s", err.msg);
    opts.max_log_entry = 1ull << 32; /* the limit itself is fine */
    opts.max_data_size = 1ull << 20;
    ck_assert_int_eq(persistent_log_open(&opts, "t", &log, &err), 0);
    persistent_log_close(log);
}
END_TEST

static uint64_t disk_bytes(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* PERSISTENT_MANY_LOGS logs (default 270, the stress tier 4000), each with
 * max_data_size 512 GiB and one small entry, open at once: more than the
 * 128 TiB of a process's address space would allow if each reserved its
 * limit. */
START_TEST(many_logs_with_huge_limits)
{
    const char *env = getenv("PERSISTENT_MANY_LOGS");
    int n = env ? atoi(env) : 270;
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < (rlim_t)(4 * n + 100) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log **logs = calloc((size_t)n, sizeof(*logs));
    ck_assert_ptr_nonnull(logs);
    int fds_before = th_count_fds();
    for (int i = 0; i < n; i++) {
        struct persistent_options opts;
        tc_options(&opts, dir);
        opts.max_data_size = 512ull << 30;
        char name[32];
        snprintf(name, sizeof(name), "f%d", i);
        struct persistent_error err;
        int e = persistent_log_open(&opts, name, &logs[i], &err);
        ck_assert_msg(e == 0, "log %d: %s (%s)", i, persistent_strerror(e),
                      err.msg);
        char v[32];
        int len = snprintf(v, sizeof(v), "value of %d", i);
        ck_assert_int_eq(persistent_log_append(logs[i], 1, 1, v, (size_t)len),
                         0);
        ck_assert_int_eq(persistent_log_persist(logs[i], 1), 0);
    }
    int fds = th_count_fds() - fds_before;
    ck_assert_msg(fds <= 4 * n, "%d fds for %d logs", fds, n);
    uint64_t most = 0;
    for (int i = 0; i < n; i++) {
        char p[600];
        snprintf(p, sizeof(p), "%s/f%d.log", dir, i);
        uint64_t b = disk_bytes(p);
        snprintf(p, sizeof(p), "%s/f%d.meta", dir, i);
        b += disk_bytes(p);
        most = b > most ? b : most;
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(logs[i], 1, &e), 0);
        char v[32];
        int len = snprintf(v, sizeof(v), "value of %d", i);
        ck_assert_uint_eq(e.size, (size_t)len);
        ck_assert_mem_eq(e.data, v, (size_t)len);
    }
    ck_assert_msg(most <= 64 * 1024,
                  "a log with one small entry uses %llu bytes of disk",
                  (unsigned long long)most);
    fprintf(stderr,
            "many logs: %d open (max_data_size 512 GiB), %.2f fds each, at "
            "most %llu bytes of disk each (both files)\n",
            n, (double)fds / n, (unsigned long long)most);
    for (int i = 0; i < n; i++)
        persistent_log_close(logs[i]);
    free(logs);
}
END_TEST

/* The window grows with the log: views taken before a growth stay valid
 * until the next trim, entries past the first window read back right,
 * and a reopen of a large log maps it whole. */
START_TEST(window_grows_and_views_survive)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "g");
    tc_fill(log, 12, 1, 10, 200);
    struct persistent_entry early;
    ck_assert_int_eq(persistent_log_get(log, 5, &early), 0);
    static uint8_t big[300000];
    for (int64_t v = 11; v <= 40; v++) {
        tc_payload(12, v, big, sizeof(big));
        ck_assert_int_eq(
            persistent_log_append(log, v, v * 10, big, sizeof(big)), 0);
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(log, v, &e), 0);
        ck_assert_mem_eq(e.data, big, sizeof(big));
    }
    /* 9 MB in: the first window (1 MiB) was outgrown several times. */
    ck_assert(tc_payload_ok(12, &early, 200));
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    ck_assert_int_eq(persistent_log_trim(log, 20), 0);
    persistent_log_close(log);
    log = tc_open(dir, "g");
    for (int64_t v = 20; v <= 40; v++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(log, v, &e), 0);
        tc_payload(12, v, big, sizeof(big));
        ck_assert_mem_eq(e.data, big, sizeof(big));
    }
    persistent_log_close(log);
}
END_TEST

Suite *tc_issue12_suite(void)
{
    Suite *s = suite_create("issue12");
    TCase *tc = tcase_create("issue12");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, max_log_entry_limit_is_named);
    tcase_add_test(tc, many_logs_with_huge_limits);
    tcase_add_test(tc, window_grows_and_views_survive);
    suite_add_tcase(s, tc);
    return s;
}
