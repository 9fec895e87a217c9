/* Fault injection by interposition (faultfs.h). */
#include "faultfs.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static char part[256];
static _Atomic unsigned armed_ops;
static _Atomic long nth_fail = -1, calls, failed;
static _Atomic bool sticky_fail;
static _Atomic int fail_err = EIO;
static char track_part[256];
static _Atomic bool tracking;
static _Atomic long long synced_size = -1;
static _Atomic int report_fd = -1;

void ff_report_to(int fd)
{
    atomic_store(&report_fd, fd);
}

/* The real function, looked up once (atomically: any thread may be
 * first). */
static void *real(_Atomic(void *) *slot, const char *name)
{
    void *f = atomic_load_explicit(slot, memory_order_acquire);
    if (!f) {
        f = dlsym(RTLD_NEXT, name);
        if (!f)
            _exit(99);
        atomic_store_explicit(slot, f, memory_order_release);
    }
    return f;
}

void ff_track(const char *path_part)
{
    atomic_store(&tracking, false);
    snprintf(track_part, sizeof(track_part), "%s", path_part);
    atomic_store(&synced_size, -1);
    atomic_store(&tracking, true);
}

long long ff_synced_size(void)
{
    return atomic_load(&synced_size);
}

/* After a successful sync of fd: remember its size when it is tracked. */
static void synced(int fd)
{
    if (!atomic_load(&tracking))
        return;
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return;
    path[n] = 0;
    struct stat st;
    if (strstr(path, track_part) && fstat(fd, &st) == 0) {
        atomic_store(&synced_size, (long long)st.st_size);
        int rfd = atomic_load(&report_fd);
        if (rfd >= 0) {
            /* Reported before the sync returns to its caller: anything the
             * caller writes next relies on a size already reported. */
            int64_t msg[2] = {FF_REPORT_SYNCED, (int64_t)st.st_size};
            static _Atomic(void *) wslot;
            ssize_t (*w)(int, const void *, size_t) =
                (ssize_t(*)(int, const void *, size_t))real(&wslot, "write");
            if (w(rfd, msg, sizeof(msg)) != sizeof(msg))
                _exit(98);
        }
    }
}

void ff_arm(const char *path_part, unsigned ops, long nth, bool sticky, int err)
{
    atomic_store(&armed_ops, 0);
    snprintf(part, sizeof(part), "%s", path_part);
    atomic_store(&nth_fail, nth);
    atomic_store(&sticky_fail, sticky);
    atomic_store(&fail_err, err);
    atomic_store(&calls, 0);
    atomic_store(&failed, 0);
    atomic_store(&armed_ops, ops);
}

void ff_disarm(void)
{
    atomic_store(&armed_ops, 0);
}

long ff_calls(void)
{
    return atomic_load(&calls);
}

long ff_failed(void)
{
    return atomic_load(&failed);
}

/* True when this call is to fail (errno is then set). */
static bool hit(unsigned op, int fd)
{
    if (!(atomic_load(&armed_ops) & op))
        return false;
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0)
        return false;
    path[n] = 0;
    if (!strstr(path, part))
        return false;
    long k = atomic_fetch_add(&calls, 1);
    if (getenv("FF_DEBUG") && atoi(getenv("FF_DEBUG")) > 1)
        fprintf(stderr, "faultfs: call %ld op %u on %s\n", k, op, path);
    long at = atomic_load(&nth_fail);
    if (at < 0 || k < at || (k > at && !atomic_load(&sticky_fail)))
        return false;
    atomic_fetch_add(&failed, 1);
    if (getenv("FF_DEBUG"))
        fprintf(stderr, "faultfs: failing op %u on %s (call %ld)\n", op, path,
                k);
    errno = atomic_load(&fail_err);
    return true;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static _Atomic(void *) slot;
    ssize_t (*f)(int, const void *, size_t, off_t) =
        (ssize_t(*)(int, const void *, size_t, off_t))real(&slot, "pwrite");
    return hit(FF_PWRITE, fd) ? -1 : f(fd, buf, n, off);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    static _Atomic(void *) slot;
    ssize_t (*f)(int, const struct iovec *, int, off_t) =
        (ssize_t(*)(int, const struct iovec *, int, off_t))real(&slot,
                                                                "pwritev");
    return hit(FF_PWRITEV, fd) ? -1 : f(fd, iov, cnt, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    static _Atomic(void *) slot;
    ssize_t (*f)(int, const void *, size_t) =
        (ssize_t(*)(int, const void *, size_t))real(&slot, "write");
    return hit(FF_WRITE, fd) ? -1 : f(fd, buf, n);
}

int fdatasync(int fd)
{
    static _Atomic(void *) slot;
    int (*f)(int) = (int (*)(int))real(&slot, "fdatasync");
    if (hit(FF_FDATASYNC, fd))
        return -1;
    int r = f(fd);
    if (r == 0)
        synced(fd);
    return r;
}

int fsync(int fd)
{
    static _Atomic(void *) slot;
    int (*f)(int) = (int (*)(int))real(&slot, "fsync");
    if (hit(FF_FSYNC, fd))
        return -1;
    int r = f(fd);
    if (r == 0)
        synced(fd);
    return r;
}

int ftruncate(int fd, off_t len)
{
    static _Atomic(void *) slot;
    int (*f)(int, off_t) = (int (*)(int, off_t))real(&slot, "ftruncate");
    return hit(FF_FTRUNCATE, fd) ? -1 : f(fd, len);
}
