/* persistent_bandwidth: append+persist bandwidth of a libpersistent log
 * against plain write + fdatasync, and lookup rates.
 *
 *   persistent_bandwidth [--dir DIR] [--rounds N] [--quick] [--size S]
 *                        [--persist-every P] [--no-lookup]
 *
 * Runs in DIR (default: a fresh temporary folder under the current
 * directory, removed at the end) which should be on a real disk: the file
 * system type is printed on stderr.  For each entry size (1024, 65536) and
 * persist cadence (every 1, every 100 entries) the baseline writes the same
 * payload bytes with write() per entry and fdatasync() at the same cadence
 * to a file in the same folder; both grow side by side in --rounds
 * alternating chunks (default 20) so both see the same disk.  One stdout line
 * per configuration: RESULT bench=persistent_bandwidth size=S persist_every=P
 *          gbytes_per_s=... baseline_gbytes_per_s=... persist_us_p50=...
 *          persist_us_p99=...
 * then the lookup rates on a log of 1,000,000 entries:
 *   RESULT bench=persistent_bandwidth case=lookup entries=1000000
 *          by=version|time lookups_per_s=...
 */
#include <persistent/persistent.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53:
        return "ext2/3/4";
    case 0x01021994:
        return "tmpfs";
    case 0x58465342:
        return "xfs";
    case 0x9123683E:
        return "btrfs";
    case 0x794c7630:
        return "overlayfs";
    case 0x2fc12fc1:
        return "zfs";
    case 0x6969:
        return "nfs";
    case 0x858458f6:
        return "ramfs";
    default:
        return "unknown";
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void quiet(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    if (level <= 4)
        fprintf(stderr, "%s: %s\n", module, msg);
}

static void die(const char *what, int err)
{
    fprintf(stderr, "persistent_bandwidth: %s: %s\n", what,
            err < 0 ? persistent_strerror(err) : strerror(err));
    exit(1);
}

struct baseline {
    char path[4096];
    int fd;
};

static void baseline_open(struct baseline *b, const char *dir)
{
    snprintf(b->path, sizeof(b->path), "%s/baseline.dat", dir);
    b->fd = open(b->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (b->fd < 0)
        die(b->path, errno);
}

static void baseline_close(struct baseline *b)
{
    close(b->fd);
    unlink(b->path);
}

/* Entries [first, first + count) with write() each and fdatasync() every
 * `every`: seconds spent. */
static double baseline_chunk(struct baseline *b, const uint8_t *payload,
                             size_t size, long first, long count, int every)
{
    double t0 = now_s();
    for (long i = first; i < first + count; i++) {
        const uint8_t *p = payload + (size_t)(i % 64) * 64;
        size_t left = size;
        while (left > 0) {
            ssize_t w = write(b->fd, p, left);
            if (w < 0)
                die("write", errno);
            p += w;
            left -= (size_t)w;
        }
        if ((i + 1) % every == 0 && fdatasync(b->fd) != 0)
            die("fdatasync", errno);
    }
    return now_s() - t0;
}

static struct persistent_log *log_open(const char *dir, const char *name,
                                       uint64_t entries, uint64_t bytes)
{
    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = dir;
    opts.reset = true;
    opts.max_log_entry = entries + 1;
    opts.max_data_size = bytes + (1 << 20);
    opts.log = quiet;
    struct persistent_log *log = NULL;
    int e = persistent_log_open(&opts, name, &log, NULL);
    if (e)
        die("open", e);
    return log;
}

static void log_remove(const char *dir, const char *name)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s.log", dir, name);
    unlink(path);
    snprintf(path, sizeof(path), "%s/%s.meta", dir, name);
    unlink(path);
}

/* The same with the log; persist latencies (us) appended to lat. */
static double log_chunk(struct persistent_log *log, const uint8_t *payload,
                        size_t size, long first, long count, int every,
                        double *lat, long *nlat)
{
    double t0 = now_s();
    for (long i = first; i < first + count; i++) {
        const uint8_t *p = payload + (size_t)(i % 64) * 64;
        int e = persistent_log_append(log, i, i, p, size);
        if (e)
            die("append", e);
        if ((i + 1) % every == 0) {
            double p0 = now_s();
            e = persistent_log_persist(log, i);
            if (e)
                die("persist", e);
            lat[(*nlat)++] = (now_s() - p0) * 1e6;
        }
    }
    return now_s() - t0;
}

static void bandwidth(const char *dir, size_t size, int every, long entries,
                      int rounds)
{
    uint8_t *payload = malloc(size + 64 * 64);
    if (!payload)
        die("malloc", ENOMEM);
    unsigned x = 12345;
    for (size_t i = 0; i < size + 64 * 64; i++) {
        x = x * 1103515245 + 12345;
        payload[i] = (uint8_t)(x >> 16);
    }
    long max_lat = entries / every + 1;
    double *lat = malloc((size_t)max_lat * sizeof(double));
    long nlat = 0;
    double t_base = 0, t_log = 0;
    struct baseline base;
    baseline_open(&base, dir);
    struct persistent_log *log =
        log_open(dir, "bandwidth", (uint64_t)entries,
                 (uint64_t)entries * (size + 64 + 4096));
    /* Both files grow side by side in small alternating chunks (whole
     * persist periods), so both see the same disk and the same neighbours:
     * on a shared machine the noise then hits both alike. */
    long chunk = entries / rounds;
    chunk -= chunk % every;
    if (chunk < every)
        chunk = every;
    int r = 0;
    for (long first = 0; first + chunk <= entries; first += chunk, r++) {
        if (r % 2 == 0) {
            t_base += baseline_chunk(&base, payload, size, first, chunk, every);
            t_log +=
                log_chunk(log, payload, size, first, chunk, every, lat, &nlat);
        } else {
            t_log +=
                log_chunk(log, payload, size, first, chunk, every, lat, &nlat);
            t_base += baseline_chunk(&base, payload, size, first, chunk, every);
        }
    }
    long done = chunk * r;
    persistent_log_close(log);
    log_remove(dir, "bandwidth");
    baseline_close(&base);
    double bytes = (double)size * (double)done;
    qsort(lat, (size_t)nlat, sizeof(double), cmp_double);
    double p50 = lat[nlat / 2];
    long i99 = (long)((double)nlat * 0.99);
    double p99 = lat[i99 < nlat ? i99 : nlat - 1];
    printf("RESULT bench=persistent_bandwidth size=%zu persist_every=%d "
           "gbytes_per_s=%.4f baseline_gbytes_per_s=%.4f persist_us_p50=%.1f "
           "persist_us_p99=%.1f\n",
           size, every, bytes / t_log / 1e9, bytes / t_base / 1e9, p50, p99);
    fprintf(stderr,
            "  size=%zu every=%d: %ld entries, log %.3fs, baseline %.3fs "
            "(log/baseline bandwidth %.3f)\n",
            size, every, done, t_log, t_base, t_base / t_log);
    fflush(stdout);
    free(lat);
    free(payload);
}

static void lookups(const char *dir, long entries)
{
    struct persistent_log *log =
        log_open(dir, "lookup", (uint64_t)entries, (uint64_t)entries * 64);
    int e;
    /* Versions with gaps, three entries per timestamp. */
    for (long i = 0; i < entries; i++) {
        uint64_t v = (uint64_t)i;
        e = persistent_log_append(log, 2 * i + 1, i / 3, &v, sizeof(v));
        if (e)
            die("append", e);
    }
    if ((e = persistent_log_persist(log, 2 * entries)))
        die("persist", e);
    long n = 4 * entries;
    int64_t *keys = malloc((size_t)n * sizeof(int64_t));
    uint64_t x = 88172645463325252ull;
    for (long i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys[i] = (int64_t)(x % (uint64_t)entries);
    }
    const char *by[2] = {"version", "time"};
    for (int k = 0; k < 2; k++) {
        long found = 0;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            struct persistent_entry ent;
            int r = k == 0 ? persistent_log_get(log, 2 * keys[i] + 1, &ent)
                           : persistent_log_get_at_time(log, keys[i] / 3, &ent);
            found += r == 0;
        }
        double t = now_s() - t0;
        if (found != n)
            die("lookup missed", EIO);
        printf("RESULT bench=persistent_bandwidth case=lookup entries=%ld "
               "by=%s lookups_per_s=%.0f\n",
               entries, by[k], (double)n / t);
        fflush(stdout);
    }
    free(keys);
    persistent_log_close(log);
    log_remove(dir, "lookup");
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    int rounds = 20;
    bool quick = false, lookup = true;
    long only_size = 0, only_every = 0;
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"rounds", required_argument, NULL, 'r'},
        {"quick", no_argument, NULL, 'q'},
        {"size", required_argument, NULL, 's'},
        {"persist-every", required_argument, NULL, 'p'},
        {"no-lookup", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "d:r:qs:p:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'q':
            quick = true;
            break;
        case 's':
            only_size = atol(optarg);
            break;
        case 'p':
            only_every = atol(optarg);
            break;
        case 'n':
            lookup = false;
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: persistent_bandwidth [--dir DIR] [--rounds N] "
                    "[--quick] [--size 1024|65536] "
                    "[--persist-every 1|100] [--no-lookup]\n");
            return c == 'h' ? 0 : 64;
        }
    }
    if (optind != argc) {
        fprintf(stderr,
                "persistent_bandwidth: unexpected argument %s\n"
                "usage: persistent_bandwidth [--dir DIR] [--rounds N] "
                "[--quick] [--size 1024|65536] "
                "[--persist-every 1|100] [--no-lookup]\n",
                argv[optind]);
        return 64;
    }
    if (rounds < 1)
        rounds = 1;
    char made[4096] = "";
    if (!dir) {
        /* The current directory, not /tmp: /tmp is often a tmpfs. */
        snprintf(made, sizeof(made), "./persistent_bandwidth-XXXXXX");
        if (!mkdtemp(made))
            die("mkdtemp", errno);
        dir = made;
    }
    struct statfs sfs;
    if (statfs(dir, &sfs) == 0) {
        fprintf(stderr,
                "persistent_bandwidth: directory %s, file system %s "
                "(0x%lx)\n",
                dir, fs_name((long)sfs.f_type), (unsigned long)sfs.f_type);
        if ((unsigned long)sfs.f_type == 0x01021994 ||
            (unsigned long)sfs.f_type == 0x858458f6)
            fprintf(stderr, "persistent_bandwidth: warning: a RAM file "
                            "system, fdatasync costs nothing here\n");
    }
    static const size_t sizes[2] = {1024, 65536};
    static const int everies[2] = {1, 100};
    for (int s = 0; s < 2; s++) {
        for (int p = 0; p < 2; p++) {
            if ((only_size && only_size != (long)sizes[s]) ||
                (only_every && only_every != everies[p]))
                continue;
            /* About the same wall time per configuration. */
            long entries = everies[p] == 1 ? (sizes[s] == 1024 ? 4000 : 2000)
                                           : (sizes[s] == 1024 ? 60000 : 4000);
            if (quick)
                entries /= 10;
            bandwidth(dir, sizes[s], everies[p], entries, rounds);
        }
    }
    if (lookup)
        lookups(dir, 1000000);
    if (made[0])
        rmdir(made);
    return 0;
}
