/* libmutils: serialization for messages, RPC arguments, object state, logs.
 *
 * Wire format (version MUTILS_WIRE_VERSION), the same on every host:
 *  - integers: little-endian, fixed width (u8/i8 1 byte, u16/i16 2, u32/i32
 *    4, u64/i64 8), two's complement for signed values;
 *  - bool: one byte, 0 or 1 (any other value is malformed);
 *  - f32/f64: the IEEE-754 binary32/binary64 bit pattern as a u32/u64;
 *  - byte strings and text strings: u32 length, then that many bytes (no
 *    terminating NUL; text must not contain a NUL byte);
 *  - arrays of variable length: u32 count, then the elements back to back;
 *    fixed-length arrays: the elements only;
 *  - optional values: one byte, 0 (absent) or 1 (present, value follows);
 *  - maps: u32 count, then key, value, key, value, ...;
 *  - structures and argument packs: their fields in declaration order, with
 *    no padding and no field tags.
 * Nothing is aligned on the wire, so an encoding can start anywhere.
 *
 * Two layers:
 *  1. struct mutils_writer / struct mutils_reader: bounded typed put/get of
 *     primitives and variable-size values over caller memory.
 *  2. struct mutils_type descriptors: describe a C struct once, then size,
 *     write, read (copying or zero-copy view), free and compare it with one
 *     generic engine; argument packs for RPC argument lists; a stable 64-bit
 *     layout fingerprint (XXH3).
 *
 * Errors: functions return 0 or a negative errno (see mutils_strerror()):
 *  -ENOSPC     a fixed-size writer has no room; its length is unchanged
 *  -ENOMEM     a growable writer or an allocator could not get memory
 *  -ERANGE     a value's length or count exceeds its declared maximum
 *              (writing), or a caller buffer is too small
 *  -EOVERFLOW  size arithmetic would overflow
 *  -EBADMSG    malformed or truncated input (reading); the reader records the
 *              offset where the failing value starts
 *  -ELOOP      nesting deeper than MUTILS_MAX_DEPTH
 *  -EINVAL     bad argument or descriptor (e.g. a NUL inside a text string)
 *
 * Misuse: a NULL object, descriptor or output pointer makes a function that
 * returns int fail with -EINVAL (without consuming, writing or changing
 * anything; not sticky), a getter of a size (mutils_writer_len,
 * mutils_reader_offset, mutils_reader_remaining, mutils_type_c_size)
 * return MUTILS_NO_SIZE, one that returns a pointer NULL, and a void
 * function do nothing.  An input pointer may be
 * NULL only with a length of 0.  The bytes given to a put or a get may
 * overlap the writer's or reader's own buffer (e.g. appending a copy of
 * bytes already written), and a value given to mutils_write() may point
 * into the bytes its writer already holds (a view read from them).
 *
 * Threading: no global state.  A writer, reader or arena is used by one
 * thread at a time; distinct objects may be used concurrently.  Descriptors
 * are read-only and can be shared by any number of threads.
 */
#ifndef DERECHO_MUTILS_H
#define DERECHO_MUTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MUTILS_EXPORT __attribute__((visibility("default")))

/* Version of the wire format described above; part of every fingerprint. */
#define MUTILS_WIRE_VERSION 1

/* Deepest nesting of descriptors (struct in array in optional ...) that the
 * engine writes, reads or fingerprints.  Deeper values fail with -ELOOP
 * (writing, fingerprinting) or -EBADMSG (reading). */
#define MUTILS_MAX_DEPTH 32

/* Largest length or count the wire format can carry (u32 prefix). */
#define MUTILS_MAX_LEN UINT32_MAX

/* Largest single block the library asks an allocator for (1 TiB, or half
 * the address space where that is less): a growable writer or an arena
 * asked for more fails with -ENOMEM (NULL) without trying, because such a
 * request is a bug or an attack, never a message. */
/* What the size getters return for a NULL object: never a real size. */
#define MUTILS_NO_SIZE SIZE_MAX

#define MUTILS_MAX_ALLOC                                                       \
    ((size_t)(SIZE_MAX / 2 < (1ull << 40) ? SIZE_MAX / 2 : (1ull << 40)))

/* Returns a static, human-readable description of an error code of this
 * library, given negative (as returned) or positive: mutils_strerror(e) and
 * mutils_strerror(-e) are the same text.  Any other errno gets the system's
 * text; a number that is no errno gets "unknown error".  Never NULL.
 * Thread-safe. */
MUTILS_EXPORT const char *mutils_strerror(int err);

/* ======================================================================== */
/* Byte order                                                               */
/* ======================================================================== */

/* Little-endian loads and stores of 16, 32 and 64-bit integers at any
 * alignment (p need not be aligned), the byte order of every Derecho wire
 * and file format.  Inline, no error: p must point at 2, 4 or 8 readable
 * (writable) bytes.  Thread-safe as plain memory accesses are. */
static inline void mutils_store_le16(void *p, uint16_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 2);
#else
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 2; i++)
        b[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline void mutils_store_le32(void *p, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 4);
#else
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline void mutils_store_le64(void *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(p, &v, 8);
#else
    uint8_t *b = (uint8_t *)p;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
#endif
}

static inline uint16_t mutils_load_le16(const void *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
#else
    const uint8_t *b = (const uint8_t *)p;
    return (uint16_t)(b[0] | (b[1] << 8));
#endif
}

static inline uint32_t mutils_load_le32(const void *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    const uint8_t *b = (const uint8_t *)p;
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
#endif
}

static inline uint64_t mutils_load_le64(const void *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    const uint8_t *b = (const uint8_t *)p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
#endif
}

/* ======================================================================== */
/* Writer                                                                   */
/* ======================================================================== */

/* A bounded writer.  Fields are private: use the functions below.
 *
 * Errors are sticky: after the first failure every put fails with the same
 * error and writes nothing, so a sequence of puts can be checked once at the
 * end with mutils_writer_error().  A put that fails writes nothing at all
 * (no partial value). */
struct mutils_writer {
    uint8_t *buf;
    size_t len; /* bytes written so far */
    size_t cap;
    int err; /* first error, or 0 */
    bool growable;
};

/* Starts a writer over caller memory [buf, buf + cap).  It never writes
 * outside it; a put that does not fit fails with -ENOSPC.  buf may be NULL
 * when cap is 0 (useful to count nothing).  The caller owns buf. */
MUTILS_EXPORT void mutils_writer_init(struct mutils_writer *w, void *buf,
                                      size_t cap);

/* Starts a writer over a buffer it allocates (malloc) and grows as needed
 * (initial_cap may be 0), up to MUTILS_MAX_ALLOC bytes.  Release with
 * mutils_writer_fini(), or take the buffer with mutils_writer_steal().
 * Returns 0, -EINVAL (w NULL) or -ENOMEM (initial_cap above
 * MUTILS_MAX_ALLOC or out of memory; w is then an empty growable writer). */
MUTILS_EXPORT int mutils_writer_init_growable(struct mutils_writer *w,
                                              size_t initial_cap);

/* Frees a growable writer's buffer and leaves the writer empty (a fixed
 * writer is left empty too, its buffer untouched).  Calling it again is a
 * no-op. */
MUTILS_EXPORT void mutils_writer_fini(struct mutils_writer *w);

/* Takes ownership of a growable writer's buffer (free() it) and stores its
 * length in *len; the writer is left empty and may be reused or finished.
 * For a fixed writer returns the caller's buffer (not owned).  May return
 * NULL when nothing was ever written. */
MUTILS_EXPORT void *mutils_writer_steal(struct mutils_writer *w, size_t *len);

/* Bytes written so far (MUTILS_NO_SIZE when w is NULL), and the start of
 * the written bytes (NULL when w is NULL).  The data pointer of a growable
 * writer is valid until its next put or fini. */
MUTILS_EXPORT size_t mutils_writer_len(const struct mutils_writer *w);
MUTILS_EXPORT const void *mutils_writer_data(const struct mutils_writer *w);

/* The first error the writer met, or 0. */
MUTILS_EXPORT int mutils_writer_error(const struct mutils_writer *w);

/* Forgets what was written (length back to 0) and clears the error.  A
 * growable writer keeps its buffer. */
MUTILS_EXPORT void mutils_writer_reset(struct mutils_writer *w);

/* Reserves n bytes at the current position and stores a pointer to them in
 * *out (valid until the next put on a growable writer); the caller fills
 * them.  Returns 0, -ENOSPC, -ENOMEM or -EOVERFLOW (sticky), or -EINVAL
 * (w or out NULL; *out untouched on every error). */
MUTILS_EXPORT int mutils_writer_reserve(struct mutils_writer *w, size_t n,
                                        void **out);

/* Primitives, in the wire format above.  Return 0 or the (sticky) error:
 * -ENOSPC (fixed writer full), -ENOMEM (growable). */
MUTILS_EXPORT int mutils_put_u8(struct mutils_writer *w, uint8_t v);
MUTILS_EXPORT int mutils_put_u16(struct mutils_writer *w, uint16_t v);
MUTILS_EXPORT int mutils_put_u32(struct mutils_writer *w, uint32_t v);
MUTILS_EXPORT int mutils_put_u64(struct mutils_writer *w, uint64_t v);
MUTILS_EXPORT int mutils_put_i8(struct mutils_writer *w, int8_t v);
MUTILS_EXPORT int mutils_put_i16(struct mutils_writer *w, int16_t v);
MUTILS_EXPORT int mutils_put_i32(struct mutils_writer *w, int32_t v);
MUTILS_EXPORT int mutils_put_i64(struct mutils_writer *w, int64_t v);
MUTILS_EXPORT int mutils_put_bool(struct mutils_writer *w, bool v);
MUTILS_EXPORT int mutils_put_f32(struct mutils_writer *w, float v);
MUTILS_EXPORT int mutils_put_f64(struct mutils_writer *w, double v);

/* Copies n raw bytes (no length prefix).  -EINVAL (not sticky) when p is
 * NULL and n is not 0. */
MUTILS_EXPORT int mutils_put_raw(struct mutils_writer *w, const void *p,
                                 size_t n);

/* A byte string: u32 length then the bytes.  Fails with -ERANGE when
 * len > max (or > MUTILS_MAX_LEN), writing nothing.  p may be NULL when
 * len is 0. */
MUTILS_EXPORT int mutils_put_bytes(struct mutils_writer *w, const void *p,
                                   size_t len, size_t max);

/* A text string given as a NUL-terminated C string (mutils_put_string) or
 * as (s, len) (mutils_put_string_n, which fails with -EINVAL if the len
 * bytes contain a NUL).  Same wire form as bytes; -ERANGE when longer
 * than max bytes. */
MUTILS_EXPORT int mutils_put_string(struct mutils_writer *w, const char *s,
                                    size_t max);
MUTILS_EXPORT int mutils_put_string_n(struct mutils_writer *w, const char *s,
                                      size_t len, size_t max);

/* A count prefix (u32) for arrays and maps written element by element;
 * -ERANGE when count > max. */
MUTILS_EXPORT int mutils_put_count(struct mutils_writer *w, size_t count,
                                   size_t max);

/* The presence byte of an optional value: write the value after it when
 * present is true. */
MUTILS_EXPORT int mutils_put_present(struct mutils_writer *w, bool present);

/* Primitive kinds, for arrays of primitives and descriptors. */
enum mutils_kind {
    MUTILS_KIND_U8 = 1,
    MUTILS_KIND_U16,
    MUTILS_KIND_U32,
    MUTILS_KIND_U64,
    MUTILS_KIND_I8,
    MUTILS_KIND_I16,
    MUTILS_KIND_I32,
    MUTILS_KIND_I64,
    MUTILS_KIND_BOOL,
    MUTILS_KIND_F32,
    MUTILS_KIND_F64,
    /* composite kinds (descriptors only) */
    MUTILS_KIND_STRING,   /* struct mutils_str */
    MUTILS_KIND_BYTES,    /* struct mutils_bytes */
    MUTILS_KIND_STRBUF,   /* char[capacity], NUL-terminated, inline */
    MUTILS_KIND_ARRAY,    /* struct mutils_array, u32 count on the wire */
    MUTILS_KIND_FIXED,    /* elem[count] inline, no count on the wire */
    MUTILS_KIND_OPTIONAL, /* pointer to elem, NULL when absent */
    MUTILS_KIND_MAP,      /* struct mutils_map */
    MUTILS_KIND_STRUCT,   /* a C struct, fields in order */
    MUTILS_KIND_ARGS,     /* argument pack: fields given by pointers */
};

/* Size in bytes of a primitive kind on the wire (and in C), 0 otherwise. */
MUTILS_EXPORT size_t mutils_kind_size(enum mutils_kind kind);

/* An array of count primitives of the given kind (C array elems): u32
 * count, then the elements.  One bulk copy on little-endian hosts; bools
 * must be 0 or 1 (-EINVAL otherwise).  -ERANGE when count > max. */
MUTILS_EXPORT int mutils_put_array(struct mutils_writer *w,
                                   enum mutils_kind kind, const void *elems,
                                   size_t count, size_t max);

/* ======================================================================== */
/* Reader                                                                   */
/* ======================================================================== */

/* A bounded reader over caller memory.  Fields are private.
 *
 * Every get checks the remaining length first; short or malformed input
 * fails with -EBADMSG, consumes nothing, leaves the output untouched and
 * records the offset (from the start of the buffer) of the value that
 * failed.  Errors are sticky like the writer's. */
struct mutils_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int err;
    size_t err_offset;
};

/* Starts a reader over [buf, buf + len); the caller keeps buf alive and
 * unchanged while the reader and any view taken from it are used. */
MUTILS_EXPORT void mutils_reader_init(struct mutils_reader *r, const void *buf,
                                      size_t len);

/* Current offset, and bytes left (MUTILS_NO_SIZE when r is NULL). */
MUTILS_EXPORT size_t mutils_reader_offset(const struct mutils_reader *r);
MUTILS_EXPORT size_t mutils_reader_remaining(const struct mutils_reader *r);

/* The first error, or 0; when non-zero and offset is not NULL, stores the
 * offset where the failing value starts. */
MUTILS_EXPORT int mutils_reader_error(const struct mutils_reader *r,
                                      size_t *offset);

/* Returns the sticky error if any, else -EBADMSG when bytes are left over
 * (recorded at the current offset), else 0.  Call after the last get when
 * the whole buffer must be one message.  -EINVAL when r is NULL. */
MUTILS_EXPORT int mutils_reader_finish(struct mutils_reader *r);

/* Primitives; -EBADMSG when fewer bytes remain than the width, or for a
 * bool byte other than 0/1. */
MUTILS_EXPORT int mutils_get_u8(struct mutils_reader *r, uint8_t *v);
MUTILS_EXPORT int mutils_get_u16(struct mutils_reader *r, uint16_t *v);
MUTILS_EXPORT int mutils_get_u32(struct mutils_reader *r, uint32_t *v);
MUTILS_EXPORT int mutils_get_u64(struct mutils_reader *r, uint64_t *v);
MUTILS_EXPORT int mutils_get_i8(struct mutils_reader *r, int8_t *v);
MUTILS_EXPORT int mutils_get_i16(struct mutils_reader *r, int16_t *v);
MUTILS_EXPORT int mutils_get_i32(struct mutils_reader *r, int32_t *v);
MUTILS_EXPORT int mutils_get_i64(struct mutils_reader *r, int64_t *v);
MUTILS_EXPORT int mutils_get_bool(struct mutils_reader *r, bool *v);
MUTILS_EXPORT int mutils_get_f32(struct mutils_reader *r, float *v);
MUTILS_EXPORT int mutils_get_f64(struct mutils_reader *r, double *v);

/* Copies n raw bytes into dst. */
MUTILS_EXPORT int mutils_get_raw(struct mutils_reader *r, void *dst, size_t n);

/* Points *p at the next n raw bytes inside the reader's buffer (zero-copy;
 * valid while the buffer is). */
MUTILS_EXPORT int mutils_get_raw_view(struct mutils_reader *r, const void **p,
                                      size_t n);

/* A byte string as a view into the buffer: *p, *len (valid while the buffer
 * is).  -EBADMSG when the length exceeds max or the bytes left. */
MUTILS_EXPORT int mutils_get_bytes_view(struct mutils_reader *r, const void **p,
                                        size_t *len, size_t max);

/* A byte string copied into dst (capacity cap); *len gets its length.
 * -EBADMSG when the length exceeds max or the bytes left; -ERANGE (nothing
 * consumed, not sticky) when it exceeds cap. */
MUTILS_EXPORT int mutils_get_bytes(struct mutils_reader *r, void *dst,
                                   size_t cap, size_t *len, size_t max);

/* A text string as a view (not NUL-terminated; valid while the buffer is).
 * -EBADMSG also when it contains a NUL byte. */
MUTILS_EXPORT int mutils_get_string_view(struct mutils_reader *r,
                                         const char **s, size_t *len,
                                         size_t max);

/* A text string copied into dst and NUL-terminated (needs len + 1 <= cap,
 * else -ERANGE, nothing consumed, not sticky).  len may be NULL. */
MUTILS_EXPORT int mutils_get_string(struct mutils_reader *r, char *dst,
                                    size_t cap, size_t *len, size_t max);

/* A count prefix; -EBADMSG when it exceeds max. */
MUTILS_EXPORT int mutils_get_count(struct mutils_reader *r, size_t *count,
                                   size_t max);

/* A presence byte (0/1; anything else is -EBADMSG). */
MUTILS_EXPORT int mutils_get_present(struct mutils_reader *r, bool *present);

/* An array of primitives copied into elems (capacity cap elements); *count
 * gets the count.  -EBADMSG when count > max, past the end, or an invalid
 * bool; -ERANGE (nothing consumed, not sticky) when count > cap. */
MUTILS_EXPORT int mutils_get_array(struct mutils_reader *r,
                                   enum mutils_kind kind, void *elems,
                                   size_t cap, size_t *count, size_t max);

/* ======================================================================== */
/* Allocators and arenas                                                    */
/* ======================================================================== */

/* Where a descriptor read puts what it allocates (strings, byte strings,
 * arrays, optional values, maps).  alloc returns size bytes aligned to
 * align (a power of two, at most alignof(max_align_t)) or NULL; free
 * releases them (size is what was asked for) and may be NULL when memory is
 * released all at once (an arena).  A NULL struct mutils_alloc pointer
 * means malloc/free; a struct whose alloc is NULL is -EINVAL.  Both run
 * on the calling thread during the read or free; they may use other
 * writers, readers and arenas, but must not reset the arena or touch the
 * reader and value that the running call works on. */
struct mutils_alloc {
    void *(*alloc)(void *ctx, size_t size, size_t align);
    void (*free)(void *ctx, void *ptr, size_t size);
    void *ctx;
};

/* A bump allocator: hands out memory from a caller block first, then from
 * blocks it mallocs; everything is released at once by reset or fini.
 * Fields are private. */
struct mutils_arena {
    struct mutils_alloc allocator;
    uint8_t *block; /* current block */
    size_t block_cap;
    size_t used;
    uint8_t *first; /* caller's block, may be NULL */
    size_t first_cap;
    void *chunks;      /* malloc'd blocks, newest first */
    size_t chunk_size; /* size of the next malloc'd block */
};

/* Starts an arena over caller memory [buf, buf + cap) (buf may be NULL);
 * when it is used up the arena mallocs blocks of growing size.  The caller
 * owns buf. */
MUTILS_EXPORT void mutils_arena_init(struct mutils_arena *a, void *buf,
                                     size_t cap);

/* Releases everything handed out (malloc'd blocks are freed; the caller's
 * block is reused, and the next malloc'd block is small again).  Pointers
 * from the arena become invalid. */
MUTILS_EXPORT void mutils_arena_reset(struct mutils_arena *a);

/* Releases the malloc'd blocks; the arena may be re-initialised. */
MUTILS_EXPORT void mutils_arena_fini(struct mutils_arena *a);

/* Returns size bytes aligned to align (power of two; 0 means
 * alignof(max_align_t)) or NULL when out of memory, when size is above
 * MUTILS_MAX_ALLOC, or when align is not a power of two at most
 * alignof(max_align_t).  Valid until reset. */
MUTILS_EXPORT void *mutils_arena_alloc(struct mutils_arena *a, size_t size,
                                       size_t align);

/* The arena as a struct mutils_alloc for the descriptor readers; valid as
 * long as the arena. */
MUTILS_EXPORT const struct mutils_alloc *
mutils_arena_allocator(struct mutils_arena *a);

/* ======================================================================== */
/* Type descriptors                                                         */
/* ======================================================================== */

/* C representations of the variable-size kinds.
 *
 * After a copying read (mutils_read) every pointer is owned by the value
 * and released by mutils_free(); a string is NUL-terminated (ptr[len] ==
 * 0); an empty byte string or array has ptr NULL.
 * After a view read (mutils_read_view) strings, byte strings and arrays of
 * primitives point into the reader's buffer when they can (valid while the
 * buffer is; strings are then NOT NUL-terminated); see mutils_read_view(). */
struct mutils_str {
    const char *ptr;
    size_t len; /* bytes, without any NUL */
};

struct mutils_bytes {
    const void *ptr;
    size_t len;
};

/* count elements of the element descriptor's C type, back to back. */
struct mutils_array {
    void *items;
    size_t count;
};

/* count keys and count values (two parallel C arrays).  The engine keeps
 * their order and does not check that keys are distinct. */
struct mutils_map {
    void *keys;
    void *values;
    size_t count;
};

struct mutils_type;

/* One field of a struct (or one argument of a pack: offset unused). */
struct mutils_field {
    const char *name; /* part of the fingerprint; may be NULL */
    size_t offset;    /* offsetof(struct, member) */
    const struct mutils_type *type;
};

/* A descriptor.  Build them with the MUTILS_*_INIT / MUTILS_TYPE_* macros
 * below rather than by hand.  The C representation of each kind:
 *   U8..F64    uint8_t .. double          BOOL      bool
 *   STRING     struct mutils_str           BYTES     struct mutils_bytes
 *   STRBUF     char[max], NUL-terminated; on the wire a text string of at
 *              most max - 1 bytes
 *   ARRAY      struct mutils_array of at most max elements of elem
 *   FIXED      elem[max] inline; no count on the wire
 *   OPTIONAL   pointer to elem, NULL when absent
 *   MAP        struct mutils_map of at most max pairs (elem -> value)
 *   STRUCT     the C struct of c_size bytes described by fields
 *   ARGS       an argument pack (top level only): the value is an array of
 *              num_fields pointers, one per argument, in order
 * Descriptors are plain read-only data; they must outlive their use. */
struct mutils_type {
    enum mutils_kind kind;
    const char *name; /* STRUCT/ARGS name (fingerprinted); may be NULL */
    size_t c_size;    /* STRUCT: sizeof the struct; ignored for others */
    size_t c_align;   /* STRUCT: alignof the struct; ignored for others */
    size_t max;       /* see above; at most MUTILS_MAX_LEN */
    const struct mutils_type *elem;  /* ARRAY/FIXED/OPTIONAL elem, MAP key */
    const struct mutils_type *value; /* MAP value */
    const struct mutils_field *fields;
    size_t num_fields;
};

/* Descriptors of the primitives (read-only; shareable by all threads). */
MUTILS_EXPORT extern const struct mutils_type mutils_type_u8;
MUTILS_EXPORT extern const struct mutils_type mutils_type_u16;
MUTILS_EXPORT extern const struct mutils_type mutils_type_u32;
MUTILS_EXPORT extern const struct mutils_type mutils_type_u64;
MUTILS_EXPORT extern const struct mutils_type mutils_type_i8;
MUTILS_EXPORT extern const struct mutils_type mutils_type_i16;
MUTILS_EXPORT extern const struct mutils_type mutils_type_i32;
MUTILS_EXPORT extern const struct mutils_type mutils_type_i64;
MUTILS_EXPORT extern const struct mutils_type mutils_type_bool;
MUTILS_EXPORT extern const struct mutils_type mutils_type_f32;
MUTILS_EXPORT extern const struct mutils_type mutils_type_f64;

/* Initialisers (for `static const struct mutils_type x = ...;`) and the
 * matching pointer forms (compound literals with static storage when used
 * at file scope) for the composite kinds. */
#define MUTILS_STRING_INIT(max_)                                               \
    {                                                                          \
        .kind = MUTILS_KIND_STRING, .max = (max_)                              \
    }
#define MUTILS_BYTES_INIT(max_)                                                \
    {                                                                          \
        .kind = MUTILS_KIND_BYTES, .max = (max_)                               \
    }
#define MUTILS_STRBUF_INIT(cap_)                                               \
    {                                                                          \
        .kind = MUTILS_KIND_STRBUF, .max = (cap_)                              \
    }
#define MUTILS_ARRAY_INIT(elem_, max_)                                         \
    {                                                                          \
        .kind = MUTILS_KIND_ARRAY, .max = (max_), .elem = (elem_)              \
    }
#define MUTILS_FIXED_INIT(elem_, count_)                                       \
    {                                                                          \
        .kind = MUTILS_KIND_FIXED, .max = (count_), .elem = (elem_)            \
    }
#define MUTILS_OPTIONAL_INIT(elem_)                                            \
    {                                                                          \
        .kind = MUTILS_KIND_OPTIONAL, .elem = (elem_)                          \
    }
#define MUTILS_MAP_INIT(key_, value_, max_)                                    \
    {                                                                          \
        .kind = MUTILS_KIND_MAP, .max = (max_), .elem = (key_),                \
        .value = (value_)                                                      \
    }
/* A field of struct stype: MUTILS_FIELD(struct point, x, &mutils_type_i32) */
#define MUTILS_FIELD(stype, member, type_)                                     \
    {                                                                          \
        .name = #member, .offset = offsetof(stype, member), .type = (type_)    \
    }
/* A struct: MUTILS_STRUCT_INIT(struct point, MUTILS_FIELD(...), ...) */
#define MUTILS_STRUCT_INIT(stype, ...)                                         \
    {                                                                          \
        .kind = MUTILS_KIND_STRUCT, .name = #stype, .c_size = sizeof(stype),   \
        .c_align = _Alignof(stype),                                            \
        .fields = (const struct mutils_field[]){__VA_ARGS__},                  \
        .num_fields = sizeof((const struct mutils_field[]){__VA_ARGS__}) /     \
                      sizeof(struct mutils_field)                              \
    }
/* One argument of a pack. */
#define MUTILS_ARG(name_, type_)                                               \
    {                                                                          \
        .name = (name_), .type = (type_)                                       \
    }
/* An argument pack: MUTILS_ARGS_INIT("f", MUTILS_ARG("id", ...), ...) */
#define MUTILS_ARGS_INIT(name_, ...)                                           \
    {                                                                          \
        .kind = MUTILS_KIND_ARGS, .name = (name_),                             \
        .fields = (const struct mutils_field[]){__VA_ARGS__},                  \
        .num_fields = sizeof((const struct mutils_field[]){__VA_ARGS__}) /     \
                      sizeof(struct mutils_field)                              \
    }

#define MUTILS_TYPE_STRING(max_)                                               \
    (&(const struct mutils_type)MUTILS_STRING_INIT(max_))
#define MUTILS_TYPE_BYTES(max_)                                                \
    (&(const struct mutils_type)MUTILS_BYTES_INIT(max_))
#define MUTILS_TYPE_STRBUF(cap_)                                               \
    (&(const struct mutils_type)MUTILS_STRBUF_INIT(cap_))
#define MUTILS_TYPE_ARRAY(elem_, max_)                                         \
    (&(const struct mutils_type)MUTILS_ARRAY_INIT(elem_, max_))
#define MUTILS_TYPE_FIXED(elem_, count_)                                       \
    (&(const struct mutils_type)MUTILS_FIXED_INIT(elem_, count_))
#define MUTILS_TYPE_OPTIONAL(elem_)                                            \
    (&(const struct mutils_type)MUTILS_OPTIONAL_INIT(elem_))
#define MUTILS_TYPE_MAP(key_, value_, max_)                                    \
    (&(const struct mutils_type)MUTILS_MAP_INIT(key_, value_, max_))
#define MUTILS_TYPE_STRUCT(stype, ...)                                         \
    (&(const struct mutils_type)MUTILS_STRUCT_INIT(stype, __VA_ARGS__))
#define MUTILS_TYPE_ARGS(name_, ...)                                           \
    (&(const struct mutils_type)MUTILS_ARGS_INIT(name_, __VA_ARGS__))

/* Checks a descriptor tree: known kinds, non-NULL sub-descriptors, fields
 * inside their struct, maxima within MUTILS_MAX_LEN (STRBUF at least 1),
 * ARGS only at the top, depth within MUTILS_MAX_DEPTH.  The engine trusts
 * its descriptors (they are code, not input): call this in a test.
 * Returns 0, -EINVAL or -ELOOP. */
MUTILS_EXPORT int mutils_type_check(const struct mutils_type *t);

/* Size in bytes of the C representation of t (sizeof of a field of that
 * descriptor); 0 for ARGS; MUTILS_NO_SIZE when t is NULL. */
MUTILS_EXPORT size_t mutils_type_c_size(const struct mutils_type *t);

/* Exact number of bytes mutils_write() would write for value, without
 * writing.  Errors: -ERANGE (a length or count above its max), -EINVAL (a
 * NUL inside a string, a bool that is not 0/1, an unterminated STRBUF),
 * -EOVERFLOW, -ELOOP.  Thread-safe for concurrent reads of value. */
MUTILS_EXPORT int mutils_size(const struct mutils_type *t, const void *value,
                              size_t *size);

/* Appends the encoding of value (a pointer to t's C representation) to w,
 * in one checked pass.  Either the whole value is appended or the writer's
 * length stays where it was; on failure the bytes between that length and
 * the capacity may have been overwritten (nothing outside the buffer ever
 * is).  Errors: those of mutils_size() (not sticky: the writer is still
 * whole), and -ENOSPC/-ENOMEM (sticky, as for the puts).  A growable writer
 * grows to the exact size needed. */
MUTILS_EXPORT int mutils_write(struct mutils_writer *w,
                               const struct mutils_type *t, const void *value);

/* Encodes value into caller memory [buf, buf + cap) (for instance in place
 * in a multicast slot) and stores the length in *len.  -ENOSPC when it
 * does not fit (*len untouched; bytes of buf may have been overwritten), or
 * the errors of mutils_size(), which take precedence over -ENOSPC.
 * -EINVAL when len is NULL, or buf is NULL and cap is not 0. */
MUTILS_EXPORT int mutils_encode(const struct mutils_type *t, const void *value,
                                void *buf, size_t cap, size_t *len);

/* Reads one value of type t into *out (t's C representation), allocating
 * strings, byte strings, arrays, optional values and maps with alloc (NULL:
 * malloc).  The result is independent of the reader's buffer and is
 * released with mutils_free() (or by resetting the arena).
 * On error (-EBADMSG with the offset in the reader, -ENOMEM, -EINVAL for an
 * unknown kind, or the reader's sticky error) nothing is consumed,
 * everything allocated is freed and *out is zeroed: no partial value is
 * left behind, and mutils_free() on it is a no-op.  -EINVAL (and nothing
 * touched) when r, t or out is NULL, a pack's argument pointer is NULL, or
 * alloc has no alloc function. */
MUTILS_EXPORT int mutils_read(struct mutils_reader *r,
                              const struct mutils_type *t, void *out,
                              const struct mutils_alloc *alloc);

/* Like mutils_read(), but zero-copy where it can: strings, byte strings and
 * arrays of primitives whose wire bytes are already the host
 * representation (little-endian host and, for arrays, elements aligned in
 * the buffer) point into the reader's buffer; they stay valid as long as
 * the buffer does and must not be written through.  Strings are then not
 * NUL-terminated: use len.  What still needs memory (structs in arrays,
 * optional values, maps, misaligned arrays) comes from alloc; an arena is
 * the natural choice.  Release with mutils_free_view() or the arena. */
MUTILS_EXPORT int mutils_read_view(struct mutils_reader *r,
                                   const struct mutils_type *t, void *out,
                                   const struct mutils_alloc *alloc);

/* Frees what mutils_read() allocated in *value with the same alloc, and
 * zeroes *value, so that freeing it again is a no-op.  Also frees a value
 * built by the caller with the same allocator.  t or value may be NULL
 * (nothing happens). */
MUTILS_EXPORT void mutils_free(const struct mutils_type *t, void *value,
                               const struct mutils_alloc *alloc);

/* Frees what mutils_read_view() allocated in *value: everything except the
 * pointers into the source buffer [buf, buf + len) it was read from. */
MUTILS_EXPORT void mutils_free_view(const struct mutils_type *t, void *value,
                                    const struct mutils_alloc *alloc,
                                    const void *buf, size_t len);

/* True when a and b hold the same value: primitives compare by their bits
 * (so NaN equals the same NaN), bools by truth, strings/bytes/arrays by
 * length and contents, optionals by presence and value, maps pairwise in
 * order.  Padding in structs is ignored.  A value is equal to itself (a ==
 * b); false when t is NULL or only one of a and b is. */
MUTILS_EXPORT bool mutils_equal(const struct mutils_type *t, const void *a,
                                const void *b);

/* A stable 64-bit XXH3 fingerprint of the description t: the wire version,
 * and for each node its kind, maximum, struct/argument/field names and
 * sub-descriptors in order (not C offsets or sizes, which differ between
 * hosts).  Equal descriptions give equal fingerprints on every host; any
 * change to types, order, limits or names changes it.  Processes compare
 * fingerprints to refuse incompatible builds.  Returns 0, -ELOOP, -EINVAL
 * (unknown kind) or -ENOMEM. */
MUTILS_EXPORT int mutils_fingerprint(const struct mutils_type *t,
                                     uint64_t *fingerprint);

/* ======================================================================== */
/* Argument packs                                                           */
/* ======================================================================== */

/* An RPC call f(int64_t id, struct mutils_str name, struct mutils_bytes b)
 * is described once:
 *   static const struct mutils_type f_args = MUTILS_ARGS_INIT("f",
 *       MUTILS_ARG("id", &mutils_type_i64),
 *       MUTILS_ARG("name", MUTILS_TYPE_STRING(64)),
 *       MUTILS_ARG("blob", MUTILS_TYPE_BYTES(1 << 20)));
 * and encoded from pointers to the arguments:
 *   const void *args[] = {&id, &name, &blob};
 *   mutils_args_write(w, &f_args, args);
 * The decoder reads into its own variables the same way.  These are the
 * engine functions with value = the array of pointers; same errors, and
 * -EINVAL when pack is not an MUTILS_KIND_ARGS descriptor or an argument
 * pointer is NULL (mutils_args_free() then does nothing), and for the reads
 * when two arguments share memory (nothing is read). */
MUTILS_EXPORT int mutils_args_size(const struct mutils_type *pack,
                                   const void *const args[], size_t *size);
MUTILS_EXPORT int mutils_args_write(struct mutils_writer *w,
                                    const struct mutils_type *pack,
                                    const void *const args[]);
MUTILS_EXPORT int mutils_args_read(struct mutils_reader *r,
                                   const struct mutils_type *pack,
                                   void *const args[],
                                   const struct mutils_alloc *alloc);
MUTILS_EXPORT int mutils_args_read_view(struct mutils_reader *r,
                                        const struct mutils_type *pack,
                                        void *const args[],
                                        const struct mutils_alloc *alloc);
MUTILS_EXPORT void mutils_args_free(const struct mutils_type *pack,
                                    void *const args[],
                                    const struct mutils_alloc *alloc);

#ifdef __cplusplus
}
#endif

#endif
