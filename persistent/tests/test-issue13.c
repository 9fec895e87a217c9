/* Issue 13: data loss and hangs found by crash, power-loss and corruption
 * testing.  One direct test per item, through <persistent/persistent.h>
 * only (faults come from the faultfs interposer). */
#include "faultfs.h"
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void path_of(char *buf, size_t len, const char *dir, const char *name,
                    const char *suffix)
{
    snprintf(buf, len, "%s/%s%s", dir, name, suffix);
}

/* A whole file in memory (caller frees). */
static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "open %s", path);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(b);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(fd, b + got, (size_t)st.st_size - got, (off_t)got);
        ck_assert(r > 0);
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return b;
}

static void spill(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "create %s", path);
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, b + done, len - done, (off_t)done);
        ck_assert(w > 0);
        done += (size_t)w;
    }
    close(fd);
}

static void zero_range(const char *path, uint64_t off, uint64_t len)
{
    int fd = open(path, O_WRONLY);
    ck_assert(fd >= 0);
    static const uint8_t z[4096];
    while (len > 0) {
        size_t n = len < sizeof(z) ? (size_t)len : sizeof(z);
        ck_assert_int_eq(pwrite(fd, z, n, (off_t)off), (ssize_t)n);
        off += n;
        len -= n;
    }
    close(fd);
}

static bool same_file(const char *path, const uint8_t *b, size_t len)
{
    size_t n;
    uint8_t *now = slurp(path, &n);
    bool same = n == len && memcmp(now, b, n) == 0;
    free(now);
    return same;
}

static struct persistent_log *try_open(const char *dir, const char *name,
                                       int *res, struct persistent_error *err)
{
    struct persistent_options opts;
    tc_options(&opts, dir);
    struct persistent_log *log = NULL;
    *res = persistent_log_open(&opts, name, &log, err);
    return log;
}

/* What a reopened log may hold: versions first..last_known of seed `seed`
 * (superseded versions above `cut` come from `seed2` when cut >= 0), and
 * must hold at least every version in must_lo..must_hi (none when
 * must_lo > must_hi).  The answer is either a refusal (-EBADMSG, both
 * files unchanged) or a gap-free run of correct entries covering the
 * required ones. */
struct truth {
    uint64_t seed, seed2;
    int64_t cut;
    size_t max;
    int64_t lo, hi; /* the versions that may appear */
    int64_t must_lo, must_hi;
};

static bool entry_ok(const struct truth *t, const struct persistent_entry *e)
{
    if (e->version < t->lo || e->version > t->hi)
        return false;
    uint64_t seed = t->cut >= 0 && e->version > t->cut ? t->seed2 : t->seed;
    return tc_payload_ok(seed, e, t->max);
}

/* Returns the open result; asserts the rules above. */
static int check_reopen(const char *dir, const char *name,
                        const struct truth *t)
{
    char data[512], meta[512];
    path_of(data, sizeof(data), dir, name, ".log");
    path_of(meta, sizeof(meta), dir, name, ".meta");
    size_t dl, ml;
    uint8_t *db = slurp(data, &dl), *mb = slurp(meta, &ml);
    int res;
    struct persistent_error err;
    struct persistent_log *log = try_open(dir, name, &res, &err);
    if (res != 0) {
        ck_assert_msg(res == -EBADMSG, "open: %s (%s: %s)",
                      persistent_strerror(res), err.file, err.msg);
        ck_assert_msg(err.file[0] != 0, "a refusal names the file");
        ck_assert_msg(same_file(data, db, dl) && same_file(meta, mb, ml),
                      "a refused open changed a file");
    } else {
        uint64_t n = persistent_log_count(log);
        int64_t prev = -1;
        for (int64_t i = 0; i < (int64_t)n; i++) {
            struct persistent_entry e;
            ck_assert_int_eq(persistent_log_get_index(
                                 log, persistent_log_first_index(log) + i, &e),
                             0);
            ck_assert_msg(entry_ok(t, &e), "entry v%lld is not one written",
                          (long long)e.version);
            ck_assert_msg(prev < 0 || e.version == prev + 1,
                          "gap: v%lld after v%lld", (long long)e.version,
                          (long long)prev);
            prev = e.version;
        }
        for (int64_t v = t->must_lo; v <= t->must_hi; v++) {
            struct persistent_entry e;
            ck_assert_msg(persistent_log_get(log, v, &e) == 0,
                          "persisted v%lld is missing (open said ok)",
                          (long long)v);
        }
        persistent_log_close(log);
    }
    free(db);
    free(mb);
    return res;
}

/* ---- 1: versions stay increasing across a full trim -------------------- */

static _Atomic int64_t cb_version = -1;
static void on_persisted(void *ctx, int64_t v)
{
    (void)ctx;
    atomic_store(&cb_version, v);
}

START_TEST(full_trim_keeps_versions_increasing)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.on_persisted = on_persisted;
    struct persistent_log *log = NULL;
    ck_assert_int_eq(persistent_log_open(&opts, "t", &log, NULL), 0);
    tc_fill(log, 1, 10, 100, 64);
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    ck_assert_int_eq(persistent_log_trim(log, 1000), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    /* A version at or below one appended before (and persisted) is
     * refused, as it was before the trim. */
    ck_assert_int_eq(persistent_log_append(log, 5, 5000, "x", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_append(log, 100, 5000, "x", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_last_appended(log), 100);
    ck_assert_int_eq(persistent_log_last_version(log), -1);
    ck_assert_int_eq(persistent_log_append(log, 101, 5000, "x", 1), 0);
    ff_arm(dir, FF_SYNCS, -1, false, 0);
    ck_assert_int_eq(persistent_log_persist(log, 101), 0);
    ck_assert_int_ge(ff_calls(), 1);
    ff_disarm();
    ck_assert_int_eq(persistent_log_latest_persisted(log), 101);
    ck_assert_int_eq(atomic_load(&cb_version), 101);
    /* Import follows the same rule. */
    uint8_t *bytes;
    size_t len;
    ck_assert_int_eq(persistent_log_export(log, 101, 101, &bytes, &len), 0);
    ck_assert_int_eq(persistent_log_trim(log, 1000), 0);
    ck_assert_int_eq(persistent_log_import(log, bytes, len, NULL), -EINVAL);
    free(bytes);
    /* A truncate below the last version lowers it (the ragged-edge cut of
     * a view change): then lower versions are accepted, and persisted. */
    /* A reopen keeps the rule (the slots hold the last entry trimmed). */
    persistent_log_close(log);
    ck_assert_int_eq(persistent_log_open(&opts, "t", &log, NULL), 0);
    ck_assert_uint_eq(persistent_log_count(log), 0);
    ck_assert_int_eq(persistent_log_last_appended(log), 101);
    ck_assert_int_eq(persistent_log_append(log, 101, 5000, "x", 1), -EINVAL);
    ck_assert_int_eq(persistent_log_truncate(log, 50), 0);
    ck_assert_int_le(persistent_log_latest_persisted(log), 50);
    ck_assert_int_eq(persistent_log_append(log, 51, 6000, "y", 1), 0);
    ff_arm(dir, FF_SYNCS, -1, false, 0);
    ck_assert_int_eq(persistent_log_persist(log, 51), 0);
    ck_assert_int_ge(ff_calls(), 1);
    ff_disarm();
    ck_assert_int_eq(persistent_log_latest_persisted(log), 51);
    persistent_log_close(log);
}
END_TEST

/* ---- 4: a truncate whose sync fails ------------------------------------ */

static void read_all_entries(struct persistent_log *log, const struct truth *t)
{
    /* Every entry the log answers is in the file and byte-exact (a record
     * beyond the file's end would raise SIGBUS here). */
    for (int64_t v = t->lo; v <= t->hi; v++) {
        struct persistent_entry e;
        if (persistent_log_get(log, v, &e) == 0)
            ck_assert_msg(entry_ok(t, &e), "v%lld wrong", (long long)v);
    }
}

START_TEST(truncate_sync_failure_keeps_memory_and_file_agreeing)
{
    static const unsigned ops[] = {FF_FSYNC | FF_FDATASYNC, FF_FTRUNCATE,
                                   FF_WRITES};
    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        char dir[512], data[600];
        tc_tmpdir(dir, sizeof(dir));
        path_of(data, sizeof(data), dir, "t", ".log");
        struct persistent_log *log = tc_open(dir, "t");
        tc_fill(log, 4, 1, 50, 2000);
        ck_assert_int_eq(persistent_log_persist(log, -1), 0);
        ff_arm(dir, ops[k], 0, true, EIO);
        int e = persistent_log_truncate(log, 20);
        ff_disarm();
        /* The cut may need no write at all (then it succeeds). */
        ck_assert_msg(e == -EIO || (e == 0 && ops[k] == FF_WRITES),
                      "truncate: %s", persistent_strerror(e));
        struct truth t = {4, 4, -1, 2000, 1, 50, 1, 20};
        read_all_entries(log, &t);
        uint64_t n = persistent_log_count(log);
        struct persistent_entry last;
        ck_assert_int_eq(persistent_log_get_index(log, -1, &last), 0);
        ck_assert_msg(n == 20 || n == 50, "count %llu", (unsigned long long)n);
        /* Appending after the failure either continues the log or is
         * refused: never a hole in the file. */
        int64_t next = last.version + 1;
        uint8_t buf[2000];
        size_t sz = tc_payload_size(4, next, 2000);
        tc_payload(4, next, buf, sz);
        e = persistent_log_append(log, next, next * 10, buf, sz);
        ck_assert_msg(e == 0 || e == -EIO, "append: %s",
                      persistent_strerror(e));
        if (e == 0)
            e = persistent_log_persist(log, -1);
        ck_assert_msg(e == 0 || e == -EIO, "persist: %s",
                      persistent_strerror(e));
        persistent_log_close(log);
        t.hi = 51;
        ck_assert_int_eq(check_reopen(dir, "t", &t), 0);
    }
}
END_TEST

/* ---- 5: persist from a foreach callback while another thread trims ------ */

struct deadlock_ctx {
    struct persistent_log *log;
    _Atomic int stage; /* 1: in callback, 2: trimmer about to trim */
    _Atomic int persist_result;
    _Atomic bool reader_done, trimmer_done;
};

static int persist_from_callback(void *arg, const struct persistent_entry *e)
{
    struct deadlock_ctx *c = arg;
    (void)e;
    atomic_store(&c->stage, 1);
    int64_t deadline = th_now_ms() + 5000;
    while (atomic_load(&c->stage) != 2 && th_now_ms() < deadline)
        sched_yield();
    /* Give the trimmer time to block on the write lock while holding the
     * persist mutex: this only makes the old deadlock likely, the answer
     * checked below does not depend on it. */
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    atomic_store(&c->persist_result, persistent_log_persist(c->log, -1));
    return 1;
}

static void *deadlock_reader(void *arg)
{
    struct deadlock_ctx *c = arg;
    persistent_log_foreach_index(c->log, 0, -1, persist_from_callback, c);
    atomic_store(&c->reader_done, true);
    return NULL;
}

static void *deadlock_trimmer(void *arg)
{
    struct deadlock_ctx *c = arg;
    int64_t deadline = th_now_ms() + 5000;
    while (atomic_load(&c->stage) != 1 && th_now_ms() < deadline)
        sched_yield();
    atomic_store(&c->stage, 2);
    persistent_log_trim(c->log, 5);
    atomic_store(&c->trimmer_done, true);
    return NULL;
}

static bool both_done(void *arg)
{
    struct deadlock_ctx *c = arg;
    return atomic_load(&c->reader_done) && atomic_load(&c->trimmer_done);
}

START_TEST(persist_from_foreach_is_refused_not_deadlocked)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct deadlock_ctx c = {0};
    c.log = tc_open(dir, "t");
    tc_fill(c.log, 5, 1, 10, 100);
    atomic_store(&c.persist_result, 1);
    pthread_t a, b;
    ck_assert_int_eq(pthread_create(&a, NULL, deadlock_reader, &c), 0);
    ck_assert_int_eq(pthread_create(&b, NULL, deadlock_trimmer, &c), 0);
    ck_assert_msg(th_wait_until(both_done, &c, 10000),
                  "deadlock: persist from a foreach callback against trim");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    ck_assert_int_eq(atomic_load(&c.persist_result), -EDEADLK);
    /* Outside a callback the same persist works. */
    ck_assert_int_eq(persistent_log_persist(c.log, -1), 0);
    persistent_log_close(c.log);
}
END_TEST

/* ---- 6: the registry frontier never claims a version not durable ------- */

static bool never_changed(void *ctx)
{
    (void)ctx;
    return false;
}
static bool always_changed(void *ctx)
{
    (void)ctx;
    return true;
}
static int ser8(void *ctx, void *buf, size_t cap, size_t *size)
{
    (void)ctx;
    *size = 8;
    if (cap < 8)
        return -ENOBUFS;
    memset(buf, 7, 8);
    return 0;
}

struct reg_ctx {
    struct persistent_registry *reg;
    _Atomic bool stop;
    _Atomic long passes;
};

static void *reg_persister(void *arg)
{
    struct reg_ctx *c = arg;
    while (!atomic_load(&c->stop)) {
        persistent_registry_persist(c->reg, INT64_MAX);
        atomic_fetch_add(&c->passes, 1);
    }
    return NULL;
}

/* Writer side: make_version / truncate, checking after each step that
 * every field's entry in force at the frontier is persisted.  Returns
 * the number of violations. */
static long registry_race(const char *dir, int64_t ms, long *rounds)
{
    struct persistent_log *logs[2] = {tc_open(dir, "f0"), tc_open(dir, "f1")};
    struct reg_ctx c = {0};
    ck_assert_int_eq(persistent_registry_create(&c.reg), 0);
    struct persistent_field_ops a = {always_changed, ser8};
    struct persistent_field_ops b = {never_changed, ser8};
    ck_assert_int_eq(persistent_registry_add(c.reg, logs[0], &a, NULL), 0);
    ck_assert_int_eq(persistent_registry_add(c.reg, logs[1], &b, NULL), 0);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, reg_persister, &c), 0);
    int64_t v = 0, deadline = th_now_ms() + ms;
    long bad = 0, n = 0;
    uint64_t x = 88172645463325252ull;
    while (th_now_ms() < deadline) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x % 4 == 0 && v > 3) {
            v -= 1 + (int64_t)(x >> 8) % 3;
            ck_assert_int_eq(persistent_registry_truncate(c.reg, v), 0);
        } else {
            v++;
            ck_assert_int_eq(persistent_registry_make_version(c.reg, v, v), 0);
        }
        int64_t f = persistent_registry_frontier(c.reg);
        for (int i = 0; i < 2 && f >= 0; i++) {
            struct persistent_entry e;
            if (persistent_log_get_at_version(logs[i], f, &e) == 0 &&
                e.version > persistent_log_latest_persisted(logs[i]))
                bad++;
        }
        n++;
    }
    atomic_store(&c.stop, true);
    pthread_join(t, NULL);
    persistent_registry_destroy(c.reg);
    persistent_log_close(logs[0]);
    persistent_log_close(logs[1]);
    *rounds = n;
    return bad;
}

START_TEST(registry_frontier_stays_durable_under_truncate)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    const char *env = getenv("PERSISTENT_REGISTRY_MS");
    long rounds;
    long bad = registry_race(dir, env ? atol(env) : 1500, &rounds);
    fprintf(stderr,
            "registry race: %ld make_version/truncate steps against a "
            "persisting thread, %ld frontiers not durable\n",
            rounds, bad);
    ck_assert_msg(bad == 0,
                  "%ld of %ld frontiers claimed a version not durable", bad,
                  rounds);
}
END_TEST

/* ---- 7: close waits for point lookups running without lock ------------- */

struct close_ctx {
    struct persistent_log *_Atomic log;
    _Atomic bool stop;
    _Atomic long lookups;
};

static void *close_reader(void *arg)
{
    struct close_ctx *c = arg;
    uint64_t x = 12345;
    while (!atomic_load(&c->stop)) {
        struct persistent_log *log = atomic_load(&c->log);
        if (!log)
            continue;
        x = x * 6364136223846793005ull + 1;
        struct persistent_entry e;
        /* The answer's view dies with close: only the lookup is used. */
        int r =
            persistent_log_get_at_version(log, (int64_t)(x >> 40) % 2000, &e);
        ck_assert(r == 0 || r == -EINVAL || r == -ENOENT);
        atomic_fetch_add(&c->lookups, 1);
    }
    return NULL;
}

START_TEST(close_waits_for_unlocked_lookups)
{
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct close_ctx c;
    memset(&c, 0, sizeof(c));
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, close_reader, &c), 0);
    for (int round = 0; round < 150; round++) {
        struct persistent_options opts;
        tc_options(&opts, dir);
        opts.reset = round == 0;
        struct persistent_log *log = NULL;
        ck_assert_int_eq(persistent_log_open(&opts, "t", &log, NULL), 0);
        if (round == 0) {
            tc_fill(log, 7, 0, 1999, 16);
            ck_assert_int_eq(persistent_log_persist(log, -1), 0);
        }
        /* Readers use the log from here... */
        atomic_store(&c.log, log);
        long before = atomic_load(&c.lookups);
        int64_t deadline = th_now_ms() + 2000;
        while (atomic_load(&c.lookups) < before + 200 && th_now_ms() < deadline)
            sched_yield();
        /* ...until it is withdrawn; a lookup that read the pointer before
         * may still be running when close starts: close waits for it. */
        atomic_store(&c.log, NULL);
        persistent_log_close(log);
    }
    atomic_store(&c.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}
END_TEST

/* ---- 2: a zeroed or older NAME.meta ------------------------------------ */

START_TEST(zeroed_or_old_meta_never_cuts_durable_data)
{
    /* Cases: zero each 4 KiB page of NAME.meta, or put back the NAME.meta
     * from creation time or from before the trim. */
    for (int which = 0; which < 4; which++) {
        char dir[512], data[600], meta[600];
        tc_tmpdir(dir, sizeof(dir));
        path_of(data, sizeof(data), dir, "t", ".log");
        path_of(meta, sizeof(meta), dir, "t", ".meta");
        struct persistent_log *log = tc_open(dir, "t");
        size_t created_len, pretrim_len;
        uint8_t *created = slurp(meta, &created_len);
        tc_fill(log, 2, 1, 100, 2000);
        ck_assert_int_eq(persistent_log_persist(log, -1), 0);
        uint8_t *pretrim = slurp(meta, &pretrim_len);
        ck_assert_int_eq(persistent_log_trim(log, 51), 0);
        persistent_log_close(log);
        uint64_t size_before = tc_file_size(data);
        if (which < 2)
            zero_range(meta, (uint64_t)which * 4096, 4096);
        else if (which == 2)
            spill(meta, created, created_len);
        else
            spill(meta, pretrim, pretrim_len);
        free(created);
        free(pretrim);
        struct truth t = {2, 2, -1, 2000, 51, 100, 51, 100};
        int res = check_reopen(dir, "t", &t);
        ck_assert_msg(res == 0 || res == -EBADMSG, "case %d", which);
        ck_assert_msg(tc_file_size(data) >= size_before || res != 0,
                      "case %d: NAME.log was cut from %llu to %llu", which,
                      (unsigned long long)size_before,
                      (unsigned long long)tc_file_size(data));
    }
}
END_TEST

/* ---- 3: trim past the persisted point, then power loss ----------------- */

START_TEST(trim_past_persisted_then_power_loss_reopens)
{
    for (int zero = 0; zero < 2; zero++) {
        char dir[512], data[600], meta[600], crash[512], cdata[600], cmeta[600];
        tc_tmpdir(dir, sizeof(dir));
        tc_tmpdir(crash, sizeof(crash));
        path_of(data, sizeof(data), dir, "t", ".log");
        path_of(meta, sizeof(meta), dir, "t", ".meta");
        path_of(cdata, sizeof(cdata), crash, "t", ".log");
        path_of(cmeta, sizeof(cmeta), crash, "t", ".meta");
        struct persistent_log *log = tc_open(dir, "t");
        ff_track(data);
        tc_fill(log, 3, 1, 40, 3000);
        ck_assert_int_eq(persistent_log_persist(log, -1), 0);
        tc_fill(log, 3, 41, 120, 3000);
        /* Entries 41.. are not persisted; the trim goes past them. */
        ck_assert_int_eq(persistent_log_trim(log, 100), 0);
        /* Power loss now: NAME.log keeps what was synced, NAME.meta (always
         * synced when written) stays. */
        long long durable = ff_synced_size();
        ck_assert_int_ge(durable, 64);
        size_t dl, ml;
        uint8_t *db = slurp(data, &dl), *mb = slurp(meta, &ml);
        ck_assert_uint_ge(dl, (size_t)durable);
        if (zero)
            memset(db + durable, 0, dl - (size_t)durable);
        spill(cdata, db, zero ? dl : (size_t)durable);
        spill(cmeta, mb, ml);
        free(db);
        free(mb);
        persistent_log_close(log);
        ff_track("/nonexistent/");
        struct truth t = {3, 3, -1, 3000, 100, 120, 1, 0};
        int res = check_reopen(crash, "t", &t);
        ck_assert_msg(res == 0, "a trim then power loss: open refused");
    }
}
END_TEST

/* ---- 8: an older NAME.log copy ----------------------------------------- */

START_TEST(older_log_copy_is_refused)
{
    char dir[512], data[600];
    tc_tmpdir(dir, sizeof(dir));
    path_of(data, sizeof(data), dir, "t", ".log");
    struct persistent_log *log = tc_open(dir, "t");
    tc_fill(log, 8, 1, 50, 500);
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    size_t ol;
    uint8_t *old = slurp(data, &ol);
    ck_assert_int_eq(persistent_log_truncate(log, 20), 0);
    tc_fill(log, 9, 21, 45, 400); /* other payloads for 21.. */
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    persistent_log_close(log);
    spill(data, old, ol);
    free(old);
    struct truth t = {8, 9, 20, 500, 1, 45, 1, 45};
    check_reopen(dir, "t", &t);
}
END_TEST

/* ---- campaigns: corruption, EIO at every write and sync ---------------- */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v ? atol(v) : dflt;
}

struct snapshot {
    uint8_t *data, *meta;
    size_t data_len, meta_len;
};

static void take_snapshot(struct snapshot *s, const char *data,
                          const char *meta)
{
    s->data = slurp(data, &s->data_len);
    s->meta = slurp(meta, &s->meta_len);
}

/* The history every corruption case damages: appends, persists, trims, a
 * truncate with different bytes re-appended, close; older copies of both
 * files are kept along the way.  Final truth: 40..110, seed 21 up to 75,
 * seed 22 above. */
#define CORRUPT_MAX 3000
static void corruption_history(const char *dir, struct snapshot snaps[4])
{
    char data[600], meta[600];
    path_of(data, sizeof(data), dir, "c", ".log");
    path_of(meta, sizeof(meta), dir, "c", ".meta");
    struct persistent_log *log = tc_open(dir, "c");
    tc_fill(log, 21, 1, 60, CORRUPT_MAX);
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    take_snapshot(&snaps[0], data, meta);
    ck_assert_int_eq(persistent_log_trim(log, 20), 0);
    take_snapshot(&snaps[1], data, meta);
    tc_fill(log, 21, 61, 90, CORRUPT_MAX);
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    take_snapshot(&snaps[2], data, meta);
    ck_assert_int_eq(persistent_log_truncate(log, 75), 0);
    tc_fill(log, 22, 76, 110, CORRUPT_MAX);
    ck_assert_int_eq(persistent_log_persist(log, -1), 0);
    take_snapshot(&snaps[3], data, meta);
    ck_assert_int_eq(persistent_log_trim(log, 40), 0);
    persistent_log_close(log);
}

enum damage {
    FLIP_LOG,
    FLIP_META,
    ZERO_PAGE_LOG,
    ZERO_PAGE_META,
    CUT_LOG,
    GARBAGE_LOG,
    BYTES_LOG,
    STALE_LOG,
    STALE_META,
    DAMAGE_KINDS
};

/* Damages one file's bytes; offsets below `from` are left alone. */
static void damage_buf(uint8_t **b, size_t *len, enum damage d, uint64_t *x,
                       const struct snapshot *snaps, bool is_log, size_t from)
{
    size_t n = *len;
    if (from >= n && d != GARBAGE_LOG && d != STALE_LOG && d != STALE_META)
        return;
#define AT() (from + (size_t)(rng_next(x) % (n - from)))
    switch (d) {
    case FLIP_LOG:
    case FLIP_META:
        (*b)[AT()] ^= (uint8_t)(1u << (rng_next(x) % 8));
        break;
    case ZERO_PAGE_LOG:
    case ZERO_PAGE_META: {
        size_t at = AT() & ~(size_t)4095;
        if (at < from)
            at = from;
        size_t k = n - at < 4096 ? n - at : 4096;
        memset(*b + at, 0, k);
    } break;
    case CUT_LOG:
        *len = from + (size_t)(rng_next(x) % (n - from + 1));
        break;
    case GARBAGE_LOG: {
        size_t extra = 1 + (size_t)(rng_next(x) % 9000);
        *b = realloc(*b, n + extra);
        ck_assert_ptr_nonnull(*b);
        bool zeros = rng_next(x) % 2;
        for (size_t i = 0; i < extra; i++)
            (*b)[n + i] = zeros ? 0 : (uint8_t)rng_next(x);
        *len = n + extra;
        break;
    }
    case BYTES_LOG: {
        size_t at = AT();
        size_t k = 1 + (size_t)(rng_next(x) % 64);
        for (size_t i = at; i < n && i < at + k; i++)
            (*b)[i] = (uint8_t)rng_next(x);
    } break;
    case STALE_LOG:
    case STALE_META: {
        const struct snapshot *s = &snaps[rng_next(x) % 4];
        const uint8_t *src = is_log ? s->data : s->meta;
        size_t sl = is_log ? s->data_len : s->meta_len;
        *b = realloc(*b, sl ? sl : 1);
        ck_assert_ptr_nonnull(*b);
        memcpy(*b, src, sl);
        *len = sl;
        break;
    }
    default:
        break;
    }
#undef AT
}

static bool on_log(enum damage d)
{
    return d != FLIP_META && d != ZERO_PAGE_META && d != STALE_META;
}

/* Returns the number of refusals; *ok_out the number of correct prefixes,
 * *whole_out those with every persisted entry. */
static long corruption_campaign(long cases, uint64_t seed, long *ok_out,
                                long *whole_out)
{
    char dir[512], data[600], meta[600];
    tc_tmpdir(dir, sizeof(dir));
    struct snapshot snaps[4];
    corruption_history(dir, snaps);
    path_of(data, sizeof(data), dir, "c", ".log");
    path_of(meta, sizeof(meta), dir, "c", ".meta");
    size_t dl, ml;
    uint8_t *d0 = slurp(data, &dl), *m0 = slurp(meta, &ml);
    /* Truth: 40..110 (seed 21 up to 75, 22 above); a correct answer is a
     * gap-free run from 40, or a refusal. */
    struct truth t = {21, 22, 75, CORRUPT_MAX, 40, 110, 40, 39};
    long refused = 0, ok = 0, whole = 0;
    uint64_t x = seed | 1;
    for (long c = 0; c < cases; c++) {
        uint8_t *db = malloc(dl), *mb = malloc(ml);
        ck_assert(db && mb);
        memcpy(db, d0, dl);
        memcpy(mb, m0, ml);
        size_t dn = dl, mn = ml;
        int k = rng_next(&x) % 4 == 0 ? 2 : 1;
        enum damage first = DAMAGE_KINDS;
        char what[64] = "";
        for (int i = 0; i < k; i++) {
            enum damage d = (enum damage)(rng_next(&x) % DAMAGE_KINDS);
            /* Out of scope: both files older (an older consistent pair).
             * A stale copy of one file plus damage to the other's slots is
             * that too (the other file then reads as its older self), so
             * the second damage spares the slot pages. */
            bool stale = first == STALE_LOG || first == STALE_META;
            if (stale && (d == STALE_LOG || d == STALE_META))
                d = FLIP_LOG;
            if (first == STALE_LOG && !on_log(d))
                d = FLIP_LOG;
            if (first == STALE_META && (d == STALE_LOG || !on_log(d)))
                d = BYTES_LOG;
            if ((d == STALE_LOG && first != DAMAGE_KINDS && !on_log(first)) ||
                (d == STALE_META && first != DAMAGE_KINDS && on_log(first) &&
                 first != GARBAGE_LOG))
                d = first == STALE_LOG ? FLIP_LOG : GARBAGE_LOG;
            snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s%d",
                     i ? "+" : "", (int)d);
            size_t from = stale ? 8192 : 0;
            if (on_log(d))
                damage_buf(&db, &dn, d, &x, snaps, true, from);
            else
                damage_buf(&mb, &mn, d, &x, snaps, false, 0);
            first = d;
        }
        spill(data, db, dn);
        spill(meta, mb, mn);
        /* The first entry must be 40 when any is there: check_reopen sees
         * the versions allowed and the gaps; the start is checked here. */
        int res;
        struct persistent_error err;
        struct persistent_log *log = try_open(dir, "c", &res, &err);
        if (res == 0) {
            ck_assert_msg(persistent_log_count(log) == 0 ||
                              persistent_log_first_version(log) == 40,
                          "case %ld (damage %s): first entry %lld (stale)", c,
                          what, (long long)persistent_log_first_version(log));
            bool all = persistent_log_count(log) == 71;
            persistent_log_close(log);
            spill(data, db, dn);
            spill(meta, mb, mn);
            ck_assert_int_eq(check_reopen(dir, "c", &t), 0);
            ok++;
            whole += all;
        } else {
            ck_assert_msg(res == -EBADMSG, "case %ld: %s (%s)", c,
                          persistent_strerror(res), err.msg);
            ck_assert_msg(same_file(data, db, dn) && same_file(meta, mb, mn),
                          "case %ld: a refused open changed a file", c);
            refused++;
        }
        free(db);
        free(mb);
    }
    for (int i = 0; i < 4; i++) {
        free(snaps[i].data);
        free(snaps[i].meta);
    }
    free(d0);
    free(m0);
    *ok_out = ok;
    *whole_out = whole;
    return refused;
}

START_TEST(corruption_gives_prefix_or_refusal)
{
    long cases = env_long("PERSISTENT_CORRUPTION_CASES", 300);
    uint64_t seed = (uint64_t)env_long("PERSISTENT_CORRUPTION_SEED", 77);
    long ok, whole;
    long refused = corruption_campaign(cases, seed, &ok, &whole);
    fprintf(stderr,
            "corruption: %ld cases (seed %llu): %ld refused, %ld opened "
            "(%ld with every entry, %ld a shorter correct prefix)\n",
            cases, (unsigned long long)seed, refused, ok, whole, ok - whole);
}
END_TEST

/* The EIO scenario.  Returns false once the log refuses (then the caller
 * checks what it has).  *persisted: the highest version a persist
 * reported durable that no later truncate may have cut. */
struct eio_state {
    int64_t persisted;  /* required after reopen (from 10 on) */
    bool trimmed;       /* trim(10) was asked for */
    bool truncate_done; /* truncate(50) was asked for */
    size_t max;
    bool appended[2][71]; /* append of v returned 0 (seed 31, seed 32) */
};

static void eio_persist(struct persistent_log *log, struct eio_state *st)
{
    if (persistent_log_persist(log, -1) == 0) {
        int64_t p = persistent_log_latest_persisted(log);
        if (p > st->persisted)
            st->persisted = p;
    }
}

static void eio_fill(struct persistent_log *log, uint64_t seed, int64_t a,
                     int64_t b, size_t max, struct eio_state *st)
{
    uint8_t *buf = malloc(max);
    ck_assert_ptr_nonnull(buf);
    for (int64_t v = a; v <= b; v++) {
        size_t size = tc_payload_size(seed, v, max);
        tc_payload(seed, v, buf, size);
        int e = persistent_log_append(log, v, v * 10, buf, size);
        if (e)
            break; /* -EIO (refusing) or a failed stage write */
        st->appended[seed == 32][v] = true;
    }
    free(buf);
}

/* Every answer a log under faults gives is in its file and is an entry
 * whose append succeeded, byte for byte. */
static void eio_check_answers(struct persistent_log *log,
                              const struct eio_state *st)
{
    for (int64_t v = 1; v <= 70; v++) {
        struct persistent_entry e;
        if (persistent_log_get(log, v, &e) != 0)
            continue;
        bool a = st->appended[0][v] && tc_payload_ok(31, &e, st->max);
        bool b = st->appended[1][v] && tc_payload_ok(32, &e, st->max);
        ck_assert_msg(v <= 50  ? a
                      : v > 60 ? b
                               : (a || b),
                      "v%lld is not an entry appended", (long long)v);
    }
}

static void eio_run(const char *dir, long nth, bool sticky, size_t max,
                    struct eio_state *st)
{
    memset(st, 0, sizeof(*st));
    st->persisted = -1;
    st->max = max;
    if (nth >= -1)
        ff_arm(dir, FF_ALL, nth, sticky, EIO);
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.reset = true;
    struct persistent_log *log = NULL;
    if (persistent_log_open(&opts, "e", &log, NULL) != 0) {
        ff_disarm();
        return;
    }
    eio_fill(log, 31, 1, 40, max, st);
    eio_persist(log, st);
    st->trimmed = true;
    persistent_log_trim(log, 10);
    eio_check_answers(log, st);
    eio_fill(log, 31, 41, 60, max, st);
    eio_persist(log, st);
    st->truncate_done = true;
    persistent_log_truncate(log, 50);
    if (st->persisted > 50)
        st->persisted = 50;
    eio_check_answers(log, st);
    eio_fill(log, 32, 51, 70, max, st);
    eio_persist(log, st);
    eio_check_answers(log, st);
    persistent_log_close(log);
    ff_disarm();
}

static void eio_check_reopen(const char *dir, const struct eio_state *st,
                             long nth, bool sticky)
{
    int res;
    struct persistent_error err;
    struct persistent_log *log = try_open(dir, "e", &res, &err);
    ck_assert_msg(res == 0, "fault at call %ld (%s): reopen: %s (%s: %s)", nth,
                  sticky ? "sticky" : "once", persistent_strerror(res),
                  err.file, err.msg);
    eio_check_answers(log, st);
    for (int64_t v = 10; v <= st->persisted; v++) {
        struct persistent_entry e;
        if (persistent_log_get(log, v, &e) == 0 || !st->appended[0][v])
            continue;
        ck_assert_msg(0,
                      "fault at call %ld (%s): persisted v%lld lost (log "
                      "holds %lld..%lld, %llu entries; last message: %s)",
                      nth, sticky ? "sticky" : "once", (long long)v,
                      (long long)persistent_log_first_version(log),
                      (long long)persistent_log_last_version(log),
                      (unsigned long long)persistent_log_count(log),
                      tc_last_log());
    }
    persistent_log_close(log);
}

START_TEST(eio_at_every_write_and_sync)
{
    size_t max = (size_t)env_long("PERSISTENT_EIO_MAX_ENTRY", 3000);
    char dir[512];
    tc_tmpdir(dir, sizeof(dir));
    struct eio_state st;
    eio_run(dir, -1, false, max, &st); /* counts the calls */
    long total = ff_calls();
    ck_assert_int_gt(total, 10);
    long failed_runs = 0;
    for (long nth = 0; nth < total; nth++) {
        for (int sticky = 0; sticky < 2; sticky++) {
            eio_run(dir, nth, sticky, max, &st);
            failed_runs += ff_failed() > 0;
            eio_check_reopen(dir, &st, nth, sticky);
        }
    }
    fprintf(stderr,
            "eio: %ld write/sync/truncate calls in the scenario, each failed "
            "once and from then on (%ld runs with a fault): every reopen "
            "kept what was persisted\n",
            total, failed_runs);
}
END_TEST

Suite *tc_issue13_suite(void)
{
    Suite *s = suite_create("issue13");
    TCase *tc = tcase_create("issue13");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, full_trim_keeps_versions_increasing);
    tcase_add_test(tc, zeroed_or_old_meta_never_cuts_durable_data);
    tcase_add_test(tc, trim_past_persisted_then_power_loss_reopens);
    tcase_add_test(tc, truncate_sync_failure_keeps_memory_and_file_agreeing);
    tcase_add_test(tc, persist_from_foreach_is_refused_not_deadlocked);
    tcase_add_test(tc, close_waits_for_unlocked_lookups);
    tcase_add_test(tc, older_log_copy_is_refused);
    suite_add_tcase(s, tc);
    /* Campaigns: short here, long in the stress tier (meson.build). */
    TCase *camp = tcase_create("campaigns");
    tcase_set_timeout(camp, 3000);
    tcase_add_test(camp, corruption_gives_prefix_or_refusal);
    tcase_add_test(camp, eio_at_every_write_and_sync);
    suite_add_tcase(s, camp);
    TCase *reg = tcase_create("registry-race");
    tcase_set_timeout(reg, 3000);
    tcase_add_test(reg, registry_frontier_stays_durable_under_truncate);
    suite_add_tcase(s, reg);
    return s;
}
