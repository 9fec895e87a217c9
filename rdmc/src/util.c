/* Options, errors and logging. */
#include "rdmc-private.h"

#include <errno.h>
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

const char *rdmc_strerror(int err)
{
    if (err > 0)
        err = -err; /* positive errno values read as their negation */
    switch (err) {
    case 0:
        return "success";
    case -EPROTO:
        return "group members disagree on the group's parameters";
    case -EMSGSIZE:
        return "message larger than the group's maximum";
    case -EPERM:
        return "only the sender (rank 0) may send";
    case -EBADMSG:
        return "malformed traffic from a peer";
    case -ESHUTDOWN:
        return "group closed (wedged or destroyed at a member)";
    default:
        return fab_strerror(err);
    }
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
        fprintf(stderr, "rdmc[%u]: %s\n", g->opts.group_id, msg);
}
