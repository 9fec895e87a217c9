/* Writer and reader: primitives at their limits, variable-size values,
 * bounds, sticky errors and the offsets they report. */
#include <mutils/mutils.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test-mutils.h"

START_TEST(primitives_limits_round_trip)
{
    uint8_t buf[128];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_put_u8(&w, 0), 0);
    ck_assert_int_eq(mutils_put_u8(&w, UINT8_MAX), 0);
    ck_assert_int_eq(mutils_put_u16(&w, UINT16_MAX), 0);
    ck_assert_int_eq(mutils_put_u32(&w, UINT32_MAX), 0);
    ck_assert_int_eq(mutils_put_u64(&w, UINT64_MAX), 0);
    ck_assert_int_eq(mutils_put_i8(&w, INT8_MIN), 0);
    ck_assert_int_eq(mutils_put_i16(&w, INT16_MIN), 0);
    ck_assert_int_eq(mutils_put_i32(&w, INT32_MIN), 0);
    ck_assert_int_eq(mutils_put_i64(&w, INT64_MIN), 0);
    ck_assert_int_eq(mutils_put_i64(&w, INT64_MAX), 0);
    ck_assert_int_eq(mutils_put_bool(&w, true), 0);
    ck_assert_int_eq(mutils_put_bool(&w, false), 0);
    ck_assert_int_eq(mutils_put_f32(&w, -FLT_MAX), 0);
    ck_assert_int_eq(mutils_put_f64(&w, DBL_MIN), 0);
    ck_assert_int_eq(mutils_put_f64(&w, INFINITY), 0);
    ck_assert_int_eq(mutils_put_f64(&w, NAN), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 1 + 1 + 2 + 4 + 8 + 1 + 2 + 4 + 8 +
                                                 8 + 1 + 1 + 4 + 8 * 3);

    struct mutils_reader r;
    mutils_reader_init(&r, buf, mutils_writer_len(&w));
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
    ck_assert_int_eq(mutils_get_u8(&r, &u8), 0);
    ck_assert_uint_eq(u8, 0);
    ck_assert_int_eq(mutils_get_u8(&r, &u8), 0);
    ck_assert_uint_eq(u8, UINT8_MAX);
    ck_assert_int_eq(mutils_get_u16(&r, &u16), 0);
    ck_assert_uint_eq(u16, UINT16_MAX);
    ck_assert_int_eq(mutils_get_u32(&r, &u32), 0);
    ck_assert_uint_eq(u32, UINT32_MAX);
    ck_assert_int_eq(mutils_get_u64(&r, &u64), 0);
    ck_assert_uint_eq(u64, UINT64_MAX);
    ck_assert_int_eq(mutils_get_i8(&r, &i8), 0);
    ck_assert_int_eq(i8, INT8_MIN);
    ck_assert_int_eq(mutils_get_i16(&r, &i16), 0);
    ck_assert_int_eq(i16, INT16_MIN);
    ck_assert_int_eq(mutils_get_i32(&r, &i32), 0);
    ck_assert_int_eq(i32, INT32_MIN);
    ck_assert_int_eq(mutils_get_i64(&r, &i64), 0);
    ck_assert(i64 == INT64_MIN);
    ck_assert_int_eq(mutils_get_i64(&r, &i64), 0);
    ck_assert(i64 == INT64_MAX);
    ck_assert_int_eq(mutils_get_bool(&r, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(mutils_get_bool(&r, &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(mutils_get_f32(&r, &f), 0);
    ck_assert(f == -FLT_MAX);
    ck_assert_int_eq(mutils_get_f64(&r, &d), 0);
    ck_assert(d == DBL_MIN);
    ck_assert_int_eq(mutils_get_f64(&r, &d), 0);
    ck_assert(isinf(d) && d > 0);
    ck_assert_int_eq(mutils_get_f64(&r, &d), 0);
    ck_assert(isnan(d));
    ck_assert_int_eq(mutils_reader_finish(&r), 0);
}
END_TEST

/* The wire format is little-endian whatever the host: check exact bytes. */
START_TEST(wire_bytes_are_little_endian)
{
    uint8_t buf[32];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    mutils_put_u16(&w, 0x0102);
    mutils_put_u32(&w, 0x03040506);
    mutils_put_u64(&w, 0x0708090a0b0c0d0eULL);
    mutils_put_i16(&w, -2);
    mutils_put_f32(&w, 1.0f);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    static const uint8_t want[] = {0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e,
                                   0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07,
                                   0xfe, 0xff, 0x00, 0x00, 0x80, 0x3f};
    ck_assert_uint_eq(mutils_writer_len(&w), sizeof want);
    ck_assert_mem_eq(buf, want, sizeof want);
}
END_TEST

START_TEST(fixed_writer_never_overruns)
{
    uint8_t buf[8];
    memset(buf, 0xaa, sizeof buf);
    struct mutils_writer w;
    mutils_writer_init(&w, buf, 6);
    ck_assert_int_eq(mutils_put_u32(&w, 1), 0);
    ck_assert_int_eq(mutils_put_u32(&w, 2), -ENOSPC);
    ck_assert_uint_eq(mutils_writer_len(&w), 4);
    /* sticky: even a value that fits now fails */
    ck_assert_int_eq(mutils_put_u8(&w, 3), -ENOSPC);
    ck_assert_int_eq(mutils_writer_error(&w), -ENOSPC);
    ck_assert_uint_eq(buf[4], 0xaa);
    ck_assert_uint_eq(buf[5], 0xaa);
    ck_assert_uint_eq(buf[6], 0xaa);
    mutils_writer_reset(&w);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    ck_assert_int_eq(mutils_put_u8(&w, 3), 0);

    /* a zero-capacity writer fails every non-empty put */
    struct mutils_writer z;
    mutils_writer_init(&z, NULL, 0);
    ck_assert_int_eq(mutils_put_raw(&z, "", 0), 0);
    ck_assert_int_eq(mutils_put_u8(&z, 1), -ENOSPC);
}
END_TEST

START_TEST(growable_writer_grows_and_steals)
{
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
    for (uint32_t i = 0; i < 10000; i++)
        ck_assert_int_eq(mutils_put_u32(&w, i), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 40000);
    struct mutils_reader r;
    mutils_reader_init(&r, mutils_writer_data(&w), mutils_writer_len(&w));
    for (uint32_t i = 0; i < 10000; i++) {
        uint32_t v;
        ck_assert_int_eq(mutils_get_u32(&r, &v), 0);
        ck_assert_uint_eq(v, i);
    }
    size_t len;
    void *p = mutils_writer_steal(&w, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 40000);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    free(p);
    ck_assert_int_eq(mutils_put_u8(&w, 7), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 1);
    mutils_writer_fini(&w);

    void *slot;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 4), 0);
    ck_assert_int_eq(mutils_writer_reserve(&w, 100, &slot), 0);
    memset(slot, 1, 100);
    ck_assert_uint_eq(mutils_writer_len(&w), 100);
    mutils_writer_fini(&w);
}
END_TEST

START_TEST(reader_truncation_reports_offset)
{
    uint8_t buf[7] = {1, 2, 3, 4, 5, 6, 7};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, sizeof buf);
    uint32_t v = 99;
    uint64_t v64 = 99;
    size_t off = 0;
    ck_assert_int_eq(mutils_get_u32(&r, &v), 0);
    ck_assert_int_eq(mutils_get_u64(&r, &v64), -EBADMSG);
    ck_assert_uint_eq(v64, 99); /* output untouched */
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 4);
    ck_assert_uint_eq(mutils_reader_offset(&r), 4); /* nothing consumed */
    /* sticky */
    uint8_t u8;
    ck_assert_int_eq(mutils_get_u8(&r, &u8), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 4);

    /* trailing bytes are an error at finish */
    mutils_reader_init(&r, buf, sizeof buf);
    ck_assert_int_eq(mutils_get_u32(&r, &v), 0);
    ck_assert_int_eq(mutils_reader_finish(&r), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 4);
    ck_assert_uint_eq(mutils_reader_remaining(&r), 3);
}
END_TEST

START_TEST(invalid_bool_is_rejected)
{
    uint8_t buf[] = {1, 0, 2};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, sizeof buf);
    bool b = false;
    size_t off;
    ck_assert_int_eq(mutils_get_bool(&r, &b), 0);
    ck_assert(b);
    ck_assert_int_eq(mutils_get_present(&r, &b), 0);
    ck_assert(!b);
    ck_assert_int_eq(mutils_get_bool(&r, &b), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 2);
}
END_TEST

START_TEST(bytes_and_strings)
{
    uint8_t buf[64];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_put_bytes(&w, "\0\1\2", 3, 3), 0);
    ck_assert_int_eq(mutils_put_bytes(&w, "abcd", 4, 3), -ERANGE);
    ck_assert_int_eq(mutils_writer_error(&w), 0); /* not sticky */
    ck_assert_int_eq(mutils_put_string(&w, "hello", 5), 0);
    ck_assert_int_eq(mutils_put_string(&w, "toolong", 6), -ERANGE);
    ck_assert_int_eq(mutils_put_string_n(&w, "a\0b", 3, 10), -EINVAL);
    ck_assert_int_eq(mutils_put_string(&w, "", 0), 0);
    ck_assert_int_eq(mutils_put_bytes(&w, NULL, 0, 0), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 4 + 3 + 4 + 5 + 4 + 4);
    static const uint8_t head[] = {3, 0, 0, 0, 0, 1, 2, 5, 0, 0, 0, 'h'};
    ck_assert_mem_eq(buf, head, sizeof head);

    struct mutils_reader r;
    mutils_reader_init(&r, buf, mutils_writer_len(&w));
    const void *p;
    size_t len;
    ck_assert_int_eq(mutils_get_bytes_view(&r, &p, &len, 3), 0);
    ck_assert_uint_eq(len, 3);
    ck_assert_ptr_eq(p, buf + 4); /* zero-copy */
    char s[8];
    ck_assert_int_eq(mutils_get_string(&r, s, 5, &len, 10), -ERANGE);
    ck_assert_int_eq(mutils_reader_error(&r, NULL), 0);
    ck_assert_int_eq(mutils_get_string(&r, s, sizeof s, &len, 10), 0);
    ck_assert_str_eq(s, "hello");
    const char *sv;
    ck_assert_int_eq(mutils_get_string_view(&r, &sv, &len, 0), 0);
    ck_assert_uint_eq(len, 0);
    uint8_t copy[4];
    ck_assert_int_eq(mutils_get_bytes(&r, copy, sizeof copy, &len, 0), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(mutils_reader_finish(&r), 0);
}
END_TEST

START_TEST(bytes_length_checks_report_offset)
{
    /* length 5 but only 3 bytes follow */
    uint8_t buf[] = {9, 9, 5, 0, 0, 0, 'a', 'b', 'c'};
    struct mutils_reader r;
    const void *p;
    size_t len, off;
    uint16_t skip;
    mutils_reader_init(&r, buf, sizeof buf);
    ck_assert_int_eq(mutils_get_u16(&r, &skip), 0);
    ck_assert_int_eq(mutils_get_bytes_view(&r, &p, &len, 100), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 2);
    /* past the declared maximum */
    buf[2] = 3;
    mutils_reader_init(&r, buf, sizeof buf);
    ck_assert_int_eq(mutils_get_u16(&r, &skip), 0);
    ck_assert_int_eq(mutils_get_bytes_view(&r, &p, &len, 2), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 2);
    /* huge length: no overflow in the check */
    uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 1};
    mutils_reader_init(&r, huge, sizeof huge);
    ck_assert_int_eq(mutils_get_bytes_view(&r, &p, &len, SIZE_MAX), -EBADMSG);
    /* a NUL inside a text string */
    uint8_t nul[] = {2, 0, 0, 0, 'a', 0};
    const char *s;
    mutils_reader_init(&r, nul, sizeof nul);
    ck_assert_int_eq(mutils_get_string_view(&r, &s, &len, 10), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 0);
}
END_TEST

START_TEST(arrays_counts_and_optionals)
{
    uint8_t buf[256];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    const int32_t ints[] = {1, -1, INT32_MAX, INT32_MIN};
    const double dbls[] = {0.5, -2.25};
    const bool bools[] = {true, false, true};
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_I32, ints, 4, 4), 0);
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_I32, ints, 4, 3),
                     -ERANGE);
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_F64, dbls, 2, 8), 0);
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_BOOL, bools, 3, 8), 0);
    ck_assert_int_eq(mutils_put_array(&w, MUTILS_KIND_STRING, ints, 1, 8),
                     -EINVAL);
    ck_assert_int_eq(mutils_put_count(&w, 2, 2), 0);
    ck_assert_int_eq(mutils_put_count(&w, 3, 2), -ERANGE);
    ck_assert_int_eq(mutils_put_present(&w, true), 0);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    ck_assert_uint_eq(mutils_writer_len(&w),
                      (4 + 16) + (4 + 16) + (4 + 3) + 4 + 1);

    struct mutils_reader r;
    mutils_reader_init(&r, buf, mutils_writer_len(&w));
    int32_t ints2[4];
    double dbls2[2];
    bool bools2[3];
    size_t n, off;
    bool present;
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_I32, ints2, 3, &n, 4),
                     -ERANGE);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_I32, ints2, 4, &n, 4), 0);
    ck_assert_uint_eq(n, 4);
    ck_assert_mem_eq(ints2, ints, sizeof ints);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_F64, dbls2, 2, &n, 2), 0);
    ck_assert(dbls2[0] == 0.5 && dbls2[1] == -2.25);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_BOOL, bools2, 3, &n, 3),
                     0);
    ck_assert(bools2[0] && !bools2[1] && bools2[2]);
    ck_assert_int_eq(mutils_get_count(&r, &n, 1), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 47);

    mutils_reader_init(&r, buf + 47, 5);
    ck_assert_int_eq(mutils_get_count(&r, &n, 2), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(mutils_get_present(&r, &present), 0);
    ck_assert(present);

    /* an invalid bool inside an array reports its own offset */
    uint8_t bad[] = {3, 0, 0, 0, 1, 0, 7};
    mutils_reader_init(&r, bad, sizeof bad);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_BOOL, bools2, 3, &n, 3),
                     -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 6);
    /* count * width past the end */
    uint8_t shortarr[] = {2, 0, 0, 0, 1, 0, 0, 0};
    mutils_reader_init(&r, shortarr, sizeof shortarr);
    ck_assert_int_eq(mutils_get_array(&r, MUTILS_KIND_U32, ints2, 4, &n, 4),
                     -EBADMSG);
}
END_TEST

/* Writes a message mixing every kind of value; every strict prefix of it
 * must be rejected by the matching reads. */
static size_t sample_message(uint8_t *buf, size_t cap)
{
    struct mutils_writer w;
    mutils_writer_init(&w, buf, cap);
    const uint16_t arr[] = {1, 2, 3};
    mutils_put_u8(&w, 1);
    mutils_put_i64(&w, -5);
    mutils_put_string(&w, "node-7", 64);
    mutils_put_bytes(&w, "\x01\x02", 2, 64);
    mutils_put_array(&w, MUTILS_KIND_U16, arr, 3, 8);
    mutils_put_bool(&w, true);
    mutils_put_f64(&w, 3.5);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    return mutils_writer_len(&w);
}

static int read_sample(const uint8_t *buf, size_t len)
{
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    uint8_t u8;
    int64_t i64;
    char s[65];
    const void *p;
    size_t n;
    uint16_t arr[8];
    bool b;
    double d;
    mutils_get_u8(&r, &u8);
    mutils_get_i64(&r, &i64);
    mutils_get_string(&r, s, sizeof s, &n, 64);
    mutils_get_bytes_view(&r, &p, &n, 64);
    mutils_get_array(&r, MUTILS_KIND_U16, arr, 8, &n, 8);
    mutils_get_bool(&r, &b);
    mutils_get_f64(&r, &d);
    return mutils_reader_finish(&r);
}

START_TEST(every_truncation_is_rejected)
{
    uint8_t buf[256];
    size_t len = sample_message(buf, sizeof buf);
    ck_assert_int_eq(read_sample(buf, len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact size for ASan */
        memcpy(copy, buf, cut);
        ck_assert_int_eq(read_sample(copy, cut), -EBADMSG);
        free(copy);
    }
    /* and every short fixed writer fails with -ENOSPC, never overrunning */
    for (size_t cap = 0; cap < len; cap++) {
        uint8_t *out = malloc(cap ? cap : 1);
        struct mutils_writer w;
        mutils_writer_init(&w, out, cap);
        mutils_put_u8(&w, 1);
        mutils_put_i64(&w, -5);
        mutils_put_string(&w, "node-7", 64);
        mutils_put_bytes(&w, "\x01\x02", 2, 64);
        mutils_put_f64(&w, 3.5);
        mutils_put_f64(&w, 3.5);
        mutils_put_f64(&w, 3.5);
        ck_assert_int_eq(mutils_writer_error(&w), -ENOSPC);
        ck_assert_uint_le(mutils_writer_len(&w), cap);
        free(out);
    }
}
END_TEST

START_TEST(strerror_texts)
{
    ck_assert_str_eq(mutils_strerror(0), "success");
    ck_assert_str_eq(mutils_strerror(-EBADMSG), "malformed or truncated input");
    ck_assert_ptr_nonnull(mutils_strerror(-12345));
    ck_assert_ptr_nonnull(mutils_strerror(-ENOSPC));
}
END_TEST

Suite *mutils_buf_suite(void)
{
    Suite *s = suite_create("mutils-buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, primitives_limits_round_trip);
    tcase_add_test(tc, wire_bytes_are_little_endian);
    tcase_add_test(tc, fixed_writer_never_overruns);
    tcase_add_test(tc, growable_writer_grows_and_steals);
    tcase_add_test(tc, reader_truncation_reports_offset);
    tcase_add_test(tc, invalid_bool_is_rejected);
    tcase_add_test(tc, bytes_and_strings);
    tcase_add_test(tc, bytes_length_checks_report_offset);
    tcase_add_test(tc, arrays_counts_and_optionals);
    tcase_add_test(tc, every_truncation_is_rejected);
    tcase_add_test(tc, strerror_texts);
    suite_add_tcase(s, tc);
    return s;
}
