/* fab_latency: one-way latency of a counter pushed with fab_writedata
 * between two processes on loopback (ping-pong, RTT / 2), in two waiting
 * modes: "poll" (spin on fab_pool_progress) and "sleep" (no spin: block on
 * the completion queue's fd at once), "spin50" (spin 50 us, then block),
 * plus a plain TCP socket (TCP_NODELAY) as the baseline.  With
 * FAB_LATENCY_PLAIN_WRITE=1 the counter goes by fab_write (no remote
 * completion data; then only "poll" makes sense).
 *
 *   fab_latency [provider] [iterations]      (default: tcp 20000)
 *
 * Progress on stderr; one stdout line per configuration:
 *   RESULT bench=fab_latency provider=P mode=M us_p50=X us_p99=Y
 */
#include <fab/fab.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct region {
    uint64_t counter;
    uint64_t src[64];
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    bind(fd, (struct sockaddr *)&sin, sizeof(sin));
    socklen_t sl = sizeof(sin);
    getsockname(fd, (struct sockaddr *)&sin, &sl);
    close(fd);
    return ntohs(sin.sin_port);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *provider, const char *mode, int64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof(*ns), cmp_i64);
    printf("RESULT bench=fab_latency provider=%s mode=%s us_p50=%.1f "
           "us_p99=%.1f\n",
           provider, mode, ns[n / 2] / 2000.0, ns[n * 99 / 100] / 2000.0);
    fflush(stdout);
}

struct side {
    struct fab_pool *pool;
    struct fab_user *user;
    struct fab_conn *conn;
    struct fab_mr *mr;
    struct fab_mr_desc remote;
    struct region *r;
};

static int side_open(struct side *s, const char *provider, uint32_t me,
                     uint16_t my_port, uint32_t peer, uint16_t peer_port)
{
    struct fab_options o;
    fab_options_init(&o);
    o.provider = provider;
    o.node_id = me;
    o.port = my_port;
    struct fab_error err;
    if (fab_pool_create(&o, &s->pool, &err)) {
        fprintf(stderr, "pool: %s\n", err.msg);
        return -1;
    }
    s->r = calloc(1, sizeof(*s->r));
    fab_mr_register(s->pool, s->r, sizeof(*s->r),
                    FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE, &s->mr);
    struct fab_mr_desc d;
    fab_mr_get_desc(s->mr, &d);
    uint8_t enc[FAB_MR_DESC_SIZE];
    fab_mr_desc_encode(&d, enc);
    fab_pool_publish(s->pool, 1, enc, sizeof(enc));
    fab_user_create(s->pool, NULL, NULL, &s->user);
    int rc;
    int64_t end = now_ns() + 10000000000LL;
    do {
        rc = fab_borrow(s->user, peer, "127.0.0.1", peer_port, 2000, &s->conn,
                        &err);
        if (rc == -ECONNREFUSED)
            usleep(10000);
    } while (rc == -ECONNREFUSED && now_ns() < end);
    if (rc) {
        fprintf(stderr, "borrow: %s\n", err.msg);
        return -1;
    }
    uint8_t got[64];
    size_t len;
    if (fab_pool_fetch(s->pool, peer, 1, got, sizeof(got), &len, 10000, &err) ||
        fab_mr_desc_decode(got, len, &s->remote)) {
        fprintf(stderr, "fetch: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static void side_close(struct side *s)
{
    fab_release(s->user, s->conn);
    fab_user_destroy(s->user);
    fab_mr_destroy(s->mr);
    fab_pool_destroy(s->pool);
    free(s->r);
}

static bool g_plain_write; /* benchmark-local switch: write vs writedata */

static int push(struct side *s, uint64_t v)
{
    if (g_plain_write) {
        size_t src = offsetof(struct region, src) + (v % 64) * 8;
        s->r->src[v % 64] = v;
        int rc;
        while ((rc = fab_write(s->conn, s->mr, src, 8, &s->remote,
                               offsetof(struct region, counter), 0, NULL)) ==
               -EAGAIN)
            fab_pool_progress(s->pool);
        return rc;
    }
    size_t src = offsetof(struct region, src) + (v % 64) * 8;
    s->r->src[v % 64] = v;
    int rc;
    while ((rc = fab_writedata(s->conn, s->mr, src, 8, &s->remote,
                               offsetof(struct region, counter), 0, 0, NULL)) ==
           -EAGAIN)
        fab_pool_progress(s->pool);
    return rc;
}

/* spin_us < 0 ("poll"): check memory after every progress call (plain
 * writes make no completion at the target).  Otherwise spin that long on
 * progress, then block on the completion fd ("spin50", "sleep"). */
static int wait_for(struct side *s, uint64_t v, int spin_us)
{
    while (__atomic_load_n(&s->r->counter, __ATOMIC_ACQUIRE) < v) {
        if (fab_conn_status(s->conn))
            return -1;
        if (spin_us < 0)
            fab_pool_progress(s->pool);
        else
            fab_pool_progress_wait(s->pool, spin_us, 1000);
    }
    return 0;
}

/* Phases: poll, spin50, sleep (see wait_for). */
static int run_fab(const char *provider, int iters, bool leader, uint16_t p1,
                   uint16_t p2)
{
    struct side s;
    if (side_open(&s, provider, leader ? 1 : 2, leader ? p1 : p2,
                  leader ? 2 : 1, leader ? p2 : p1))
        return 1;
    int64_t *ns = calloc((size_t)iters, sizeof(*ns));
    uint64_t v = 0;
    const char *modes[] = {"poll", "spin50", "sleep"};
    const int spins[] = {-1, 50, 0};
    /* Plain writes make no completion at the target: only "poll" works. */
    int n_modes = g_plain_write ? 1 : 3;
    const char *only = getenv("FAB_LATENCY_MODE");
    for (int m = 0; m < n_modes; m++) {
        if (only && strcmp(only, modes[m]) != 0)
            continue;
        int warm = iters / 10;
        for (int i = -warm; i < iters; i++) {
            int64_t t0 = now_ns();
            if (leader) {
                push(&s, ++v);
                if (wait_for(&s, ++v, spins[m]))
                    return 2;
            } else {
                if (wait_for(&s, ++v, spins[m]))
                    return 2;
                push(&s, ++v);
            }
            if (i >= 0)
                ns[i] = now_ns() - t0;
        }
        if (leader) {
            report(provider, modes[m], ns, iters);
            fprintf(stderr, "fab_latency: %s %s done\n", provider, modes[m]);
        }
    }
    /* Let the last writes complete before hanging up. */
    for (int i = 0; i < 50 && fab_conn_outstanding(s.conn); i++)
        fab_pool_progress_wait(s.pool, 100, 10);
    if (!leader) {
        while (fab_conn_status(s.conn) == 0)
            fab_pool_progress_wait(s.pool, 0, 100);
    }
    free(ns);
    side_close(&s);
    return 0;
}

static int run_tcp(int iters, bool leader, uint16_t port)
{
    int fd;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int one = 1;
    if (leader) {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) || listen(l, 1))
            return 1;
        fd = accept(l, NULL, NULL);
        close(l);
    } else {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        int64_t end = now_ns() + 5000000000LL;
        while (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
            if (now_ns() > end)
                return 1;
            close(fd);
            fd = socket(AF_INET, SOCK_STREAM, 0);
            usleep(10000);
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int64_t *ns = calloc((size_t)iters, sizeof(*ns));
    uint64_t v = 0;
    for (int i = -iters / 10; i < iters; i++) {
        int64_t t0 = now_ns();
        if (leader) {
            if (send(fd, &v, 8, 0) != 8 || recv(fd, &v, 8, MSG_WAITALL) != 8)
                return 2;
        } else {
            if (recv(fd, &v, 8, MSG_WAITALL) != 8 || send(fd, &v, 8, 0) != 8)
                return 2;
        }
        if (i >= 0)
            ns[i] = now_ns() - t0;
    }
    if (leader)
        report("socket", "blocking", ns, iters);
    free(ns);
    close(fd);
    return 0;
}

static const char usage_text[] =
    "usage: fab_latency [PROVIDER [ITERATIONS]]   (default: tcp 20000)\n";

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    char *end = NULL;
    long n = argc > 2 ? strtol(argv[2], &end, 10) : 20000;
    if (argc > 3 || (argc > 1 && argv[1][0] == '-') ||
        (argc > 2 && (end == argv[2] || *end || n <= 0 || n > 100000000))) {
        fputs(usage_text, stderr);
        return 64;
    }
    const char *provider = argc > 1 ? argv[1] : "tcp";
    int iters = (int)n;
    const char *plain = getenv("FAB_LATENCY_PLAIN_WRITE");
    g_plain_write = plain && plain[0] == '1';
    if (iters < 100)
        iters = 100;
    uint16_t p1 = free_port(), p2 = free_port(), p3 = free_port();
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        int rc = run_fab(provider, iters, false, p1, p2);
        if (rc == 0)
            rc = run_tcp(iters, false, p3);
        _exit(rc);
    }
    int rc = run_fab(provider, iters, true, p1, p2);
    if (rc == 0)
        rc = run_tcp(iters, true, p3);
    int st = 0;
    if (rc)
        kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return rc ? rc : (WIFEXITED(st) ? WEXITSTATUS(st) : 1);
}
