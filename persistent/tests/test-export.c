/* Export of a version range and its bounded import. */
#include "test-common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SEED 11
#define MAXP 2000

START_TEST(round_trip)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *src = tc_open(dir, "src");
    tc_fill(src, SEED, 1, 100, MAXP);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ck_assert_int_eq(persistent_log_export(src, 21, 60, &bytes, &len), 0);
    ck_assert_ptr_nonnull(bytes);

    struct persistent_log *dst = tc_open(dir, "dst");
    tc_fill(dst, SEED, 1, 20, MAXP);
    uint64_t n = 0;
    ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), 0);
    ck_assert_uint_eq(n, 40);
    for (int64_t v = 1; v <= 60; v++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(dst, v, &e), 0);
        ck_assert_int_eq(e.timestamp_ns, v * 10);
        ck_assert(tc_payload_ok(SEED, &e, MAXP));
    }
    /* Importing again overlaps: refused, log unchanged. */
    ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), -EINVAL);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(persistent_log_last_version(dst), 60);
    free(bytes);

    /* The rest, then compare both logs whole. */
    ck_assert_int_eq(persistent_log_export(src, 61, INT64_MAX, &bytes, &len),
                     0);
    ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), 0);
    ck_assert_uint_eq(n, 40);
    free(bytes);
    ck_assert_int_eq(persistent_log_persist(dst, 100), 0);
    persistent_log_close(dst);
    dst = tc_open(dir, "dst");
    ck_assert_uint_eq(persistent_log_count(dst), 100);
    for (int64_t v = 1; v <= 100; v++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(dst, v, &e), 0);
        ck_assert(tc_payload_ok(SEED, &e, MAXP));
    }
    /* An empty range is a valid export of nothing. */
    ck_assert_int_eq(persistent_log_export(src, 500, 600, &bytes, &len), 0);
    ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(bytes);
    persistent_log_close(dst);
    persistent_log_close(src);
}
END_TEST

START_TEST(damaged_exports_are_refused)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *src = tc_open(dir, "src");
    tc_fill(src, SEED, 1, 30, 100);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ck_assert_int_eq(persistent_log_export(src, 1, 30, &bytes, &len), 0);
    struct persistent_log *dst = tc_open(dir, "dst");
    uint64_t n = 1;
    /* Every single-bit flip and every truncation is caught. */
    for (size_t i = 0; i < len; i++) {
        bytes[i] ^= 0x10;
        ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), -EBADMSG);
        bytes[i] ^= 0x10;
    }
    for (size_t cut = 0; cut < len; cut += 7)
        ck_assert_int_eq(persistent_log_import(dst, bytes, cut, &n), -EBADMSG);
    ck_assert_int_eq(persistent_log_import(dst, NULL, 0, &n), -EBADMSG);
    ck_assert_uint_eq(persistent_log_count(dst), 0);
    ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), 0);
    ck_assert_uint_eq(n, 30);
    free(bytes);
    persistent_log_close(dst);
    persistent_log_close(src);
}
END_TEST

START_TEST(failed_import_changes_nothing)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *src = tc_open(dir, "src");
    static uint8_t chunk[1000];
    for (int64_t v = 1; v <= 10; v++)
        ck_assert_int_eq(persistent_log_append(src, v, v, chunk, 1000), 0);
    uint8_t *bytes = NULL;
    size_t len = 0;
    ck_assert_int_eq(persistent_log_export(src, 4, 10, &bytes, &len), 0);
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.max_data_size = 4096 + 1000; /* room for 4 entries */
    struct persistent_log *dst = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "dst", &dst, NULL), 0);
    ck_assert_int_eq(persistent_log_append(dst, 1, 1, chunk, 1000), 0);
    uint64_t n = 9;
    ck_assert_int_eq(persistent_log_import(dst, bytes, len, &n), -ENOSPC);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(persistent_log_count(dst), 1);
    ck_assert_int_eq(persistent_log_last_version(dst), 1);
    free(bytes);
    persistent_log_close(dst);
    persistent_log_close(src);
}
END_TEST

Suite *tc_export_suite(void)
{
    Suite *s = suite_create("export");
    TCase *tc = tcase_create("export");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, damaged_exports_are_refused);
    tcase_add_test(tc, failed_import_changes_nothing);
    suite_add_tcase(s, tc);
    return s;
}
