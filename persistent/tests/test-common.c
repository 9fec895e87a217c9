/* Helpers shared by the areas of the libpersistent suite. */
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char last_log[512];

static void capture_log(void *ctx, int level, const char *module,
                        const char *msg)
{
    (void)ctx;
    (void)level;
    snprintf(last_log, sizeof(last_log), "%s: %s", module, msg);
}

const char *tc_last_log(void)
{
    return last_log;
}

void tc_tmpdir(char *buf, size_t len)
{
    int e = th_tmpdir(buf, len);
    ck_assert_msg(e == 0, "th_tmpdir: %d", e);
}

void tc_options(struct persistent_options *opts, const char *dir)
{
    persistent_options_init(opts);
    opts->directory = dir;
    opts->log = capture_log;
    opts->log_level = 7;
    opts->max_data_size = 1ull << 30;
}

struct persistent_log *tc_open(const char *dir, const char *name)
{
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_log *log = NULL;
    struct persistent_error err;
    int e = persistent_log_open(&opts, name, &log, &err);
    ck_assert_msg(e == 0, "open %s/%s: %s (%s at %llu: %s)", dir, name,
                  persistent_strerror(e), err.file,
                  (unsigned long long)err.offset, err.msg);
    return log;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

size_t tc_payload_size(uint64_t seed, int64_t v, size_t max)
{
    uint64_t h = mix(seed * 31 + (uint64_t)v);
    if (max == 0)
        return 0;
    /* Mostly small entries, now and then a large one. */
    size_t small = max < 300 ? max : 300;
    return (h % 8 == 0) ? (size_t)(h >> 8) % (max + 1)
                        : (size_t)(h >> 8) % (small + 1);
}

void tc_payload(uint64_t seed, int64_t v, uint8_t *buf, size_t size)
{
    uint64_t x = mix(seed ^ ((uint64_t)v << 1)) | 1;
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

bool tc_payload_ok(uint64_t seed, const struct persistent_entry *e, size_t max)
{
    size_t size = tc_payload_size(seed, e->version, max);
    if (e->size != size)
        return false;
    uint8_t *buf = malloc(size ? size : 1);
    ck_assert_ptr_nonnull(buf);
    tc_payload(seed, e->version, buf, size);
    bool same = size == 0 || memcmp(buf, e->data, size) == 0;
    free(buf);
    return same;
}

void tc_fill(struct persistent_log *log, uint64_t seed, int64_t first,
             int64_t last, size_t max)
{
    uint8_t *buf = malloc(max ? max : 1);
    ck_assert_ptr_nonnull(buf);
    for (int64_t v = first; v <= last; v++) {
        size_t size = tc_payload_size(seed, v, max);
        tc_payload(seed, v, buf, size);
        int e = persistent_log_append(log, v, v * 10, buf, size);
        ck_assert_msg(e == 0, "append %lld: %s", (long long)v,
                      persistent_strerror(e));
    }
    free(buf);
}

uint64_t tc_file_size(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

void tc_flip_bit(const char *path, uint64_t offset, int bit)
{
    int fd = open(path, O_RDWR);
    ck_assert_msg(fd >= 0, "open %s", path);
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)offset), 1);
    b ^= (uint8_t)(1u << bit);
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)offset), 1);
    close(fd);
}

void tc_truncate_file(const char *path, uint64_t size)
{
    ck_assert_msg(truncate(path, (off_t)size) == 0, "truncate %s", path);
}
