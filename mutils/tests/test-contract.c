/* The API contract (docs/api.md) as it applies to libmutils: header guard,
 * X_strerror of either sign and of any errno, NULL getters' sentinels,
 * NULL out-parameters, and the byte-order helpers other libraries use. */
#include "harness.h"
#include "test-mutils.h"

#include <errno.h>
#include <limits.h>
#include <mutils/mutils.h>
#include <stdlib.h>
#include <string.h>

#ifndef DERECHO_MUTILS_H
#error "<mutils/mutils.h> must be guarded by DERECHO_MUTILS_H"
#endif

/* Every code the library documents returning. */
static const int codes[] = {ENOSPC,  ENOMEM, ERANGE, EOVERFLOW,
                            EBADMSG, ELOOP,  EINVAL};

START_TEST(strerror_any_sign_every_code)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *neg = mutils_strerror(-codes[i]);
        const char *pos = mutils_strerror(codes[i]);
        ck_assert_ptr_nonnull(neg);
        ck_assert_str_eq(neg, pos);
        ck_assert_ptr_null(strstr(neg, "unknown"));
    }
    ck_assert_str_eq(mutils_strerror(0), "success");
}
END_TEST

START_TEST(strerror_other_errno_is_the_system_text)
{
    /* Not codes of this library: the system's text, either sign. */
    const int others[] = {ETIMEDOUT, EMFILE, ECONNREFUSED, EPIPE};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        ck_assert_str_eq(mutils_strerror(-others[i]),
                         strerrordesc_np(others[i]));
        ck_assert_str_eq(mutils_strerror(others[i]),
                         strerrordesc_np(others[i]));
    }
    /* No errno at all: still a text, never NULL. */
    ck_assert_ptr_nonnull(mutils_strerror(INT_MIN));
    ck_assert_ptr_nonnull(mutils_strerror(1 << 20));
}
END_TEST

START_TEST(getters_on_null_return_the_sentinel)
{
    ck_assert_uint_eq(mutils_writer_len(NULL), MUTILS_NO_SIZE);
    ck_assert_ptr_null(mutils_writer_data(NULL));
    ck_assert_int_eq(mutils_writer_error(NULL), -EINVAL);
    ck_assert_uint_eq(mutils_reader_offset(NULL), MUTILS_NO_SIZE);
    ck_assert_uint_eq(mutils_reader_remaining(NULL), MUTILS_NO_SIZE);
    ck_assert_int_eq(mutils_reader_error(NULL, NULL), -EINVAL);
    ck_assert_uint_eq(mutils_type_c_size(NULL), MUTILS_NO_SIZE);
    /* An empty writer and reader are 0, distinct from the sentinel. */
    struct mutils_writer w;
    mutils_writer_init(&w, NULL, 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    struct mutils_reader r;
    mutils_reader_init(&r, NULL, 0);
    ck_assert_uint_eq(mutils_reader_remaining(&r), 0);
}
END_TEST

START_TEST(null_out_is_einval)
{
    uint32_t v = 7;
    uint8_t buf[8];
    ck_assert_int_eq(mutils_size(&mutils_type_u32, &v, NULL), -EINVAL);
    ck_assert_int_eq(mutils_encode(&mutils_type_u32, &v, buf, sizeof buf, NULL),
                     -EINVAL);
    ck_assert_int_eq(mutils_fingerprint(&mutils_type_u32, NULL), -EINVAL);
    struct mutils_reader r;
    mutils_reader_init(&r, buf, sizeof buf);
    ck_assert_int_eq(mutils_get_u32(&r, NULL), -EINVAL);
    ck_assert_int_eq(mutils_read(&r, &mutils_type_u32, NULL, NULL), -EINVAL);
    ck_assert_uint_eq(mutils_reader_offset(&r), 0); /* nothing consumed */
}
END_TEST

START_TEST(byte_order_helpers)
{
    uint8_t b[9] = {0};
    /* At an odd address: any alignment. */
    mutils_store_le16(b + 1, 0x1234);
    ck_assert_uint_eq(b[1], 0x34);
    ck_assert_uint_eq(b[2], 0x12);
    ck_assert_uint_eq(mutils_load_le16(b + 1), 0x1234);
    mutils_store_le32(b + 1, 0x89abcdefu);
    const uint8_t want32[] = {0xef, 0xcd, 0xab, 0x89};
    ck_assert_mem_eq(b + 1, want32, 4);
    ck_assert_uint_eq(mutils_load_le32(b + 1), 0x89abcdefu);
    mutils_store_le64(b + 1, 0x0102030405060708ull);
    const uint8_t want64[] = {8, 7, 6, 5, 4, 3, 2, 1};
    ck_assert_mem_eq(b + 1, want64, 8);
    ck_assert_uint_eq(mutils_load_le64(b + 1), 0x0102030405060708ull);
    ck_assert_uint_eq(b[0], 0); /* nothing written outside */
    /* The helpers and the writer agree on the wire format. */
    uint8_t wire[8];
    struct mutils_writer w;
    mutils_writer_init(&w, wire, sizeof wire);
    ck_assert_int_eq(mutils_put_u64(&w, 0xfedcba9876543210ull), 0);
    ck_assert_uint_eq(mutils_load_le64(wire), 0xfedcba9876543210ull);
    ck_assert_uint_eq(mutils_load_le32(wire + 4), 0xfedcba98u);
    ck_assert_uint_eq(mutils_load_le16(wire), 0x3210);
}
END_TEST

/* An allocator callback may call back into the library on other objects:
 * here it encodes each request size into a writer of its own. */
struct logging_alloc {
    struct mutils_writer log;
    int calls;
};

static void *alloc_and_log(void *ctx, size_t size, size_t align)
{
    (void)align;
    struct logging_alloc *a = ctx;
    a->calls++;
    if (mutils_put_u64(&a->log, size) != 0)
        return NULL;
    return malloc(size);
}

static void free_and_log(void *ctx, void *ptr, size_t size)
{
    struct logging_alloc *a = ctx;
    (void)mutils_put_u64(&a->log, size);
    free(ptr);
}

START_TEST(callback_calls_back)
{
    uint8_t wire[64];
    struct mutils_writer w;
    mutils_writer_init(&w, wire, sizeof wire);
    struct mutils_str in = {"hello", 5};
    const struct mutils_type *t = MUTILS_TYPE_STRING(16);
    ck_assert_int_eq(mutils_write(&w, t, &in), 0);
    struct logging_alloc la = {.calls = 0};
    ck_assert_int_eq(mutils_writer_init_growable(&la.log, 0), 0);
    const struct mutils_alloc alloc = {alloc_and_log, free_and_log, &la};
    struct mutils_reader r;
    mutils_reader_init(&r, wire, mutils_writer_len(&w));
    struct mutils_str out = {NULL, 0};
    ck_assert_int_eq(mutils_read(&r, t, &out, &alloc), 0);
    ck_assert_int_eq(la.calls, 1);
    ck_assert_str_eq(out.ptr, "hello");
    mutils_free(t, &out, &alloc);
    ck_assert_uint_eq(mutils_writer_len(&la.log), 16); /* alloc + free */
    ck_assert_uint_eq(mutils_load_le64(mutils_writer_data(&la.log)), 6);
    mutils_writer_fini(&la.log);
}
END_TEST

Suite *mutils_contract_suite(void)
{
    Suite *s = suite_create("mutils-contract");
    TCase *tc = tcase_create("contract");
    tcase_add_test(tc, strerror_any_sign_every_code);
    tcase_add_test(tc, strerror_other_errno_is_the_system_text);
    tcase_add_test(tc, getters_on_null_return_the_sentinel);
    tcase_add_test(tc, null_out_is_einval);
    tcase_add_test(tc, byte_order_helpers);
    tcase_add_test(tc, callback_calls_back);
    suite_add_tcase(s, tc);
    return s;
}
