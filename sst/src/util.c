/* Options, errors, logging, time. */
#include "sst-private.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void sst_options_init(struct sst_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->size = sizeof(*opts);
    opts->table_id = 0;
    opts->heartbeat_ms = 20;
    opts->suspect_timeout_ms = 1000;
    opts->setup_timeout_ms = 10000;
    opts->close_timeout_ms = 1000;
    opts->spin_us = -1;
    opts->log_level = LOG_WARNING;
}

/* libsst's own texts for the codes it returns; every other errno gets
 * the system's static text, libfabric's codes libfab's. */
#define SST__ERRORS(X)                                                         \
    X(0, "success")                                                            \
    X(EPROTO, "a member's table schema, member list or table id differs")      \
    X(EDEADLK, "not allowed from the table's polling thread")                  \
    X(EHOSTDOWN, "member suspected or its connection failed")                  \
    X(ETIMEDOUT, "timed out")                                                  \
    X(EAGAIN, "no room right now (being written, or queues full): retry")      \
    X(ENOENT, "no such predicate, field or member")                            \
    X(ERANGE, "range outside the row, or row too large")                       \
    X(EINVAL, "invalid argument")                                              \
    X(ENOMEM, "out of memory")                                                 \
    X(ECONNRESET, "connection to member broken")                               \
    X(ECONNREFUSED, "connection refused")

const char *sst_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error"; /* -INT_MIN does not exist */
    if (err < 0)
        err = -err;
    switch (err) {
#define SST__CASE(code, text)                                                  \
    case code:                                                                 \
        return text;
        SST__ERRORS(SST__CASE)
#undef SST__CASE
    default:
        break;
    }
    const char *sys = strerrordesc_np(err);
    if (sys)
        return sys;
    /* libfabric's own codes lie above its errno offset (256); below it an
     * errno the system does not name is no errno (fi_strerror would call
     * strerror(), whose buffer is not thread-safe). */
    return err >= 256 ? fab_strerror(-err) : "unknown error";
}

static const char *level_name(int level)
{
    switch (level) {
    case LOG_EMERG:
        return "emergency";
    case LOG_ALERT:
        return "alert";
    case LOG_CRIT:
        return "critical";
    case LOG_ERR:
        return "error";
    case LOG_WARNING:
        return "warning";
    case LOG_NOTICE:
        return "notice";
    case LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

/* The library's one monotonic clock; every deadline is in its time. */
int64_t sst__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void sst__abstime_after_us(int64_t wait_us, struct timespec *ts)
{
    int64_t at = sst__now_us() + wait_us;
    ts->tv_sec = (time_t)(at / 1000000);
    ts->tv_nsec = (long)(at % 1000000) * 1000;
}

void sst__log(const struct sst_table *t, int level, const char *fmt, ...)
{
    if (level > t->opts.log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (t->opts.log)
        t->opts.log(t->opts.log_ctx, level, "sst", msg);
    else
        fprintf(stderr, "sst: %s: %s\n", level_name(level), msg);
}

void sst__set_error(struct sst_error *err, int code, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}
