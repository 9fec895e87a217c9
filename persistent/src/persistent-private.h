/* Internal declarations shared inside libpersistent. */
#ifndef PERSISTENT_PRIVATE_H
#define PERSISTENT_PRIVATE_H

#include "persistent/persistent.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* ---- on-disk format (docs/persistent.md) ------------------------------- */

#define PERSISTENT__FILE_MAGIC 0x474f4c5052454444ull /* "DDERPLOG" LE */
#define PERSISTENT__META_MAGIC 0x4154454d52455044ull /* "DPERMETA" LE */
#define PERSISTENT__FORMAT 3u        /* data and metadata files */
#define PERSISTENT__EXPORT_FORMAT 1u /* persistent_log_export's bytes */
/* Both files start with two slots PERSISTENT__META_SLOT apart (separate pages):
 * NAME.log's are its header, entries start after them. */
#define PERSISTENT__FILE_HEADER 8192u /* entries start here */
#define PERSISTENT__META_SIZE 128u    /* one slot */
#define PERSISTENT__META_SLOT 4096u   /* distance between the two slots */
/* A record's synced_end word: the durable offset in the low 48 bits, the
 * low 16 bits of the write generation (bumped by truncate) above. */
#define PERSISTENT__SYNCED_BITS 48
#define PERSISTENT__SYNCED_MASK ((1ull << PERSISTENT__SYNCED_BITS) - 1)
#define PERSISTENT__REC_MAGIC 0x43455250u /* "PREC" LE */
#define PERSISTENT__REC_HEADER 48u
#define PERSISTENT__ALIGN 8u
#define PERSISTENT__PAGE 4096u
#define PERSISTENT__MAX_ENTRY 0xffffffffull
#define PERSISTENT__MAX_START_INDEX                                            \
    ((int64_t)1 << 62)                    /* sane NAME.meta bound */
#define PERSISTENT__STAGE_SIZE (1u << 20) /* appends gathered per write */
#define PERSISTENT__RESERVE_CHUNK                                              \
    (4ull << 20)                              /* blocks reserved ahead, most   \
                                               */
#define PERSISTENT__RESERVE_MIN (16ull << 10) /* and least */
#define PERSISTENT__MAX_OPTIONS_SIZE 4096u  /* any struct version's, at most */
#define PERSISTENT__MIN_WINDOW (1ull << 20) /* first mapping window */

/* Record header fields (offsets inside the 48 bytes). */
#define PERSISTENT__R_MAGIC 0
#define PERSISTENT__R_LEN 4
#define PERSISTENT__R_VERSION 8
#define PERSISTENT__R_TS 16
#define PERSISTENT__R_SYNCED 24
#define PERSISTENT__R_DATAHASH 32
#define PERSISTENT__R_HDRHASH 40

static inline uint64_t persistent__pad8(uint64_t n)
{
    return (n + 7u) & ~(uint64_t)7u;
}

/* Bytes taken by the record at file offset off (a multiple of 8) with a
 * payload of len bytes: header, payload, zero padding to 8 bytes, and more
 * zeros up to the end of the page when that costs at most 1/16 of the
 * record.  Records of 64 KiB and more thus always end on a page, so the
 * next persist starts on a fresh page instead of rewriting the one the last
 * persist wrote; small records rarely do (format 2; docs/persistent.md). */
static inline uint64_t persistent__rec_size(uint64_t off, uint64_t len)
{
    uint64_t size = PERSISTENT__REC_HEADER + persistent__pad8(len);
    uint64_t end = off + size;
    uint64_t pad =
        ((end + PERSISTENT__PAGE - 1) & ~(uint64_t)(PERSISTENT__PAGE - 1)) -
        end;
    return pad * 16 <= size ? size + pad : size;
}

/* Bounded little-endian helpers (libmutils'): callers check the range
 * first. */
static inline void persistent__put32(uint8_t *p, uint32_t v)
{
    mutils_store_le32(p, v);
}
static inline void persistent__put64(uint8_t *p, uint64_t v)
{
    mutils_store_le64(p, v);
}
static inline uint32_t persistent__get32(const uint8_t *p)
{
    return mutils_load_le32(p);
}
static inline uint64_t persistent__get64(const uint8_t *p)
{
    return mutils_load_le64(p);
}

/* Relaxed atomic access to plain words that the lock-free point lookups
 * read while the writer changes them (index entries, head, head_index,
 * the window): the same plain moves on x86-64, but defined behaviour in
 * C11 (the lookup throws a torn answer away when seq changed). */
#define PERSISTENT__LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
/* ThreadSanitizer does not model fences (GCC refuses them with -Wtsan):
 * under it the fences below become read-modify-writes of a word of their
 * own, which order the same way in C11 and which it understands. */
#if defined(__SANITIZE_THREAD__)
#define PERSISTENT__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PERSISTENT__TSAN 1
#endif
#endif
#ifdef PERSISTENT__TSAN
extern _Atomic uint64_t persistent__fence_word;
#define PERSISTENT__FULL_FENCE()                                               \
    ((void)atomic_fetch_add_explicit(&persistent__fence_word, 0,               \
                                     memory_order_seq_cst))
#else
#define PERSISTENT__FULL_FENCE() atomic_thread_fence(memory_order_seq_cst)
#endif
#define PERSISTENT__STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* ---- the log object ------------------------------------------------------ */

struct persistent__old_map {
    void *p;
    size_t len;
};

/* One index entry: 32 bytes, two to a cache line. */
struct persistent__ent {
    int64_t ver;
    int64_t ts;
    uint64_t off; /* file offset of the record header */
    uint32_t len; /* payload size */
    uint32_t pad;
};
_Static_assert(sizeof(struct persistent__ent) == 4 * sizeof(int64_t),
               "find_le strides the index by 4 words");

/* File offset just past the record of index entry e. */
static inline uint64_t persistent__ent_end(const struct persistent__ent *e)
{
    return e->off + persistent__rec_size(e->off, e->len);
}

/* ---- (the log) ------------------------------------------------------ */

struct persistent_log {
    /* Type-stable part: a closed log's memory is kept (on a free list,
     * reused by the next open) and its locks are never destroyed, so a
     * lookup that raced with close finds `open` false instead of freed
     * memory. */
    pthread_rwlock_t lock;        /* readers vs trim/truncate/close */
    pthread_mutex_t persist_lock; /* persist vs trim/truncate */
    pthread_mutex_t stage_lock;   /* the stage (below) */
    _Atomic bool open;            /* false from close on */
    struct persistent_log *next_free;

    /* Everything from here on is zeroed when the memory is reused. */
    /* Sequence lock beside lock for the point lookups (lookup.c): odd while
     * trim or truncate change the index or the window (or close runs), so
     * a lookup that ran without lock and saw no change of seq read a
     * consistent log. */
    _Atomic uint64_t seq;
    struct persistent_options opts;
    char *dir;
    char *name;
    char *data_path;
    char *meta_path;
    int fd;     /* NAME.log, O_RDWR */
    int dir_fd; /* the directory, for fsync after renames */
    uint64_t nonce;

    /* The mapping window: [map_base_off, map_base_off + map_size) of the
     * file at map.  Moves only in trim (under the write lock). */
    uint8_t *map;
    size_t map_size;
    uint64_t map_base_off;
    /* The window grows with the log (doubling) up to window_max (what
     * max_data_size needs), so an open log reserves address space for its
     * size, not its limit.  Growing maps a new, larger window and keeps the
     * smaller ones mapped (views into them stay valid) until the next trim
     * or close unmaps them. */
    size_t window_max;
    struct persistent__old_map *old_maps;
    size_t n_old_maps;

    /* The index: rings of capacity cap (a power of two), slot of logical
     * position p = (head + p) & mask.  head/count change under the write
     * lock (trim, truncate); count also grows in append, published with
     * release after the slot is written. */
    uint64_t cap, mask;
    struct persistent__ent *ent;
    void *ent_raw; /* the mapping that holds ent */
    size_t ent_raw_len;
    uint64_t head;
    _Atomic uint64_t count;
    int64_t head_index; /* absolute index of the entry at head */

    uint64_t start_off; /* file offset of the first live record */

    /* Write-behind: records in [flushed_end, end_off) are in stage, not yet
     * in the file; persistent__flush writes them.  stage and stage_len are
     * under stage_lock; flushed_end is published with release so that readers
     * know whether a record needs a flush before they map it. */
    uint8_t *stage;
    size_t stage_len;
    _Atomic uint64_t flushed_end;
    uint64_t reserved_end; /* blocks reserved up to here (writer) */
    bool no_fallocate;
    _Atomic uint64_t end_off; /* file offset after the last record */

    /* Durability. */
    _Atomic int64_t persisted;   /* latest persisted version */
    _Atomic uint64_t synced_end; /* file offset known durable */
    uint64_t meta_durable;       /* what the slots say is durable */
    uint64_t meta_seq;           /* seq of the current slots */
    /* Write generation: bumped by truncate; records at or after gen_off
     * carry it (docs/persistent.md, "Two files, one history"). */
    uint64_t gen;
    uint64_t gen_off;
    /* The last entry trimmed (version, timestamp), as the slots say: a
     * reopened log's versions go on above it. */
    int64_t floor_ver;
    int64_t floor_ts;
    uint64_t punched_upto; /* holes punched below this offset */
    bool punch_warned;
    _Atomic bool
        broken; /* a failed fdatasync or remap: no more durability claims */

    /* Versions stay increasing across trims (docs/persistent.md): the
     * last version and timestamp appended, kept when a trim empties the
     * log, lowered only by truncate.  Writer thread. */
    int64_t last_ver;
    int64_t last_ts;
    _Atomic bool refusing_close; /* logging a refused close */
};

/* True when the calling thread is inside a foreach callback of log (it
 * holds the log's read lock: trim, truncate, import, close and persist
 * from there would wait for it, or for a thread waiting for it). */
bool persistent__in_iteration(const struct persistent_log *log);

/* Lock-free point lookups (lookup.c): each reading thread publishes the
 * log it reads in a slot of its own; close marks the log closed, then
 * (after a membarrier, or a fence on each read where the kernel has none)
 * waits until no slot names it.  persistent__readers_init once per process. */
void persistent__readers_init(void);
void persistent__wait_readers(const struct persistent_log *log);

/* Brackets a change by trim or truncate (write lock held): readers
 * without lock see seq odd or changed and retry with the read lock. */
static inline void persistent__change_begin(struct persistent_log *log)
{
    /* acq_rel: the changes that follow cannot move before it. */
    atomic_fetch_add_explicit(&log->seq, 1, memory_order_acq_rel);
}
static inline void persistent__change_end(struct persistent_log *log)
{
    uint64_t s = atomic_load_explicit(&log->seq, memory_order_relaxed);
    atomic_store_explicit(&log->seq, s + 1, memory_order_release);
}

/* Locks one of the log's mutexes (error-checking ones): -EINVAL when the
 * calling thread holds it already, i.e. a callback (persisted, log) called
 * back into the log, which the header forbids.  Nothing is logged then:
 * the log callback itself may be the one calling back. */
static inline int persistent__lock(pthread_mutex_t *m)
{
    return pthread_mutex_lock(m) == 0 ? 0 : -EINVAL;
}

/* The read lock, -EINVAL when the calling thread holds the write lock (a
 * log callback called from trim or truncate that looks the log up). */
static inline int persistent__rdlock(const struct persistent_log *log)
{
    struct persistent_log *l = (struct persistent_log *)log;
    if (pthread_rwlock_rdlock(&l->lock) != 0)
        return -EINVAL;
    /* A log closed while this thread waited for the lock. */
    if (!atomic_load_explicit(&l->open, memory_order_acquire)) {
        pthread_rwlock_unlock(&l->lock);
        return -EINVAL;
    }
    return 0;
}

/* Logging through the options' callback. */
void persistent__log(const struct persistent_log *log, int level,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void persistent__log_opts(const struct persistent_options *opts, int level,
                          const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Slot of logical position p (0 = head). */
static inline uint64_t persistent__slot(const struct persistent_log *log,
                                        uint64_t p)
{
    return (PERSISTENT__LOAD(log->head) + p) & log->mask;
}

/* Writes the staged records to the file (persistent__flush takes stage_lock,
 * persistent__flush_locked expects it held).  0 or a negative errno. */
int persistent__flush(struct persistent_log *log);
int persistent__flush_locked(struct persistent_log *log);

/* Makes sure the record at logical position p is in the file (so a view
 * of it can be mapped): flushes the stage when it is not.  Any thread,
 * with the read lock held. */
static inline int persistent__visible(const struct persistent_log *log,
                                      uint64_t p)
{
    struct persistent_log *l = (struct persistent_log *)log;
    const struct persistent__ent *e = &log->ent[persistent__slot(log, p)];
    uint64_t rec_end = persistent__ent_end(e);
    if (rec_end <= atomic_load_explicit(&l->flushed_end, memory_order_acquire))
        return 0;
    return persistent__flush(l);
}

/* Logical position of the last entry with version <= v, or -1. */
int64_t persistent__find_le_version(const struct persistent_log *log,
                                    uint64_t n, int64_t v);
/* Fills *out for logical position p (caller holds the read lock). */
void persistent__fill(const struct persistent_log *log, uint64_t p,
                      struct persistent_entry *out);
/* Record payload address (caller holds the read lock). */
static inline const uint8_t *
persistent__payload(const struct persistent_log *log, uint64_t slot)
{
    /* The window may grow under a reader (append, not locked out by the
     * read lock): either window maps the record. */
    return PERSISTENT__LOAD(log->map) +
           (log->ent[slot].off - PERSISTENT__LOAD(log->map_base_off)) +
           PERSISTENT__REC_HEADER;
}

#endif
