/* Faults: a full disk (a size-limited tmpfs in a private mount namespace
 * when we may mount, and RLIMIT_FSIZE always).  The scenario runs in a
 * spawned child so the namespace and the limit die with it. */
#include "test-common.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEED 9
#define ENTRY 10000
#define SKIPPED 77

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "enospc child: " __VA_ARGS__);                         \
        fprintf(stderr, "\n");                                                 \
        return 1;                                                              \
    } while (0)

static int append_one(struct persistent_log *log, int64_t v, uint8_t *buf)
{
    tc_payload(SEED, v, buf, ENTRY);
    return persistent_log_append(log, v, v, buf, ENTRY);
}

static int verify(struct persistent_log *log, int64_t first, int64_t last,
                  uint8_t *buf)
{
    for (int64_t v = first; v <= last; v++) {
        struct persistent_entry e;
        if (persistent_log_get(log, v, &e) != 0 || e.size != ENTRY)
            return -1;
        tc_payload(SEED, v, buf, ENTRY);
        if (memcmp(buf, e.data, ENTRY) != 0)
            return -1;
    }
    return 0;
}

static struct persistent_log *open_in(const char *dir)
{
    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = dir;
    opts.max_data_size = 1ull << 30;
    opts.log_level = 3;
    struct persistent_log *log = NULL;
    return persistent_log_open(&opts, "full", &log, NULL) == 0 ? log : NULL;
}

/* argv = {name, dir, "tmpfs"|"rlimit"}. */
int tc_enospc_child(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *dir = argv[1];
    bool tmpfs = strcmp(argv[2], "tmpfs") == 0;
    int expect;
    if (tmpfs) {
        if (unshare(CLONE_NEWNS) != 0)
            return SKIPPED;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
            mount("tmpfs", dir, "tmpfs", 0, "size=512k") != 0)
            return SKIPPED;
        expect = -ENOSPC;
    } else {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {512 * 1024, 512 * 1024};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0)
            FAIL("setrlimit: %s", strerror(errno));
        expect = -EFBIG;
    }
    uint8_t *buf = malloc(ENTRY);
    struct persistent_log *log = open_in(dir);
    if (!log || !buf)
        FAIL("open");
    int64_t v = 1;
    int e;
    while ((e = append_one(log, v, buf)) == 0)
        v++;
    int64_t n = v - 1;
    if (e != expect)
        FAIL("append %lld: %s, expected %s", (long long)v,
             persistent_strerror(e), persistent_strerror(expect));
    if (n < 10)
        FAIL("only %lld entries fit", (long long)n);
    uint64_t size = persistent_log_data_size(log);
    if (append_one(log, v, buf) != expect ||
        persistent_log_count(log) != (uint64_t)n ||
        persistent_log_last_version(log) != n ||
        persistent_log_data_size(log) != size)
        FAIL("a failed append changed the log");
    if (persistent_log_persist(log, n) != 0)
        FAIL("persist after a full disk");
    if (verify(log, 1, n, buf) != 0)
        FAIL("entries lost after a full disk");
    persistent_log_close(log);
    log = open_in(dir);
    if (!log || persistent_log_count(log) != (uint64_t)n ||
        verify(log, 1, n, buf) != 0)
        FAIL("entries lost across reopen");
    /* Make room: trimming gives blocks back (tmpfs); under a file-size
     * limit only a truncate shortens the file. */
    e = tmpfs ? persistent_log_trim(log, n / 2 + 1)
              : persistent_log_truncate(log, n / 2);
    if (e)
        FAIL("trim/truncate on a full disk: %s", persistent_strerror(e));
    int64_t first = tmpfs ? n / 2 + 1 : 1;
    int64_t last = tmpfs ? n : n / 2;
    for (int i = 0; i < (int)(n / 4); i++) {
        e = append_one(log, last + 1, buf);
        if (e)
            FAIL("append after making room: %s", persistent_strerror(e));
        last++;
    }
    if (persistent_log_persist(log, last) != 0)
        FAIL("persist");
    persistent_log_close(log);
    log = open_in(dir);
    if (!log || persistent_log_first_version(log) != first ||
        persistent_log_last_version(log) != last ||
        verify(log, first, last, buf) != 0)
        FAIL("wrong log after reopen");
    persistent_log_close(log);
    free(buf);
    return 0;
}

static int run_child(const char *mode)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct th_procs procs;
    th_procs_init(&procs);
    const char *args[] = {dir, mode, NULL};
    int i = th_spawn_child(&procs, "enospc", args);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(th_wait_all(&procs, 60000), 0);
    ck_assert_msg(WIFEXITED(procs.status[i]), "child died: status %d",
                  procs.status[i]);
    return WEXITSTATUS(procs.status[i]);
}

START_TEST(disk_full_tmpfs)
{
    int status = run_child("tmpfs");
    if (status == SKIPPED) {
        fprintf(stderr, "disk_full_tmpfs: cannot mount a tmpfs here "
                        "(not root?), covered by RLIMIT_FSIZE only\n");
        return;
    }
    ck_assert_int_eq(status, 0);
}
END_TEST

START_TEST(disk_full_rlimit)
{
    ck_assert_int_eq(run_child("rlimit"), 0);
}
END_TEST

Suite *tc_faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("faults");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, disk_full_tmpfs);
    tcase_add_test(tc, disk_full_rlimit);
    suite_add_tcase(s, tc);
    return s;
}
