/* Options, errors, logging, time. */
#include "sst-private.h"

#include <errno.h>
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

const char *sst_strerror(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case -EPROTO:
        return "a member's table schema or member list differs";
    case -EDEADLK:
        return "not allowed from the table's polling thread";
    case -EHOSTDOWN:
        return "member suspected or its connection failed";
    default:
        /* errno values and libfabric's own codes (fab_strerror knows
         * both). */
        return fab_strerror(err);
    }
}

int64_t sst__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
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
        fprintf(stderr, "sst: %s\n", msg);
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
