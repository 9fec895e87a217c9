/* mutils_strerror: a short text for each error this library returns. */
#include "mutils-private.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* Every code the library returns, with its text: the one table. */
#define MUTILS__ERRORS(X)                                                      \
    X(0, "success")                                                            \
    X(ENOSPC, "no room left in the output buffer")                             \
    X(ENOMEM, "out of memory")                                                 \
    X(ERANGE, "length or count exceeds its maximum, or buffer too small")      \
    X(EOVERFLOW, "size arithmetic would overflow")                             \
    X(EBADMSG, "malformed or truncated input")                                 \
    X(ELOOP, "nesting deeper than MUTILS_MAX_DEPTH")                           \
    X(EINVAL, "invalid argument or descriptor")

const char *mutils_strerror(int err)
{
    /* Either sign; -(unsigned)err: INT_MIN has no positive int (and no
     * errno). */
    unsigned code = err < 0 ? 0u - (unsigned)err : (unsigned)err;
    switch (code) {
#define MUTILS__ERROR_CASE(e, text)                                            \
    case e:                                                                    \
        return text;
        MUTILS__ERRORS(MUTILS__ERROR_CASE)
#undef MUTILS__ERROR_CASE
    default: {
        /* Any other errno: the system's static text (strerror()'s buffer
         * is not thread-safe). */
        const char *text = code <= INT_MAX ? strerrordesc_np((int)code) : NULL;
        return text ? text : "unknown error";
    }
    }
}
