/* Error codes and details. */
#include "derecho-private.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

const char *derecho_strerror(int err)
{
    if (err > 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case -EINVAL:
        return "invalid argument";
    case -ERANGE:
        return "out of range";
    case -ENOENT:
        return "not found";
    case -ENOMEM:
        return "out of memory";
    case -ENOSPC:
        return "limit reached";
    case -EBADMSG:
        return "malformed message or document";
    case -EPROTO:
        return "incompatible peer (protocol, endianness, word size or "
               "fingerprint differs)";
    case -ETIMEDOUT:
        return "timed out";
    case -ECONNRESET:
        return "connection closed by peer";
    case -EMSGSIZE:
        return "message too large";
    case -ECONNREFUSED:
        return "join refused";
    default: {
        /* Any other errno of the system calls we make: the system's own
         * static text (strerror's may not be thread-safe). */
        const char *text = err != INT_MIN ? strerrordesc_np(-err) : NULL;
        return text ? text : "unknown error code";
    }
    }
}

int derecho__fail(struct derecho_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        err->field = 0;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

void derecho__copy_str(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = 0;
}
