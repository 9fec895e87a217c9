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

/* Little-endian stores and loads at any alignment. */
static inline void mutils__st16(uint8_t *p, uint16_t v)
{
#if MUTILS__HOST_LE
    memcpy(p, &v, 2);
#else
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
#endif
}

static inline void mutils__st32(uint8_t *p, uint32_t v)
{
#if MUTILS__HOST_LE
    memcpy(p, &v, 4);
#else
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline void mutils__st64(uint8_t *p, uint64_t v)
{
#if MUTILS__HOST_LE
    memcpy(p, &v, 8);
#else
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline uint16_t mutils__ld16(const uint8_t *p)
{
#if MUTILS__HOST_LE
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    return (uint16_t)(p[0] | (p[1] << 8));
#endif
}

static inline uint32_t mutils__ld32(const uint8_t *p)
{
#if MUTILS__HOST_LE
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
#endif
}

static inline uint64_t mutils__ld64(const uint8_t *p)
{
#if MUTILS__HOST_LE
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
#endif
}

/* Stores count primitives of width size from host memory src to wire
 * memory dst (and back): one memcpy on little-endian hosts. */
void mutils__prims_to_wire(uint8_t *dst, const void *src, size_t count,
                           size_t size);
void mutils__prims_from_wire(void *dst, const uint8_t *src, size_t count,
                             size_t size);

/* Records err at offset in r (first error wins) and returns it. */
int mutils__reader_fail(struct mutils_reader *r, size_t offset, int err);

#endif
