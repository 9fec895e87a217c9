/* rdmc_multicast: multicast a file from this process to N local processes
 * with librdmc alone (no configuration file, no libderecho) and check that
 * every receiver got exactly the same bytes (XXH3-64).
 *
 *   rdmc_multicast [-n receivers] [-a algorithm] [-b block_size]
 *                  [-p provider] FILE
 *
 * The demo spawns the receivers itself (fork), gives every process its own
 * libfab pool on 127.0.0.1, builds one group (rank 0 = this process, the
 * sender) and sends the file as one message.  Each receiver hashes what it
 * got and reports the hash through a pipe; the sender prints one line per
 * receiver and exits 0 when all match.
 *
 * SIGINT/SIGTERM stop it cleanly at any moment (before, during or after
 * the transfer): the sender passes the signal to its receivers, every
 * process destroys its group and pool, the sender reaps the receivers and
 * exits 128 + signal, and nothing is printed on stderr.  The signals are
 * blocked in every thread (the libraries' threads inherit the mask) and
 * read from a signalfd wherever the demo waits, so no handler installed
 * by a library (libfabric's PSM dependency installs its own for SIGINT and
 * SIGTERM when it is loaded) ever runs for them.
 */
#include <rdmc/rdmc.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define MAX_PROCS 32

struct demo {
    int procs; /* sender + receivers */
    enum rdmc_algorithm alg;
    size_t block;
    const char *provider;
    size_t size;
    uint16_t ports[MAX_PROCS];
};

struct progress {
    atomic_int done;
    atomic_int failed;
    uint64_t hash;
};

/* The stop signal read from the signalfd (0: none yet), and the fd. */
static atomic_int stop_sig;
static int sig_fd = -1;

/* Whether a stop was asked: read, or still pending for this process (a
 * library thread learns of a peer that stopped before our main thread
 * read its own signal from the same Ctrl-C). */
static bool stopping(void)
{
    sigset_t pending;
    return atomic_load(&stop_sig) != 0 ||
           (sigpending(&pending) == 0 && (sigismember(&pending, SIGINT) == 1 ||
                                          sigismember(&pending, SIGTERM) == 1));
}

/* Blocks SIGINT and SIGTERM in this thread (before any other exists, so in
 * all) and opens the signalfd that reports them. */
static int block_stop_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -errno;
    sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return sig_fd < 0 ? -errno : 0;
}

/* Waits up to timeout_ms for fd (-1: none) to be readable.  Returns 1
 * readable, 0 timeout, -EINTR once a stop signal was read (stop_sig). */
static int wait_readable(int fd, int timeout_ms)
{
    if (atomic_load(&stop_sig))
        return -EINTR;
    struct pollfd p[2] = {{.fd = sig_fd, .events = POLLIN},
                          {.fd = fd, .events = POLLIN}};
    int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
    if (n > 0 && p[0].revents) {
        struct signalfd_siginfo si;
        if (read(sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
            atomic_store(&stop_sig, (int)si.ssi_signo);
            return -EINTR;
        }
    }
    return n > 0 && fd >= 0 && p[1].revents ? 1 : 0;
}

/* 128 + the stop signal (read from the signalfd if still pending). */
static int stopped_status(void)
{
    if (!atomic_load(&stop_sig))
        wait_readable(-1, 0);
    return 128 + atomic_load(&stop_sig);
}

static void log_errors(void *ctx, int level, const char *module,
                       const char *msg)
{
    (void)ctx;
    /* Peers leaving after a stop signal is the stop, not an error. */
    if (level <= LOG_WARNING && !stopping())
        fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), module, msg);
}

static void on_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                        void *data, size_t size)
{
    struct progress *p = ctx;
    (void)g;
    (void)index;
    /* receivers hash here: librdmc's buffer is valid until we return */
    p->hash = XXH3_64bits(data, size);
    atomic_store(&p->done, 1);
}

static void on_failure(void *ctx, struct rdmc_group *g, uint32_t node,
                       int reason)
{
    struct progress *p = ctx;
    (void)g;
    /* Once the file is through, the others leaving (their connections
     * closing) is how the demo ends, not a failure worth a word. */
    if (atomic_load(&p->done))
        return;
    if (!stopping())
        fprintf(stderr, "member %u failed: %s\n", node, rdmc_strerror(reason));
    atomic_store(&p->failed, 1);
}

/* Waits for the message (0), a failure (-EIO), a stop signal (-EINTR)
 * or timeout_s (-ETIMEDOUT). */
static int wait_done(struct progress *p, int timeout_s)
{
    for (int i = 0; i < timeout_s * 1000; i++) {
        if (atomic_load(&p->done))
            return 0;
        if (atomic_load(&p->failed))
            return stopping() ? -EINTR : -EIO;
        if (wait_readable(-1, 1) == -EINTR)
            return -EINTR;
    }
    return -ETIMEDOUT;
}

static int join(const struct demo *d, int rank, struct progress *p,
                struct fab_pool **pool, struct rdmc_group **group)
{
    struct fab_options fo;
    fab_options_init(&fo);
    fo.node_id = (uint32_t)rank + 1;
    fo.port = d->ports[rank];
    fo.provider = d->provider;
    fo.log = log_errors;
    struct fab_error ferr;
    int rc = fab_pool_create(&fo, pool, &ferr);
    if (rc) {
        fprintf(stderr, "pool: %s\n", ferr.msg);
        return rc;
    }
    struct rdmc_member members[MAX_PROCS];
    for (int i = 0; i < d->procs; i++)
        members[i] =
            (struct rdmc_member){(uint32_t)i + 1, "127.0.0.1", d->ports[i]};
    struct rdmc_options o;
    rdmc_options_init(&o);
    o.group_id = 1;
    o.algorithm = d->alg;
    o.block_size = d->block;
    o.max_msg_size = d->size;
    o.log = log_errors;
    struct rdmc_callbacks cbs = {NULL, on_complete, on_failure};
    rc =
        rdmc_group_create(*pool, members, (size_t)d->procs, &o, &cbs, p, group);
    if (rc) {
        if (!stopping())
            fprintf(stderr, "group: %s\n", rdmc_strerror(rc));
        fab_pool_destroy(*pool);
        *pool = NULL;
    }
    return rc;
}

static int receiver(const struct demo *d, int rank, int report_fd, int leave_fd)
{
    struct progress p = {0};
    struct fab_pool *pool;
    struct rdmc_group *g;
    if (join(d, rank, &p, &pool, &g))
        return stopping() ? stopped_status() : 1;
    int rc = wait_done(&p, 120);
    uint64_t hash = rc ? 0 : p.hash;
    if (rc != -EINTR && write(report_fd, &hash, sizeof(hash)) != sizeof(hash))
        rc = -EIO;
    /* The sender says when to leave (a byte, or EOF when it is gone). */
    int r = rc == -EINTR ? -EINTR : wait_readable(leave_fd, 120000);
    char go;
    if (r == 1 && read(leave_fd, &go, 1) < 0)
        rc = -EIO;
    if (r == -EINTR)
        rc = -EINTR;
    rdmc_group_destroy(g);
    fab_pool_destroy(pool);
    if (rc == -EINTR)
        return stopped_status();
    return rc ? 1 : 0;
}

static int pick_ports(uint16_t *ports, int n)
{
    int fds[MAX_PROCS];
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) ||
            getsockname(fds[i], (struct sockaddr *)&a, &len))
            return -errno;
        ports[i] = ntohs(a.sin_port);
    }
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) || st.st_size <= 0) {
        fclose(f);
        return NULL;
    }
    *size = (size_t)st.st_size;
    uint8_t *buf = malloc(*size);
    if (buf && fread(buf, 1, *size, f) != *size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* Usage on out: stdout for --help, stderr for a usage error (exit 64). */
static void usage(FILE *out)
{
    fprintf(out,
            "usage: rdmc_multicast [-n receivers] [-a algorithm] "
            "[-b block_size] [-p provider] FILE\n"
            "  -n, --receivers N    receiving processes (1..%d, "
            "default 3)\n"
            "  -a, --algorithm A    binomial_send (default), chain_send, "
            "sequential_send, tree_send\n"
            "  -b, --block-size B   block size in bytes (default 1 MiB)\n"
            "  -p, --provider P     libfabric provider (default tcp)\n"
            "  -h, --help           this text\n",
            MAX_PROCS - 1);
}

int main(int argc, char **argv)
{
    struct demo d = {.procs = 4,
                     .alg = RDMC_BINOMIAL_SEND,
                     .block = 1u << 20,
                     .provider = "tcp"};
    static const struct option longopts[] = {
        {"receivers", required_argument, NULL, 'n'},
        {"algorithm", required_argument, NULL, 'a'},
        {"block-size", required_argument, NULL, 'b'},
        {"provider", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "n:a:b:p:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            d.procs = atoi(optarg) + 1;
            break;
        case 'a':
            if (rdmc_algorithm_from_name(optarg, &d.alg)) {
                fprintf(stderr, "rdmc_multicast: unknown algorithm %s\n",
                        optarg);
                usage(stderr);
                return 64;
            }
            break;
        case 'b':
            d.block = (size_t)strtoull(optarg, NULL, 0);
            break;
        case 'p':
            d.provider = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;
        }
    }
    if (optind != argc - 1 || d.procs < 2 || d.procs > MAX_PROCS ||
        d.block == 0) {
        usage(stderr);
        return 64;
    }
    if (block_stop_signals() != 0) {
        perror("signals");
        return 1;
    }
    uint8_t *data = read_file(argv[optind], &d.size);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", argv[optind]);
        return 1;
    }
    if (pick_ports(d.ports, d.procs)) {
        perror("ports");
        free(data);
        return 1;
    }
    int report[MAX_PROCS][2], leave[MAX_PROCS][2];
    pid_t pids[MAX_PROCS];
    int started = 1;
    /* The receivers share a process group of their own, so that a stop
     * reaches all of them at once (killpg): one receiver leaving first
     * would otherwise look like a failure to another not yet told. */
    pid_t group = 0;
    for (int r = 1; r < d.procs; r++) {
        if (pipe(report[r]) || pipe(leave[r])) {
            perror("pipe");
            break;
        }
        pids[r] = fork();
        if (pids[r] == 0) {
            setpgid(0, group);
            /* Only this receiver's own ends: then the sender's end closing
             * (the sender gone) reads as EOF here. */
            for (int k = 1; k < r; k++) {
                close(report[k][0]);
                close(leave[k][1]);
            }
            close(report[r][0]);
            close(leave[r][1]);
            _exit(receiver(&d, r, report[r][1], leave[r][0]));
        }
        close(report[r][1]);
        close(leave[r][0]);
        if (pids[r] < 0) {
            perror("fork");
            close(report[r][0]);
            close(leave[r][1]);
            break;
        }
        setpgid(pids[r], group); /* both sides: no race with the child */
        if (group == 0)
            group = pids[r];
        started++;
    }
    int bad = started < d.procs;
    struct progress p = {0};
    struct fab_pool *pool = NULL;
    struct rdmc_group *g = NULL;
    if (!bad && join(&d, 0, &p, &pool, &g))
        bad = 1;
    uint64_t want = XXH3_64bits(data, d.size);
    if (!bad && !stopping()) {
        printf("sending %zu bytes to %d receivers\n", d.size, d.procs - 1);
        fflush(stdout);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int rc = rdmc_send(g, data, d.size, NULL);
        if (rc == 0)
            rc = wait_done(&p, 120);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) +
                      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (rc != -EINTR)
            printf("sent %zu bytes of %s to %d receivers with %s in %.3f s, "
                   "xxh3 %016llx\n",
                   d.size, argv[optind], d.procs - 1,
                   rdmc_algorithm_name(d.alg), secs, (unsigned long long)want);
        bad = rc != 0;
    }
    for (int r = 1; r < started && !stopping(); r++) {
        uint64_t got = 0;
        if (wait_readable(report[r][0], 120000) != 1 ||
            read(report[r][0], &got, sizeof(got)) != sizeof(got))
            got = 0;
        if (stopping())
            break;
        printf("receiver %d: xxh3 %016llx %s\n", r, (unsigned long long)got,
               got == want ? "OK" : "MISMATCH");
        bad += got != want;
    }
    /* Let the receivers leave: a byte each, or on a stop the signal. */
    int sig = stopping() ? stopped_status() - 128 : 0;
    if (sig && group > 0)
        killpg(group, sig);
    for (int r = 1; !sig && r < started; r++)
        if (write(leave[r][1], "x", 1) != 1)
            bad++;
    for (int r = 1; r < started; r++) {
        int status = 0;
        pid_t w;
        for (int t = 0;
             (w = waitpid(pids[r], &status, WNOHANG)) == 0 && t < 30000;
             t += 10) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (w == 0) { /* stuck for 30 s: not a clean stop any more */
            fprintf(stderr, "receiver %d did not leave; killed\n", r);
            kill(pids[r], SIGKILL);
            waitpid(pids[r], &status, 0);
            bad++;
        } else if (!sig && (!WIFEXITED(status) || WEXITSTATUS(status))) {
            bad++;
        }
        close(report[r][0]);
        close(leave[r][1]);
    }
    rdmc_group_destroy(g);
    fab_pool_destroy(pool);
    free(data);
    if (sig || stopping())
        return stopped_status();
    return bad ? 1 : 0;
}
