/* Fuzz target: the export format.  Each input is imported into an empty
 * log; an accepted input must export back to the very same bytes (the
 * format is canonical), then the log is emptied for the next input. */
#include <persistent/persistent.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct persistent_log *log_;
static char dir_[256];

static void cleanup(void)
{
    persistent_log_close(log_);
    char path[320];
    snprintf(path, sizeof(path), "%s/fx.log", dir_);
    unlink(path);
    snprintf(path, sizeof(path), "%s/fx.meta", dir_);
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

static struct persistent_log *the_log(void)
{
    if (log_)
        return log_;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(dir_, sizeof(dir_), "%s/persistent-fuzz-XXXXXX", base);
    if (!mkdtemp(dir_))
        abort();
    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = dir_;
    opts.max_data_size = 1 << 24;
    opts.max_log_entry = 1 << 16;
    opts.log = quiet;
    if (persistent_log_open(&opts, "fx", &log_, NULL) != 0)
        abort();
    atexit(cleanup);
    return log_;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct persistent_log *log = the_log();
    uint64_t n = 0;
    int e = persistent_log_import(log, data, size, &n);
    if (e == 0 && n > 0) {
        uint8_t *out = NULL;
        size_t len = 0;
        if (persistent_log_export(log, 0, INT64_MAX, &out, &len) != 0)
            abort();
        if (len != size || memcmp(out, data, size) != 0)
            abort(); /* accepted bytes must be canonical */
        free(out);
    }
    if (persistent_log_count(log) != (e == 0 ? n : 0))
        abort();
    if (persistent_log_truncate(log, -1) != 0)
        abort();
    return 0;
}
