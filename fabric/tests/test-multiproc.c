/* Real processes on loopback: write ordering (guard pattern) and kill -9. */
#include "test-fab.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- guard ordering ----------------------------------------------------
 * The writer puts iteration i's payload (64 B .. 4 KiB) in slot i % SLOTS
 * of the reader's region, then the counter i (FAB_WRITE_FENCE, with remote
 * data so the reader can sleep).  The reader checks, for every counter
 * value it sees, every payload up to it, then acknowledges into the
 * writer's region; the writer never runs more than SLOTS - 1 ahead, so a
 * payload is never overwritten before it was checked.  A payload that does
 * not match its counter is a torn read. */

enum { SLOTS = 16, SLOT_SIZE = 4096, KEY_REGION = 1 };

struct guard_region {
    uint64_t counter; /* reader's region: last iteration announced */
    uint64_t ack;     /* writer's region: last iteration checked */
    /* Writer's sources of the counter: the provider may read a source at
     * any time until the write completes (sockets does, from its own
     * thread), so each announcement has its own until it was acked. */
    uint64_t counter_src[SLOTS];
    uint8_t slots[SLOTS][SLOT_SIZE];
};

static size_t payload_len(uint64_t i)
{
    return 64 + (size_t)((i * 61) % (SLOT_SIZE - 64 + 1));
}

static uint8_t payload_byte(uint64_t i, size_t k)
{
    return (uint8_t)(i * 13 + k * 7 + (k >> 8));
}

struct peer_setup {
    struct fab_pool *pool;
    struct fab_user *user;
    struct fab_conn *conn;
    struct fab_mr *mr;
    struct fab_mr_desc remote;
    struct guard_region *region;
};

/* args: my_id my_port peer_id peer_port provider iterations ordering
 *       [my_addr peer_addr] (default 127.0.0.1) */
static int setup(char **argv, struct peer_setup *s)
{
    uint32_t me = (uint32_t)atoi(argv[1]), peer = (uint32_t)atoi(argv[3]);
    uint16_t my_port = (uint16_t)atoi(argv[2]);
    uint16_t peer_port = (uint16_t)atoi(argv[4]);
    const char *my_addr = argv[8] ? argv[8] : "127.0.0.1";
    const char *peer_addr = argv[8] && argv[9] ? argv[9] : "127.0.0.1";
    s->pool = tf_pool_at(me, my_addr, my_port, argv[5], atoi(argv[7]));
    if (!s->pool)
        return 10;
    s->region = calloc(1, sizeof(*s->region));
    if (!s->region)
        return 10;
    if (fab_mr_register(s->pool, s->region, sizeof(*s->region),
                        FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                        &s->mr) != 0)
        return 11;
    struct fab_mr_desc d;
    fab_mr_get_desc(s->mr, &d);
    uint8_t enc[FAB_MR_DESC_SIZE];
    fab_mr_desc_encode(&d, enc);
    fab_pool_publish(s->pool, KEY_REGION, enc, sizeof(enc));
    if (fab_user_create(s->pool, NULL, NULL, &s->user) != 0)
        return 12;
    /* Both sides borrow each other: simultaneous connects, and retries
     * while the peer's process is still starting. */
    struct fab_error err;
    int rc = -ECONNREFUSED;
    TH_WAIT_UNTIL((rc = fab_borrow(s->user, peer, peer_addr, peer_port, 2000,
                                   &s->conn, &err)) != -ECONNREFUSED,
                  10000);
    if (rc) {
        fprintf(stderr, "node %u: borrow: %s\n", me, err.msg);
        return 13;
    }
    uint8_t got[64];
    size_t len;
    if (fab_pool_fetch(s->pool, peer, KEY_REGION, got, sizeof(got), &len, 10000,
                       &err) != 0 ||
        fab_mr_desc_decode(got, len, &s->remote) != 0) {
        fprintf(stderr, "node %u: fetch: %s\n", me, err.msg);
        return 14;
    }
    return 0;
}

static void teardown(struct peer_setup *s)
{
    fab_release(s->user, s->conn);
    fab_user_destroy(s->user);
    fab_mr_destroy(s->mr);
    fab_pool_destroy(s->pool);
    free(s->region);
}

static uint64_t load_u64(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

/* Posts, progressing while the provider pushes back. */
static int post_retry(int (*post)(struct peer_setup *, uint64_t),
                      struct peer_setup *s, uint64_t i)
{
    for (;;) {
        int rc = post(s, i);
        if (rc != -EAGAIN)
            return rc;
        fab_pool_progress(s->pool);
    }
}

static int post_payload(struct peer_setup *s, uint64_t i)
{
    size_t slot = i % SLOTS;
    size_t off = offsetof(struct guard_region, slots) + slot * SLOT_SIZE;
    return fab_write(s->conn, s->mr, off, payload_len(i), &s->remote, off, 0,
                     NULL);
}

static int post_counter(struct peer_setup *s, uint64_t i)
{
    size_t src = offsetof(struct guard_region, counter_src) + (i % SLOTS) * 8;
    size_t dst = offsetof(struct guard_region, counter);
    return fab_writedata(s->conn, s->mr, src, 8, &s->remote, dst, 1,
                         FAB_WRITE_FENCE, NULL);
}

static int post_ack(struct peer_setup *s, uint64_t i)
{
    size_t src = offsetof(struct guard_region, counter_src) + (i % SLOTS) * 8;
    size_t dst = offsetof(struct guard_region, ack);
    return fab_writedata(s->conn, s->mr, src, 8, &s->remote, dst, 2, 0, NULL);
}

int child_guard_writer(int argc, char **argv)
{
    if (argc < 8)
        return 2;
    uint64_t n = strtoull(argv[6], NULL, 10);
    struct peer_setup s;
    int rc = setup(argv, &s);
    if (rc)
        return rc;
    struct guard_region *g = s.region;
    int64_t end = th_now_ms() + 600000;
    for (uint64_t i = 1; i <= n; i++) {
        while (i > load_u64(&g->ack) + SLOTS - 1) {
            if (fab_conn_status(s.conn) || th_now_ms() > end)
                return 20;
            fab_pool_progress_wait(s.pool, 50, 100);
        }
        uint8_t *slot = g->slots[i % SLOTS];
        size_t len = payload_len(i);
        for (size_t k = 0; k < len; k++)
            slot[k] = payload_byte(i, k);
        g->counter_src[i % SLOTS] = i;
        if (post_retry(post_payload, &s, i) || post_retry(post_counter, &s, i))
            return 21;
        fab_pool_progress(s.pool);
    }
    while (load_u64(&g->ack) < n) {
        if (fab_conn_status(s.conn) || th_now_ms() > end)
            return 22;
        fab_pool_progress_wait(s.pool, 50, 100);
    }
    /* Let the last completions arrive before closing. */
    while (fab_conn_outstanding(s.conn) > 0 && th_now_ms() < end)
        fab_pool_progress_wait(s.pool, 50, 10);
    teardown(&s);
    return 0;
}

int child_guard_reader(int argc, char **argv)
{
    if (argc < 8)
        return 2;
    uint64_t n = strtoull(argv[6], NULL, 10);
    struct peer_setup s;
    int rc = setup(argv, &s);
    if (rc)
        return rc;
    struct guard_region *g = s.region;
    uint64_t checked = 0, torn = 0;
    int64_t end = th_now_ms() + 600000;
    while (checked < n) {
        uint64_t c = load_u64(&g->counter);
        if (c == checked) {
            if (fab_conn_status(s.conn) || th_now_ms() > end) {
                fprintf(stderr, "reader: stalled at %llu\n",
                        (unsigned long long)checked);
                return 30;
            }
            fab_pool_progress_wait(s.pool, 50, 100);
            continue;
        }
        for (uint64_t i = checked + 1; i <= c; i++) {
            const uint8_t *slot = g->slots[i % SLOTS];
            size_t len = payload_len(i);
            for (size_t k = 0; k < len; k++) {
                if (slot[k] != payload_byte(i, k)) {
                    torn++;
                    break;
                }
            }
        }
        checked = c;
        g->counter_src[c % SLOTS] = c; /* the ack's own source */
        if (post_retry(post_ack, &s, c))
            return 31;
    }
    while (fab_conn_outstanding(s.conn) > 0 && th_now_ms() < end)
        fab_pool_progress_wait(s.pool, 50, 10);
    fprintf(stderr, "reader: %llu iterations, %llu torn\n",
            (unsigned long long)n, (unsigned long long)torn);
    /* Wait for the writer to hang up first (it waits for the last ack). */
    while (fab_conn_status(s.conn) == 0 && th_now_ms() < end)
        fab_pool_progress_wait(s.pool, 0, 50);
    teardown(&s);
    return torn ? 40 : 0;
}

static void run_guard(const char *provider, const char *iterations,
                      const char *ordering, int timeout_ms)
{
    uint16_t ports[2];
    ck_assert_int_eq(th_free_tcp_ports(ports, 2), 0);
    char p1[8], p2[8];
    snprintf(p1, sizeof(p1), "%u", ports[0]);
    snprintf(p2, sizeof(p2), "%u", ports[1]);
    struct th_procs procs;
    th_procs_init(&procs);
    const char *wargs[] = {"1",      p1,         "2",      p2,
                           provider, iterations, ordering, NULL};
    const char *rargs[] = {"2",      p2,         "1",      p1,
                           provider, iterations, ordering, NULL};
    ck_assert_int_ge(th_spawn_child(&procs, "guard_writer", wargs), 0);
    ck_assert_int_ge(th_spawn_child(&procs, "guard_reader", rargs), 0);
    ck_assert_int_eq(th_wait_all(&procs, timeout_ms), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(th_exited_ok(&procs, i), "child %d status 0x%x", i,
                      procs.status[i]);
}

START_TEST(guard_ordering_tcp)
{
    run_guard("tcp", "5000", "0", 120000);
}
END_TEST

/* The fallback mechanisms, forced: completion wait (tcp), FI_FENCE
 * (sockets has it). */
START_TEST(guard_ordering_tcp_completion_wait)
{
    run_guard("tcp", "2000", "2", 120000);
}
END_TEST

START_TEST(guard_ordering_sockets_fence)
{
    run_guard("sockets", "500", "1", 120000);
}
END_TEST

START_TEST(guard_ordering_sockets_smoke)
{
    run_guard("sockets", "500", "0", 120000);
}
END_TEST

START_TEST(guard_ordering_tcp_long)
{
    run_guard("tcp", "100000", "0", 600000);
}
END_TEST

START_TEST(guard_ordering_tcp_completion_wait_long)
{
    run_guard("tcp", "100000", "2", 600000);
}
END_TEST

START_TEST(guard_ordering_sockets_long)
{
    run_guard("sockets", "20000", "0", 600000);
}
END_TEST

/* ---- between two network namespaces ------------------------------------
 * Two namespaces joined by a veth pair; writer and reader each run in one
 * (ip netns exec).  Needs root and iproute2: skipped, saying so, without.
 * Everything is cleaned up before any assertion can end the test. */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void run_guard_netns(const char *provider, const char *iterations)
{
    if (geteuid() != 0 || sh("ip netns list >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP netns guard (%s): needs root and iproute2\n",
                provider);
        return;
    }
    int id = (int)getpid();
    int net = id % 250 + 1;
    char a[32], b[32], addr_a[32], addr_b[32];
    snprintf(a, sizeof(a), "fabA%d", id);
    snprintf(b, sizeof(b), "fabB%d", id);
    snprintf(addr_a, sizeof(addr_a), "10.213.%d.1", net);
    snprintf(addr_b, sizeof(addr_b), "10.213.%d.2", net);
    int setup_rc =
        sh("ip netns add %s && ip netns add %s && "
           "ip link add va%d type veth peer name vb%d && "
           "ip link set va%d netns %s && ip link set vb%d netns %s && "
           "ip -n %s addr add %s/24 dev va%d && "
           "ip -n %s addr add %s/24 dev vb%d && "
           "ip -n %s link set va%d up && ip -n %s link set vb%d up && "
           "ip -n %s link set lo up && ip -n %s link set lo up",
           a, b, id, id, id, a, id, b, a, addr_a, id, b, addr_b, id, a, id, b,
           id, a, b);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    exe[n > 0 ? n : 0] = 0;
    struct th_procs procs;
    th_procs_init(&procs);
    int wait_rc = -1;
    bool ok[2] = {false, false};
    if (setup_rc == 0 && n > 0) {
        const char *wargv[] = {
            "ip",           "netns", "exec", a,      exe,    "--child",
            "guard_writer", "1",     "7001", "2",    "7002", provider,
            iterations,     "0",     addr_a, addr_b, NULL};
        const char *rargv[] = {
            "ip",           "netns", "exec", b,      exe,    "--child",
            "guard_reader", "2",     "7002", "1",    "7001", provider,
            iterations,     "0",     addr_b, addr_a, NULL};
        if (th_spawn_exec(&procs, "/usr/sbin/ip", wargv) >= 0 &&
            th_spawn_exec(&procs, "/usr/sbin/ip", rargv) >= 0) {
            wait_rc = th_wait_all(&procs, 120000);
            ok[0] = th_exited_ok(&procs, 0);
            ok[1] = th_exited_ok(&procs, 1);
        }
        th_procs_kill_all(&procs);
    }
    sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", a, b);
    ck_assert_int_eq(setup_rc, 0);
    ck_assert_int_eq(wait_rc, 0);
    ck_assert(ok[0] && ok[1]);
}

START_TEST(guard_ordering_tcp_between_namespaces)
{
    run_guard_netns("tcp", "2000");
}
END_TEST

START_TEST(guard_ordering_sockets_between_namespaces)
{
    run_guard_netns("sockets", "300");
}
END_TEST

/* ---- kill -9 of a peer ------------------------------------------------ */

/* args: my_id my_port provider */
int child_victim(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    struct fab_pool *p =
        tf_pool((uint32_t)atoi(argv[1]), (uint16_t)atoi(argv[2]), argv[3]);
    if (!p)
        return 10;
    int64_t end = th_now_ms() + 60000;
    while (th_now_ms() < end)
        fab_pool_progress_wait(p, 50, 100);
    fab_pool_destroy(p);
    return 0;
}

struct fail_count {
    atomic_int n;
    atomic_int reason;
};

static void count_failure(void *ctx, uint32_t node_id, int reason)
{
    (void)node_id;
    struct fail_count *f = ctx;
    atomic_store(&f->reason, reason);
    atomic_fetch_add(&f->n, 1);
}

static bool both_reported(void *arg)
{
    struct fail_count *f = arg;
    return atomic_load(&f[0].n) >= 1 && atomic_load(&f[1].n) >= 1;
}

static void run_kill(const char *provider, bool idle)
{
    uint16_t port;
    ck_assert_int_eq(th_free_tcp_ports(&port, 1), 0);
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    struct th_procs procs;
    th_procs_init(&procs);
    const char *args[] = {"2", ps, provider, NULL};
    ck_assert_int_ge(th_spawn_child(&procs, "victim", args), 0);

    struct fab_pool *me = tf_pool(1, 0, provider);
    ck_assert_ptr_nonnull(me);
    struct fail_count f[2] = {{0}, {0}};
    struct fab_user_callbacks cb = {.on_failure = count_failure};
    struct fab_user *u[2];
    struct fab_conn *c[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(fab_user_create(me, &cb, &f[i], &u[i]), 0);
    int rc = -ECONNREFUSED;
    struct fab_error err;
    TH_WAIT_UNTIL((rc = fab_borrow(u[0], 2, "127.0.0.1", port, 2000, &c[0],
                                   &err)) != -ECONNREFUSED,
                  10000);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_int_eq(fab_borrow(u[1], 2, NULL, 0, 2000, &c[1], &err), 0);

    static uint8_t buf[64];
    struct fab_mr *mr;
    ck_assert_int_eq(
        fab_mr_register(me, buf, sizeof(buf), FAB_ACCESS_LOCAL, &mr), 0);
    ck_assert_int_eq(th_signal(&procs, 0, SIGKILL), 0);
    ck_assert_int_eq(th_wait_one(&procs, 0, 5000), 0);
    /* Writes posted meanwhile fail on the completion queue or at once;
     * either way the failure is reported once per user. */
    struct fab_mr_desc d = {0, 0, 64};
    int64_t t0 = th_now_ms();
    while (!both_reported(f) && th_now_ms() - t0 < 5000) {
        if (!idle)
            fab_write(c[0], mr, 0, 8, &d, 0, 0, NULL);
        fab_pool_progress_wait(me, 50, 10);
    }
    ck_assert(both_reported(f));
    int64_t t_detect = th_now_ms() - t0;
    fprintf(stderr, "%s: kill -9 detected in %lld ms (%s)\n", provider,
            (long long)t_detect, idle ? "idle" : "writing");
    int st = fab_conn_status(c[0]);
    ck_assert(st == -ECONNRESET || st == -EHOSTDOWN);
    t0 = th_now_ms();
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(fab_write(c[1], mr, 0, 8, &d, 0, 0, NULL), st);
    ck_assert_int_lt(th_now_ms() - t0, 200);
    ck_assert_int_eq(fab_borrow(u[0], 2, "127.0.0.1", port, 500, &c[0], &err),
                     -EHOSTDOWN);
    for (int i = 0; i < 20; i++)
        fab_pool_progress_wait(me, 0, 10);
    ck_assert_int_eq(atomic_load(&f[0].n), 1);
    ck_assert_int_eq(atomic_load(&f[1].n), 1);
    fab_mr_destroy(mr);
    fab_user_destroy(u[0]);
    fab_user_destroy(u[1]);
    fab_pool_destroy(me);
    th_procs_kill_all(&procs);
}

/* Issue 14: idle TCP connections held open to our bootstrap port (100,
 * never sending a byte) must not stall the pool thread: a cold borrow of
 * another process succeeds promptly and a killed peer's on_failure
 * arrives promptly.  (Served one socket at a time, 2 s each, the borrow
 * timed out and the failure took seconds.) */
static int idle_socket(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

START_TEST(idle_sockets_do_not_stall_the_pool)
{
    uint16_t ports[2];
    ck_assert_int_eq(th_free_tcp_ports(ports, 2), 0);
    char p2[8], p3[8];
    snprintf(p2, sizeof(p2), "%u", ports[0]);
    snprintf(p3, sizeof(p3), "%u", ports[1]);
    struct th_procs procs;
    th_procs_init(&procs);
    const char *a2[] = {"2", p2, "tcp", NULL};
    const char *a3[] = {"3", p3, "tcp", NULL};
    ck_assert_int_ge(th_spawn_child(&procs, "victim", a2), 0);
    ck_assert_int_ge(th_spawn_child(&procs, "victim", a3), 0);

    struct fab_pool *me = tf_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(me);
    struct fail_count f = {0};
    struct fab_user_callbacks cb = {.on_failure = count_failure};
    struct fab_user *u;
    ck_assert_int_eq(fab_user_create(me, &cb, &f, &u), 0);
    struct fab_conn *c2, *c3;
    struct fab_error err;
    int rc = -ECONNREFUSED;
    TH_WAIT_UNTIL((rc = fab_borrow(u, 2, "127.0.0.1", ports[0], 2000, &c2,
                                   &err)) != -ECONNREFUSED,
                  10000);
    ck_assert_msg(rc == 0, "%s", err.msg);
    /* Node 3's listener is up once it accepts a connection. */
    int probe = -1;
    TH_WAIT_UNTIL((probe = idle_socket(ports[1])) >= 0, 10000);
    ck_assert_int_ge(probe, 0);
    close(probe);

    int idle[100];
    for (int i = 0; i < 100; i++)
        ck_assert_int_ge(idle[i] = idle_socket(fab_pool_port(me)), 0);

    int64_t t0 = th_now_ms();
    rc = fab_borrow(u, 3, "127.0.0.1", ports[1], 5000, &c3, &err);
    int64_t t_borrow = th_now_ms() - t0;
    ck_assert_msg(rc == 0, "cold borrow with idle sockets open: %s (%lld ms)",
                  err.msg, (long long)t_borrow);

    ck_assert_int_eq(th_signal(&procs, 0, SIGKILL), 0);
    ck_assert_int_eq(th_wait_one(&procs, 0, 5000), 0);
    t0 = th_now_ms();
    TH_WAIT_UNTIL((fab_pool_progress_wait(me, 50, 10), atomic_load(&f.n) != 0),
                  10000);
    int64_t t_fail = th_now_ms() - t0;
    fprintf(stderr,
            "100 idle bootstrap sockets: cold borrow %lld ms, kill -9 to "
            "on_failure %lld ms\n",
            (long long)t_borrow, (long long)t_fail);
    ck_assert_int_eq(atomic_load(&f.n), 1);
    ck_assert_int_lt(t_borrow, 1500);
    ck_assert_int_lt(t_fail, 1500);
    for (int i = 0; i < 100; i++)
        close(idle[i]);
    fab_user_destroy(u);
    fab_pool_destroy(me);
    th_procs_kill_all(&procs);
}
END_TEST

START_TEST(kill9_peer_reported_once_tcp)
{
    run_kill("tcp", false);
}
END_TEST

START_TEST(kill9_idle_peer_reported_once_tcp)
{
    run_kill("tcp", true);
}
END_TEST

START_TEST(kill9_peer_reported_once_sockets)
{
    run_kill("sockets", false);
}
END_TEST

Suite *fab_multiproc_suite(void)
{
    Suite *s = suite_create("fab-multiproc");
    TCase *tc = tcase_create("multiproc");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, guard_ordering_tcp);
    tcase_add_test(tc, guard_ordering_tcp_completion_wait);
    tcase_add_test(tc, kill9_peer_reported_once_tcp);
    tcase_add_test(tc, kill9_idle_peer_reported_once_tcp);
    tcase_add_test(tc, idle_sockets_do_not_stall_the_pool);
    tcase_add_test(tc, guard_ordering_tcp_between_namespaces);
    suite_add_tcase(s, tc);
    TCase *sock = tcase_create("sockets");
    tcase_set_timeout(sock, 180);
    tcase_add_test(sock, guard_ordering_sockets_smoke);
    tcase_add_test(sock, guard_ordering_sockets_fence);
    tcase_add_test(sock, guard_ordering_sockets_between_namespaces);
    tcase_add_test(sock, kill9_peer_reported_once_sockets);
    suite_add_tcase(s, sock);
    return s;
}

Suite *fab_stress_suite(void)
{
    Suite *s = suite_create("fab-stress");
    TCase *tc = tcase_create("stress");
    tcase_set_timeout(tc, 900);
    tcase_add_test(tc, guard_ordering_tcp_long);
    tcase_add_test(tc, guard_ordering_tcp_completion_wait_long);
    tcase_add_test(tc, guard_ordering_sockets_long);
    suite_add_tcase(s, tc);
    return s;
}
