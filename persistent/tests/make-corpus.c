/* Writes seed inputs for the fuzz targets (run by hand; the output is
 * committed under corpus/):  make-corpus CORPUS-DIR
 * corpus/log/ gets meta+log pairs in fuzz-logfile's layout, corpus/export/
 * exports of a few ranges. */
#include <persistent/persistent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void emit(const char *path, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        exit(1);
    fwrite(a, 1, alen, f);
    if (b)
        fwrite(b, 1, blen, f);
    fclose(f);
}

/* A log pair as one input: 2-byte meta length, NAME.meta, NAME.log. */
static void emit_log(const char *out, const char *dir, const char *name)
{
    char p[512];
    size_t mlen, dlen;
    snprintf(p, sizeof(p), "%s/%s.meta", dir, name);
    uint8_t *m = slurp(p, &mlen);
    snprintf(p, sizeof(p), "%s/%s.log", dir, name);
    uint8_t *d = slurp(p, &dlen);
    if (!m || !d)
        exit(1);
    uint8_t *all = malloc(2 + mlen + dlen);
    all[0] = (uint8_t)mlen;
    all[1] = (uint8_t)(mlen >> 8);
    memcpy(all + 2, m, mlen);
    memcpy(all + 2 + mlen, d, dlen);
    emit(out, all, 2 + mlen + dlen, NULL, 0);
    free(all);
    free(m);
    free(d);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char dir[] = "/tmp/mkcorpus-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = dir;
    opts.max_data_size = 1 << 24;
    struct persistent_log *log = NULL;
    char out[512];
    const char *names[] = {"empty",  "small", "trimmed",  "unpersisted",
                           "padded", "large", "truncated"};
    for (int k = 0; k < 7; k++) {
        if (persistent_log_open(&opts, names[k], &log, NULL) != 0)
            return 1;
        if (k == 4) {
            /* Records padded to a page end: 3900 bytes from offset 8192,
             * then 2000 after it. */
            static uint8_t big[3900];
            for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i * 31);
            persistent_log_append(log, 1, 1, big, sizeof(big));
            persistent_log_append(log, 2, 2, big, 2000);
            persistent_log_append(log, 3, 2, "tail", 4);
            persistent_log_persist(log, 3);
        }
        if (k == 5) {
            /* A record larger than the window of the smallest limits
             * (max_data_size 4096: 12 KiB), then two small ones. */
            static uint8_t big[20000];
            for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i * 17);
            persistent_log_append(log, 1, 1, big, sizeof(big));
            persistent_log_append(log, 2, 2, "after", 5);
            persistent_log_append(log, 3, 3, "last", 4);
            persistent_log_persist(log, 3);
        }
        int n = k == 0 || (k >= 4 && k < 6) ? 0 : 12;
        for (int v = 1; v <= n; v++) {
            char buf[64];
            int len =
                snprintf(buf, sizeof(buf), "value %d of %s", v * v, names[k]);
            persistent_log_append(log, v * 2, v / 3, buf, (size_t)(len % 40));
        }
        if (k != 3)
            persistent_log_persist(log, 100);
        if (k == 2)
            persistent_log_trim(log, 9);
        if (k == 6) {
            /* A truncate (a new write generation), then more entries. */
            persistent_log_truncate(log, 10);
            persistent_log_append(log, 11, 5, "again", 5);
            persistent_log_persist(log, 11);
        }
        if (k == 1) {
            uint8_t *bytes;
            size_t len;
            int ranges[3][2] = {{0, 100}, {4, 10}, {50, 60}};
            for (int r = 0; r < 3; r++) {
                persistent_log_export(log, ranges[r][0], ranges[r][1], &bytes,
                                      &len);
                snprintf(out, sizeof(out), "%s/export/range-%d", argv[1], r);
                emit(out, bytes, len, NULL, 0);
                free(bytes);
            }
        }
        persistent_log_close(log);
        snprintf(out, sizeof(out), "%s/log/%s", argv[1], names[k]);
        emit_log(out, dir, names[k]);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
