/* Real processes on loopback (and between network namespaces): row
 * visibility, guard ordering, failures, pool churn.
 *
 * Child arguments: rank n provider dir e1 e2 port[0] .. port[n-1]
 * (e1, e2: numbers whose meaning depends on the child). */
#include "test-sst.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAXN 8

struct child_args {
    uint32_t rank, n;
    const char *provider;
    const char *dir;
    long e1, e2;
    uint16_t ports[MAXN];
    char hosts[MAXN][32];
};

/* A child that crashes says where (the parent only sees a status). */
static void on_crash(int sig)
{
    void *frames[64];
    int n = backtrace(frames, 64);
    char msg[64];
    int len = snprintf(msg, sizeof(msg), "[%d] crashed: signal %d\n",
                       (int)getpid(), sig);
    ssize_t w = write(2, msg, (size_t)len);
    (void)w;
    backtrace_symbols_fd(frames, n, 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

static int parse_args(int argc, char **argv, struct child_args *a)
{
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGABRT, on_crash);
    signal(SIGFPE, on_crash);
    if (argc < 7)
        return -EINVAL;
    a->rank = (uint32_t)atoi(argv[1]);
    a->n = (uint32_t)atoi(argv[2]);
    a->provider = argv[3];
    a->dir = argv[4];
    a->e1 = atol(argv[5]);
    a->e2 = atol(argv[6]);
    if (a->n == 0 || a->n > MAXN || argc < 7 + (int)a->n)
        return -EINVAL;
    for (uint32_t i = 0; i < a->n; i++) {
        a->ports[i] = (uint16_t)atoi(argv[7 + i]);
        snprintf(a->hosts[i], sizeof(a->hosts[i]), "127.0.0.1");
    }
    return 0;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Pool + table for a child.  Returns 0 or an exit code. */
static int child_table(const struct child_args *a,
                       const struct sst_field *fields, size_t nf,
                       struct sst_options *o, struct fab_pool **pool,
                       struct sst_table **table)
{
    *pool =
        ts_pool(a->rank + 1, a->hosts[a->rank], a->ports[a->rank], a->provider);
    if (!*pool)
        return 20;
    struct sst_member m[MAXN];
    for (uint32_t i = 0; i < a->n; i++) {
        m[i].node_id = i + 1;
        m[i].host = a->hosts[i];
        m[i].port = a->ports[i];
    }
    struct sst_error err;
    int rc = sst_create(*pool, m, a->n, a->rank, fields, nf, o, table, &err);
    if (rc) {
        fprintf(stderr, "rank %u: sst_create: %s\n", a->rank, err.msg);
        return 21;
    }
    return 0;
}

/* Parent side: spawns n children NAME with the common arguments. */
static void spawn(struct th_procs *procs, const char *name, uint32_t n,
                  const char *provider, const char *dir, long e1, long e2,
                  const uint16_t *ports)
{
    char s_n[16], s_e1[32], s_e2[32], s_rank[MAXN][16], s_port[MAXN][16];
    snprintf(s_n, sizeof(s_n), "%u", n);
    snprintf(s_e1, sizeof(s_e1), "%ld", e1);
    snprintf(s_e2, sizeof(s_e2), "%ld", e2);
    for (uint32_t i = 0; i < n; i++)
        snprintf(s_port[i], sizeof(s_port[i]), "%u", (unsigned)ports[i]);
    for (uint32_t r = 0; r < n; r++) {
        snprintf(s_rank[r], sizeof(s_rank[r]), "%u", r);
        const char *args[7 + MAXN + 1];
        int k = 0;
        args[k++] = s_rank[r];
        args[k++] = s_n;
        args[k++] = provider;
        args[k++] = dir;
        args[k++] = s_e1;
        args[k++] = s_e2;
        for (uint32_t i = 0; i < n; i++)
            args[k++] = s_port[i];
        args[k] = NULL;
        ck_assert_int_ge(th_spawn_child(procs, name, args), 0);
    }
}

static void assert_all_ok(struct th_procs *procs, int timeout_ms)
{
    int rc = th_wait_all(procs, timeout_ms);
    for (int i = 0; i < procs->count; i++)
        ck_assert_msg(th_exited_ok(procs, i), "child %d: status 0x%x (wait %d)",
                      i, procs->status[i], rc);
}

/* ---- row visibility ---------------------------------------------------- */

#define PATTERN 32

static uint64_t pattern(uint32_t rank, int k)
{
    return (uint64_t)rank * 1000003u + (uint64_t)k * 7919u + 1;
}

/* Every member's row holds its pattern here. */
static bool rows_visible(struct sst_table *t, uint32_t n)
{
    for (uint32_t r = 0; r < n; r++)
        for (int k = 0; k < PATTERN; k++)
            if (ts_load(sst_field(t, r, 0, (size_t)k)) != pattern(r, k))
                return false;
    return true;
}

int child_rows(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a))
        return 2;
    struct sst_field f[] = {{"pattern", 8, PATTERN}, {"tag", 1, 3}};
    struct sst_options o;
    ts_options(&o, 1, 5000);
    struct fab_pool *pool;
    struct sst_table *t;
    int rc = child_table(&a, f, 2, &o, &pool, &t);
    if (rc)
        return rc;
    for (int k = 0; k < PATTERN; k++)
        ts_store(sst_field(t, a.rank, 0, (size_t)k), pattern(a.rank, k));
    if (sst_put(t, 0, sst_row_size(t)) != 0)
        return 22;
    if (!TH_WAIT_UNTIL(rows_visible(t, a.n), 20000)) {
        fprintf(stderr, "rank %u: rows not all visible\n", a.rank);
        return 23;
    }
    if (sst_sync(t, 20000) != 0)
        return 24;
    sst_destroy(t);
    fab_pool_destroy(pool);
    return 0;
}

static void run_rows(const char *provider, uint32_t n)
{
    uint16_t ports[MAXN];
    ck_assert_int_eq(th_free_tcp_ports(ports, (int)n), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "rows", n, provider, dir, 0, 0, ports);
    assert_all_ok(&procs, 60000);
}

START_TEST(test_rows_tcp)
{
    run_rows("tcp", 4);
}
END_TEST

START_TEST(test_rows_sockets)
{
    run_rows("sockets", 4);
}
END_TEST

/* ---- guard ordering ----------------------------------------------------
 * The writer (rank 0) puts iteration i's payload (64 B .. 4 KiB) into slot
 * i % SLOTS, then the counter i, as two puts.  The reader (rank 1), on every
 * counter change seen by its predicate, checks each payload up to the
 * counter and acknowledges; the writer never runs more than SLOTS - 1
 * ahead, so a slot is never rewritten before it was checked.  A payload
 * that does not match its counter is a torn read. */

#define SLOTS 8
#define SLOT_SIZE 4096

static size_t payload_len(uint64_t i)
{
    return 64 + (size_t)((i * 61) % (SLOT_SIZE - 64 + 1));
}

static uint8_t payload_byte(uint64_t i, size_t k)
{
    return (uint8_t)(i * 13 + k * 7 + (k >> 8));
}

enum { F_COUNTER, F_ACK, F_SLOTS };
static const struct sst_field guard_fields[] = {
    {"counter", 8, 1}, {"ack", 8, 1}, {"slots", SLOT_SIZE, SLOTS}};

struct reader {
    uint64_t last;
    _Atomic uint64_t checked;
    _Atomic uint64_t torn;
};

static bool counter_moved(struct sst_table *t, void *ctx)
{
    struct reader *rd = ctx;
    return ts_load(sst_field(t, 0, F_COUNTER, 0)) > rd->last;
}

static void check_payloads(struct sst_table *t, void *ctx)
{
    struct reader *rd = ctx;
    uint64_t c = ts_load(sst_field(t, 0, F_COUNTER, 0));
    for (uint64_t i = rd->last + 1; i <= c; i++) {
        const uint8_t *p = sst_field(t, 0, F_SLOTS, i % SLOTS);
        size_t len = payload_len(i);
        for (size_t k = 0; k < len; k++) {
            if (p[k] != payload_byte(i, k)) {
                atomic_fetch_add(&rd->torn, 1);
                break;
            }
        }
    }
    rd->last = c;
    ts_store(sst_field(t, 1, F_ACK, 0), c);
    sst_put(t, sst_field_offset(t, F_ACK), 8);
    atomic_store(&rd->checked, c);
}

int child_guard(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a) || a.n != 2)
        return 2;
    uint64_t total = (uint64_t)a.e1;
    struct sst_options o;
    ts_options(&o, 2, 10000);
    struct fab_pool *pool;
    struct sst_table *t;
    int rc = child_table(&a, guard_fields, 3, &o, &pool, &t);
    if (rc)
        return rc;
    int64_t end = th_now_ms() + 600000;
    if (a.rank == 1) {
        struct reader *rd = calloc(1, sizeof(*rd));
        sst_predicate_add(t, counter_moved, check_payloads, rd, SST_RECURRENT,
                          NULL);
        while (atomic_load(&rd->checked) < total && th_now_ms() < end &&
               sst_num_live(t) == 2)
            sleep_us(1000);
        uint64_t torn = atomic_load(&rd->torn);
        fprintf(stderr, "guard reader: %" PRIu64 " checked, %" PRIu64 " torn\n",
                atomic_load(&rd->checked), torn);
        if (sst_sync(t, 30000) != 0)
            return 24;
        sst_destroy(t);
        fab_pool_destroy(pool);
        bool ok = atomic_load(&rd->checked) == total && torn == 0;
        free(rd);
        return ok ? 0 : 3;
    }
    size_t slots_off = sst_field_offset(t, F_SLOTS);
    for (uint64_t i = 1; i <= total; i++) {
        /* Flow control: slot i % SLOTS was checked. */
        int spins = 0;
        while (i >= SLOTS &&
               ts_load(sst_field(t, 1, F_ACK, 0)) < i - SLOTS + 1) {
            if (th_now_ms() > end)
                return 4;
            if (sst_num_live(t) != 2) {
                fprintf(stderr,
                        "guard writer: reader suspected at %" PRIu64 "\n", i);
                return 7;
            }
            if (++spins < 200)
                sched_yield();
            else
                sleep_us(50);
        }
        uint8_t *p = sst_field(t, 0, F_SLOTS, i % SLOTS);
        size_t len = payload_len(i);
        for (size_t k = 0; k < len; k++)
            p[k] = payload_byte(i, k);
        if (sst_put(t, slots_off + (i % SLOTS) * SLOT_SIZE, len) != 0)
            return 5;
        ts_store(sst_field(t, 0, F_COUNTER, 0), i);
        if (sst_put(t, sst_field_offset(t, F_COUNTER), 8) != 0)
            return 6;
    }
    while (ts_load(sst_field(t, 1, F_ACK, 0)) < total && th_now_ms() < end &&
           sst_num_live(t) == 2)
        sleep_us(200);
    if (sst_sync(t, 30000) != 0)
        return 24;
    sst_destroy(t);
    fab_pool_destroy(pool);
    return 0;
}

static void run_guard(const char *provider, long total)
{
    uint16_t ports[2];
    ck_assert_int_eq(th_free_tcp_ports(ports, 2), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "guard", 2, provider, dir, total, 0, ports);
    assert_all_ok(&procs, 1200000);
}

START_TEST(test_guard_tcp)
{
    run_guard("tcp", 5000);
}
END_TEST

START_TEST(test_guard_sockets)
{
    run_guard("sockets", 2000);
}
END_TEST

START_TEST(test_guard_tcp_long)
{
    run_guard("tcp", 100000);
}
END_TEST

START_TEST(test_guard_sockets_long)
{
    run_guard("sockets", 100000);
}
END_TEST

/* ---- failures -----------------------------------------------------------
 * 4 members; rank 3 is the victim.  Survivors record when and why they
 * suspect it, compare with the time the parent hit it, and then keep
 * working among themselves: counters advance and a barrier completes. */

struct suspicion {
    _Atomic int64_t when_ns[MAXN];
    _Atomic int reason[MAXN];
};

static void on_suspect(void *ctx, struct sst_table *t, uint32_t rank,
                       uint32_t node_id, int reason)
{
    (void)t;
    (void)node_id;
    struct suspicion *s = ctx;
    if (rank < MAXN) {
        atomic_store(&s->reason[rank], reason);
        atomic_store(&s->when_ns[rank], th_now_ns());
    }
}

int child_fail(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a))
        return 2;
    uint32_t victim = a.n - 1;
    int suspect_ms = (int)a.e1;
    static struct suspicion sus;
    struct sst_options o;
    ts_options(&o, 3, suspect_ms);
    if (a.e2 >> 1)
        o.heartbeat_ms = (int)(a.e2 >> 1);
    o.on_suspect = on_suspect;
    o.suspect_ctx = &sus;
    struct fab_pool *pool;
    struct sst_table *t;
    struct sst_field f[] = {{"round", 8, 1}};
    int rc = child_table(&a, f, 1, &o, &pool, &t);
    if (rc)
        return rc;
    char name[32];
    snprintf(name, sizeof(name), "ready-%u", a.rank);
    ts_write_file(a.dir, name, "1");
    if (a.rank == victim) {
        for (;;)
            sleep_us(100000); /* killed or stopped by the parent */
    }
    int64_t end = th_now_ms() + 60000;
    if (!TH_WAIT_UNTIL(atomic_load(&sus.when_ns[victim]) != 0, 60000)) {
        fprintf(stderr, "rank %u: victim never suspected\n", a.rank);
        return 30;
    }
    char buf[64];
    TH_WAIT_UNTIL(ts_read_file(a.dir, "hit", buf, sizeof(buf)) > 0, 60000);
    int64_t hit_ns = strtoll(buf, NULL, 10);
    int64_t delay_ms = (atomic_load(&sus.when_ns[victim]) - hit_ns) / 1000000;
    fprintf(stderr, "rank %u: suspected rank %u after %" PRId64 " ms (%s)\n",
            a.rank, victim, delay_ms,
            sst_strerror(atomic_load(&sus.reason[victim])));
    if (delay_ms > 2 * suspect_ms)
        return 31;
    if ((a.e2 & 1) && atomic_load(&sus.reason[victim]) != -ETIMEDOUT)
        return 32; /* SIGSTOP: only the heartbeat can tell */
    for (uint32_t r = 0; r < victim; r++)
        if (atomic_load(&sus.when_ns[r]) || sst_suspects(t, a.rank, r))
            return 33;
    if (!sst_suspects(t, a.rank, victim) || sst_num_live(t) != victim)
        return 34;
    /* Keep working among the survivors. */
    for (uint64_t round = 1; round <= 20; round++) {
        ts_store(sst_field(t, a.rank, 0, 0), round);
        if (sst_put(t, 0, 8) != 0)
            return 35;
        for (uint32_t r = 0; r < victim; r++) {
            while (ts_load(sst_field(t, r, 0, 0)) < round) {
                if (th_now_ms() > end)
                    return 36;
                sleep_us(200);
            }
        }
    }
    if (sst_sync(t, 20000) != 0)
        return 37;
    /* The survivors see each other's suspicion in their rows. */
    for (uint32_t r = 0; r < victim; r++) {
        while (!sst_suspects(t, r, victim)) {
            if (th_now_ms() > end)
                return 38;
            sleep_us(500);
        }
    }
    sst_destroy(t);
    fab_pool_destroy(pool);
    return 0;
}

static bool all_ready(const char *dir, uint32_t n)
{
    for (uint32_t r = 0; r < n; r++) {
        char name[32];
        snprintf(name, sizeof(name), "ready-%u", r);
        if (!ts_file_exists(dir, name))
            return false;
    }
    return true;
}

/* Waits until every child wrote its ready file; false when one exited
 * first or time ran out. */
static bool wait_ready(struct th_procs *procs, const char *dir, uint32_t n,
                       int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    while (!all_ready(dir, n)) {
        for (int i = 0; i < procs->count; i++) {
            if (th_wait_one(procs, i, 0) == 0) {
                fprintf(stderr, "child %d exited early: status 0x%x\n", i,
                        procs->status[i]);
                return false;
            }
        }
        if (th_now_ms() > end)
            return false;
        usleep(2000);
    }
    return true;
}

/* hb_ms: heartbeat period (0: default). */
static void run_fail(int sig, int suspect_ms, int hb_ms)
{
    const uint32_t n = 4;
    uint16_t ports[4];
    ck_assert_int_eq(th_free_tcp_ports(ports, (int)n), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "fail", n, "tcp", dir, suspect_ms,
          (sig == SIGSTOP ? 1 : 0) | ((long)hb_ms << 1), ports);
    bool ready = wait_ready(&procs, dir, n, 60000);
    if (!ready)
        th_procs_kill_all(&procs);
    ck_assert_msg(ready, "children not ready");
    int64_t hit = th_now_ns();
    ck_assert_int_eq(th_signal(&procs, (int)n - 1, sig), 0);
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)hit);
    ts_write_file(dir, "hit", buf);
    for (int i = 0; i < (int)n - 1; i++) {
        th_wait_one(&procs, i, 120000);
        ck_assert_msg(th_exited_ok(&procs, i), "survivor %d: status 0x%x", i,
                      procs.status[i]);
    }
    th_procs_kill_all(&procs);
}

START_TEST(test_fail_kill)
{
    run_fail(SIGKILL, 1000, 0);
}
END_TEST

START_TEST(test_fail_stop)
{
    run_fail(SIGSTOP, 1000, 0);
}
END_TEST

/* A heartbeat longer than half the suspicion timeout (issue 14 item 4: it
 * made every check count as "we stalled", so a stopped member was never
 * suspected). */
START_TEST(test_fail_stop_slow_heartbeat)
{
    run_fail(SIGSTOP, 1000, 600);
}
END_TEST

/* ---- pool churn --------------------------------------------------------
 * 3 processes; per iteration 3 tables and 3 other users of the pool
 * borrowing the same peers at once, then all destroyed.  The pool never
 * bootstraps a live peer again; no thread or fd survives a destroy. */

int child_churn(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a))
        return 2;
    long iterations = a.e1;
    struct fab_pool *pool =
        ts_pool(a.rank + 1, a.hosts[a.rank], a.ports[a.rank], a.provider);
    if (!pool)
        return 20;
    struct sst_member m[MAXN];
    for (uint32_t i = 0; i < a.n; i++) {
        m[i].node_id = i + 1;
        m[i].host = a.hosts[i];
        m[i].port = a.ports[i];
    }
    struct sst_field f[] = {{"value", 8, 1}};
    int fds = 0, threads = 0;
    int64_t create_us_total = 0;
    for (long it = 0; it < iterations; it++) {
        struct sst_table *t[3];
        struct fab_user *u[3];
        struct fab_conn *c[3][MAXN];
        for (int k = 0; k < 3; k++) {
            if (fab_user_create(pool, NULL, NULL, &u[k]) != 0)
                return 40;
            for (uint32_t r = 0; r < a.n; r++) {
                if (r == a.rank)
                    continue;
                struct fab_error fe;
                int rc = -ECONNREFUSED;
                TH_WAIT_UNTIL(
                    (rc = fab_borrow(u[k], r + 1, m[r].host, m[r].port, 5000,
                                     &c[k][r], &fe)) != -ECONNREFUSED,
                    20000);
                if (rc) {
                    fprintf(stderr, "rank %u borrow: %s\n", a.rank, fe.msg);
                    return 41;
                }
            }
        }
        for (int k = 0; k < 3; k++) {
            struct sst_options o;
            ts_options(&o, (uint64_t)it * 3 + (uint64_t)k, 10000);
            struct sst_error err;
            int64_t t0 = th_now_ns();
            int rc = sst_create(pool, m, a.n, a.rank, f, 1, &o, &t[k], &err);
            create_us_total += (th_now_ns() - t0) / 1000;
            if (rc) {
                fprintf(stderr, "rank %u it %ld table %d: %s\n", a.rank, it, k,
                        err.msg);
                return 42;
            }
        }
        for (int k = 0; k < 3; k++) {
            ts_store(sst_field(t[k], a.rank, 0, 0), (uint64_t)it * 10 + 1);
            if (sst_put(t[k], 0, 8) != 0)
                return 43;
        }
        for (int k = 0; k < 3; k++) {
            for (uint32_t r = 0; r < a.n; r++) {
                int64_t end = th_now_ms() + 20000;
                while (ts_load(sst_field(t[k], r, 0, 0)) !=
                       (uint64_t)it * 10 + 1) {
                    if (th_now_ms() > end)
                        return 44;
                    sleep_us(100);
                }
            }
        }
        for (int k = 0; k < 3; k++) {
            sst_destroy(t[k]);
            for (uint32_t r = 0; r < a.n; r++)
                if (r != a.rank)
                    fab_release(u[k], c[k][r]);
            fab_user_destroy(u[k]);
        }
        if (it == 0) {
            fds = th_count_fds();
            threads = th_count_threads();
        }
    }
    /* The pool thread may be serving a peer's set-up fetch for a moment
     * (an accepted socket): wait for the count to settle. */
    int fds_end = th_count_fds(), threads_end = th_count_threads();
    for (int64_t end = th_now_ms() + 3000;
         (fds_end > fds || threads_end > threads) && th_now_ms() < end;) {
        sleep_us(10000);
        fds_end = th_count_fds();
        threads_end = th_count_threads();
    }
    struct fab_pool_stats st;
    fab_pool_get_stats(pool, &st);
    fprintf(stderr,
            "rank %u: %ld iterations, mean create %.2f ms, bootstraps "
            "%" PRIu64 "+%" PRIu64 ", failures %" PRIu64
            ", fds %d->%d, threads %d->%d\n",
            a.rank, iterations,
            (double)create_us_total / 1000.0 / (double)(iterations * 3),
            st.bootstraps_out, st.bootstraps_in, st.failures, fds, fds_end,
            threads, threads_end);
    /* A last table as a barrier: nobody closes its pool (breaking the
     * others' connections) before everyone has read its counters. */
    struct sst_options o;
    ts_options(&o, 999999, 10000);
    struct sst_table *last = NULL;
    if (sst_create(pool, m, a.n, a.rank, f, 1, &o, &last, NULL) != 0)
        return 47;
    sst_destroy(last);
    fab_pool_destroy(pool);
    if (st.bootstraps_out + st.bootstraps_in != a.n - 1 || st.failures ||
        st.live != a.n - 1)
        return 45;
    /* No growth (the warm-up count may itself have caught a transient
     * fetch socket). */
    if (fds_end > fds || threads_end > threads)
        return 46;
    return 0;
}

static void run_churn(long iterations)
{
    uint16_t ports[3];
    ck_assert_int_eq(th_free_tcp_ports(ports, 3), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "churn", 3, "tcp", dir, iterations, 0, ports);
    assert_all_ok(&procs, 600000);
}

START_TEST(test_churn)
{
    run_churn(20);
}
END_TEST

START_TEST(test_churn_long)
{
    run_churn(100);
}
END_TEST

/* ---- partition between network namespaces ---------------------------- */

/* Names carry a suffix of the runner's pid (passed to the children in
 * the environment): test runs of other worktrees on this machine use the
 * same test and must not delete or reconfigure our namespaces. */
#define NETNS_ENV "SST_TEST_NETNS_SUFFIX"

static bool netns_ready;
static char netns_skip[128];

static int sh(const char *cmd)
{
    char full[600];
    snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
    return system(full);
}

static const char *netns_suffix(void)
{
    const char *s = getenv(NETNS_ENV);
    return s ? s : "0";
}

/* Runs an ip command whose '@'s stand for the suffix. */
static int ipf(const char *tmpl)
{
    char cmd[400];
    const char *suffix = netns_suffix();
    size_t k = 0;
    for (const char *c = tmpl; *c && k + 16 < sizeof(cmd); c++) {
        if (*c == '@') {
            for (const char *x = suffix; *x; x++)
                cmd[k++] = *x;
        } else {
            cmd[k++] = *c;
        }
    }
    cmd[k] = 0;
    return sh(cmd);
}

static void netns_teardown(void)
{
    ipf("ip netns del sstpA@");
    ipf("ip netns del sstpB@");
    netns_ready = false;
}

static void netns_setup(void)
{
    netns_ready = false;
    if (geteuid() != 0) {
        snprintf(netns_skip, sizeof(netns_skip),
                 "not root: cannot create network namespaces");
        return;
    }
    char suffix[16];
    snprintf(suffix, sizeof(suffix), "%d", (int)(getpid() % 1000000));
    setenv(NETNS_ENV, suffix, 1);
    netns_teardown();
    const char *cmds[] = {
        "ip netns add sstpA@",
        "ip netns add sstpB@",
        "ip link add svA@ type veth peer name svB@",
        "ip link set svA@ netns sstpA@",
        "ip link set svB@ netns sstpB@",
        "ip -n sstpA@ addr add 10.77.0.1/24 dev svA@",
        "ip -n sstpB@ addr add 10.77.0.2/24 dev svB@",
        "ip -n sstpA@ link set svA@ up",
        "ip -n sstpB@ link set svB@ up",
        "ip -n sstpA@ link set lo up",
        "ip -n sstpB@ link set lo up",
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (ipf(cmds[i]) != 0) {
            snprintf(netns_skip, sizeof(netns_skip), "'%s' failed", cmds[i]);
            netns_teardown();
            return;
        }
    }
    netns_ready = true;
}

int child_part(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a) || a.n != 2)
        return 2;
    char path[64];
    snprintf(path, sizeof(path), "/run/netns/sstp%c%s", a.rank == 0 ? 'A' : 'B',
             netns_suffix());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
        return 50;
    close(fd);
    snprintf(a.hosts[0], sizeof(a.hosts[0]), "10.77.0.1");
    snprintf(a.hosts[1], sizeof(a.hosts[1]), "10.77.0.2");
    static struct suspicion sus;
    int suspect_ms = (int)a.e1;
    struct sst_options o;
    ts_options(&o, 4, suspect_ms);
    o.on_suspect = on_suspect;
    o.suspect_ctx = &sus;
    struct fab_pool *pool;
    struct sst_table *t;
    struct sst_field f[] = {{"value", 8, 1}};
    int rc = child_table(&a, f, 1, &o, &pool, &t);
    if (rc)
        return rc;
    char name[32];
    snprintf(name, sizeof(name), "ready-%u", a.rank);
    ts_write_file(a.dir, name, "1");
    uint32_t other = 1 - a.rank;
    if (!TH_WAIT_UNTIL(atomic_load(&sus.when_ns[other]) != 0, 60000))
        return 51;
    char buf[64];
    TH_WAIT_UNTIL(ts_read_file(a.dir, "hit", buf, sizeof(buf)) > 0, 60000);
    int64_t delay_ms =
        (atomic_load(&sus.when_ns[other]) - strtoll(buf, NULL, 10)) / 1000000;
    fprintf(stderr,
            "rank %u: suspected the other side after %" PRId64 " ms (%s)\n",
            a.rank, delay_ms, sst_strerror(atomic_load(&sus.reason[other])));
    if (delay_ms > 2 * suspect_ms)
        return 52;
    /* Alone on its side, it goes on: puts skip the suspected member and a
     * barrier among the live (itself) completes. */
    ts_store(sst_field(t, a.rank, 0, 0), 42);
    if (sst_put(t, 0, 8) != 0 || sst_sync(t, 5000) != 0)
        return 53;
    sst_destroy(t);
    fab_pool_destroy(pool);
    return 0;
}

START_TEST(test_partition)
{
    if (!netns_ready) {
        fprintf(stderr, "test_partition skipped: %s\n", netns_skip);
        return;
    }
    /* The fixture runs once per test case: a repeated run restores the
     * wire the previous one cut. */
    ck_assert_int_eq(ipf("ip -n sstpA@ link set svA@ up"), 0);
    /* Own namespaces: these ports are free (a new pair per repetition:
     * the cut connections of the last one may linger). */
    uint16_t ports[2] = {(uint16_t)(7701 + 2 * _i), (uint16_t)(7702 + 2 * _i)};
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "part", 2, "tcp", dir, 1000, 0, ports);
    bool ready = wait_ready(&procs, dir, 2, 60000);
    if (!ready)
        th_procs_kill_all(&procs);
    ck_assert_msg(ready, "children not ready");
    int64_t hit = th_now_ns();
    /* Cut the wire: packets vanish, no reset reaches either side. */
    ck_assert_int_eq(ipf("ip -n sstpA@ link set svA@ down"), 0);
    char buf[32];
    snprintf(buf, sizeof(buf), "%lld", (long long)hit);
    ts_write_file(dir, "hit", buf);
    assert_all_ok(&procs, 60000);
}
END_TEST

/* ---- features libderecho needs (issues 12 and 14) ----------------------
 * One child, "feat"; e1 selects the scenario, e2 a variant.  Each returns
 * 0 or a code that says which check failed. */

enum feat_mode {
    FEAT_RETRY = 1,    /* e2 rounds of create retried after -ETIMEDOUT */
    FEAT_MISMATCH = 2, /* e2 1: member order differs, 2: table_id differs */
    FEAT_LONG_TRIGGER = 3,
    FEAT_TOLERATE = 4, /* e2 0: failure during set-up, 1: failed_ranks */
    FEAT_EXPEL = 5,    /* e2 0: SIGSTOP/SIGCONT, 1: sst_suspect, 2: quiet,
                          3: sst_quiet */
    FEAT_SUBSET = 6,   /* sst_sync_ranks, sst_put_try */
    FEAT_INITIAL = 7,  /* initial rows */
    FEAT_SILENT = 8,   /* a member silent before the first barrier: e2 0
                          tolerate_silent, 1: without (named in err) */
};

struct feat_state {
    _Atomic int suspected[MAXN]; /* reason, 0: not suspected */
    _Atomic int expelled_by;     /* rank + 1 */
    _Atomic int trigger_done;
    _Atomic int put_try_rc;
    struct sst_table *table;
};

static struct feat_state feat;

static void feat_on_suspect(void *ctx, struct sst_table *t, uint32_t rank,
                            uint32_t node_id, int reason)
{
    (void)ctx;
    (void)t;
    (void)node_id;
    if (rank < MAXN)
        atomic_store(&feat.suspected[rank], reason ? reason : -1);
}

static void feat_on_expelled(void *ctx, struct sst_table *t, uint32_t rank,
                             uint32_t node_id, int reason)
{
    (void)ctx;
    (void)t;
    (void)node_id;
    (void)reason;
    atomic_store(&feat.expelled_by, (int)rank + 1);
}

static void feat_members(const struct child_args *a, struct sst_member *m)
{
    for (uint32_t i = 0; i < a->n; i++) {
        m[i].node_id = i + 1;
        m[i].host = a->hosts[i];
        m[i].port = a->ports[i];
    }
}

static void feat_options(struct sst_options *o, uint64_t id, int suspect_ms)
{
    ts_options(o, id, suspect_ms);
    o->on_suspect = feat_on_suspect;
    o->on_expelled = feat_on_expelled;
}

static bool wait_file(const char *dir, const char *name, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    while (!ts_file_exists(dir, name)) {
        if (th_now_ms() > end)
            return false;
        sleep_us(2000);
    }
    return true;
}

static struct sst_field feat_fields[] = {{"value", 8, 1}, {"round", 8, 1}};

/* Rounds of create with a short set-up timeout, retried with the same
 * table_id after a failure.  A create that returns 0 must be a live table
 * at once: the peer not suspected and its initial row (this round)
 * visible.  A round ends when either side succeeded (a file says so: the
 * other side's last attempt may have failed after ours succeeded, two
 * generals); then a table with a long set-up timeout lines both up for
 * the next round. */
static int feat_retry(const struct child_args *a, struct fab_pool *pool)
{
    struct sst_member m[MAXN];
    feat_members(a, m);
    long rounds = a->e2;
    int64_t end = th_now_ms() + 60000 + rounds * 3000;
    long attempts = 0, failures = 0;
    for (long k = 1; k <= rounds; k++) {
        char mine[32], theirs[32];
        snprintf(mine, sizeof(mine), "ok-%ld-%u", k, a->rank);
        snprintf(theirs, sizeof(theirs), "ok-%ld-%u", k, 1 - a->rank);
        for (;;) {
            if (th_now_ms() > end) {
                fprintf(stderr, "rank %u: round %ld never set up\n", a->rank,
                        k);
                return 50;
            }
            if (ts_file_exists(a->dir, theirs))
                break;
            /* Stagger the sides so attempts overlap in every way. */
            sleep_us(((a->rank * 7 + attempts * 13) % 23) * 1000);
            attempts++;
            memset(feat.suspected, 0, sizeof(feat.suspected));
            struct sst_options o;
            feat_options(&o, 1000 + (uint64_t)k, 2000);
            o.setup_timeout_ms = 20;
            o.log_level = LOG_CRIT;
            uint64_t init[2] = {0, (uint64_t)k};
            o.initial_row = init;
            o.initial_row_len = sizeof(init);
            struct sst_table *t = NULL;
            struct sst_error err;
            int rc = sst_create(pool, m, a->n, a->rank, feat_fields, 2, &o, &t,
                                &err);
            if (rc) {
                failures++;
                if (rc != -ETIMEDOUT && rc != -EHOSTDOWN && rc != -ECONNRESET &&
                    rc != -ECONNREFUSED) {
                    fprintf(stderr, "rank %u round %ld: %s\n", a->rank, k,
                            err.msg);
                    return 51;
                }
                continue;
            }
            for (uint32_t r = 0; r < a->n; r++) {
                if (r == a->rank)
                    continue;
                if (sst_suspects(t, a->rank, r) ||
                    ts_load(sst_field(t, r, 1, 0)) != (uint64_t)k) {
                    fprintf(stderr,
                            "rank %u round %ld: create returned a dead "
                            "table (rank %u %s, its round %" PRIu64 ")\n",
                            a->rank, k, r,
                            sst_suspects(t, a->rank, r) ? "suspected" : "live",
                            ts_load(sst_field(t, r, 1, 0)));
                    return 52;
                }
            }
            sst_destroy(t);
            ts_write_file(a->dir, mine, "1");
            break;
        }
        struct sst_options o;
        feat_options(&o, 100000 + (uint64_t)k, 5000);
        struct sst_table *t = NULL;
        struct sst_error err;
        if (sst_create(pool, m, a->n, a->rank, feat_fields, 2, &o, &t, &err)) {
            fprintf(stderr, "rank %u round %ld barrier: %s\n", a->rank, k,
                    err.msg);
            return 56;
        }
        sst_destroy(t);
    }
    fprintf(stderr, "rank %u: %ld rounds, %ld attempts, %ld failed\n", a->rank,
            rounds, attempts, failures);
    return 0;
}

static int feat_mismatch(const struct child_args *a, struct fab_pool *pool)
{
    struct sst_member m[MAXN];
    feat_members(a, m);
    uint32_t rank = a->rank;
    struct sst_options o;
    feat_options(&o, 7, 2000);
    o.setup_timeout_ms = 20000;
    o.log_level = LOG_CRIT;
    if (a->rank == 1 && a->e2 == 1) {
        struct sst_member x = m[0];
        m[0] = m[1];
        m[1] = x;
        rank = 0;
    }
    if (a->rank == 1 && a->e2 == 2)
        o.table_id = 8;
    struct sst_table *t = NULL;
    struct sst_error err;
    int64_t t0 = th_now_ms();
    int rc = sst_create(pool, m, a->n, rank, feat_fields, 2, &o, &t, &err);
    int64_t ms = th_now_ms() - t0;
    fprintf(stderr, "rank %u: %s after %" PRId64 " ms: %s\n", a->rank,
            sst_strerror(rc), ms, err.msg);
    /* Stay until the other side has its answer too (our record stays
     * published for it). */
    char name[32];
    snprintf(name, sizeof(name), "done-%u", a->rank);
    ts_write_file(a->dir, name, "1");
    snprintf(name, sizeof(name), "done-%u", 1 - a->rank);
    if (!wait_file(a->dir, name, 40000))
        return 55;
    if (rc != -EPROTO)
        return 53;
    if (ms > 5000)
        return 54;
    return 0;
}

static bool feat_once(struct sst_table *t, void *ctx)
{
    (void)t;
    (void)ctx;
    return true;
}

/* A trigger three times the suspicion timeout long. */
static void feat_long_trigger(struct sst_table *t, void *ctx)
{
    (void)ctx;
    sleep_us(900000);
    atomic_store(&feat.put_try_rc, sst_put_try(t, NULL, 0, 0, 8));
    atomic_store(&feat.trigger_done, 1);
}

static int feat_long(const struct child_args *a, struct sst_table *t)
{
    if (a->rank == 0) {
        if (sst_predicate_add(t, feat_once, feat_long_trigger, NULL,
                              SST_ONE_TIME, NULL) != 0)
            return 55;
        int64_t end = th_now_ms() + 20000;
        while (!atomic_load(&feat.trigger_done) && th_now_ms() < end)
            sleep_us(1000);
        if (!atomic_load(&feat.trigger_done))
            return 56;
        if (atomic_load(&feat.put_try_rc) != 0)
            return 57;
        ts_write_file(a->dir, "trigger-done", "1");
    } else if (!wait_file(a->dir, "trigger-done", 20000)) {
        return 58;
    }
    /* Some more heartbeat periods, then nobody may suspect anyone. */
    sleep_us(600000);
    for (uint32_t r = 0; r < a->n; r++) {
        if (atomic_load(&feat.suspected[r]) || sst_suspects(t, a->rank, r)) {
            fprintf(stderr, "rank %u suspects rank %u (%s)\n", a->rank, r,
                    sst_strerror(atomic_load(&feat.suspected[r])));
            return 59;
        }
    }
    if (sst_sync(t, 10000) != 0)
        return 60;
    return 0;
}

static int feat_tolerate(const struct child_args *a, struct fab_pool *pool)
{
    const uint32_t dead = a->n - 1;
    if (a->rank == dead)
        return 0; /* never joins: its port refuses */
    struct sst_member m[MAXN];
    feat_members(a, m);
    struct sst_options o;
    feat_options(&o, 9, 2000);
    o.setup_timeout_ms = 4000;
    o.log_level = LOG_CRIT;
    if (a->e2 == 1) {
        o.failed_ranks = &dead;
        o.n_failed_ranks = 1;
    } else {
        o.tolerate_failures = true;
    }
    struct sst_table *t = NULL;
    struct sst_error err;
    int64_t t0 = th_now_ms();
    int rc = sst_create(pool, m, a->n, a->rank, feat_fields, 2, &o, &t, &err);
    int64_t ms = th_now_ms() - t0;
    fprintf(stderr, "rank %u: create %s after %" PRId64 " ms %s\n", a->rank,
            sst_strerror(rc), ms, err.msg);
    if (rc)
        return 61;
    if (a->e2 == 1 && ms > 3000)
        return 62; /* a known failure costs no set-up time */
    if (!sst_suspects(t, a->rank, dead) && a->e2 == 1)
        return 63;
    int64_t end = th_now_ms() + 10000;
    while (a->e2 == 0 && !atomic_load(&feat.suspected[dead]) &&
           th_now_ms() < end)
        sleep_us(1000);
    if (a->e2 == 0 && !atomic_load(&feat.suspected[dead]))
        return 64; /* reported as suspected */
    if (sst_num_live(t) != a->n - 1)
        return 65;
    /* The live members work together. */
    ts_store(sst_field(t, a->rank, 0, 0), 42 + a->rank);
    if (sst_put(t, 0, 8) != 0)
        return 66;
    for (uint32_t r = 0; r < dead; r++) {
        while (ts_load(sst_field(t, r, 0, 0)) != 42 + r) {
            if (th_now_ms() > end)
                return 67;
            sleep_us(500);
        }
    }
    if (sst_sync(t, 10000) != 0)
        return 68;
    if (a->e2 == 1 && atomic_load(&feat.suspected[dead]))
        return 69; /* a given failure is not reported */
    sst_destroy(t);
    return 0;
}

/* The last rank completes the set-up exchange, then stays silent before
 * its first barrier (test-only SST_TEST_BARRIER_HOOK, armed by itself),
 * connections up.  e2 0: the others (tolerate_failures + tolerate_silent)
 * create the table with it suspected (-ETIMEDOUT) and work together; e2 1
 * (tolerate_failures only): their create fails with -ETIMEDOUT and err
 * names its rank and node. */
static int feat_silent(const struct child_args *a, struct fab_pool *pool)
{
    const uint32_t silent = a->n - 1;
    struct sst_member m[MAXN];
    feat_members(a, m);
    struct sst_options o;
    feat_options(&o, 11, 2000);
    o.setup_timeout_ms = 3000;
    o.log_level = LOG_CRIT;
    o.tolerate_failures = true;
    o.tolerate_silent = a->e2 == 0;
    if (a->rank == silent) {
        char path[600];
        snprintf(path, sizeof(path), "%s/barrier-hook", a->dir);
        if (ts_write_file(a->dir, "barrier-hook", "1") != 0)
            return 70;
        setenv("SST_TEST_BARRIER_HOOK", path, 1);
    }
    struct sst_table *t = NULL;
    struct sst_error err;
    int rc = sst_create(pool, m, a->n, a->rank, feat_fields, 2, &o, &t, &err);
    fprintf(stderr, "rank %u: create %s: %s\n", a->rank, sst_strerror(rc),
            err.msg);
    if (a->rank == silent) {
        sst_destroy(t); /* whatever it found after its silence */
        return 0;
    }
    if (a->e2 == 1) {
        char who[64];
        snprintf(who, sizeof(who), "rank %u (node %u)", silent, silent + 1);
        if (rc != -ETIMEDOUT || t)
            return 71;
        return strstr(err.msg, who) ? 0 : 72;
    }
    if (rc)
        return 73;
    int64_t end = th_now_ms() + 10000;
    while (atomic_load(&feat.suspected[silent]) == 0 && th_now_ms() < end)
        sleep_us(1000);
    if (atomic_load(&feat.suspected[silent]) != -ETIMEDOUT)
        return 74;
    if (sst_num_live(t) != a->n - 1)
        return 75;
    ts_store(sst_field(t, a->rank, 0, 0), 42 + a->rank);
    if (sst_put(t, 0, 8) != 0)
        return 76;
    for (uint32_t r = 0; r < silent; r++) {
        while (ts_load(sst_field(t, r, 0, 0)) != 42 + r) {
            if (th_now_ms() > end)
                return 77;
            sleep_us(500);
        }
    }
    if (sst_sync(t, 10000) != 0)
        return 78;
    sst_destroy(t);
    return 0;
}

/* A removed member publishes no new suspicion: rank 0 suspects rank 2;
 * rank 2, told it was removed, suspects rank 1 (as its broken
 * connections would make it); rank 1, which has not suspected rank 2
 * yet, must never see rank 2's row suspect it.  Rank 1 waits until rank
 * 2's connection broke (the suspicion would have been pushed to it
 * before, on the same connection) and a barrier with rank 0, then
 * checks. */
static int feat_expel_quiet(const struct child_args *a, struct sst_table *t)
{
    const uint32_t pair[2] = {0, 1};
    int64_t end = th_now_ms() + 30000;
    if (a->rank == 2) {
        while (!atomic_load(&feat.expelled_by) && th_now_ms() < end)
            sleep_us(1000);
        if (atomic_load(&feat.expelled_by) != 1)
            return 90;
        if (sst_suspect(t, 1, -ECANCELED) != 0)
            return 91;
        /* Recorded here all the same. */
        if (!sst_suspects(t, 2, 1))
            return 92;
        while (atomic_load(&feat.suspected[1]) != -ECANCELED &&
               th_now_ms() < end)
            sleep_us(1000);
        if (atomic_load(&feat.suspected[1]) != -ECANCELED)
            return 93;
        ts_write_file(a->dir, "victim-called", "1");
        return wait_file(a->dir, "checked", 30000) ? 0 : 94;
    }
    if (a->rank == 0 && sst_suspect(t, 2, -ECANCELED) != 0)
        return 95;
    if (!wait_file(a->dir, "victim-called", 30000))
        return 96;
    if (a->rank == 1) {
        /* Rank 2 failed its connection to me after its suspicion. */
        while (!atomic_load(&feat.suspected[2]) && th_now_ms() < end)
            sleep_us(1000);
        if (!atomic_load(&feat.suspected[2]))
            return 97;
    }
    if (sst_sync_ranks(t, pair, 2, 10000) != 0)
        return 98;
    if (a->rank == 1) {
        if (sst_suspects(t, 2, 1) || atomic_load(&feat.expelled_by)) {
            fprintf(stderr,
                    "rank 1: the removed rank 2 published its suspicion of "
                    "me (expelled by rank %d)\n",
                    atomic_load(&feat.expelled_by) - 1);
            return 99;
        }
        if (sst_suspects(t, 1, 0) || sst_suspects(t, 0, 1))
            return 100;
        ts_write_file(a->dir, "checked", "1");
    }
    return 0;
}

/* sst_quiet: rank 2 goes quiet (nobody suspects it), then suspects rank
 * 1: recorded at rank 2 only.  Rank 0, whose connection to rank 2 still
 * runs, syncs with it and must not read that suspicion in its row. */
static int feat_quiet_call(const struct child_args *a, struct sst_table *t)
{
    const uint32_t pair[2] = {0, 2};
    if (a->rank == 2) {
        sst_quiet(t);
        sst_quiet(t); /* twice: no-op */
        sst_quiet(NULL);
        if (sst_suspect(t, 1, -ECANCELED) != 0)
            return 110;
        if (!sst_suspects(t, 2, 1))
            return 111;
        ts_write_file(a->dir, "victim-called", "1");
        if (sst_sync_ranks(t, pair, 2, 10000) != 0)
            return 112;
        return wait_file(a->dir, "checked", 30000) ? 0 : 113;
    }
    if (!wait_file(a->dir, "victim-called", 30000))
        return 114;
    if (a->rank == 0) {
        if (sst_sync_ranks(t, pair, 2, 10000) != 0)
            return 115;
        if (sst_suspects(t, 2, 1)) {
            fprintf(stderr, "rank 0: the quiet rank 2 published its "
                            "suspicion of rank 1\n");
            return 116;
        }
        if (sst_suspects(t, 0, 2))
            return 117;
        ts_write_file(a->dir, "checked", "1");
    }
    return wait_file(a->dir, "checked", 30000) ? 0 : 118;
}

static int feat_expel(const struct child_args *a, struct sst_table *t)
{
    const uint32_t victim = a->n - 1;
    int64_t end = th_now_ms() + 60000;
    if (a->e2 == 2)
        return feat_expel_quiet(a, t);
    if (a->e2 == 3)
        return feat_quiet_call(a, t);
    if (a->rank == victim) {
        /* Stopped and resumed by the parent (e2 0), or suspected by rank
         * 0 (e2 1): either way told it was removed. */
        while (!atomic_load(&feat.expelled_by) && th_now_ms() < end)
            sleep_us(1000);
        int by = atomic_load(&feat.expelled_by) - 1;
        fprintf(stderr, "rank %u: expelled by rank %d\n", a->rank, by);
        if (by < 0)
            return 70;
        if (!sst_suspects(t, (uint32_t)by, victim))
            return 71;
        /* Stopped past the others' timeout (500 ms, feat_options): the
         * timer saw the stall.  The others count silence from my last
         * heartbeat before the stop and check on their own ticks, so the
         * stall itself may be up to a few heartbeat periods shorter (484
         * ms was seen); 400 still fails for a stall not recorded. */
        uint64_t stall = sst_self_stall_ms(t);
        fprintf(stderr, "rank %u: self stall %llu ms\n", a->rank,
                (unsigned long long)stall);
        if (a->e2 == 0 && stall < 400)
            return 76;
        ts_write_file(a->dir, "expelled", "1");
        return 0;
    }
    if (a->e2 == 1 && a->rank == 0 && sst_suspect(t, victim, -ECANCELED) != 0)
        return 72;
    /* After sst_suspect at rank 0, rank 1 learns it from rank 0's row
     * (spreading it is the caller's choice). */
    bool by_row = a->e2 == 1 && a->rank != 0;
    while (!(by_row ? sst_suspects(t, 0, victim)
                    : atomic_load(&feat.suspected[victim]) != 0) &&
           th_now_ms() < end)
        sleep_us(1000);
    if (!(by_row ? sst_suspects(t, 0, victim)
                 : atomic_load(&feat.suspected[victim]) != 0))
        return 73;
    if (a->e2 == 1 && a->rank == 0 &&
        atomic_load(&feat.suspected[victim]) != -ECANCELED)
        return 74;
    char name[32];
    snprintf(name, sizeof(name), "suspected-%u", a->rank);
    ts_write_file(a->dir, name, "1");
    if (!wait_file(a->dir, "expelled", 60000))
        return 75;
    return 0;
}

static int feat_subset(const struct child_args *a, struct sst_table *t)
{
    const uint32_t pair[2] = {0, 1};
    if (a->rank < 2) {
        for (int i = 0; i < 50; i++) {
            if (sst_sync_ranks(t, pair, 2, 10000) != 0)
                return 76;
            /* Every barrier: the other's counter of the same round. */
            ts_store(sst_field(t, a->rank, 0, 0), (uint64_t)i + 1);
            int rc;
            int64_t end = th_now_ms() + 10000;
            while ((rc = sst_put_try(t, &pair[1 - a->rank], 1, 0, 8)) ==
                       -EAGAIN &&
                   th_now_ms() < end)
                sleep_us(100);
            if (rc != 0)
                return 77;
            while (ts_load(sst_field(t, 1 - a->rank, 0, 0)) < (uint64_t)i + 1)
                if (th_now_ms() > end)
                    return 78;
        }
    } else {
        /* Not in the pair: barriers over the pair neither wait for me
         * nor count towards mine. */
        if (sst_sync_ranks(t, pair, 2, 300) != -ETIMEDOUT)
            return 79;
    }
    if (sst_sync(t, 20000) != 0)
        return 80;
    uint32_t bad = a->n;
    if (sst_sync_ranks(t, &bad, 1, 10) != -EINVAL ||
        sst_sync_ranks(t, NULL, 1, 10) != -EINVAL ||
        sst_put_try(t, &bad, 1, 0, 8) != -EINVAL ||
        sst_put_try(t, NULL, 0, 0, 0) != -ERANGE)
        return 81;
    return 0;
}

static int feat_initial(const struct child_args *a, struct fab_pool *pool)
{
    struct sst_member m[MAXN];
    feat_members(a, m);
    struct sst_options o;
    feat_options(&o, 11, 2000);
    uint64_t init[2] = {1000 + a->rank, 2000 + a->rank};
    o.initial_row = init;
    o.initial_row_len = sizeof(init);
    struct sst_table *t = NULL;
    struct sst_error err;
    if (sst_create(pool, m, a->n, a->rank, feat_fields, 2, &o, &t, &err))
        return 82;
    /* No waiting: every row's initial contents are here on return. */
    for (uint32_t r = 0; r < a->n; r++)
        if (ts_load(sst_field(t, r, 0, 0)) != 1000 + r ||
            ts_load(sst_field(t, r, 1, 0)) != 2000 + r)
            return 83;
    if (sst_sync(t, 10000) != 0)
        return 84;
    sst_destroy(t);
    return 0;
}

int child_feat(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a))
        return 2;
    long mode = a.e1;
    atomic_store(&feat.expelled_by, 0);
    struct fab_pool *pool =
        ts_pool(a.rank + 1, a.hosts[a.rank], a.ports[a.rank], a.provider);
    if (!pool)
        return 20;
    int rc = 0;
    switch (mode) {
    case FEAT_RETRY:
        rc = feat_retry(&a, pool);
        break;
    case FEAT_MISMATCH:
        rc = feat_mismatch(&a, pool);
        break;
    case FEAT_TOLERATE:
        rc = feat_tolerate(&a, pool);
        break;
    case FEAT_INITIAL:
        rc = feat_initial(&a, pool);
        break;
    case FEAT_SILENT:
        rc = feat_silent(&a, pool);
        break;
    default: {
        struct sst_member m[MAXN];
        feat_members(&a, m);
        struct sst_options o;
        feat_options(&o, 10, mode == FEAT_LONG_TRIGGER ? 300 : 500);
        struct sst_table *t = NULL;
        struct sst_error err;
        if (sst_create(pool, m, a.n, a.rank, feat_fields, 2, &o, &t, &err)) {
            fprintf(stderr, "rank %u: %s\n", a.rank, err.msg);
            return 21;
        }
        char name[32];
        snprintf(name, sizeof(name), "ready-%u", a.rank);
        ts_write_file(a.dir, name, "1");
        if (mode == FEAT_LONG_TRIGGER)
            rc = feat_long(&a, t);
        else if (mode == FEAT_EXPEL)
            rc = feat_expel(&a, t);
        else if (mode == FEAT_SUBSET)
            rc = feat_subset(&a, t);
        else
            rc = 3;
        if (rc == 0 || mode != FEAT_EXPEL)
            sst_destroy(t);
        break;
    }
    }
    if (rc == 0)
        fab_pool_destroy(pool);
    return rc;
}

static void run_feat(long mode, long variant, uint32_t n, int timeout_ms)
{
    uint16_t ports[MAXN];
    ck_assert_int_eq(th_free_tcp_ports(ports, (int)n), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "feat", n, "tcp", dir, mode, variant, ports);
    assert_all_ok(&procs, timeout_ms);
}

START_TEST(test_silent_at_barrier)
{
    run_feat(FEAT_SILENT, _i, 3, 60000);
}
END_TEST

START_TEST(test_create_retry)
{
    run_feat(FEAT_RETRY, 5, 2, 120000);
}
END_TEST

START_TEST(test_create_retry_long)
{
    run_feat(FEAT_RETRY, 100, 2, 600000);
}
END_TEST

START_TEST(test_mismatch_order)
{
    run_feat(FEAT_MISMATCH, 1, 2, 60000);
}
END_TEST

START_TEST(test_mismatch_table_id)
{
    run_feat(FEAT_MISMATCH, 2, 2, 60000);
}
END_TEST

START_TEST(test_long_trigger)
{
    run_feat(FEAT_LONG_TRIGGER, 0, 2, 60000);
}
END_TEST

START_TEST(test_tolerate_setup_failure)
{
    run_feat(FEAT_TOLERATE, 0, 3, 60000);
}
END_TEST

START_TEST(test_failed_ranks)
{
    run_feat(FEAT_TOLERATE, 1, 3, 60000);
}
END_TEST

START_TEST(test_suspect_call)
{
    run_feat(FEAT_EXPEL, 1, 3, 60000);
}
END_TEST

START_TEST(test_expelled_quiet)
{
    run_feat(FEAT_EXPEL, 2, 3, 60000);
}
END_TEST

START_TEST(test_quiet_call)
{
    run_feat(FEAT_EXPEL, 3, 3, 60000);
}
END_TEST

START_TEST(test_subset_sync)
{
    run_feat(FEAT_SUBSET, 0, 3, 60000);
}
END_TEST

START_TEST(test_initial_rows)
{
    run_feat(FEAT_INITIAL, 0, 3, 60000);
}
END_TEST

/* Stopped past the others' timeout, then resumed: told it was removed. */
START_TEST(test_expelled_after_stop)
{
    const uint32_t n = 3;
    uint16_t ports[3];
    ck_assert_int_eq(th_free_tcp_ports(ports, (int)n), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "feat", n, "tcp", dir, FEAT_EXPEL, 0, ports);
    bool ready = wait_ready(&procs, dir, n, 60000);
    if (!ready)
        th_procs_kill_all(&procs);
    ck_assert_msg(ready, "children not ready");
    ck_assert_int_eq(th_signal(&procs, (int)n - 1, SIGSTOP), 0);
    bool seen = true;
    for (uint32_t r = 0; r + 1 < n; r++) {
        char name[32];
        snprintf(name, sizeof(name), "suspected-%u", r);
        seen = seen && wait_file(dir, name, 30000);
    }
    ck_assert_int_eq(th_signal(&procs, (int)n - 1, SIGCONT), 0);
    if (!seen)
        th_procs_kill_all(&procs);
    ck_assert_msg(seen, "the stopped member was not suspected");
    assert_all_ok(&procs, 60000);
}
END_TEST

/* ---- torn words on tcp --------------------------------------------------
 * Rank 0 pushes, in a loop, a bulk range of varying length (moving where
 * the next write falls in the TCP stream), then an 8-byte counter, then a
 * word-atomic element (SST_WORD_SIZE), both holding the pattern
 * k * 0x0101010101010101 (all bytes equal).  Rank 1 reads both as fast as
 * it can: a plain counter whose bytes differ was seen half-written (this
 * is what the test measures and prints); a word element must never be
 * accepted with unequal bytes, nor go backwards. */

#define TORN_BULK (64 * 1024)

static uint64_t torn_pattern(uint64_t k)
{
    return (k & 0xff) * 0x0101010101010101ull;
}

static bool torn_bytes(uint64_t v)
{
    return v != torn_pattern(v & 0xff);
}

int child_torn(int argc, char **argv)
{
    struct child_args a;
    if (parse_args(argc, argv, &a))
        return 2;
    long duration_ms = a.e1;
    struct sst_field f[] = {{"bulk", 4096, TORN_BULK / 4096},
                            {"plain", 8, 1},
                            {"word", SST_WORD_SIZE, 1},
                            {"seq", 8, 1}};
    struct sst_options o;
    ts_options(&o, 21, 5000);
    struct fab_pool *pool;
    struct sst_table *t;
    int rc = child_table(&a, f, 4, &o, &pool, &t);
    if (rc)
        return rc;
    size_t off_plain = sst_field_offset(t, 1),
           off_word = sst_field_offset(t, 2);
    uint64_t last = 0;
    if (a.rank == 0) {
        uint8_t *bulk = sst_field(t, 0, 0, 0);
        int64_t end = th_now_ms() + duration_ms;
        uint64_t k = 0;
        while (th_now_ms() < end) {
            k++;
            size_t len = 1 + (size_t)((k * 7919) % TORN_BULK);
            memset(bulk, (int)(k & 0xff), len < 64 ? len : 64);
            if (sst_put(t, 0, len) != 0)
                return 90;
            ts_store(sst_field(t, 0, 1, 0), torn_pattern(k));
            if (sst_put(t, off_plain, 8) != 0)
                return 91;
            sst_word_store(sst_field(t, 0, 2, 0), torn_pattern(k));
            if (sst_put(t, off_word, SST_WORD_SIZE) != 0)
                return 92;
        }
        last = k;
        ts_store(sst_field(t, 0, 3, 0), last);
        if (sst_put(t, sst_field_offset(t, 3), 8) != 0)
            return 93;
        fprintf(stderr, "rank 0: %" PRIu64 " rounds of bulk+counter+word\n",
                last);
    } else {
        uint64_t reads = 0, plain_torn = 0, refused = 0, prev = 0;
        const void *plain = sst_field(t, 0, 1, 0);
        const void *word = sst_field(t, 0, 2, 0);
        int64_t end = th_now_ms() + duration_ms + 30000;
        while (ts_load(sst_field(t, 0, 3, 0)) == 0) {
            if (th_now_ms() > end)
                return 94;
            reads++;
            if (torn_bytes(ts_load(plain)))
                plain_torn++;
            uint64_t v;
            int lr = sst_word_load(word, &v);
            if (lr == -EAGAIN) {
                refused++;
                continue;
            }
            if (lr != 0 || torn_bytes(v)) {
                fprintf(stderr, "rank 1: word accepted torn: %016" PRIx64 "\n",
                        v);
                return 95;
            }
            /* The pattern wraps every 256 rounds: it may only move
             * forward by less than a wrap between two reads. */
            if (v != prev && ((v & 0xff) - (prev & 0xff)) % 256 > 200)
                fprintf(stderr, "rank 1: word went from %02x to %02x\n",
                        (unsigned)(prev & 0xff), (unsigned)(v & 0xff));
            prev = v;
        }
        fprintf(stderr,
                "rank 1: %" PRIu64 " reads: plain counter seen torn %" PRIu64
                " times, word refused (being written) %" PRIu64 " times, "
                "accepted torn 0\n",
                reads, plain_torn, refused);
        printf("RESULT bench=sst_torn reads=%" PRIu64 " plain_torn=%" PRIu64
               " word_refused=%" PRIu64 " word_torn=0\n",
               reads, plain_torn, refused);
    }
    if (sst_sync(t, 30000) != 0)
        return 96;
    if (a.rank == 1) {
        uint64_t v = 0;
        if (sst_word_load(sst_field(t, 0, 2, 0), &v) != 0 ||
            v != torn_pattern(ts_load(sst_field(t, 0, 3, 0))))
            return 97;
    }
    sst_destroy(t);
    fab_pool_destroy(pool);
    return 0;
}

static void run_torn(long duration_ms)
{
    uint16_t ports[2];
    ck_assert_int_eq(th_free_tcp_ports(ports, 2), 0);
    char dir[256];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs procs;
    th_procs_init(&procs);
    spawn(&procs, "torn", 2, "tcp", dir, duration_ms, 0, ports);
    assert_all_ok(&procs, (int)duration_ms + 120000);
}

START_TEST(test_torn_words)
{
    run_torn(3000);
}
END_TEST

START_TEST(test_torn_words_long)
{
    run_torn(60000);
}
END_TEST

/* ---- suites ------------------------------------------------------------ */

Suite *sst_multiproc_suite(void)
{
    Suite *s = suite_create("sst-multiproc");
    TCase *tc = tcase_create("loopback");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_rows_tcp);
    tcase_add_test(tc, test_rows_sockets);
    tcase_add_test(tc, test_guard_tcp);
    tcase_add_test(tc, test_guard_sockets);
    tcase_add_test(tc, test_fail_kill);
    tcase_add_test(tc, test_fail_stop);
    tcase_add_test(tc, test_churn);
    tcase_add_test(tc, test_fail_stop_slow_heartbeat);
    suite_add_tcase(s, tc);
    tc = tcase_create("features");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_create_retry);
    tcase_add_test(tc, test_mismatch_order);
    tcase_add_test(tc, test_mismatch_table_id);
    tcase_add_test(tc, test_long_trigger);
    tcase_add_test(tc, test_tolerate_setup_failure);
    tcase_add_loop_test(tc, test_silent_at_barrier, 0, 2);
    tcase_add_test(tc, test_failed_ranks);
    tcase_add_test(tc, test_suspect_call);
    tcase_add_test(tc, test_expelled_quiet);
    tcase_add_test(tc, test_quiet_call);
    tcase_add_test(tc, test_expelled_after_stop);
    tcase_add_test(tc, test_subset_sync);
    tcase_add_test(tc, test_initial_rows);
    tcase_add_test(tc, test_torn_words);
    suite_add_tcase(s, tc);
    tc = tcase_create("netns");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, netns_setup, netns_teardown);
    tcase_add_test(tc, test_partition);
    suite_add_tcase(s, tc);
    return s;
}

Suite *sst_stress_suite(void)
{
    Suite *s = suite_create("sst-stress");
    TCase *tc = tcase_create("long");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, test_guard_tcp_long);
    tcase_add_test(tc, test_guard_sockets_long);
    tcase_add_test(tc, test_churn_long);
    tcase_add_test(tc, test_create_retry_long);
    tcase_add_test(tc, test_torn_words_long);
    suite_add_tcase(s, tc);
    /* The failure and ordering tests, 20 times in a row. */
    tc = tcase_create("repeat");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_guard_tcp, 0, 20);
    tcase_add_loop_test(tc, test_fail_kill, 0, 20);
    tcase_add_loop_test(tc, test_fail_stop, 0, 20);
    tcase_add_loop_test(tc, test_expelled_after_stop, 0, 20);
    tcase_add_loop_test(tc, test_long_trigger, 0, 20);
    suite_add_tcase(s, tc);
    tc = tcase_create("repeat-netns");
    tcase_set_timeout(tc, 600);
    tcase_add_unchecked_fixture(tc, netns_setup, netns_teardown);
    tcase_add_loop_test(tc, test_partition, 0, 20);
    suite_add_tcase(s, tc);
    return s;
}
