/* Careless and hostile use of the public API: every refused call returns
 * a negative errno, does not crash or leak, and leaves the log as it was. */
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SEED 11

static void path_of(char *buf, size_t len, const char *dir, const char *name,
                    const char *suffix)
{
    snprintf(buf, len, "%s/%s%s", dir, name, suffix);
}

static uint8_t *read_file(const char *path, size_t len)
{
    uint8_t *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, buf, len, 0), (ssize_t)len);
    close(fd);
    return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, buf, len, 0), (ssize_t)len);
    close(fd);
}

static int try_open_opts(const struct persistent_options *opts,
                         const char *name, struct persistent_error *err)
{
    struct persistent_log *log = NULL;
    int e = persistent_log_open(opts, name, &log, err);
    if (e == 0)
        persistent_log_close(log);
    else
        ck_assert_ptr_null(log);
    return e;
}

/* Versions 1..n with timestamps v*10 and the tc_payload bytes (<= max). */
static void check_entries(struct persistent_log *log, int64_t first,
                          int64_t last, size_t max)
{
    ck_assert_uint_eq(persistent_log_count(log), (uint64_t)(last - first + 1));
    ck_assert_int_eq(persistent_log_first_version(log), first);
    ck_assert_int_eq(persistent_log_last_version(log), last);
    for (int64_t v = first; v <= last; v++) {
        struct persistent_entry e;
        ck_assert_int_eq(persistent_log_get(log, v, &e), 0);
        ck_assert_int_eq(e.timestamp_ns, v * 10);
        ck_assert_msg(tc_payload_ok(SEED, &e, max), "payload of %lld",
                      (long long)v);
    }
}

/* ---- options and names ------------------------------------------------- */

START_TEST(open_rejects_bad_names_and_options)
{
    char dir[256], path[400];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_log *log = (struct persistent_log *)&opts;
    struct persistent_error err;

    char longname[260];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    const char *bad_names[] = {"a/b", "/abs", "..", ".",
                               "a b", "x\n",  "é",  longname};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        log = (struct persistent_log *)&opts;
        ck_assert_int_eq(persistent_log_open(&opts, bad_names[i], &log, &err),
                         -EINVAL);
        ck_assert_ptr_null(log);
    }
    longname[200] = 0; /* the longest name allowed */
    ck_assert_int_eq(try_open_opts(&opts, longname, NULL), 0);
    ck_assert_int_eq(persistent_log_open(&opts, "x", NULL, &err), -EINVAL);

    /* The size field: too small, too large (above 4096), or cutting a
     * field in two. */
    struct persistent_options o = opts;
    o.size = 0;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    /* A newer, larger struct: fine when the bytes this library does not
     * know are zero. */
    struct {
        struct persistent_options o;
        uint64_t newer;
    } w;
    memset(&w, 0, sizeof(w));
    w.o = opts;
    w.o.size = sizeof(w);
    ck_assert_int_eq(try_open_opts(&w.o, "newer", NULL), 0);
    w.newer = 1;
    ck_assert_int_eq(try_open_opts(&w.o, "x", NULL), -EINVAL);
    o.size = (size_t)-1;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.size = offsetof(struct persistent_options, log) + 4;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.size = offsetof(struct persistent_options, max_data_size);
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    /* An older, shorter struct: the fields it has count, the rest are the
     * defaults (so the dangling callback below is never called). */
    o.size = offsetof(struct persistent_options, log);
    o.log = (persistent_log_fn)(uintptr_t)0x10;
    ck_assert_int_eq(try_open_opts(&o, "older", NULL), 0);

    /* Limits. */
    o = opts;
    o.max_log_entry = 0;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.max_log_entry = UINT64_MAX;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o = opts;
    o.max_data_size = 0;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.max_data_size = UINT64_MAX;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.max_data_size = (1ull << 46) + 1;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.max_log_entry = (1ull << 32) + 1;
    o.max_data_size = 1ull << 30;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    /* The largest limits: address space only; where the machine has not
     * that much, -ENOMEM. */
    o.max_log_entry = 1ull << 32;
    o.max_data_size = 1ull << 46;
    struct persistent_log *huge = NULL;
    int he = persistent_log_open(&o, "huge", &huge, NULL);
    ck_assert_msg(he == 0 || he == -ENOMEM, "%s", persistent_strerror(he));
    if (he == 0) {
        ck_assert_int_eq(persistent_log_append(huge, 1, 1, "x", 1), 0);
        persistent_log_close(huge);
    }

    /* Directories: empty, NULL, a file, missing parents. */
    o = opts;
    o.directory = "";
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    o.directory = NULL;
    ck_assert_int_eq(try_open_opts(&o, "x", NULL), -EINVAL);
    path_of(path, sizeof(path), dir, "plain-file", "");
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    o.directory = path;
    ck_assert_int_eq(try_open_opts(&o, "x", &err), -ENOTDIR);
    ck_assert_str_eq(err.file, path);
    path_of(path, sizeof(path), dir, "no/such/parent", "");
    o.directory = path;
    ck_assert_int_eq(try_open_opts(&o, "x", &err), -ENOENT);
    ck_assert_str_eq(persistent_strerror(-ENOTDIR), "ENOTDIR: not a directory");

    /* NAME.log that is a directory. */
    path_of(path, sizeof(path), dir, "isdir", ".log");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ck_assert_int_lt(try_open_opts(&opts, "isdir", NULL), 0);
    /* NAME.log empty or shorter than its header. */
    path_of(path, sizeof(path), dir, "short", ".log");
    fd = open(path, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(try_open_opts(&opts, "short", &err), -EBADMSG);
    ck_assert_str_eq(err.file, path);
    ck_assert_uint_eq(tc_file_size(path), 0);

    /* FIFOs where the files or their temporaries go: refused or replaced,
     * never waited on. */
    struct persistent_log *ok = tc_open(dir, "fifo");
    persistent_log_close(ok);
    path_of(path, sizeof(path), dir, "fifo", ".meta");
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    ck_assert_int_eq(try_open_opts(&opts, "fifo", &err), -EBADMSG);
    ck_assert_str_eq(err.file, path);
    path_of(path, sizeof(path), dir, "fifo2", ".log");
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    ck_assert_int_eq(try_open_opts(&opts, "fifo2", &err), -EBADMSG);
    ck_assert_str_eq(err.file, path);
    path_of(path, sizeof(path), dir, "fifo3", ".meta.tmp");
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    path_of(path, sizeof(path), dir, "fifo3", ".log.tmp");
    ck_assert_int_eq(mkfifo(path, 0644), 0);
    ck_assert_int_eq(try_open_opts(&opts, "fifo3", NULL), 0);
    ok = tc_open(dir, "fifo3");
    ck_assert_int_eq(persistent_log_append(ok, 1, 1, "x", 1), 0);
    persistent_log_close(ok);
}
END_TEST

/* A second open of a log already open is refused, also with reset (which
 * must not delete the files of the open log). */
START_TEST(second_open_with_reset_is_refused)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "twice");
    tc_fill(log, SEED, 1, 20, 300);
    ck_assert_int_eq(persistent_log_persist(log, 20), 0);

    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.reset = true;
    struct persistent_log *other = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "twice", &other, NULL), -EBUSY);
    ck_assert_ptr_null(other);
    opts.reset = false;
    ck_assert_int_eq(persistent_log_open(&opts, "twice", &other, NULL), -EBUSY);

    /* The first log is intact, usable, and its files are the real ones. */
    tc_fill(log, SEED, 21, 30, 300);
    ck_assert_int_eq(persistent_log_persist(log, 30), 0);
    persistent_log_close(log);
    log = tc_open(dir, "twice");
    check_entries(log, 1, 30, 300);
    persistent_log_close(log);

    /* Reset of a log nobody holds still works. */
    opts.reset = true;
    ck_assert_int_eq(persistent_log_open(&opts, "twice", &log, NULL), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    persistent_log_close(log);
}
END_TEST

/* Reopening with limits below what the log holds is -EINVAL and changes
 * nothing, however far the file reaches beyond the smaller window. */
START_TEST(reopen_with_smaller_limits)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "big", ".log");
    struct persistent_log *log = tc_open(dir, "big");
    static uint8_t chunk[300000];
    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = (uint8_t)(i * 7 + 1);
    for (int64_t v = 1; v <= 3; v++)
        ck_assert_int_eq(persistent_log_append(log, v, v, chunk, sizeof(chunk)),
                         0);
    ck_assert_int_eq(persistent_log_persist(log, 3), 0);
    persistent_log_close(log);
    uint64_t size = tc_file_size(data);

    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.max_data_size = 4096;
    struct persistent_error err;
    ck_assert_int_eq(try_open_opts(&opts, "big", &err), -EINVAL);
    ck_assert_uint_eq(tc_file_size(data), size);
    opts.max_data_size = 400000;
    ck_assert_int_eq(try_open_opts(&opts, "big", &err), -EINVAL);
    ck_assert_uint_eq(tc_file_size(data), size);
    tc_options(&opts, dir);
    opts.max_log_entry = 2;
    ck_assert_int_eq(try_open_opts(&opts, "big", &err), -EINVAL);
    ck_assert_uint_eq(tc_file_size(data), size);

    /* A small log followed by a long zero tail (a torn append of a large
     * entry, or garbage): with a window smaller than the file the tail
     * cannot be judged, so the open is refused and the file kept. */
    log = tc_open(dir, "tail");
    tc_fill(log, SEED, 1, 3, 100);
    ck_assert_int_eq(persistent_log_persist(log, 3), 0);
    persistent_log_close(log);
    path_of(data, sizeof(data), dir, "tail", ".log");
    size = tc_file_size(data);
    tc_truncate_file(data, size + (1u << 20));
    tc_options(&opts, dir);
    opts.max_data_size = 4096;
    ck_assert_int_eq(try_open_opts(&opts, "tail", &err), -EINVAL);
    ck_assert_uint_eq(tc_file_size(data), size + (1u << 20));
    /* With the usual limits it is a torn tail. */
    log = tc_open(dir, "tail");
    check_entries(log, 1, 3, 100);
    persistent_log_close(log);
    ck_assert_uint_eq(tc_file_size(data), size);

    /* The big log is still whole. */
    log = tc_open(dir, "big");
    ck_assert_uint_eq(persistent_log_count(log), 3);
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_get(log, 2, &e), 0);
    ck_assert_uint_eq(e.size, sizeof(chunk));
    ck_assert_mem_eq(e.data, chunk, sizeof(chunk));
    persistent_log_close(log);
}
END_TEST

/* Writes one slot (slot seq % 2, format 3) with a valid checksum into
 * both NAME.log's header and NAME.meta, zeroing the other slot, so that
 * the two files agree and only the fields are hostile. */
static void write_meta(const char *data, const char *path, uint64_t nonce,
                       uint64_t start_off, uint64_t start_index,
                       uint64_t durable, uint64_t seq)
{
    uint8_t b[8192];
    for (int file = 0; file < 2; file++) {
        memset(b, 0, sizeof(b));
        uint8_t *s = b + (seq % 2) * 4096;
        memcpy(s, file ? "DPERMETA" : "DDERPLOG", 8);
        uint32_t v32 = 3; /* format */
        memcpy(s + 8, &v32, 4);
        v32 = 128;
        memcpy(s + 12, &v32, 4);
        memcpy(s + 16, &nonce, 8);
        memcpy(s + 24, &start_off, 8);
        memcpy(s + 32, &start_index, 8);
        memcpy(s + 40, &durable, 8);
        memcpy(s + 48, &seq, 8);
        uint64_t gen = 0, gen_off = 8192;
        int64_t last_ver = -1, last_ts = INT64_MIN;
        memcpy(s + 56, &gen, 8);
        memcpy(s + 64, &gen_off, 8);
        memcpy(s + 72, &last_ver, 8);
        memcpy(s + 80, &last_ts, 8);
        uint64_t h = XXH3_64bits(s, 120);
        memcpy(s + 120, &h, 8);
        int fd = open(file ? path : data, file ? O_WRONLY | O_TRUNC : O_WRONLY);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(pwrite(fd, b, sizeof(b), 0), (ssize_t)sizeof(b));
        close(fd);
    }
}

static uint64_t file_nonce(const char *data)
{
    int fd = open(data, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    uint64_t nonce = 0;
    ck_assert_int_eq(pread(fd, &nonce, 8, 16), 8);
    close(fd);
    return nonce;
}

/* NAME.meta with a valid checksum but absurd fields. */
START_TEST(hostile_metadata)
{
    char dir[256], data[320], meta[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "h", ".log");
    path_of(meta, sizeof(meta), dir, "h", ".meta");
    struct persistent_log *log = tc_open(dir, "h");
    tc_fill(log, SEED, 1, 5, 100);
    ck_assert_int_eq(persistent_log_persist(log, 5), 0);
    persistent_log_close(log);
    uint64_t nonce = file_nonce(data);
    uint64_t size = tc_file_size(data);
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_error err;

    /* The first record beyond the end, far beyond any mapping. */
    const uint64_t offs[] = {size + 4096, (1ull << 62), (1ull << 63) + 64,
                             UINT64_MAX - 7};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        write_meta(data, meta, nonce, offs[i], 0, 8192, 101);
        ck_assert_int_eq(try_open_opts(&opts, "h", &err), -EBADMSG);
        ck_assert_str_eq(err.file, data);
        ck_assert_uint_eq(tc_file_size(data), size);
    }
    /* Indexes so large that counting on from them overflows. */
    const uint64_t idx[] = {(uint64_t)INT64_MAX, (uint64_t)INT64_MAX - 3,
                            1ull << 63};
    for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]); i++) {
        write_meta(data, meta, nonce, 8192, idx[i], 8192, 101);
        ck_assert_int_eq(try_open_opts(&opts, "h", &err), -EBADMSG);
        ck_assert_str_eq(err.file, data);
    }
    /* Durable beyond the end of the file: damage (truncated file). */
    write_meta(data, meta, nonce, 8192, 0, UINT64_MAX, 101);
    ck_assert_int_eq(try_open_opts(&opts, "h", &err), -EBADMSG);
    ck_assert_uint_eq(tc_file_size(data), size);
    /* A large but sane index works and counts on. */
    write_meta(data, meta, nonce, 8192, 1ull << 40, 8192, 101);
    log = tc_open(dir, "h");
    ck_assert_int_eq(persistent_log_first_index(log), 1ll << 40);
    ck_assert_int_eq(persistent_log_last_index(log), (1ll << 40) + 4);
    check_entries(log, 1, 5, 100);
    persistent_log_close(log);
}
END_TEST

/* ---- calls with bad arguments on a live log ----------------------------- */

static int count_entry(void *ctx, const struct persistent_entry *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

START_TEST(null_arguments)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "n");
    tc_fill(log, SEED, 1, 10, 100);
    struct persistent_entry e;
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t imported = 99;
    uint8_t buf[16];

    /* A NULL log everywhere. */
    ck_assert_int_eq(persistent_log_append(NULL, 1, 1, "x", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_persist(NULL, 1), -EINVAL);
    ck_assert_int_eq(persistent_log_trim(NULL, 1), -EINVAL);
    ck_assert_int_eq(persistent_log_trim_index(NULL, 1), -EINVAL);
    ck_assert_int_eq(persistent_log_truncate(NULL, 1), -EINVAL);
    ck_assert_int_eq(persistent_log_get(NULL, 1, &e), -EINVAL);
    ck_assert_int_eq(persistent_log_get_at_version(NULL, 1, &e), -EINVAL);
    ck_assert_int_eq(persistent_log_get_index(NULL, 1, &e), -EINVAL);
    ck_assert_int_eq(persistent_log_get_at_time(NULL, 1, &e), -EINVAL);
    ck_assert_int_eq(persistent_log_copy(NULL, 1, buf, sizeof(buf), &e),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_foreach_index(NULL, 0, 5, count_entry, buf),
                     -EINVAL);
    ck_assert_int_eq(
        persistent_log_foreach_version(NULL, 0, 5, count_entry, buf), -EINVAL);
    ck_assert_int_eq(persistent_log_export(NULL, 0, 5, &bytes, &len), -EINVAL);
    ck_assert_int_eq(persistent_log_import(NULL, buf, 8, &imported), -EINVAL);
    ck_assert_uint_eq(imported, 0);
    ck_assert_int_eq(persistent_log_latest_persisted(NULL), -1);
    ck_assert_uint_eq(persistent_log_count(NULL), PERSISTENT_NO_COUNT);
    ck_assert_int_eq(persistent_log_first_version(NULL), -1);
    ck_assert_int_eq(persistent_log_last_version(NULL), -1);
    ck_assert_uint_eq(persistent_log_data_size(NULL), PERSISTENT_NO_SIZE);
    persistent_options_init(NULL);
    persistent_log_close(NULL);

    /* NULL out pointers, data and callbacks. */
    ck_assert_int_eq(persistent_log_append(log, 11, 110, NULL, 5), -EINVAL);
    ck_assert_int_eq(persistent_log_get(log, 1, NULL), -EINVAL);
    ck_assert_int_eq(persistent_log_get_at_version(log, 1, NULL), -EINVAL);
    ck_assert_int_eq(persistent_log_get_index(log, 1, NULL), -EINVAL);
    ck_assert_int_eq(persistent_log_get_at_time(log, 1, NULL), -EINVAL);
    ck_assert_int_eq(persistent_log_copy(log, 1, NULL, 100, &e), -EINVAL);
    ck_assert_int_eq(persistent_log_copy(log, 1, buf, sizeof(buf), NULL),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_foreach_index(log, 0, 5, NULL, NULL),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_foreach_version(log, 0, 5, NULL, NULL),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_export(log, 0, 5, NULL, &len), -EINVAL);
    bytes = (uint8_t *)buf;
    ck_assert_int_eq(persistent_log_export(log, 0, 5, &bytes, NULL), -EINVAL);
    imported = 99;
    ck_assert_int_eq(persistent_log_import(log, NULL, 100, &imported), -EINVAL);
    ck_assert_uint_eq(imported, 0);
    ck_assert_int_eq(persistent_log_import(log, NULL, 0, NULL), -EBADMSG);

    /* A copy into a buffer too small says the size and gives no view. */
    int64_t big = -1;
    for (int64_t v = 1; v <= 10 && big < 0; v++)
        if (tc_payload_size(SEED, v, 100) > sizeof(buf))
            big = v;
    ck_assert_int_gt(big, 0);
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(persistent_log_copy(log, big - 1, buf, sizeof(buf), &e),
                     -ENOBUFS);
    ck_assert_uint_eq(e.size, tc_payload_size(SEED, big, 100));
    ck_assert_ptr_null(e.data);

    check_entries(log, 1, 10, 100);
    persistent_log_close(log);
}
END_TEST

static const int64_t extremes[] = {INT64_MIN, INT64_MIN + 1, -2,       -1,
                                   0,         INT64_MAX - 1, INT64_MAX};
#define NUM_EXTREMES (sizeof(extremes) / sizeof(extremes[0]))

/* Lookups, iteration and export with extreme keys, on an empty and a
 * filled log; trim and truncate beyond the ends. */
START_TEST(extreme_versions_and_indexes)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *log = tc_open(dir, "x");
    struct persistent_entry e;
    uint8_t buf[400];
    for (int round = 0; round < 2; round++) {
        uint64_t n = persistent_log_count(log);
        for (size_t i = 0; i < NUM_EXTREMES; i++) {
            int64_t k = extremes[i];
            int e1 = persistent_log_get(log, k, &e);
            ck_assert(e1 == 0 || e1 == -ENOENT);
            ck_assert(e1 != 0 || e.version == k);
            e1 = persistent_log_get_at_version(log, k, &e);
            ck_assert_int_eq(e1, n > 0 && k >= 1 ? 0 : -ENOENT);
            if (e1 == 0)
                ck_assert_int_eq(e.version, k >= 10 ? 10 : k);
            e1 = persistent_log_get_at_time(log, k, &e);
            ck_assert_int_eq(e1, n > 0 && k >= 10 ? 0 : -ENOENT);
            e1 = persistent_log_get_index(log, k, &e);
            ck_assert(e1 == 0 || e1 == -ENOENT);
            ck_assert(n > 0 || e1 == -ENOENT);
            e1 = persistent_log_copy(log, k, buf, sizeof(buf), &e);
            ck_assert(e1 == 0 || e1 == -ENOENT);
            for (size_t j = 0; j < NUM_EXTREMES; j++) {
                int count = 0;
                ck_assert_int_eq(persistent_log_foreach_index(
                                     log, k, extremes[j], count_entry, &count),
                                 0);
                ck_assert_int_le(count, (int)n);
                count = 0;
                ck_assert_int_eq(persistent_log_foreach_version(
                                     log, k, extremes[j], count_entry, &count),
                                 0);
                ck_assert_int_le(count, (int)n);
                uint8_t *bytes = NULL;
                size_t len = 0;
                ck_assert_int_eq(
                    persistent_log_export(log, k, extremes[j], &bytes, &len),
                    0);
                ck_assert_ptr_nonnull(bytes);
                free(bytes);
            }
        }
        if (round == 0)
            tc_fill(log, SEED, 1, 10, 300);
    }
    /* Negative indexes count from the end; the most negative is none. */
    ck_assert_int_eq(persistent_log_get_index(log, -10, &e), 0);
    ck_assert_int_eq(e.version, 1);
    ck_assert_int_eq(persistent_log_get_index(log, -11, &e), -ENOENT);
    ck_assert_int_eq(persistent_log_get_index(log, INT64_MIN, &e), -ENOENT);

    /* A reversed range is an empty export that imports as nothing. */
    uint8_t *bytes = NULL;
    size_t len = 0;
    ck_assert_int_eq(persistent_log_export(log, 8, 3, &bytes, &len), 0);
    uint64_t imported = 99;
    ck_assert_int_eq(persistent_log_import(log, bytes, len, &imported), 0);
    ck_assert_uint_eq(imported, 0);
    free(bytes);

    /* Trim and truncate that touch nothing. */
    ck_assert_int_eq(persistent_log_trim(log, INT64_MIN), 0);
    ck_assert_int_eq(persistent_log_trim(log, -1), 0);
    ck_assert_int_eq(persistent_log_trim(log, 1), 0);
    ck_assert_int_eq(persistent_log_trim_index(log, INT64_MIN), 0);
    ck_assert_int_eq(persistent_log_trim_index(log, -5), 0);
    ck_assert_int_eq(persistent_log_trim_index(log, 0), 0);
    ck_assert_int_eq(persistent_log_truncate(log, INT64_MAX), 0);
    ck_assert_int_eq(persistent_log_truncate(log, 10), 0);
    ck_assert_int_eq(persistent_log_persist(log, INT64_MIN), 0);
    ck_assert_int_eq(persistent_log_persist(log, INT64_MAX), 0);
    ck_assert_int_eq(persistent_log_persist(log, 1000), 0);
    ck_assert_int_eq(persistent_log_latest_persisted(log), 10);
    check_entries(log, 1, 10, 300);

    /* Appends out of range. */
    ck_assert_int_eq(persistent_log_append(log, -1, 200, NULL, 0), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, INT64_MIN, 200, NULL, 0),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 10, 200, NULL, 0), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 11, 99, NULL, 0), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 11, 100, buf, SIZE_MAX),
                     -ENOSPC);
    ck_assert_int_eq(
        persistent_log_append(log, 11, 100, buf, (size_t)UINT32_MAX + 1),
        -ENOSPC);
    check_entries(log, 1, 10, 300);
    ck_assert_int_eq(persistent_log_append(log, INT64_MAX, INT64_MAX, "m", 1),
                     0);
    ck_assert_int_eq(persistent_log_append(log, INT64_MAX, INT64_MAX, "m", 1),
                     -EINVAL);
    ck_assert_int_eq(persistent_log_get_at_version(log, INT64_MAX, &e), 0);
    ck_assert_int_eq(e.version, INT64_MAX);
    ck_assert_int_eq(persistent_log_get_at_time(log, INT64_MAX, &e), 0);
    ck_assert_int_eq(e.version, INT64_MAX);
    ck_assert_int_eq(persistent_log_get_at_version(log, INT64_MAX - 1, &e), 0);
    ck_assert_int_eq(e.version, 10);
    ck_assert_int_eq(persistent_log_persist(log, INT64_MAX), 0);
    ck_assert_int_eq(persistent_log_latest_persisted(log), INT64_MAX);
    /* Trim beyond the end empties the log; indexes keep counting. */
    ck_assert_int_eq(persistent_log_truncate(log, 10), 0);
    ck_assert_int_eq(persistent_log_trim_index(log, INT64_MAX), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    ck_assert_int_eq(persistent_log_first_index(log), 10);
    ck_assert_int_eq(persistent_log_last_index(log), 9);
    ck_assert_int_eq(persistent_log_append(log, 20, 200, "z", 1), 0);
    ck_assert_int_eq(persistent_log_first_index(log), 10);
    ck_assert_int_eq(persistent_log_truncate(log, INT64_MIN), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    persistent_log_close(log);
}
END_TEST

/* Imports of malformed buffers: refused, nothing appended. */
START_TEST(import_garbage)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *src = tc_open(dir, "src");
    tc_fill(src, SEED, 1, 20, 300);
    uint8_t *good = NULL;
    size_t len = 0;
    ck_assert_int_eq(persistent_log_export(src, 11, 20, &good, &len), 0);
    persistent_log_close(src);

    struct persistent_log *log = tc_open(dir, "dst");
    tc_fill(log, SEED, 1, 10, 300);
    uint64_t imported = 99;
    static uint8_t zeros[4096];
    ck_assert_int_eq(persistent_log_import(log, zeros, 0, &imported), -EBADMSG);
    ck_assert_int_eq(persistent_log_import(log, zeros, 7, &imported), -EBADMSG);
    ck_assert_int_eq(persistent_log_import(log, zeros, sizeof(zeros), NULL),
                     -EBADMSG);
    for (size_t cut = 0; cut < len; cut += 1 + cut / 3)
        ck_assert_int_eq(persistent_log_import(log, good, cut, &imported),
                         -EBADMSG);
    /* One byte more (oversized) or a count that does not fit. */
    uint8_t *more = malloc(len + 8);
    ck_assert_ptr_nonnull(more);
    memcpy(more, good, len);
    memset(more + len, 0, 8);
    ck_assert_int_eq(persistent_log_import(log, more, len + 8, &imported),
                     -EBADMSG);
    memcpy(more, good, len);
    uint64_t count = UINT64_MAX;
    memcpy(more + 16, &count, 8);
    uint64_t h = XXH3_64bits(more, len - 8);
    memcpy(more + len - 8, &h, 8);
    ck_assert_int_eq(persistent_log_import(log, more, len, &imported),
                     -EBADMSG);
    /* An entry claiming 4 GiB. */
    memcpy(more, good, len);
    uint32_t huge = UINT32_MAX;
    memcpy(more + 32 + 16, &huge, 4);
    h = XXH3_64bits(more, len - 8);
    memcpy(more + len - 8, &h, 8);
    ck_assert_int_eq(persistent_log_import(log, more, len, &imported),
                     -EBADMSG);
    free(more);
    ck_assert_uint_eq(imported, 0);
    check_entries(log, 1, 10, 300);

    /* Versions not above the log's last: -EINVAL, nothing appended. */
    tc_fill(log, SEED, 11, 12, 300);
    ck_assert_int_eq(persistent_log_import(log, good, len, &imported), -EINVAL);
    ck_assert_uint_eq(imported, 0);
    check_entries(log, 1, 12, 300);
    ck_assert_int_eq(persistent_log_truncate(log, 10), 0);
    ck_assert_int_eq(persistent_log_import(log, good, len, &imported), 0);
    ck_assert_uint_eq(imported, 10);
    check_entries(log, 1, 20, 300);
    /* The same buffer twice: the second is not above the last. */
    ck_assert_int_eq(persistent_log_import(log, good, len, &imported), -EINVAL);
    check_entries(log, 1, 20, 300);
    free(good);
    persistent_log_close(log);
}
END_TEST

/* ---- callbacks that call back into the log ------------------------------ */

struct reentry {
    struct persistent_log *log;
    int calls;
    int persist, trim, trim_index, truncate, import;
};

static void reenter(void *ctx, int64_t version)
{
    struct reentry *r = ctx;
    (void)version;
    if (r->calls++ > 0)
        return;
    r->persist = persistent_log_persist(r->log, INT64_MAX);
    r->trim = persistent_log_trim(r->log, 3);
    r->trim_index = persistent_log_trim_index(r->log, 3);
    r->truncate = persistent_log_truncate(r->log, 3);
    static uint8_t garbage[64];
    r->import = persistent_log_import(r->log, garbage, sizeof(garbage), NULL);
    /* Lookups are fine here. */
    struct persistent_entry e;
    ck_assert_int_eq(persistent_log_get(r->log, 5, &e), 0);
    persistent_log_close(r->log); /* refused: the log stays open */
}

START_TEST(persisted_callback_reentry_is_refused)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct reentry r;
    memset(&r, 0, sizeof(r));
    opts.on_persisted = reenter;
    opts.persisted_ctx = &r;
    ck_assert_int_eq(persistent_log_open(&opts, "cb", &r.log, NULL), 0);
    tc_fill(r.log, SEED, 1, 10, 300);
    ck_assert_int_eq(persistent_log_persist(r.log, 10), 0);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.persist, -EINVAL);
    ck_assert_int_eq(r.trim, -EINVAL);
    ck_assert_int_eq(r.trim_index, -EINVAL);
    ck_assert_int_eq(r.truncate, -EINVAL);
    ck_assert_int_eq(r.import, -EBADMSG);
    ck_assert_ptr_nonnull(
        strstr(tc_last_log(), "close from the persisted callback"));
    /* The log is unchanged and usable. */
    check_entries(r.log, 1, 10, 300);
    ck_assert_int_eq(persistent_log_latest_persisted(r.log), 10);
    tc_fill(r.log, SEED, 11, 12, 300);
    ck_assert_int_eq(persistent_log_persist(r.log, 12), 0);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_int_eq(persistent_log_trim(r.log, 3), 0);
    persistent_log_close(r.log);
    r.log = tc_open(dir, "cb");
    check_entries(r.log, 3, 12, 300);
    persistent_log_close(r.log);
}
END_TEST

struct inside {
    struct persistent_log *log;
    const uint8_t *export;
    size_t export_len;
    int calls;
    int trim, trim_index, truncate, import;
};

static int change_inside(void *ctx, const struct persistent_entry *e)
{
    struct inside *in = ctx;
    (void)e;
    if (in->calls++ > 0)
        return 0;
    /* All forbidden here: each would wait for this iteration's lock. */
    in->trim = persistent_log_trim(in->log, 3);
    in->trim_index = persistent_log_trim_index(in->log, 3);
    in->truncate = persistent_log_truncate(in->log, 2);
    in->import =
        persistent_log_import(in->log, in->export, in->export_len, NULL);
    persistent_log_close(in->log); /* refused: the log stays open */
    return 0;
}

START_TEST(changes_inside_iteration_are_refused)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *src = tc_open(dir, "src");
    tc_fill(src, SEED, 1, 8, 300);
    struct inside in;
    memset(&in, 0, sizeof(in));
    uint8_t *bytes = NULL;
    ck_assert_int_eq(persistent_log_export(src, 6, 8, &bytes, &in.export_len),
                     0);
    in.export = bytes;
    persistent_log_close(src);
    in.log = tc_open(dir, "it");
    tc_fill(in.log, SEED, 1, 5, 300);
    for (int round = 0; round < 2; round++) {
        in.calls = 0;
        in.trim = in.trim_index = in.truncate = in.import = 0;
        if (round == 0)
            ck_assert_int_eq(
                persistent_log_foreach_index(in.log, 0, -1, change_inside, &in),
                0);
        else
            ck_assert_int_eq(persistent_log_foreach_version(in.log, 0, 100,
                                                            change_inside, &in),
                             0);
        ck_assert_int_eq(in.calls, 5);
        ck_assert_int_eq(in.trim, -EINVAL);
        ck_assert_int_eq(in.trim_index, -EINVAL);
        ck_assert_int_eq(in.truncate, -EINVAL);
        ck_assert_int_eq(in.import, -EINVAL);
        ck_assert_ptr_nonnull(
            strstr(tc_last_log(), "close from a foreach callback"));
        check_entries(in.log, 1, 5, 300);
    }
    /* Outside the iteration all of them work. */
    ck_assert_int_eq(persistent_log_import(in.log, bytes, in.export_len, NULL),
                     0);
    ck_assert_int_eq(persistent_log_trim(in.log, 3), 0);
    ck_assert_int_eq(persistent_log_truncate(in.log, 7), 0);
    check_entries(in.log, 3, 7, 300);
    free(bytes);
    persistent_log_close(in.log);
}
END_TEST

/* ---- the registry -------------------------------------------------------- */

struct liar {
    size_t claim; /* the size serialize reports */
    int ret;      /* what it returns */
    int calls;
};

static bool always(void *ctx)
{
    (void)ctx;
    return true;
}

static int lie(void *ctx, void *buf, size_t cap, size_t *size)
{
    struct liar *l = ctx;
    l->calls++;
    if (buf && cap)
        memset(buf, 0x5a, cap);
    *size = l->claim;
    return l->ret;
}

static bool honest_changed(void *ctx)
{
    (void)ctx;
    return true;
}

static int honest(void *ctx, void *buf, size_t cap, size_t *size)
{
    (void)ctx;
    *size = 8;
    if (cap < 8)
        return -ENOBUFS;
    memcpy(buf, "honest!!", 8);
    return 0;
}

START_TEST(registry_misuse)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *a = tc_open(dir, "a");
    struct persistent_log *b = tc_open(dir, "b");
    struct persistent_registry *reg = NULL;
    ck_assert_int_eq(persistent_registry_create(NULL), -EINVAL);
    ck_assert_int_eq(persistent_registry_create(&reg), 0);
    const struct persistent_field_ops good = {honest_changed, honest};
    const struct persistent_field_ops lying = {always, lie};
    const struct persistent_field_ops no_changed = {NULL, honest};
    const struct persistent_field_ops no_serialize = {honest_changed, NULL};
    struct liar l = {0, 0, 0};

    ck_assert_int_eq(persistent_registry_add(NULL, a, &good, NULL), -EINVAL);
    ck_assert_int_eq(persistent_registry_add(reg, NULL, &good, NULL), -EINVAL);
    ck_assert_int_eq(persistent_registry_add(reg, a, NULL, NULL), -EINVAL);
    ck_assert_int_eq(persistent_registry_add(reg, a, &no_changed, NULL),
                     -EINVAL);
    ck_assert_int_eq(persistent_registry_add(reg, a, &no_serialize, NULL),
                     -EINVAL);
    ck_assert_int_eq(persistent_registry_add(reg, a, &good, NULL), 0);
    ck_assert_int_eq(persistent_registry_add(reg, a, &good, NULL), -EINVAL);
    ck_assert_int_eq(persistent_registry_add(reg, b, &lying, &l), 0);
    ck_assert_int_eq(persistent_registry_make_version(NULL, 1, 1), -EINVAL);
    ck_assert_int_eq(persistent_registry_make_version(reg, -1, 1), -EINVAL);
    ck_assert_int_eq(persistent_registry_persist(NULL, 1), -EINVAL);
    ck_assert_int_eq(persistent_registry_truncate(NULL, 1), -EINVAL);
    ck_assert_int_eq(persistent_registry_frontier(NULL), -1);
    ck_assert_int_eq(persistent_registry_latest_version(NULL), -1);

    /* serialize says 0 but reports more than the buffer holds. */
    l.claim = 1u << 20;
    l.ret = 0;
    ck_assert_int_eq(persistent_registry_make_version(reg, 1, 1), -EINVAL);
    /* serialize asks for absurd sizes. */
    l.ret = -ENOBUFS;
    l.claim = SIZE_MAX;
    ck_assert_int_eq(persistent_registry_make_version(reg, 1, 1), -ENOSPC);
    l.claim = (size_t)1 << 45;
    ck_assert_int_eq(persistent_registry_make_version(reg, 1, 1), -ENOSPC);
    /* -ENOBUFS forever, growing a little each time. */
    l.claim = 100;
    l.calls = 0;
    ck_assert_int_lt(persistent_registry_make_version(reg, 1, 1), 0);
    ck_assert_int_le(l.calls, 8);
    /* A positive return is not an errno: refused as -EINVAL. */
    l.ret = 7;
    l.claim = 0;
    ck_assert_int_eq(persistent_registry_make_version(reg, 1, 1), -EINVAL);
    l.ret = -EIO;
    ck_assert_int_eq(persistent_registry_make_version(reg, 1, 1), -EIO);
    /* Every failure undid the append of field a. */
    ck_assert_uint_eq(persistent_log_count(a), 0);
    ck_assert_uint_eq(persistent_log_count(b), 0);
    ck_assert_int_eq(persistent_registry_latest_version(reg), -1);

    /* An honest liar: the versions go on. */
    l.ret = 0;
    l.claim = 0;
    ck_assert_int_eq(persistent_registry_make_version(reg, 5, 5), 0);
    ck_assert_int_eq(persistent_registry_make_version(reg, 5, 6), -EINVAL);
    ck_assert_int_eq(persistent_registry_make_version(reg, 4, 6), -EINVAL);
    ck_assert_int_eq(persistent_registry_make_version(reg, INT64_MIN, 6),
                     -EINVAL);
    ck_assert_uint_eq(persistent_log_count(a), 1);
    ck_assert_int_eq(persistent_registry_persist(reg, INT64_MIN), 0);
    ck_assert_int_eq(persistent_registry_frontier(reg), -1);
    ck_assert_int_eq(persistent_registry_persist(reg, INT64_MAX), 0);
    ck_assert_int_eq(persistent_registry_frontier(reg), 5);
    /* Fields are added before the first version only. */
    struct persistent_log *c = tc_open(dir, "c");
    ck_assert_int_eq(persistent_registry_add(reg, c, &good, NULL), -EINVAL);
    ck_assert_int_eq(persistent_registry_truncate(reg, INT64_MIN), 0);
    ck_assert_uint_eq(persistent_log_count(a), 0);
    ck_assert_int_eq(persistent_registry_latest_version(reg), -1);
    persistent_registry_destroy(reg);
    persistent_registry_destroy(NULL);
    persistent_log_close(a);
    persistent_log_close(b);
    persistent_log_close(c);
}
END_TEST

/* ---- padded records (format 2) ------------------------------------------- */

/* Record layout facts the tests rely on (docs/persistent.md). */
static uint64_t rec_size(uint64_t off, uint64_t len)
{
    uint64_t size = 48 + ((len + 7) & ~7ull);
    uint64_t end = off + size;
    uint64_t pad = ((end + 4095) & ~4095ull) - end;
    return pad * 16 <= size ? size + pad : size;
}

/* A torn tail cut anywhere inside a padded record (its payload, the last
 * byte of its page padding) is dropped; the records before survive. */
START_TEST(torn_inside_page_padding)
{
    char dir[256], data[320], meta[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "p", ".log");
    path_of(meta, sizeof(meta), dir, "p", ".meta");
    struct persistent_log *log = tc_open(dir, "p");
    tc_fill(log, SEED, 1, 3, 300);
    ck_assert_int_eq(persistent_log_persist(log, 3), 0);
    uint64_t start = persistent_log_data_size(log) + 8192;
    static uint8_t big[70000];
    memset(big, 0xa5, sizeof(big));
    ck_assert_int_eq(persistent_log_append(log, 4, 40, big, sizeof(big)), 0);
    uint64_t rs = rec_size(start, sizeof(big));
    ck_assert_uint_gt(rs, 48 + sizeof(big)); /* padded to the page */
    ck_assert_uint_eq((start + rs) % 4096, 0);
    persistent_log_close(log); /* not persisted: NAME.meta says so */
    ck_assert_uint_eq(tc_file_size(data), start + rs);
    uint8_t *copy = read_file(data, start + rs);
    uint8_t *meta_copy = read_file(meta, 8192);

    const uint64_t cuts[] = {start + rs - 1, start + rs - 8,
                             start + 48 + sizeof(big) + 1,
                             start + 48 + sizeof(big), start + 100};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        write_file(data, copy, cuts[i]);
        write_file(meta, meta_copy, 8192);
        log = tc_open(dir, "p");
        ck_assert_msg(persistent_log_count(log) == 3, "cut at %llu: %llu",
                      (unsigned long long)cuts[i],
                      (unsigned long long)persistent_log_count(log));
        check_entries(log, 1, 3, 300);
        /* Appends go on at the cut, padded as before. */
        ck_assert_int_eq(persistent_log_append(log, 4, 40, big, sizeof(big)),
                         0);
        ck_assert_int_eq(persistent_log_persist(log, 4), 0);
        persistent_log_close(log);
        ck_assert_uint_eq(tc_file_size(data), start + rs);
        log = tc_open(dir, "p");
        ck_assert_uint_eq(persistent_log_count(log), 4);
        persistent_log_close(log);
    }
    free(copy);
    free(meta_copy);
}
END_TEST

/* A non-zero byte in the page padding of a durable record is damage,
 * reported at that record; in the padding of a torn last record it is a
 * torn tail. */
START_TEST(damage_in_page_padding)
{
    char dir[256], data[320];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "d", ".log");
    struct persistent_log *log = tc_open(dir, "d");
    tc_fill(log, SEED, 1, 2, 300);
    uint64_t start = persistent_log_data_size(log) + 8192;
    static uint8_t big[66000];
    memset(big, 0x3c, sizeof(big));
    ck_assert_int_eq(persistent_log_append(log, 3, 30, big, sizeof(big)), 0);
    uint64_t rs = rec_size(start, sizeof(big));
    uint64_t pad_from = start + 48 + sizeof(big);
    ck_assert_uint_gt(start + rs - pad_from, 8);
    tc_fill(log, SEED, 4, 6, 300);
    ck_assert_int_eq(persistent_log_persist(log, 6), 0);
    persistent_log_close(log);
    uint64_t size = tc_file_size(data);

    const uint64_t at[] = {pad_from, pad_from + 9, start + rs - 1};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        tc_flip_bit(data, at[i], 3);
        struct persistent_error err;
        struct persistent_options opts;
        tc_options(&opts, dir);
        ck_assert_int_eq(try_open_opts(&opts, "d", &err), -EBADMSG);
        ck_assert_str_eq(err.file, data);
        ck_assert_uint_eq(err.offset, start);
        ck_assert_uint_eq(tc_file_size(data), size);
        tc_flip_bit(data, at[i], 3);
    }
    log = tc_open(dir, "d");
    ck_assert_uint_eq(persistent_log_count(log), 6);
    /* Now make the padded record the last, unpersisted one and damage its
     * padding: a torn tail. */
    ck_assert_int_eq(persistent_log_truncate(log, 2), 0);
    ck_assert_int_eq(persistent_log_append(log, 3, 30, big, sizeof(big)), 0);
    persistent_log_close(log);
    ck_assert_uint_eq(tc_file_size(data), start + rs);
    tc_flip_bit(data, start + rs - 1, 0);
    log = tc_open(dir, "d");
    check_entries(log, 1, 2, 300);
    persistent_log_close(log);
    ck_assert_uint_eq(tc_file_size(data), start);
}
END_TEST

Suite *tc_misuse_suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, open_rejects_bad_names_and_options);
    tcase_add_test(tc, second_open_with_reset_is_refused);
    tcase_add_test(tc, reopen_with_smaller_limits);
    tcase_add_test(tc, hostile_metadata);
    tcase_add_test(tc, null_arguments);
    tcase_add_test(tc, extreme_versions_and_indexes);
    tcase_add_test(tc, import_garbage);
    tcase_add_test(tc, persisted_callback_reentry_is_refused);
    tcase_add_test(tc, changes_inside_iteration_are_refused);
    tcase_add_test(tc, registry_misuse);
    tcase_add_test(tc, torn_inside_page_padding);
    tcase_add_test(tc, damage_in_page_padding);
    suite_add_tcase(s, tc);
    return s;
}
