/* Options, error names, version helpers and logging. */
#include "persistent-private.h"

#include <errno.h>
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

const char *persistent_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case -EINVAL:
        return "-EINVAL: invalid argument";
    case -ENOENT:
        return "-ENOENT: no such entry or file";
    case -ENOSPC:
        return "-ENOSPC: log or file system full";
    case -EFBIG:
        return "-EFBIG: file too large";
    case -EBADMSG:
        return "-EBADMSG: damaged log file or malformed bytes";
    case -ENOBUFS:
        return "-ENOBUFS: buffer too small";
    case -ENOMEM:
        return "-ENOMEM: out of memory";
    case -EIO:
        return "-EIO: input/output error";
    case -EBUSY:
        return "-EBUSY: log already open";
    case -EACCES:
        return "-EACCES: permission denied";
    case -ERANGE:
        return "-ERANGE: out of range";
    case -ENOTDIR:
        return "-ENOTDIR: not a directory";
    case -EISDIR:
        return "-EISDIR: is a directory";
    case -ENAMETOOLONG:
        return "-ENAMETOOLONG: path too long";
    case -EROFS:
        return "-EROFS: read-only file system";
    case -EPERM:
        return "-EPERM: operation not permitted";
    case -EOVERFLOW:
        return "-EOVERFLOW: value too large";
    default:
        return "unknown error";
    }
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

void pers__log_opts(const struct persistent_options *opts, int level,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(opts, level, fmt, ap);
    va_end(ap);
}

void pers__log(const struct persistent_log *log, int level, const char *fmt,
               ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(&log->opts, level, fmt, ap);
    va_end(ap);
}
