/* Test harness implementation: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TH_TMPROOT_ENV "DERECHO_TEST_TMPROOT"

int64_t th_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t th_now_ms(void)
{
    return th_now_ns() / 1000000;
}

static void pause_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000,
                          .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void th_backoff(long *backoff_us)
{
    if (*backoff_us <= 0)
        *backoff_us = 50;
    pause_us(*backoff_us);
    if (*backoff_us < 5000)
        *backoff_us *= 2;
}

bool th_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
    return TH_WAIT_UNTIL(cond(arg), timeout_ms);
}

/* ---- temporary directories ------------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        return -1;
    return 0;
}

int th_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return -(errno ? errno : EIO);
    return 0;
}

/* Directories made by this process, removed at its normal exit. */
#define TH_MAX_TMPDIRS 32
static char made_dirs[TH_MAX_TMPDIRS][256];
static pid_t made_by[TH_MAX_TMPDIRS];
static int num_made_dirs;

static void remove_made_dirs(void)
{
    for (int i = 0; i < num_made_dirs; i++) {
        if (made_by[i] == getpid())
            th_rmtree(made_dirs[i]);
    }
}

int th_tmpdir(char *buf, size_t len)
{
    const char *root = getenv(TH_TMPROOT_ENV);
    const char *base = getenv("TMPDIR");
    int n;
    if (root)
        n = snprintf(buf, len, "%s/t-XXXXXX", root);
    else
        n = snprintf(buf, len, "%s/derecho-t-XXXXXX", base ? base : "/tmp");
    if (n < 0 || (size_t)n >= len)
        return -ENAMETOOLONG;
    if (!mkdtemp(buf))
        return -errno;
    if (num_made_dirs < TH_MAX_TMPDIRS && strlen(buf) < sizeof(made_dirs[0])) {
        if (num_made_dirs == 0)
            atexit(remove_made_dirs);
        strcpy(made_dirs[num_made_dirs], buf);
        made_by[num_made_dirs] = getpid();
        num_made_dirs++;
    }
    return 0;
}

/* ---- child processes --------------------------------------------------- */

void th_procs_init(struct th_procs *procs)
{
    memset(procs, 0, sizeof(*procs));
}

static int spawn(struct th_procs *procs, const char *path,
                 const char *const argv[])
{
    if (procs->count >= TH_MAX_PROCS)
        return -ENOSPC;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        /* Die with the test that spawned us, so no child outlives a failed
         * or timed-out test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        execv(path, (char *const *)argv);
        fprintf(stderr, "harness: exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    int i = procs->count++;
    procs->pid[i] = pid;
    procs->reaped[i] = false;
    procs->status[i] = 0;
    return i;
}

int th_spawn_exec(struct th_procs *procs, const char *path,
                  const char *const argv[])
{
    return spawn(procs, path, argv);
}

int th_spawn_child(struct th_procs *procs, const char *name,
                   const char *const args[])
{
    const char *argv[64];
    int n = 0;
    argv[n++] = "test-child";
    argv[n++] = "--child";
    argv[n++] = name;
    for (int i = 0; args && args[i]; i++) {
        if (n >= 63)
            return -E2BIG;
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    return spawn(procs, "/proc/self/exe", argv);
}

int th_signal(struct th_procs *procs, int i, int sig)
{
    if (i < 0 || i >= procs->count)
        return -EINVAL;
    if (procs->reaped[i])
        return -ESRCH;
    return kill(procs->pid[i], sig) == 0 ? 0 : -errno;
}

static bool try_reap(struct th_procs *procs, int i)
{
    if (procs->reaped[i])
        return true;
    int status;
    pid_t r = waitpid(procs->pid[i], &status, WNOHANG);
    if (r == procs->pid[i] || (r < 0 && errno == ECHILD)) {
        procs->status[i] = r == procs->pid[i] ? status : -1;
        procs->reaped[i] = true;
    }
    return procs->reaped[i];
}

struct reap_one {
    struct th_procs *procs;
    int i;
};

static bool reaped_one(void *arg)
{
    struct reap_one *r = arg;
    return try_reap(r->procs, r->i);
}

int th_wait_one(struct th_procs *procs, int i, int timeout_ms)
{
    if (i < 0 || i >= procs->count)
        return -EINVAL;
    struct reap_one r = {procs, i};
    return th_wait_until(reaped_one, &r, timeout_ms) ? 0 : -ETIMEDOUT;
}

static bool reaped_all(void *arg)
{
    struct th_procs *procs = arg;
    bool all = true;
    for (int i = 0; i < procs->count; i++)
        all = try_reap(procs, i) && all;
    return all;
}

int th_wait_all(struct th_procs *procs, int timeout_ms)
{
    if (th_wait_until(reaped_all, procs, timeout_ms))
        return 0;
    th_procs_kill_all(procs);
    return -ETIMEDOUT;
}

bool th_exited_ok(const struct th_procs *procs, int i)
{
    return i >= 0 && i < procs->count && procs->reaped[i] &&
           WIFEXITED(procs->status[i]) && WEXITSTATUS(procs->status[i]) == 0;
}

void th_procs_kill_all(struct th_procs *procs)
{
    for (int i = 0; i < procs->count; i++) {
        if (procs->reaped[i])
            continue;
        kill(procs->pid[i], SIGKILL);
        int status;
        if (waitpid(procs->pid[i], &status, 0) == procs->pid[i])
            procs->status[i] = status;
        else
            procs->status[i] = -1;
        procs->reaped[i] = true;
    }
}

/* ---- leaks ------------------------------------------------------------- */

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

int th_count_fds(void)
{
    return count_entries("/proc/self/fd");
}

int th_count_threads(void)
{
    return count_entries("/proc/self/task");
}

/* ---- network ----------------------------------------------------------- */

/* Ports handed out by the kernel for port 0 come from the ephemeral range,
 * and so do the local ports of every outgoing connection (bootstrap
 * sockets, libfabric's tcp endpoints): a port picked that way may be taken
 * by some connect() before the test binds it.  So we pick below the
 * ephemeral range, where only explicit binds (other tests) compete.
 * Returns the range's first port (32768 when unreadable). */
static int ephemeral_start(void)
{
    int lo = 32768, hi;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &lo, &hi) != 2)
            lo = 32768;
        fclose(f);
    }
    return lo;
}

/* Binds a listening-style socket to 127.0.0.1:port (0: any).  Returns the
 * fd (port written back) or a negative errno. */
static int bind_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(*port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

int th_free_tcp_ports(uint16_t *ports, int n)
{
    int fds[TH_MAX_PROCS * 4];
    if (n <= 0 || n > (int)(sizeof(fds) / sizeof(fds[0])))
        return -EINVAL;
    /* Below the ephemeral range, above the well-known and registered ports
     * most daemons use; fall back to port 0 if that window is too small. */
    const int first = 20000;
    int window = ephemeral_start() - first;
    uint64_t x = (uint64_t)th_now_ns() ^ ((uint64_t)getpid() << 32);
    int err = 0, made = 0;
    for (; made < n; made++) {
        int fd = -EADDRINUSE;
        for (int attempt = 0; window >= 1000 && attempt < 64 && fd < 0;
             attempt++) {
            x ^= x << 13; /* xorshift: a different walk in every process */
            x ^= x >> 7;
            x ^= x << 17;
            uint16_t port = (uint16_t)(first + (int)(x % (uint64_t)window));
            fd = bind_loopback(&port);
            if (fd >= 0)
                ports[made] = port;
        }
        if (fd < 0) {
            uint16_t port = 0;
            fd = bind_loopback(&port);
            if (fd >= 0)
                ports[made] = port;
        }
        if (fd < 0) {
            err = fd;
            break;
        }
        fds[made] = fd;
    }
    for (int i = 0; i < made; i++)
        close(fds[i]);
    return err;
}

/* ---- runner ------------------------------------------------------------ */

static char tmproot[256];

static void remove_tmproot(void)
{
    if (tmproot[0])
        th_rmtree(tmproot);
}

static void on_termination(int sig)
{
    /* meson's time-out or ^C: leave no temporary files behind, then die of
     * the same signal so the caller sees what happened. */
    remove_tmproot();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int run_child(int argc, char **argv, const struct th_child *children)
{
    for (const struct th_child *c = children; c && c->name; c++) {
        if (strcmp(c->name, argv[2]) == 0)
            return c->main(argc - 2, argv + 2);
    }
    fprintf(stderr, "harness: no child named '%s'\n", argv[2]);
    return 127;
}

int th_main(int argc, char **argv, Suite *(*const suites[])(void),
            const struct th_child *children)
{
    if (argc >= 3 && strcmp(argv[1], "--child") == 0)
        return run_child(argc, argv, children);

    const char *base = getenv("TMPDIR");
    snprintf(tmproot, sizeof(tmproot), "%s/derecho-test-XXXXXX",
             base ? base : "/tmp");
    if (!mkdtemp(tmproot)) {
        perror("harness: mkdtemp");
        return 2;
    }
    setenv(TH_TMPROOT_ENV, tmproot, 1);
    signal(SIGTERM, on_termination);
    signal(SIGINT, on_termination);
    signal(SIGPIPE, SIG_IGN);

    SRunner *runner = NULL;
    for (int i = 0; suites[i]; i++) {
        if (!runner)
            runner = srunner_create(suites[i]());
        else
            srunner_add_suite(runner, suites[i]());
    }
    if (!runner) {
        remove_tmproot();
        return 2;
    }
    srunner_set_fork_status(runner, CK_FORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    remove_tmproot();
    return failed == 0 ? 0 : 1;
}

/* ---- the options-size contract ------------------------------------------ */

void th_check_options_sizes(const struct th_options_case *c,
                            const size_t *bad_sizes, size_t n)
{
    enum { NEWER = 64 };
    unsigned char *buf = calloc(1, c->struct_size + NEWER);
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++) {
        memset(buf, 0, c->struct_size + NEWER);
        c->fill(buf, bad_sizes[i], c->ctx);
        ck_assert_msg(c->try_use(buf, c->ctx) == -EINVAL,
                      "options size %zu was not refused", bad_sizes[i]);
    }
    memset(buf, 0, c->struct_size + NEWER);
    c->fill(buf, c->struct_size + NEWER, c->ctx);
    ck_assert_msg(c->try_use(buf, c->ctx) == 0,
                  "a newer caller's zeroed extra bytes were refused");
    memset(buf, 0, c->struct_size + NEWER);
    c->fill(buf, c->struct_size + NEWER, c->ctx);
    buf[c->struct_size + 10] = 1;
    ck_assert_msg(c->try_use(buf, c->ctx) == -EINVAL,
                  "a newer caller's non-zero extra byte was accepted");
    free(buf);
}
