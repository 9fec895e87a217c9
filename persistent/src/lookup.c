/* Lookups: binary searches over the in-memory index rings. */
#include "persistent-private.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Versions and timestamps are both non-decreasing along the ring, so one
 * search serves both: the logical position of the last entry with key <= k,
 * or -1.
 *
 * A plain binary search over a million entries is ~20 dependent cache
 * misses.  Keys of a log are usually close to evenly spread (timestamps
 * from a clock, versions numbered within a view), so a couple of
 * interpolation steps land next to the answer; each step checks its guess
 * and a neighbour 8 entries (one cache line) away, so a bad guess still
 * halves little worse than bisection would, and after at most three steps
 * bisection finishes whatever range is left. */
static int64_t find_le(const struct persistent_log *log, bool by_time,
                       uint64_t n, int64_t k)
{
    const uint64_t head = PERSISTENT__LOAD(log->head), mask = log->mask;
    /* The key is the entry's first or second word: one cache line holds
     * the key and everything persistent__fill needs. */
    const int64_t *keys = by_time ? &log->ent[0].ts : &log->ent[0].ver;
#define KEY(p) PERSISTENT__LOAD(keys[((head + (p)) & mask) * 4])
    /* Each key is loaded once (the loads are atomic, which the compiler
     * does not merge): klo/khi follow lo/hi. */
    if (n == 0)
        return -1;
    int64_t klo = KEY(0);
    if (klo > k)
        return -1;
    int64_t khi = KEY(n - 1);
    if (khi <= k)
        return (int64_t)(n - 1);
    /* Invariant: KEY(lo) <= k < KEY(hi). */
    uint64_t lo = 0, hi = n - 1;
    for (int step = 0; step < 3 && hi - lo > 16; step++) {
        double span = (double)khi - (double)klo;
        /* span > 0 and 0 <= frac < 1 by the invariant; the checks keep a
         * lookup without lock (try_unlocked) defined while trim or
         * truncate runs, whose answer is thrown away then. */
        if (!(span > 0))
            break;
        double frac = ((double)k - (double)klo) / span;
        if (!(frac >= 0))
            frac = 0;
        if (frac > 1)
            frac = 1;
        uint64_t g = lo + (uint64_t)(frac * (double)(hi - lo));
        if (g <= lo)
            g = lo + 1;
        if (g >= hi)
            g = hi - 1;
        int64_t kg = KEY(g);
        /* Versions are strictly increasing: an exact hit is the answer,
         * and its successor (often the next cache line) need not load. */
        if (kg == k && !by_time)
            return (int64_t)g;
        if (kg <= k) {
            /* A good guess ends within a few entries (runs of equal
             * timestamps included): one or two cache lines. */
            uint64_t j = g + 1;
            int64_t kprev = kg, kj = j < hi ? KEY(j) : khi;
            while (j < hi && j <= g + 4 && kj <= k) {
                j++;
                kprev = kj;
                kj = j < hi ? KEY(j) : khi;
            }
            if (j < hi && kj > k)
                return (int64_t)(j - 1);
            lo = j - 1;
            klo = kprev;
            if (j >= hi)
                break;
            uint64_t near = j + 8 < hi ? j + 8 : hi;
            int64_t kn = near < hi ? KEY(near) : khi;
            if (kn > k) {
                hi = near;
                khi = kn;
            } else {
                lo = near;
                klo = kn;
            }
        } else {
            uint64_t j = g - 1;
            int64_t kj = KEY(j);
            while (j > lo && j + 4 >= g && kj > k) {
                j--;
                kj = KEY(j);
            }
            if (kj <= k)
                return (int64_t)j;
            hi = j;
            khi = kj;
            if (j <= lo + 1)
                break;
            uint64_t near = j > lo + 8 ? j - 8 : lo;
            int64_t kn = near > lo ? KEY(near) : klo;
            if (kn <= k) {
                lo = near;
                klo = kn;
            } else {
                hi = near;
                khi = kn;
            }
        }
    }
    /* Branch-free bisection of (lo, hi]: keeps the loop predictable. */
    uint64_t len = hi - lo;
    while (len > 1) {
        uint64_t half = len / 2;
        lo = KEY(lo + half) <= k ? lo + half : lo;
        len -= half;
    }
#undef KEY
    return (int64_t)lo;
}

int64_t persistent__find_le_version(const struct persistent_log *log,
                                    uint64_t n, int64_t v)
{
    return find_le(log, false, n, v);
}

void persistent__fill(const struct persistent_log *log, uint64_t p,
                      struct persistent_entry *out)
{
    uint64_t s = persistent__slot(log, p);
    out->version = log->ent[s].ver;
    out->timestamp_ns = log->ent[s].ts;
    out->index = log->head_index + (int64_t)p;
    out->data = persistent__payload(log, s);
    out->size = log->ent[s].len;
}

static uint64_t count_of(const struct persistent_log *log)
{
    return atomic_load_explicit(&((struct persistent_log *)log)->count,
                                memory_order_acquire);
}

static void unlock(const struct persistent_log *log)
{
    pthread_rwlock_unlock(&((struct persistent_log *)log)->lock);
}

/* The point lookups by version and time first run without lock, under
 * the sequence lock: a lock's atomic read-modify-write on a shared line
 * costs little by itself, but it is a full barrier, so one lookup's
 * cache misses could not overlap the next one's.  When trim or truncate
 * ran meanwhile (seq odd or changed), or the record still needs a flush,
 * the lookup returns false and the caller runs it again under the read
 * lock.  Nothing read here is dereferenced as a pointer or used as an
 * index unmasked before seq is checked, so a torn read is harmless. */
enum lookup_kind { BY_VERSION_EXACT, BY_VERSION_LE, BY_TIME_LE };

/* ---- lock-free readers and close ----------------------------------------
 *
 * A thread doing a lookup without lock first names the log in its reader
 * slot, then checks that the log is open; close marks the log closed, then
 * waits until no slot names it.  For the slot store to be seen by close
 * whenever the reader saw the log open (a store then a load on each side),
 * both sides need a full barrier: close issues membarrier(2), which runs
 * one on every thread of the process, so the reader needs only a compiler
 * barrier (no atomic read-modify-write, which would serialise lookups).
 * Without membarrier the reader takes a full fence itself.  Threads beyond
 * the slots take the read lock instead. */
#define READER_SLOTS 256

struct reader_slot {
    _Atomic(const struct persistent_log *) log;
    _Atomic bool taken;
} __attribute__((aligned(64)));

static struct reader_slot reader_slots[READER_SLOTS];
static _Atomic bool have_membarrier;
static pthread_once_t readers_once = PTHREAD_ONCE_INIT;
static pthread_key_t reader_key;
/* This thread's slot (NULL until taken), and whether none was free. */
static _Thread_local struct reader_slot *my_slot
    __attribute__((tls_model("initial-exec")));
static _Thread_local bool no_slot __attribute__((tls_model("initial-exec")));

static void release_slot(void *p)
{
    int i = (int)(intptr_t)p - 1;
    if (i >= 0 && i < READER_SLOTS)
        atomic_store_explicit(&reader_slots[i].taken, false,
                              memory_order_release);
}

static void readers_setup(void)
{
    long r = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                     0, 0);
#ifdef PERSISTENT__TSAN
    r = -1; /* the sanitizer sees the readers' fences, not membarrier's */
#endif
    atomic_store(&have_membarrier, r == 0);
    (void)pthread_key_create(&reader_key, release_slot);
}

void persistent__readers_init(void)
{
    pthread_once(&readers_once, readers_setup);
}

/* Takes a free slot for this thread (first lock-free lookup). */
static struct reader_slot *take_slot(void)
{
    if (no_slot)
        return NULL;
    for (int i = 0; i < READER_SLOTS; i++) {
        bool no = false;
        if (atomic_compare_exchange_strong(&reader_slots[i].taken, &no, true)) {
            my_slot = &reader_slots[i];
            (void)pthread_setspecific(reader_key, (void *)(intptr_t)(i + 1));
            return my_slot;
        }
    }
    no_slot = true;
    return NULL;
}

#ifdef PERSISTENT__TSAN
_Atomic uint64_t persistent__fence_word;
#endif

void persistent__wait_readers(const struct persistent_log *log)
{
    PERSISTENT__FULL_FENCE();
    if (atomic_load(&have_membarrier))
        (void)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    for (int i = 0; i < READER_SLOTS; i++) {
        while (atomic_load_explicit(&reader_slots[i].log,
                                    memory_order_acquire) == log)
            sched_yield();
    }
}

static bool try_unlocked(const struct persistent_log *log,
                         enum lookup_kind kind, int64_t key,
                         struct persistent_entry *out, int *res)
{
    struct persistent_log *l = (struct persistent_log *)log;
    uint64_t s = atomic_load_explicit(&l->seq, memory_order_acquire);
    if (s & 1)
        return false;
    uint64_t n = count_of(log);
    int64_t p = find_le(log, kind == BY_TIME_LE, n, key);
    int e = 0;
    struct persistent_entry v = {0};
    uint64_t off = 0;
    const uint8_t *map = NULL;
    uint64_t base = 0;
    if (p < 0) {
        e = -ENOENT;
    } else {
        uint64_t slot = persistent__slot(log, (uint64_t)p);
        v.version = PERSISTENT__LOAD(log->ent[slot].ver);
        v.timestamp_ns = PERSISTENT__LOAD(log->ent[slot].ts);
        v.index = PERSISTENT__LOAD(log->head_index) + p;
        v.size = PERSISTENT__LOAD(log->ent[slot].len);
        off = PERSISTENT__LOAD(log->ent[slot].off);
        if (kind == BY_VERSION_EXACT && v.version != key) {
            e = -ENOENT;
        } else {
            uint64_t rec_end = off + persistent__rec_size(off, v.size);
            if (rec_end >
                atomic_load_explicit(&l->flushed_end, memory_order_acquire))
                return false; /* persistent__flush first: under the lock */
            map = PERSISTENT__LOAD(log->map);
            base = PERSISTENT__LOAD(log->map_base_off);
        }
    }
#ifdef PERSISTENT__TSAN
    /* A release RMW: the loads above cannot move after it. */
    uint64_t again =
        atomic_fetch_add_explicit(&l->seq, 0, memory_order_acq_rel);
#else
    atomic_thread_fence(memory_order_acquire);
    uint64_t again = atomic_load_explicit(&l->seq, memory_order_relaxed);
#endif
    if (again != s)
        return false;
    if (!e) {
        v.data = map + (off - base) + PERSISTENT__REC_HEADER;
        *out = v;
    }
    *res = e;
    return true;
}

/* The point lookups: without lock when try_unlocked can, else under the
 * read lock (trim/truncate ran, or the record is still staged). */
static int point_lookup(const struct persistent_log *log, enum lookup_kind kind,
                        int64_t key, struct persistent_entry *out)
{
    if (!log || !out)
        return -EINVAL;
    int r;
    struct reader_slot *slot = my_slot;
    if (__builtin_expect(!slot, 0))
        slot = take_slot();
    if (slot) {
        /* Close makes seq odd for good before it looks at the slots, so
         * try_unlocked (which checks seq first) does not read a log being
         * closed: the read lock (which checks open) answers then. */
        atomic_store_explicit(&slot->log, log, memory_order_relaxed);
        if (atomic_load_explicit(&have_membarrier, memory_order_relaxed))
            atomic_signal_fence(memory_order_seq_cst);
        else
            PERSISTENT__FULL_FENCE();
        bool done = try_unlocked(log, kind, key, out, &r);
        atomic_store_explicit(&slot->log, NULL, memory_order_release);
        if (done)
            return r;
    }
    int le = persistent__rdlock(log);
    if (le)
        return le;
    uint64_t n = count_of(log);
    int64_t p = find_le(log, kind == BY_TIME_LE, n, key);
    int e = -ENOENT;
    if (p >= 0 && (kind != BY_VERSION_EXACT ||
                   log->ent[persistent__slot(log, (uint64_t)p)].ver == key)) {
        e = persistent__visible(log, (uint64_t)p);
        if (!e)
            persistent__fill(log, (uint64_t)p, out);
    }
    unlock(log);
    return e;
}

int persistent_log_get(const struct persistent_log *log, int64_t version,
                       struct persistent_entry *out)
{
    return point_lookup(log, BY_VERSION_EXACT, version, out);
}

int persistent_log_get_at_version(const struct persistent_log *log,
                                  int64_t version, struct persistent_entry *out)
{
    return point_lookup(log, BY_VERSION_LE, version, out);
}

int persistent_log_get_at_time(const struct persistent_log *log, int64_t t,
                               struct persistent_entry *out)
{
    return point_lookup(log, BY_TIME_LE, t, out);
}

/* Logical position of index (negative from the end), or -1. */
static int64_t position_of(const struct persistent_log *log, uint64_t n,
                           int64_t index)
{
    int64_t p;
    if (index < 0) {
        if ((uint64_t)(-(index + 1)) >= n)
            return -1;
        p = (int64_t)n + index;
    } else {
        if (index < log->head_index)
            return -1;
        p = index - log->head_index;
        if ((uint64_t)p >= n)
            return -1;
    }
    return p;
}

int persistent_log_get_index(const struct persistent_log *log, int64_t index,
                             struct persistent_entry *out)
{
    if (!log || !out)
        return -EINVAL;
    int le = persistent__rdlock(log);
    if (le)
        return le;
    uint64_t n = count_of(log);
    int64_t p = position_of(log, n, index);
    int e = p >= 0 ? persistent__visible(log, (uint64_t)p) : -ENOENT;
    if (!e)
        persistent__fill(log, (uint64_t)p, out);
    unlock(log);
    return e;
}

int persistent_log_copy(const struct persistent_log *log, int64_t index,
                        void *buf, size_t cap, struct persistent_entry *out)
{
    if (!log || !out || (cap > 0 && !buf))
        return -EINVAL;
    int le = persistent__rdlock(log);
    if (le)
        return le;
    uint64_t n = count_of(log);
    int64_t p = position_of(log, n, index);
    int e = p >= 0 ? persistent__visible(log, (uint64_t)p) : -ENOENT;
    if (!e) {
        struct persistent_entry view;
        persistent__fill(log, (uint64_t)p, &view);
        *out = view;
        if (view.size > cap) {
            out->data = NULL; /* no view escapes the read lock */
            e = -ENOBUFS;
        } else {
            if (view.size)
                memcpy(buf, view.data, view.size);
            out->data = buf;
            e = 0;
        }
    }
    unlock(log);
    return e;
}

uint64_t persistent_log_count(const struct persistent_log *log)
{
    return log ? count_of(log) : PERSISTENT_NO_COUNT;
}

static int64_t version_at(const struct persistent_log *log, bool last)
{
    if (!log)
        return PERSISTENT_INVALID_VERSION;
    if (persistent__rdlock(log))
        return PERSISTENT_INVALID_VERSION;
    uint64_t n = count_of(log);
    int64_t v = PERSISTENT_INVALID_VERSION;
    if (n > 0)
        v = log->ent[persistent__slot(log, last ? n - 1 : 0)].ver;
    unlock(log);
    return v;
}

int64_t persistent_log_first_version(const struct persistent_log *log)
{
    return version_at(log, false);
}

int64_t persistent_log_last_version(const struct persistent_log *log)
{
    return version_at(log, true);
}

int64_t persistent_log_first_index(const struct persistent_log *log)
{
    if (!log || persistent__rdlock(log))
        return PERSISTENT_INVALID_INDEX;
    int64_t i = log->head_index;
    unlock(log);
    return i;
}

int64_t persistent_log_last_index(const struct persistent_log *log)
{
    if (!log || persistent__rdlock(log))
        return PERSISTENT_INVALID_INDEX;
    int64_t i = log->head_index + (int64_t)count_of(log) - 1;
    unlock(log);
    return i;
}

int64_t persistent_log_last_appended(const struct persistent_log *log)
{
    return log ? log->last_ver : PERSISTENT_INVALID_VERSION;
}

uint64_t persistent_log_data_size(const struct persistent_log *log)
{
    if (!log || persistent__rdlock(log))
        return PERSISTENT_NO_SIZE;
    uint64_t s =
        atomic_load(&((struct persistent_log *)log)->end_off) - log->start_off;
    unlock(log);
    return s;
}

/* The foreach calls running on this thread, innermost first (a callback
 * may iterate another log, or the same one). */
struct iter_frame {
    const struct persistent_log *log;
    struct iter_frame *prev;
};
static _Thread_local struct iter_frame *iter_top
    __attribute__((tls_model("initial-exec")));

bool persistent__in_iteration(const struct persistent_log *log)
{
    for (const struct iter_frame *f = iter_top; f; f = f->prev) {
        if (f->log == log)
            return true;
    }
    return false;
}

static int iterate(const struct persistent_log *log, uint64_t from,
                   uint64_t to_excl, persistent_entry_fn fn, void *ctx)
{
    int r = 0;
    if (from < to_excl) {
        r = persistent__visible(log, to_excl - 1);
        if (r)
            return r;
    }
    /* Mark this thread as iterating this log, so that a trim, truncate,
     * persist or close from fn (forbidden) fails instead of waiting for
     * this read lock forever. */
    struct iter_frame frame = {log, iter_top};
    iter_top = &frame;
    for (uint64_t p = from; p < to_excl && r == 0; p++) {
        struct persistent_entry e;
        persistent__fill(log, p, &e);
        r = fn(ctx, &e);
    }
    iter_top = frame.prev;
    return r;
}

int persistent_log_foreach_index(const struct persistent_log *log,
                                 int64_t first_index, int64_t last_index,
                                 persistent_entry_fn fn, void *ctx)
{
    if (!log || !fn)
        return -EINVAL;
    int le = persistent__rdlock(log);
    if (le)
        return le;
    uint64_t n = count_of(log);
    int64_t end = log->head_index + (int64_t)n; /* one past the last */
    int64_t a = first_index < 0 ? end + first_index : first_index;
    int64_t b = last_index < 0 ? end + last_index : last_index;
    if (a < log->head_index)
        a = log->head_index;
    if (b >= end)
        b = end - 1;
    int r = 0;
    if (a <= b)
        r = iterate(log, (uint64_t)(a - log->head_index),
                    (uint64_t)(b - log->head_index) + 1, fn, ctx);
    unlock(log);
    return r;
}

int persistent_log_foreach_version(const struct persistent_log *log,
                                   int64_t from_version, int64_t to_version,
                                   persistent_entry_fn fn, void *ctx)
{
    if (!log || !fn)
        return -EINVAL;
    int le = persistent__rdlock(log);
    if (le)
        return le;
    uint64_t n = count_of(log);
    int r = 0;
    if (from_version <= to_version) {
        int64_t a = from_version == INT64_MIN
                        ? -1
                        : find_le(log, false, n, from_version - 1);
        int64_t b = find_le(log, false, n, to_version);
        r = iterate(log, (uint64_t)(a + 1), (uint64_t)(b + 1), fn, ctx);
    }
    unlock(log);
    return r;
}
