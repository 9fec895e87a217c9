/* Reopen, reset, persist, trim, truncate, and damaged files. */
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SEED 7
#define MAXP 3000

static void verify_range_max(struct persistent_log *log, int64_t first,
                             int64_t last, size_t max)
{
    ck_assert_int_eq(persistent_log_first_version(log), first);
    ck_assert_int_eq(persistent_log_last_version(log), last);
    ck_assert_uint_eq(persistent_log_count(log), (uint64_t)(last - first + 1));
    for (int64_t v = first; v <= last; v++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(log, v, &e), 0);
        ck_assert_int_eq(e.timestamp_ns, v * 10);
        ck_assert_msg(tc_payload_ok(SEED, &e, max), "payload of %lld",
                      (long long)v);
    }
}

static void verify_range(struct persistent_log *log, int64_t first,
                         int64_t last)
{
    verify_range_max(log, first, last, MAXP);
}

static void path_of(char *buf, size_t len, const char *dir, const char *name,
                    const char *suffix)
{
    snprintf(buf, len, "%s/%s%s", dir, name, suffix);
}

START_TEST(reopen_keeps_entries_and_reset_discards)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "f");
    tc_fill(log, SEED, 1, 300, MAXP);
    ck_assert_int_eq(persistent_log_persist(log, 300), 0);
    persistent_log_close(log);
    log = tc_open(dir, "f");
    verify_range(log, 1, 300);
    ck_assert_int_eq(persistent_log_latest_persisted(log), 300);
    tc_fill(log, SEED, 301, 310, MAXP);
    persistent_log_close(log); /* not persisted, but not torn either */
    log = tc_open(dir, "f");
    verify_range(log, 1, 310);
    persistent_log_close(log);

    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.reset = true;
    ck_assert_int_eq(persistent_log_open(&opts, "f", &log, NULL), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    persistent_log_close(log);
    log = tc_open(dir, "f");
    ck_assert_uint_eq(persistent_log_count(log), 0);
    persistent_log_close(log);
}
END_TEST

struct calls {
    int n;
    int64_t last;
};

static void on_persisted(void *ctx, int64_t v)
{
    struct calls *c = ctx;
    c->n++;
    c->last = v;
}

START_TEST(persist_and_callback)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct calls calls = {0, -1};
    opts.on_persisted = on_persisted;
    opts.persisted_ctx = &calls;
    struct persistent_log *log = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "p", &log, NULL), 0);
    tc_fill(log, SEED, 1, 5, MAXP);
    ck_assert_int_eq(persistent_log_latest_persisted(log), -1);
    ck_assert_int_eq(persistent_log_persist(log, 3), 0);
    ck_assert_int_eq(persistent_log_latest_persisted(log), 5);
    ck_assert_int_eq(calls.n, 1);
    ck_assert_int_eq(calls.last, 5);
    ck_assert_int_eq(persistent_log_persist(log, 4), 0);
    ck_assert_int_eq(persistent_log_persist(log, 100), 0);
    ck_assert_int_eq(calls.n, 1);
    tc_fill(log, SEED, 6, 6, MAXP);
    ck_assert_int_eq(persistent_log_persist(log, 6), 0);
    ck_assert_int_eq(calls.n, 2);
    ck_assert_int_eq(calls.last, 6);
    /* Truncate lowers it, without a callback. */
    ck_assert_int_eq(persistent_log_truncate(log, 4), 0);
    ck_assert_int_eq(persistent_log_latest_persisted(log), 4);
    ck_assert_int_eq(calls.n, 2);
    persistent_log_close(log);
}
END_TEST

START_TEST(trim_reclaims_space)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "t", ".log");
    struct persistent_log *log = tc_open(dir, "t");
    static uint8_t chunk[8000];
    for (int64_t v = 1; v <= 1000; v++) {
        memset(chunk, (int)v, sizeof(chunk));
        ck_assert_int_eq(persistent_log_append(log, v, v, chunk, 8000), 0);
    }
    ck_assert_int_eq(persistent_log_persist(log, 1000), 0);
    struct stat before, after;
    ck_assert_int_eq(stat(data, &before), 0);
    ck_assert_int_eq(persistent_log_trim(log, 901), 0);
    ck_assert_int_eq(stat(data, &after), 0);
    /* 900 of 1000 entries of ~8 KB gone: at least 6 MB handed back. */
    ck_assert_msg((before.st_blocks - after.st_blocks) * 512 > 6000000,
                  "blocks %lld -> %lld", (long long)before.st_blocks,
                  (long long)after.st_blocks);
    ck_assert_uint_eq(persistent_log_count(log), 100);
    /* 48-byte headers, and pages padded out when that costs <= 1/16. */
    ck_assert_uint_ge(persistent_log_data_size(log), 100 * (48 + 8000));
    ck_assert_uint_le(persistent_log_data_size(log),
                      100 * (48 + 8000) * 17 / 16);
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_get(log, 901, &e), 0);
    ck_assert_int_eq(((const uint8_t *)e.data)[7999], (uint8_t)901);
    /* Appends continue after the trim and the window slides with it. */
    for (int64_t v = 1001; v <= 1100; v++) {
        memset(chunk, (int)v, sizeof(chunk));
        ck_assert_int_eq(persistent_log_append(log, v, v, chunk, 8000), 0);
    }
    ck_assert_int_eq(persistent_log_trim_index(log, 1050), 0);
    ck_assert_int_eq(persistent_log_first_version(log), 1051);
    persistent_log_close(log);
    log = tc_open(dir, "t");
    ck_assert_int_eq(persistent_log_first_version(log), 1051);
    ck_assert_int_eq(persistent_log_first_index(log), 1050);
    ck_assert_int_eq(persistent_log_last_version(log), 1100);
    ck_assert_int_eq(persistent_log_get(log, 1100, &e), 0);
    ck_assert_int_eq(((const uint8_t *)e.data)[0], (uint8_t)1100);
    persistent_log_close(log);
}
END_TEST

START_TEST(truncate_is_durable)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "tr");
    tc_fill(log, SEED, 1, 100, MAXP);
    ck_assert_int_eq(persistent_log_persist(log, 100), 0);
    ck_assert_int_eq(persistent_log_truncate(log, 60), 0);
    tc_fill(log, SEED, 61, 70, MAXP);
    persistent_log_close(log);
    log = tc_open(dir, "tr");
    verify_range(log, 1, 70);
    ck_assert_int_eq(persistent_log_truncate(log, 0), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    ck_assert_int_eq(persistent_log_latest_persisted(log), -1);
    tc_fill(log, SEED, 1, 3, MAXP);
    ck_assert_int_eq(persistent_log_persist(log, 3), 0);
    persistent_log_close(log);
    log = tc_open(dir, "tr");
    verify_range(log, 1, 3);
    persistent_log_close(log);
}
END_TEST

/* Views stay valid while later appends fill and write out the stage, and
 * entries larger than the stage go straight to the file; close gives the
 * reserved blocks back. */
START_TEST(views_and_large_entries)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "v", ".log");
    struct persistent_log *log = tc_open(dir, "v");
    ck_assert_int_eq(persistent_log_append(log, 1, 1, "first", 5), 0);
    struct persistent_entry first;
    ck_assert_int_eq(persistent_log_get(log, 1, &first), 0);
    static uint8_t chunk[3 << 20];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 7 + 3);
    for (int64_t v = 2; v <= 40; v++)
        ck_assert_int_eq(persistent_log_append(log, v, v, chunk, 100000), 0);
    ck_assert_int_eq(persistent_log_append(log, 41, 41, chunk, sizeof(chunk)),
                     0);
    ck_assert_int_eq(persistent_log_append(log, 42, 42, "last", 4), 0);
    ck_assert_mem_eq(first.data, "first", 5);
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_get(log, 41, &e), 0);
    ck_assert_uint_eq(e.size, sizeof(chunk));
    ck_assert_mem_eq(e.data, chunk, sizeof(chunk));
    ck_assert_int_eq(persistent_log_get_index(log, -1, &e), 0);
    ck_assert_mem_eq(e.data, "last", 4);
    ck_assert_mem_eq(first.data, "first", 5);
    persistent_log_close(log);
    struct stat st;
    ck_assert_int_eq(stat(data, &st), 0);
    ck_assert_int_le((long long)st.st_blocks * 512,
                     (long long)st.st_size + 65536);
    log = tc_open(dir, "v");
    ck_assert_uint_eq(persistent_log_count(log), 42);
    ck_assert_int_eq(persistent_log_get(log, 41, &e), 0);
    ck_assert_mem_eq(e.data, chunk, sizeof(chunk));
    ck_assert_int_eq(persistent_log_get(log, 20, &e), 0);
    ck_assert_mem_eq(e.data, chunk, 100000);
    persistent_log_close(log);
}
END_TEST

/* Records of 64 KiB and more end on a page (so the next persist does not
 * rewrite a page the last one wrote); the padding costs at most 1/16;
 * everything reads back byte-exact after a reopen. */
START_TEST(large_records_end_on_pages)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "pg", ".log");
    struct persistent_log *log = tc_open(dir, "pg");
    static uint8_t chunk[200000 + 16];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 13 + 5);
    static const size_t sizes[] = {1000, 65536,  5,    20000,  70001, 65536,
                                   0,    131072, 4000, 199999, 65536, 65536};
    const size_t n = sizeof(sizes) / sizeof(sizes[0]);
    uint64_t raw = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t v = (int64_t)i + 1;
        ck_assert_int_eq(persistent_log_append(log, v, v, chunk + i, sizes[i]),
                         0);
        ck_assert_int_eq(persistent_log_persist(log, v), 0);
        raw += 48 + ((sizes[i] + 7) & ~(size_t)7);
        if (sizes[i] >= 65536)
            ck_assert_msg(tc_file_size(data) % 4096 == 0,
                          "entry %zu (%zu bytes) ends at %llu", i, sizes[i],
                          (unsigned long long)tc_file_size(data));
    }
    ck_assert_uint_ge(persistent_log_data_size(log), raw);
    ck_assert_uint_le(persistent_log_data_size(log), raw + raw / 16);
    persistent_log_close(log);
    log = tc_open(dir, "pg");
    ck_assert_uint_eq(persistent_log_count(log), n);
    for (size_t i = 0; i < n; i++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(log, (int64_t)i + 1, &e), 0);
        ck_assert_uint_eq(e.size, sizes[i]);
        if (sizes[i])
            ck_assert_mem_eq(e.data, chunk + i, sizes[i]);
    }
    /* Appends after the reopen continue where the padding ended. */
    ck_assert_int_eq(persistent_log_append(log, 100, 100, chunk, 65536), 0);
    ck_assert_int_eq(persistent_log_persist(log, 100), 0);
    ck_assert_uint_eq(tc_file_size(data) % 4096, 0);
    persistent_log_close(log);
}
END_TEST

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

static int try_open(const char *dir, const char *name,
                    struct persistent_error *err)
{
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_log *log = NULL;
    int e = persistent_log_open(&opts, name, &log, err);
    persistent_log_close(log);
    return e;
}

START_TEST(torn_tail_is_recovered)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "torn", ".log");
    struct persistent_log *log = tc_open(dir, "torn");
    tc_fill(log, SEED, 1, 100, 200);
    ck_assert_int_eq(persistent_log_persist(log, 100), 0);
    uint64_t durable = persistent_log_data_size(log) + 8192;
    tc_fill(log, SEED, 101, 110, 200);
    uint64_t end = persistent_log_data_size(log) + 8192;
    persistent_log_close(log);
    /* Cut in the middle of the unpersisted part: the cut entry and what
     * follows go, the rest stays. */
    tc_truncate_file(data, durable + (end - durable) / 2 + 3);
    log = tc_open(dir, "torn");
    ck_assert_ptr_nonnull(strstr(tc_last_log(), "torn tail"));
    int64_t last = persistent_log_last_version(log);
    ck_assert_int_ge(last, 100);
    ck_assert_int_lt(last, 110);
    ck_assert_int_eq(persistent_log_latest_persisted(log), last);
    tc_fill(log, SEED, last + 1, 120, 200);
    persistent_log_close(log);
    log = tc_open(dir, "torn");
    for (int64_t v = 1; v <= 120; v++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(log, v, &e), 0);
        ck_assert(tc_payload_ok(SEED, &e, 200));
    }
    persistent_log_close(log);
    /* Zeros after the end (a size update without the data) are a torn
     * tail too. */
    uint64_t size = tc_file_size(data);
    tc_truncate_file(data, size + 10000);
    log = tc_open(dir, "torn");
    ck_assert_int_eq(persistent_log_last_version(log), 120);
    persistent_log_close(log);
    ck_assert_uint_eq(tc_file_size(data), size);
}
END_TEST

START_TEST(damage_is_detected)
{
    char dir[256], data[320], meta[320], pristine[320], pmeta[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "d", ".log");
    path_of(meta, sizeof(meta), dir, "d", ".meta");
    path_of(pristine, sizeof(pristine), dir, "pristine", "");
    path_of(pmeta, sizeof(pmeta), dir, "pristine-meta", "");
    struct persistent_log *log = tc_open(dir, "d");
    tc_fill(log, SEED, 1, 200, 500);
    ck_assert_int_eq(persistent_log_persist(log, 200), 0);
    persistent_log_close(log);
    copy_file(data, pristine);
    copy_file(meta, pmeta);
    uint64_t size = tc_file_size(data);

    /* Bit flips anywhere in the persisted file: -EBADMSG, the offset of
     * the damaged entry (at or before the flip), the file untouched. */
    srand(1234);
    for (int round = 0; round < 40; round++) {
        uint64_t at = (uint64_t)rand() % size;
        tc_flip_bit(data, at, rand() % 8);
        struct persistent_error err;
        int e = try_open(dir, "d", &err);
        if (at < 8192 && e == 0) {
            /* A header slot of NAME.log (or the unused rest of its two
             * pages): NAME.meta's copy stands in, nothing is lost. */
            struct persistent_log *l = tc_open(dir, "d");
            verify_range_max(l, 1, 200, 500);
            persistent_log_close(l);
            copy_file(pristine, data);
            copy_file(pmeta, meta);
            continue;
        }
        ck_assert_msg(e == -EBADMSG, "flip at %llu: %s", (unsigned long long)at,
                      persistent_strerror(e));
        ck_assert_str_eq(err.file, data);
        ck_assert_uint_le(err.offset, at);
        /* A record of <= 500 bytes: 48 + 504, plus at most 1/16 of that
         * when padded to a page end (format 2). */
        ck_assert_msg(at < 8192 || at - err.offset < (48 + 504) * 17 / 16,
                      "flip at %llu reported at %llu", (unsigned long long)at,
                      (unsigned long long)err.offset);
        ck_assert_uint_eq(tc_file_size(data), size);
        copy_file(pristine, data);
    }
    /* Truncated at any point inside the durable part. */
    for (int round = 0; round < 20; round++) {
        uint64_t at = (uint64_t)rand() % size;
        tc_truncate_file(data, at);
        struct persistent_error err;
        ck_assert_int_eq(try_open(dir, "d", &err), -EBADMSG);
        ck_assert_str_eq(err.file, data);
        copy_file(pristine, data);
    }
    ck_assert_int_eq(try_open(dir, "d", NULL), 0);

    /* NAME.meta: one damaged slot falls back to the other (the log is
     * intact here, so it opens); both damaged, truncated or missing is
     * -EBADMSG naming the metadata file. */
    struct persistent_error err;
    tc_flip_bit(meta, 30, 2);
    ck_assert_int_eq(try_open(dir, "d", &err), 0);
    copy_file(pmeta, meta);
    tc_flip_bit(meta, 30, 2);
    tc_flip_bit(meta, 4096 + 30, 2);
    ck_assert_int_eq(try_open(dir, "d", &err), -EBADMSG);
    ck_assert_str_eq(err.file, meta);
    copy_file(pmeta, meta);
    tc_truncate_file(meta, 4096);
    ck_assert_int_eq(try_open(dir, "d", &err), -EBADMSG);
    ck_assert_str_eq(err.file, meta);
    ck_assert_int_eq(unlink(meta), 0);
    ck_assert_int_eq(try_open(dir, "d", &err), -EBADMSG);
    ck_assert_str_eq(err.file, meta);
    copy_file(pmeta, meta);
    ck_assert_int_eq(try_open(dir, "d", NULL), 0);

    /* A metadata file of another log (another nonce) is refused. */
    log = tc_open(dir, "other");
    persistent_log_close(log);
    char ometa[320];
    path_of(ometa, sizeof(ometa), dir, "other", ".meta");
    copy_file(ometa, meta);
    ck_assert_int_eq(try_open(dir, "d", &err), -EBADMSG);
    copy_file(pmeta, meta);
    log = tc_open(dir, "d");
    verify_range_max(log, 1, 200, 500);
    persistent_log_close(log);
}
END_TEST

/* A data file of another on-disk format version (format 2 had a 64-byte
 * header and no write generation) is refused with a message naming both
 * versions, and left as it was. */
START_TEST(other_format_is_refused)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "f2", ".log");
    struct persistent_log *log = tc_open(dir, "f2");
    tc_fill(log, SEED, 1, 10, 100);
    ck_assert_int_eq(persistent_log_persist(log, 10), 0);
    persistent_log_close(log);
    int fd = open(data, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t h[64];
    ck_assert_int_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
    ck_assert_uint_eq(h[8], 3); /* the current format, little-endian */
    h[8] = 2;
    uint64_t sum = XXH3_64bits(h, 56);
    for (int i = 0; i < 8; i++)
        h[56 + i] = (uint8_t)(sum >> (8 * i));
    ck_assert_int_eq(pwrite(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    uint64_t size = tc_file_size(data);
    struct persistent_error err;
    ck_assert_int_eq(try_open(dir, "f2", &err), -EBADMSG);
    ck_assert_str_eq(err.file, data);
    ck_assert_uint_eq(err.offset, 8);
    ck_assert_msg(strstr(err.msg, "format 2") && strstr(err.msg, "format 3"),
                  "%s", err.msg);
    ck_assert_uint_eq(tc_file_size(data), size);
}
END_TEST

Suite *tc_durability_suite(void)
{
    Suite *s = suite_create("durability");
    TCase *tc = tcase_create("durability");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, reopen_keeps_entries_and_reset_discards);
    tcase_add_test(tc, persist_and_callback);
    tcase_add_test(tc, trim_reclaims_space);
    tcase_add_test(tc, truncate_is_durable);
    tcase_add_test(tc, views_and_large_entries);
    tcase_add_test(tc, large_records_end_on_pages);
    tcase_add_test(tc, torn_tail_is_recovered);
    tcase_add_test(tc, damage_is_detected);
    tcase_add_test(tc, other_format_is_refused);
    suite_add_tcase(s, tc);
    return s;
}
