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

const char *fab_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error"; /* -INT_MIN does not exist */
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case -EPROTO:
        return "incompatible peer (bootstrap field mismatch)";
    case -EBADMSG:
        return "malformed bootstrap frame";
    case -ECONNRESET:
        return "connection to peer broken";
    case -EHOSTDOWN:
        return "peer declared failed";
    case -ETIMEDOUT:
        return "timed out";
    case -ECONNREFUSED:
        return "connection refused";
    case -ENOTSUP:
        return "not supported by this provider";
    case -EAGAIN:
        return "resource temporarily unavailable (progress and retry)";
    case -ERANGE:
        return "range outside the memory region";
    case -EINVAL:
        return "invalid argument";
    default:
        break;
    }
    /* libfabric's codes are errno values below FI_ERRNO_OFFSET and its own
     * above; fi_strerror knows both. */
    return fi_strerror(-err);
}

static void default_log(const struct fab_pool *pool, int level, const char *msg)
{
    (void)pool;
    (void)level;
    fprintf(stderr, "fab: %s\n", msg);
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

int64_t fab__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fab__fi_err(ssize_t ret)
{
    if (ret >= 0)
        return 0;
    return (int)ret;
}
