/* Ordered multicast over SMC (small-message multicast in the SST rows).
 *
 * Every installed view gets one SST table (table id = view id) over the
 * process's fab pool.  Its rows hold, for every subgroup of the layout
 * (the schema is the same in every row):
 *   s<i>.slots  window x (8-byte header + max_smc_payload_size rounded up
 *               to 8): the ring this member writes as a sender;
 *   s<i>.cnt    nsent (how many messages, nulls included, it put in the
 *               ring), then recv[K] and ndel[K]: per sender of my shard,
 *               how many of its messages I received and delivered (K = the
 *               largest sender count of the subgroup's shards).  Each is a
 *               word-atomic element (SST_WORD_SIZE bytes, sst_word_store /
 *               sst_word_load, see smc_count.c): other members read them
 *               while a push may be landing, and on tcp a plain 8-byte
 *               counter can be read half written.
 * A sender writes a slot, pushes it to the shard, then the counters
 * starting at nsent (the guard pattern: libsst keeps pushes from one
 * member in order).  Pushes that include nsent are made under the lock,
 * so they leave in the order nsent grew.  When the delivery thread is
 * awake (not asleep, not in an upcall) the sender leaves that push to its
 * next pass, which carries recv/ndel too: one push for many messages.  The
 * delivery thread ("derecho-dlv") turns nsent into recv, delivers in round
 * robin order what every shard member received, pushes recv/ndel, and
 * sends a null message at once when another sender has a message in a
 * round where it has none.  A slot is reused once every shard member
 * delivered the message it held (ndel), so upcalls read it in place.
 * The SST's polling thread only evaluates a cheap predicate that wakes the
 * delivery thread when a counter of a row it reads changed. */
#include "derecho-private.h"

#include <conf/conf.h>
#include <fab/fab.h>
#include <rdmc/rdmc.h>
#include <sst/sst.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define SLOT_HEADER 8
#define SLOT_NULL (1ull << 32) /* header flag: a null message */
#define SPIN_NS 20000          /* delivery thread: spin after progress */
#define IDLE_POLL_MS 100       /* delivery thread: safety-net wake-up */
/* Header flag: an RDMC message; the slot's payload holds its RDMC index
 * and size (two u64), the bytes arrive through RDMC (rdmc_path.c). */
#define SLOT_RDMC (1ull << 33)
#define RDMC_SLOT_LEN 16
#define RDMC_RING_MAX 8 /* RDMC ring positions per sender (memory) */
#define MAX_PROFILES 64
#define SETUP_TIMEOUT_MS 5000 /* a view's table among its members */
#define EDGE_TIMEOUT_MS 10000 /* epoch end: waiting for a ragged edge */

struct profile {
    char name[DERECHO_MAX_NAME + 1];
    uint32_t window;
    size_t payload; /* max_smc_payload_size */
    /* The RDMC path: max_payload_size (used when above payload),
     * block_size, rdmc_send_algorithm. */
    size_t max_payload, block_size;
    int algorithm;
};

/* One shard this process belongs to, in one view. */
struct sshard {
    uint32_t subgroup, shard;
    int mode;
    uint32_t n;      /* shard members */
    uint32_t *ranks; /* their table ranks, shard order */
    uint32_t k;      /* senders */
    uint32_t *sender_ranks;
    uint32_t *sender_ids;
    int me_sender; /* my index among the senders, or -1 */
    uint32_t window;
    size_t payload, slot_size;
    size_t max_msg; /* the largest message: RDMC's limit when above */
    size_t off_slots, off_nsent, off_cnt;
    size_t off_edge; /* edge[K], ready, wedged (word-atomic elements) */
    uint32_t K;
    /* Delivery thread only. */
    uint64_t next;       /* ordered: next position to deliver */
    uint64_t *delivered; /* per sender */
    uint64_t *recv;      /* per sender: my recv[j] (what my row holds) */
    /* Unordered: per sender, how many of its first messages in this view
     * I delivered already in an earlier view (its carried messages, see
     * end_epoch): received, not delivered again. */
    uint64_t *skip;
    uint64_t seen_sum;
    /* Senders, under smc->lock. */
    uint64_t nsent;
    uint64_t pushed; /* my slots pushed to the shard (<= nsent) */
    bool dirty;      /* nsent not pushed yet: the delivery thread will */
    bool reserved;
    bool reserved_rdmc; /* the reservation is in my RDMC ring */
    size_t reserved_size;
    pthread_t owner;
};

struct sview {
    struct derecho__smc *s;
    uint64_t pred_sum; /* SST polling thread only */
    int64_t id;
    struct sst_table *t;
    uint32_t my_rank;
    uint32_t num_subgroups;
    int32_t *mine; /* per subgroup: index in shards, -1 none, -2 not
                      provisioned */
    bool *receive_only;
    struct sshard *shards;
    size_t num_shards;
    bool wedged; /* under smc->lock */
    /* The view's end began (a change is committed and I am in the next
     * view or leave): the old table's expulsion and majority events no
     * longer apply (end_epoch checks the majority itself). */
    atomic_bool ending;
    /* A member of this view is suspected: no new sends (set on the SST's
     * polling thread, which must not take smc->lock). */
    atomic_bool suspicion;
    atomic_int *reason; /* per rank: why I suspect it (0: I do not) */
    struct sst_pred *pred, *spread;
    struct derecho__rdmc_view *rdmc; /* large messages; NULL: none */
};

/* Counts of one subgroup since the group was created (derecho_group_stats):
 * sent under smc->lock, delivered on the delivery thread. */
struct sgcount {
    atomic_uint_fast64_t sent, delivered, nulls_sent, nulls_delivered;
    /* Blocking senders waiting for room in my window (under smc->lock):
     * their messages take my next positions, so no nulls meanwhile. */
    uint32_t window_waiters;
};

struct derecho__smc {
    const struct derecho_group_options *o;
    uint32_t my_id;
    struct fab_pool *pool;
    struct profile profiles[MAX_PROFILES];
    size_t num_profiles;
    int heartbeat_ms;
    bool link_broken;       /* DERECHO_TEST_BREAK_LINK done (group's thread) */
    int suspect_timeout_ms; /* [DERECHO] sst_poll_cq_timeout_ms */
    pthread_mutex_t lock;
    pthread_cond_t cond; /* senders, view changes, epoch ends */
    int waiters;
    int window_waiters; /* of them, blocking senders waiting for room */
    struct sview *cur;  /* NULL between views */
    uint64_t generation;
    bool closing;
    /* Epoch end, done by the delivery thread. */
    struct sview *retire;
    const struct derecho_view *retire_next;
    bool retire_done;
    /* The delivery thread. */
    pthread_t thread;
    bool thread_started;
    int wake_fd;
    atomic_int sleeping;
    atomic_int in_upcall;
    /* My messages a view ended without delivering, to send again first in
     * the next view, in order (under lock; the delivery thread sends
     * them, and new sends to their subgroup wait until they are out). */
    struct carry *carry_head, *carry_tail;
    struct skip *skips; /* under lock */
    /* The group's hooks: suspicions and expulsion (polling thread). */
    derecho__smc_event_fn event;
    void *event_ctx;
    atomic_int stopped;     /* DERECHO_STOPPED_*: no sends, no deliveries */
    struct sgcount *counts; /* per subgroup of the spec */
    /* The last ended view's suspicions, for derecho_group_stats while no
     * next view is installed (e.g. stopped as partitioned); under lock. */
    int64_t ended_id;
    uint32_t ended_n;
    int *ended_reason; /* per rank: 0 not suspected, else why */
    uint32_t num_counts;
    bool partition_safety; /* not [DERECHO] disable_partitioning_safety */
    int rdmc_timeout_ms;   /* [DERECHO] rdmc_timeout_ms */
};

struct carry {
    struct carry *next;
    uint32_t subgroup;
    size_t len;
    uint8_t data[];
};

/* Unordered mode across a view change: of sender sender_id's first
 * messages in subgroup's next view (its carried ones), count were
 * delivered here in an earlier view.  Written by end_epoch, consumed by
 * the next view's activation (under lock). */
struct skip {
    struct skip *next;
    uint32_t subgroup, sender_id;
    uint64_t count;
};

static bool carry_pending(const struct derecho__smc *s, uint32_t subgroup)
{
    for (const struct carry *c = s->carry_head; c; c = c->next)
        if (c->subgroup == subgroup)
            return true;
    return false;
}

static void slog(const struct derecho__smc *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void slog(const struct derecho__smc *s, int level, const char *fmt, ...)
{
    if (level > s->o->log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->o->log)
        s->o->log(s->o->log_ctx, level, "derecho", msg);
    else
        fprintf(stderr, "derecho: %s: %s\n",
                level <= LOG_ERR       ? "error"
                : level <= LOG_WARNING ? "warning"
                                       : "info",
                msg);
}

static void wake(struct derecho__smc *s)
{
    if (atomic_exchange(&s->sleeping, 0)) {
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof(one)) < 0) {
            /* The counter is full: the thread is being woken anyway. */
        }
    }
}

static void partitioned(struct derecho__smc *s, struct sview *v);

/* ---- rows ------------------------------------------------------------------
 */

static inline uint8_t *row(struct sview *v, uint32_t rank)
{
    return sst_row(v->t, rank);
}

/* Counter elements of rank's row: nsent, recv[j], ndel[j]. */
static inline uint8_t *nsent_of(struct sview *v, struct sshard *sh,
                                uint32_t rank)
{
    return row(v, rank) + sh->off_nsent;
}

static inline uint8_t *recv_of(struct sview *v, struct sshard *sh,
                               uint32_t rank, uint32_t j)
{
    return row(v, rank) + sh->off_cnt + (size_t)j * SST_WORD_SIZE;
}

static inline uint8_t *ndel_of(struct sview *v, struct sshard *sh,
                               uint32_t rank, uint32_t j)
{
    return row(v, rank) + sh->off_cnt + ((size_t)sh->K + j) * SST_WORD_SIZE;
}

static int push_counters(struct sview *v, struct sshard *sh);
static inline uint8_t *slot_of(struct sview *v, struct sshard *sh,
                               uint32_t rank, uint64_t index)
{
    return row(v, rank) + sh->off_slots + (index % sh->window) * sh->slot_size;
}

/* Pushes my counters (nsent, recv, ndel) to the shard, after the slots I
 * committed and did not push yet (sh->pushed up to sh->nsent): those go
 * first, as one contiguous range (two at the ring's wrap), so that many
 * messages cost one push; libsst keeps pushes from one member in order,
 * so a peer that reads the new nsent has the slots it announces.  When
 * the last pending slot is the ring's last one and the counters follow
 * the ring in the row, slots and counters are one push.  Under s->lock. */
static int push_counters(struct sview *v, struct sshard *sh)
{
    sh->dirty = false;
    if (sh->n < 2) {
        sh->pushed = sh->nsent;
        return 0;
    }
    size_t cnt_len = (1 + 2 * (size_t)sh->K) * SST_WORD_SIZE;
    size_t ring_end = sh->off_slots + (size_t)sh->window * sh->slot_size;
    int rc = 0;
    while (rc == 0 && sh->pushed < sh->nsent) {
        uint64_t first = sh->pushed % sh->window;
        uint64_t count = sh->nsent - sh->pushed;
        if (count > sh->window - first)
            count = sh->window - first; /* up to the ring's end */
        size_t off = sh->off_slots + first * sh->slot_size;
        /* Every slot but the last in full; the last up to its end. */
        const uint8_t *last =
            row(v, v->my_rank) + off + (count - 1) * sh->slot_size;
        uint64_t hdr;
        memcpy(&hdr, last, sizeof(hdr));
        size_t used = hdr & SLOT_NULL ? 0 : (size_t)(uint32_t)hdr;
        if (used > sh->payload)
            used = sh->payload;
        size_t len = (count - 1) * sh->slot_size + SLOT_HEADER +
                     ((used + 7) & ~(size_t)7);
        sh->pushed += count;
        if (sh->pushed == sh->nsent && first + count == sh->window &&
            ring_end == sh->off_nsent) {
            /* Slots and counters in one push. */
            return sst_put_to(v->t, sh->ranks, sh->n, off,
                              sh->off_nsent + cnt_len - off);
        }
        rc = sst_put_to(v->t, sh->ranks, sh->n, off, len);
    }
    if (rc)
        return rc;
    return sst_put_to(v->t, sh->ranks, sh->n, sh->off_nsent, cnt_len);
}

/* Has every shard member delivered my message nsent - window (so its
 * slot, the one nsent reuses, is free)?  A count being written counts as
 * not yet. */
static bool window_has_room(struct sview *v, struct sshard *sh)
{
    if (sh->nsent < sh->window)
        return true;
    uint64_t need = sh->nsent - sh->window; /* ndel must be above it */
    for (uint32_t i = 0; i < sh->n; i++)
        if (!derecho__smc_count_above(
                ndel_of(v, sh, sh->ranks[i], (uint32_t)sh->me_sender), need))
            return false;
    return true;
}

/* Publishes my next slot (header already written).  When the delivery
 * thread is awake (not asleep, not in an upcall) its next pass pushes the
 * slot with any others committed meanwhile and the counters
 * (push_counters): one push for many messages.  Otherwise the slots and
 * counters go now.  Under smc->lock. */
static int publish_slot(struct derecho__smc *s, struct sview *v,
                        struct sshard *sh, size_t len)
{
    (void)len;
    int rc = 0;
    sh->nsent++;
    sst_word_store(nsent_of(v, sh, v->my_rank), sh->nsent);
    if (atomic_load(&s->sleeping) || atomic_load(&s->in_upcall)) {
        rc = push_counters(v, sh);
        wake(s);
    } else {
        sh->dirty = true; /* the awake delivery thread's next pass */
    }
    if (rc)
        slog(s, LOG_ERR, "view %lld: push of a message failed: %s",
             (long long)v->id, sst_strerror(rc));
    return rc;
}

/* ---- the RDMC path (rdmc_path.c) --------------------------------------------
 */

static inline size_t shard_index(const struct sview *v, const struct sshard *sh)
{
    return (size_t)(sh - v->shards);
}

/* Is my next RDMC ring position free (the message it held delivered by
 * every shard member)?  False while the view has no RDMC groups. */
static bool ring_has_room(struct sview *v, struct sshard *sh)
{
    if (!v->rdmc)
        return false;
    uint64_t seq;
    if (!derecho__rdmc_reuse(v->rdmc, shard_index(v, sh), &seq))
        return true;
    for (uint32_t i = 0; i < sh->n; i++)
        if (!derecho__smc_count_above(
                ndel_of(v, sh, sh->ranks[i], (uint32_t)sh->me_sender), seq))
            return false;
    return true;
}

/* Sends the len bytes in my RDMC send buffer as my next message: the
 * RDMC multicast, then the slot that gives its place in my sequence.  A
 * failed group (a member failed, or another member already wedged it for
 * the view's end) still gets the slot and is no error of the send: the
 * message stays committed, lies beyond the view's end and is carried into
 * the next view like any other.  Under s->lock; the window and the ring
 * have room. */
static int publish_rdmc(struct derecho__smc *s, struct sview *v,
                        struct sshard *sh, size_t len)
{
    uint64_t index = 0, size = len;
    int rc =
        derecho__rdmc_send(v->rdmc, shard_index(v, sh), len, sh->nsent, &index);
    if (rc)
        slog(s, rc == -ESHUTDOWN ? LOG_INFO : LOG_WARNING,
             "view %lld: RDMC send of %zu bytes: %s (sent again in the "
             "next view)",
             (long long)v->id, len, rdmc_strerror(rc));
    uint8_t *slot = slot_of(v, sh, v->my_rank, sh->nsent);
    uint64_t hdr = SLOT_RDMC | RDMC_SLOT_LEN;
    memcpy(slot, &hdr, sizeof(hdr));
    memcpy(slot + SLOT_HEADER, &index, sizeof(index));
    memcpy(slot + SLOT_HEADER + 8, &size, sizeof(size));
    return publish_slot(s, v, sh, RDMC_SLOT_LEN);
}

/* The bytes of a slot's message: in the slot, or (SLOT_RDMC) in the
 * RDMC ring of sender j.  NULL for a null message or a bad RDMC slot. */
static const uint8_t *slot_data(struct derecho__smc *s, struct sview *v,
                                struct sshard *sh, uint32_t j,
                                const uint8_t *slot, size_t *len)
{
    uint64_t hdr;
    memcpy(&hdr, slot, sizeof(hdr));
    if (hdr & SLOT_NULL)
        return NULL;
    if (!(hdr & SLOT_RDMC)) {
        *len = (size_t)(uint32_t)hdr;
        if (*len > sh->payload)
            *len = sh->payload; /* never past the slot, whatever was written */
        return slot + SLOT_HEADER;
    }
    uint64_t index, size;
    memcpy(&index, slot + SLOT_HEADER, sizeof(index));
    memcpy(&size, slot + SLOT_HEADER + 8, sizeof(size));
    const uint8_t *data =
        derecho__rdmc_data(v->rdmc, shard_index(v, sh), j, index, size);
    if (!data)
        slog(s, LOG_ERR,
             "view %lld: subgroup %u: an RDMC slot of %llu bytes this view "
             "cannot hold",
             (long long)v->id, sh->subgroup, (unsigned long long)size);
    *len = (size_t)size;
    return data;
}

/* Sender j's messages [have, ns) announced in its row count as received
 * up to its first RDMC message not complete here (none completes in a
 * view whose groups this member could not make). */
static uint64_t rdmc_received(struct sview *v, struct sshard *sh, uint32_t j,
                              uint64_t have, uint64_t ns)
{
    if ((int)j == sh->me_sender)
        return ns;
    uint64_t done = derecho__rdmc_done(v->rdmc, shard_index(v, sh), j);
    for (uint64_t r = have; r < ns; r++) {
        const uint8_t *slot = slot_of(v, sh, sh->sender_ranks[j], r);
        uint64_t hdr, index;
        memcpy(&hdr, slot, sizeof(hdr));
        if (!(hdr & SLOT_RDMC))
            continue;
        memcpy(&index, slot + SLOT_HEADER, sizeof(index));
        if (index >= done)
            return r;
    }
    return ns;
}

/* The first member other than me that I suspect (SST_NO_RANK: none). */
static uint32_t first_suspected(struct sview *v)
{
    uint32_t n = sst_num_members(v->t);
    for (uint32_t r = 0; r < n; r++)
        if (r != v->my_rank && sst_suspects(v->t, v->my_rank, r))
            return r;
    return SST_NO_RANK;
}

/* Should an RDMC failure naming node_id (set-up or traffic) make me
 * suspect it?  Not when the view already ends because of another member
 * I suspect: then the failure is a consequence (a peer gave up its groups
 * or its set-up when it saw that suspicion: it never published, or tore
 * its side down), and the member named is one that waited like me, alive
 * as far as its heartbeat tells; the SST detects a real failure of it by
 * itself.  rank: node_id's rank (SST_NO_RANK: not a member). */
static bool rdmc_blames(struct sview *v, uint32_t rank, uint32_t node_id,
                        int reason)
{
    if (rank == SST_NO_RANK || rank == v->my_rank)
        return false;
    if (sst_suspects(v->t, v->my_rank, rank))
        return true; /* nothing new */
    uint32_t other = first_suspected(v);
    if (other == SST_NO_RANK)
        return true;
    slog(v->s, LOG_NOTICE,
         "view %lld: RDMC failure naming node %u (%s) not held against it: "
         "the view ends anyway (node %u suspected), its heartbeat is live",
         (long long)v->id, node_id, rdmc_strerror(reason),
         sst_node_id(v->t, other));
    return false;
}

static uint32_t rank_of_node(struct sview *v, uint32_t node_id)
{
    int r = sst_rank_of(v->t, node_id);
    return r < 0 ? SST_NO_RANK : (uint32_t)r;
}

/* A failure RDMC reported becomes an SST suspicion (delivery thread). */
static void rdmc_failed(void *ctx, uint32_t node_id, int reason)
{
    struct sview *v = ctx;
    uint32_t r = rank_of_node(v, node_id);
    if (rdmc_blames(v, r, node_id, reason))
        sst_suspect(v->t, r, reason);
}

static void wake_hook(void *ctx)
{
    wake(ctx);
}

/* ---- the delivery thread ----------------------------------------------------
 */

/* Sends the carried messages of sh's subgroup, in order, while the window
 * has room.  Under s->lock. */
static void resend_carried(struct derecho__smc *s, struct sview *v,
                           struct sshard *sh)
{
    struct carry **pp = &s->carry_head, *prev = NULL;
    while (*pp && !v->wedged && !sh->reserved) {
        struct carry *c = *pp;
        if (c->subgroup != sh->subgroup) {
            prev = c;
            pp = &c->next;
            continue;
        }
        if (sh->me_sender < 0 || c->len > sh->max_msg) {
            slog(s, LOG_WARNING,
                 "view %lld: a message carried over from the previous view "
                 "cannot be sent in subgroup %u (not a sender, or too large)",
                 (long long)v->id, sh->subgroup);
        } else if (!window_has_room(v, sh) ||
                   (c->len > sh->payload && !ring_has_room(v, sh))) {
            return;
        } else if (c->len > sh->payload) {
            memcpy(derecho__rdmc_send_buf(v->rdmc, shard_index(v, sh)), c->data,
                   c->len);
            publish_rdmc(s, v, sh, c->len);
        } else {
            uint8_t *slot = slot_of(v, sh, v->my_rank, sh->nsent);
            uint64_t hdr = c->len;
            memcpy(slot, &hdr, sizeof(hdr));
            memcpy(slot + SLOT_HEADER, c->data, c->len);
            publish_slot(s, v, sh, c->len);
        }
        *pp = c->next;
        if (s->carry_tail == c)
            s->carry_tail = prev;
        free(c);
    }
}

static void upcall(struct derecho__smc *s, struct sview *v, struct sshard *sh,
                   uint32_t j, uint64_t round, uint64_t pos)
{
    const uint8_t *slot = slot_of(v, sh, sh->sender_ranks[j], round);
    uint64_t hdr;
    memcpy(&hdr, slot, sizeof(hdr));
    struct sgcount *cnt =
        sh->subgroup < s->num_counts ? &s->counts[sh->subgroup] : NULL;
    if (hdr & SLOT_NULL) {
        if (cnt)
            atomic_fetch_add_explicit(&cnt->nulls_delivered, 1,
                                      memory_order_relaxed);
        return;
    }
    size_t len = 0;
    const uint8_t *data = slot_data(s, v, sh, j, slot, &len);
    if (!data)
        return;
    if (cnt)
        atomic_fetch_add_explicit(&cnt->delivered, 1, memory_order_relaxed);
    if (s->o->on_deliver) {
        atomic_store(&s->in_upcall, 1);
        s->o->on_deliver(s->o->deliver_ctx, sh->subgroup, sh->shard,
                         sh->sender_ids[j], ((uint64_t)v->id << 32) | pos, data,
                         len);
        atomic_store(&s->in_upcall, 0);
    }
}

/* Is every shard member's recv[j] past round?  With edge[] given (epoch
 * end: the ragged edge), is round below edge[j] (and here)?  A count
 * being written counts as not past (the next pass reads it whole). */
static bool received_by_all(struct sview *v, struct sshard *sh, uint32_t j,
                            uint64_t round, const uint64_t *edge)
{
    if (edge)
        return round < edge[j] && round < sh->recv[j];
    for (uint32_t i = 0; i < sh->n; i++) {
        if (sh->ranks[i] == v->my_rank
                ? sh->recv[j] <= round
                : !derecho__smc_count_above(recv_of(v, sh, sh->ranks[i], j),
                                            round))
            return false;
    }
    return true;
}

/* One pass over a shard.  Returns true when something moved. */
static bool shard_pass(struct derecho__smc *s, struct sview *v,
                       struct sshard *sh, const uint64_t *edge_of)
{
    if (sh->k == 0)
        return false;
    uint32_t me = v->my_rank;
    bool moved = false;
    /* Receipts (not at an epoch end: recv is final then).  nsent is read
     * whole or not at all (a torn nsent reading high would announce
     * slots that have not landed); the slots it announces were pushed
     * before it, in order, so they are here. */
    for (uint32_t j = 0; j < sh->k && !edge_of; j++) {
        uint64_t ns;
        if (!derecho__smc_receipt(nsent_of(v, sh, sh->sender_ranks[j]),
                                  sh->recv[j], sh->window, &ns))
            continue;
        ns = rdmc_received(v, sh, j, sh->recv[j], ns);
        if (ns == sh->recv[j])
            continue;
        sh->recv[j] = ns;
        sst_word_store(recv_of(v, sh, me, j), ns);
        moved = true;
        if (sh->mode == DERECHO_MODE_UNORDERED) {
            for (uint64_t r = sh->delivered[j]; r < ns; r++)
                if (!sh->skip || r >= sh->skip[j])
                    upcall(s, v, sh, j, r, r * sh->k + j);
            sh->delivered[j] = ns;
            sst_word_store(ndel_of(v, sh, me, j), ns);
        }
    }
    if (sh->mode == DERECHO_MODE_ORDERED) {
        for (int batch = 0; batch < 1024; batch++) {
            uint64_t pos = sh->next;
            uint32_t j = (uint32_t)(pos % sh->k);
            uint64_t round = pos / sh->k;
            if (!received_by_all(v, sh, j, round, edge_of))
                break;
            upcall(s, v, sh, j, round, pos);
            sh->next++;
            sh->delivered[j] = round + 1;
            sst_word_store(ndel_of(v, sh, me, j), round + 1);
            moved = true;
        }
    }
    /* A null message at once when another sender has a message in a round
     * where I have none: it would block delivery after it.  Then one push
     * of what this pass changed: new slots (mine, nulls included), then
     * the counters. */
    pthread_mutex_lock(&s->lock);
    if (!edge_of && sh->mode == DERECHO_MODE_UNORDERED && sh->me_sender >= 0)
        resend_carried(s, v, sh); /* no nulls in unordered mode */
    if (!edge_of && sh->mode == DERECHO_MODE_ORDERED && sh->me_sender >= 0) {
        uint64_t most = 0;
        for (uint32_t j = 0; j < sh->k; j++)
            if ((int)j != sh->me_sender && sh->recv[j] > most)
                most = sh->recv[j];
        resend_carried(s, v, sh);
        if (carry_pending(s, sh->subgroup))
            most = 0; /* they come first; nulls after */
        /* Not while a sender of mine waits for room: its message takes
         * the position as soon as there is room (all senders busy would
         * otherwise fill their windows with nulls whenever the delivery
         * thread sees room before the sending thread wakes). */
        bool waiting = sh->subgroup < s->num_counts &&
                       s->counts[sh->subgroup].window_waiters;
        while (!waiting && !v->wedged && !sh->reserved && sh->nsent < most &&
               window_has_room(v, sh)) {
            uint64_t hdr = SLOT_NULL;
            memcpy(slot_of(v, sh, v->my_rank, sh->nsent), &hdr, sizeof(hdr));
            publish_slot(s, v, sh, 0);
            if (sh->subgroup < s->num_counts)
                atomic_fetch_add_explicit(&s->counts[sh->subgroup].nulls_sent,
                                          1, memory_order_relaxed);
            moved = true;
        }
    }
    if (moved || sh->dirty) {
        int rc = push_counters(v, sh);
        if (rc)
            slog(s, LOG_ERR, "view %lld: push of counters failed: %s",
                 (long long)v->id, sst_strerror(rc));
    }
    pthread_mutex_unlock(&s->lock);
    return moved;
}

/* A checksum of the counter blocks of the rows a shard reads: changes
 * when a peer's push landed (senders wait for ndel, the delivery thread
 * for the rest).  It sums the raw words of the elements (values and check
 * words): a change detector only, never a count, so a block caught
 * mid-write is harmless here (it is one more change, and the end of the
 * write another, which wakes the thread to read the counts whole). */
static uint64_t shard_sum(struct sview *v, struct sshard *sh)
{
    uint64_t sum = 0;
    size_t words = (1 + 2 * (size_t)sh->K) * (SST_WORD_SIZE / 8);
    for (uint32_t i = 0; i < sh->n; i++) {
        const uint64_t *c =
            (const uint64_t *)(const void *)nsent_of(v, sh, sh->ranks[i]);
        for (size_t w = 0; w < words; w++)
            sum += __atomic_load_n(c + w, __ATOMIC_RELAXED) * (2 * w + 1);
    }
    return sum;
}

static bool view_pass(struct derecho__smc *s, struct sview *v)
{
    bool moved = false;
    if (atomic_load(&s->stopped))
        return false;
    derecho__rdmc_failures(v->rdmc, rdmc_failed, v);
    for (size_t i = 0; i < v->num_shards; i++) {
        struct sshard *sh = &v->shards[i];
        if (shard_pass(s, v, sh, NULL))
            moved = true;
        uint64_t sum = shard_sum(v, sh);
        if (sum != sh->seen_sum) {
            sh->seen_sum = sum;
            moved = true;
        }
    }
    if (moved) {
        /* Wake the waiting threads, unless all of them wait for room in
         * a window that still has none (a wake-up per pass would cost
         * each blocked sender a futex round and a context switch per
         * message received, for nothing). */
        pthread_mutex_lock(&s->lock);
        bool need = s->waiters > s->window_waiters;
        for (size_t i = 0; s->waiters && !need && i < v->num_shards; i++) {
            struct sshard *sh = &v->shards[i];
            need = sh->subgroup < s->num_counts &&
                   s->counts[sh->subgroup].window_waiters &&
                   (sh->me_sender < 0 || window_has_room(v, sh));
        }
        if (s->waiters && need)
            pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    return moved;
}

/* SST predicate: a row this process reads changed.  Cheap; on the SST's
 * polling thread, which it never blocks. */
static bool rows_changed(struct sst_table *t, void *ctx)
{
    (void)t;
    struct sview *v = ctx;
    uint64_t sum = 0;
    for (size_t i = 0; i < v->num_shards; i++)
        sum += shard_sum(v, &v->shards[i]);
    if (sum == v->pred_sum)
        return false;
    v->pred_sum = sum;
    return true;
}

/* The trigger runs on the polling thread: waking the delivery thread is a
 * write to an eventfd, which never blocks. */
static void wake_delivery(struct sst_table *t, void *ctx)
{
    (void)t;
    struct sview *v = ctx;
    wake(v->s);
}

static inline uint8_t *edge_word(struct sview *v, struct sshard *sh,
                                 uint32_t rank, uint32_t i)
{
    return row(v, rank) + sh->off_edge + (size_t)i * SST_WORD_SIZE;
}

static bool word_set(const uint8_t *elem)
{
    uint64_t x;
    return derecho__smc_count_load(elem, &x) == 0 && x != 0;
}

/* Pushes my edge block (values first, then ready: a later put lands
 * after) to the shard. */
static void push_edge(struct derecho__smc *s, struct sview *v,
                      struct sshard *sh)
{
    int rc = 0;
    if (sh->n > 1)
        rc = sst_put_to(v->t, sh->ranks, sh->n, sh->off_edge,
                        (size_t)sh->K * SST_WORD_SIZE);
    if (rc == 0 && sh->n > 1)
        rc = sst_put_to(v->t, sh->ranks, sh->n,
                        sh->off_edge + (size_t)sh->K * SST_WORD_SIZE,
                        SST_WORD_SIZE);
    if (rc)
        slog(s, LOG_ERR, "view %lld: push of the ragged edge failed: %s",
             (long long)v->id, sst_strerror(rc));
}

/* The ragged edge of a shard (edge[j]: how many of sender j's messages
 * every survivor delivers).  Any row of the shard that holds a published
 * edge is adopted (a shard leader may have published and died: some
 * survivors may have delivered up to it already).  Otherwise the shard
 * leader (its lowest rank I do not suspect) waits until every member it
 * does not suspect marked its final counters (wedged), takes for each
 * sender the least recv count among them, publishes it, and so does every
 * member that adopts it.  Delivery thread (blocking is fine here).  False
 * when stopped or after EDGE_TIMEOUT_MS without an edge. */
static bool ragged_edge(struct derecho__smc *s, struct sview *v,
                        struct sshard *sh, uint64_t *edge)
{
    uint32_t me = v->my_rank;
    int64_t deadline = derecho__now_ns() + (int64_t)EDGE_TIMEOUT_MS * 1000000;
    while (!atomic_load(&s->stopped)) {
        for (uint32_t i = 0; i < sh->n; i++) {
            uint32_t r = sh->ranks[i];
            if (!word_set(edge_word(v, sh, r, sh->K)))
                continue;
            bool whole = true;
            for (uint32_t j = 0; j < sh->k && whole; j++)
                whole = derecho__smc_count_load(edge_word(v, sh, r, j),
                                                &edge[j]) == 0;
            if (!whole)
                continue;
            if (r != me) {
                for (uint32_t j = 0; j < sh->k; j++)
                    sst_word_store(edge_word(v, sh, me, j), edge[j]);
                sst_word_store(edge_word(v, sh, me, sh->K), 1);
                push_edge(s, v, sh);
            }
            return true;
        }
        uint32_t lead = me;
        for (uint32_t i = 0; i < sh->n; i++)
            if (sh->ranks[i] == me || !sst_suspects(v->t, me, sh->ranks[i])) {
                lead = sh->ranks[i];
                break;
            }
        if (lead == me) {
            bool all = true;
            for (uint32_t j = 0; j < sh->k; j++)
                edge[j] = sh->recv[j];
            for (uint32_t i = 0; i < sh->n && all; i++) {
                uint32_t r = sh->ranks[i];
                if (r == me || sst_suspects(v->t, me, r))
                    continue;
                all = word_set(edge_word(v, sh, r, sh->K + 1));
                for (uint32_t j = 0; j < sh->k && all; j++) {
                    uint64_t x;
                    all =
                        derecho__smc_count_load(recv_of(v, sh, r, j), &x) == 0;
                    if (all && x < edge[j])
                        edge[j] = x;
                }
            }
            if (all) {
                for (uint32_t j = 0; j < sh->k; j++)
                    sst_word_store(edge_word(v, sh, me, j), edge[j]);
                sst_word_store(edge_word(v, sh, me, sh->K), 1);
                push_edge(s, v, sh);
                slog(s, LOG_INFO,
                     "view %lld: subgroup %u shard %u: ragged edge "
                     "published by me, the shard leader",
                     (long long)v->id, sh->subgroup, sh->shard);
                const char *hook = getenv("DERECHO_TEST_EDGE_HOOK");
                bool failure = false;
                for (uint32_t i = 0; i < sh->n; i++)
                    failure |= sh->ranks[i] != me &&
                               sst_suspects(v->t, me, sh->ranks[i]);
                if (hook && *hook && failure) {
                    /* Test only (docs/derecho.md): at a change with a
                     * failure, tell the test the edge is out, then give
                     * it 3 s to kill me before I deliver up to it. */
                    FILE *f = fopen(hook, "w");
                    if (f)
                        fclose(f);
                    struct timespec ts = {3, 0};
                    nanosleep(&ts, NULL);
                }
                return true;
            }
        }
        if (derecho__now_ns() > deadline)
            break;
        struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
        poll(&p, 1, 1);
    }
    return false;
}

/* Unordered mode at a view's end (after the ragged edge): every surviving
 * sender sends its messages from edge[j] on again first in the next view,
 * in order; of those, I delivered already the first
 * max(skip[j], recv[j]) - edge[j] (on receipt in this view, or in an
 * earlier one for what was carried into this view): remember to receive
 * them in the next view without delivering them again.  Senders that are
 * not in next are not resent (their messages beyond the edge reached only
 * some survivors).  Delivery thread. */
static void note_skips(struct derecho__smc *s, struct sshard *sh,
                       const uint64_t *edge, const struct derecho_view *next)
{
    for (uint32_t j = 0; j < sh->k; j++) {
        if (derecho_view_rank_of(next, sh->sender_ids[j]) < 0)
            continue;
        uint64_t covered = sh->recv[j];
        if (sh->skip && sh->skip[j] > covered)
            covered = sh->skip[j];
        if (covered <= edge[j])
            continue;
        struct skip *k = malloc(sizeof(*k));
        if (!k) {
            slog(s, LOG_ERR,
                 "out of memory: messages of node %u carried into the "
                 "next view may be delivered twice",
                 sh->sender_ids[j]);
            continue;
        }
        k->subgroup = sh->subgroup;
        k->sender_id = sh->sender_ids[j];
        k->count = covered - edge[j];
        pthread_mutex_lock(&s->lock);
        k->next = s->skips;
        s->skips = k;
        pthread_mutex_unlock(&s->lock);
    }
}

/* The end of a view's epoch: final counters, marked "wedged" in my row;
 * partition safety; then per shard the ragged edge (ragged_edge), and
 * delivery up to it; my messages beyond it are sent again first in the
 * next view. */
static void end_epoch(struct derecho__smc *s, struct sview *v,
                      const struct derecho_view *next)
{
    /* No RDMC message completes from here on: the counters below are
     * final for both paths. */
    derecho__rdmc_view_wedge(v->rdmc);
    if (atomic_load(&s->stopped))
        return; /* expelled or partitioned: nothing more of this view */
    for (size_t i = 0; i < v->num_shards; i++)
        shard_pass(s, v, &v->shards[i], NULL);
    for (size_t i = 0; i < v->num_shards; i++) {
        struct sshard *sh = &v->shards[i];
        pthread_mutex_lock(&s->lock);
        push_counters(v, sh);
        sst_word_store(edge_word(v, sh, v->my_rank, sh->K + 1), 1);
        if (sh->n > 1)
            sst_put_to(v->t, sh->ranks, sh->n,
                       sh->off_edge + ((size_t)sh->K + 1) * SST_WORD_SIZE,
                       SST_WORD_SIZE);
        pthread_mutex_unlock(&s->lock);
    }
    if (!next)
        return;
    /* Partition safety, before any delivery of the edge: the members of
     * this view missing from next that failed (suspected here; those that
     * left gracefully are not) must stay fewer than half of the view's
     * members that did not leave gracefully. */
    if (s->partition_safety) {
        uint32_t n = sst_num_members(v->t), me = sst_my_rank(v->t);
        uint32_t failed = 0, left = 0;
        for (uint32_t r = 0; r < n; r++) {
            if (r == me ||
                derecho_view_rank_of(next, sst_node_id(v->t, r)) >= 0)
                continue;
            if (sst_suspects(v->t, me, r))
                failed++;
            else
                left++;
        }
        if (2 * failed >= n - left) {
            slog(s, LOG_ERR,
                 "view %lld: %u of %u members failed: no majority, "
                 "partitioned",
                 (long long)v->id, failed, n - left);
            partitioned(s, v);
            return;
        }
    }
    for (size_t i = 0; i < v->num_shards; i++) {
        struct sshard *sh = &v->shards[i];
        if (sh->k == 0)
            continue;
        uint64_t *edge = calloc(sh->k, sizeof(*edge));
        if (!edge)
            continue;
        if (!ragged_edge(s, v, sh, edge)) {
            if (!atomic_load(&s->stopped)) {
                slog(s, LOG_ERR,
                     "view %lld: subgroup %u shard %u: no ragged edge "
                     "within %d ms: partitioned",
                     (long long)v->id, sh->subgroup, sh->shard,
                     EDGE_TIMEOUT_MS);
                partitioned(s, v);
            }
            free(edge);
            return;
        }
        for (uint32_t j = 0; j < sh->k; j++)
            if (edge[j] > sh->recv[j])
                slog(s, LOG_ERR,
                     "view %lld: subgroup %u shard %u: the ragged edge "
                     "is past what I received of sender %u",
                     (long long)v->id, sh->subgroup, sh->shard,
                     sh->sender_ids[j]);
        while (shard_pass(s, v, sh, edge)) {
        }
        uint64_t beyond = 0;
        for (uint32_t j = 0; j < sh->k; j++)
            beyond +=
                sh->recv[j] -
                (sh->mode == DERECHO_MODE_ORDERED ? sh->delivered[j] : edge[j]);
        if (sh->mode == DERECHO_MODE_UNORDERED)
            note_skips(s, sh, edge, next);
        if (beyond)
            slog(s, LOG_INFO,
                 "view %lld: subgroup %u shard %u: %llu message(s) "
                 "beyond the view's end (their senders send them again)",
                 (long long)v->id, sh->subgroup, sh->shard,
                 (unsigned long long)beyond);
        /* Mine beyond the end: not every survivor delivered them; send
         * them again first in the next view, in order (before any still
         * carried from an earlier view: they come after these in my
         * stream).  Ordered: from what I delivered (the round robin may
         * stop short of my edge); unordered: from my edge. */
        struct carry *head = NULL, *tail = NULL;
        uint64_t from = sh->nsent;
        if (sh->me_sender >= 0)
            from = sh->mode == DERECHO_MODE_ORDERED
                       ? sh->delivered[(uint32_t)sh->me_sender]
                       : edge[(uint32_t)sh->me_sender];
        for (uint64_t r = from; r < sh->nsent; r++) {
            size_t len = 0;
            const uint8_t *data =
                slot_data(s, v, sh, (uint32_t)sh->me_sender,
                          slot_of(v, sh, v->my_rank, r), &len);
            if (!data)
                continue;
            struct carry *c = malloc(sizeof(*c) + len + 1);
            if (!c) {
                slog(s, LOG_ERR,
                     "view %lld: out of memory: a message "
                     "beyond the view's end is lost",
                     (long long)v->id);
                continue;
            }
            c->next = NULL;
            c->subgroup = sh->subgroup;
            c->len = len;
            memcpy(c->data, data, len);
            if (tail)
                tail->next = c;
            else
                head = c;
            tail = c;
        }
        free(edge);
        if (head) {
            pthread_mutex_lock(&s->lock);
            struct carry **pp = &s->carry_head;
            while (*pp && (*pp)->subgroup != sh->subgroup)
                pp = &(*pp)->next;
            tail->next = *pp;
            *pp = head;
            if (!tail->next)
                s->carry_tail = tail;
            pthread_mutex_unlock(&s->lock);
        }
    }
    /* Every live member delivered its edges before anyone closes the
     * table: a member that lingers in an old table after the others
     * closed theirs would suspect them there, and a suspicion fails the
     * pooled connection the next view's table uses.  Only a bound: a
     * timeout is logged, nothing is decided on it. */
    int rc = sst_sync(v->t, EDGE_TIMEOUT_MS);
    if (rc)
        slog(s, LOG_WARNING, "view %lld: end-of-view sync: %s",
             (long long)v->id, sst_strerror(rc));
}

static void *delivery_main(void *arg)
{
    struct derecho__smc *s = arg;
    pthread_setname_np(pthread_self(), "derecho-dlv");
    int64_t spin_until = 0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        bool closing = s->closing;
        struct sview *v = s->cur, *retire = s->retire;
        const struct derecho_view *next = s->retire_next;
        pthread_mutex_unlock(&s->lock);
        if (retire) {
            end_epoch(s, retire, next);
            pthread_mutex_lock(&s->lock);
            s->retire = NULL;
            s->retire_done = true;
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        if (closing)
            break;
        if (v && view_pass(s, v)) {
            spin_until = derecho__now_ns() + SPIN_NS;
            continue;
        }
        if (derecho__now_ns() < spin_until) {
            sched_yield();
            continue;
        }
        atomic_store(&s->sleeping, 1);
        if (v && view_pass(s, v)) {
            atomic_store(&s->sleeping, 0);
            spin_until = derecho__now_ns() + SPIN_NS;
            continue;
        }
        pthread_mutex_lock(&s->lock);
        bool work = s->retire || s->closing || s->cur != v;
        pthread_mutex_unlock(&s->lock);
        if (!work) {
            struct pollfd p = {.fd = s->wake_fd, .events = POLLIN};
            poll(&p, 1, IDLE_POLL_MS);
        }
        atomic_store(&s->sleeping, 0);
        uint64_t drain;
        if (read(s->wake_fd, &drain, sizeof(drain)) < 0) {
            /* nothing to drain */
        }
    }
    return NULL;
}

/* ---- set-up ---------------------------------------------------------------
 */

static const struct profile *find_profile(const struct derecho__smc *s,
                                          const char *name)
{
    for (size_t i = 0; i < s->num_profiles; i++)
        if (strcmp(s->profiles[i].name, name) == 0)
            return &s->profiles[i];
    return &s->profiles[0]; /* DEFAULT */
}

static int read_profile(struct derecho__smc *s, const struct conf *c,
                        const char *name, struct derecho_error *err)
{
    for (size_t i = 0; i < s->num_profiles; i++)
        if (strcmp(s->profiles[i].name, name) == 0)
            return 0;
    if (s->num_profiles == MAX_PROFILES)
        return derecho__fail(err, -ENOSPC, "group: more than %d profiles",
                             MAX_PROFILES);
    char section[DERECHO_MAX_NAME + 16];
    snprintf(section, sizeof(section), "SUBGROUP/%s", name);
    uint64_t w = 0, p = 0;
    int rc = conf_get_u64(c, section, "window_size", &w);
    if (rc == 0)
        rc = conf_get_size(c, section, "max_smc_payload_size", &p);
    if (rc)
        return derecho__fail(err, rc,
                             "group: [%s] window_size or "
                             "max_smc_payload_size: %s",
                             section, derecho_strerror(rc));
    if (w == 0 || w > 65536 || p == 0 || p > (1u << 20))
        return derecho__fail(err, -ERANGE,
                             "group: [%s] window_size or "
                             "max_smc_payload_size out of range",
                             section);
    uint64_t mp = 0, bs = 0;
    int alg_index = 0;
    const char *alg_name = NULL;
    enum rdmc_algorithm alg = RDMC_BINOMIAL_SEND;
    rc = conf_get_size(c, section, "max_payload_size", &mp);
    if (rc == 0)
        rc = conf_get_size(c, section, "block_size", &bs);
    if (rc == 0)
        rc = conf_get_enum(c, section, "rdmc_send_algorithm", &alg_index,
                           &alg_name);
    if (rc == 0)
        rc = rdmc_algorithm_from_name(alg_name, &alg);
    if (rc)
        return derecho__fail(err, rc,
                             "group: [%s] max_payload_size, block_size or "
                             "rdmc_send_algorithm: %s",
                             section, derecho_strerror(rc));
    if (mp > SIZE_MAX / RDMC_RING_MAX || bs == 0)
        return derecho__fail(err, -ERANGE,
                             "group: [%s] max_payload_size or block_size "
                             "out of range",
                             section);
    struct profile *pr = &s->profiles[s->num_profiles++];
    derecho__copy_str(pr->name, sizeof(pr->name), name);
    pr->window = (uint32_t)w;
    pr->payload = (size_t)p;
    pr->max_payload = (size_t)mp;
    pr->block_size = (size_t)bs;
    pr->algorithm = (int)alg;
    return 0;
}

static void fab_log(void *ctx, int level, const char *module, const char *msg)
{
    const struct derecho__smc *s = ctx;
    if (level > s->o->log_level)
        return;
    if (s->o->log)
        s->o->log(s->o->log_ctx, level, module, msg);
    else
        fprintf(stderr, "%s: %s\n", module, msg);
}

int derecho__smc_create(const struct conf *c,
                        const struct derecho_layout_spec *spec,
                        const struct derecho_member *me, uint64_t fingerprint,
                        const struct derecho_group_options *o,
                        struct derecho__smc **out, struct derecho_error *err)
{
    *out = NULL;
    struct derecho__smc *s = calloc(1, sizeof(*s));
    if (!s)
        return derecho__fail(err, -ENOMEM, "group: out of memory");
    s->o = o;
    s->my_id = me->node_id;
    s->wake_fd = -1;
    s->ended_id = -1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->num_counts = derecho_layout_spec_num_subgroups(spec);
    s->counts = calloc(s->num_counts + 1, sizeof(*s->counts));
    if (!s->counts) {
        free(s);
        return derecho__fail(err, -ENOMEM, "group: out of memory");
    }
    int rc = read_profile(s, c, "DEFAULT", err);
    for (uint32_t i = 0; rc == 0 && i < spec->num_subgroups; i++)
        for (uint32_t k = 0; rc == 0 && k < spec->subgroups[i].num_shards; k++)
            rc = read_profile(s, c, spec->subgroups[i].shards[k].profile, err);
    uint64_t hb = 20;
    if (rc == 0 &&
        conf_get_u64_range(c, "DERECHO", "heartbeat_ms", 1, 60000, &hb) != 0)
        hb = 20;
    s->heartbeat_ms = (int)hb;
    /* The suspicion timeout (libsst's suspect_timeout_ms): libconf checked
     * it is at least 3 heartbeats when the configuration was loaded. */
    uint64_t st = 100;
    if (rc == 0 && conf_get_u64_range(c, "DERECHO", "sst_poll_cq_timeout_ms", 1,
                                      3600000, &st) != 0)
        st = 100;
    if (rc == 0 && st <= hb)
        rc = derecho__fail(err, -EINVAL,
                           "[DERECHO] sst_poll_cq_timeout_ms (%llu) must "
                           "exceed heartbeat_ms (%llu)",
                           (unsigned long long)st, (unsigned long long)hb);
    s->suspect_timeout_ms = (int)st;
    uint64_t rto = 10000;
    if (rc == 0 && conf_get_u64_range(c, "DERECHO", "rdmc_timeout_ms", 1,
                                      86400000, &rto) != 0)
        rto = 10000;
    s->rdmc_timeout_ms = (int)rto;
    bool no_safety = false;
    if (rc == 0 && conf_get_bool(c, "DERECHO", "disable_partitioning_safety",
                                 &no_safety) != 0)
        no_safety = false;
    s->partition_safety = !no_safety;
    const char *provider = "tcp", *domain = NULL;
    uint64_t cq_data = 0; /* libconf allows 0, 4 or 8 */
    if (rc == 0) {
        if (conf_get_string(c, "RDMA", "provider", &provider) != 0)
            provider = "tcp";
        if (conf_get_string(c, "RDMA", "domain", &domain) != 0)
            domain = NULL;
        if (conf_get_u64_range(c, "RDMA", "cq_data_limit", 0, 8, &cq_data) != 0)
            cq_data = 0;
    }
    if (rc == 0) {
        struct fab_options fo;
        fab_options_init(&fo);
        fo.provider = provider;
        fo.domain = domain && *domain ? domain : NULL;
        fo.cq_data_limit = (size_t)cq_data;
        fo.node_id = me->node_id;
        fo.listen_addr = me->ip;
        fo.port = me->sst_port;
        fo.fingerprint = fingerprint;
        fo.log = fab_log;
        fo.log_ctx = s;
        fo.log_level = o->log_level;
        struct fab_error ferr;
        rc = fab_pool_create(&fo, &s->pool, &ferr);
        if (rc)
            derecho__fail(err, rc == -EADDRINUSE ? -EADDRINUSE : rc,
                          "group: fab pool on %s:%u (sst_port): %s", me->ip,
                          me->sst_port, ferr.msg);
        struct fab_pool_info pi;
        fab_pool_get_info(s->pool, &pi);
        if (rc == 0)
            slog(s, LOG_INFO,
                 "pool on %s:%u (sst_port): provider %s, %zu bytes of "
                 "completion data",
                 me->ip, me->sst_port, pi.provider, pi.cq_data_size);
    }
    if (rc == 0) {
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->wake_fd < 0)
            rc = derecho__fail(err, -errno, "group: eventfd");
    }
    if (rc == 0) {
        rc = -pthread_create(&s->thread, NULL, delivery_main, s);
        if (rc)
            derecho__fail(err, rc, "group: cannot start the delivery thread");
        else
            s->thread_started = true;
    }
    if (rc) {
        derecho__smc_destroy(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void free_view(struct sview *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->num_shards; i++) {
        free(v->shards[i].ranks);
        free(v->shards[i].sender_ranks);
        free(v->shards[i].sender_ids);
        free(v->shards[i].delivered);
        free(v->shards[i].recv);
        free(v->shards[i].skip);
    }
    free(v->shards);
    free(v->reason);
    free(v->mine);
    free(v->receive_only);
    free(v);
}

/* Stopped as partitioned at the end of view v: v's table goes quiet
 * first (sst_quiet: as my connections break, my row must not make the
 * members still reading it suspect healthy ones). */
static void partitioned(struct derecho__smc *s, struct sview *v)
{
    sst_quiet(v->t);
    derecho__smc_stop(s, DERECHO_STOPPED_PARTITIONED);
    if (s->event)
        s->event(s->event_ctx, DERECHO__SMC_PARTITIONED, 0);
}

/* A member of the view is suspected (polling thread): the view is wedged
 * (no new sends; deliveries go on) and the group is told (the leader
 * proposes the next view without it). */
static void on_suspect(void *ctx, struct sst_table *t, uint32_t rank,
                       uint32_t node_id, int reason)
{
    (void)t;
    struct sview *v = ctx;
    struct derecho__smc *s = v->s;
    atomic_store(&v->reason[rank], reason ? reason : -EHOSTDOWN);
    slog(s, LOG_WARNING, "view %lld: node %u suspected: %s", (long long)v->id,
         node_id, sst_strerror(reason));
    atomic_store(&v->suspicion, true);
    if (s->event)
        s->event(s->event_ctx, DERECHO__SMC_SUSPECT, node_id);
    /* Partition safety as soon as suspicions reach half of the view:
     * stop before any delivery of its edge. */
    uint32_t n = sst_num_members(t), me = sst_my_rank(t), failed = 0;
    bool suspects_me = false;
    for (uint32_t r = 0; r < n; r++) {
        failed += r != me && sst_suspects(t, me, r);
        suspects_me |= r != me && sst_suspects(t, r, me);
    }
    /* A member that others suspect was removed: resumed after a stop, it
     * finds its connections failed too, and the rows saying so may land
     * just after; on_expelled tells that, not "partitioned".  So the
     * group decides (after a short grace, PARTITION_GRACE_MS in group.c);
     * meanwhile nothing more becomes stable here (the suspected rows are
     * frozen) and the leader commits nothing without a majority. */
    if (s->partition_safety && 2 * failed >= n && !suspects_me &&
        !atomic_load(&v->ending)) {
        slog(s, LOG_WARNING,
             "view %lld: %u of %u members suspected: no majority",
             (long long)v->id, failed, n);
        if (s->event)
            s->event(s->event_ctx, DERECHO__SMC_PARTITIONED, 0);
    }
}

/* Another member's row says it suspects me: the others removed me. */
static void on_expelled(void *ctx, struct sst_table *t, uint32_t rank,
                        uint32_t node_id, int reason)
{
    (void)rank;
    (void)reason;
    struct sview *v = ctx;
    struct derecho__smc *s = v->s;
    if (atomic_load(&v->ending)) {
        slog(s, LOG_INFO,
             "view %lld: node %u suspects me while the view ends: "
             "ignored (I am in the committed next view)",
             (long long)v->id, node_id);
        return;
    }
    /* My own longest stall in this view tells a starved or stopped
     * process (a stall near the suspicion timeout: the others were right)
     * from one suspected while it ran on time. */
    slog(s, LOG_WARNING,
         "view %lld: node %u suspects me: expelled (my longest stall in "
         "this view: %llu ms; suspicion timeout %d ms)",
         (long long)v->id, node_id, (unsigned long long)sst_self_stall_ms(t),
         s->suspect_timeout_ms);
    derecho__smc_stop(s, DERECHO_STOPPED_EXPELLED);
    if (s->event)
        s->event(s->event_ctx, DERECHO__SMC_EXPELLED, node_id);
}

/* Suspicions spread: a member that another live row suspects is suspected
 * here too (the union of the rows' suspicion columns), so that every
 * member, the leader first, acts on a failure any member saw.  Not from
 * a row whose owner another live row suspects: it is on its way out, and
 * as it stops its broken connections make it suspect everyone (libsst no
 * longer publishes those, this is the second guard).  Unless every row
 * with news is such a row (mutual suspicions over a broken link): then
 * the lowest of them is followed, so that a view change still comes.
 * Spreading is only a speed-up: each member detects a real failure
 * itself (heartbeat, broken connection).  Polling thread; n^2 or n^3 byte
 * reads over small views. */
static bool has_news(struct sst_table *t, uint32_t r)
{
    uint32_t n = (uint32_t)sst_num_members(t), me = sst_my_rank(t);
    for (uint32_t x = 0; x < n; x++)
        if (x != me && x != r && sst_suspects(t, r, x) &&
            !sst_suspects(t, me, x))
            return true;
    return false;
}

static bool leaving(struct sst_table *t, uint32_t r)
{
    uint32_t n = (uint32_t)sst_num_members(t), me = sst_my_rank(t);
    for (uint32_t y = 0; y < n; y++)
        if (y != me && y != r && !sst_suspects(t, me, y) &&
            sst_suspects(t, y, r))
            return true;
    return false;
}

static bool other_suspects(struct sst_table *t, void *ctx)
{
    (void)ctx;
    uint32_t n = (uint32_t)sst_num_members(t), me = sst_my_rank(t);
    for (uint32_t r = 0; r < n; r++)
        if (r != me && !sst_suspects(t, me, r) && has_news(t, r))
            return true;
    return false;
}

static void adopt_row(struct sst_table *t, uint32_t r)
{
    uint32_t n = (uint32_t)sst_num_members(t), me = sst_my_rank(t);
    for (uint32_t x = 0; x < n; x++)
        if (x != me && x != r && sst_suspects(t, r, x) &&
            !sst_suspects(t, me, x))
            sst_suspect(t, x, -EHOSTDOWN);
}

static void adopt_suspicions(struct sst_table *t, void *ctx)
{
    (void)ctx;
    uint32_t n = (uint32_t)sst_num_members(t), me = sst_my_rank(t);
    uint32_t first = n;
    bool adopted = false;
    /* Decide over one snapshot of who is live: adopting changes it. */
    bool follow[DERECHO_MAX_MEMBERS];
    uint32_t m = n < DERECHO_MAX_MEMBERS ? n : DERECHO_MAX_MEMBERS;
    for (uint32_t r = 0; r < m; r++) {
        follow[r] = false;
        if (r == me || sst_suspects(t, me, r) || !has_news(t, r))
            continue;
        if (first == n)
            first = r;
        follow[r] = !leaving(t, r);
    }
    for (uint32_t r = 0; r < m; r++)
        if (follow[r] && !sst_suspects(t, me, r)) {
            adopt_row(t, r);
            adopted = true;
        }
    /* Only rows on their way out have news: follow the lowest. */
    if (!adopted && first < n && !sst_suspects(t, me, first))
        adopt_row(t, first);
    /* Views wider than the snapshot: the old union. */
    for (uint32_t r = m; r < n; r++)
        if (r != me && !sst_suspects(t, me, r))
            adopt_row(t, r);
}

static void sst_log(void *ctx, int level, const char *module, const char *msg)
{
    fab_log(ctx, level, module, msg);
}

struct sst_table *derecho__smc_view_table(struct derecho__smc_view *view)
{
    return ((struct sview *)view)->t;
}

/* librdmc's create_wait during the view's RDMC set-up (view-change
 * thread, while the table's polling thread runs): a member the SST
 * suspects (my own detection, or adopted from a row) means the set-up
 * cannot complete everywhere (that member, or a peer that gave up because
 * of it, never publishes), and the view changes anyway: give up at once
 * and blame that member, not the one I wait for (a live member waiting on
 * the failed one like me; waiting to the deadline would get it
 * suspected).  Likewise once a row suspects me (I was removed). */
static int rdmc_setup_wait(void *ctx, uint32_t waiting_for, uint32_t *blame)
{
    (void)waiting_for;
    struct sview *v = ctx;
    uint32_t r = first_suspected(v);
    if (r != SST_NO_RANK) {
        *blame = sst_node_id(v->t, r);
        return -EHOSTDOWN;
    }
    uint32_t n = sst_num_members(v->t);
    for (uint32_t x = 0; x < n; x++)
        if (x != v->my_rank && sst_suspects(v->t, x, v->my_rank)) {
            *blame = UINT32_MAX;
            return -ESHUTDOWN;
        }
    return 0;
}

/* The view's RDMC groups for my shards whose profile's max_payload_size
 * is above max_smc_payload_size (collective, after the table).  A member
 * that failed since the view was proposed is suspected (the view then
 * changes; large sends wait for the next one) instead of failing it. */
static int start_rdmc(struct derecho__smc *s, struct sview *v,
                      const struct derecho_view *view)
{
    if (v->num_shards == 0)
        return 0;
    struct derecho__rdmc_spec *sp = calloc(v->num_shards, sizeof(*sp));
    if (!sp)
        return -ENOMEM;
    const struct derecho_layout *l = derecho_view_layout(view);
    for (size_t i = 0; i < v->num_shards; i++) {
        struct sshard *sh = &v->shards[i];
        struct derecho_shard_info info;
        sp[i].subgroup = sh->subgroup;
        sp[i].shard = sh->shard;
        if (derecho_layout_shard(l, sh->subgroup, sh->shard, &info) != 0)
            continue;
        const struct profile *pr = find_profile(s, info.profile);
        if (pr->max_payload <= sh->payload || sh->k == 0)
            continue;
        sh->max_msg = pr->max_payload;
        sp[i].max_payload = pr->max_payload;
        sp[i].ring = sh->window < RDMC_RING_MAX ? sh->window : RDMC_RING_MAX;
        sp[i].block_size = pr->block_size;
        sp[i].algorithm = pr->algorithm;
        sp[i].create_timeout_ms = SETUP_TIMEOUT_MS;
        sp[i].timeout_ms = s->rdmc_timeout_ms;
    }
    struct derecho__rdmc_hooks hooks = {
        wake_hook, s, fab_log, s, s->o->log_level, rdmc_setup_wait, v};
    uint32_t failed = UINT32_MAX;
    int rc = derecho__rdmc_view_create(s->pool, view, sp, v->num_shards, &hooks,
                                       &v->rdmc, &failed);
    free(sp);
    if (rc && failed != UINT32_MAX && failed != s->my_id) {
        /* The view goes on without RDMC groups here (large messages wait
         * for the next view); the member that failed is suspected, never
         * a live one that waited like me (rdmc_blames). */
        atomic_store(&v->suspicion, true);
        uint32_t r = rank_of_node(v, failed);
        if (rdmc_blames(v, r, failed, rc))
            sst_suspect(v->t, r, rc);
        rc = 0;
    } else if (rc == -ESHUTDOWN && failed == UINT32_MAX) {
        rc = 0; /* rdmc_setup_wait: I was removed; on_expelled stops me */
    }
    return rc;
}

int derecho__smc_view_start(struct derecho__smc *s,
                            const struct derecho_view *view,
                            const uint32_t *failed, size_t num_failed,
                            struct derecho__smc_view **out)
{
    *out = NULL;
    const struct derecho_layout *l = derecho_view_layout(view);
    uint32_t nsub = derecho_layout_num_subgroups(l);
    if (nsub * 3 + 3 > SST_MAX_FIELDS) {
        slog(s, LOG_ERR,
             "view %lld: %u subgroups: over what one SST row "
             "holds; no multicast in this view",
             (long long)derecho_view_id(view), nsub);
        return -ERANGE;
    }
    struct sview *v = calloc(1, sizeof(*v));
    size_t n = derecho_view_num_members(view);
    struct sst_member *members = calloc(n, sizeof(*members));
    struct sst_field *fields = calloc(nsub * 3 + 3, sizeof(*fields));
    char(*names)[32] = calloc(nsub * 3 + 3, sizeof(*names));
    size_t *offsets = calloc(nsub * 3 + 3, sizeof(*offsets));
    uint32_t *failed_ranks = calloc(num_failed + 1, sizeof(*failed_ranks));
    int rc = -ENOMEM;
    if (!v || !members || !fields || !names || !offsets || !failed_ranks)
        goto out;
    v->s = s;
    v->id = derecho_view_id(view);
    v->my_rank = (uint32_t)derecho_view_my_rank(view);
    v->num_subgroups = nsub;
    v->mine = calloc(nsub + 1, sizeof(*v->mine));
    v->receive_only = calloc(nsub + 1, sizeof(*v->receive_only));
    v->shards = calloc(nsub + 1, sizeof(*v->shards));
    v->reason = calloc(n + 1, sizeof(*v->reason));
    if (!v->mine || !v->receive_only || !v->shards || !v->reason)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct derecho_member *m = derecho_view_member(view, i);
        members[i] = (struct sst_member){m->node_id, m->ip, m->sst_port};
    }
    /* The schema: the membership fields (gms.c), then three fields per
     * subgroup, sized by the largest window, payload and sender count of
     * its shards. */
    size_t nf = derecho__gms_fields(fields, names);
    uint32_t *Ks = calloc(nsub + 1, sizeof(*Ks));
    uint32_t *Ws = calloc(nsub + 1, sizeof(*Ws));
    size_t *Ss = calloc(nsub + 1, sizeof(*Ss)), *Ps = calloc(nsub + 1, 8);
    if (!Ks || !Ws || !Ss || !Ps) {
        free(Ks);
        free(Ws);
        free(Ss);
        free(Ps);
        goto out;
    }
    for (uint32_t sg = 0; sg < nsub; sg++) {
        struct derecho_subgroup_info si;
        derecho_layout_subgroup(l, sg, &si);
        uint32_t K = 1, W = 1;
        size_t P = RDMC_SLOT_LEN; /* a slot holds at least an RDMC slot */
        for (uint32_t k = 0; k < si.num_shards; k++) {
            struct derecho_shard_info sh;
            derecho_layout_shard(l, sg, k, &sh);
            const struct profile *pr = find_profile(s, sh.profile);
            if (sh.num_senders > K)
                K = sh.num_senders;
            if (pr->window > W)
                W = pr->window;
            if (pr->payload > P)
                P = pr->payload;
        }
        size_t slot = SLOT_HEADER + ((P + 7) & ~(size_t)7);
        Ks[sg] = K;
        Ws[sg] = W;
        Ss[sg] = slot;
        Ps[sg] = P;
        snprintf(names[nf], 32, "s%u.slots", sg);
        fields[nf] = (struct sst_field){names[nf], 8, W * slot / 8};
        nf++;
        snprintf(names[nf], 32, "s%u.cnt", sg);
        fields[nf] =
            (struct sst_field){names[nf], SST_WORD_SIZE, 1 + 2 * (size_t)K};
        nf++;
        snprintf(names[nf], 32, "s%u.edge", sg);
        fields[nf] =
            (struct sst_field){names[nf], SST_WORD_SIZE, 2 + (size_t)K};
        nf++;
    }
    snprintf(names[nf], 32, "pad");
    fields[nf] = (struct sst_field){names[nf], 8, 1};
    nf++;
    size_t row_size = 0;
    rc = sst_schema_layout(fields, nf, offsets, &row_size);
    if (rc) {
        slog(s, LOG_ERR,
             "view %lld: the SMC rings do not fit an SST row (%s): "
             "lower window_size x max_smc_payload_size",
             (long long)v->id, sst_strerror(rc));
        free(Ks);
        free(Ws);
        free(Ss);
        free(Ps);
        goto out;
    }
    /* My shards. */
    for (uint32_t sg = 0; sg < nsub; sg++) {
        struct derecho_subgroup_info si;
        derecho_layout_subgroup(l, sg, &si);
        int k = derecho_layout_shard_of(l, sg, s->my_id);
        v->mine[sg] = si.provisioned ? -1 : -2;
        if (k < 0)
            continue;
        struct derecho_shard_info info;
        derecho_layout_shard(l, sg, (uint32_t)k, &info);
        struct sshard *sh = &v->shards[v->num_shards];
        sh->subgroup = sg;
        sh->shard = (uint32_t)k;
        sh->mode = info.mode;
        sh->n = (uint32_t)info.num_members;
        sh->K = Ks[sg];
        sh->window = Ws[sg];
        sh->slot_size = Ss[sg];
        sh->payload = find_profile(s, info.profile)->payload;
        if (sh->payload > Ps[sg])
            sh->payload = Ps[sg];
        sh->max_msg = sh->payload;
        sh->off_slots = offsets[2 + 3 * sg];
        sh->off_nsent = offsets[2 + 3 * sg + 1];
        sh->off_edge = offsets[2 + 3 * sg + 2];
        sh->off_cnt = sh->off_nsent + SST_WORD_SIZE;
        sh->ranks = calloc(sh->n, sizeof(*sh->ranks));
        sh->sender_ranks = calloc(sh->n, sizeof(*sh->sender_ranks));
        sh->sender_ids = calloc(sh->n, sizeof(*sh->sender_ids));
        sh->delivered = calloc(sh->n, sizeof(*sh->delivered));
        sh->recv = calloc(sh->n, sizeof(*sh->recv));
        if (sh->mode == DERECHO_MODE_UNORDERED)
            sh->skip = calloc(sh->n, sizeof(*sh->skip));
        v->num_shards++;
        if (!sh->ranks || !sh->sender_ranks || !sh->sender_ids ||
            !sh->delivered || !sh->recv ||
            (sh->mode == DERECHO_MODE_UNORDERED && !sh->skip)) {
            rc = -ENOMEM;
            break;
        }
        sh->me_sender = -1;
        for (uint32_t m = 0; m < sh->n; m++) {
            uint32_t rank =
                (uint32_t)derecho_view_rank_of(view, info.members[m]);
            sh->ranks[m] = rank;
            if (info.is_sender[m]) {
                if (info.members[m] == s->my_id)
                    sh->me_sender = (int)sh->k;
                sh->sender_ranks[sh->k] = rank;
                sh->sender_ids[sh->k] = info.members[m];
                sh->k++;
            }
        }
        v->mine[sg] = (int32_t)(v->num_shards - 1);
        v->receive_only[sg] = sh->me_sender < 0;
    }
    free(Ks);
    free(Ws);
    free(Ss);
    free(Ps);
    if (rc)
        goto out;
    struct sst_options so;
    sst_options_init(&so);
    so.table_id = (uint64_t)v->id;
    so.heartbeat_ms = s->heartbeat_ms;
    so.suspect_timeout_ms = s->suspect_timeout_ms;
    so.setup_timeout_ms = SETUP_TIMEOUT_MS;
    /* A member that died since the leader proposed the view (its
     * connection refused or reset) is suspected in the new table instead
     * of failing it; the leader removes it in the next view. */
    so.tolerate_failures = true;
    /* A member that never reaches the first barrier (its own create
     * failed, or it is stopped) is suspected too: the others go on and
     * the next view removes it. */
    so.tolerate_silent = true;
    /* Members the previous view knew failed but had not removed yet stay
     * suspected (the leader removes them in the next change). */
    size_t nfr = 0;
    for (size_t i = 0; i < num_failed; i++) {
        int r = derecho_view_rank_of(view, failed[i]);
        if (r >= 0 && (uint32_t)r != v->my_rank)
            failed_ranks[nfr++] = (uint32_t)r;
    }
    so.failed_ranks = nfr ? failed_ranks : NULL;
    so.n_failed_ranks = nfr;
    so.on_suspect = on_suspect;
    so.on_expelled = on_expelled;
    so.suspect_ctx = v;
    so.thread_name = "derecho-sst";
    so.log = sst_log;
    so.log_ctx = s;
    so.log_level = s->o->log_level;
    struct sst_error serr;
    rc = sst_create(s->pool, members, n, v->my_rank, fields, nf, &so, &v->t,
                    &serr);
    if (rc) {
        slog(s, LOG_ERR, "view %lld: SST table: %s", (long long)v->id,
             serr.msg);
        goto out;
    }
    if (atomic_load(&s->stopped))
        sst_quiet(v->t); /* stopped meanwhile: publish nothing */
    rc = sst_predicate_add(v->t, rows_changed, wake_delivery, v, SST_RECURRENT,
                           &v->pred);
    if (rc == 0)
        rc = sst_predicate_add(v->t, other_suspects, adopt_suspicions, v,
                               SST_RECURRENT, &v->spread);
    if (rc == 0)
        rc = start_rdmc(s, v, view);
    if (rc) {
        sst_destroy(v->t);
        v->t = NULL;
        goto out;
    }
    slog(s, LOG_INFO, "view %lld: SST table of %zu members, row %zu bytes",
         (long long)v->id, n, row_size);
out:
    free(failed_ranks);
    free(members);
    free(fields);
    free(names);
    free(offsets);
    if (rc) {
        free_view(v);
        return rc;
    }
    *out = (struct derecho__smc_view *)v;
    return 0;
}

void derecho__smc_view_activate(struct derecho__smc *s,
                                struct derecho__smc_view *view)
{
    pthread_mutex_lock(&s->lock);
    s->cur = (struct sview *)view;
    /* Unordered: what end_epoch noted of the senders' carried messages. */
    while (s->skips) {
        struct skip *k = s->skips;
        s->skips = k->next;
        for (size_t i = 0; view && i < s->cur->num_shards; i++) {
            struct sshard *sh = &s->cur->shards[i];
            for (uint32_t j = 0;
                 sh->skip && sh->subgroup == k->subgroup && j < sh->k; j++)
                if (sh->sender_ids[j] == k->sender_id)
                    sh->skip[j] = k->count;
        }
        free(k);
    }
    s->generation++;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    wake(s);
}

void derecho__smc_view_end(struct derecho__smc *s,
                           const struct derecho_view *next)
{
    pthread_mutex_lock(&s->lock);
    struct sview *v = s->cur;
    if (!v) {
        pthread_mutex_unlock(&s->lock);
        return;
    }
    /* Wedge: no sends from now on.  An open reservation points into the
     * table: wait for its commit (or cancel) before the table goes. */
    v->wedged = true;
    atomic_store(&v->ending, true);
    s->generation++;
    pthread_cond_broadcast(&s->cond);
    for (;;) {
        bool open = false;
        for (size_t i = 0; i < v->num_shards; i++)
            open = open || v->shards[i].reserved;
        if (!open)
            break;
        struct timespec ts;
        derecho__deadline_in(&ts, 1000);
        s->waiters++;
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
            slog(s, LOG_WARNING,
                 "view %lld: waiting for a reserved message to be "
                 "committed before the view ends",
                 (long long)v->id);
        s->waiters--;
    }
    s->cur = NULL;
    s->retire = v;
    s->retire_next = next;
    s->retire_done = false;
    pthread_mutex_unlock(&s->lock);
    atomic_store(&s->sleeping, 1);
    wake(s);
    pthread_mutex_lock(&s->lock);
    while (!s->retire_done) {
        struct timespec ts;
        derecho__deadline_in(&ts, 10000);
        s->waiters++;
        if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT &&
            !s->retire_done)
            slog(s, LOG_WARNING,
                 "view %lld: the delivery thread has not finished the "
                 "view's deliveries after 10 s (a slow upcall?)",
                 (long long)v->id);
        s->waiters--;
    }
    /* Keep the view's suspicions for the stats (no allocation failure
     * matters here: the stats then show none). */
    uint32_t n = sst_num_members(v->t), me = sst_my_rank(v->t);
    int *why = calloc(n + 1, sizeof(*why));
    for (uint32_t r = 0; why && r < n; r++) {
        int x = atomic_load(&v->reason[r]);
        why[r] =
            r != me && sst_suspects(v->t, me, r) ? (x ? x : -EHOSTDOWN) : 0;
    }
    free(s->ended_reason);
    s->ended_reason = why;
    s->ended_id = why ? v->id : -1;
    s->ended_n = why ? n : 0;
    pthread_mutex_unlock(&s->lock);
    derecho__rdmc_view_destroy(v->rdmc);
    v->rdmc = NULL;
    sst_destroy(v->t);
    free_view(v);
}

void derecho__smc_destroy(struct derecho__smc *s)
{
    if (!s)
        return;
    derecho__smc_view_end(s, NULL);
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->closing = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
        atomic_store(&s->sleeping, 1);
        wake(s);
        pthread_join(s->thread, NULL);
    }
    fab_pool_destroy(s->pool);
    while (s->skips) {
        struct skip *k = s->skips;
        s->skips = k->next;
        free(k);
    }
    while (s->carry_head) {
        struct carry *c = s->carry_head;
        s->carry_head = c->next;
        free(c);
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->counts);
    free(s->ended_reason);
    free(s);
}

/* ---- sending ----------------------------------------------------------------
 */

/* Finds my shard of subgroup in the current view, waiting (blocking
 * sends) while there is no view, the view is wedged, the subgroup is not
 * provisioned or another thread holds the reservation.  Under s->lock. */
static int find_shard(struct derecho__smc *s, uint32_t subgroup, size_t size,
                      int flags, struct sview **vp, struct sshard **shp)
{
    for (;;) {
        if (s->closing)
            return -ESHUTDOWN;
        if (atomic_load(&s->stopped))
            return -ENOTCONN;
        bool for_room = false; /* waiting for room in my window */
        struct sview *v = s->cur;
        if (v && !v->wedged && !atomic_load(&v->suspicion)) {
            if (subgroup >= v->num_subgroups)
                return -ERANGE;
            int32_t idx = v->mine[subgroup];
            if (idx == -1)
                return -ENOENT;
            if (idx >= 0) {
                struct sshard *sh = &v->shards[idx];
                if (v->receive_only[subgroup])
                    return -EPERM;
                if (size > sh->max_msg)
                    return -EMSGSIZE;
                if (sh->reserved) {
                    if (pthread_equal(sh->owner, pthread_self()))
                        return -EBUSY;
                } else if (!carry_pending(s, subgroup) &&
                           window_has_room(v, sh) &&
                           (size <= sh->payload || ring_has_room(v, sh))) {
                    *vp = v;
                    *shp = sh;
                    return 0;
                } else {
                    for_room = true;
                }
            }
        }
        if (flags & DERECHO_SEND_NONBLOCK)
            return -EAGAIN;
        struct timespec ts;
        derecho__deadline_in(&ts, 100);
        for_room = for_room && subgroup < s->num_counts;
        if (for_room) {
            s->counts[subgroup].window_waiters++;
            s->window_waiters++;
        }
        s->waiters++;
        pthread_cond_timedwait(&s->cond, &s->lock, &ts);
        s->waiters--;
        if (for_room) {
            s->counts[subgroup].window_waiters--;
            s->window_waiters--;
        }
    }
}

int derecho__smc_reserve(struct derecho__smc *s, uint32_t subgroup, size_t size,
                         int flags, void **buf)
{
    pthread_mutex_lock(&s->lock);
    struct sview *v;
    struct sshard *sh;
    int rc = find_shard(s, subgroup, size, flags, &v, &sh);
    if (rc == 0) {
        sh->reserved = true;
        sh->owner = pthread_self();
        if (size > sh->payload) {
            sh->reserved_rdmc = true;
            sh->reserved_size = size;
            *buf = derecho__rdmc_send_buf(v->rdmc, shard_index(v, sh));
        } else {
            uint8_t *slot = slot_of(v, sh, v->my_rank, sh->nsent);
            uint64_t hdr = size;
            memcpy(slot, &hdr, sizeof(hdr));
            *buf = slot + SLOT_HEADER;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* The reservation of subgroup held by this thread, under s->lock. */
static int reserved_shard(struct derecho__smc *s, uint32_t subgroup,
                          struct sview **vp, struct sshard **shp)
{
    /* A view that is ending keeps s->cur until its open reservations are
     * committed or cancelled (a committed one is part of the view). */
    struct sview *v = s->cur;
    if (!v)
        return -ENOENT;
    if (subgroup >= v->num_subgroups)
        return -ERANGE;
    int32_t idx = v->mine[subgroup];
    if (idx < 0 || !v->shards[idx].reserved ||
        !pthread_equal(v->shards[idx].owner, pthread_self()))
        return -ENOENT;
    *vp = v;
    *shp = &v->shards[idx];
    return 0;
}

/* Commits a reservation in my RDMC ring: through RDMC, or as an SMC
 * slot when it shrank to fit one.  Under s->lock. */
static int commit_rdmc(struct derecho__smc *s, struct sview *v,
                       struct sshard *sh, size_t size)
{
    if (size == SIZE_MAX)
        size = sh->reserved_size;
    if (size > sh->reserved_size)
        return -EINVAL;
    sh->reserved = false;
    sh->reserved_rdmc = false;
    int rc;
    if (size > sh->payload) {
        rc = publish_rdmc(s, v, sh, size);
    } else {
        uint8_t *slot = slot_of(v, sh, v->my_rank, sh->nsent);
        uint64_t hdr = size;
        memcpy(slot, &hdr, sizeof(hdr));
        memcpy(slot + SLOT_HEADER,
               derecho__rdmc_send_buf(v->rdmc, shard_index(v, sh)), size);
        rc = publish_slot(s, v, sh, size);
    }
    if (s->waiters)
        pthread_cond_broadcast(&s->cond);
    return rc;
}

int derecho__smc_commit(struct derecho__smc *s, uint32_t subgroup, size_t size)
{
    pthread_mutex_lock(&s->lock);
    struct sview *v = NULL;
    struct sshard *sh = NULL;
    int rc = reserved_shard(s, subgroup, &v, &sh);
    if (rc == 0 && sh->reserved_rdmc) {
        rc = commit_rdmc(s, v, sh, size);
    } else if (rc == 0) {
        uint8_t *slot = slot_of(v, sh, v->my_rank, sh->nsent);
        uint64_t hdr;
        memcpy(&hdr, slot, sizeof(hdr));
        if (size == SIZE_MAX)
            size = (size_t)(uint32_t)hdr;
        if (size > (size_t)(uint32_t)hdr) {
            rc = -EINVAL;
        } else {
            hdr = size;
            memcpy(slot, &hdr, sizeof(hdr));
            sh->reserved = false;
            rc = publish_slot(s, v, sh, size);
            if (subgroup < s->num_counts)
                atomic_fetch_add_explicit(&s->counts[subgroup].sent, 1,
                                          memory_order_relaxed);
            if (s->waiters)
                pthread_cond_broadcast(&s->cond);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int derecho__smc_cancel(struct derecho__smc *s, uint32_t subgroup)
{
    pthread_mutex_lock(&s->lock);
    struct sview *v = NULL;
    struct sshard *sh = NULL;
    int rc = reserved_shard(s, subgroup, &v, &sh);
    if (rc == 0) {
        sh->reserved = false;
        sh->reserved_rdmc = false;
        if (s->waiters)
            pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int derecho__smc_max_payload(struct derecho__smc *s, uint32_t subgroup,
                             bool largest, size_t *size)
{
    pthread_mutex_lock(&s->lock);
    int rc = -EAGAIN;
    struct sview *v = s->cur;
    if (v && subgroup >= v->num_subgroups)
        rc = -ERANGE;
    else if (v && v->mine[subgroup] == -1)
        rc = -ENOENT;
    else if (v && v->mine[subgroup] >= 0) {
        *size = largest ? v->shards[v->mine[subgroup]].max_msg
                        : v->shards[v->mine[subgroup]].payload;
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void derecho__smc_set_events(struct derecho__smc *s, derecho__smc_event_fn fn,
                             void *ctx)
{
    pthread_mutex_lock(&s->lock);
    s->event = fn;
    s->event_ctx = ctx;
    pthread_mutex_unlock(&s->lock);
}

void derecho__smc_stop(struct derecho__smc *s, int reason)
{
    /* No lock: called on the SST's polling thread.  Waiting senders see
     * it at their next check (at most 100 ms), the delivery thread at
     * its next pass.  The first reason stays. */
    int expected = 0;
    atomic_compare_exchange_strong(&s->stopped, &expected, reason);
    wake(s);
}

bool derecho__smc_partition_safety(struct derecho__smc *s)
{
    return s->partition_safety;
}

int derecho__smc_stopped(struct derecho__smc *s)
{
    return atomic_load(&s->stopped);
}

bool derecho__smc_suspects(struct derecho__smc *s, uint32_t node_id)
{
    pthread_mutex_lock(&s->lock);
    bool yes = false;
    struct sview *v = s->cur;
    if (v) {
        uint32_t n = sst_num_members(v->t), me = sst_my_rank(v->t);
        for (uint32_t r = 0; r < n; r++)
            if (r != me && sst_node_id(v->t, r) == node_id)
                yes = sst_suspects(v->t, me, r);
    }
    pthread_mutex_unlock(&s->lock);
    return yes;
}

void derecho__smc_test_break_link(struct derecho__smc *s)
{
    if (s->link_broken)
        return;
    const char *hook = getenv("DERECHO_TEST_BREAK_LINK");
    const char *colon = hook ? strrchr(hook, ':') : NULL;
    if (!colon || colon == hook) {
        s->link_broken = true; /* not set (or malformed): never again */
        return;
    }
    char path[512];
    size_t len = (size_t)(colon - hook);
    if (len >= sizeof(path)) {
        s->link_broken = true;
        return;
    }
    memcpy(path, hook, len);
    path[len] = 0;
    if (access(path, F_OK) != 0)
        return;
    uint32_t node = (uint32_t)strtoul(colon + 1, NULL, 10);
    s->link_broken = true;
    int rc = fab_pool_fail_peer(s->pool, node, -ECONNRESET);
    slog(s, LOG_WARNING,
         "test hook DERECHO_TEST_BREAK_LINK: my connection to node %u "
         "broken (%s)",
         node, rc ? fab_strerror(rc) : "done");
}

void derecho__smc_quiet(struct derecho__smc *s)
{
    pthread_mutex_lock(&s->lock);
    struct sview *views[2] = {s->cur, s->retire};
    for (int i = 0; i < 2; i++)
        if (views[i])
            sst_quiet(views[i]->t);
    pthread_mutex_unlock(&s->lock);
}

bool derecho__smc_self_stalled(struct derecho__smc *s)
{
    pthread_mutex_lock(&s->lock);
    bool yes = false;
    struct sview *views[2] = {s->cur, s->retire};
    for (int i = 0; i < 2; i++)
        /* The others see my silence as the stall plus up to one
         * heartbeat period (the last heartbeat before it). */
        if (views[i] &&
            sst_self_stall_ms(views[i]->t) + (uint64_t)s->heartbeat_ms >=
                (uint64_t)s->suspect_timeout_ms)
            yes = true;
    pthread_mutex_unlock(&s->lock);
    return yes;
}

void derecho__smc_stats(struct derecho__smc *s, int64_t view_id,
                        struct derecho_group_stats *out)
{
    pthread_mutex_lock(&s->lock);
    struct sview *v = s->cur;
    if (v && v->id == view_id) {
        uint32_t n = sst_num_members(v->t), me = sst_my_rank(v->t);
        for (uint32_t r = 0; out->members && r < n && r < out->max_members &&
                             r < out->num_members;
             r++) {
            bool sus = r != me && sst_suspects(v->t, me, r);
            int why = atomic_load(&v->reason[r]);
            out->members[r].suspected = sus;
            out->members[r].reason = sus ? (why ? why : -EHOSTDOWN) : 0;
        }
        out->num_shards = v->num_shards;
        for (size_t i = 0;
             out->shards && i < v->num_shards && i < out->max_shards; i++) {
            const struct sshard *sh = &v->shards[i];
            struct derecho_shard_stats *o = &out->shards[i];
            *o = (struct derecho_shard_stats){.subgroup = sh->subgroup,
                                              .shard = sh->shard};
            if (sh->subgroup < s->num_counts) {
                const struct sgcount *c = &s->counts[sh->subgroup];
                o->sent = atomic_load(&c->sent);
                o->delivered = atomic_load(&c->delivered);
                o->nulls_sent = atomic_load(&c->nulls_sent);
                o->nulls_delivered = atomic_load(&c->nulls_delivered);
            }
        }
    } else if (s->ended_id == view_id && s->ended_reason) {
        for (uint32_t r = 0; out->members && r < s->ended_n &&
                             r < out->max_members && r < out->num_members;
             r++) {
            out->members[r].suspected = s->ended_reason[r] != 0;
            out->members[r].reason = s->ended_reason[r];
        }
    }
    pthread_mutex_unlock(&s->lock);
}
