/* Bounded writer and reader: typed primitives and variable-size values. */
#include "mutils-private.h"

#include <errno.h>
#include <stdlib.h>

/* ---- writer ------------------------------------------------------------ */

void mutils_writer_init(struct mutils_writer *w, void *buf, size_t cap)
{
    if (!w)
        return;
    w->buf = buf;
    w->len = 0;
    w->cap = buf ? cap : 0;
    w->err = 0;
    w->growable = false;
}

int mutils_writer_init_growable(struct mutils_writer *w, size_t initial_cap)
{
    if (!w)
        return -EINVAL;
    mutils_writer_init(w, NULL, 0);
    w->growable = true;
    if (initial_cap > MUTILS_MAX_ALLOC)
        return -ENOMEM;
    if (initial_cap) {
        w->buf = malloc(initial_cap);
        if (!w->buf)
            return -ENOMEM;
        w->cap = initial_cap;
    }
    return 0;
}

void mutils_writer_fini(struct mutils_writer *w)
{
    if (!w)
        return;
    if (w->growable)
        free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
    w->err = 0;
}

void *mutils_writer_steal(struct mutils_writer *w, size_t *len)
{
    if (!w) {
        if (len)
            *len = 0;
        return NULL;
    }
    void *buf = w->buf;
    if (len)
        *len = w->len;
    if (w->growable) {
        w->buf = NULL;
        w->cap = 0;
    }
    w->len = 0;
    w->err = 0;
    return buf;
}

size_t mutils_writer_len(const struct mutils_writer *w)
{
    return w ? w->len : MUTILS_NO_SIZE;
}

const void *mutils_writer_data(const struct mutils_writer *w)
{
    return w ? w->buf : NULL;
}

int mutils_writer_error(const struct mutils_writer *w)
{
    return w ? w->err : -EINVAL;
}

void mutils_writer_reset(struct mutils_writer *w)
{
    if (!w)
        return;
    w->len = 0;
    w->err = 0;
}

uint8_t *mutils__writer_room(struct mutils_writer *w, size_t n, uint8_t **old)
{
    if (old)
        *old = NULL;
    if (MUTILS__UNLIKELY(w->err))
        return NULL;
    if (MUTILS__LIKELY(w->cap - w->len >= n))
        return w->buf + w->len;
    if (!w->growable) {
        w->err = -ENOSPC;
        return NULL;
    }
    if (n > SIZE_MAX - w->len) {
        w->err = -EOVERFLOW;
        return NULL;
    }
    size_t need = w->len + n;
    if (need > MUTILS_MAX_ALLOC) {
        w->err = -ENOMEM;
        return NULL;
    }
    size_t cap = w->cap ? w->cap : 64;
    while (cap < need)
        cap = cap > MUTILS_MAX_ALLOC / 2 ? need : cap * 2;
    uint8_t *buf;
    if (old) {
        /* The caller's source may lie in the current buffer: keep it alive
         * (the caller frees it) rather than let realloc move it away. */
        buf = malloc(cap);
        if (buf && w->len)
            memcpy(buf, w->buf, w->len);
        if (buf)
            *old = w->buf;
    } else {
        buf = realloc(w->buf, cap);
    }
    if (!buf) {
        w->err = -ENOMEM;
        return NULL;
    }
    w->buf = buf;
    w->cap = cap;
    return w->buf + w->len;
}

static inline uint8_t *writer_room(struct mutils_writer *w, size_t n)
{
    return mutils__writer_room(w, n, NULL);
}

int mutils_writer_reserve(struct mutils_writer *w, size_t n, void **out)
{
    if (!w)
        return -EINVAL;
    if (w->err)
        return w->err;
    if (!out)
        return -EINVAL;
    if (!n) {
        *out = w->buf ? w->buf + w->len : NULL;
        return 0;
    }
    uint8_t *p = writer_room(w, n);
    if (!p)
        return w->err;
    w->len += n;
    *out = p;
    return 0;
}

int mutils_put_u8(struct mutils_writer *w, uint8_t v)
{
    if (!w)
        return -EINVAL;
    uint8_t *p = writer_room(w, 1);
    if (!p)
        return w->err;
    *p = v;
    w->len += 1;
    return 0;
}

int mutils_put_u16(struct mutils_writer *w, uint16_t v)
{
    if (!w)
        return -EINVAL;
    uint8_t *p = writer_room(w, 2);
    if (!p)
        return w->err;
    mutils__st16(p, v);
    w->len += 2;
    return 0;
}

int mutils_put_u32(struct mutils_writer *w, uint32_t v)
{
    if (!w)
        return -EINVAL;
    uint8_t *p = writer_room(w, 4);
    if (!p)
        return w->err;
    mutils__st32(p, v);
    w->len += 4;
    return 0;
}

int mutils_put_u64(struct mutils_writer *w, uint64_t v)
{
    if (!w)
        return -EINVAL;
    uint8_t *p = writer_room(w, 8);
    if (!p)
        return w->err;
    mutils__st64(p, v);
    w->len += 8;
    return 0;
}

int mutils_put_i8(struct mutils_writer *w, int8_t v)
{
    return mutils_put_u8(w, (uint8_t)v);
}

int mutils_put_i16(struct mutils_writer *w, int16_t v)
{
    return mutils_put_u16(w, (uint16_t)v);
}

int mutils_put_i32(struct mutils_writer *w, int32_t v)
{
    return mutils_put_u32(w, (uint32_t)v);
}

int mutils_put_i64(struct mutils_writer *w, int64_t v)
{
    return mutils_put_u64(w, (uint64_t)v);
}

int mutils_put_bool(struct mutils_writer *w, bool v)
{
    return mutils_put_u8(w, v ? 1 : 0);
}

int mutils_put_f32(struct mutils_writer *w, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return mutils_put_u32(w, bits);
}

int mutils_put_f64(struct mutils_writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    return mutils_put_u64(w, bits);
}

int mutils_put_raw(struct mutils_writer *w, const void *src, size_t n)
{
    if (!w)
        return -EINVAL;
    if (!n || w->err)
        return w->err;
    if (!src)
        return -EINVAL;
    uint8_t *old;
    uint8_t *p = mutils__writer_room(w, n, &old);
    if (!p)
        return w->err;
    memmove(p, src, n); /* src may be bytes of this very writer */
    free(old);
    w->len += n;
    return 0;
}

/* Checks a length against its maximum before anything is written: the
 * error is not sticky because the writer's contents are still whole. */
static int check_len(const struct mutils_writer *w, size_t len, size_t max)
{
    if (!w)
        return -EINVAL;
    if (w->err)
        return w->err;
    if (len > max || len > MUTILS_MAX_LEN)
        return -ERANGE;
    return 0;
}

int mutils_put_bytes(struct mutils_writer *w, const void *src, size_t len,
                     size_t max)
{
    int rc = check_len(w, len, max);
    if (rc)
        return rc;
    if (len && !src)
        return -EINVAL;
    uint8_t *old;
    uint8_t *p = mutils__writer_room(w, 4 + len, &old);
    if (!p)
        return w->err;
    /* The bytes may come from this writer's own buffer: move them before
     * the prefix overwrites any of them. */
    if (len)
        memmove(p + 4, src, len);
    mutils__st32(p, (uint32_t)len);
    free(old);
    w->len += 4 + len;
    return 0;
}

int mutils_put_string_n(struct mutils_writer *w, const char *s, size_t len,
                        size_t max)
{
    /* The length first: a string that is too long is not scanned (len
     * may be more than the caller's bytes). */
    int rc = check_len(w, len, max);
    if (rc)
        return rc;
    if (len && (!s || mutils__has_nul(s, len)))
        return -EINVAL;
    return mutils_put_bytes(w, s, len, max);
}

int mutils_put_string(struct mutils_writer *w, const char *s, size_t max)
{
    if (!w)
        return -EINVAL;
    if (!s)
        return w->err ? w->err : -EINVAL;
    /* Never look further than one byte past the longest allowed. */
    size_t limit = max < MUTILS_MAX_LEN ? max : MUTILS_MAX_LEN;
    size_t scan = limit < SIZE_MAX ? limit + 1 : SIZE_MAX;
    return mutils_put_bytes(w, s, strnlen(s, scan), max);
}

int mutils_put_count(struct mutils_writer *w, size_t count, size_t max)
{
    int rc = check_len(w, count, max);
    if (rc)
        return rc;
    return mutils_put_u32(w, (uint32_t)count);
}

int mutils_put_present(struct mutils_writer *w, bool present)
{
    return mutils_put_u8(w, present ? 1 : 0);
}

size_t mutils_kind_size(enum mutils_kind kind)
{
    return mutils__width(kind);
}

static bool bools_valid(const uint8_t *p, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (p[i] > 1)
            return false;
    return true;
}

int mutils_put_array(struct mutils_writer *w, enum mutils_kind kind,
                     const void *elems, size_t count, size_t max)
{
    size_t size = mutils_kind_size(kind);
    if (!w)
        return -EINVAL;
    if (w->err)
        return w->err;
    if (!size || (count && !elems))
        return -EINVAL;
    int rc = check_len(w, count, max);
    if (rc)
        return rc;
    if (kind == MUTILS_KIND_BOOL && !bools_valid(elems, count))
        return -EINVAL;
    if (count > (SIZE_MAX - 4) / size)
        return -EOVERFLOW;
    uint8_t *old;
    uint8_t *p = mutils__writer_room(w, 4 + count * size, &old);
    if (!p)
        return w->err;
    /* Elements first: they may be bytes of this writer's own buffer. */
    mutils__prims_to_wire(p + 4, elems, count, size);
    mutils__st32(p, (uint32_t)count);
    free(old);
    w->len += 4 + count * size;
    return 0;
}

/* ---- reader ------------------------------------------------------------ */

void mutils_reader_init(struct mutils_reader *r, const void *buf, size_t len)
{
    /* An empty reader still gets a real pointer, so that offset arithmetic
     * on it is always defined. */
    static const uint8_t nothing[1];
    if (!r)
        return;
    r->buf = buf ? buf : nothing;
    r->len = buf ? len : 0;
    r->pos = 0;
    r->err = 0;
    r->err_offset = 0;
}

size_t mutils_reader_offset(const struct mutils_reader *r)
{
    return r ? r->pos : MUTILS_NO_SIZE;
}

size_t mutils_reader_remaining(const struct mutils_reader *r)
{
    return r ? r->len - r->pos : MUTILS_NO_SIZE;
}

int mutils_reader_error(const struct mutils_reader *r, size_t *offset)
{
    if (!r)
        return -EINVAL;
    if (r->err && offset)
        *offset = r->err_offset;
    return r->err;
}

int mutils__reader_fail(struct mutils_reader *r, size_t offset, int err)
{
    if (!r->err) {
        r->err = err;
        r->err_offset = offset;
    }
    return r->err;
}

int mutils_reader_finish(struct mutils_reader *r)
{
    if (!r)
        return -EINVAL;
    if (r->err)
        return r->err;
    if (r->pos != r->len)
        return mutils__reader_fail(r, r->pos, -EBADMSG);
    return 0;
}

/* The checks every get starts with: a reader, no sticky error, somewhere
 * to put the value (a NULL output is -EINVAL and consumes nothing). */
static inline int reader_args(const struct mutils_reader *r, const void *out)
{
    if (MUTILS__UNLIKELY(!r))
        return -EINVAL;
    if (MUTILS__UNLIKELY(r->err))
        return r->err;
    return MUTILS__LIKELY(out != NULL) ? 0 : -EINVAL;
}

/* Returns the next n bytes and consumes them, or NULL with the error set
 * at the current offset. */
static const uint8_t *reader_take(struct mutils_reader *r, size_t n)
{
    if (MUTILS__UNLIKELY(r->err))
        return NULL;
    if (MUTILS__UNLIKELY(r->len - r->pos < n)) {
        mutils__reader_fail(r, r->pos, -EBADMSG);
        return NULL;
    }
    const uint8_t *p = r->buf + r->pos;
    r->pos += n;
    return p;
}

int mutils_get_u8(struct mutils_reader *r, uint8_t *v)
{
    int rc = reader_args(r, v);
    if (rc)
        return rc;
    const uint8_t *p = reader_take(r, 1);
    if (!p)
        return r->err;
    *v = *p;
    return 0;
}

int mutils_get_u16(struct mutils_reader *r, uint16_t *v)
{
    int rc = reader_args(r, v);
    if (rc)
        return rc;
    const uint8_t *p = reader_take(r, 2);
    if (!p)
        return r->err;
    *v = mutils__ld16(p);
    return 0;
}

int mutils_get_u32(struct mutils_reader *r, uint32_t *v)
{
    int rc = reader_args(r, v);
    if (rc)
        return rc;
    const uint8_t *p = reader_take(r, 4);
    if (!p)
        return r->err;
    *v = mutils__ld32(p);
    return 0;
}

int mutils_get_u64(struct mutils_reader *r, uint64_t *v)
{
    int rc = reader_args(r, v);
    if (rc)
        return rc;
    const uint8_t *p = reader_take(r, 8);
    if (!p)
        return r->err;
    *v = mutils__ld64(p);
    return 0;
}

int mutils_get_i8(struct mutils_reader *r, int8_t *v)
{
    uint8_t u;
    int rc = reader_args(r, v);
    if (!rc)
        rc = mutils_get_u8(r, &u);
    if (!rc)
        *v = (int8_t)u;
    return rc;
}

int mutils_get_i16(struct mutils_reader *r, int16_t *v)
{
    uint16_t u;
    int rc = reader_args(r, v);
    if (!rc)
        rc = mutils_get_u16(r, &u);
    if (!rc)
        *v = (int16_t)u;
    return rc;
}

int mutils_get_i32(struct mutils_reader *r, int32_t *v)
{
    uint32_t u;
    int rc = reader_args(r, v);
    if (!rc)
        rc = mutils_get_u32(r, &u);
    if (!rc)
        *v = (int32_t)u;
    return rc;
}

int mutils_get_i64(struct mutils_reader *r, int64_t *v)
{
    uint64_t u;
    int rc = reader_args(r, v);
    if (!rc)
        rc = mutils_get_u64(r, &u);
    if (!rc)
        *v = (int64_t)u;
    return rc;
}

int mutils_get_bool(struct mutils_reader *r, bool *v)
{
    int rc = reader_args(r, v);
    if (rc)
        return rc;
    if (r->pos < r->len && r->buf[r->pos] > 1)
        return mutils__reader_fail(r, r->pos, -EBADMSG);
    uint8_t u;
    rc = mutils_get_u8(r, &u);
    if (!rc)
        *v = u != 0;
    return rc;
}

int mutils_get_present(struct mutils_reader *r, bool *present)
{
    return mutils_get_bool(r, present);
}

int mutils_get_f32(struct mutils_reader *r, float *v)
{
    uint32_t u;
    int rc = reader_args(r, v);
    if (!rc)
        rc = mutils_get_u32(r, &u);
    if (!rc)
        memcpy(v, &u, 4);
    return rc;
}

int mutils_get_f64(struct mutils_reader *r, double *v)
{
    uint64_t u;
    int rc = reader_args(r, v);
    if (!rc)
        rc = mutils_get_u64(r, &u);
    if (!rc)
        memcpy(v, &u, 8);
    return rc;
}

int mutils_get_raw(struct mutils_reader *r, void *dst, size_t n)
{
    int rc = reader_args(r, n ? dst : r);
    if (rc)
        return rc;
    const uint8_t *p = reader_take(r, n);
    if (!p)
        return r->err;
    if (n)
        memmove(dst, p, n); /* dst may be the reader's own buffer */
    return 0;
}

int mutils_get_raw_view(struct mutils_reader *r, const void **out, size_t n)
{
    int rc = reader_args(r, out);
    if (rc)
        return rc;
    const uint8_t *p = reader_take(r, n);
    if (!p)
        return r->err;
    *out = p;
    return 0;
}

/* Peeks a u32 length prefix and checks that it is within max and that
 * len * elem_size bytes follow it; consumes nothing.  On failure records
 * -EBADMSG at the prefix's offset. */
static int peek_len(struct mutils_reader *r, size_t max, size_t elem_size,
                    size_t *len)
{
    size_t start = r->pos;
    if (r->len - r->pos < 4)
        return mutils__reader_fail(r, start, -EBADMSG);
    size_t n = mutils__ld32(r->buf + r->pos);
    size_t left = r->len - r->pos - 4;
    size_t need;
    if (n > max || __builtin_mul_overflow(n, elem_size, &need) || need > left)
        return mutils__reader_fail(r, start, -EBADMSG);
    *len = n;
    return 0;
}

int mutils_get_bytes_view(struct mutils_reader *r, const void **p, size_t *len,
                          size_t max)
{
    size_t n;
    int rc = reader_args(r, p && len ? p : NULL);
    if (!rc)
        rc = peek_len(r, max, 1, &n);
    if (rc)
        return rc;
    *p = r->buf + r->pos + 4;
    *len = n;
    r->pos += 4 + n;
    return 0;
}

int mutils_get_bytes(struct mutils_reader *r, void *dst, size_t cap,
                     size_t *len, size_t max)
{
    size_t n;
    int rc = reader_args(r, len && (dst || !cap) ? len : NULL);
    if (!rc)
        rc = peek_len(r, max, 1, &n);
    if (rc)
        return rc;
    if (n > cap)
        return -ERANGE;
    if (n)
        memmove(dst, r->buf + r->pos + 4, n);
    *len = n;
    r->pos += 4 + n;
    return 0;
}

int mutils_get_string_view(struct mutils_reader *r, const char **s, size_t *len,
                           size_t max)
{
    size_t n;
    int rc = reader_args(r, s && len ? s : NULL);
    if (!rc)
        rc = peek_len(r, max, 1, &n);
    if (rc)
        return rc;
    const char *p = (const char *)r->buf + r->pos + 4;
    if (mutils__has_nul(p, n))
        return mutils__reader_fail(r, r->pos, -EBADMSG);
    *s = p;
    *len = n;
    r->pos += 4 + n;
    return 0;
}

int mutils_get_string(struct mutils_reader *r, char *dst, size_t cap,
                      size_t *len, size_t max)
{
    size_t n;
    int rc = reader_args(r, dst || !cap ? r : NULL);
    if (!rc)
        rc = peek_len(r, max, 1, &n);
    if (rc)
        return rc;
    const char *p = (const char *)r->buf + r->pos + 4;
    if (mutils__has_nul(p, n))
        return mutils__reader_fail(r, r->pos, -EBADMSG);
    if (n >= cap)
        return -ERANGE;
    memmove(dst, p, n); /* dst may be the reader's own buffer */
    dst[n] = 0;
    if (len)
        *len = n;
    r->pos += 4 + n;
    return 0;
}

int mutils_get_count(struct mutils_reader *r, size_t *count, size_t max)
{
    int rc = reader_args(r, count);
    if (rc)
        return rc;
    size_t start = r->pos;
    uint32_t n;
    rc = mutils_get_u32(r, &n);
    if (rc)
        return rc;
    if (n > max) {
        r->pos = start;
        return mutils__reader_fail(r, start, -EBADMSG);
    }
    *count = n;
    return 0;
}

int mutils_get_array(struct mutils_reader *r, enum mutils_kind kind,
                     void *elems, size_t cap, size_t *count, size_t max)
{
    size_t size = mutils_kind_size(kind);
    int rc = reader_args(r, count && (elems || !cap) ? count : NULL);
    if (rc)
        return rc;
    if (!size)
        return -EINVAL;
    size_t n;
    rc = peek_len(r, max, size, &n);
    if (rc)
        return rc;
    const uint8_t *p = r->buf + r->pos + 4;
    if (kind == MUTILS_KIND_BOOL && !bools_valid(p, n)) {
        size_t at = 0;
        while (p[at] <= 1)
            at++;
        return mutils__reader_fail(r, r->pos + 4 + at, -EBADMSG);
    }
    if (n > cap)
        return -ERANGE;
    mutils__prims_from_wire(elems, p, n, size);
    *count = n;
    r->pos += 4 + n * size;
    return 0;
}
