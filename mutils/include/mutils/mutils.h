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
 *  -ENOSPC     a fixed-size writer has no room; nothing was written
 *  -ENOMEM     a growable writer or an allocator could not get memory
 *  -ERANGE     a value's length or count exceeds its declared maximum
 *              (writing), or a caller buffer is too small
 *  -EOVERFLOW  size arithmetic would overflow
 *  -EBADMSG    malformed or truncated input (reading); the reader records the
 *              offset where the failing value starts
 *  -ELOOP      nesting deeper than MUTILS_MAX_DEPTH
 *  -EINVAL     bad argument or descriptor (e.g. a NUL inside a text string)
 *
 * Threading: no global state.  A writer, reader or arena is used by one
 * thread at a time; distinct objects may be used concurrently.  Descriptors
 * are read-only and can be shared by any number of threads.
 */
#ifndef MUTILS_MUTILS_H
#define MUTILS_MUTILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Returns a static, human-readable description of a negative errno returned
 * by this library (or of any errno).  Never NULL.  Thread-safe. */
MUTILS_EXPORT const char *mutils_strerror(int err);

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
 * (initial_cap may be 0).  Release with mutils_writer_fini(), or take the
 * buffer with mutils_writer_steal().  Returns 0 or -ENOMEM. */
MUTILS_EXPORT int mutils_writer_init_growable(struct mutils_writer *w,
                                              size_t initial_cap);

/* Frees a growable writer's buffer (no-op for a fixed writer). */
MUTILS_EXPORT void mutils_writer_fini(struct mutils_writer *w);

/* Takes ownership of a growable writer's buffer (free() it) and stores its
 * length in *len; the writer is left empty and may be reused or finished.
 * For a fixed writer returns the caller's buffer (not owned).  May return
 * NULL when nothing was ever written. */
MUTILS_EXPORT void *mutils_writer_steal(struct mutils_writer *w, size_t *len);

/* Bytes written so far, and the start of the written bytes.  The data
 * pointer of a growable writer is valid until its next put or fini. */
MUTILS_EXPORT size_t mutils_writer_len(const struct mutils_writer *w);
MUTILS_EXPORT const void *mutils_writer_data(const struct mutils_writer *w);

/* The first error the writer met, or 0. */
MUTILS_EXPORT int mutils_writer_error(const struct mutils_writer *w);

/* Forgets what was written (length back to 0) and clears the error.  A
 * growable writer keeps its buffer. */
MUTILS_EXPORT void mutils_writer_reset(struct mutils_writer *w);

/* Reserves n bytes at the current position and stores a pointer to them in
 * *out (valid until the next put on a growable writer); the caller fills
 * them.  Returns 0, -ENOSPC, -ENOMEM or -EOVERFLOW. */
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

/* Copies n raw bytes (no length prefix). */
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

/* Current offset, and bytes left. */
MUTILS_EXPORT size_t mutils_reader_offset(const struct mutils_reader *r);
MUTILS_EXPORT size_t mutils_reader_remaining(const struct mutils_reader *r);

/* The first error, or 0; when non-zero and offset is not NULL, stores the
 * offset where the failing value starts. */
MUTILS_EXPORT int mutils_reader_error(const struct mutils_reader *r,
                                      size_t *offset);

/* Returns the sticky error if any, else -EBADMSG when bytes are left over
 * (recorded at the current offset), else 0.  Call after the last get when
 * the whole buffer must be one message. */
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

#ifdef __cplusplus
}
#endif

#endif
