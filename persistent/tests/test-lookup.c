/* Lookups: exact, in force at a version, by index, by time, ranges. */
#include "test-common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

START_TEST(versions_encode_view_and_seq)
{
    int64_t v = persistent_version_make(7, 42);
    ck_assert_int_eq(persistent_version_view(v), 7);
    ck_assert_int_eq(persistent_version_seq(v), 42);
    ck_assert(persistent_version_make(1, 0) > persistent_version_make(0, 99));
    ck_assert(persistent_version_make(3, 5) < persistent_version_make(3, 6));
    int64_t big = persistent_version_make(INT32_MAX, INT32_MAX);
    ck_assert_int_eq(persistent_version_view(big), INT32_MAX);
    ck_assert_int_eq(persistent_version_seq(big), INT32_MAX);
    ck_assert_int_eq(persistent_version_make(0, 0), 0);
}
END_TEST

START_TEST(empty_log)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "empty");
    struct persistent_entry e;
    ck_assert_uint_eq(persistent_log_count(log), 0);
    ck_assert_int_eq(persistent_log_first_version(log), -1);
    ck_assert_int_eq(persistent_log_last_version(log), -1);
    ck_assert_int_eq(persistent_log_first_index(log), 0);
    ck_assert_int_eq(persistent_log_last_index(log), -1);
    ck_assert_int_eq(persistent_log_latest_persisted(log), -1);
    ck_assert_int_eq(persistent_log_get(log, 0, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_version(log, 100, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, 0, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, -1, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_time(log, INT64_MAX, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_persist(log, 5), 0);
    ck_assert_int_eq(persistent_log_trim(log, 10), 0);
    ck_assert_int_eq(persistent_log_truncate(log, 10), 0);
    ck_assert_uint_eq(persistent_log_data_size(log), 0);
    persistent_log_close(log);
}
END_TEST

START_TEST(single_entry)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "one");
    ck_assert_int_eq(persistent_log_append(log, 5, 100, "hello", 5), 0);
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_get(log, 5, &e), 0);
    ck_assert_int_eq(e.version, 5);
    ck_assert_int_eq(e.timestamp_ns, 100);
    ck_assert_int_eq(e.index, 0);
    ck_assert_uint_eq(e.size, 5);
    ck_assert_mem_eq(e.data, "hello", 5);
    ck_assert_int_eq(persistent_log_get(log, 4, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get(log, 6, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_version(log, 4, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_version(log, 1000, &e), 0);
    ck_assert_int_eq(e.version, 5);
    ck_assert_int_eq(persistent_log_get_index(log, 0, &e), 0);
    ck_assert_int_eq(persistent_log_get_index(log, -1, &e), 0);
    ck_assert_int_eq(e.version, 5);
    ck_assert_int_eq(persistent_log_get_index(log, 1, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, -2, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_time(log, 99, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_time(log, 100, &e), 0);
    ck_assert_int_eq(persistent_log_first_version(log), 5);
    ck_assert_int_eq(persistent_log_last_version(log), 5);
    ck_assert_int_eq(persistent_log_first_index(log), 0);
    ck_assert_int_eq(persistent_log_last_index(log), 0);
    ck_assert_uint_eq(persistent_log_data_size(log), 48 + 8);
    persistent_log_close(log);
}
END_TEST

START_TEST(append_rejects_bad_order)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "order");
    ck_assert_int_eq(persistent_log_append(log, 10, 50, "a", 1), 0);
    ck_assert_int_eq(persistent_log_append(log, 10, 60, "b", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 9, 60, "b", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 11, 49, "b", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, -1, 60, "b", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 12, 60, NULL, 3), -EINVAL);
    ck_assert_uint_eq(persistent_log_count(log), 1);
    /* Equal timestamps are fine, empty payloads too. */
    ck_assert_int_eq(persistent_log_append(log, 11, 50, NULL, 0), 0);
    ck_assert_uint_eq(persistent_log_count(log), 2);
    persistent_log_close(log);
}
END_TEST

/* Versions 10, 20, ... 100 at times 5, 5, 5, 7, 7, 9, 9, 9, 9, 12. */
static const int64_t times[10] = {5, 5, 5, 7, 7, 9, 9, 9, 9, 12};

static struct persistent_log *ten(const char *dir)
{
    struct persistent_log *log = tc_open(dir, "ten");
    for (int i = 0; i < 10; i++) {
        char b[16];
        int n = snprintf(b, sizeof(b), "entry-%d", i);
        ck_assert_int_eq(
            persistent_log_append(log, (i + 1) * 10, times[i], b, (size_t)n),
            0);
    }
    return log;
}

START_TEST(time_lookup_equal_timestamps)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = ten(dir);
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_get_at_time(log, 4, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_time(log, 5, &e), 0);
    ck_assert_int_eq(e.version, 30); /* highest of the three at t=5 */
    ck_assert_int_eq(persistent_log_get_at_time(log, 6, &e), 0);
    ck_assert_int_eq(e.version, 30);
    ck_assert_int_eq(persistent_log_get_at_time(log, 7, &e), 0);
    ck_assert_int_eq(e.version, 50);
    ck_assert_int_eq(persistent_log_get_at_time(log, 9, &e), 0);
    ck_assert_int_eq(e.version, 90);
    ck_assert_int_eq(persistent_log_get_at_time(log, 11, &e), 0);
    ck_assert_int_eq(e.version, 90);
    ck_assert_int_eq(persistent_log_get_at_time(log, 12, &e), 0);
    ck_assert_int_eq(e.version, 100);
    ck_assert_int_eq(persistent_log_get_at_time(log, INT64_MAX, &e), 0);
    ck_assert_int_eq(e.version, 100);
    ck_assert_mem_eq(e.data, "entry-9", 7);
    persistent_log_close(log);
}
END_TEST

START_TEST(version_and_index_lookups)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = ten(dir);
    struct persistent_entry e;
    for (int i = 0; i < 10; i++) {
        int64_t v = (i + 1) * 10;
        ck_assert_int_eq(persistent_log_get(log, v, &e), 0);
        ck_assert_int_eq(e.index, i);
        ck_assert_int_eq(e.timestamp_ns, times[i]);
        ck_assert_int_eq(persistent_log_get(log, v + 1, &e), -ENOENT);
        ck_assert_int_eq(persistent_log_get_at_version(log, v + 9, &e), 0);
        ck_assert_int_eq(e.version, v);
        ck_assert_int_eq(persistent_log_get_index(log, i, &e), 0);
        ck_assert_int_eq(e.version, v);
        ck_assert_int_eq(persistent_log_get_index(log, i - 10, &e), 0);
        ck_assert_int_eq(e.version, v);
    }
    ck_assert_int_eq(persistent_log_get_at_version(log, 9, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, 10, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, -11, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, INT64_MIN, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, INT64_MAX, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get(log, INT64_MIN, &e), -ENOENT);

    char small[4];
    ck_assert_int_eq(persistent_log_copy(log, 3, small, sizeof(small), &e),
                     -ENOBUFS);
    ck_assert_uint_eq(e.size, 7);
    char big[16];
    ck_assert_int_eq(persistent_log_copy(log, -1, big, sizeof(big), &e), 0);
    ck_assert_ptr_eq(e.data, big);
    ck_assert_mem_eq(big, "entry-9", 7);
    ck_assert_int_eq(persistent_log_copy(log, 10, big, sizeof(big), &e),
                     -ENOENT);
    persistent_log_close(log);
}
END_TEST

struct collect {
    int64_t v[32];
    int n;
    int stop_after;
};

static int collect(void *ctx, const struct persistent_entry *e)
{
    struct collect *c = ctx;
    c->v[c->n++] = e->version;
    return c->n == c->stop_after ? 77 : 0;
}

START_TEST(range_iteration)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = ten(dir);
    struct collect c = {.n = 0};
    ck_assert_int_eq(persistent_log_foreach_version(log, 25, 60, collect, &c),
                     0);
    ck_assert_int_eq(c.n, 4);
    ck_assert_int_eq(c.v[0], 30);
    ck_assert_int_eq(c.v[3], 60);
    c.n = 0;
    ck_assert_int_eq(persistent_log_foreach_version(log, 60, 25, collect, &c),
                     0);
    ck_assert_int_eq(c.n, 0);
    ck_assert_int_eq(
        persistent_log_foreach_version(log, INT64_MIN, INT64_MAX, collect, &c),
        0);
    ck_assert_int_eq(c.n, 10);
    c.n = 0;
    ck_assert_int_eq(persistent_log_foreach_index(log, -3, -1, collect, &c), 0);
    ck_assert_int_eq(c.n, 3);
    ck_assert_int_eq(c.v[0], 80);
    c.n = 0;
    ck_assert_int_eq(persistent_log_foreach_index(log, -100, 2, collect, &c),
                     0);
    ck_assert_int_eq(c.n, 3);
    c.n = 0;
    c.stop_after = 2;
    ck_assert_int_eq(persistent_log_foreach_index(log, 0, 9, collect, &c), 77);
    ck_assert_int_eq(c.n, 2);
    persistent_log_close(log);
}
END_TEST

START_TEST(lookups_after_trim_and_truncate)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = ten(dir);
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_trim(log, 35), 0); /* drops 10, 20, 30 */
    ck_assert_uint_eq(persistent_log_count(log), 7);
    ck_assert_int_eq(persistent_log_first_version(log), 40);
    ck_assert_int_eq(persistent_log_first_index(log), 3);
    ck_assert_int_eq(persistent_log_get(log, 30, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_version(log, 35, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, 2, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, 3, &e), 0);
    ck_assert_int_eq(e.version, 40);
    ck_assert_int_eq(persistent_log_get_at_time(log, 6, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, -7, &e), 0);
    ck_assert_int_eq(e.version, 40);
    ck_assert_int_eq(persistent_log_trim_index(log, 5), 0); /* drops 40, 50 */
    ck_assert_int_eq(persistent_log_first_version(log), 60);
    ck_assert_int_eq(persistent_log_get_at_time(log, 7, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_at_time(log, 9, &e), 0);
    ck_assert_int_eq(e.version, 90);

    ck_assert_int_eq(persistent_log_truncate(log, 85), 0); /* drops 90, 100 */
    ck_assert_int_eq(persistent_log_last_version(log), 80);
    ck_assert_int_eq(persistent_log_last_index(log), 7);
    ck_assert_int_eq(persistent_log_get_at_time(log, 100, &e), 0);
    ck_assert_int_eq(e.version, 80);
    ck_assert_int_eq(persistent_log_get(log, 90, &e), -ENOENT);
    /* After a truncate, versions continue above what is left. */
    ck_assert_int_eq(persistent_log_append(log, 85, 10, "x", 1), 0);
    ck_assert_int_eq(persistent_log_get_index(log, -1, &e), 0);
    ck_assert_int_eq(e.version, 85);
    ck_assert_int_eq(e.index, 8);

    /* Trim everything: indexes keep counting. */
    ck_assert_int_eq(persistent_log_trim(log, INT64_MAX), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    ck_assert_int_eq(persistent_log_first_index(log), 9);
    ck_assert_int_eq(persistent_log_last_index(log), 8);
    ck_assert_int_eq(persistent_log_append(log, 200, 20, "y", 1), 0);
    ck_assert_int_eq(persistent_log_get_index(log, 9, &e), 0);
    ck_assert_int_eq(e.version, 200);
    persistent_log_close(log);

    /* And the same after a reopen. */
    log = tc_open(dir, "ten");
    ck_assert_uint_eq(persistent_log_count(log), 1);
    ck_assert_int_eq(persistent_log_get_index(log, 9, &e), 0);
    ck_assert_int_eq(e.version, 200);
    ck_assert_mem_eq(e.data, "y", 1);
    persistent_log_close(log);
}
END_TEST

START_TEST(limits_give_enospc_and_stay_usable)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.max_log_entry = 16;
    opts.max_data_size = 8192;
    struct persistent_log *log = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "lim", &log, NULL), 0);
    int64_t v = 1;
    for (; v <= 16; v++)
        ck_assert_int_eq(persistent_log_append(log, v, v, "abc", 3), 0);
    ck_assert_int_eq(persistent_log_append(log, v, v, "abc", 3), -ENOSPC);
    ck_assert_int_eq(persistent_log_trim(log, 5), 0);
    ck_assert_int_eq(persistent_log_append(log, v, v, "abc", 3), 0);
    v++;
    /* Data size: 8 KiB including headers. */
    static uint8_t chunk[3000];
    ck_assert_int_eq(persistent_log_trim(log, INT64_MAX), 0);
    ck_assert_int_eq(persistent_log_append(log, v++, 100, chunk, 3000), 0);
    ck_assert_int_eq(persistent_log_append(log, v++, 100, chunk, 3000), 0);
    ck_assert_int_eq(persistent_log_append(log, v, 100, chunk, 3000), -ENOSPC);
    ck_assert_uint_eq(persistent_log_count(log), 2);
    ck_assert_int_eq(
        persistent_log_trim_index(log, persistent_log_first_index(log) + 1), 0);
    ck_assert_int_eq(persistent_log_append(log, v, 100, chunk, 3000), 0);
    ck_assert_int_eq(persistent_log_persist(log, v), 0);
    persistent_log_close(log);
    ck_assert_int_eq(persistent_log_open(&opts, "lim", &log, NULL), 0);
    ck_assert_uint_eq(persistent_log_count(log), 2);
    persistent_log_close(log);
}
END_TEST

START_TEST(bad_arguments)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_log *log = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "../x", &log, NULL), -EINVAL);
    ck_assert_int_eq(persistent_log_open(&opts, ".hidden", &log, NULL),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_open(&opts, "", &log, NULL), -EINVAL);
    ck_assert_int_eq(persistent_log_open(&opts, NULL, &log, NULL), -EINVAL);
    opts.max_log_entry = 0;
    ck_assert_int_eq(persistent_log_open(&opts, "x", &log, NULL), -EINVAL);
    ck_assert_ptr_null(log);
    persistent_log_close(NULL);
    ck_assert_str_eq(persistent_strerror(-EBADMSG),
                     "EBADMSG: damaged log file or malformed bytes");
    /* Two opens of the same log at once. */
    struct persistent_log *a = tc_open(dir, "busy");
    tc_options(&opts, dir);
    ck_assert_int_eq(persistent_log_open(&opts, "busy", &log, NULL), -EBUSY);
    persistent_log_close(a);
}
END_TEST

/* The searches against a linear scan, on keys that are anything but evenly
 * spread: view changes (jumps of 2^32), bursts of equal timestamps, long
 * quiet gaps; after trims so that the ring wraps. */
START_TEST(search_matches_linear_scan)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.max_log_entry = 4096;
    struct persistent_log *log = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "search", &log, NULL), 0);
    enum { N = 12000 };
    static int64_t ver[N], ts[N];
    unsigned x = 4242;
    int32_t view = 0, seq = 0;
    int64_t t = -1000;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245 + 12345;
        unsigned r = (x >> 16) % 100;
        if (r < 3) {
            view++;
            seq = 0;
        }
        seq += 1 + (int32_t)((x >> 8) % (r < 50 ? 2 : 40));
        ver[i] = persistent_version_make(view, seq);
        t += r < 40 ? 0 : (r < 97 ? (int64_t)(x % 7) : 1000000000);
        ts[i] = t;
        ck_assert_int_eq(persistent_log_append(log, ver[i], ts[i], NULL, 0), 0);
        if (persistent_log_count(log) == 4096)
            ck_assert_int_eq(persistent_log_trim_index(
                                 log, persistent_log_first_index(log) + 1500),
                             0);
    }
    int first = (int)persistent_log_first_index(log);
    for (int q = 0; q < 5000; q++) {
        x = x * 1103515245 + 12345;
        int i = first + (int)((x >> 4) % (unsigned)(N - first));
        int64_t kv = ver[i] + (int64_t)((x >> 20) % 3) - 1;
        int64_t kt = ts[i] + (int64_t)((x >> 22) % 3) - 1;
        int want_v = -1, want_t = -1;
        for (int j = first; j < N; j++) {
            if (ver[j] <= kv)
                want_v = j;
            if (ts[j] <= kt)
                want_t = j;
        }
        struct persistent_entry e;
        int rv = persistent_log_get_at_version(log, kv, &e);
        if (want_v < 0) {
            ck_assert_int_eq(rv, -ENOENT);
        } else {
            ck_assert_int_eq(rv, 0);
            ck_assert_int_eq(e.index, want_v);
        }
        int rt = persistent_log_get_at_time(log, kt, &e);
        if (want_t < 0) {
            ck_assert_int_eq(rt, -ENOENT);
        } else {
            ck_assert_int_eq(rt, 0);
            ck_assert_int_eq(e.index, want_t);
        }
        ck_assert_int_eq(persistent_log_get(log, ver[i], &e), 0);
        ck_assert_int_eq(e.index, i);
    }
    persistent_log_close(log);
}
END_TEST

/* Dense keys, then a jump of 10^12: interpolation guesses land near the
 * start, where backward probes must not run below the first entry. */
START_TEST(search_near_the_ends)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "ends");
    for (int64_t i = 0; i < 30; i++)
        ck_assert_int_eq(persistent_log_append(log, 2 * i, 2 * i, NULL, 0), 0);
    for (int64_t i = 0; i < 1000; i++)
        ck_assert_int_eq(persistent_log_append(log, 1000000000000 + i,
                                               1000000000000 + i, NULL, 0),
                         0);
    struct persistent_entry e;
    for (int64_t k = 0; k < 70; k++) {
        int64_t want = k < 58 ? k / 2 : 29;
        ck_assert_int_eq(persistent_log_get_at_version(log, k, &e), 0);
        ck_assert_int_eq(e.index, want);
        ck_assert_int_eq(persistent_log_get_at_time(log, k, &e), 0);
        ck_assert_int_eq(e.index, want);
        ck_assert_int_eq(persistent_log_get(log, k, &e),
                         k % 2 == 0 && k < 60 ? 0 : -ENOENT);
    }
    for (int64_t i = 0; i < 1000; i += 7) {
        ck_assert_int_eq(
            persistent_log_get_at_version(log, 1000000000000 + i, &e), 0);
        ck_assert_int_eq(e.index, 30 + i);
    }
    persistent_log_close(log);

    /* One early timestamp, then a long run of equal ones: the guess for a
     * time just after the first lands inside the run. */
    log = tc_open(dir, "run");
    ck_assert_int_eq(persistent_log_append(log, 0, 0, NULL, 0), 0);
    for (int64_t v = 1; v < 1029; v++)
        ck_assert_int_eq(persistent_log_append(log, v, 999, NULL, 0), 0);
    ck_assert_int_eq(persistent_log_append(log, 1029, 1000, NULL, 0), 0);
    for (int64_t t = 0; t < 999; t += 3) {
        ck_assert_int_eq(persistent_log_get_at_time(log, t, &e), 0);
        ck_assert_int_eq(e.version, 0);
    }
    ck_assert_int_eq(persistent_log_get_at_time(log, 999, &e), 0);
    ck_assert_int_eq(e.version, 1028);
    persistent_log_close(log);
}
END_TEST

Suite *tc_lookup_suite(void)
{
    Suite *s = suite_create("lookup");
    TCase *tc = tcase_create("lookup");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, versions_encode_view_and_seq);
    tcase_add_test(tc, empty_log);
    tcase_add_test(tc, single_entry);
    tcase_add_test(tc, append_rejects_bad_order);
    tcase_add_test(tc, time_lookup_equal_timestamps);
    tcase_add_test(tc, version_and_index_lookups);
    tcase_add_test(tc, range_iteration);
    tcase_add_test(tc, search_matches_linear_scan);
    tcase_add_test(tc, search_near_the_ends);
    tcase_add_test(tc, lookups_after_trim_and_truncate);
    tcase_add_test(tc, limits_give_enospc_and_stay_usable);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}
