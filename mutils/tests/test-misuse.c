/* The public API used the way a careless or hostile client would: NULL
 * objects and outputs, huge sizes, inputs that overlap the writer's or
 * reader's own buffer, descriptors of the wrong kind, reuse after free.
 * Each must give a clear error (or nothing) and lose nothing; the sanitizer
 * build turns any memory error here into a failure. */
#include <mutils/mutils.h>

#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test-mutils.h"

/* A size no allocator should be asked for (above MUTILS_MAX_ALLOC). */
#define HUGE_SIZE ((size_t)SIZE_MAX / 2)

START_TEST(strerror_any_int)
{
    static const int codes[] = {INT_MIN, INT_MIN + 1, -1, 0, 1, INT_MAX};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        ck_assert_ptr_nonnull(mutils_strerror(codes[i]));
    ck_assert_str_eq(mutils_strerror(INT_MIN), "unknown error");
    ck_assert_str_eq(mutils_strerror(-EBADMSG), mutils_strerror(EBADMSG));
    ck_assert_str_eq(mutils_strerror(-12345), "unknown error");
    /* Any errno at all is named, not "unknown error". */
    ck_assert_str_eq(mutils_strerror(-EAGAIN),
                     "Resource temporarily unavailable");
}
END_TEST

START_TEST(writer_null_object)
{
    uint8_t b[4] = {0};
    void *p = &b;
    size_t len = 99;
    mutils_writer_init(NULL, b, sizeof b);
    ck_assert_int_eq(mutils_writer_init_growable(NULL, 16), -EINVAL);
    mutils_writer_fini(NULL);
    mutils_writer_reset(NULL);
    ck_assert_ptr_null(mutils_writer_steal(NULL, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(mutils_writer_steal(NULL, NULL));
    ck_assert_uint_eq(mutils_writer_len(NULL), MUTILS_NO_SIZE);
    ck_assert_ptr_null(mutils_writer_data(NULL));
    ck_assert_int_eq(mutils_writer_error(NULL), -EINVAL);
    ck_assert_int_eq(mutils_writer_reserve(NULL, 1, &p), -EINVAL);
    ck_assert_ptr_eq(p, &b);
    ck_assert_int_eq(mutils_put_u8(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_u16(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_u32(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_u64(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_i8(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_i16(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_i32(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_i64(NULL, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_bool(NULL, true), -EINVAL);
    ck_assert_int_eq(mutils_put_f32(NULL, 1.0f), -EINVAL);
    ck_assert_int_eq(mutils_put_f64(NULL, 1.0), -EINVAL);
    ck_assert_int_eq(mutils_put_raw(NULL, b, 1), -EINVAL);
    ck_assert_int_eq(mutils_put_raw(NULL, b, 0), -EINVAL);
    ck_assert_int_eq(mutils_put_bytes(NULL, b, 1, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_string(NULL, "x", 8), -EINVAL);
    ck_assert_int_eq(mutils_put_string(NULL, NULL, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_string_n(NULL, "x", 1, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_count(NULL, 1, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_present(NULL, true), -EINVAL);
    ck_assert_int_eq(mutils_put_array(NULL, MUTILS_KIND_U8, b, 1, 8), -EINVAL);
    uint32_t v = 1;
    ck_assert_int_eq(mutils_write(NULL, &mutils_type_u32, &v), -EINVAL);
}
END_TEST

START_TEST(writer_null_arguments_are_not_sticky)
{
    uint8_t buf[16];
    memset(buf, 0xee, sizeof buf);
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_writer_reserve(&w, 4, NULL), -EINVAL);
    ck_assert_int_eq(mutils_writer_reserve(&w, 0, NULL), -EINVAL);
    ck_assert_int_eq(mutils_put_raw(&w, NULL, 4), -EINVAL);
    ck_assert_int_eq(mutils_put_raw(&w, NULL, 0), 0);
    ck_assert_int_eq(mutils_put_bytes(&w, NULL, 4, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_string(&w, NULL, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_string_n(&w, NULL, 3, 8), -EINVAL);
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_U32, NULL, 2, 8),
                     -EINVAL);
    ck_assert_int_eq(mutils_put_array(&w, (enum mutils_kind)1000, buf, 1, 8),
                     -EINVAL);
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_STRING, buf, 1, 8),
                     -EINVAL);
    uint32_t v = 7;
    ck_assert_int_eq(mutils_write(&w, NULL, &v), -EINVAL);
    ck_assert_int_eq(mutils_write(&w, &mutils_type_u32, NULL), -EINVAL);
    /* Nothing written, nothing sticky: the writer still works. */
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    for (size_t i = 0; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0xee);
    ck_assert_int_eq(mutils_put_u32(&w, 5), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 4);
}
END_TEST

START_TEST(writer_fini_twice_and_reuse)
{
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 8), 0);
    ck_assert_int_eq(mutils_put_u64(&w, 1), 0);
    mutils_writer_fini(&w);
    mutils_writer_fini(&w);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    ck_assert_ptr_null(mutils_writer_data(&w));
    size_t len = 5;
    ck_assert_ptr_null(mutils_writer_steal(&w, &len));
    ck_assert_uint_eq(len, 0);

    /* A fixed writer that met -ENOSPC, finished, is empty and clean. */
    uint8_t one;
    mutils_writer_init(&w, &one, 1);
    ck_assert_int_eq(mutils_put_u16(&w, 1), -ENOSPC);
    mutils_writer_fini(&w);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
}
END_TEST

START_TEST(growable_writer_huge_sizes)
{
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, SIZE_MAX), -ENOMEM);
    mutils_writer_fini(&w);
    ck_assert_int_eq(mutils_writer_init_growable(&w, HUGE_SIZE), -ENOMEM);
    mutils_writer_fini(&w);
    ck_assert_int_eq(mutils_writer_init_growable(&w, MUTILS_MAX_ALLOC + 1),
                     -ENOMEM);
    mutils_writer_fini(&w);

    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 3, HUGE_SIZE,
                                   MUTILS_MAX_ALLOC + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
        ck_assert_int_eq(mutils_put_u32(&w, 0xabcd), 0);
        void *p = &w;
        int rc = mutils_writer_reserve(&w, sizes[i], &p);
        ck_assert_msg(rc == -ENOMEM || rc == -EOVERFLOW, "%zu: %d", sizes[i],
                      rc);
        ck_assert_ptr_eq(p, &w);
        ck_assert_uint_eq(mutils_writer_len(&w), 4);
        ck_assert_int_eq(mutils_writer_error(&w), rc); /* sticky */
        /* The bytes are never read when the room cannot be had. */
        uint8_t small[1] = {0};
        mutils_writer_reset(&w);
        rc = mutils_put_raw(&w, small, sizes[i]);
        ck_assert_msg(rc == -ENOMEM || rc == -EOVERFLOW, "%d", rc);
        mutils_writer_reset(&w);
        ck_assert_int_eq(mutils_put_u8(&w, 1), 0);
        mutils_writer_fini(&w);
    }
}
END_TEST

/* Appends the writer's own bytes to itself, again and again: each append
 * moves the buffer while the source still points into it. */
START_TEST(put_from_own_growable_buffer)
{
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 8), 0);
    ck_assert_int_eq(mutils_put_raw(&w, "abcdefgh", 8), 0);
    for (int round = 0; round < 8; round++) {
        size_t len = mutils_writer_len(&w);
        ck_assert_int_eq(mutils_put_raw(&w, mutils_writer_data(&w), len), 0);
        ck_assert_uint_eq(mutils_writer_len(&w), 2 * len);
    }
    const char *d = mutils_writer_data(&w);
    for (size_t i = 0; i < mutils_writer_len(&w); i++)
        ck_assert_int_eq(d[i], "abcdefgh"[i % 8]);
    mutils_writer_fini(&w);

    /* Byte strings, text and arrays taken from the writer itself. */
    ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
    ck_assert_int_eq(mutils_put_raw(&w, "hello", 5), 0);
    for (int round = 0; round < 6; round++) {
        size_t len = mutils_writer_len(&w);
        const char *self = mutils_writer_data(&w);
        ck_assert_int_eq(mutils_put_bytes(&w, self, 5, 5), 0);
        self = mutils_writer_data(&w);
        ck_assert_int_eq(mutils_put_string_n(&w, self, 5, 5), 0);
        self = mutils_writer_data(&w);
        ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_U8, self, 5, 5), 0);
        ck_assert_uint_eq(mutils_writer_len(&w), len + 3 * 9);
        /* Make the next round grow the buffer from its first put. */
        void *p;
        ck_assert_int_eq(mutils_writer_reserve(&w, len, &p), 0);
        memset(p, 'z', len);
    }
    struct mutils_reader r;
    mutils_reader_init(&r, mutils_writer_data(&w), mutils_writer_len(&w));
    char raw[5];
    ck_assert_int_eq(mutils_get_raw(&r, raw, 5), 0);
    ck_assert_int_eq(memcmp(raw, "hello", 5), 0);
    const void *bytes;
    size_t n;
    ck_assert_int_eq(mutils_get_bytes_view(&r, &bytes, &n, 5), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(bytes, "hello", 5), 0);
    char text[6];
    ck_assert_int_eq(mutils_get_string(&r, text, sizeof text, NULL, 5), 0);
    ck_assert_str_eq(text, "hello");
    uint8_t arr[5];
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_U8, arr, 5, &n, 5), 0);
    ck_assert_int_eq(memcmp(arr, "hello", 5), 0);
    mutils_writer_fini(&w);

    /* A C string that lies in the writer's buffer. */
    ck_assert_int_eq(mutils_writer_init_growable(&w, 6), 0);
    ck_assert_int_eq(mutils_put_raw(&w, "words", 6), 0); /* NUL included */
    ck_assert_int_eq(mutils_put_string(&w, mutils_writer_data(&w), 16), 0);
    mutils_reader_init(&r, mutils_writer_data(&w), mutils_writer_len(&w));
    ck_assert_int_eq(mutils_get_raw(&r, raw, 5), 0);
    ck_assert_int_eq(mutils_get_raw(&r, raw, 1), 0);
    ck_assert_int_eq(mutils_get_string(&r, text, sizeof text, NULL, 16), 0);
    ck_assert_str_eq(text, "words");
    ck_assert_int_eq(mutils_reader_finish(&r), 0);
    mutils_writer_fini(&w);
}
END_TEST

START_TEST(put_overlapping_fixed_buffer)
{
    uint8_t buf[16] = {0};
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_put_raw(&w, "abcd", 4), 0);
    /* Source [2, 6) overlaps the destination [4, 8). */
    ck_assert_int_eq(mutils_put_raw(&w, buf + 2, 4), 0);
    ck_assert_int_eq(memcmp(buf, "abcdcd\0\0", 8), 0);
    /* A byte string whose bytes are where its prefix goes. */
    memcpy(buf + 8, "wxyz", 4);
    ck_assert_int_eq(mutils_put_bytes(&w, buf + 8, 4, 4), 0);
    ck_assert_int_eq(memcmp(buf + 8, "\4\0\0\0wxyz", 8), 0);
}
END_TEST

struct named {
    struct mutils_str name;
    struct mutils_bytes blob;
    uint32_t id;
};

static const struct mutils_type named_type = MUTILS_STRUCT_INIT(
    struct named, MUTILS_FIELD(struct named, name, MUTILS_TYPE_STRING(1 << 20)),
    MUTILS_FIELD(struct named, blob, MUTILS_TYPE_BYTES(1 << 20)),
    MUTILS_FIELD(struct named, id, &mutils_type_u32));

/* A value viewed from the writer's own bytes, written again into it: the
 * writer grows while the value still points into its old buffer. */
START_TEST(write_value_viewed_from_own_buffer)
{
    static char text[3000], blob[3000];
    memset(text, 't', sizeof text);
    memset(blob, 0xb1, sizeof blob);
    struct named v = {{text, sizeof text}, {blob, sizeof blob}, 42};
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
    ck_assert_int_eq(mutils_write(&w, &named_type, &v), 0);
    size_t one = mutils_writer_len(&w);
    for (int round = 0; round < 5; round++) {
        struct mutils_arena arena;
        mutils_arena_init(&arena, NULL, 0);
        struct mutils_reader r;
        mutils_reader_init(&r, mutils_writer_data(&w), one);
        struct named view;
        ck_assert_int_eq(mutils_read_view(&r, &named_type, &view,
                                          mutils_arena_allocator(&arena)),
                         0);
        ck_assert_int_eq(mutils_write(&w, &named_type, &view), 0);
        mutils_arena_fini(&arena);
    }
    ck_assert_uint_eq(mutils_writer_len(&w), 6 * one);
    const uint8_t *d = mutils_writer_data(&w);
    for (int i = 1; i < 6; i++)
        ck_assert_int_eq(memcmp(d, d + i * one, one), 0);
    mutils_writer_fini(&w);
}
END_TEST

/* A value viewed from the writer's bytes, written again after a reset one
 * byte further on: each string overlaps the place it is written to. */
START_TEST(write_value_over_its_own_view)
{
    static char text[300], blob[300];
    for (size_t i = 0; i < sizeof text; i++) {
        text[i] = (char)('a' + i % 26);
        blob[i] = (char)(i % 251);
    }
    struct named v = {{text, sizeof text}, {blob, sizeof blob}, 42};
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 4096), 0);
    ck_assert_int_eq(mutils_write(&w, &named_type, &v), 0);
    size_t len = mutils_writer_len(&w);
    uint8_t *expect = malloc(len);
    ck_assert_ptr_nonnull(expect);
    memcpy(expect, mutils_writer_data(&w), len);
    struct mutils_reader r;
    mutils_reader_init(&r, mutils_writer_data(&w), len);
    struct named view;
    ck_assert_int_eq(mutils_read_view(&r, &named_type, &view, NULL), 0);
    mutils_writer_reset(&w);
    ck_assert_int_eq(mutils_put_u8(&w, 0x42), 0);
    ck_assert_int_eq(mutils_write(&w, &named_type, &view), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 1 + len);
    const uint8_t *d = mutils_writer_data(&w);
    ck_assert_uint_eq(d[0], 0x42);
    ck_assert_int_eq(memcmp(d + 1, expect, len), 0);
    free(expect);
    mutils_writer_fini(&w);
}
END_TEST

START_TEST(reader_null_object)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    bool b;
    float f;
    double d;
    const void *p;
    const char *s;
    char text[4];
    size_t n, off = 77;
    mutils_reader_init(NULL, "abc", 3);
    ck_assert_uint_eq(mutils_reader_offset(NULL), MUTILS_NO_SIZE);
    ck_assert_uint_eq(mutils_reader_remaining(NULL), MUTILS_NO_SIZE);
    ck_assert_int_eq(mutils_reader_error(NULL, &off), -EINVAL);
    ck_assert_uint_eq(off, 77);
    ck_assert_int_eq(mutils_reader_finish(NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_u8(NULL, &u8), -EINVAL);
    ck_assert_int_eq(mutils_get_u16(NULL, &u16), -EINVAL);
    ck_assert_int_eq(mutils_get_u32(NULL, &u32), -EINVAL);
    ck_assert_int_eq(mutils_get_u64(NULL, &u64), -EINVAL);
    ck_assert_int_eq(mutils_get_i8(NULL, &i8), -EINVAL);
    ck_assert_int_eq(mutils_get_i16(NULL, &i16), -EINVAL);
    ck_assert_int_eq(mutils_get_i32(NULL, &i32), -EINVAL);
    ck_assert_int_eq(mutils_get_i64(NULL, &i64), -EINVAL);
    ck_assert_int_eq(mutils_get_bool(NULL, &b), -EINVAL);
    ck_assert_int_eq(mutils_get_present(NULL, &b), -EINVAL);
    ck_assert_int_eq(mutils_get_f32(NULL, &f), -EINVAL);
    ck_assert_int_eq(mutils_get_f64(NULL, &d), -EINVAL);
    ck_assert_int_eq(mutils_get_raw(NULL, text, 1), -EINVAL);
    ck_assert_int_eq(mutils_get_raw_view(NULL, &p, 1), -EINVAL);
    ck_assert_int_eq(mutils_get_bytes_view(NULL, &p, &n, 4), -EINVAL);
    ck_assert_int_eq(mutils_get_bytes(NULL, text, 4, &n, 4), -EINVAL);
    ck_assert_int_eq(mutils_get_string_view(NULL, &s, &n, 4), -EINVAL);
    ck_assert_int_eq(mutils_get_string(NULL, text, 4, &n, 4), -EINVAL);
    ck_assert_int_eq(mutils_get_count(NULL, &n, 4), -EINVAL);
    ck_assert_int_eq(mutils_get_array(NULL, MUTILS_KIND_U8, text, 4, &n, 4),
                     -EINVAL);
    uint32_t v;
    ck_assert_int_eq(mutils_read(NULL, &mutils_type_u32, &v, NULL), -EINVAL);
    ck_assert_int_eq(mutils_read_view(NULL, &mutils_type_u32, &v, NULL),
                     -EINVAL);
}
END_TEST

/* Every get with a NULL output: -EINVAL, nothing consumed, not sticky. */
START_TEST(reader_null_outputs_consume_nothing)
{
    /* u32 length 2, "hi", then eight more bytes. */
    static const uint8_t msg[] = {2, 0, 0, 0, 'h', 'i', 1, 1, 1, 1, 1, 1, 1, 1};
    struct mutils_reader r;
    mutils_reader_init(&r, msg, sizeof msg);
    const void *p;
    const char *s;
    char text[8];
    size_t n;
    ck_assert_int_eq(mutils_get_u8(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_u16(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_u32(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_u64(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_i8(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_i16(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_i32(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_i64(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_bool(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_present(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_f32(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_f64(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_get_raw(&r, NULL, 2), -EINVAL);
    ck_assert_int_eq(mutils_get_raw_view(&r, NULL, 2), -EINVAL);
    ck_assert_int_eq(mutils_get_bytes_view(&r, NULL, &n, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_bytes_view(&r, &p, NULL, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_bytes(&r, NULL, 8, &n, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_bytes(&r, text, 8, NULL, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_string_view(&r, NULL, &n, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_string_view(&r, &s, NULL, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_string(&r, NULL, 8, &n, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_count(&r, NULL, 8), -EINVAL);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_U8, NULL, 8, &n, 8),
                     -EINVAL);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_U8, text, 8, NULL, 8),
                     -EINVAL);
    ck_assert_int_eq(mutils_read(&r, &mutils_type_u32, NULL, NULL), -EINVAL);
    uint32_t v = 5;
    ck_assert_int_eq(mutils_read(&r, NULL, &v, NULL), -EINVAL);
    ck_assert_uint_eq(v, 5);
    /* An allocator without an alloc function is refused up front. */
    const struct mutils_alloc no_alloc = {NULL, NULL, NULL};
    struct mutils_str str = {"x", 1};
    ck_assert_int_eq(mutils_read(&r, MUTILS_TYPE_STRING(8), &str, &no_alloc),
                     -EINVAL);
    ck_assert_ptr_nonnull(str.ptr);

    ck_assert_uint_eq(mutils_reader_offset(&r), 0);
    ck_assert_int_eq(mutils_reader_error(&r, NULL), 0);
    /* Empty outputs are fine where nothing is stored. */
    ck_assert_int_eq(mutils_get_raw(&r, NULL, 0), 0);
    ck_assert_int_eq(mutils_get_string(&r, text, sizeof text, &n, 8), 0);
    ck_assert_str_eq(text, "hi");
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(mutils_reader_remaining(&r), 8);
}
END_TEST

/* Copies out of the reader onto its own buffer. */
START_TEST(get_into_own_buffer)
{
    uint8_t buf[32] = "abcdefgh";
    struct mutils_reader r;
    mutils_reader_init(&r, buf, 8);
    ck_assert_int_eq(mutils_get_raw(&r, buf + 1, 4), 0);
    ck_assert_int_eq(memcmp(buf, "aabcdfgh", 8), 0);

    /* A string and a byte string moved one byte to the left. */
    memcpy(buf, "\3\0\0\0xyz", 7);
    mutils_reader_init(&r, buf, 7);
    char *dst = (char *)buf + 3;
    size_t n;
    ck_assert_int_eq(mutils_get_string(&r, dst, 4, &n, 8), 0);
    ck_assert_str_eq(dst, "xyz");
    memcpy(buf, "\3\0\0\0xyz", 7);
    mutils_reader_init(&r, buf, 7);
    ck_assert_int_eq(mutils_get_bytes(&r, buf + 5, 3, &n, 8), 0);
    ck_assert_int_eq(memcmp(buf + 5, "xyz", 3), 0);

    /* An array of u16 copied over its own count prefix. */
    memcpy(buf, "\4\0\0\0\1\0\2\0\3\0\4\0", 12);
    mutils_reader_init(&r, buf, 12);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_U16, buf + 2, 4, &n, 4),
                     0);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(memcmp(buf + 2, "\1\0\2\0\3\0\4\0", 8), 0);

    /* A text buffer (STRBUF) read in place over its own wire bytes. */
    memcpy(buf, "\6\0\0\0abcdef", 10);
    mutils_reader_init(&r, buf, 10);
    ck_assert_int_eq(mutils_read(&r, MUTILS_TYPE_STRBUF(16), buf, NULL), 0);
    ck_assert_str_eq((char *)buf, "abcdef");
}
END_TEST

START_TEST(arena_null_and_bad_requests)
{
    mutils_arena_init(NULL, NULL, 0);
    mutils_arena_reset(NULL);
    mutils_arena_fini(NULL);
    ck_assert_ptr_null(mutils_arena_alloc(NULL, 8, 8));
    ck_assert_ptr_null(mutils_arena_allocator(NULL));

    alignas(max_align_t) uint8_t block[64];
    struct mutils_arena a;
    mutils_arena_init(&a, block, sizeof block);
    ck_assert_ptr_null(mutils_arena_alloc(&a, 8, 3));
    ck_assert_ptr_null(mutils_arena_alloc(&a, 8, 2 * alignof(max_align_t)));
    ck_assert_ptr_null(mutils_arena_alloc(&a, SIZE_MAX, 1));
    ck_assert_ptr_null(mutils_arena_alloc(&a, SIZE_MAX - 8, 0));
    ck_assert_ptr_null(mutils_arena_alloc(&a, HUGE_SIZE, 8));
    ck_assert_ptr_null(mutils_arena_alloc(&a, MUTILS_MAX_ALLOC + 1, 8));
    /* The failures took nothing: the caller's block is still all there. */
    ck_assert_ptr_eq(mutils_arena_alloc(&a, 64, 1), block);
    void *zero = mutils_arena_alloc(&a, 0, 1);
    ck_assert_ptr_nonnull(zero);
    mutils_arena_fini(&a);
    mutils_arena_fini(&a);
    ck_assert_ptr_eq(mutils_arena_alloc(&a, 8, 8), block);
    mutils_arena_fini(&a);
}
END_TEST

/* The natural use: one arena, reset after each message.  The blocks it
 * mallocs must not keep doubling across resets. */
START_TEST(arena_reset_per_message)
{
    struct mutils_arena a;
    mutils_arena_init(&a, NULL, 0);
    for (int msg = 0; msg < 80; msg++) {
        uint8_t *p = mutils_arena_alloc(&a, 100, 8);
        ck_assert_msg(p != NULL, "message %d", msg);
        memset(p, msg, 100);
        mutils_arena_reset(&a);
    }
    mutils_arena_fini(&a);
}
END_TEST

START_TEST(engine_null_arguments)
{
    uint32_t v = 9;
    size_t size = 123, len = 321;
    uint8_t buf[8] = {0};
    uint64_t fp = 5;
    ck_assert_uint_eq(mutils_type_c_size(NULL), MUTILS_NO_SIZE);
    ck_assert_int_eq(mutils_type_check(NULL), -EINVAL);
    ck_assert_int_eq(mutils_size(NULL, &v, &size), -EINVAL);
    ck_assert_int_eq(mutils_size(&mutils_type_u32, NULL, &size), -EINVAL);
    ck_assert_int_eq(mutils_size(&mutils_type_u32, &v, NULL), -EINVAL);
    ck_assert_uint_eq(size, 123);
    ck_assert_int_eq(mutils_encode(NULL, &v, buf, sizeof buf, &len), -EINVAL);
    ck_assert_int_eq(mutils_encode(&mutils_type_u32, NULL, buf, 8, &len),
                     -EINVAL);
    ck_assert_int_eq(mutils_encode(&mutils_type_u32, &v, buf, 8, NULL),
                     -EINVAL);
    ck_assert_int_eq(mutils_encode(&mutils_type_u32, &v, NULL, 8, &len),
                     -EINVAL);
    ck_assert_uint_eq(len, 321);
    for (size_t i = 0; i < sizeof buf; i++)
        ck_assert_uint_eq(buf[i], 0);
    ck_assert_int_eq(mutils_encode(&mutils_type_u32, &v, NULL, 0, &len),
                     -ENOSPC);
    ck_assert_int_eq(mutils_fingerprint(NULL, &fp), -EINVAL);
    ck_assert_int_eq(mutils_fingerprint(&mutils_type_u32, NULL), -EINVAL);
    ck_assert_uint_eq(fp, 5);
    mutils_free(NULL, &v, NULL);
    mutils_free(&mutils_type_u32, NULL, NULL);
    mutils_free_view(NULL, &v, NULL, buf, sizeof buf);
    ck_assert_uint_eq(v, 9);
    ck_assert(!mutils_equal(NULL, &v, &v));
    ck_assert(!mutils_equal(&mutils_type_u32, &v, NULL));
    ck_assert(!mutils_equal(&mutils_type_u32, NULL, &v));
    ck_assert(mutils_equal(&mutils_type_u32, &v, &v));
}
END_TEST

/* A struct handed over without its field table (num_fields but no
 * fields) is refused at the top instead of being walked. */
START_TEST(engine_struct_without_fields)
{
    static const struct mutils_type broken = {
        .kind = MUTILS_KIND_STRUCT, .c_size = 8, .num_fields = 2};
    uint64_t v = 1;
    size_t size;
    uint8_t buf[16];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_type_check(&broken), -EINVAL);
    ck_assert_int_eq(mutils_size(&broken, &v, &size), -EINVAL);
    ck_assert_int_eq(mutils_write(&w, &broken, &v), -EINVAL);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    struct mutils_reader r;
    mutils_reader_init(&r, buf, sizeof buf);
    ck_assert_int_eq(mutils_read(&r, &broken, &v, NULL), -EINVAL);
    ck_assert_uint_eq(mutils_reader_offset(&r), 0);
    mutils_free(&broken, &v, NULL);
}
END_TEST

static const struct mutils_type call_args =
    MUTILS_ARGS_INIT("call", MUTILS_ARG("id", &mutils_type_u64),
                     MUTILS_ARG("name", MUTILS_TYPE_STRING(16)));

START_TEST(args_with_missing_pointer)
{
    uint64_t id = 7;
    struct mutils_str name = {"bob", 3};
    const void *const partial[] = {&id, NULL};
    const void *const whole[] = {&id, &name};
    size_t size = 55;
    ck_assert_int_eq(mutils_args_size(&call_args, partial, &size), -EINVAL);
    ck_assert_int_eq(mutils_args_size(&call_args, NULL, &size), -EINVAL);
    ck_assert_int_eq(mutils_args_size(NULL, whole, &size), -EINVAL);
    ck_assert_uint_eq(size, 55);
    uint8_t buf[64];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_args_write(&w, &call_args, partial), -EINVAL);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    ck_assert_int_eq(mutils_args_write(&w, &call_args, whole), 0);

    uint64_t out_id = 1;
    struct mutils_str out_name = {NULL, 0};
    void *const out_partial[] = {&out_id, NULL};
    void *const out_whole[] = {&out_id, &out_name};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, mutils_writer_len(&w));
    ck_assert_int_eq(mutils_args_read(&r, &call_args, out_partial, NULL),
                     -EINVAL);
    ck_assert_int_eq(mutils_args_read_view(&r, &call_args, out_partial, NULL),
                     -EINVAL);
    ck_assert_uint_eq(out_id, 1);
    ck_assert_uint_eq(mutils_reader_offset(&r), 0);
    ck_assert_int_eq(mutils_reader_error(&r, NULL), 0);
    mutils_args_free(&call_args, out_partial, NULL); /* nothing to free */
    ck_assert_int_eq(mutils_args_read(&r, &call_args, out_whole, NULL), 0);
    ck_assert_uint_eq(out_id, 7);
    ck_assert_str_eq(out_name.ptr, "bob");
    mutils_args_free(&call_args, out_whole, NULL);
    ck_assert_ptr_null(out_name.ptr);
    mutils_args_free(&call_args, out_whole, NULL); /* twice: a no-op */
}
END_TEST

static const struct mutils_type pair = MUTILS_STRUCT_INIT(
    struct mutils_str, MUTILS_FIELD(struct mutils_str, len, &mutils_type_u64));

static const struct mutils_type two_names =
    MUTILS_ARGS_INIT("two", MUTILS_ARG("a", MUTILS_TYPE_STRING(16)),
                     MUTILS_ARG("b", MUTILS_TYPE_STRING(16)));

/* Two arguments read into the same variable: the first string would
 * leak and the free that follows would free the second twice. */
START_TEST(args_read_into_shared_memory)
{
    struct mutils_str a = {"alice", 5}, b = {"bob", 3};
    const void *const in[] = {&a, &b};
    uint8_t buf[64];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_args_write(&w, &two_names, in), 0);
    /* Writing the same variable twice is fine: it is only read. */
    const void *const twice[] = {&a, &a};
    ck_assert_int_eq(mutils_args_write(&w, &two_names, twice), 0);

    struct mutils_str s = {NULL, 0};
    char raw[sizeof(struct mutils_str) * 2];
    void *const same[] = {&s, &s};
    void *const straddle[] = {raw, raw + sizeof(struct mutils_str) / 2};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, mutils_writer_len(&w));
    ck_assert_int_eq(mutils_args_read(&r, &two_names, same, NULL), -EINVAL);
    ck_assert_int_eq(mutils_args_read(&r, &two_names, straddle, NULL), -EINVAL);
    ck_assert_int_eq(mutils_args_read_view(&r, &two_names, same, NULL),
                     -EINVAL);
    ck_assert_ptr_null(s.ptr);
    ck_assert_uint_eq(mutils_reader_offset(&r), 0);
    struct mutils_str x, y;
    void *const apart[] = {&x, &y};
    ck_assert_int_eq(mutils_args_read(&r, &two_names, apart, NULL), 0);
    ck_assert_str_eq(x.ptr, "alice");
    ck_assert_str_eq(y.ptr, "bob");
    mutils_args_free(&two_names, apart, NULL);
}
END_TEST

/* A struct descriptor given to the args_* functions would read the array
 * of pointers as that struct. */
START_TEST(args_functions_need_a_pack)
{
    uint64_t x = 3;
    const void *const args[] = {&x};
    void *const out[] = {&x};
    size_t size = 11;
    uint8_t buf[32] = {0};
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_args_size(&pair, args, &size), -EINVAL);
    ck_assert_int_eq(mutils_args_size(&mutils_type_u64, args, &size), -EINVAL);
    ck_assert_uint_eq(size, 11);
    ck_assert_int_eq(mutils_args_write(&w, &pair, args), -EINVAL);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    struct mutils_reader r;
    mutils_reader_init(&r, buf, sizeof buf);
    ck_assert_int_eq(mutils_args_read(&r, &pair, out, NULL), -EINVAL);
    ck_assert_int_eq(mutils_args_read_view(&r, &pair, out, NULL), -EINVAL);
    ck_assert_uint_eq(mutils_reader_offset(&r), 0);
    mutils_args_free(&pair, out, NULL);
    ck_assert_uint_eq(x, 3);
}
END_TEST

/* After a failed read the value may be freed, also when the failure was
 * an earlier sticky error and the output was never initialised. */
START_TEST(read_after_sticky_error_leaves_value_freeable)
{
    static const uint8_t msg[] = {1, 0, 0, 0, 'a'};
    struct mutils_reader r;
    mutils_reader_init(&r, msg, sizeof msg);
    uint64_t big;
    ck_assert_int_eq(mutils_get_u64(&r, &big), -EBADMSG);
    struct named v;
    memset(&v, 0xa5, sizeof v);
    ck_assert_int_eq(mutils_read(&r, &named_type, &v, NULL), -EBADMSG);
    ck_assert_ptr_null(v.name.ptr);
    ck_assert_ptr_null(v.blob.ptr);
    ck_assert_uint_eq(v.id, 0);
    mutils_free(&named_type, &v, NULL);
    memset(&v, 0xa5, sizeof v);
    ck_assert_int_eq(mutils_read_view(&r, &named_type, &v, NULL), -EBADMSG);
    ck_assert_ptr_null(v.name.ptr);
    mutils_free(&named_type, &v, NULL);
}
END_TEST

/* Malformed C values (a length without a pointer) compare without a
 * crash, and never equal a well-formed one. */
START_TEST(equal_on_malformed_values)
{
    struct named a = {{NULL, 3}, {NULL, 0}, 1};
    struct named b = {{"abc", 3}, {NULL, 0}, 1};
    ck_assert(!mutils_equal(&named_type, &a, &b));
    ck_assert(!mutils_equal(&named_type, &b, &a));
    ck_assert(mutils_equal(&named_type, &a, &a));
    uint8_t bytes[4] = {1, 2, 3, 4};
    struct mutils_str strs[4] = {{"a", 1}, {"b", 1}, {"c", 1}, {"d", 1}};
    struct mutils_array x = {NULL, 4}, y = {bytes, 4}, z = {strs, 4};
    const struct mutils_type *arr = MUTILS_TYPE_ARRAY(&mutils_type_u8, 8);
    const struct mutils_type *sarr =
        MUTILS_TYPE_ARRAY(MUTILS_TYPE_STRING(8), 8);
    ck_assert(!mutils_equal(arr, &x, &y));
    ck_assert(!mutils_equal(arr, &y, &x));
    ck_assert(!mutils_equal(sarr, &z, &x));
    ck_assert(!mutils_equal(sarr, &x, &z));
    size_t size;
    ck_assert_int_eq(mutils_size(&named_type, &a, &size), -EINVAL);
    ck_assert_int_eq(mutils_size(arr, &x, &size), -EINVAL);
}
END_TEST

/* Elements without wire bytes (an empty struct) cost no input, so four
 * hostile bytes can announce four billion of them: reading, sizing,
 * writing, comparing and freeing them must not loop over each. */
static const struct mutils_type nothing_type = {
    .kind = MUTILS_KIND_STRUCT, .name = "nothing", .c_size = 0, .c_align = 1};
static const struct mutils_type many_nothings =
    MUTILS_ARRAY_INIT(&nothing_type, MUTILS_MAX_LEN);
static const struct mutils_type nothing_map =
    MUTILS_MAP_INIT(&nothing_type, &nothing_type, MUTILS_MAX_LEN);

START_TEST(count_of_wireless_elements)
{
    static const uint8_t msg[] = {0xff, 0xff, 0xff, 0xff};
    ck_assert_int_eq(mutils_type_check(&many_nothings), 0);
    ck_assert_int_eq(mutils_type_check(&nothing_map), 0);
    int64_t t0 = th_now_ms();
    struct mutils_reader r;
    mutils_reader_init(&r, msg, sizeof msg);
    struct mutils_array a;
    ck_assert_int_eq(mutils_read(&r, &many_nothings, &a, NULL), 0);
    ck_assert_uint_eq(a.count, UINT32_MAX);
    size_t size;
    ck_assert_int_eq(mutils_size(&many_nothings, &a, &size), 0);
    ck_assert_uint_eq(size, 4);
    uint8_t out[4];
    size_t len;
    ck_assert_int_eq(mutils_encode(&many_nothings, &a, out, sizeof out, &len),
                     0);
    ck_assert_int_eq(memcmp(out, msg, 4), 0);
    ck_assert(mutils_equal(&many_nothings, &a, &a));
    struct mutils_array copy = a;
    ck_assert(mutils_equal(&many_nothings, &a, &copy));
    mutils_free(&many_nothings, &a, NULL);

    struct mutils_map m;
    mutils_reader_init(&r, msg, sizeof msg);
    ck_assert_int_eq(mutils_read_view(&r, &nothing_map, &m, NULL), 0);
    ck_assert_uint_eq(m.count, UINT32_MAX);
    ck_assert_int_eq(mutils_size(&nothing_map, &m, &size), 0);
    ck_assert_uint_eq(size, 4);
    mutils_free(&nothing_map, &m, NULL);
    ck_assert_int_lt(th_now_ms() - t0, 1000);
}
END_TEST

struct short_name {
    struct mutils_str name;
    uint8_t tag;
};

static const struct mutils_type short_name_type = MUTILS_STRUCT_INIT(
    struct short_name,
    MUTILS_FIELD(struct short_name, name, MUTILS_TYPE_STRING(8)),
    MUTILS_FIELD(struct short_name, tag, &mutils_type_u8));

/* A length beyond the maximum is refused before any byte is scanned: the
 * length may be a lie about the caller's buffer (here 3 bytes, no NUL,
 * on the heap so that a read past them is caught). */
START_TEST(length_checked_before_scanning)
{
    char *abc = malloc(3);
    ck_assert_ptr_nonnull(abc);
    memcpy(abc, "abc", 3);
    uint8_t buf[64];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_put_string_n(&w, abc, 1000, 8), -ERANGE);
    struct mutils_str s = {abc, 1000};
    ck_assert_int_eq(mutils_write(&w, MUTILS_TYPE_STRING(8), &s), -ERANGE);
    struct short_name v = {{abc, 1000}, 1};
    ck_assert_int_eq(mutils_write(&w, &short_name_type, &v), -ERANGE);
    size_t len;
    ck_assert_int_eq(mutils_encode(&short_name_type, &v, buf, 2, &len),
                     -ERANGE);
    ck_assert_int_eq(mutils_size(&short_name_type, &v, &len), -ERANGE);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    free(abc);

    /* A C string longer than max is read no further than max + 1 bytes. */
    char *unterminated = malloc(16);
    ck_assert_ptr_nonnull(unterminated);
    memset(unterminated, 'x', 16);
    ck_assert_int_eq(mutils_put_string(&w, unterminated, 8), -ERANGE);
    ck_assert_int_eq(mutils_put_string(&w, unterminated, 15), -ERANGE);
    unterminated[15] = '\0';
    ck_assert_int_eq(mutils_put_string(&w, unterminated, 15), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 4 + 15);
    free(unterminated);
}
END_TEST

Suite *mutils_misuse_suite(void)
{
    Suite *s = suite_create("mutils-misuse");
    TCase *tc = tcase_create("misuse");
    tcase_add_test(tc, strerror_any_int);
    tcase_add_test(tc, writer_null_object);
    tcase_add_test(tc, writer_null_arguments_are_not_sticky);
    tcase_add_test(tc, writer_fini_twice_and_reuse);
    tcase_add_test(tc, growable_writer_huge_sizes);
    tcase_add_test(tc, put_from_own_growable_buffer);
    tcase_add_test(tc, put_overlapping_fixed_buffer);
    tcase_add_test(tc, write_value_viewed_from_own_buffer);
    tcase_add_test(tc, write_value_over_its_own_view);
    tcase_add_test(tc, reader_null_object);
    tcase_add_test(tc, reader_null_outputs_consume_nothing);
    tcase_add_test(tc, get_into_own_buffer);
    tcase_add_test(tc, arena_null_and_bad_requests);
    tcase_add_test(tc, arena_reset_per_message);
    tcase_add_test(tc, engine_null_arguments);
    tcase_add_test(tc, engine_struct_without_fields);
    tcase_add_test(tc, args_with_missing_pointer);
    tcase_add_test(tc, args_functions_need_a_pack);
    tcase_add_test(tc, args_read_into_shared_memory);
    tcase_add_test(tc, read_after_sticky_error_leaves_value_freeable);
    tcase_add_test(tc, equal_on_malformed_values);
    tcase_add_test(tc, count_of_wireless_elements);
    tcase_add_test(tc, length_checked_before_scanning);
    suite_add_tcase(s, tc);
    return s;
}
