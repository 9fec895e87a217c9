/* The descriptor engine: size, write, read (copy and view), free, equal.
 *
 * One recursive walk per operation over (descriptor, C value).  The write
 * is two passes: mutils_size() checks every limit and computes the exact
 * length, then the writer reserves it once and the second pass stores
 * bytes without any further check, so a failed write leaves nothing
 * behind.  A read either builds the whole value or frees what it built:
 * each level undoes its own allocations when a later part fails. */
#include "mutils-private.h"

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>

#define PRIM(name, k) const struct mutils_type mutils_type_##name = {.kind = k}
PRIM(u8, MUTILS_KIND_U8);
PRIM(u16, MUTILS_KIND_U16);
PRIM(u32, MUTILS_KIND_U32);
PRIM(u64, MUTILS_KIND_U64);
PRIM(i8, MUTILS_KIND_I8);
PRIM(i16, MUTILS_KIND_I16);
PRIM(i32, MUTILS_KIND_I32);
PRIM(i64, MUTILS_KIND_I64);
PRIM(bool, MUTILS_KIND_BOOL);
PRIM(f32, MUTILS_KIND_F32);
PRIM(f64, MUTILS_KIND_F64);

size_t mutils__c_size(const struct mutils_type *t)
{
    switch (t->kind) {
    case MUTILS_KIND_STRING:
        return sizeof(struct mutils_str);
    case MUTILS_KIND_BYTES:
        return sizeof(struct mutils_bytes);
    case MUTILS_KIND_STRBUF:
        return t->max;
    case MUTILS_KIND_ARRAY:
        return sizeof(struct mutils_array);
    case MUTILS_KIND_FIXED:
        return mutils__c_size(t->elem) * t->max;
    case MUTILS_KIND_OPTIONAL:
        return sizeof(void *);
    case MUTILS_KIND_MAP:
        return sizeof(struct mutils_map);
    case MUTILS_KIND_STRUCT:
        return t->c_size;
    case MUTILS_KIND_ARGS:
        return 0;
    default:
        return mutils__width(t->kind);
    }
}

size_t mutils_type_c_size(const struct mutils_type *t)
{
    return t ? mutils__c_size(t) : MUTILS_NO_SIZE;
}

static size_t c_align(const struct mutils_type *t)
{
    switch (t->kind) {
    case MUTILS_KIND_STRING:
        return alignof(struct mutils_str);
    case MUTILS_KIND_BYTES:
        return alignof(struct mutils_bytes);
    case MUTILS_KIND_STRBUF:
        return 1;
    case MUTILS_KIND_ARRAY:
        return alignof(struct mutils_array);
    case MUTILS_KIND_FIXED:
        return c_align(t->elem);
    case MUTILS_KIND_OPTIONAL:
        return alignof(void *);
    case MUTILS_KIND_MAP:
        return alignof(struct mutils_map);
    case MUTILS_KIND_STRUCT:
        return t->c_align ? t->c_align : alignof(max_align_t);
    default: {
        size_t s = mutils__width(t->kind);
        return s ? s : 1;
    }
    }
}

/* Smallest encoding of a value of t, saturating at SIZE_MAX; bounds how
 * many elements a count prefix can honestly announce. */
static size_t min_wire(const struct mutils_type *t, int depth)
{
    if (depth > MUTILS_MAX_DEPTH)
        return SIZE_MAX;
    switch (t->kind) {
    case MUTILS_KIND_STRING:
    case MUTILS_KIND_BYTES:
    case MUTILS_KIND_STRBUF:
    case MUTILS_KIND_ARRAY:
    case MUTILS_KIND_MAP:
        return 4;
    case MUTILS_KIND_OPTIONAL:
        return 1;
    case MUTILS_KIND_FIXED: {
        size_t e = min_wire(t->elem, depth + 1);
        if (e && t->max > SIZE_MAX / e)
            return SIZE_MAX;
        return e * t->max;
    }
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS: {
        size_t sum = 0;
        for (size_t i = 0; i < t->num_fields; i++) {
            size_t f = min_wire(t->fields[i].type, depth + 1);
            if (f > SIZE_MAX - sum)
                return SIZE_MAX;
            sum += f;
        }
        return sum;
    }
    default:
        return mutils__width(t->kind);
    }
}

/* True when values of t take no bytes on the wire (an empty struct, a
 * fixed array of none): they also own nothing and all compare equal.  A
 * count of them costs no input, so a hostile count prefix may announce
 * four billion: the loops over elements skip them. */
static bool wireless_at(const struct mutils_type *t, int depth)
{
    if (depth > MUTILS_MAX_DEPTH)
        return false;
    switch (t->kind) {
    case MUTILS_KIND_FIXED:
        return !t->max || wireless_at(t->elem, depth + 1);
    case MUTILS_KIND_STRUCT:
        for (size_t i = 0; i < t->num_fields; i++)
            if (!wireless_at(t->fields[i].type, depth + 1))
                return false;
        return true;
    default:
        return false; /* at least a byte, a presence byte or a prefix */
    }
}

static inline bool wireless(const struct mutils_type *t)
{
    return wireless_at(t, 0);
}

/* count * unit <= room, without a division (this is on every hot path). */
static inline bool fits(size_t count, size_t unit, size_t room)
{
    size_t need;
    return !__builtin_mul_overflow(count, unit, &need) && need <= room;
}

static inline bool is_prim(const struct mutils_type *t)
{
    return t->kind >= MUTILS_KIND_U8 && t->kind <= MUTILS_KIND_F64;
}

/* Address of field i of a struct value, or argument i of a pack. */
static inline const void *field_ptr(const struct mutils_type *t, const void *v,
                                    size_t i)
{
    if (t->kind == MUTILS_KIND_ARGS)
        return ((const void *const *)v)[i];
    return (const char *)v + t->fields[i].offset;
}

static inline void *field_ptr_mut(const struct mutils_type *t, void *v,
                                  size_t i)
{
    if (t->kind == MUTILS_KIND_ARGS)
        return ((void *const *)v)[i];
    return (char *)v + t->fields[i].offset;
}

/* The arguments every entry point checks before it walks anything: a
 * descriptor, a value, and for a struct or pack its fields (for a pack,
 * every argument pointer).  Deeper levels are trusted like the
 * descriptors themselves (see mutils_type_check()). */
static inline int check_top(const struct mutils_type *t, const void *v)
{
    if (MUTILS__UNLIKELY(!t || !v))
        return -EINVAL;
    if (t->kind == MUTILS_KIND_STRUCT || t->kind == MUTILS_KIND_ARGS) {
        if (MUTILS__UNLIKELY(t->num_fields && !t->fields))
            return -EINVAL;
        if (t->kind == MUTILS_KIND_ARGS)
            for (size_t i = 0; i < t->num_fields; i++)
                if (MUTILS__UNLIKELY(!((const void *const *)v)[i]))
                    return -EINVAL;
    }
    return 0;
}

static void zero_value(const struct mutils_type *t, void *v)
{
    if (t->kind == MUTILS_KIND_ARGS) {
        for (size_t i = 0; i < t->num_fields; i++) {
            void *arg = field_ptr_mut(t, v, i);
            if (arg)
                memset(arg, 0, mutils__c_size(t->fields[i].type));
        }
    } else {
        memset(v, 0, mutils__c_size(t));
    }
}

/* ---- size ---------------------------------------------------------------- */

static inline int add_size(size_t *acc, size_t n)
{
    if (MUTILS__UNLIKELY(n > SIZE_MAX - *acc))
        return -EOVERFLOW;
    *acc += n;
    return 0;
}

static int size_value(const struct mutils_type *t, const void *v, int depth,
                      size_t *acc);

/* The common leaves of a struct (text, bytes, fixed arrays of primitives)
 * without a call; anything else through size_value(). */
static inline __attribute__((always_inline)) int
size_field(const struct mutils_type *ft, const void *fv, int depth, size_t *acc)
{
    switch (ft->kind) {
    case MUTILS_KIND_STRING: {
        const struct mutils_str *s = fv;
        if (MUTILS__UNLIKELY(s->len > ft->max || s->len > MUTILS_MAX_LEN))
            return -ERANGE;
        if (s->len && (!s->ptr || mutils__has_nul(s->ptr, s->len)))
            return -EINVAL;
        return add_size(acc, 4 + s->len);
    }
    case MUTILS_KIND_FIXED: {
        size_t w = mutils__width(ft->elem->kind);
        if (w && ft->elem->kind != MUTILS_KIND_BOOL)
            return add_size(acc, w * ft->max);
        break;
    }
    default:
        break;
    }
    return size_value(ft, fv, depth, acc);
}

static bool bools_valid(const void *p, size_t count)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < count; i++)
        if (b[i] > 1)
            return false;
    return true;
}

static int size_seq(const struct mutils_type *e, const void *items,
                    size_t count, int depth, size_t *acc)
{
    size_t w = mutils__width(e->kind);
    if (w) {
        if (e->kind == MUTILS_KIND_BOOL && !bools_valid(items, count))
            return -EINVAL;
        if (count > SIZE_MAX / w)
            return -EOVERFLOW;
        return add_size(acc, count * w);
    }
    if (wireless(e))
        return 0;
    size_t cs = mutils__c_size(e);
    for (size_t i = 0; i < count; i++) {
        int rc = size_value(e, (const char *)items + i * cs, depth, acc);
        if (rc)
            return rc;
    }
    return 0;
}

static int size_value(const struct mutils_type *t, const void *v, int depth,
                      size_t *acc)
{
    switch (t->kind) {
    case MUTILS_KIND_U8:
    case MUTILS_KIND_I8:
        return add_size(acc, 1);
    case MUTILS_KIND_BOOL:
        if (*(const uint8_t *)v > 1)
            return -EINVAL;
        return add_size(acc, 1);
    case MUTILS_KIND_U16:
    case MUTILS_KIND_I16:
        return add_size(acc, 2);
    case MUTILS_KIND_U32:
    case MUTILS_KIND_I32:
    case MUTILS_KIND_F32:
        return add_size(acc, 4);
    case MUTILS_KIND_U64:
    case MUTILS_KIND_I64:
    case MUTILS_KIND_F64:
        return add_size(acc, 8);
    case MUTILS_KIND_STRING: {
        const struct mutils_str *s = v;
        if (s->len > t->max || s->len > MUTILS_MAX_LEN)
            return -ERANGE;
        if (s->len && (!s->ptr || mutils__has_nul(s->ptr, s->len)))
            return -EINVAL;
        return add_size(acc, 4 + s->len);
    }
    case MUTILS_KIND_BYTES: {
        const struct mutils_bytes *b = v;
        if (b->len > t->max || b->len > MUTILS_MAX_LEN)
            return -ERANGE;
        if (b->len && !b->ptr)
            return -EINVAL;
        return add_size(acc, 4 + b->len);
    }
    case MUTILS_KIND_STRBUF: {
        size_t len = strnlen(v, t->max);
        if (len >= t->max)
            return -EINVAL;
        return add_size(acc, 4 + len);
    }
    default:
        break;
    }
    if (depth >= MUTILS_MAX_DEPTH)
        return -ELOOP;
    switch (t->kind) {
    case MUTILS_KIND_ARRAY: {
        const struct mutils_array *a = v;
        if (a->count > t->max || a->count > MUTILS_MAX_LEN)
            return -ERANGE;
        if (a->count && !a->items)
            return -EINVAL;
        int rc = add_size(acc, 4);
        if (rc)
            return rc;
        return size_seq(t->elem, a->items, a->count, depth + 1, acc);
    }
    case MUTILS_KIND_FIXED:
        return size_seq(t->elem, v, t->max, depth + 1, acc);
    case MUTILS_KIND_OPTIONAL: {
        const void *p = *(const void *const *)v;
        int rc = add_size(acc, 1);
        if (rc || !p)
            return rc;
        return size_value(t->elem, p, depth + 1, acc);
    }
    case MUTILS_KIND_MAP: {
        const struct mutils_map *m = v;
        if (m->count > t->max || m->count > MUTILS_MAX_LEN)
            return -ERANGE;
        if (m->count && (!m->keys || !m->values))
            return -EINVAL;
        int rc = add_size(acc, 4);
        if (wireless(t->elem) && wireless(t->value))
            return rc;
        size_t ks = mutils__c_size(t->elem), vs = mutils__c_size(t->value);
        for (size_t i = 0; !rc && i < m->count; i++) {
            rc = size_value(t->elem, (const char *)m->keys + i * ks, depth + 1,
                            acc);
            if (!rc)
                rc = size_value(t->value, (const char *)m->values + i * vs,
                                depth + 1, acc);
        }
        return rc;
    }
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS: {
        /* Primitive fields are summed here, without a call each: this loop
         * is the hot path of small messages. */
        size_t prims = 0;
        for (size_t i = 0; i < t->num_fields; i++) {
            const struct mutils_type *ft = t->fields[i].type;
            const void *fv = field_ptr(t, v, i);
            size_t w = mutils__width(ft->kind);
            if (MUTILS__LIKELY(w)) {
                if (ft->kind == MUTILS_KIND_BOOL && *(const uint8_t *)fv > 1)
                    return -EINVAL;
                prims += w;
                continue;
            }
            int rc = size_field(ft, fv, depth + 1, acc);
            if (rc)
                return rc;
        }
        return add_size(acc, prims);
    }
    default:
        return -EINVAL;
    }
}

static inline int size_top(const struct mutils_type *t, const void *value,
                           size_t *size)
{
    size_t acc = 0;
    int rc = size_value(t, value, 0, &acc);
    if (rc)
        return rc;
    *size = acc;
    return 0;
}

int mutils_size(const struct mutils_type *t, const void *value, size_t *size)
{
    int rc = check_top(t, value);
    if (rc)
        return rc;
    return size ? size_top(t, value, size) : -EINVAL;
}

/* ---- write ----------------------------------------------------------- */

/* One checked pass: every limit is checked and every store is bounded by
 * end as the bytes are written, so a small message costs one walk, not a
 * size walk and a store walk.  On failure the function returns NULL with
 * *err set; the caller then leaves its length where it was. */
struct wctx {
    uint8_t *end;
    int err;
};

static uint8_t *write_value(const struct mutils_type *t, const void *v,
                            uint8_t *p, struct wctx *w, int depth);

static inline uint8_t *wfail(struct wctx *w, int err)
{
    w->err = err;
    return NULL;
}

static uint8_t *write_seq(const struct mutils_type *e, const void *items,
                          size_t count, uint8_t *p, struct wctx *w, int depth)
{
    size_t ew = mutils__width(e->kind);
    if (ew) {
        if (e->kind == MUTILS_KIND_BOOL && !bools_valid(items, count))
            return wfail(w, -EINVAL);
        if (!fits(count, ew, (size_t)(w->end - p)))
            return wfail(w, -ENOSPC);
        mutils__prims_to_wire(p, items, count, ew);
        return p + count * ew;
    }
    if (wireless(e))
        return p;
    size_t cs = mutils__c_size(e);
    for (size_t i = 0; i < count && p; i++)
        p = write_value(e, (const char *)items + i * cs, p, w, depth);
    return p;
}

/* A length-prefixed run of len bytes from src. */
static inline uint8_t *write_counted(const void *src, size_t len, size_t max,
                                     uint8_t *p, struct wctx *w)
{
    if (MUTILS__UNLIKELY(len > max || len > MUTILS_MAX_LEN))
        return wfail(w, -ERANGE);
    if (MUTILS__UNLIKELY(len && !src))
        return wfail(w, -EINVAL);
    if (MUTILS__UNLIKELY((size_t)(w->end - p) < 4 ||
                         len > (size_t)(w->end - p) - 4))
        return wfail(w, -ENOSPC);
    /* The bytes first, moved: a value re-encoded into the writer it was
     * viewed from may overlap where it goes, prefix included. */
    if (len)
        memmove(p + 4, src, len);
    mutils__st32(p, (uint32_t)len);
    return p + 4 + len;
}

/* A primitive of width pw (a bool must be 0 or 1). */
static inline uint8_t *write_prim(enum mutils_kind kind, const void *v,
                                  size_t pw, uint8_t *p, struct wctx *w)
{
    if (kind == MUTILS_KIND_BOOL && *(const uint8_t *)v > 1)
        return wfail(w, -EINVAL);
    if ((size_t)(w->end - p) < pw)
        return wfail(w, -ENOSPC);
    mutils__store_prim(p, v, pw);
    return p + pw;
}

static uint8_t *write_string(const struct mutils_type *t,
                             const struct mutils_str *s, uint8_t *p,
                             struct wctx *w)
{
    if (s->len > t->max || s->len > MUTILS_MAX_LEN)
        return wfail(w, -ERANGE); /* before scanning len bytes */
    if (s->len && s->ptr && mutils__has_nul(s->ptr, s->len))
        return wfail(w, -EINVAL);
    return write_counted(s->ptr, s->len, t->max, p, w);
}

static uint8_t *write_strbuf(const struct mutils_type *t, const char *v,
                             uint8_t *p, struct wctx *w)
{
    size_t len = strnlen(v, t->max);
    if (len >= t->max)
        return wfail(w, -EINVAL);
    return write_counted(v, len, t->max - 1, p, w);
}

static uint8_t *write_array(const struct mutils_type *t,
                            const struct mutils_array *a, uint8_t *p,
                            struct wctx *w, int depth)
{
    if (a->count > t->max || a->count > MUTILS_MAX_LEN)
        return wfail(w, -ERANGE);
    if (a->count && !a->items)
        return wfail(w, -EINVAL);
    if ((size_t)(w->end - p) < 4)
        return wfail(w, -ENOSPC);
    mutils__st32(p, (uint32_t)a->count);
    return write_seq(t->elem, a->items, a->count, p + 4, w, depth);
}

static uint8_t *write_optional(const struct mutils_type *t,
                               const void *const *v, uint8_t *p, struct wctx *w,
                               int depth)
{
    const void *e = *v;
    if (p == w->end)
        return wfail(w, -ENOSPC);
    *p++ = e ? 1 : 0;
    return e ? write_value(t->elem, e, p, w, depth) : p;
}

static uint8_t *write_map(const struct mutils_type *t,
                          const struct mutils_map *m, uint8_t *p,
                          struct wctx *w, int depth)
{
    if (m->count > t->max || m->count > MUTILS_MAX_LEN)
        return wfail(w, -ERANGE);
    if (m->count && (!m->keys || !m->values))
        return wfail(w, -EINVAL);
    if ((size_t)(w->end - p) < 4)
        return wfail(w, -ENOSPC);
    mutils__st32(p, (uint32_t)m->count);
    p += 4;
    if (wireless(t->elem) && wireless(t->value))
        return p;
    size_t ks = mutils__c_size(t->elem), vs = mutils__c_size(t->value);
    for (size_t i = 0; i < m->count && p; i++) {
        p = write_value(t->elem, (const char *)m->keys + i * ks, p, w, depth);
        if (p)
            p = write_value(t->value, (const char *)m->values + i * vs, p, w,
                            depth);
    }
    return p;
}

/* The fields in order; primitive fields, text strings and fixed arrays of
 * primitives inline (the small-message hot path). */
static uint8_t *write_struct(const struct mutils_type *t, const void *v,
                             uint8_t *p, struct wctx *w, int depth)
{
    for (size_t i = 0; i < t->num_fields; i++) {
        const struct mutils_type *ft = t->fields[i].type;
        const void *fv = field_ptr(t, v, i);
        enum mutils_kind kind = ft->kind;
        size_t fw = mutils__width(kind);
        if (MUTILS__LIKELY(fw)) {
            /* Primitive fields inline: the small-message hot path. */
            if (MUTILS__UNLIKELY((size_t)(w->end - p) < fw))
                return wfail(w, -ENOSPC);
            if (MUTILS__UNLIKELY(kind == MUTILS_KIND_BOOL &&
                                 *(const uint8_t *)fv > 1))
                return wfail(w, -EINVAL);
            mutils__store_prim(p, fv, fw);
            p += fw;
            continue;
        }
        if (kind == MUTILS_KIND_STRING) {
            const struct mutils_str *s = fv;
            if (MUTILS__UNLIKELY(s->len > ft->max || s->len > MUTILS_MAX_LEN))
                return wfail(w, -ERANGE); /* before scanning len bytes */
            if (s->len && s->ptr && mutils__has_nul(s->ptr, s->len))
                return wfail(w, -EINVAL);
            p = write_counted(s->ptr, s->len, ft->max, p, w);
            if (MUTILS__UNLIKELY(!p))
                return NULL;
            continue;
        }
        if (kind == MUTILS_KIND_FIXED) {
            const struct mutils_type *e = ft->elem;
            size_t ew = mutils__width(e->kind);
            if (ew && e->kind != MUTILS_KIND_BOOL) {
                if (!fits(ft->max, ew, (size_t)(w->end - p)))
                    return wfail(w, -ENOSPC);
                mutils__prims_to_wire(p, fv, ft->max, ew);
                p += ft->max * ew;
                continue;
            }
        }
        p = write_value(ft, fv, p, w, depth);
        if (MUTILS__UNLIKELY(!p))
            return NULL;
    }
    return p;
}

static uint8_t *write_value(const struct mutils_type *t, const void *v,
                            uint8_t *p, struct wctx *w, int depth)
{
    switch (t->kind) {
    case MUTILS_KIND_STRING:
        return write_string(t, v, p, w);
    case MUTILS_KIND_BYTES: {
        const struct mutils_bytes *b = v;
        return write_counted(b->ptr, b->len, t->max, p, w);
    }
    case MUTILS_KIND_STRBUF:
        return write_strbuf(t, v, p, w);
    default:
        break;
    }
    size_t pw = mutils__width(t->kind);
    if (pw)
        return write_prim(t->kind, v, pw, p, w);
    if (depth >= MUTILS_MAX_DEPTH)
        return wfail(w, -ELOOP);
    switch (t->kind) {
    case MUTILS_KIND_ARRAY:
        return write_array(t, v, p, w, depth + 1);
    case MUTILS_KIND_FIXED:
        return write_seq(t->elem, v, t->max, p, w, depth + 1);
    case MUTILS_KIND_OPTIONAL:
        return write_optional(t, v, p, w, depth + 1);
    case MUTILS_KIND_MAP:
        return write_map(t, v, p, w, depth + 1);
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS:
        return write_struct(t, v, p, w, depth + 1);
    default:
        return wfail(w, -EINVAL);
    }
}

int mutils_write(struct mutils_writer *w, const struct mutils_type *t,
                 const void *value)
{
    if (!w)
        return -EINVAL;
    if (w->err)
        return w->err;
    int rc = check_top(t, value);
    if (rc)
        return rc;
    struct wctx c = {NULL, -ENOSPC};
    uint8_t *end = NULL;
    if (w->buf) {
        c.end = w->buf + w->cap;
        c.err = 0;
        end = write_value(t, value, w->buf + w->len, &c, 0);
    }
    if (MUTILS__LIKELY(end)) {
        w->len = (size_t)(end - w->buf);
        return 0;
    }
    if (c.err != -ENOSPC)
        return c.err;
    /* Did not fit: get the exact size (or the real error), then grow (or
     * fail with a sticky -ENOSPC) and write again, which now fits. */
    size_t n;
    rc = size_top(t, value, &n);
    if (rc || !n)
        return rc;
    /* The value may point into this writer's buffer (a view read from
     * it): keep the old block until the value is written. */
    uint8_t *old;
    if (!mutils__writer_room(w, n, &old))
        return w->err;
    c.end = w->buf + w->cap;
    c.err = 0;
    end = write_value(t, value, w->buf + w->len, &c, 0);
    free(old);
    if (!end)
        return c.err;
    w->len = (size_t)(end - w->buf);
    return 0;
}

int mutils_encode(const struct mutils_type *t, const void *value, void *buf,
                  size_t cap, size_t *len)
{
    int rc = check_top(t, value);
    if (rc)
        return rc;
    if (!len || (!buf && cap))
        return -EINVAL;
    if (!buf) {
        /* Nothing fits in no memory, except an empty encoding. */
        size_t n;
        rc = size_top(t, value, &n);
        if (rc)
            return rc;
        if (n)
            return -ENOSPC;
        *len = 0;
        return 0;
    }
    struct wctx c = {(uint8_t *)buf + cap, 0};
    uint8_t *end = write_value(t, value, buf, &c, 0);
    if (MUTILS__UNLIKELY(!end)) {
        if (c.err == -ENOSPC) {
            /* Report a length or content error before a space one. */
            size_t n;
            rc = size_top(t, value, &n);
            if (rc)
                return rc;
        }
        return c.err;
    }
    *len = (size_t)(end - (uint8_t *)buf);
    return 0;
}

/* Bytes allocated for n values of C size cs: never 0, so that elements of
 * an empty struct or a zero-length fixed array still get a real pointer
 * (the same figure is passed back to the allocator's free). */
static inline size_t alloc_size(size_t n, size_t cs)
{
    size_t size = n * cs;
    return size ? size : 1;
}

/* ---- free ------------------------------------------------------------- */

/* What to release with, and the source buffer of a view read whose
 * pointers must be left alone ([lo, hi], end included for empty values). */
struct fctx {
    const struct mutils_alloc *a;
    const uint8_t *lo, *hi;
};

static void release(const struct fctx *f, const void *p, size_t size)
{
    if (!p)
        return;
    const uint8_t *b = p;
    if (f->lo && b >= f->lo && b <= f->hi)
        return;
    if (!f->a)
        free((void *)b);
    else if (f->a->free)
        f->a->free(f->a->ctx, (void *)b, size);
}

static void free_value(const struct mutils_type *t, void *v,
                       const struct fctx *f);

static void free_seq(const struct mutils_type *e, void *items, size_t count,
                     const struct fctx *f)
{
    if (is_prim(e) || e->kind == MUTILS_KIND_STRBUF || wireless(e))
        return;
    size_t cs = mutils__c_size(e);
    for (size_t i = 0; i < count; i++)
        free_value(e, (char *)items + i * cs, f);
}

static void free_value(const struct mutils_type *t, void *v,
                       const struct fctx *f)
{
    switch (t->kind) {
    case MUTILS_KIND_STRING: {
        struct mutils_str *s = v;
        release(f, s->ptr, s->len + 1);
        break;
    }
    case MUTILS_KIND_BYTES: {
        struct mutils_bytes *b = v;
        release(f, b->ptr, b->len);
        break;
    }
    case MUTILS_KIND_ARRAY: {
        struct mutils_array *a = v;
        if (!a->items)
            break;
        free_seq(t->elem, a->items, a->count, f);
        release(f, a->items, alloc_size(a->count, mutils__c_size(t->elem)));
        break;
    }
    case MUTILS_KIND_FIXED:
        free_seq(t->elem, v, t->max, f);
        break;
    case MUTILS_KIND_OPTIONAL: {
        void *p = *(void **)v;
        if (p) {
            free_value(t->elem, p, f);
            release(f, p, alloc_size(1, mutils__c_size(t->elem)));
        }
        break;
    }
    case MUTILS_KIND_MAP: {
        struct mutils_map *m = v;
        if (m->keys) {
            free_seq(t->elem, m->keys, m->count, f);
            release(f, m->keys, alloc_size(m->count, mutils__c_size(t->elem)));
        }
        if (m->values) {
            free_seq(t->value, m->values, m->count, f);
            release(f, m->values,
                    alloc_size(m->count, mutils__c_size(t->value)));
        }
        break;
    }
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS:
        if (t->num_fields && !t->fields)
            break;
        for (size_t i = 0; i < t->num_fields; i++) {
            void *fv = field_ptr_mut(t, v, i);
            if (fv) /* a pack may miss an argument */
                free_value(t->fields[i].type, fv, f);
        }
        break;
    default:
        break;
    }
}

void mutils_free(const struct mutils_type *t, void *value,
                 const struct mutils_alloc *alloc)
{
    if (!t || !value)
        return;
    struct fctx f = {alloc, NULL, NULL};
    free_value(t, value, &f);
    zero_value(t, value);
}

void mutils_free_view(const struct mutils_type *t, void *value,
                      const struct mutils_alloc *alloc, const void *buf,
                      size_t len)
{
    if (!t || !value)
        return;
    struct fctx f = {alloc, buf, buf ? (const uint8_t *)buf + len : NULL};
    free_value(t, value, &f);
    zero_value(t, value);
}

/* ---- read ------------------------------------------------------------- */

struct rctx {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    size_t err_off;
    bool view;
    struct fctx f; /* how to undo this read's allocations */
};

static inline int bad(struct rctx *c, size_t off)
{
    c->err_off = off;
    return -EBADMSG;
}

static inline void *rc_alloc(struct rctx *c, size_t size, size_t align)
{
    const struct mutils_alloc *a = c->f.a;
    return a ? a->alloc(a->ctx, size, align) : malloc(size);
}

/* Reads a u32 count at pos, checks count <= max and that count values of
 * at least unit bytes each fit in what is left; consumes the prefix. */
static int take_count(struct rctx *c, size_t max, size_t unit, size_t *out)
{
    if (c->len - c->pos < 4)
        return bad(c, c->pos);
    size_t n = mutils__ld32(c->buf + c->pos);
    size_t left = c->len - c->pos - 4;
    if (n > max || !fits(n, unit, left))
        return bad(c, c->pos);
    c->pos += 4;
    *out = n;
    return 0;
}

static int read_value(struct rctx *c, const struct mutils_type *t, void *out,
                      int depth);

/* Common struct leaves without a call: a text string read as a view and a
 * fixed array of primitives; anything else through read_value(). */
static inline __attribute__((always_inline)) int
read_field(struct rctx *c, const struct mutils_type *ft, void *fv, int depth)
{
    if (ft->kind == MUTILS_KIND_STRING && c->view) {
        size_t start = c->pos, n;
        int rc = take_count(c, ft->max, 1, &n);
        if (MUTILS__UNLIKELY(rc))
            return rc;
        const char *src = (const char *)c->buf + c->pos;
        if (MUTILS__UNLIKELY(mutils__has_nul(src, n)))
            return bad(c, start);
        ((struct mutils_str *)fv)->ptr = src;
        ((struct mutils_str *)fv)->len = n;
        c->pos += n;
        return 0;
    }
    if (ft->kind == MUTILS_KIND_FIXED) {
        const struct mutils_type *e = ft->elem;
        size_t w = mutils__width(e->kind);
        if (w && e->kind != MUTILS_KIND_BOOL) {
            if (MUTILS__UNLIKELY(!fits(ft->max, w, c->len - c->pos)))
                return bad(c, c->pos);
            mutils__prims_from_wire(fv, c->buf + c->pos, ft->max, w);
            c->pos += ft->max * w;
            return 0;
        }
    }
    return read_value(c, ft, fv, depth);
}

/* Reads count elements of e into items; on failure frees those read. */
static int read_seq(struct rctx *c, const struct mutils_type *e, void *items,
                    size_t count, int depth)
{
    size_t w = mutils__width(e->kind);
    if (w) {
        if (!fits(count, w, c->len - c->pos))
            return bad(c, c->pos);
        const uint8_t *src = c->buf + c->pos;
        if (e->kind == MUTILS_KIND_BOOL)
            for (size_t i = 0; i < count; i++)
                if (src[i] > 1)
                    return bad(c, c->pos + i);
        mutils__prims_from_wire(items, src, count, w);
        c->pos += count * w;
        return 0;
    }
    size_t cs = mutils__c_size(e);
    for (size_t i = 0; i < count; i++) {
        int rc = read_value(c, e, (char *)items + i * cs, depth);
        if (rc) {
            free_seq(e, items, i, &c->f);
            return rc;
        }
    }
    return 0;
}

static int read_array(struct rctx *c, const struct mutils_type *t,
                      struct mutils_array *out, int depth)
{
    const struct mutils_type *e = t->elem;
    size_t start = c->pos, n;
    size_t w = mutils__width(e->kind);
    size_t unit = w ? w : min_wire(e, depth);
    int rc = take_count(c, t->max, unit, &n);
    if (rc)
        return rc;
    out->items = NULL;
    out->count = 0;
    if (!n)
        return 0;
    if (w) {
        const uint8_t *src = c->buf + c->pos;
        if (e->kind == MUTILS_KIND_BOOL)
            for (size_t i = 0; i < n; i++)
                if (src[i] > 1)
                    return bad(c, c->pos + i);
        if (c->view && MUTILS__HOST_LE && (uintptr_t)src % w == 0) {
            out->items = (void *)(uintptr_t)src;
        } else {
            out->items = rc_alloc(c, n * w, w);
            if (!out->items)
                return -ENOMEM;
            mutils__prims_from_wire(out->items, src, n, w);
        }
        c->pos += n * w;
        out->count = n;
        return 0;
    }
    size_t cs = mutils__c_size(e);
    if (cs && n > SIZE_MAX / cs)
        return bad(c, start);
    void *items = rc_alloc(c, alloc_size(n, cs), c_align(e));
    if (!items)
        return -ENOMEM;
    /* Elements without wire bytes have nothing to read (see wireless()). */
    rc = unit ? read_seq(c, e, items, n, depth) : 0;
    if (rc) {
        release(&c->f, items, alloc_size(n, cs));
        return rc;
    }
    out->items = items;
    out->count = n;
    return 0;
}

static int read_map(struct rctx *c, const struct mutils_type *t,
                    struct mutils_map *out, int depth)
{
    size_t start = c->pos, n;
    size_t unit = min_wire(t->elem, depth);
    size_t vmin = min_wire(t->value, depth);
    unit = unit > SIZE_MAX - vmin ? SIZE_MAX : unit + vmin;
    int rc = take_count(c, t->max, unit, &n);
    if (rc)
        return rc;
    out->keys = out->values = NULL;
    out->count = 0;
    if (!n)
        return 0;
    size_t ks = mutils__c_size(t->elem), vs = mutils__c_size(t->value);
    if ((ks && n > SIZE_MAX / ks) || (vs && n > SIZE_MAX / vs))
        return bad(c, start);
    char *keys = rc_alloc(c, alloc_size(n, ks), c_align(t->elem));
    char *values =
        keys ? rc_alloc(c, alloc_size(n, vs), c_align(t->value)) : NULL;
    if (!values) {
        release(&c->f, keys, alloc_size(n, ks));
        return -ENOMEM;
    }
    size_t i;
    for (i = 0; i < n && unit; i++) {
        rc = read_value(c, t->elem, keys + i * ks, depth);
        if (rc)
            break;
        rc = read_value(c, t->value, values + i * vs, depth);
        if (rc) {
            free_value(t->elem, keys + i * ks, &c->f);
            break;
        }
    }
    if (rc) {
        free_seq(t->elem, keys, i, &c->f);
        free_seq(t->value, values, i, &c->f);
        release(&c->f, keys, alloc_size(n, ks));
        release(&c->f, values, alloc_size(n, vs));
        return rc;
    }
    out->keys = keys;
    out->values = values;
    out->count = n;
    return 0;
}

/* The decoders below mirror the encoders above them, kind by kind:
 * write_counted / read_counted, write_prim / read_prim, write_optional /
 * read_optional, write_map / read_map, write_struct / read_struct. */

/* A primitive of width w at pos (a bool must be 0 or 1). */
static inline int read_prim(struct rctx *c, enum mutils_kind kind, void *out,
                            size_t w)
{
    const uint8_t *p = c->buf + c->pos;
    if (MUTILS__UNLIKELY(c->len - c->pos < w ||
                         (kind == MUTILS_KIND_BOOL && *p > 1)))
        return bad(c, c->pos);
    mutils__load_prim(out, p, w);
    c->pos += w;
    return 0;
}

/* A text string: a u32 length, then bytes without a NUL.  Copied with a
 * terminating NUL, or (view) pointing into the buffer. */
static int read_string(struct rctx *c, const struct mutils_type *t,
                       struct mutils_str *out)
{
    size_t start = c->pos, n;
    int rc = take_count(c, t->max, 1, &n);
    if (rc)
        return rc;
    const char *src = (const char *)c->buf + c->pos;
    if (mutils__has_nul(src, n))
        return bad(c, start);
    if (!c->view) {
        char *d = rc_alloc(c, n + 1, 1);
        if (!d)
            return -ENOMEM;
        memcpy(d, src, n);
        d[n] = 0;
        src = d;
    }
    out->ptr = src;
    out->len = n;
    c->pos += n;
    return 0;
}

/* A byte string: a u32 length, then the bytes (empty: ptr NULL). */
static int read_bytes(struct rctx *c, const struct mutils_type *t,
                      struct mutils_bytes *out)
{
    size_t n;
    int rc = take_count(c, t->max, 1, &n);
    if (rc)
        return rc;
    const void *src = c->buf + c->pos;
    if (!n) {
        src = NULL;
    } else if (!c->view) {
        void *d = rc_alloc(c, n, 1);
        if (!d)
            return -ENOMEM;
        memcpy(d, src, n);
        src = d;
    }
    out->ptr = src;
    out->len = n;
    c->pos += n;
    return 0;
}

/* A text string into a fixed char array of t->max bytes, NUL included. */
static int read_strbuf(struct rctx *c, const struct mutils_type *t, char *out)
{
    size_t start = c->pos, n;
    if (!t->max)
        return -EINVAL;
    int rc = take_count(c, t->max - 1, 1, &n);
    if (rc)
        return rc;
    const uint8_t *src = c->buf + c->pos;
    if (mutils__has_nul(src, n))
        return bad(c, start);
    memmove(out, src, n); /* out may be the reader's own bytes */
    out[n] = 0;
    c->pos += n;
    return 0;
}

/* One presence byte (0 or 1), then the value, allocated. */
static int read_optional(struct rctx *c, const struct mutils_type *t,
                         void **out, int depth)
{
    const uint8_t *p = c->buf + c->pos;
    if (c->len - c->pos < 1 || *p > 1)
        return bad(c, c->pos);
    c->pos += 1;
    if (!*p) {
        *out = NULL;
        return 0;
    }
    size_t cs = mutils__c_size(t->elem);
    void *e = rc_alloc(c, alloc_size(1, cs), c_align(t->elem));
    if (!e)
        return -ENOMEM;
    int rc = read_value(c, t->elem, e, depth);
    if (rc) {
        release(&c->f, e, alloc_size(1, cs));
        return rc;
    }
    *out = e;
    return 0;
}

/* The fields in order; primitive fields inline (the small-message hot
 * path).  On failure the fields already read are freed. */
static int read_struct(struct rctx *c, const struct mutils_type *t, void *out,
                       int depth)
{
    for (size_t i = 0; i < t->num_fields; i++) {
        const struct mutils_type *ft = t->fields[i].type;
        void *fv = field_ptr_mut(t, out, i);
        size_t w = mutils__width(ft->kind);
        int rc = MUTILS__LIKELY(w) ? read_prim(c, ft->kind, fv, w)
                                   : read_field(c, ft, fv, depth);
        if (MUTILS__UNLIKELY(rc)) {
            while (i--)
                free_value(t->fields[i].type, field_ptr_mut(t, out, i), &c->f);
            return rc;
        }
    }
    return 0;
}

static int read_value(struct rctx *c, const struct mutils_type *t, void *out,
                      int depth)
{
    switch (t->kind) {
    case MUTILS_KIND_STRING:
        return read_string(c, t, out);
    case MUTILS_KIND_BYTES:
        return read_bytes(c, t, out);
    case MUTILS_KIND_STRBUF:
        return read_strbuf(c, t, out);
    default:
        break;
    }
    size_t pw = mutils__width(t->kind);
    if (pw)
        return read_prim(c, t->kind, out, pw);
    if (MUTILS__UNLIKELY(depth >= MUTILS_MAX_DEPTH))
        return bad(c, c->pos);
    switch (t->kind) {
    case MUTILS_KIND_ARRAY:
        return read_array(c, t, out, depth + 1);
    case MUTILS_KIND_FIXED:
        return read_seq(c, t->elem, out, t->max, depth + 1);
    case MUTILS_KIND_OPTIONAL:
        return read_optional(c, t, out, depth + 1);
    case MUTILS_KIND_MAP:
        return read_map(c, t, out, depth + 1);
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS:
        return read_struct(c, t, out, depth + 1);
    default:
        return -EINVAL;
    }
}

/* True when two arguments of a pack share memory: reading into both would
 * leak what the first got and free the second twice. */
static bool args_overlap(const struct mutils_type *pack, void *const *args)
{
    for (size_t i = 0; i < pack->num_fields; i++) {
        uintptr_t a = (uintptr_t)args[i];
        size_t as = mutils__c_size(pack->fields[i].type);
        for (size_t j = i + 1; j < pack->num_fields; j++) {
            uintptr_t b = (uintptr_t)args[j];
            size_t bs = mutils__c_size(pack->fields[j].type);
            if (as && bs && a < b + bs && b < a + as)
                return true;
        }
    }
    return false;
}

static int read_top(struct mutils_reader *r, const struct mutils_type *t,
                    void *out, const struct mutils_alloc *alloc, bool view)
{
    int rc = check_top(t, out);
    if (rc)
        return rc;
    if (!r || (alloc && !alloc->alloc))
        return -EINVAL;
    if (t->kind == MUTILS_KIND_ARGS && args_overlap(t, out))
        return -EINVAL;
    if (r->err) {
        /* *out may be freed after a failed read: leave it empty. */
        zero_value(t, out);
        return r->err;
    }
    struct rctx c = {
        .buf = r->buf,
        .len = r->len,
        .pos = r->pos,
        .view = view,
        .f = {alloc, view ? r->buf : NULL, view ? r->buf + r->len : NULL},
    };
    rc = read_value(&c, t, out, 0);
    if (MUTILS__UNLIKELY(rc)) {
        zero_value(t, out);
        if (rc == -EBADMSG)
            mutils__reader_fail(r, c.err_off, rc);
        return rc;
    }
    r->pos = c.pos;
    return 0;
}

int mutils_read(struct mutils_reader *r, const struct mutils_type *t, void *out,
                const struct mutils_alloc *alloc)
{
    return read_top(r, t, out, alloc, false);
}

int mutils_read_view(struct mutils_reader *r, const struct mutils_type *t,
                     void *out, const struct mutils_alloc *alloc)
{
    return read_top(r, t, out, alloc, true);
}

/* ---- equal ------------------------------------------------------------ */

static bool equal_value(const struct mutils_type *t, const void *a,
                        const void *b, int depth);

static bool equal_seq(const struct mutils_type *e, const void *a, const void *b,
                      size_t count, int depth)
{
    if (!count || a == b)
        return true;
    if (!a || !b) /* a malformed value (count without items) */
        return false;
    size_t w = mutils__width(e->kind);
    if (w && e->kind != MUTILS_KIND_BOOL)
        return memcmp(a, b, count * w) == 0;
    if (wireless(e))
        return true;
    size_t cs = mutils__c_size(e);
    for (size_t i = 0; i < count; i++)
        if (!equal_value(e, (const char *)a + i * cs, (const char *)b + i * cs,
                         depth))
            return false;
    return true;
}

static bool equal_value(const struct mutils_type *t, const void *a,
                        const void *b, int depth)
{
    if (depth > MUTILS_MAX_DEPTH)
        return false;
    switch (t->kind) {
    case MUTILS_KIND_BOOL:
        return (*(const uint8_t *)a != 0) == (*(const uint8_t *)b != 0);
    case MUTILS_KIND_STRING: {
        const struct mutils_str *x = a, *y = b;
        return x->len == y->len &&
               (!x->len || x->ptr == y->ptr ||
                (x->ptr && y->ptr && memcmp(x->ptr, y->ptr, x->len) == 0));
    }
    case MUTILS_KIND_BYTES: {
        const struct mutils_bytes *x = a, *y = b;
        return x->len == y->len &&
               (!x->len || x->ptr == y->ptr ||
                (x->ptr && y->ptr && memcmp(x->ptr, y->ptr, x->len) == 0));
    }
    case MUTILS_KIND_STRBUF:
        return strncmp(a, b, t->max) == 0;
    case MUTILS_KIND_ARRAY: {
        const struct mutils_array *x = a, *y = b;
        return x->count == y->count &&
               equal_seq(t->elem, x->items, y->items, x->count, depth + 1);
    }
    case MUTILS_KIND_FIXED:
        return equal_seq(t->elem, a, b, t->max, depth + 1);
    case MUTILS_KIND_OPTIONAL: {
        const void *x = *(const void *const *)a, *y = *(const void *const *)b;
        if (!x || !y)
            return x == y;
        return equal_value(t->elem, x, y, depth + 1);
    }
    case MUTILS_KIND_MAP: {
        const struct mutils_map *x = a, *y = b;
        return x->count == y->count &&
               equal_seq(t->elem, x->keys, y->keys, x->count, depth + 1) &&
               equal_seq(t->value, x->values, y->values, x->count, depth + 1);
    }
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS:
        for (size_t i = 0; i < t->num_fields; i++)
            if (!equal_value(t->fields[i].type, field_ptr(t, a, i),
                             field_ptr(t, b, i), depth + 1))
                return false;
        return true;
    default: {
        size_t w = mutils__width(t->kind);
        return w && memcmp(a, b, w) == 0;
    }
    }
}

bool mutils_equal(const struct mutils_type *t, const void *a, const void *b)
{
    if (!t)
        return false;
    if (a == b)
        return true;
    if (check_top(t, a) || check_top(t, b))
        return false;
    return equal_value(t, a, b, 0);
}

/* ---- argument packs ------------------------------------------------------ */

/* The args_* functions take an array of pointers: any other descriptor
 * would read that array as a C value of another shape. */
static inline bool is_pack(const struct mutils_type *pack)
{
    return pack && pack->kind == MUTILS_KIND_ARGS;
}

int mutils_args_size(const struct mutils_type *pack, const void *const args[],
                     size_t *size)
{
    return is_pack(pack) ? mutils_size(pack, args, size) : -EINVAL;
}

int mutils_args_write(struct mutils_writer *w, const struct mutils_type *pack,
                      const void *const args[])
{
    return is_pack(pack) ? mutils_write(w, pack, args) : -EINVAL;
}

int mutils_args_read(struct mutils_reader *r, const struct mutils_type *pack,
                     void *const args[], const struct mutils_alloc *alloc)
{
    if (!is_pack(pack))
        return -EINVAL;
    return mutils_read(r, pack, (void *)(uintptr_t)args, alloc);
}

int mutils_args_read_view(struct mutils_reader *r,
                          const struct mutils_type *pack, void *const args[],
                          const struct mutils_alloc *alloc)
{
    if (!is_pack(pack))
        return -EINVAL;
    return mutils_read_view(r, pack, (void *)(uintptr_t)args, alloc);
}

void mutils_args_free(const struct mutils_type *pack, void *const args[],
                      const struct mutils_alloc *alloc)
{
    if (is_pack(pack))
        mutils_free(pack, (void *)(uintptr_t)args, alloc);
}
