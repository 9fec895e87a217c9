/* sst_latency: SST latency, put rate, table set-up time and idle CPU,
 * against a plain TCP socket baseline.
 *
 * Spawns three processes (fork) on loopback, each with its own fab pool,
 * and runs, in order:
 *   1. a cold create of a 3-member table (new connections), then 20
 *      create+destroy cycles over the pooled connections;
 *   2. counter ping-pong between ranks 0 and 1 in a 2-member table, on the
 *      tables' polling threads (predicate + trigger + sst_put_to);
 *   3. the same in a 3-member table whose third member stays idle (3
 *      processes on this machine's cores);
 *   4. the put rate of an 8-byte counter from rank 0 to both others;
 *   5. the CPU an idle 3-member table costs over 5 s (getrusage);
 *   6. a blocking TCP_NODELAY socket ping-pong of 8 bytes (baseline).
 * Progress goes to stderr; stdout gets one line:
 *   RESULT bench=sst_latency provider=P us_p50=.. us_p99=.. us_p50_3procs=..
 *          tcp_us_p50=.. puts_per_s=.. create_ms=.. idle_cpu_pct=..
 * Latencies are one-way (round trip / 2), in microseconds.  create_ms is a
 * pooled create plus destroy; the cold create is reported on stderr.
 *
 * Usage: sst_latency [--provider tcp|sockets] [--rounds N] [--idle-s S]
 *                    [--spin-us US]   (table option spin_us; -1: default)
 */
#include <sst/sst.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
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

#define NPROC 3

struct config {
    const char *provider;
    int rounds;
    int idle_s;
    int spin_us;
    uint16_t ports[NPROC + 1]; /* pools, then the TCP baseline */
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void log_cb(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    if (level <= LOG_WARNING)
        fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), module, msg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_us(int64_t *ns, int n, double p)
{
    qsort(ns, (size_t)n, sizeof(*ns), cmp_i64);
    int i = (int)(p * (n - 1) + 0.5);
    return (double)ns[i] / 1000.0;
}

static int free_ports(uint16_t *ports, int n)
{
    int fds[8];
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof(a);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) ||
            getsockname(fds[i], (struct sockaddr *)&a, &l))
            return -1;
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

/* ---- one process ------------------------------------------------------- */

struct member {
    const struct config *cfg;
    uint32_t rank;
    struct fab_pool *pool;
    struct sst_member all[NPROC];
    FILE *out; /* results to the parent */
};

static const struct sst_field fields[] = {{"counter", 8, 1}};

static struct sst_table *make_table(struct member *m, uint32_t n, uint64_t id)
{
    struct sst_options o;
    sst_options_init(&o);
    o.table_id = id;
    o.setup_timeout_ms = 120000;
    o.suspect_timeout_ms = 10000; /* a loaded 2-core machine */
    o.log = log_cb;
    o.spin_us = m->cfg->spin_us;
    struct sst_table *t = NULL;
    struct sst_error err;
    if (sst_create(m->pool, m->all, n, m->rank, fields, 1, &o, &t, &err)) {
        fprintf(stderr, "rank %u: table %" PRIu64 ": %s\n", m->rank, id,
                err.msg);
        exit(3);
    }
    return t;
}

static uint64_t load(struct sst_table *t, uint32_t r)
{
    return __atomic_load_n((uint64_t *)sst_field(t, r, 0, 0), __ATOMIC_ACQUIRE);
}

static void store(struct sst_table *t, uint32_t r, uint64_t v)
{
    __atomic_store_n((uint64_t *)sst_field(t, r, 0, 0), v, __ATOMIC_RELEASE);
}

/* Ping-pong on the polling threads.  Rank 0 sends i, rank 1 echoes it;
 * rank 0 timestamps each round trip. */
struct pingpong {
    uint32_t me, peer;
    int rounds, warmup;
    int64_t sent_ns;
    int64_t *rtt;
    _Atomic int done;
};

static bool ping_ready(struct sst_table *t, void *ctx)
{
    struct pingpong *pp = ctx;
    uint64_t mine = load(t, pp->me);
    return load(t, pp->peer) == mine &&
           mine < (uint64_t)(pp->rounds + pp->warmup);
}

static void ping_send(struct sst_table *t, void *ctx)
{
    struct pingpong *pp = ctx;
    int64_t now = now_ns();
    uint64_t mine = load(t, pp->me);
    if (mine > (uint64_t)pp->warmup)
        pp->rtt[mine - (uint64_t)pp->warmup - 1] = now - pp->sent_ns;
    if (mine + 1 >= (uint64_t)(pp->rounds + pp->warmup)) {
        if (mine + 1 > (uint64_t)(pp->rounds + pp->warmup))
            return;
    }
    pp->sent_ns = now_ns();
    store(t, pp->me, mine + 1);
    sst_put_to(t, &pp->peer, 1, 0, 8);
}

static bool pong_ready(struct sst_table *t, void *ctx)
{
    struct pingpong *pp = ctx;
    return load(t, pp->peer) > load(t, pp->me);
}

static void pong_send(struct sst_table *t, void *ctx)
{
    struct pingpong *pp = ctx;
    store(t, pp->me, load(t, pp->peer));
    sst_put_to(t, &pp->peer, 1, 0, 8);
}

/* Returns the one-way p50 and p99 (rank 0) after the ping-pong. */
static void pingpong(struct member *m, struct sst_table *t, double *p50,
                     double *p99)
{
    struct pingpong pp = {.me = m->rank,
                          .peer = 1 - m->rank,
                          .rounds = m->cfg->rounds,
                          .warmup = 200};
    pp.rtt = calloc((size_t)pp.rounds, sizeof(*pp.rtt));
    uint64_t last = (uint64_t)(pp.rounds + pp.warmup);
    struct sst_pred *h;
    if (m->rank == 0)
        sst_predicate_add(t, ping_ready, ping_send, &pp, SST_RECURRENT, &h);
    else
        sst_predicate_add(t, pong_ready, pong_send, &pp, SST_RECURRENT, &h);
    while (load(t, 0) < last || load(t, 1) < last)
        sleep_ms(2);
    sst_predicate_remove(t, h);
    if (m->rank == 0) {
        /* The last round trip completes when rank 1 echoes `last`. */
        pp.rtt[pp.rounds - 1] = pp.rtt[pp.rounds > 1 ? pp.rounds - 2 : 0];
        for (int i = 0; i < pp.rounds; i++)
            pp.rtt[i] /= 2; /* one way */
        *p50 = percentile_us(pp.rtt, pp.rounds, 0.50);
        *p99 = percentile_us(pp.rtt, pp.rounds, 0.99);
    }
    free(pp.rtt);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Plain TCP ping-pong: rank 1 listens, rank 0 connects. */
static double tcp_pingpong(struct member *m)
{
    int rounds = m->cfg->rounds, warmup = 200;
    int fd = -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(m->cfg->ports[NPROC]),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (m->rank == 1) {
        int l = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1)) {
            perror("tcp baseline: bind");
            exit(4);
        }
        fd = accept(l, NULL, NULL);
        close(l);
    } else {
        for (int tries = 0; tries < 1000; tries++) {
            fd = socket(AF_INET, SOCK_STREAM, 0);
            if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
                break;
            close(fd);
            fd = -1;
            sleep_ms(5);
        }
    }
    if (fd < 0) {
        perror("tcp baseline");
        exit(4);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int64_t *rtt = calloc((size_t)rounds, sizeof(*rtt));
    uint64_t v = 0;
    for (int i = 0; i < rounds + warmup; i++) {
        if (m->rank == 0) {
            int64_t t0 = now_ns();
            v = (uint64_t)i;
            if (write(fd, &v, 8) != 8 || read(fd, &v, 8) != 8)
                exit(5);
            if (i >= warmup)
                rtt[i - warmup] = (now_ns() - t0) / 2;
        } else {
            if (read(fd, &v, 8) != 8 || write(fd, &v, 8) != 8)
                exit(5);
        }
    }
    close(fd);
    double p50 = m->rank == 0 ? percentile_us(rtt, rounds, 0.5) : 0;
    free(rtt);
    return p50;
}

static int member_main(struct member *m)
{
    const struct config *cfg = m->cfg;
    struct fab_options fo;
    fab_options_init(&fo);
    fo.provider = cfg->provider;
    fo.node_id = m->rank + 1;
    fo.port = cfg->ports[m->rank];
    fo.fingerprint = 0x5ab1;
    fo.connect_timeout_ms = 60000;
    fo.log = log_cb;
    struct fab_error ferr;
    if (fab_pool_create(&fo, &m->pool, &ferr)) {
        fprintf(stderr, "rank %u: pool: %s\n", m->rank, ferr.msg);
        return 2;
    }
    for (uint32_t r = 0; r < NPROC; r++) {
        m->all[r].node_id = r + 1;
        m->all[r].host = "127.0.0.1";
        m->all[r].port = cfg->ports[r];
    }

    /* 1. create times */
    int64_t t0 = now_ns();
    struct sst_table *t = make_table(m, NPROC, 100);
    double cold_ms = (double)(now_ns() - t0) / 1e6;
    sst_destroy(t);
    const int cycles = 20;
    double create_ms = 0, destroy_ms = 0;
    for (int i = 0; i < cycles; i++) {
        t0 = now_ns();
        t = make_table(m, NPROC, 101 + (uint64_t)i);
        int64_t t1 = now_ns();
        sst_destroy(t);
        create_ms += (double)(t1 - t0) / 1e6;
        destroy_ms += (double)(now_ns() - t1) / 1e6;
    }
    create_ms /= cycles;
    destroy_ms /= cycles;
    fprintf(m->out, "cold_ms %f\ncreate_ms %f\ndestroy_ms %f\n", cold_ms,
            create_ms, destroy_ms);
    if (m->rank == 0)
        fprintf(stderr,
                "create: cold %.2f ms, pooled %.2f ms + destroy %.2f ms\n",
                cold_ms, create_ms, destroy_ms);

    /* 2. ping-pong, 2 members */
    double p50 = 0, p99 = 0;
    if (m->rank < 2) {
        t = make_table(m, 2, 1);
        pingpong(m, t, &p50, &p99);
        sst_sync(t, 60000);
        sst_destroy(t);
        if (m->rank == 0) {
            fprintf(m->out, "us_p50 %f\nus_p99 %f\n", p50, p99);
            fprintf(stderr, "ping-pong 2 procs: p50 %.1f us, p99 %.1f us\n",
                    p50, p99);
        }
    }

    /* 3. ping-pong, 3 members, the third idle */
    t = make_table(m, NPROC, 2);
    if (m->rank < 2) {
        pingpong(m, t, &p50, &p99);
        if (m->rank == 0) {
            fprintf(m->out, "us_p50_3procs %f\nus_p99_3procs %f\n", p50, p99);
            fprintf(stderr, "ping-pong 3 procs: p50 %.1f us, p99 %.1f us\n",
                    p50, p99);
        }
    }
    sst_sync(t, 60000);
    sst_destroy(t);

    /* 4. put rate */
    t = make_table(m, NPROC, 3);
    if (m->rank == 0) {
        int64_t start = now_ns(), end = start + 1000000000;
        uint64_t puts = 0;
        while (now_ns() < end) {
            for (int k = 0; k < 64; k++) {
                store(t, 0, puts + 1);
                if (sst_put(t, 0, 8) != 0)
                    break;
                puts++;
            }
        }
        sst_put_wait(t, NULL, 0, 0, 8, 60000);
        double rate = (double)puts * 1e9 / (double)(now_ns() - start);
        fprintf(m->out, "puts_per_s %f\n", rate);
        fprintf(stderr, "puts: %.0f per second (to 2 members)\n", rate);
    }
    sst_sync(t, 60000);
    sst_destroy(t);

    /* 5. idle CPU */
    t = make_table(m, NPROC, 4);
    sleep_ms(200); /* let set-up traffic settle */
    double c0 = cpu_s();
    int64_t w0 = now_ns();
    sleep_ms(cfg->idle_s * 1000);
    double pct = (cpu_s() - c0) * 100.0 / ((double)(now_ns() - w0) / 1e9);
    struct sst_stats st;
    sst_get_stats(t, &st);
    fprintf(m->out, "idle_cpu_pct %f\n", pct);
    fprintf(stderr,
            "rank %u idle: %.2f%% of a core (%" PRIu64 " wake-ups, %" PRIu64
            " heartbeats)\n",
            m->rank, pct, st.wakeups, st.heartbeats);
    sst_sync(t, 60000);
    sst_destroy(t);

    /* 6. TCP baseline */
    if (m->rank < 2) {
        double tcp = tcp_pingpong(m);
        if (m->rank == 0) {
            fprintf(m->out, "tcp_us_p50 %f\n", tcp);
            fprintf(stderr, "tcp baseline: p50 %.1f us\n", tcp);
        }
    }
    /* A last barrier before the pools (and connections) go away. */
    t = make_table(m, NPROC, 5);
    sst_destroy(t);
    fab_pool_destroy(m->pool);
    fflush(m->out);
    return 0;
}

/* ---- parent ------------------------------------------------------------ */

struct figures {
    double us_p50, us_p99, us_p50_3, tcp_p50, puts, create_ms, cold_ms,
        destroy_ms, idle_max;
};

static void collect(FILE *in, struct figures *f)
{
    char key[64];
    double v;
    while (fscanf(in, "%63s %lf", key, &v) == 2) {
        if (!strcmp(key, "us_p50"))
            f->us_p50 = v;
        else if (!strcmp(key, "us_p99"))
            f->us_p99 = v;
        else if (!strcmp(key, "us_p50_3procs"))
            f->us_p50_3 = v;
        else if (!strcmp(key, "tcp_us_p50"))
            f->tcp_p50 = v;
        else if (!strcmp(key, "puts_per_s"))
            f->puts = v;
        else if (!strcmp(key, "create_ms") && v > f->create_ms)
            f->create_ms = v;
        else if (!strcmp(key, "destroy_ms") && v > f->destroy_ms)
            f->destroy_ms = v;
        else if (!strcmp(key, "cold_ms") && v > f->cold_ms)
            f->cold_ms = v;
        else if (!strcmp(key, "idle_cpu_pct") && v > f->idle_max)
            f->idle_max = v;
    }
}

int main(int argc, char **argv)
{
    struct config cfg = {
        .provider = "tcp", .rounds = 5000, .idle_s = 5, .spin_us = -1};
    static const struct option longopts[] = {
        {"provider", required_argument, NULL, 'p'},
        {"rounds", required_argument, NULL, 'n'},
        {"idle-s", required_argument, NULL, 'i'},
        {"spin-us", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:n:i:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            cfg.provider = optarg;
            break;
        case 'n':
            cfg.rounds = atoi(optarg);
            break;
        case 'i':
            cfg.idle_s = atoi(optarg);
            break;
        case 's':
            cfg.spin_us = atoi(optarg);
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: sst_latency [--provider tcp|sockets] [--rounds N] "
                    "[--idle-s S] [--spin-us US]\n");
            return c == 'h' ? 0 : 64;
        }
    }
    if (optind != argc || cfg.rounds < 10 || cfg.idle_s < 1) {
        fprintf(stderr, "sst_latency: rounds >= 10, idle-s >= 1, no other "
                        "argument\n"
                        "usage: sst_latency [--provider tcp|sockets] "
                        "[--rounds N] [--idle-s S] [--spin-us US]\n");
        return 64;
    }
    if (strcmp(cfg.provider, "sockets") == 0)
        setenv("FI_SOCKETS_PE_WAITTIME", "0", 0); /* its own thread spins */
    if (free_ports(cfg.ports, NPROC + 1)) {
        perror("ports");
        return 1;
    }
    FILE *results[NPROC];
    pid_t pids[NPROC];
    for (uint32_t r = 0; r < NPROC; r++) {
        results[r] = tmpfile();
        if (!results[r]) {
            perror("tmpfile");
            return 1;
        }
        fflush(NULL);
        pids[r] = fork();
        if (pids[r] == 0) {
            struct member m = {.cfg = &cfg, .rank = r, .out = results[r]};
            _exit(member_main(&m));
        }
    }
    int failed = 0;
    for (int r = 0; r < NPROC; r++) {
        int status;
        waitpid(pids[r], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "member %d failed (status 0x%x)\n", r, status);
            failed = 1;
        }
    }
    if (failed)
        return 1;
    struct figures f;
    memset(&f, 0, sizeof(f));
    for (int r = 0; r < NPROC; r++) {
        rewind(results[r]);
        collect(results[r], &f);
        fclose(results[r]);
    }
    fprintf(stderr, "cold create %.2f ms, destroy %.2f ms\n", f.cold_ms,
            f.destroy_ms);
    printf("RESULT bench=sst_latency provider=%s us_p50=%.1f us_p99=%.1f "
           "us_p50_3procs=%.1f tcp_us_p50=%.1f puts_per_s=%.0f "
           "create_ms=%.2f idle_cpu_pct=%.2f\n",
           cfg.provider, f.us_p50, f.us_p99, f.us_p50_3, f.tcp_p50, f.puts,
           f.create_ms + f.destroy_ms, f.idle_max);
    return 0;
}
