/* Crash: a child appends, persists and trims in a loop and reports each
 * persisted version on a pipe (with the size NAME.log had at its last
 * successful sync, seen by the faultfs interposer); the parent kill -9s it
 * at seeded random points, and in two rounds of three then simulates a
 * power loss: NAME.log is cut back, or zeroed, beyond the last reported
 * durable size.  It reopens the log and checks that every reported version
 * is there byte for byte and that whatever lies beyond is a valid prefix of
 * what was appended.  PERSISTENT_CRASH_ROUNDS sets the rounds (default 3; the
 * stress suite runs 50), PERSISTENT_CRASH_SEED the seed (default: time). */
#include "faultfs.h"
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
/* Entries; then a trim past everything, persisted or not (so a power loss
 * may come right after a trim past the persisted point). */
#define FULL_TRIM_EVERY 250
#define REPORT_PERSISTED 1 /* pipe messages: {kind, value}, int64_t each */

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
    char data[600];
    snprintf(data, sizeof(data), "%s/crash.log", argv[1]);
    ff_track(data);
    ff_report_to(fd);
    int64_t v = persistent_log_last_appended(log);
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
            int64_t rep[2] = {REPORT_PERSISTED,
                              persistent_log_latest_persisted(log)};
            if (write(fd, rep, sizeof(rep)) != sizeof(rep))
                return 6;
        }
        if ((v / STEP) % TRIM_EVERY == 0) {
            e = persistent_log_trim(log, v - KEEP * STEP);
            if (e)
                return 7;
        }
        if ((v / STEP) % FULL_TRIM_EVERY == 0) {
            e = persistent_log_trim(log, v + 1);
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
    /* The last version appended survives a trim of everything (and the
     * reopen): never below a reported persisted one. */
    int64_t appended = persistent_log_last_appended(log);
    ck_assert_msg(appended >= max_reported,
                  "round %d: last appended %lld < reported persisted %lld",
                  round, (long long)appended, (long long)max_reported);
    ck_assert_int_eq(persistent_log_latest_persisted(log), last);
    /* A trim keeps the KEEP entries behind the one just appended, and a
     * kill -9 loses nothing that was written: never fewer entries remain. */
    int64_t full = (last / STEP) / FULL_TRIM_EVERY * FULL_TRIM_EVERY * STEP;
    int64_t total = (last - full) / STEP;
    uint64_t at_least = total < KEEP + 1 ? (uint64_t)total : KEEP + 1;
    ck_assert_msg(persistent_log_count(log) >= at_least,
                  "round %d: %llu entries left of %lld", round,
                  (unsigned long long)persistent_log_count(log),
                  (long long)total);
    for (size_t i = 0; i < n; i++) {
        if (reported[i] < first || first < 0)
            continue; /* trimmed since (first < 0: everything was) */
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

static void take(const uint8_t *msg, int64_t *reported, size_t *n, size_t cap,
                 int64_t *durable)
{
    int64_t m[2];
    memcpy(m, msg, sizeof(m));
    if (m[0] == REPORT_PERSISTED && *n < cap)
        reported[(*n)++] = m[1];
    else if (m[0] == FF_REPORT_SYNCED)
        *durable = m[1];
}

static int power_losses;

/* What a power loss may keep of NAME.log: everything up to the size at
 * its last sync, and beyond it nothing (cut) or zeros (a size update that
 * reached the disk without the data). */
static void power_loss(const char *dir, int64_t durable, bool zero)
{
    char data[600];
    snprintf(data, sizeof(data), "%s/crash.log", dir);
    uint64_t size = tc_file_size(data);
    if (durable < 0 || (uint64_t)durable >= size)
        return;
    power_losses++;
    if (!zero) {
        tc_truncate_file(data, (uint64_t)durable);
        return;
    }
    int fd = open(data, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    static const uint8_t z[65536];
    for (uint64_t at = (uint64_t)durable; at < size;) {
        size_t k = size - at < sizeof(z) ? (size_t)(size - at) : sizeof(z);
        ck_assert_int_eq(pwrite(fd, z, k, (off_t)at), (ssize_t)k);
        at += k;
    }
    close(fd);
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
        int64_t durable = -1;
        uint8_t part[16];
        size_t have = 0;
        for (;;) {
            int64_t now = th_now_ms();
            ssize_t got = read(pfd[0], part + have, sizeof(part) - have);
            if (got > 0) {
                have += (size_t)got;
                if (have == sizeof(part)) {
                    take(part, reported, &n, cap, &durable);
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
                take(part, reported, &n, cap, &durable);
                have = 0;
            }
        }
        close(pfd[0]);
        if (round % 3 != 0)
            power_loss(dir, durable, round % 3 == 2);
        check_log(dir, reported, n, round);
    }
    free(reported);
    fprintf(stderr,
            "crash: %d rounds passed, %d with a torn tail, %d with a "
            "simulated power loss\n",
            rounds, torn_tails, power_losses);
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
