/* latency_test: send-to-delivery latency of ordered multicast.
 *
 *   latency_test [--SECTION/key=value ... --] [--spawn] num_nodes
 *                saturated|pingpong num_messages
 *
 * One subgroup of one shard over every member, every member a sender,
 * messages of the subgroup's max_payload_size ([SUBGROUP/DEFAULT]; above
 * max_smc_payload_size through RDMC) carrying their send time
 * (CLOCK_MONOTONIC, one clock for the processes of one machine).
 *  - saturated: every member sends num_messages as fast as its window
 *    allows; every delivery's latency is recorded;
 *  - pingpong: node 0 sends one message, waits for its own delivery, sends
 *    the next (the other members are idle senders: the order needs their
 *    null messages); every member records the latency of each delivery.
 * Then each member stays idle for 3 s and measures its CPU use.
 * With --spawn, the members run on 127.0.0.1 and one line is printed:
 *   RESULT bench=latency_test nodes=N size=S load=L us_p50=... us_p99=...
 *          (median over members of their percentiles) rss_mb=... (max)
 *          idle_cpu_pct=... (max) */
#include "derecho-bench.h"

#include <math.h>
#include <sys/mman.h>

struct lat {
    uint64_t expected;
    double *us;
    uint64_t own; /* my own messages delivered */
};

static void on_deliver(void *ctx, uint32_t subgroup, uint32_t shard,
                       uint32_t sender, uint64_t version, const void *data,
                       size_t size)
{
    (void)subgroup;
    (void)shard;
    (void)version;
    struct bench_member *m = ctx;
    struct lat *l = m->app;
    int64_t now = bench_now_ns(), sent = 0;
    if (size >= 8)
        memcpy(&sent, data, 8);
    pthread_mutex_lock(&m->lock);
    if (m->delivered < l->expected)
        l->us[m->delivered] = (double)(now - sent) / 1000.0;
    m->delivered++;
    if (sender == m->my_id)
        l->own++;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

struct wait_arg {
    struct bench_member *m;
    uint64_t n;
};

static bool full_view(void *arg)
{
    struct wait_arg *a = arg;
    return a->m->members_now >= a->n;
}

static bool delivered_n(void *arg)
{
    struct wait_arg *a = arg;
    return a->m->delivered >= a->n;
}

static bool own_n(void *arg)
{
    struct wait_arg *a = arg;
    return ((struct lat *)a->m->app)->own >= a->n;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: latency_test [--SECTION/key=value ... --] [--spawn] "
               "num_nodes saturated|pingpong num_messages\n");
}

static int run_member(struct conf *c, long nodes, bool pingpong, long messages,
                      bool spawned)
{
    uint64_t size = 0, me = 0;
    conf_get_size(c, "SUBGROUP/DEFAULT", "max_payload_size", &size);
    conf_get_u64(c, "DERECHO", "local_id", &me);
    if (size < 8)
        size = 8;
    struct derecho_layout_spec *spec = bench_spec(DERECHO_MODE_ORDERED, 0);
    struct bench_member m;
    bench_member_init(&m);
    m.my_id = (uint32_t)me;
    struct lat l = {0};
    l.expected = (uint64_t)messages * (pingpong ? 1 : (uint64_t)nodes);
    /* One sample per delivery, up to num_messages x nodes (2.4 GB for the
     * 10^8 messages programs-signal asks for): mapped, not calloc'ed, so
     * that pages are made only as deliveries fill them.  glibc's calloc
     * zero-fills the whole block itself when MALLOC_PERTURB_ is set (as
     * `meson test` does): 2.4 GB per member before joining, which a stop
     * signal cannot cut short (members took 20-70 s to exit). */
    size_t us_bytes = (l.expected + 1) * sizeof(*l.us);
    l.us = l.expected < SIZE_MAX / sizeof(*l.us) - 1
               ? mmap(NULL, us_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
               : MAP_FAILED;
    if (l.us == MAP_FAILED)
        l.us = NULL;
    m.app = &l;
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = bench_on_view;
    o.ctx = &m;
    o.on_deliver = on_deliver;
    o.deliver_ctx = &m;
    o.log_level = LOG_ERR;
    struct derecho_group *g = NULL;
    struct derecho_error err;
    if (!spec || !l.us || bench_group_create(c, spec, &o, &g, &err) != 0) {
        if (!bench_stopped()) /* a join cut short by a stop signal */
            fprintf(stderr, "latency_test: %s\n",
                    !spec   ? "layout"
                    : !l.us ? "no memory for the samples"
                            : err.msg);
        derecho_layout_spec_destroy(spec);
        if (l.us)
            munmap(l.us, us_bytes);
        return bench_exit_status(1);
    }
    int status = 0;
    struct wait_arg wa = {&m, (uint64_t)nodes};
    if (!bench_wait(&m, full_view, &wa, 60000)) {
        if (!bench_stopped())
            fprintf(stderr, "latency_test: no view of %ld members\n", nodes);
        status = 1;
        goto out;
    }
    size_t max = 0;
    if (derecho_send_max_payload(g, 0, &max) == 0 && size > max) {
        fprintf(stderr,
                "latency_test: max_payload_size %llu is over "
                "the largest message %zu\n",
                (unsigned long long)size, max);
        status = 1;
        goto out;
    }
    bool sends = !pingpong || me == 0;
    for (long i = 0; sends && i < messages && !bench_stopped(); i++) {
        void *buf;
        int rc = derecho_send_reserve(g, 0, size, 0, &buf);
        if (rc == 0) {
            int64_t now = bench_now_ns();
            memcpy(buf, &now, 8);
            rc = derecho_send_commit(g, 0, size);
        }
        if (rc) {
            fprintf(stderr, "latency_test: send: %s\n", derecho_strerror(rc));
            status = 1;
            goto out;
        }
        if (pingpong) {
            struct wait_arg own = {&m, (uint64_t)i + 1};
            if (!bench_wait(&m, own_n, &own, 10000)) {
                if (!bench_stopped())
                    fprintf(stderr, "latency_test: message %ld not delivered\n",
                            i);
                status = 1;
                goto out;
            }
        }
    }
    wa.n = l.expected;
    if (!bench_wait(&m, delivered_n, &wa, BENCH_TIMEOUT_MS)) {
        if (!bench_stopped())
            fprintf(stderr, "latency_test: %llu of %llu delivered\n",
                    (unsigned long long)m.delivered,
                    (unsigned long long)l.expected);
        status = 1;
        goto out;
    }
    qsort(l.us, l.expected, sizeof(double), cmp);
    double p50 = l.us[l.expected / 2];
    double p99 = l.us[(size_t)((double)l.expected * 0.99)];
    double idle = bench_cpu_pct(3000);
    printf("MEMBER node=%llu us_p50=%.1f us_p99=%.1f rss_mb=%.1f "
           "idle_cpu_pct=%.2f\n",
           (unsigned long long)me, p50, p99, bench_rss_mb(), idle);
    fflush(stdout);
    if (spawned)
        bench_wait_release();
out:
    derecho_group_destroy(g);
    derecho_layout_spec_destroy(spec);
    status = bench_exit_status(status);
    if (l.us)
        munmap(l.us, us_bytes);
    return status;
}

int main(int argc, char **argv)
{
    struct bench_cmdline cl;
    int early = bench_startup("latency_test", usage, true, &argc, argv, &cl);
    if (early >= 0)
        return early;
    int k = cl.first_arg;
    long nodes = 0, messages = 0;
    bool pingpong = false, bad = argc - k != 3;
    if (!bad) {
        char *e1, *e2;
        nodes = strtol(argv[k], &e1, 10);
        messages = strtol(argv[k + 2], &e2, 10);
        pingpong = strcmp(argv[k + 1], "pingpong") == 0;
        bad = *e1 || *e2 || nodes < 1 || nodes > BENCH_MAX_NODES ||
              messages < 1 ||
              (!pingpong && strcmp(argv[k + 1], "saturated") != 0);
    }
    if (bad) {
        usage(stderr);
        bench_cmdline_fini(&cl);
        return 64;
    }
    int status;
    if (!cl.spawn) {
        status = run_member(cl.conf, nodes, pingpong, messages, cl.member);
    } else {
        struct bench_children ch;
        status = bench_spawn(&ch, (int)nodes, cl.noverrides, cl.overrides, 3,
                             argv + k);
        if (status == 0)
            status = bench_collect(&ch);
        if (status == 0) {
            uint64_t size = 0;
            conf_get_size(cl.conf, "SUBGROUP/DEFAULT", "max_payload_size",
                          &size);
            double p50, p50min, p50max, p99, p99min, p99max, rss, rmin, rmax,
                idle, imin, imax;
            bench_stats(&ch, "us_p50", &p50, &p50min, &p50max);
            bench_stats(&ch, "us_p99", &p99, &p99min, &p99max);
            bench_stats(&ch, "rss_mb", &rss, &rmin, &rmax);
            bench_stats(&ch, "idle_cpu_pct", &idle, &imin, &imax);
            printf("RESULT bench=latency_test nodes=%ld size=%llu load=%s "
                   "us_p50=%.1f us_p99=%.1f rss_mb=%.1f idle_cpu_pct=%.2f\n",
                   nodes, (unsigned long long)size,
                   pingpong ? "pingpong" : "saturated", p50, p99, rmax, imax);
        } else {
            if (!bench_stopped())
                fprintf(stderr, "latency_test: %s\n", derecho_strerror(status));
            status = bench_exit_status(1);
        }
    }
    bench_cmdline_fini(&cl);
    return status;
}
