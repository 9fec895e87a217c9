/* Shared parts of bandwidth_test, latency_test and view_change (and the
 * command-line start of applications/tests/vs_stress): the command line,
 * starting N members on loopback (--spawn), one group member's set-up, and
 * collecting the members' figures.  Header-only (static functions), included
 * once by each benchmark. */
#ifndef DERECHO_BENCH_H
#define DERECHO_BENCH_H

#include <conf/conf.h>
#include <derecho/derecho.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_NODES 16
#define BENCH_TIMEOUT_MS 300000

static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* n free TCP ports on 127.0.0.1 in [20000, 32000), held bound together
 * while picked so they are distinct. */
static inline int bench_free_ports(uint16_t *ports, int n)
{
    int fds[2 * BENCH_MAX_NODES];
    int got = 0;
    unsigned seed = (unsigned)getpid() ^ (unsigned)bench_now_ns();
    for (int tries = 0; got < n && tries < 10000; tries++) {
        uint16_t p = (uint16_t)(20000 + rand_r(&seed) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons(p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            ports[got] = p;
            fds[got++] = fd;
        } else if (fd >= 0) {
            close(fd);
        }
    }
    for (int i = 0; i < got; i++)
        close(fds[i]);
    return got == n ? 0 : -EADDRINUSE;
}

/* ---- SIGINT/SIGTERM ------------------------------------------------------
 * Every benchmark leaves on a stop signal: the handler only records it;
 * the waits below return early, the send loops stop, and the member goes
 * out through derecho_group_destroy (a clean leave: the others see a
 * leave, not a failure) and exits 128 + signal.  A --spawn parent passes
 * the signal on to its members and reaps them.
 *
 * Two things made a member take 20-70 s to exit under load (the
 * programs-signal bound is 60 s):
 *  - libfabric's PSM dependency (libinfinipath) installs its own handlers
 *    for SIGINT and SIGTERM when it is loaded, and they do not end the
 *    process: a member that got the parent's signal before main()
 *    installed ours went on (joined, waited 60 s for a full view) until
 *    the parent killed it after 30 s.  So bench_spawn starts members with
 *    both signals blocked, and bench_catch_stop_signals unblocks them only
 *    once our handler is in place (a signal that came meanwhile is then
 *    delivered to it).
 *  - a member still in derecho_group_create (joining a contact that has
 *    already left retries until join_timeout_ms, then the first view's
 *    set-up waits for members that are leaving) does not see the signal.
 *    It is no member yet from its own side, so there is nothing to leave:
 *    bench_group_create has the handler end the process right away
 *    (_exit(128 + signal)); the others, if the leader admitted it, see
 *    it fail instead of leave. */

static inline volatile sig_atomic_t *bench_stop_flag(void)
{
    static volatile sig_atomic_t sig;
    return &sig;
}

/* Set while derecho_group_create runs (bench_group_create). */
static inline volatile sig_atomic_t *bench_creating_flag(void)
{
    static volatile sig_atomic_t creating;
    return &creating;
}

static inline void bench_on_stop_signal(int sig)
{
    *bench_stop_flag() = sig;
    if (*bench_creating_flag())
        _exit(128 + sig);
}

/* The stop signal received, 0 none. */
static inline int bench_stopped(void)
{
    return *bench_stop_flag();
}

static inline void bench_stop_signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* Installs the handler for SIGINT and SIGTERM (no SA_RESTART: a poll or
 * sleep in progress returns EINTR), then unblocks both (a --spawn member
 * starts with them blocked). */
static inline void bench_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = bench_on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigset_t set;
    bench_stop_signal_set(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

/* libderecho's log lines as its default logger writes them ("derecho:
 * error: ..."), none once a stop signal came: the others leaving, or
 * failing in the middle of a view change, is then the stop itself. */
static inline void bench_log(void *ctx, int level, const char *module,
                             const char *msg)
{
    (void)ctx;
    if (bench_stopped())
        return;
    const char *name = level <= LOG_CRIT      ? "critical"
                       : level == LOG_ERR     ? "error"
                       : level == LOG_WARNING ? "warning"
                       : level == LOG_DEBUG   ? "debug"
                                              : "info";
    fprintf(stderr, "%s: %s: %s\n", module, name, msg);
}

/* derecho_group_create (logging through bench_log unless o names its own
 * logger), during which a stop signal ends the process at once (see
 * above); not called at all once a stop signal came (-EINTR, err says
 * so). */
static inline int bench_group_create(const struct conf *c,
                                     const struct derecho_layout_spec *spec,
                                     const struct derecho_group_options *o,
                                     struct derecho_group **g,
                                     struct derecho_error *err)
{
    struct derecho_group_options opts = *o;
    if (!opts.log)
        opts.log = bench_log;
    *bench_creating_flag() = 1;
    int rc =
        bench_stopped() ? -EINTR : derecho_group_create(c, spec, &opts, g, err);
    *bench_creating_flag() = 0;
    if (rc == -EINTR && err)
        snprintf(err->msg, sizeof(err->msg), "stopped before joining");
    return rc;
}

/* status, or 128 + the stop signal once one arrived. */
static inline int bench_exit_status(int status)
{
    return bench_stopped() ? 128 + bench_stopped() : status;
}

/* A member's state shared with the callbacks. */
struct bench_member {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t members_now;
    bool sender;
    uint32_t num_senders;
    uint32_t my_id;
    uint64_t delivered;
    int64_t first_ns, last_ns;
    void *app; /* the benchmark's own state */
};

static inline void bench_on_view(void *ctx, const struct derecho_view *v)
{
    struct bench_member *m = ctx;
    struct derecho_shard_info sh;
    pthread_mutex_lock(&m->lock);
    m->members_now = derecho_view_num_members(v);
    m->num_senders = 0;
    m->sender = false;
    if (derecho_layout_shard(derecho_view_layout(v), 0, 0, &sh) == 0) {
        m->num_senders = sh.num_senders;
        for (size_t i = 0; i < sh.num_members; i++)
            if (sh.is_sender[i] && sh.members[i] == m->my_id)
                m->sender = true;
    }
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

/* Waits until pred(m) holds (checked under m->lock) or timeout_ms, or a
 * stop signal arrived (then false). */
static inline bool bench_wait(struct bench_member *m, bool (*pred)(void *),
                              void *arg, int timeout_ms)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    pthread_mutex_lock(&m->lock);
    bool ok;
    while (!(ok = pred(arg)) && bench_now_ns() < deadline && !bench_stopped()) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 20000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&m->cond, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

static inline void bench_member_init(struct bench_member *m)
{
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cond, &ca);
    pthread_condattr_destroy(&ca);
}

/* One subgroup of one shard over every member; max_senders 0 = all. */
static inline struct derecho_layout_spec *bench_spec(int mode,
                                                     uint32_t max_senders)
{
    struct derecho_layout_spec *spec = NULL;
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.mode = mode;
    p.max_senders = max_senders;
    if (derecho_layout_spec_create(&spec) ||
        derecho_layout_spec_add_type(spec, "Bench", NULL) ||
        derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL)) {
        derecho_layout_spec_destroy(spec);
        return NULL;
    }
    return spec;
}

static inline double bench_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

/* CPU this process uses over ms of wall time, in % of one core. */
static inline double bench_cpu_pct(int ms)
{
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    int64_t t0 = bench_now_ns();
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !bench_stopped()) {
    }
    getrusage(RUSAGE_SELF, &b);
    double wall = (double)(bench_now_ns() - t0) / 1e9;
    double cpu = (double)(b.ru_utime.tv_sec - a.ru_utime.tv_sec) +
                 (double)(b.ru_stime.tv_sec - a.ru_stime.tv_sec) +
                 (double)(b.ru_utime.tv_usec - a.ru_utime.tv_usec) / 1e6 +
                 (double)(b.ru_stime.tv_usec - a.ru_stime.tv_usec) / 1e6;
    return 100.0 * cpu / wall;
}

/* ---- --spawn --------------------------------------------------------------
 * The parent starts n copies of this program as members (node ids 0..n-1,
 * node 0 the contact), passing them its configuration overrides, the
 * ports, and its own arguments plus --member.  Each member prints one
 * "MEMBER key=value ..." line on its stdout (a pipe to the parent) and
 * then waits for its stdin to close before it leaves, so that every member
 * finishes its measurement inside the full group. */

struct bench_children {
    int n;
    pid_t pid[BENCH_MAX_NODES];
    int out[BENCH_MAX_NODES]; /* read end of the child's stdout */
    int in[BENCH_MAX_NODES];  /* write end of the child's stdin */
    char line[BENCH_MAX_NODES][512];
};

static inline int bench_spawn(struct bench_children *c, int n, int noverrides,
                              char **overrides, int nargs, char **args)
{
    uint16_t ports[2 * BENCH_MAX_NODES];
    if (n < 1 || n > BENCH_MAX_NODES || bench_free_ports(ports, 2 * n) != 0)
        return -EINVAL;
    memset(c, 0, sizeof(*c));
    c->n = n;
    for (int i = 0; i < n; i++) {
        int out[2], in[2];
        if (pipe2(out, O_CLOEXEC) || pipe2(in, O_CLOEXEC))
            return -errno;
        char a[6][64];
        snprintf(a[0], 64, "--DERECHO/local_id=%d", i);
        snprintf(a[1], 64, "--DERECHO/gms_port=%u", ports[2 * i]);
        snprintf(a[2], 64, "--DERECHO/sst_port=%u", ports[2 * i + 1]);
        snprintf(a[3], 64, "--DERECHO/contact_port=%u", ports[0]);
        snprintf(a[4], 64, "--DERECHO/local_ip=127.0.0.1");
        snprintf(a[5], 64, "--DERECHO/contact_ip=127.0.0.1");
        char **argv = calloc((size_t)(noverrides + nargs + 10), sizeof(*argv));
        if (!argv)
            return -ENOMEM;
        int k = 0;
        argv[k++] = (char *)"derecho-bench-member";
        for (int j = 0; j < noverrides; j++)
            argv[k++] = overrides[j];
        for (int j = 0; j < 6; j++)
            argv[k++] = a[j];
        argv[k++] = (char *)"--";
        argv[k++] = (char *)"--member";
        for (int j = 0; j < nargs; j++)
            argv[k++] = args[j];
        argv[k] = NULL;
        /* The member starts with SIGINT/SIGTERM blocked (the mask
         * survives exec) until its own handler is in place. */
        sigset_t stop, old;
        bench_stop_signal_set(&stop);
        sigprocmask(SIG_BLOCK, &stop, &old);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(out[1], 1);
            dup2(in[0], 0);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        free(argv);
        close(out[1]);
        close(in[0]);
        if (pid < 0)
            return -errno;
        c->pid[i] = pid;
        c->out[i] = out[0];
        c->in[i] = in[1];
    }
    return 0;
}

/* Reads every child's MEMBER line (bounded), then lets them leave and
 * reaps them.  Returns 0 when all reported and exited 0.  On a stop
 * signal it passes the signal to every member and reaps them (exit
 * 128 + signal expected) and returns -EINTR. */
static inline int bench_collect(struct bench_children *c)
{
    int64_t deadline = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;
    size_t have[BENCH_MAX_NODES] = {0};
    bool done[BENCH_MAX_NODES] = {false};
    int left = c->n, rc = 0;
    bool lost = false; /* a member ended without its result */
    while (left > 0 && !lost && bench_now_ns() < deadline && !bench_stopped()) {
        struct pollfd p[BENCH_MAX_NODES];
        for (int i = 0; i < c->n; i++)
            p[i] = (struct pollfd){.fd = done[i] ? -1 : c->out[i],
                                   .events = POLLIN};
        if (poll(p, (nfds_t)c->n, 1000) < 0 && errno != EINTR)
            break;
        for (int i = 0; i < c->n; i++) {
            if (done[i] || !p[i].revents)
                continue;
            ssize_t r = read(c->out[i], c->line[i] + have[i],
                             sizeof(c->line[i]) - 1 - have[i]);
            if (r <= 0) {
                done[i] = true;
                left--;
                rc = -EPIPE;
                lost = true;
                fprintf(stderr, "member %d ended without a result\n", i);
                continue;
            }
            have[i] += (size_t)r;
            c->line[i][have[i]] = '\0';
            if (strchr(c->line[i], '\n') || have[i] == sizeof(c->line[i]) - 1) {
                done[i] = true;
                left--;
            }
        }
    }
    int sig = bench_stopped();
    if (sig) {
        for (int i = 0; i < c->n; i++)
            kill(c->pid[i], sig);
        rc = -EINTR;
    } else if (lost) {
        /* The run is lost (the others may wait for messages the lost
         * member will never send): stop the rest now (a clean leave)
         * instead of waiting for them until the timeout. */
        for (int i = 0; i < c->n; i++)
            if (!done[i]) {
                fprintf(stderr, "stopping member %d\n", i);
                kill(c->pid[i], SIGTERM);
            }
    } else if (left > 0) {
        fprintf(stderr, "members did not report within %d s\n",
                BENCH_TIMEOUT_MS / 1000);
        rc = -ETIMEDOUT;
    }
    for (int i = 0; i < c->n; i++)
        close(c->in[i]); /* leave now */
    for (int i = 0; i < c->n; i++) {
        int status = 0;
        int64_t until = bench_now_ns() + 30000000000LL;
        pid_t r;
        while ((r = waitpid(c->pid[i], &status, WNOHANG)) == 0 &&
               bench_now_ns() < until) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        if (r == 0) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], &status, 0);
            rc = rc ? rc : -ETIMEDOUT;
        } else if (!WIFEXITED(status) ||
                   (WEXITSTATUS(status) != 0 &&
                    !(sig && WEXITSTATUS(status) == 128 + sig))) {
            fprintf(stderr, "member %d: exit status %#x\n", i, status);
            rc = rc ? rc : -ECHILD;
        }
        close(c->out[i]);
    }
    return rc;
}

/* The value of key=... in a MEMBER line, or NAN. */
static inline double bench_field(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), " %s=", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : __builtin_nan("");
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median and min/max of key over the members' lines. */
static inline void bench_stats(const struct bench_children *c, const char *key,
                               double *median, double *min, double *max)
{
    double v[BENCH_MAX_NODES];
    for (int i = 0; i < c->n; i++)
        v[i] = bench_field(c->line[i], key);
    qsort(v, (size_t)c->n, sizeof(v[0]), bench_cmp_double);
    *median = c->n % 2 ? v[c->n / 2] : (v[c->n / 2 - 1] + v[c->n / 2]) / 2;
    *min = v[0];
    *max = v[c->n - 1];
}

/* A member started by --spawn waits for the parent's go to leave (or a
 * stop signal). */
static inline void bench_wait_release(void)
{
    char b[16];
    struct pollfd p = {.fd = 0, .events = POLLIN};
    int64_t deadline = bench_now_ns() + (int64_t)BENCH_TIMEOUT_MS * 1000000;
    while (bench_now_ns() < deadline && !bench_stopped()) {
        if (poll(&p, 1, 1000) > 0 && read(0, b, sizeof(b)) <= 0)
            return;
    }
}

/* ---- the command line ---------------------------------------------------- */

/* What a benchmark's main() starts from: the overrides (everything before
 * a bare "--", handed to spawned members as they are; NULL-terminated,
 * free() it), the loaded config, the flags --spawn and --member, and the
 * index of the first positional argument. */
struct bench_cmdline {
    char **overrides;
    int noverrides;
    struct conf *conf;
    bool spawn, member;
    int first_arg;
};

/* Parses the command line shared by the derecho benchmarks; with
 * catch_stop, first installs the SIGINT/SIGTERM handler
 * (bench_catch_stop_signals; vs_stress has its own).  Returns -1 when
 * main() goes on with *cl filled (bench_cmdline_fini frees it), else the
 * exit status: 0 after --help (usage on stdout), 64 when the config cannot
 * be loaded (one line on stderr naming prog), 1 when out of memory. */
static inline int bench_startup(const char *prog, void (*usage)(FILE *),
                                bool catch_stop, int *argc, char **argv,
                                struct bench_cmdline *cl)
{
    if (catch_stop)
        bench_catch_stop_signals();
    memset(cl, 0, sizeof(*cl));
    int dashes = -1;
    for (int i = 1; i < *argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            dashes = i;
            break;
        }
    cl->noverrides = dashes > 0 ? dashes - 1 : 0;
    cl->overrides = calloc((size_t)cl->noverrides + 1, sizeof(char *));
    if (!cl->overrides)
        return 1;
    for (int i = 0; i < cl->noverrides; i++)
        cl->overrides[i] = argv[1 + i];
    for (int i = 1; i < *argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(cl->overrides);
            return 0;
        }
    struct conf_options co;
    conf_options_init(&co);
    co.log_level = LOG_ERR;
    struct conf_error cerr;
    if (conf_startup(&co, argc, argv, &cl->conf, &cerr) != 0) {
        char line[512];
        conf_error_format(&cerr, line, sizeof(line));
        fprintf(stderr, "%s: %s\n", prog, line);
        free(cl->overrides);
        return 64;
    }
    int k = 1;
    for (; k < *argc && strncmp(argv[k], "--", 2) == 0; k++) {
        if (strcmp(argv[k], "--spawn") == 0)
            cl->spawn = true;
        else if (strcmp(argv[k], "--member") == 0)
            cl->member = true;
        else
            break;
    }
    cl->first_arg = k;
    return -1;
}

static inline void bench_cmdline_fini(struct bench_cmdline *cl)
{
    conf_destroy(cl->conf);
    free(cl->overrides);
}

#endif
