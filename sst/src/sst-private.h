/* Internal declarations of libsst. */
#ifndef DERECHO_SST_PRIVATE_H
#define DERECHO_SST_PRIVATE_H

#include "sst/sst.h"

#include <pthread.h>
#include <stdatomic.h>
#include <syslog.h>

/* Row header, owned by libsst, at the start of every row:
 *   u64 heartbeat      incremented and pushed every heartbeat_ms
 *   u64 sync           sst_sync barrier generation
 *   u64 closing        1 once the member runs sst_destroy
 *   u8  suspected[n]   1: this row's owner suspects member i
 *   u8  closed_seen[n] 1: this row's owner saw member i closing and will
 *                      not write into i's region again
 * padded to 8 bytes (hdr_base: what heartbeats and sst_sync push), then
 *   u64 pair_sync[n]   sst_sync_ranks barriers entered with member i
 * (pair_off); the user area follows at hdr_size. */
#define SST__HDR_HEARTBEAT 0
#define SST__HDR_SYNC 8
#define SST__HDR_CLOSING 16
#define SST__HDR_SUSPECTED 24

/* sizeof(struct sst_options) in 0.1 (up to log_level, padded to 8). */
#define SST__OPTIONS_V1_SIZE                                                   \
    ((offsetof(struct sst_options, log_level) + sizeof(int) + 7) & ~(size_t)7)

/* sizeof(struct sst_options) before tolerate_silent (up to
 * initial_row_len). */
#define SST__OPTIONS_V2_SIZE                                                   \
    (offsetof(struct sst_options, initial_row_len) + sizeof(size_t))

/* Blob exchanged at set-up (fab_pool_publish/fetch). */
#define SST__BLOB_MAGIC 0x53535444u /* "SSTD" */
#define SST__BLOB_VERSION 3

/* Longest single push; longer ranges are cut into pieces. */
#define SST__MAX_PUSH ((size_t)1 << 20)

/* Operation contexts per peer: bounds the writes one table keeps in flight
 * to one member. */
#define SST__OPS_PER_PEER 128

/* Remote CQ data word of a push: (tag << 1) | SST__DATA_WAKE.  Pushes
 * without the wake bit (heartbeats) do not wake the receiving table. */
#define SST__DATA_WAKE 0x1u

struct sst_table;

struct sst__peer_op {
    struct fab_op op; /* first: done() casts back */
    struct sst__peer *peer;
    size_t chunk; /* staging chunk the write reads from */
    struct sst__peer_op *next_free;
};

/* Staging ring: a put copies the range of my row here and the writes read
 * from the copy, so a put pushes the row as it was when sst_put was
 * called, whenever the provider gets to read the source (the sockets
 * provider reads it later from its own thread; tcp when its socket
 * buffer was full).  Without it a counter put could carry a newer value
 * than the payload put that follows it.  Chunks: an 8-byte header (total
 * length, references) and the bytes; freed in ring order. */
struct sst__staging {
    pthread_mutex_t lock;
    uint8_t *buf;
    size_t cap;
    uint64_t head, tail; /* monotonic byte positions */
    struct fab_mr *mr;
};

struct sst__peer {
    struct sst_table *table;
    uint32_t rank;
    uint32_t node_id;
    char host[64];
    uint16_t port;
    struct fab_conn *conn;     /* NULL for me */
    struct fab_mr_desc remote; /* the member's region */
    uint32_t fab_tag;          /* its libfab data tag, 0: none */
    /* Suspected by me: frozen, no pushes, not waited for. */
    _Atomic bool suspected;
    /* The member closed its table (its closing flag landed): no more
     * writes into its region, not suspected for silence. */
    _Atomic bool closed;
    _Atomic int failure; /* reported connection failure, 0 if none */
    /* Serialises "may I still write to it?" with posting, against the
     * polling thread that stops writes when the member closes. */
    pthread_mutex_t post_lock;
    /* Free operation contexts (ops_lock; never held across libfab calls:
     * completions take it from inside fab_pool_progress). */
    pthread_mutex_t ops_lock;
    struct sst__peer_op *free_ops;
    struct sst__peer_op *ops; /* SST__OPS_PER_PEER */
    _Atomic uint64_t posted;
    _Atomic uint64_t completed;
    /* Set-up: the nonce of the member's attempt whose region we hold;
     * the failure that dropped it during set-up (tolerate_failures). */
    uint64_t nonce;
    int setup_failure;
    /* Named in failed_ranks: frozen from the start, never reported. */
    bool given_failed;
    /* Suspicion: claimed by the first thread that suspects it, reported
     * (on_suspect) by the polling thread. */
    _Atomic bool claimed;
    _Atomic int reason;
    bool reported;
    /* Timer thread only. */
    uint64_t last_heartbeat;
    int64_t last_change_us;
};

struct sst_pred {
    sst_pred_fn pred;
    sst_trigger_fn trigger;
    void *ctx;
    enum sst_pred_kind kind;
    bool removed;  /* pred_lock */
    uint32_t slot; /* in pred_slots */
    struct sst_pred *next;
};

struct sst_table {
    struct sst_options opts;
    char thread_name[16];
    struct fab_pool *pool;
    struct fab_user *user;
    uint32_t n;
    uint32_t my_rank;
    struct sst__peer *peers; /* n entries, peers[my_rank] is me */

    /* Schema */
    size_t n_fields;
    struct sst_field *fields; /* names point into field_names */
    char (*field_names)[64];
    size_t *offsets;
    size_t user_size;
    uint64_t schema_hash;

    /* Region: n rows of row_stride bytes, header then user area. */
    size_t hdr_base; /* heartbeat .. closed_seen, padded */
    size_t pair_off; /* == hdr_base */
    size_t hdr_size;
    size_t row_stride;
    uint8_t *region;
    size_t region_len;
    struct fab_mr *mr;
    struct sst__staging staging;

    /* Set-up records (setup.c). */
    uint64_t key_desc, key_lobby;
    uint64_t nonce;         /* this attempt's identity */
    uint64_t lobby_verdict; /* nonce of a member's attempt we refused */
    uint32_t tag;           /* remote data tag */
    size_t max_push;        /* longest single write */
    size_t inject_max;      /* pushes up to this long go FAB_WRITE_INJECT */
    bool use_data;          /* provider carries our data word */
    uint32_t fab_tag; /* our libfab data tag (0: none: we get every word) */
    int spin_us;

    /* Polling thread. */
    pthread_t thread;
    bool thread_started;
    /* Timer thread: heartbeats and suspicion checks (poll.c). */
    pthread_t timer;
    bool timer_started;
    pthread_mutex_t timer_lock;
    pthread_cond_t timer_cond;
    _Atomic int expelled_by; /* first rank whose row suspects me, or -1 */
    atomic_bool quiet;       /* sst_quiet: publish no new suspicion */
    /* The polling thread runs callbacks (predicates, triggers,
     * on_suspect): the timer thread drives progress meanwhile. */
    _Atomic bool in_user_code;
    bool expelled_reported; /* polling thread */
    uint32_t *failed_copy;  /* opts.failed_ranks, owned */
    _Atomic bool stopping;
    _Atomic bool changed; /* a wake push or sst_notify arrived */
    _Atomic bool failure_pending;
    _Atomic bool armed; /* heartbeat stall checks on (after set-up) */
    int epfd;
    int evfd;

    /* Predicates. */
    pthread_mutex_t pred_lock;
    pthread_cond_t pred_cond;
    struct sst_pred *preds, *preds_tail;
    struct sst_pred **pred_slots; /* handle slot -> predicate */
    uint32_t *pred_gen;           /* handle slot -> generation */
    size_t n_pred_slots;
    struct sst_pred *running;
    int remove_waiters;

    /* sst_sync / sst_put_wait waiters. */
    pthread_mutex_t sync_lock;
    pthread_cond_t sync_cond;
    _Atomic int sync_waiters;

    /* Statistics. */
    _Atomic uint64_t st_puts, st_wakeups, st_triggers, st_heartbeats,
        st_suspicions;
    _Atomic int64_t st_self_stall_us; /* longest stall of ours (timer) */
};

/* util.c */
void sst__log(const struct sst_table *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sst__set_error(struct sst_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t sst__now_us(void);
/* *ts = CLOCK_MONOTONIC time wait_us from now (pthread_cond_timedwait on a
 * condition variable of that clock). */
void sst__abstime_after_us(int64_t wait_us, struct timespec *ts);

static inline uint8_t *sst__row_base(const struct sst_table *t, uint32_t r)
{
    return t->region + (size_t)r * t->row_stride;
}

static inline _Atomic uint64_t *sst__hdr_u64(const struct sst_table *t,
                                             uint32_t r, size_t off)
{
    return (_Atomic uint64_t *)(void *)(sst__row_base(t, r) + off);
}

static inline uint8_t *sst__suspected(const struct sst_table *t, uint32_t r)
{
    return sst__row_base(t, r) + SST__HDR_SUSPECTED;
}

/* My row's pair_sync[of]: barriers (sst_sync_ranks) I entered with of. */
static inline _Atomic uint64_t *sst__pair_sync(const struct sst_table *t,
                                               uint32_t r, uint32_t of)
{
    return (_Atomic uint64_t *)(void *)(sst__row_base(t, r) + t->pair_off +
                                        (size_t)of * sizeof(uint64_t));
}

static inline uint8_t *sst__closed_seen(const struct sst_table *t, uint32_t r)
{
    return sst__row_base(t, r) + SST__HDR_SUSPECTED + t->n;
}

/* put.c */
/* Posts bytes [row_off, row_off+len) of my row to peer (header or user
 * area); wake: the receiving table is woken.  0 when posted or skipped
 * (peer suspected, closed, failed), else -EAGAIN/-EINVAL/... */
int sst__push(struct sst_table *t, struct sst__peer *p, size_t row_off,
              size_t len, bool wake);
/* sst__push counted in posted/completed (never injected): for a caller
 * that waits until the bytes left this process (flush before a shut
 * down). */
int sst__push_tracked(struct sst_table *t, struct sst__peer *p, size_t row_off,
                      size_t len, bool wake);
/* Same to several ranks (NULL: every member but me), one copy. */
int sst__push_ranks(struct sst_table *t, const uint32_t *ranks, size_t n,
                    size_t row_off, size_t len, bool wake);
int sst__staging_init(struct sst_table *t);
void sst__staging_fini(struct sst_table *t);
int sst__push_header(struct sst_table *t, bool wake);
void sst__op_done(struct fab_op *op, int status);

/* setup.c */
void sst__setup_keys(struct sst_table *t);
int sst__setup_publish(struct sst_table *t);
/* Borrows, fetches and confirms every member's current record; members
 * that fail by member_deadline are dropped with tolerate_failures. */
int sst__setup_exchange(struct sst_table *t, int64_t member_deadline,
                        struct sst_error *err);
void sst__setup_unpublish(struct sst_table *t, bool keep_desc);

/* poll.c */
void *sst__poll_main(void *arg);
void *sst__timer_main(void *arg);
void sst__wake_waiters(struct sst_table *t);
bool sst__suspect(struct sst_table *t, uint32_t rank, int reason);
void sst__preds_free(struct sst_table *t);
bool sst__on_poll_thread(const struct sst_table *t);
void sst__on_failure(void *ctx, uint32_t node_id, int reason);
void sst__on_remote_data(void *ctx, uint32_t node_id, uint64_t data);

#endif
