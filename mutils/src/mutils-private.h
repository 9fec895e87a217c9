/* Internal declarations shared inside libmutils. */
#ifndef MUTILS_PRIVATE_H
#define MUTILS_PRIVATE_H

#include <mutils/mutils.h>

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define MUTILS__HOST_LE 1
#else
#define MUTILS__HOST_LE 0
#endif

#define MUTILS__LIKELY(x) __builtin_expect(!!(x), 1)
#define MUTILS__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Little-endian stores and loads at any alignment: the public helpers of
 * <mutils/mutils.h> under the engine's short names. */
#define mutils__st16 mutils_store_le16
#define mutils__st32 mutils_store_le32
#define mutils__st64 mutils_store_le64
#define mutils__ld16 mutils_load_le16
#define mutils__ld32 mutils_load_le32
#define mutils__ld64 mutils_load_le64

/* Width of a primitive kind (0 for composite kinds), inline for the
 * engine's loops. */
static inline size_t mutils__width(enum mutils_kind kind)
{
    static const uint8_t widths[] = {
        [MUTILS_KIND_U8] = 1,  [MUTILS_KIND_U16] = 2, [MUTILS_KIND_U32] = 4,
        [MUTILS_KIND_U64] = 8, [MUTILS_KIND_I8] = 1,  [MUTILS_KIND_I16] = 2,
        [MUTILS_KIND_I32] = 4, [MUTILS_KIND_I64] = 8, [MUTILS_KIND_BOOL] = 1,
        [MUTILS_KIND_F32] = 4, [MUTILS_KIND_F64] = 8,
    };
    return (unsigned)kind < sizeof widths ? widths[kind] : 0;
}

/* Stores count primitives of width size from host memory src to wire
 * memory dst (and back): one memmove on little-endian hosts (a caller's
 * array may overlap the buffer it is written to or read from), a byte
 * swap of each element otherwise (its own inverse). */
static inline void mutils__prims_to_wire(uint8_t *dst, const void *src,
                                         size_t count, size_t size)
{
#if MUTILS__HOST_LE
    if (count)
        memmove(dst, src, count * size);
#else
    const uint8_t *s = src;
    for (size_t i = 0; i < count; i++, s += size, dst += size)
        for (size_t b = 0; b < size; b++)
            dst[b] = s[size - 1 - b];
#endif
}

static inline void mutils__prims_from_wire(void *dst, const uint8_t *src,
                                           size_t count, size_t size)
{
    mutils__prims_to_wire(dst, src, count, size);
}

/* One primitive of width w (1, 2, 4 or 8) between host memory and the
 * wire, with constant-size copies the compiler turns into moves. */
static inline void mutils__store_prim(uint8_t *p, const void *v, size_t w)
{
    switch (w) {
    case 1:
        *p = *(const uint8_t *)v;
        break;
    case 2: {
        uint16_t x;
        memcpy(&x, v, 2);
        mutils__st16(p, x);
        break;
    }
    case 4: {
        uint32_t x;
        memcpy(&x, v, 4);
        mutils__st32(p, x);
        break;
    }
    default: {
        uint64_t x;
        memcpy(&x, v, 8);
        mutils__st64(p, x);
        break;
    }
    }
}

static inline void mutils__load_prim(void *v, const uint8_t *p, size_t w)
{
    switch (w) {
    case 1:
        *(uint8_t *)v = *p;
        break;
    case 2: {
        uint16_t x = mutils__ld16(p);
        memcpy(v, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = mutils__ld32(p);
        memcpy(v, &x, 4);
        break;
    }
    default: {
        uint64_t x = mutils__ld64(p);
        memcpy(v, &x, 8);
        break;
    }
    }
}

/* True when [p, p + n) contains a NUL byte.  Text strings are short in the
 * hot path: eight bytes at a time inline beats a call to memchr there. */
static inline bool mutils__has_nul(const void *p, size_t n)
{
    if (n > 256)
        return memchr(p, 0, n) != NULL;
    const uint8_t *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, b + i, 8);
        if ((v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL)
            return true;
    }
    for (; i < n; i++)
        if (!b[i])
            return true;
    return false;
}

/* Makes room for n more bytes of w and returns a pointer to them, or NULL
 * with the writer's (sticky) error set.  With old NULL a growable writer
 * grows in place (realloc); otherwise it moves to a new block and *old is
 * the previous one (or NULL), which the caller frees once it has copied
 * what it writes: the source may lie in that very block. */
uint8_t *mutils__writer_room(struct mutils_writer *w, size_t n, uint8_t **old);

/* Size of the C representation of t (0 for argument packs). */
size_t mutils__c_size(const struct mutils_type *t);

/* Records err at offset in r (first error wins) and returns it. */
int mutils__reader_fail(struct mutils_reader *r, size_t offset, int err);

#endif
