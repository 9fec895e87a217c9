/* Options, error names, version helpers and logging. */
#include "persistent-private.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

int64_t persistent_version_make(int32_t view_id, int32_t seq)
{
    return (int64_t)(((uint64_t)(uint32_t)view_id << 32) | (uint32_t)seq);
}

int32_t persistent_version_view(int64_t version)
{
    return (int32_t)(uint32_t)((uint64_t)version >> 32);
}

int32_t persistent_version_seq(int64_t version)
{
    return (int32_t)(uint32_t)((uint64_t)version & 0xffffffffu);
}

void persistent_options_init(struct persistent_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->size = sizeof(*opts);
    opts->directory = ".persist";
    opts->reset = false;
    opts->max_log_entry = 1048576;
    opts->max_data_size = 64ull << 30;
    opts->log = NULL;
    opts->log_ctx = NULL;
    opts->log_level = LOG_WARNING;
}

/* The codes libpersistent returns, with what they mean here: one table
 * (an X-macro list) for persistent_strerror. */
#define PERSISTENT__ERRORS(X)                                                  \
    X(EINVAL, "invalid argument")                                              \
    X(ENOENT, "no such entry or file")                                         \
    X(ENOSPC, "log or file system full")                                       \
    X(EFBIG, "file too large")                                                 \
    X(EBADMSG, "damaged log file or malformed bytes")                          \
    X(ENOBUFS, "buffer too small")                                             \
    X(ENOMEM, "out of memory")                                                 \
    X(EIO, "input/output error")                                               \
    X(EBUSY, "log already open")                                               \
    X(EACCES, "permission denied")                                             \
    X(ERANGE, "out of range")                                                  \
    X(ENOTDIR, "not a directory")                                              \
    X(EISDIR, "is a directory")                                                \
    X(ENAMETOOLONG, "path too long")                                           \
    X(EROFS, "read-only file system")                                          \
    X(EPERM, "operation not permitted")                                        \
    X(EOVERFLOW, "value too large")                                            \
    X(EDEADLK, "would deadlock (persist from a foreach callback)")

const char *persistent_strerror(int err)
{
    if (err == INT_MIN)
        return "unknown error"; /* its negation does not exist */
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
#define PERSISTENT__CASE(name, text)                                           \
    case name:                                                                 \
        return #name ": " text;
        PERSISTENT__ERRORS(PERSISTENT__CASE)
#undef PERSISTENT__CASE
    default:
        break;
    }
    /* Any other errno: the system's name and text (strerrorname_np and
     * strerrordesc_np return constant strings: thread-safe, unlike
     * strerror), in a buffer of the calling thread. */
    static _Thread_local char buf[160];
    const char *name = strerrorname_np(err);
    const char *desc = strerrordesc_np(err);
    if (name && desc)
        snprintf(buf, sizeof(buf), "%s: %s", name, desc);
    else
        snprintf(buf, sizeof(buf), "unknown error %d", err);
    return buf;
}

static const char *level_name(int level)
{
    switch (level) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
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

static void vlog(const struct persistent_options *opts, int level,
                 const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog(const struct persistent_options *opts, int level,
                 const char *fmt, va_list ap)
{
    if (level > opts->log_level)
        return;
    char msg[768];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (opts->log)
        opts->log(opts->log_ctx, level, "persistent", msg);
    else
        fprintf(stderr, "persistent: %s: %s\n", level_name(level), msg);
}

void persistent__log_opts(const struct persistent_options *opts, int level,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(opts, level, fmt, ap);
    va_end(ap);
}

void persistent__log(const struct persistent_log *log, int level,
                     const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(&log->opts, level, fmt, ap);
    va_end(ap);
}
