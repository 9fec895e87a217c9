/* The project's API contract (issue 11, docs/api.md) for libpersistent:
 * options size and NULL rules, NULL out, the error shape, strerror for any
 * sign and any errno, getters on NULL, calls back from callbacks. */
#include "test-common.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every code the library returns, and errnos it does not. */
static const int codes[] = {EINVAL,  ENOENT,    ENOSPC, EFBIG,        EBADMSG,
                            ENOBUFS, ENOMEM,    EIO,    EBUSY,        EACCES,
                            ERANGE,  ENOTDIR,   EISDIR, ENAMETOOLONG, EROFS,
                            EPERM,   EOVERFLOW, EDEADLK};
static const int others[] = {ETIMEDOUT, EMFILE, ECONNRESET, EAGAIN, EEXIST};

START_TEST(strerror_any_sign_any_errno)
{
    ck_assert_str_eq(persistent_strerror(0), "success");
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        char pos[200];
        snprintf(pos, sizeof(pos), "%s", persistent_strerror(codes[i]));
        ck_assert_str_eq(pos, persistent_strerror(-codes[i]));
        ck_assert_msg(!strstr(pos, "unknown"), "%d: %s", codes[i], pos);
    }
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        char pos[200];
        snprintf(pos, sizeof(pos), "%s", persistent_strerror(others[i]));
        ck_assert_str_eq(pos, persistent_strerror(-others[i]));
        ck_assert_msg(!strstr(pos, "unknown"), "%d: %s", others[i], pos);
    }
    ck_assert_ptr_nonnull(strstr(persistent_strerror(-ETIMEDOUT), "ETIMEDOUT"));
    ck_assert_ptr_nonnull(persistent_strerror(INT32_MIN));
    ck_assert_ptr_nonnull(persistent_strerror(123456));
}
END_TEST

START_TEST(options_sizes_and_null)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_log *log = NULL;
    struct persistent_error err;
    /* Shorter (the first release's fields), exact, longer with zeros. */
    struct {
        struct persistent_options o;
        uint8_t newer[24];
    } w;
    memset(&w, 0, sizeof(w));
    w.o = opts;
    w.o.size = offsetof(struct persistent_options, log);
    ck_assert_int_eq(persistent_log_open(&w.o, "a", &log, &err), 0);
    persistent_log_close(log);
    w.o.size = sizeof(w.o);
    ck_assert_int_eq(persistent_log_open(&w.o, "a", &log, &err), 0);
    persistent_log_close(log);
    w.o.size = sizeof(w);
    ck_assert_int_eq(persistent_log_open(&w.o, "a", &log, &err), 0);
    persistent_log_close(log);
    /* Longer with a byte set this library does not know: refused, with
     * the code and a message in the error. */
    w.newer[5] = 1;
    ck_assert_int_eq(persistent_log_open(&w.o, "a", &log, &err), -EINVAL);
    ck_assert_ptr_null(log);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not zero"));
    /* Zeroed options (size 0) are refused; NULL options are the defaults
     * (directory .persist under the current directory: not tried here);
     * a NULL out is refused with the code set. */
    struct persistent_options zero;
    memset(&zero, 0, sizeof(zero));
    ck_assert_int_eq(persistent_log_open(&zero, "a", &log, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_int_eq(persistent_log_open(&opts, "a", NULL, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert(err.msg[0] != 0);
    /* Success clears the error. */
    ck_assert_int_eq(persistent_log_open(&opts, "a", &log, &err), 0);
    ck_assert_int_eq(err.code, 0);
    persistent_log_close(log);
}
END_TEST

static int persist_back(void *ctx, const struct persistent_entry *e)
{
    (void)e;
    return persistent_log_persist(ctx, -1);
}

START_TEST(getters_on_null_and_calls_back)
{
    ck_assert_int_eq(persistent_log_latest_persisted(NULL),
                     PERSISTENT_INVALID_VERSION);
    ck_assert_int_eq(persistent_log_first_version(NULL),
                     PERSISTENT_INVALID_VERSION);
    ck_assert_int_eq(persistent_log_last_version(NULL),
                     PERSISTENT_INVALID_VERSION);
    ck_assert_int_eq(persistent_log_last_appended(NULL),
                     PERSISTENT_INVALID_VERSION);
    ck_assert_int_eq(persistent_registry_frontier(NULL),
                     PERSISTENT_INVALID_VERSION);
    ck_assert_int_eq(persistent_registry_latest_version(NULL),
                     PERSISTENT_INVALID_VERSION);
    /* 0 and -1 are valid counts, sizes and indices: not the sentinels */
    ck_assert_uint_eq(persistent_log_count(NULL), UINT64_MAX);
    ck_assert_uint_eq(persistent_log_count(NULL), PERSISTENT_NO_COUNT);
    ck_assert_uint_eq(persistent_log_data_size(NULL), UINT64_MAX);
    ck_assert_uint_eq(persistent_log_data_size(NULL), PERSISTENT_NO_SIZE);
    ck_assert_int_eq(persistent_log_first_index(NULL), INT64_MIN);
    ck_assert_int_eq(persistent_log_first_index(NULL),
                     PERSISTENT_INVALID_INDEX);
    ck_assert_int_eq(persistent_log_last_index(NULL), INT64_MIN);
    ck_assert_int_eq(persistent_log_last_index(NULL), PERSISTENT_INVALID_INDEX);
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "cb");
    tc_fill(log, 1, 1, 3, 10);
    /* an open log's values are never the sentinels */
    ck_assert_uint_eq(persistent_log_count(log), 3);
    ck_assert_int_eq(persistent_log_first_index(log), 0);
    ck_assert_int_eq(persistent_log_last_index(log), 2);
    ck_assert(persistent_log_data_size(log) != PERSISTENT_NO_SIZE);
    /* persist from a foreach callback: refused, documented -EDEADLK. */
    ck_assert_int_eq(
        persistent_log_foreach_index(log, 0, -1, persist_back, log), -EDEADLK);
    persistent_log_close(log);
}
END_TEST

Suite *tc_contract_suite(void)
{
    Suite *s = suite_create("contract");
    TCase *tc = tcase_create("contract");
    tcase_add_test(tc, strerror_any_sign_any_errno);
    tcase_add_test(tc, options_sizes_and_null);
    tcase_add_test(tc, getters_on_null_and_calls_back);
    suite_add_tcase(s, tc);
    return s;
}
