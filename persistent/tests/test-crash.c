/* Crash: a child appends, persists and trims in a loop and reports each
 * persisted version on a pipe; the parent kill -9s it at seeded random
 * points, reopens the log and checks that every reported version is there
 * byte for byte and that whatever lies beyond is a valid prefix of what
 * was appended.  PERSISTENT_CRASH_ROUNDS sets the rounds (default 3; the
 * stress suite runs 50), PERSISTENT_CRASH_SEED the seed (default: time). */
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define SEED 3
#define MAXP (1 << 21) /* now and then a large entry: kills land mid-write */
#define STEP 3         /* versions are multiples of STEP */
#define TRIM_EVERY 400 /* entries; keeps the last KEEP */
#define KEEP 300

/* Child: argv = {name, dir, pipe fd}. */
int tc_crash_child(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int fd = atoi(argv[2]);
    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = argv[1];
    opts.max_data_size = 1ull << 30;
    struct persistent_log *log = NULL;
    struct persistent_error err;
    int e = persistent_log_open(&opts, "crash", &log, &err);
    if (e) {
        fprintf(stderr, "crash child: open: %s (%s at %llu: %s)\n",
                persistent_strerror(e), err.file,
                (unsigned long long)err.offset, err.msg);
        return 3;
    }
    int64_t v = persistent_log_last_version(log);
    if (v < 0)
        v = 0;
    uint8_t *buf = malloc(MAXP);
    unsigned x = (unsigned)getpid();
    for (int i = 0; i < 2000000; i++) {
        v += STEP;
        size_t size = tc_payload_size(SEED, v, MAXP);
        tc_payload(SEED, v, buf, size);
        e = persistent_log_append(log, v, v * 10, buf, size);
        if (e) {
            fprintf(stderr, "crash child: append: %s\n",
                    persistent_strerror(e));
            return 4;
        }
        x = x * 1103515245 + 12345;
        if ((x >> 16) % 4 == 0) {
            e = persistent_log_persist(log, v);
            if (e)
                return 5;
            int64_t p = persistent_log_latest_persisted(log);
            if (write(fd, &p, sizeof(p)) != sizeof(p))
                return 6;
        }
        if ((v / STEP) % TRIM_EVERY == 0) {
            e = persistent_log_trim(log, v - KEEP * STEP);
            if (e)
                return 7;
        }
    }
    persistent_log_close(log);
    free(buf);
    return 0;
}

static int torn_tails;

static void check_log(const char *dir, const int64_t *reported, size_t n,
                      int round)
{
    struct persistent_log *log = tc_open(dir, "crash");
    bool torn = strstr(tc_last_log(), "torn tail") != NULL;
    torn_tails += torn;
    int64_t first = persistent_log_first_version(log);
    int64_t last = persistent_log_last_version(log);
    int64_t max_reported = -1;
    for (size_t i = 0; i < n; i++)
        max_reported = reported[i] > max_reported ? reported[i] : max_reported;
    ck_assert_msg(last >= max_reported,
                  "round %d: last %lld < reported persisted %lld", round,
                  (long long)last, (long long)max_reported);
    ck_assert_int_eq(persistent_log_latest_persisted(log), last);
    /* A trim keeps the KEEP entries behind the one just appended, and a
     * kill -9 loses nothing that was written: never fewer entries remain. */
    int64_t total = last / STEP;
    uint64_t at_least = total < KEEP + 1 ? (uint64_t)total : KEEP + 1;
    ck_assert_msg(persistent_log_count(log) >= at_least,
                  "round %d: %llu entries left of %lld", round,
                  (unsigned long long)persistent_log_count(log),
                  (long long)total);
    for (size_t i = 0; i < n; i++) {
        if (reported[i] < first)
            continue; /* trimmed since */
        struct persistent_entry e;
        ck_assert_msg(persistent_log_get(log, reported[i], &e) == 0,
                      "round %d: persisted %lld missing", round,
                      (long long)reported[i]);
    }
    /* Consecutive versions from first to last, each byte-exact. */
    uint64_t count = persistent_log_count(log);
    if (count > 0)
        ck_assert_int_eq(count, (uint64_t)((last - first) / STEP + 1));
    for (int64_t v = first; count > 0 && v <= last; v += STEP) {
        struct persistent_entry e;
        ck_assert_msg(persistent_log_get(log, v, &e) == 0,
                      "round %d: gap at %lld", round, (long long)v);
        ck_assert_int_eq(e.timestamp_ns, v * 10);
        ck_assert_msg(tc_payload_ok(SEED, &e, MAXP),
                      "round %d: payload of %lld", round, (long long)v);
    }
    fprintf(stderr,
            "crash round %d: %zu persists reported (max %lld), log holds "
            "%lld..%lld%s\n",
            round, n, (long long)max_reported, (long long)first,
            (long long)last, torn ? ", torn tail dropped" : "");
    persistent_log_close(log);
}

START_TEST(kill_9_at_random_points)
{
    const char *r = getenv("PERSISTENT_CRASH_ROUNDS");
    const char *sd = getenv("PERSISTENT_CRASH_SEED");
    int rounds = r ? atoi(r) : 3;
    unsigned seed = sd ? (unsigned)strtoul(sd, NULL, 10)
                       : (unsigned)time(NULL) ^ (unsigned)getpid();
    fprintf(stderr, "crash: %d rounds, PERSISTENT_CRASH_SEED=%u\n", rounds,
            seed);
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    size_t cap = 1 << 16;
    int64_t *reported = malloc(cap * sizeof(*reported));
    ck_assert_ptr_nonnull(reported);
    for (int round = 0; round < rounds; round++) {
        int pfd[2];
        ck_assert_int_eq(pipe(pfd), 0);
        char fdarg[16];
        snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
        struct th_procs procs;
        th_procs_init(&procs);
        const char *args[] = {dir, fdarg, NULL};
        int i = th_spawn_child(&procs, "crash", args);
        ck_assert_int_ge(i, 0);
        close(pfd[1]);
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        /* Let it run 5..150 ms, reading reports as they come. */
        int64_t until = th_now_ms() + 5 + (int64_t)(rand_r(&seed) % 146);
        size_t n = 0;
        uint8_t part[8];
        size_t have = 0;
        for (;;) {
            int64_t now = th_now_ms();
            ssize_t got = read(pfd[0], part + have, sizeof(part) - have);
            if (got > 0) {
                have += (size_t)got;
                if (have == sizeof(part)) {
                    if (n < cap)
                        memcpy(&reported[n++], part, sizeof(part));
                    have = 0;
                }
                continue;
            }
            if (now >= until)
                break;
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
        ck_assert_int_eq(th_signal(&procs, i, SIGKILL), 0);
        ck_assert_int_eq(th_wait_one(&procs, i, 10000), 0);
        ck_assert_msg(WIFSIGNALED(procs.status[i]),
                      "round %d: child exited early (status %d)", round,
                      procs.status[i]);
        /* Drain what it wrote before it died. */
        for (;;) {
            ssize_t got = read(pfd[0], part + have, sizeof(part) - have);
            if (got <= 0)
                break;
            have += (size_t)got;
            if (have == sizeof(part)) {
                if (n < cap)
                    memcpy(&reported[n++], part, sizeof(part));
                have = 0;
            }
        }
        close(pfd[0]);
        check_log(dir, reported, n, round);
    }
    free(reported);
    fprintf(stderr, "crash: %d rounds passed, %d with a torn tail\n", rounds,
            torn_tails);
}
END_TEST

Suite *tc_crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *tc = tcase_create("crash");
    tcase_set_timeout(tc, 800);
    tcase_add_test(tc, kill_9_at_random_points);
    suite_add_tcase(s, tc);
    return s;
}
