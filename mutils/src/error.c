/* mutils_strerror: a short text for each error this library returns. */
#include "mutils-private.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

const char *mutils_strerror(int err)
{
    /* -(unsigned)err: INT_MIN has no positive int (and no errno). */
    switch (err < 0 ? 0u - (unsigned)err : (unsigned)err) {
    case 0:
        return "success";
    case ENOSPC:
        return "no room left in the output buffer";
    case ENOMEM:
        return "out of memory";
    case ERANGE:
        return "length or count exceeds its maximum, or buffer too small";
    case EOVERFLOW:
        return "size arithmetic would overflow";
    case EBADMSG:
        return "malformed or truncated input";
    case ELOOP:
        return "nesting deeper than MUTILS_MAX_DEPTH";
    case EINVAL:
        return "invalid argument or descriptor";
    default: {
        /* Any other errno: the system's static text (never NULL here). */
        const char *text = err != 0 && err != INT_MIN
                               ? strerrordesc_np(err < 0 ? -err : err)
                               : NULL;
        return text ? text : "unknown error";
    }
    }
}
