/* rdmc_bandwidth: librdmc goodput against a plain-TCP fan-out baseline.
 *
 *   rdmc_bandwidth [-n nodes] [-a algorithm|all] [-s size|all] [-c count]
 *                  [-b block_size] [-p provider] [-w window] [-r]
 *
 * Spawns nodes - 1 local receiver processes (default 3 nodes in all); the
 * parent is the sender.  For each configuration it multicasts `count`
 * messages of `size` bytes with librdmc and measures the per-receiver
 * goodput (bytes every receiver got / time until the sender saw every
 * message complete everywhere).  In the same run it measures the baseline:
 * the sender pushing the same bytes to every receiver over plain TCP
 * sockets at once (fan-out), and the CPU use of every process while the
 * group is idle for one second (the maximum is reported).  Progress on
 * stderr; one line per configuration on stdout:
 *   RESULT bench=rdmc_bandwidth nodes=3 algorithm=binomial_send
 *   size=1048576 gbytes_per_s=... tcp_fanout_gbytes_per_s=...
 *   idle_cpu_pct=... registered=0
 * -r: buffers registered once (rdmc_send_mr at the sender, incoming_mr at
 * the receivers; registered=1) instead of per message. */
#include <rdmc/rdmc.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAX_NODES 16

struct config {
    int nodes;
    enum rdmc_algorithm alg;
    size_t size;
    unsigned count;
    size_t block;
    const char *provider;
    unsigned window;
    bool registered;
    uint32_t group_id;
    uint16_t fab_ports[MAX_NODES];
    uint16_t tcp_ports[MAX_NODES];
};

struct state {
    atomic_ullong completed;
    atomic_int failures;
    uint8_t **bufs;
    struct fab_mr **mrs; /* -r: bufs registered once */
    unsigned nbufs;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void quiet(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    if (level <= LOG_ERR)
        fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), module, msg);
}

static void *on_incoming(void *ctx, struct rdmc_group *g, uint64_t index,
                         size_t size)
{
    struct state *st = ctx;
    (void)g;
    (void)size;
    return st->bufs[index % st->nbufs];
}

static int on_incoming_mr(void *ctx, struct rdmc_group *g, uint64_t index,
                          size_t size, struct fab_mr **mr, size_t *offset)
{
    struct state *st = ctx;
    (void)g;
    (void)size;
    *mr = st->mrs[index % st->nbufs];
    *offset = 0;
    return 0;
}

static void on_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                        void *data, size_t size)
{
    (void)g;
    (void)index;
    (void)data;
    (void)size;
    atomic_fetch_add(&((struct state *)ctx)->completed, 1);
}

static void on_failure(void *ctx, struct rdmc_group *g, uint32_t node,
                       int reason)
{
    (void)g;
    (void)node;
    (void)reason;
    atomic_fetch_add(&((struct state *)ctx)->failures, 1);
}

static int free_ports(uint16_t *ports, int n)
{
    int fds[2 * MAX_NODES];
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (bind(fds[i], (struct sockaddr *)&a, sizeof(a)) ||
            getsockname(fds[i], (struct sockaddr *)&a, &len))
            return -errno;
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

static int tcp_listen(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4)) {
        close(fd);
        return -1;
    }
    return fd;
}

static int tcp_connect(uint16_t port)
{
    for (int tries = 0; tries < 500; tries++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            return fd;
        close(fd);
        usleep(10000);
    }
    return -1;
}

static struct rdmc_group *make_group(const struct config *c, int rank,
                                     struct fab_pool **pool_out,
                                     struct state *st)
{
    struct fab_options fo;
    fab_options_init(&fo);
    fo.node_id = (uint32_t)rank + 1;
    fo.port = c->fab_ports[rank];
    fo.provider = c->provider;
    fo.log = quiet;
    struct fab_error ferr;
    struct fab_pool *pool = NULL;
    if (fab_pool_create(&fo, &pool, &ferr)) {
        fprintf(stderr, "pool: %s\n", ferr.msg);
        return NULL;
    }
    struct rdmc_member members[MAX_NODES];
    for (int i = 0; i < c->nodes; i++)
        members[i] =
            (struct rdmc_member){(uint32_t)i + 1, "127.0.0.1", c->fab_ports[i]};
    struct rdmc_options o;
    rdmc_options_init(&o);
    o.group_id = c->group_id;
    o.algorithm = c->alg;
    o.block_size = c->block;
    o.max_msg_size = c->size;
    o.window = c->window;
    o.log = quiet;
    if (c->registered) {
        o.incoming_mr = on_incoming_mr;
        st->mrs = calloc(st->nbufs, sizeof(*st->mrs));
        for (unsigned i = 0; i < st->nbufs; i++)
            if (fab_mr_register(pool, st->bufs[i], c->size,
                                FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                &st->mrs[i])) {
                fprintf(stderr, "registering buffers failed\n");
                return NULL;
            }
    }
    struct rdmc_callbacks cbs = {on_incoming, on_complete, on_failure};
    struct rdmc_group *g = NULL;
    int rc =
        rdmc_group_create(pool, members, (size_t)c->nodes, &o, &cbs, st, &g);
    if (rc) {
        fprintf(stderr, "group: %s\n", rdmc_strerror(rc));
        fab_pool_destroy(pool);
        return NULL;
    }
    *pool_out = pool;
    return g;
}

static void alloc_bufs(struct state *st, const struct config *c)
{
    st->nbufs = c->window;
    st->bufs = calloc(st->nbufs, sizeof(*st->bufs));
    for (unsigned i = 0; i < st->nbufs; i++) {
        st->bufs[i] = malloc(c->size);
        memset(st->bufs[i], (int)i + 1, c->size);
    }
}

/* Before the pool goes. */
static void drop_mrs(struct state *st)
{
    for (unsigned i = 0; st->mrs && i < st->nbufs; i++)
        fab_mr_destroy(st->mrs[i]);
    free(st->mrs);
    st->mrs = NULL;
}

static void free_bufs(struct state *st)
{
    for (unsigned i = 0; i < st->nbufs; i++)
        free(st->bufs[i]);
    free(st->bufs);
}

static bool wait_count(struct state *st, uint64_t n, double timeout_s)
{
    double end = now_s() + timeout_s;
    while (atomic_load(&st->completed) < n) {
        if (atomic_load(&st->failures) || now_s() > end)
            return false;
        usleep(200);
    }
    return true;
}

static double idle_cpu_pct(void)
{
    double c0 = cpu_s(), t0 = now_s();
    sleep(1);
    return 100.0 * (cpu_s() - c0) / (now_s() - t0);
}

/* Receiver: multicast, idle, baseline, then report "<idle_pct>" on out_fd
 * and wait for the parent's go to leave. */
static int run_receiver(const struct config *c, int rank, int out_fd, int in_fd)
{
    int lfd = tcp_listen(c->tcp_ports[rank]);
    if (lfd < 0)
        return 1;
    struct state st = {0};
    alloc_bufs(&st, c);
    struct fab_pool *pool = NULL;
    struct rdmc_group *g = make_group(c, rank, &pool, &st);
    if (!g)
        return 2;
    double cpu0 = cpu_s();
    if (!wait_count(&st, c->count, 300))
        return 3;
    double rdmc_cpu = cpu_s() - cpu0;
    double idle = idle_cpu_pct();
    /* baseline: read count * size bytes, then ack one byte */
    int fd = accept(lfd, NULL, NULL);
    cpu0 = cpu_s();
    size_t want = (size_t)c->count * c->size, got = 0;
    uint8_t *sink = st.bufs[0];
    while (got < want) {
        size_t chunk = want - got < c->size ? want - got : c->size;
        ssize_t r = read(fd, sink, chunk);
        if (r <= 0)
            return 4;
        got += (size_t)r;
    }
    if (write(fd, "k", 1) != 1)
        return 5;
    char line[64];
    int len = snprintf(line, sizeof(line), "%.3f %.3f %.3f\n", idle, rdmc_cpu,
                       cpu_s() - cpu0);
    if (write(out_fd, line, (size_t)len) != len)
        return 6;
    char go;
    if (read(in_fd, &go, 1) < 0)
        return 7;
    close(fd);
    close(lfd);
    rdmc_group_destroy(g);
    drop_mrs(&st);
    fab_pool_destroy(pool);
    free_bufs(&st);
    return 0;
}

struct pusher {
    int fd;
    const uint8_t *buf;
    size_t size;
    unsigned count;
};

static void *push_main(void *arg)
{
    struct pusher *p = arg;
    for (unsigned i = 0; i < p->count; i++) {
        size_t off = 0;
        while (off < p->size) {
            ssize_t w = write(p->fd, p->buf + off, p->size - off);
            if (w <= 0)
                return NULL;
            off += (size_t)w;
        }
    }
    char ack;
    if (read(p->fd, &ack, 1) != 1)
        return NULL;
    return NULL;
}

static int run_config(struct config *c)
{
    if (free_ports(c->fab_ports, c->nodes) ||
        free_ports(c->tcp_ports, c->nodes))
        return -1;
    c->group_id = (uint32_t)(getpid() % 100000) * 8 + 1;
    int to_parent[MAX_NODES][2], to_child[MAX_NODES][2];
    pid_t pids[MAX_NODES];
    for (int r = 1; r < c->nodes; r++) {
        if (pipe(to_parent[r]) || pipe(to_child[r]))
            return -1;
        pids[r] = fork();
        if (pids[r] == 0) {
            int rc = run_receiver(c, r, to_parent[r][1], to_child[r][0]);
            _exit(rc);
        }
        /* The children's ends: a receiver that dies must give the read
         * below end-of-file, not block it forever. */
        close(to_parent[r][1]);
        close(to_child[r][0]);
    }
    struct state st = {0};
    alloc_bufs(&st, c);
    struct fab_pool *pool = NULL;
    struct rdmc_group *g = make_group(c, 0, &pool, &st);
    if (!g)
        return -1;
    double t0 = now_s(), cpu0 = cpu_s();
    for (unsigned i = 0; i < c->count; i++) {
        if (c->registered)
            rdmc_send_mr(g, st.mrs[i % st.nbufs], 0, c->size, NULL);
        else
            rdmc_send(g, st.bufs[i % st.nbufs], c->size, NULL);
    }
    bool ok = wait_count(&st, c->count, 300);
    double rdmc_s = now_s() - t0;
    double cpu_rdmc[MAX_NODES], cpu_tcp[MAX_NODES];
    cpu_rdmc[0] = cpu_s() - cpu0;
    double idle = idle_cpu_pct();

    /* baseline: the same bytes to every receiver at once over TCP */
    struct pusher push[MAX_NODES];
    pthread_t th[MAX_NODES];
    for (int r = 1; r < c->nodes; r++) {
        push[r] = (struct pusher){tcp_connect(c->tcp_ports[r]), st.bufs[0],
                                  c->size, c->count};
    }
    t0 = now_s();
    cpu0 = cpu_s();
    for (int r = 1; r < c->nodes; r++)
        pthread_create(&th[r], NULL, push_main, &push[r]);
    for (int r = 1; r < c->nodes; r++)
        pthread_join(th[r], NULL);
    double tcp_s = now_s() - t0;
    cpu_tcp[0] = cpu_s() - cpu0;
    for (int r = 1; r < c->nodes; r++) {
        char line[64] = "";
        ssize_t n = read(to_parent[r][0], line, sizeof(line) - 1);
        if (n > 0) {
            line[n] = '\0';
            double v = 0, cr = 0, ct = 0;
            if (sscanf(line, "%lf %lf %lf", &v, &cr, &ct) != 3)
                ok = false;
            if (v > idle)
                idle = v;
            cpu_rdmc[r] = cr;
            cpu_tcp[r] = ct;
        } else {
            ok = false;
        }
        if (write(to_child[r][1], "g", 1) != 1)
            ok = false;
        close(push[r].fd);
    }
    int status;
    for (int r = 1; r < c->nodes; r++) {
        waitpid(pids[r], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ok = false;
        close(to_parent[r][0]);
        close(to_child[r][1]);
    }
    rdmc_group_destroy(g);
    drop_mrs(&st);
    fab_pool_destroy(pool);
    free_bufs(&st);
    double bytes = (double)c->size * c->count;
    if (ok) {
        /* CPU seconds per GB every receiver got, per process (rank 0 is
         * the sender): where the cores went, steadier than rates on a
         * shared machine. */
        fprintf(stderr, "cpu s/GB rdmc (%.3f s):", rdmc_s);
        for (int r = 0; r < c->nodes; r++)
            fprintf(stderr, " %.3f", cpu_rdmc[r] / (bytes / 1e9));
        fprintf(stderr, "; tcp fan-out (%.3f s):", tcp_s);
        for (int r = 0; r < c->nodes; r++)
            fprintf(stderr, " %.3f", cpu_tcp[r] / (bytes / 1e9));
        fprintf(stderr, "\n");
    }
    if (!ok) {
        fprintf(stderr, "configuration failed: %s size %zu\n",
                rdmc_algorithm_name(c->alg), c->size);
        return -1;
    }
    printf("RESULT bench=rdmc_bandwidth nodes=%d algorithm=%s size=%zu "
           "gbytes_per_s=%.3f tcp_fanout_gbytes_per_s=%.3f "
           "idle_cpu_pct=%.2f registered=%d\n",
           c->nodes, rdmc_algorithm_name(c->alg), c->size, bytes / rdmc_s / 1e9,
           bytes / tcp_s / 1e9, idle, c->registered ? 1 : 0);
    fflush(stdout);
    return 0;
}

/* Usage on out: stdout for --help, stderr for a usage error (exit 64). */
static void usage(FILE *out)
{
    fprintf(out, "usage: rdmc_bandwidth [-n nodes] [-a algorithm|all] "
                 "[-s size|all] [-c count] [-b block_size] [-p provider] "
                 "[-w window] [-r]\n");
}

int main(int argc, char **argv)
{
    struct config c = {.nodes = 3,
                       .alg = RDMC_BINOMIAL_SEND,
                       .size = 1u << 20,
                       .count = 0,
                       .block = 0,
                       .provider = "tcp",
                       .window = 4};
    bool all_algs = false, all_sizes = false;
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"algorithm", required_argument, NULL, 'a'},
        {"size", required_argument, NULL, 's'},
        {"count", required_argument, NULL, 'c'},
        {"block-size", required_argument, NULL, 'b'},
        {"provider", required_argument, NULL, 'p'},
        {"window", required_argument, NULL, 'w'},
        {"registered", no_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "n:a:s:c:b:p:w:rh", longopts,
                              NULL)) != -1) {
        switch (opt) {
        case 'n':
            c.nodes = atoi(optarg);
            break;
        case 'a':
            if (!strcmp(optarg, "all"))
                all_algs = true;
            else if (rdmc_algorithm_from_name(optarg, &c.alg)) {
                fprintf(stderr, "rdmc_bandwidth: unknown algorithm %s\n",
                        optarg);
                usage(stderr);
                return 64;
            }
            break;
        case 's':
            if (!strcmp(optarg, "all"))
                all_sizes = true;
            else
                c.size = (size_t)strtoull(optarg, NULL, 0);
            break;
        case 'c':
            c.count = (unsigned)atoi(optarg);
            break;
        case 'b':
            c.block = (size_t)strtoull(optarg, NULL, 0);
            break;
        case 'p':
            c.provider = optarg;
            break;
        case 'w':
            c.window = (unsigned)atoi(optarg);
            break;
        case 'r':
            c.registered = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;
        }
    }
    if (optind != argc || c.nodes < 2 || c.nodes > MAX_NODES || c.size == 0) {
        usage(stderr);
        return 64;
    }
    signal(SIGPIPE, SIG_IGN);
    static const size_t sizes[] = {10 * 1024, 1u << 20, 16u << 20};
    static const enum rdmc_algorithm algs[] = {
        RDMC_BINOMIAL_SEND, RDMC_CHAIN_SEND, RDMC_SEQUENTIAL_SEND,
        RDMC_TREE_SEND};
    int failed = 0;
    for (size_t a = 0; a < (all_algs ? 4u : 1u); a++) {
        for (size_t s = 0; s < (all_sizes ? 3u : 1u); s++) {
            struct config run = c;
            if (all_algs)
                run.alg = algs[a];
            if (all_sizes)
                run.size = sizes[s];
            if (!c.block)
                run.block = run.size >= (1u << 20) ? 256u << 10 : run.size;
            if (!c.count) /* about 256 MiB per configuration, 20..2000 */
                run.count = (unsigned)((256u << 20) / run.size);
            if (run.count > 2000)
                run.count = 2000;
            if (run.count < 20)
                run.count = 20;
            fprintf(stderr, "%s size %zu block %zu count %u ...\n",
                    rdmc_algorithm_name(run.alg), run.size, run.block,
                    run.count);
            if (run_config(&run))
                failed++;
        }
    }
    return failed ? 1 : 0;
}
