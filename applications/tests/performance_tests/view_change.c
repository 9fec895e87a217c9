/* view_change: how long a group takes to install the next view after a
 * member is killed (issue 15, "Benchmarks").
 *
 *   view_change [--SECTION/key=value ... --] [--spawn] num_nodes runs
 *               [member|leader] [kill9|sigstop]
 *
 * With --spawn (the way to run it) each run starts num_nodes members on
 * 127.0.0.1 (node 0 the contact and leader), waits until every member
 * installed the full view, sends the fault (default kill9: SIGKILL;
 * sigstop: SIGSTOP, the member is suspected by its stalled heartbeat) to
 * the victim (default member: the last one; leader: node 0, whose
 * successor takes over), and measures, on the one machine-wide monotonic
 * clock, the time from the signal until the last survivor's on_view for
 * the view without it.  Prints
 *   RESULT bench=view_change nodes= runs= ms_p50= ms_max= victim= fault=
 * Without --spawn this process is one member (started by --spawn with
 * --member): it prints "READY" once in the full view, then "MEMBER
 * node=<id> installed_ns=<t>" when it installed a smaller view, and
 * leaves when its stdin closes. */
#include "derecho-bench.h"

#define MAX_RUNS 100
#define READY_TIMEOUT_MS 60000
#define CHANGE_TIMEOUT_MS 20000

static void usage(FILE *f)
{
    fprintf(f, "usage: view_change [--SECTION/key=value ... --] [--spawn] "
               "num_nodes runs [member|leader] [kill9|sigstop]\n"
               "  --spawn: start num_nodes members on 127.0.0.1 per run, "
               "signal the victim\n"
               "  (the last member, or the leader) once all are in the full "
               "view, and\n"
               "  time until every survivor installed the next view "
               "(RESULT ms_p50 ms_max)\n");
}

struct vc {
    size_t most;        /* largest view seen */
    int64_t smaller_ns; /* when a view smaller than that was installed */
};

static void on_view(void *ctx, const struct derecho_view *v)
{
    struct bench_member *m = ctx;
    struct vc *s = m->app;
    size_t n = derecho_view_num_members(v);
    pthread_mutex_lock(&m->lock);
    if (n < s->most && s->smaller_ns == 0)
        s->smaller_ns = bench_now_ns();
    if (n > s->most)
        s->most = n;
    m->members_now = n;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

struct want {
    struct bench_member *m;
    size_t n;
};

static bool full(void *arg)
{
    const struct want *w = arg;
    return w->m->members_now >= w->n;
}

static bool smaller(void *arg)
{
    const struct want *w = arg;
    return ((struct vc *)w->m->app)->smaller_ns != 0;
}

static int run_member(struct conf *c, long nodes)
{
    uint64_t me = 0;
    conf_get_u64(c, "DERECHO", "local_id", &me);
    struct derecho_layout_spec *spec = bench_spec(DERECHO_MODE_ORDERED, 0);
    struct bench_member m;
    bench_member_init(&m);
    m.my_id = (uint32_t)me;
    struct vc s = {0, 0};
    m.app = &s;
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = on_view;
    o.ctx = &m;
    o.log_level = LOG_ERR;
    struct derecho_group *g = NULL;
    struct derecho_error err;
    if (!spec || bench_group_create(c, spec, &o, &g, &err) != 0) {
        if (!bench_stopped()) /* a join cut short by a stop signal */
            fprintf(stderr, "view_change: %s\n", spec ? err.msg : "layout");
        derecho_layout_spec_destroy(spec);
        return bench_exit_status(1);
    }
    int status = 0;
    struct want w = {&m, (size_t)nodes};
    if (!bench_wait(&m, full, &w, READY_TIMEOUT_MS)) {
        if (!bench_stopped())
            fprintf(stderr, "view_change: no view of %ld members\n", nodes);
        status = 1;
        goto out;
    }
    printf("READY\n");
    fflush(stdout);
    if (!bench_wait(&m, smaller, &w, CHANGE_TIMEOUT_MS)) {
        if (!bench_stopped())
            fprintf(stderr, "view_change %llu: no smaller view within %d ms\n",
                    (unsigned long long)me, CHANGE_TIMEOUT_MS);
        status = 1;
        goto out;
    }
    printf("MEMBER node=%llu installed_ns=%lld\n", (unsigned long long)me,
           (long long)s.smaller_ns);
    fflush(stdout);
    bench_wait_release();
out:
    derecho_group_destroy(g);
    derecho_layout_spec_destroy(spec);
    status = bench_exit_status(status);
    return status;
}

/* Reads one line from fd into buf (bounded by deadline).  0 or -1. */
static int read_line(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t have = 0;
    while (bench_now_ns() < deadline && !bench_stopped()) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf + have, 1);
        if (r <= 0)
            return -1;
        if (buf[have] == '\n') {
            buf[have] = '\0';
            return 0;
        }
        if (++have == cap - 1)
            return -1;
    }
    return -1;
}

/* One run: ms from the kill to the last survivor's install, or < 0. */
static double one_run(int n, int noverrides, char **overrides, char **args,
                      bool leader, bool sigstop)
{
    int victim = leader ? 0 : n - 1;
    struct bench_children ch;
    if (bench_spawn(&ch, n, noverrides, overrides, 2, args) != 0)
        return -1;
    double ms = -1;
    char line[512];
    int64_t deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    bool ready = true;
    for (int i = 0; i < n && ready; i++)
        ready = read_line(ch.out[i], line, sizeof(line), deadline) == 0 &&
                strcmp(line, "READY") == 0;
    if (ready) {
        int64_t t0 = bench_now_ns();
        kill(ch.pid[victim], sigstop ? SIGSTOP : SIGKILL);
        int64_t last = 0;
        deadline = bench_now_ns() + (int64_t)CHANGE_TIMEOUT_MS * 1000000;
        bool all = true;
        for (int i = 0; i < n && all; i++) {
            if (i == victim)
                continue;
            all = read_line(ch.out[i], line, sizeof(line), deadline) == 0;
            double t = all ? bench_field(line, "installed_ns") : 0;
            if (all && t > (double)last)
                last = (int64_t)t;
        }
        if (all)
            ms = (double)(last - t0) / 1e6;
    }
    if (bench_stopped()) {
        for (int i = 0; i < n; i++)
            kill(ch.pid[i], bench_stopped()); /* they leave */
    } else if (ms < 0) {
        fprintf(stderr, "view_change: a run failed\n");
    }
    if (sigstop) {
        kill(ch.pid[victim], SIGKILL); /* stopped: it cannot leave */
        kill(ch.pid[victim], SIGCONT);
    }
    for (int i = 0; i < n; i++)
        close(ch.in[i]);
    for (int i = 0; i < n; i++) {
        int st = 0;
        int64_t until = bench_now_ns() + 30000000000LL;
        pid_t r;
        while ((r = waitpid(ch.pid[i], &st, WNOHANG)) == 0 &&
               bench_now_ns() < until) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        if (r == 0) {
            kill(ch.pid[i], SIGKILL);
            waitpid(ch.pid[i], &st, 0);
        }
        close(ch.out[i]);
    }
    return ms;
}

int main(int argc, char **argv)
{
    struct bench_cmdline cl;
    int early = bench_startup("view_change", usage, true, &argc, argv, &cl);
    if (early >= 0)
        return early;
    int k = cl.first_arg;
    long v[2];
    int nv = 0;
    bool bad = argc - k < 2 || argc - k > 4;
    bool leader = false, sigstop = false;
    for (int i = k + 2; !bad && i < argc; i++) {
        if (strcmp(argv[i], "leader") == 0)
            leader = true;
        else if (strcmp(argv[i], "sigstop") == 0)
            sigstop = true;
        else
            bad =
                strcmp(argv[i], "member") != 0 && strcmp(argv[i], "kill9") != 0;
    }
    for (int i = k; !bad && i < k + 2; i++) {
        char *end;
        v[nv++] = strtol(argv[i], &end, 10);
        bad = *end || end == argv[i];
    }
    if (bad || v[0] < 2 || v[0] > BENCH_MAX_NODES || v[1] < 1 ||
        v[1] > MAX_RUNS) {
        usage(stderr);
        bench_cmdline_fini(&cl);
        return 64;
    }
    int status = 0;
    if (!cl.spawn) {
        status = run_member(cl.conf, v[0]);
    } else {
        double ms[MAX_RUNS];
        int good = 0;
        for (long r = 0; r < v[1] && !bench_stopped(); r++) {
            double x = one_run((int)v[0], cl.noverrides, cl.overrides, argv + k,
                               leader, sigstop);
            if (x >= 0)
                ms[good++] = x;
        }
        if (bench_stopped()) {
            status = bench_exit_status(1);
        } else if (good < v[1]) {
            fprintf(stderr, "view_change: %ld of %ld runs failed\n",
                    v[1] - good, v[1]);
            status = 1;
        }
        if (good > 0 && !bench_stopped()) {
            qsort(ms, (size_t)good, sizeof(ms[0]), bench_cmp_double);
            printf("RESULT bench=view_change nodes=%ld runs=%d ms_p50=%.1f "
                   "ms_max=%.1f victim=%s fault=%s\n",
                   v[0], good, ms[good / 2], ms[good - 1],
                   leader ? "leader" : "member", sigstop ? "sigstop" : "kill9");
        }
    }
    bench_cmdline_fini(&cl);
    return status;
}
