/* Options, errors and logging. */
#include "rdmc-private.h"

#include <errno.h>
#include <limits.h>
#include <rdma/fi_errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

void rdmc_options_init(struct rdmc_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->size = sizeof(*opts);
    opts->algorithm = RDMC_BINOMIAL_SEND;
    opts->block_size = 1u << 20;
    opts->max_msg_size = 64u << 20;
    opts->window = 4;
    opts->create_timeout_ms = 10000;
    opts->timeout_ms = 10000;
    opts->spin_us = 50;
    opts->log_level = LOG_WARNING;
}

/* Every code librdmc itself gives a meaning of its own; other codes are
 * libfab's, libfabric's or the system's. */
#define RDMC_ERRORS(X)                                                         \
    X(0, "success")                                                            \
    X(EPROTO, "group members disagree on the group's parameters")              \
    X(EMSGSIZE, "message larger than the group's maximum")                     \
    X(EPERM, "only the sender (rank 0) may send")                              \
    X(EBADMSG, "malformed traffic from a peer")                                \
    X(ESHUTDOWN, "group closed (wedged or destroyed at a member)")             \
    X(EDEADLK, "not allowed from a callback of the group")                     \
    X(EAGAIN, "sender's queue is full (max_queued): retry after a completion") \
    X(ENOSPC, "no free libfab data tag in the pool")

const char *rdmc_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error"; /* -INT_MIN does not exist */
    if (err < 0)
        err = -err; /* either sign names the same code */
    switch (err) {
#define RDMC_ERROR_CASE(code, text)                                            \
    case code:                                                                 \
        return text;
        RDMC_ERRORS(RDMC_ERROR_CASE)
#undef RDMC_ERROR_CASE
    default:
        break;
    }
    if (err >= FI_ERRNO_OFFSET)
        return fab_strerror(-err); /* libfabric's own codes */
    /* The system's static text (strerror is not thread-safe). */
    const char *text = strerrordesc_np(err);
    if (text)
        return text;
    return fab_strerror(-err);
}

static const char *level_name(int level)
{
    static const char *const names[] = {"emergency", "alert",   "critical",
                                        "error",     "warning", "notice",
                                        "info",      "debug"};
    return level >= 0 && level <= 7 ? names[level] : "log";
}

void rdmc__log(struct rdmc_group *g, int level, const char *fmt, ...)
{
    if (level > g->opts.log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g->opts.log)
        g->opts.log(g->opts.log_ctx, level, "rdmc", msg);
    else
        fprintf(stderr, "rdmc: %s: group %u: %s\n", level_name(level),
                g->opts.group_id, msg);
}
