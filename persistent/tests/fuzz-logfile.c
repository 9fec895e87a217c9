/* Fuzz target: the on-disk format.  An input is split into NAME.meta and
 * NAME.log (the first two bytes, little-endian, say how many of the rest
 * go to NAME.meta); the log is then opened and, when that succeeds, every
 * entry is read.  Open must either fail cleanly or give entries whose
 * bytes lie inside the file. */
#include <persistent/persistent.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir_[256];

static void path_of(char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "%s/fz%s", dir_, suffix);
}

static void cleanup(void)
{
    char path[320];
    path_of(path, sizeof(path), ".log");
    unlink(path);
    path_of(path, sizeof(path), ".meta");
    unlink(path);
    rmdir(dir_);
}

static void quiet(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    (void)msg;
}

static void put(const char *suffix, const uint8_t *bytes, size_t len)
{
    char path[320];
    path_of(path, sizeof(path), suffix);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        abort();
    while (len > 0) {
        ssize_t w = write(fd, bytes, len);
        if (w <= 0)
            abort();
        bytes += w;
        len -= (size_t)w;
    }
    close(fd);
}

static int sum_entry(void *ctx, const struct persistent_entry *e)
{
    uint64_t *sum = ctx;
    const uint8_t *p = e->data;
    for (size_t i = 0; i < e->size; i++)
        *sum += p[i];
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir_[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir_, sizeof(dir_), "%s/persistent-fuzz-XXXXXX", base);
        if (!mkdtemp(dir_))
            abort();
        atexit(cleanup);
    }
    if (size < 2)
        return 0;
    size_t meta_len = (size_t)(data[0] | (data[1] << 8));
    data += 2;
    size -= 2;
    if (meta_len > size)
        meta_len = size;
    put(".meta", data, meta_len);
    put(".log", data + meta_len, size - meta_len);

    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = dir_;
    opts.log = quiet;
    struct persistent_log *log = NULL;
    struct persistent_error err;
    /* First with the smallest limits, so that most files reach beyond the
     * mapping window: refused cleanly (nothing read outside it) or fine. */
    opts.max_data_size = 4096;
    opts.max_log_entry = 2;
    if (persistent_log_open(&opts, "fz", &log, &err) == 0) {
        if (persistent_log_data_size(log) > 4096 ||
            persistent_log_count(log) > 2)
            abort();
        persistent_log_close(log);
    }
    opts.max_data_size = 1 << 24;
    opts.max_log_entry = 1 << 12;
    if (persistent_log_open(&opts, "fz", &log, &err) != 0)
        return 0;
    uint64_t sum = 0;
    persistent_log_foreach_index(log, 0, INT64_MAX, sum_entry, &sum);
    struct persistent_entry e;
    uint64_t n = persistent_log_count(log);
    for (int64_t i = -1; i >= -(int64_t)n && i > -64; i--) {
        if (persistent_log_get_index(log, i, &e) != 0 ||
            persistent_log_get(log, e.version, &e) != 0 ||
            persistent_log_get_at_time(log, e.timestamp_ns, &e) != 0)
            abort();
    }
    persistent_log_close(log);
    return (int)(sum & 0);
}
