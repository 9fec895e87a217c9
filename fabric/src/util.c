/* Options, errors, logging. */
#include "fab-private.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void fab_options_init(struct fab_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->size = sizeof(*opts);
    opts->provider = "tcp";
    opts->domain = NULL;
    opts->listen_addr = "127.0.0.1";
    opts->connect_timeout_ms = 5000;
    opts->cq_size = 1024;
    opts->max_outstanding = 512;
    opts->log_level = LOG_WARNING;
}

/* Every code libfab returns, with its text (one table: docs/fab.md,
 * "Errors"). */
#define FAB__ERRORS(X)                                                         \
    X(0, "success")                                                            \
    X(EPROTO, "incompatible peer (bootstrap field mismatch)")                  \
    X(EACCES, "permission denied (or bootstrap authentication refused: no or " \
              "another group key)")                                            \
    X(EBADMSG, "malformed bootstrap frame")                                    \
    X(ECONNRESET, "connection to peer broken")                                 \
    X(EHOSTDOWN, "peer declared failed")                                       \
    X(ETIMEDOUT, "timed out")                                                  \
    X(ECONNREFUSED, "connection refused")                                      \
    X(ENOTSUP, "not supported by this provider")                               \
    X(EAGAIN, "resource temporarily unavailable (progress and retry)")         \
    X(ERANGE, "range outside the memory region")                               \
    X(EINVAL, "invalid argument")                                              \
    X(ENOENT, "no such peer, key or file")                                     \
    X(EDEADLK, "not allowed from this thread (a callback of the pool)")        \
    X(ENOSPC, "buffer too small")                                              \
    X(EFBIG, "file too large")                                                 \
    X(EPERM, "operation not permitted (file open to others)")                  \
    X(EADDRINUSE, "address already in use")                                    \
    X(ENOMEM, "out of memory")

const char *fab_strerror(int err)
{
    /* Either sign; INT_MIN has no positive form and is no errno. */
    if (err == INT_MIN)
        return "unknown error";
    int e = err < 0 ? -err : err;
    switch (e) {
#define FAB__ERROR_CASE(code, text)                                            \
    case code:                                                                 \
        return text;
        FAB__ERRORS(FAB__ERROR_CASE)
#undef FAB__ERROR_CASE
    default:
        break;
    }
    /* libfabric's own codes start at FI_ERRNO_OFFSET; fi_strerror knows
     * them (below it, it would call strerror(), which is not
     * thread-safe). */
    if (e >= FI_ERRNO_OFFSET && e < FI_ERRNO_MAX)
        return fi_strerror(e);
    const char *text = strerrordesc_np(e);
    return text ? text : "unknown error";
}

static const char *level_name(int level)
{
    if (level <= LOG_ERR)
        return "error";
    if (level == LOG_WARNING)
        return "warning";
    if (level <= LOG_INFO)
        return "info";
    return "debug";
}

static void default_log(const struct fab_pool *pool, int level, const char *msg)
{
    (void)pool;
    fprintf(stderr, "fab: %s: %s\n", level_name(level), msg);
}

void fab__log(const struct fab_pool *pool, int level, const char *fmt, ...)
{
    if (level > pool->opts.log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (pool->opts.log)
        pool->opts.log(pool->opts.log_ctx, level, "fab", msg);
    else
        default_log(pool, level, msg);
}

void fab__set_error(struct fab_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* The library's one monotonic clock; every deadline is in its time. */
int64_t fab__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t fab__now_ms(void)
{
    return fab__now_us() / 1000;
}

void fab__abstime_after_ms(int64_t wait_ms, struct timespec *ts)
{
    int64_t at = fab__now_us() + wait_ms * 1000;
    ts->tv_sec = (time_t)(at / 1000000);
    ts->tv_nsec = (long)(at % 1000000) * 1000;
}

int fab__fi_err(ssize_t ret)
{
    if (ret >= 0)
        return 0;
    return (int)ret;
}
