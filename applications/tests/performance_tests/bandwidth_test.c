/* bandwidth_test: ordered (or unordered) multicast throughput of a group,
 * with the original Derecho's command line.
 *
 *   bandwidth_test [--SECTION/key=value ... --] [--spawn] num_nodes
 *                  sender_selector num_messages delivery_mode
 *
 * sender_selector: 0 all members send, 1 half (the first num_nodes/2, at
 * least one), 2 one; delivery_mode: 0 ordered, 1 unordered.  The message
 * size is the subgroup's max_payload_size ([SUBGROUP/DEFAULT]; above
 * max_smc_payload_size the messages go through RDMC).  Every
 * sender sends num_messages; each member measures from the moment it sees
 * the full view to its last delivery.
 *
 * Without --spawn this process is one member (its configuration gives
 * local_id, ports, contact), prints its figures and appends the original's
 * line "num_nodes sender_selector size window num_messages delivery_mode
 * gbytes_per_s" to data_derecho_bw.  With --spawn it starts num_nodes
 * members on 127.0.0.1 itself (free ports) and prints
 *   RESULT bench=bandwidth_test nodes=N senders=all|half|one size=S
 *          window=W mode=ordered|unordered msgs_per_s=... (median over
 *          members) min_msgs_per_s=... gbytes_per_s=... rss_mb=... (max)
 *          nulls_per_msg=... (null messages delivered per message
 *          delivered, median over members; derecho_group_stats)
 * and appends the median line to data_derecho_bw. */
#include "derecho-bench.h"

#include <fcntl.h>

static const char *const selector_names[] = {"all", "half", "one"};

struct bw {
    uint64_t expected;
};

static void on_deliver(void *ctx, uint32_t subgroup, uint32_t shard,
                       uint32_t sender, uint64_t version, const void *data,
                       size_t size)
{
    (void)subgroup;
    (void)shard;
    (void)sender;
    (void)version;
    (void)data;
    (void)size;
    struct bench_member *m = ctx;
    int64_t now = bench_now_ns();
    pthread_mutex_lock(&m->lock);
    if (m->delivered++ == 0)
        m->first_ns = now;
    m->last_ns = now;
    struct bw *b = m->app;
    if (m->delivered >= b->expected)
        pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

struct full_arg {
    struct bench_member *m;
    size_t n;
};

static bool full_view(void *arg)
{
    struct full_arg *a = arg;
    return a->m->members_now >= a->n;
}

static bool all_delivered(void *arg)
{
    struct bench_member *m = arg;
    return m->delivered >= ((struct bw *)m->app)->expected;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bandwidth_test [--SECTION/key=value ... --] [--spawn] "
               "num_nodes sender_selector(0 all, 1 half, 2 one) num_messages "
               "delivery_mode(0 ordered, 1 unordered)\n");
}

static void append_data(long nodes, long selector, uint64_t size,
                        uint64_t window, long messages, long mode, double gbps)
{
    FILE *f = fopen("data_derecho_bw", "a");
    if (!f)
        return;
    fprintf(f, "%ld %ld %llu %llu %ld %ld %f\n", nodes, selector,
            (unsigned long long)size, (unsigned long long)window, messages,
            mode, gbps);
    fclose(f);
}

static int run_member(struct conf *c, long nodes, long selector, long messages,
                      long mode, bool spawned)
{
    uint64_t size = 0, window = 0, me = 0;
    conf_get_size(c, "SUBGROUP/DEFAULT", "max_payload_size", &size);
    conf_get_u64(c, "SUBGROUP/DEFAULT", "window_size", &window);
    conf_get_u64(c, "DERECHO", "local_id", &me);
    uint32_t max_senders = selector == 0 ? 0
                           : selector == 1
                               ? (uint32_t)(nodes / 2 ? nodes / 2 : 1)
                               : 1;
    struct derecho_layout_spec *spec = bench_spec(
        mode ? DERECHO_MODE_UNORDERED : DERECHO_MODE_ORDERED, max_senders);
    struct bench_member m;
    bench_member_init(&m);
    m.my_id = (uint32_t)me;
    struct bw b = {0};
    m.app = &b;
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = bench_on_view;
    o.ctx = &m;
    o.on_deliver = on_deliver;
    o.deliver_ctx = &m;
    o.log_level = LOG_ERR;
    struct derecho_group *g = NULL;
    struct derecho_error err;
    if (!spec || bench_group_create(c, spec, &o, &g, &err) != 0) {
        if (!bench_stopped()) /* a join cut short by a stop signal */
            fprintf(stderr, "bandwidth_test: %s\n", spec ? err.msg : "layout");
        derecho_layout_spec_destroy(spec);
        return bench_exit_status(1);
    }
    int status = 0;
    struct full_arg fa = {&m, (size_t)nodes};
    if (!bench_wait(&m, full_view, &fa, 60000)) {
        if (!bench_stopped())
            fprintf(stderr, "bandwidth_test: no view of %ld members\n", nodes);
        status = 1;
        goto out;
    }
    pthread_mutex_lock(&m.lock);
    b.expected = (uint64_t)messages * m.num_senders;
    bool sender = m.sender;
    pthread_mutex_unlock(&m.lock);
    size_t max = 0;
    int rc = derecho_send_max_payload(g, 0, &max);
    if (rc == 0 && size > max) {
        fprintf(stderr,
                "bandwidth_test: max_payload_size %llu is over "
                "the largest message %zu: %s\n",
                (unsigned long long)size, max, derecho_strerror(-EMSGSIZE));
        status = 1;
        goto out;
    }
    int64_t t0 = bench_now_ns();
    for (long i = 0; sender && i < messages && !bench_stopped(); i++) {
        void *buf;
        rc = derecho_send_reserve(g, 0, size, 0, &buf);
        if (rc == 0) {
            memset(buf, (int)i, size < 64 ? size : 64);
            rc = derecho_send_commit(g, 0, size);
        }
        if (rc) {
            fprintf(stderr, "bandwidth_test: send: %s\n", derecho_strerror(rc));
            status = 1;
            goto out;
        }
    }
    if (!bench_wait(&m, all_delivered, &m, BENCH_TIMEOUT_MS)) {
        if (!bench_stopped())
            fprintf(stderr, "bandwidth_test: %llu of %llu delivered\n",
                    (unsigned long long)m.delivered,
                    (unsigned long long)b.expected);
        status = 1;
        goto out;
    }
    double secs = (double)(m.last_ns - t0) / 1e9;
    double rate = secs > 0 ? (double)b.expected / secs : 0;
    double gbps = rate * (double)size / 1e9;
    /* Null messages that took a position here per message delivered. */
    struct derecho_shard_stats sh[1];
    struct derecho_group_stats st;
    derecho_group_stats_init(&st);
    st.shards = sh;
    st.max_shards = 1;
    double nulls = 0;
    if (derecho_group_stats(g, &st) == 0 && st.num_shards == 1 &&
        sh[0].delivered)
        nulls = (double)sh[0].nulls_delivered / (double)sh[0].delivered;
    printf("MEMBER node=%llu msgs_per_s=%.0f gbytes_per_s=%.4f rss_mb=%.1f "
           "nulls_per_msg=%.3f\n",
           (unsigned long long)me, rate, gbps, bench_rss_mb(), nulls);
    fflush(stdout);
    if (spawned)
        bench_wait_release();
    else
        append_data(nodes, selector, size, window, messages, mode, gbps);
out:
    derecho_group_destroy(g);
    derecho_layout_spec_destroy(spec);
    status = bench_exit_status(status);
    return status;
}

int main(int argc, char **argv)
{
    struct bench_cmdline cl;
    int early = bench_startup("bandwidth_test", usage, true, &argc, argv, &cl);
    if (early >= 0)
        return early;
    int k = cl.first_arg;
    long v[4];
    int nv = 0;
    bool bad = argc - k != 4;
    for (int i = k; !bad && i < argc; i++) {
        char *end;
        v[nv++] = strtol(argv[i], &end, 10);
        bad = *end || end == argv[i];
    }
    if (bad || v[0] < 1 || v[0] > BENCH_MAX_NODES || v[1] < 0 || v[1] > 2 ||
        v[2] < 0 || v[3] < 0 || v[3] > 1) {
        usage(stderr);
        bench_cmdline_fini(&cl);
        return 64;
    }
    int status;
    if (!cl.spawn) {
        status = run_member(cl.conf, v[0], v[1], v[2], v[3], cl.member);
    } else {
        struct bench_children ch;
        status = bench_spawn(&ch, (int)v[0], cl.noverrides, cl.overrides, 4,
                             argv + k);
        if (status == 0)
            status = bench_collect(&ch);
        if (status == 0) {
            uint64_t size = 0, window = 0;
            conf_get_size(cl.conf, "SUBGROUP/DEFAULT", "max_payload_size",
                          &size);
            conf_get_u64(cl.conf, "SUBGROUP/DEFAULT", "window_size", &window);
            double med, min, max, gmed, gmin, gmax, rmed, rmin, rmax, nmed,
                nmin, nmax;
            bench_stats(&ch, "msgs_per_s", &med, &min, &max);
            bench_stats(&ch, "gbytes_per_s", &gmed, &gmin, &gmax);
            bench_stats(&ch, "rss_mb", &rmed, &rmin, &rmax);
            bench_stats(&ch, "nulls_per_msg", &nmed, &nmin, &nmax);
            printf("RESULT bench=bandwidth_test nodes=%ld senders=%s size=%llu "
                   "window=%llu mode=%s msgs_per_s=%.0f min_msgs_per_s=%.0f "
                   "gbytes_per_s=%.4f rss_mb=%.1f nulls_per_msg=%.3f\n",
                   v[0], selector_names[v[1]], (unsigned long long)size,
                   (unsigned long long)window, v[3] ? "unordered" : "ordered",
                   med, min, gmed, rmax, nmed);
            append_data(v[0], v[1], size, window, v[2], v[3], gmed);
        } else {
            if (!bench_stopped())
                fprintf(stderr, "bandwidth_test: %s\n",
                        derecho_strerror(status));
            status = bench_exit_status(1);
        }
    }
    bench_cmdline_fini(&cl);
    return status;
}
