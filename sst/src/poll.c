/* The polling thread: progress, predicates, heartbeats, failure detection,
 * spin-then-sleep. */
#include "sst-private.h"

#include <errno.h>
#include <stdint.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

bool sst__on_poll_thread(const struct sst_table *t)
{
    return t->thread_started && pthread_equal(pthread_self(), t->thread);
}

void sst_notify(struct sst_table *t)
{
    if (!t)
        return;
    atomic_store_explicit(&t->changed, true, memory_order_release);
    uint64_t one = 1;
    ssize_t n = write(t->evfd, &one, sizeof(one));
    (void)n;
}

void sst__wake_waiters(struct sst_table *t)
{
    if (atomic_load(&t->sync_waiters) == 0)
        return;
    pthread_mutex_lock(&t->sync_lock);
    pthread_cond_broadcast(&t->sync_cond);
    pthread_mutex_unlock(&t->sync_lock);
}

/* ---- libfab callbacks (other threads) ---------------------------------- */

void sst__on_remote_data(void *ctx, uint32_t node_id, uint64_t data)
{
    struct sst_table *t = ctx;
    (void)node_id;
    if (t->use_data) {
        /* Pushes of other tables over the same connection, and our peers'
         * heartbeats, do not concern this thread.  With a libfab tag only
         * our own words come here. */
        if (!t->fab_tag && (data >> 1) != t->tag)
            return;
        if (!(data & SST__DATA_WAKE))
            return;
    }
    if (sst__on_poll_thread(t)) {
        atomic_store_explicit(&t->changed, true, memory_order_release);
        return;
    }
    sst_notify(t);
    sst__wake_waiters(t);
}

void sst__on_failure(void *ctx, uint32_t node_id, int reason)
{
    struct sst_table *t = ctx;
    int r = sst_rank_of(t, node_id);
    if (r < 0)
        return;
    int zero = 0;
    atomic_compare_exchange_strong(&t->peers[r].failure, &zero,
                                   reason < 0 ? reason : -ECONNRESET);
    atomic_store(&t->failure_pending, true);
    sst_notify(t);
}

/* ---- failure detection ------------------------------------------------- */

/* Waits (bounded) until the writes posted to p so far completed: the
 * bytes left this process before its connection is shut down. */
static void flush_to(struct sst_table *t, struct sst__peer *p, int max_us)
{
    uint64_t target = atomic_load(&p->posted);
    int64_t end = sst__now_us() + max_us;
    while (atomic_load_explicit(&p->completed, memory_order_acquire) < target &&
           !fab_conn_status(p->conn) && sst__now_us() < end) {
        if (fab_pool_progress(t->pool) == 0)
            sched_yield();
    }
}

/* Does a live member's row (as it last reached me) suspect me?  Records
 * the first one in expelled_by (reported by handle_failures).  Any
 * thread; no notification (the caller does it). */
static bool learn_expelled(struct sst_table *t)
{
    if (atomic_load(&t->expelled_by) >= 0)
        return true;
    for (uint32_t r = 0; r < t->n; r++) {
        if (r == t->my_rank || t->peers[r].given_failed)
            continue;
        if (__atomic_load_n(&sst__suspected(t, r)[t->my_rank],
                            __ATOMIC_ACQUIRE)) {
            int none = -1;
            atomic_compare_exchange_strong(&t->expelled_by, &none, (int)r);
            atomic_store(&t->failure_pending, true);
            return true;
        }
    }
    return false;
}

/* Any thread but inside libfab callbacks.  The first caller for a rank
 * does the work; on_suspect is reported later by the polling thread.
 * A member that knows it was removed (some row suspects it) publishes no
 * new suspicion: its connections break as it stops, and its row, still
 * read by members that have not suspected it yet, must not make them
 * remove healthy members.  The suspicion is then recorded here only
 * (frozen row, on_suspect, sst_suspects(t, me, rank)). */
bool sst__suspect(struct sst_table *t, uint32_t rank, int reason)
{
    struct sst__peer *p = &t->peers[rank];
    if (rank == t->my_rank || atomic_exchange(&p->claimed, true))
        return false;
    atomic_store(&p->reason, reason < 0 ? reason : -EHOSTDOWN);
    bool publish = !atomic_load(&t->quiet) && !learn_expelled(t);
    /* 1. Tell the member itself, while its connection still carries it:
     *    a member that was stopped learns, once resumed, that it was
     *    removed (its copy of my row says so). */
    if (publish) {
        sst__suspected(t, t->my_rank)[rank] = 1;
        if (p->conn && !fab_conn_status(p->conn) && !p->setup_failure &&
            sst__push_tracked(t, p, 0, t->hdr_base, true) == 0)
            flush_to(t, p, 20000);
    }
    /* 2. The member is leaving the group: fail its connection for every
     *    user of the pool, so no more writes of it land anywhere. */
    fab_pool_fail_peer(t->pool, p->node_id, -EHOSTDOWN);
    /* 3. Freeze its row: no pushes to it, no heartbeat checks, not waited
     *    for by sst_sync. */
    pthread_mutex_lock(&p->post_lock);
    atomic_store(&p->suspected, true);
    pthread_mutex_unlock(&p->post_lock);
    /* 4. Tell the others. */
    atomic_fetch_add(&t->st_suspicions, 1);
    if (publish)
        sst__push_header(t, true);
    sst__log(t, LOG_NOTICE, "table %llu: suspect rank %u (node %u): %s%s",
             (unsigned long long)t->opts.table_id, rank, p->node_id,
             sst_strerror(reason),
             publish                  ? ""
             : atomic_load(&t->quiet) ? " (quiet: not published)"
                                      : " (I was removed: not published)");
    atomic_store(&t->failure_pending, true);
    if (!sst__on_poll_thread(t))
        sst_notify(t);
    sst__wake_waiters(t);
    return true;
}

void sst_quiet(struct sst_table *t)
{
    if (!t || atomic_exchange(&t->quiet, true))
        return;
    sst__log(t, LOG_INFO,
             "table %llu: quiet: new suspicions are recorded here only",
             (unsigned long long)t->opts.table_id);
}

int sst_suspect(struct sst_table *t, uint32_t rank, int reason)
{
    if (!t || rank >= t->n || rank == t->my_rank)
        return -EINVAL;
    if (!atomic_load(&t->peers[rank].closed))
        sst__suspect(t, rank, reason < 0 ? reason : -EHOSTDOWN);
    return 0;
}

/* Connection failures (any thread): suspicions.  Does not report. */
static void suspect_failed(struct sst_table *t)
{
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        int f = atomic_load(&p->failure);
        if (r != t->my_rank && f && !atomic_load(&p->suspected) &&
            !atomic_load(&p->closed))
            sst__suspect(t, r, f);
    }
}

/* Polling thread: suspicions become on_suspect calls, a row that
 * suspects me an on_expelled call. */
static void handle_failures(struct sst_table *t)
{
    atomic_store(&t->failure_pending, false);
    suspect_failed(t);
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        if (r == t->my_rank || p->given_failed || p->reported ||
            !atomic_load(&p->suspected))
            continue;
        p->reported = true;
        if (t->opts.on_suspect)
            t->opts.on_suspect(t->opts.suspect_ctx, t, r, p->node_id,
                               atomic_load(&p->reason));
    }
    if (atomic_load(&t->expelled_by) >= 0 && !t->expelled_reported) {
        t->expelled_reported = true;
        uint32_t by = (uint32_t)atomic_load(&t->expelled_by);
        sst__log(t, LOG_WARNING,
                 "table %llu: rank %u (node %u) suspects me: I was removed",
                 (unsigned long long)t->opts.table_id, by,
                 t->peers[by].node_id);
        if (t->opts.on_expelled)
            t->opts.on_expelled(t->opts.suspect_ctx, t, by,
                                t->peers[by].node_id, -EHOSTDOWN);
    }
}

/* Does a member's row (as it last reached me) suspect me? */
static void check_expelled(struct sst_table *t)
{
    if (atomic_load(&t->expelled_by) >= 0)
        return;
    if (learn_expelled(t))
        sst_notify(t);
}

/* A member that closed its table stops heartbeats: not a failure.  We
 * acknowledge (closed_seen) with a last push and never write to it
 * again, so it may free its region. */
static bool check_closing(struct sst_table *t)
{
    bool any = false;
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        if (r == t->my_rank || atomic_load(&p->closed) ||
            atomic_load(&p->suspected))
            continue;
        if (atomic_load_explicit(sst__hdr_u64(t, r, SST__HDR_CLOSING),
                                 memory_order_acquire) == 0)
            continue;
        sst__closed_seen(t, t->my_rank)[r] = 1;
        sst__push(t, p, 0, t->hdr_base, true);
        pthread_mutex_lock(&p->post_lock);
        atomic_store(&p->closed, true);
        pthread_mutex_unlock(&p->post_lock);
        any = true;
    }
    return any;
}

/* Stall checks.  lateness_us: how much later than planned this check
 * runs.  A check that comes more than half the timeout late means this
 * process itself did not run (stopped, starved): the silence is ours, do
 * not blame the others for it.  Independent of the heartbeat period. */
static void check_heartbeats(struct sst_table *t, int64_t now,
                             int64_t lateness_us)
{
    int64_t timeout_us = (int64_t)t->opts.suspect_timeout_ms * 1000;
    bool we_stalled = lateness_us > timeout_us / 2;
    if (we_stalled && lateness_us > atomic_load_explicit(&t->st_self_stall_us,
                                                         memory_order_relaxed))
        atomic_store_explicit(&t->st_self_stall_us, lateness_us,
                              memory_order_relaxed);
    bool armed = atomic_load(&t->armed);
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        if (r == t->my_rank || atomic_load(&p->suspected) ||
            atomic_load(&p->closed))
            continue;
        uint64_t hb = atomic_load_explicit(
            sst__hdr_u64(t, r, SST__HDR_HEARTBEAT), memory_order_acquire);
        if (hb != p->last_heartbeat || we_stalled || !armed) {
            p->last_heartbeat = hb;
            p->last_change_us = now;
            continue;
        }
        /* The time this check ran late (this process did not run) is not
         * the peer's silence: a stop shorter than half the timeout, split
         * across two ticks, must not make a resumed member time everyone
         * out before its polling thread has read their heartbeats (it
         * would publish suspicions of healthy members, who read them as
         * their removal). */
        if (lateness_us > 0)
            p->last_change_us += lateness_us;
        if (p->last_change_us > now)
            p->last_change_us = now;
        if (now - p->last_change_us > timeout_us && !atomic_load(&p->closed)) {
            sst__suspect(t, r, -ETIMEDOUT);
        }
    }
}

/* The timer thread: heartbeats and suspicion checks on a clock of their
 * own, so that a long trigger on the polling thread neither silences this
 * member nor hides a silent one.  It also drives progress at every tick:
 * peers' heartbeats land only while some thread of ours progresses. */
void *sst__timer_main(void *arg)
{
    struct sst_table *t = arg;
    char name[16];
    snprintf(name, sizeof(name), "%.10s-tmr", t->thread_name);
    pthread_setname_np(pthread_self(), name);
    int64_t hb_us = (int64_t)t->opts.heartbeat_ms * 1000;
    int64_t tick_us = (int64_t)t->opts.suspect_timeout_ms * 1000 / 4;
    if (tick_us > hb_us)
        tick_us = hb_us;
    if (tick_us < 1000)
        tick_us = 1000;
    int64_t now = sst__now_us();
    int64_t planned = now; /* first heartbeat at once */
    int64_t next_hb = now;
    for (uint32_t r = 0; r < t->n; r++)
        t->peers[r].last_change_us = now;
    pthread_mutex_lock(&t->timer_lock);
    while (!atomic_load(&t->stopping)) {
        now = sst__now_us();
        if (now < planned) {
            struct timespec ts = {(time_t)(planned / 1000000),
                                  (long)(planned % 1000000) * 1000};
            pthread_cond_timedwait(&t->timer_cond, &t->timer_lock, &ts);
            continue;
        }
        pthread_mutex_unlock(&t->timer_lock);
        int64_t lateness = now - planned;
        /* The polling thread progresses unless it is held up in user code
         * (a long trigger): then we do, or nothing would land. */
        if (atomic_load_explicit(&t->in_user_code, memory_order_acquire))
            for (int i = 0; i < 16 && fab_pool_progress(t->pool) > 0; i++)
                ;
        if (now >= next_hb) {
            atomic_fetch_add_explicit(
                sst__hdr_u64(t, t->my_rank, SST__HDR_HEARTBEAT), 1,
                memory_order_release);
            atomic_fetch_add_explicit(&t->st_heartbeats, 1,
                                      memory_order_relaxed);
            sst__push_header(t, false);
            next_hb = now + hb_us;
        }
        if (atomic_load(&t->failure_pending))
            suspect_failed(t);
        check_heartbeats(t, now, lateness);
        check_expelled(t);
        planned = now + tick_us;
        if (planned > next_hb)
            planned = next_hb;
        pthread_mutex_lock(&t->timer_lock);
    }
    pthread_mutex_unlock(&t->timer_lock);
    return NULL;
}

/* ---- predicates ------------------------------------------------------- */

/* ---- predicate handles -------------------------------------------------
 * A handle is not a pointer but (generation << half | slot + 1) in a
 * pointer-sized word: a slot's generation changes whenever its predicate
 * is freed, so a stale handle (removed, a one-time predicate that fired,
 * another table's) is told apart and gets -ENOENT.  Generations start at a
 * value derived from the table's address, so handles of two tables differ
 * too. */

#define HANDLE_HALF (sizeof(uintptr_t) * 4)
#define HANDLE_MASK ((((uintptr_t)1) << HANDLE_HALF) - 1)

static struct sst_pred *encode_handle(uint32_t slot, uint32_t gen)
{
    uintptr_t h = (((uintptr_t)gen & HANDLE_MASK) << HANDLE_HALF) |
                  (((uintptr_t)slot + 1) & HANDLE_MASK);
    return (struct sst_pred *)h;
}

/* pred_lock held.  A free slot for p (growing the table), or -ENOMEM. */
static int slot_take(struct sst_table *t, struct sst_pred *p)
{
    uint32_t slot = 0;
    while (slot < t->n_pred_slots && t->pred_slots[slot])
        slot++;
    if (slot == t->n_pred_slots) {
        size_t n = t->n_pred_slots ? 2 * t->n_pred_slots : 8;
        if (n > (HANDLE_MASK >> 1))
            return -ENOMEM;
        struct sst_pred **slots =
            realloc(t->pred_slots, n * sizeof(*t->pred_slots));
        if (!slots)
            return -ENOMEM;
        t->pred_slots = slots;
        uint32_t *gens = realloc(t->pred_gen, n * sizeof(*t->pred_gen));
        if (!gens)
            return -ENOMEM;
        t->pred_gen = gens;
        for (size_t i = t->n_pred_slots; i < n; i++) {
            slots[i] = NULL;
            uint64_t seed = ((uint64_t)(uintptr_t)t >> 4) ^ (i * 0x9e37u);
            gens[i] = (uint32_t)((seed * 0x9e3779b97f4a7c15ull) >> 32) | 1;
        }
        t->n_pred_slots = n;
    }
    t->pred_slots[slot] = p;
    p->slot = slot;
    return 0;
}

/* pred_lock held. */
static void slot_release(struct sst_table *t, struct sst_pred *p)
{
    t->pred_slots[p->slot] = NULL;
    uint32_t g = t->pred_gen[p->slot] + 1;
    t->pred_gen[p->slot] = g ? g : 1;
}

/* pred_lock held.  The predicate a handle names, or NULL. */
static struct sst_pred *slot_find(struct sst_table *t, struct sst_pred *h)
{
    uintptr_t v = (uintptr_t)h;
    uintptr_t slot1 = v & HANDLE_MASK;
    uintptr_t gen = v >> HANDLE_HALF;
    if (slot1 == 0 || slot1 > t->n_pred_slots)
        return NULL;
    size_t slot = slot1 - 1;
    if (!t->pred_slots[slot] ||
        ((uintptr_t)t->pred_gen[slot] & HANDLE_MASK) != gen)
        return NULL;
    return t->pred_slots[slot];
}

int sst_predicate_add(struct sst_table *t, sst_pred_fn pred,
                      sst_trigger_fn trigger, void *ctx,
                      enum sst_pred_kind kind, struct sst_pred **handle)
{
    if (!t || !pred || !trigger ||
        (kind != SST_ONE_TIME && kind != SST_RECURRENT))
        return -EINVAL;
    struct sst_pred *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->pred = pred;
    p->trigger = trigger;
    p->ctx = ctx;
    p->kind = kind;
    pthread_mutex_lock(&t->pred_lock);
    if (slot_take(t, p) != 0) {
        pthread_mutex_unlock(&t->pred_lock);
        free(p);
        return -ENOMEM;
    }
    struct sst_pred *h = encode_handle(p->slot, t->pred_gen[p->slot]);
    if (t->preds_tail)
        t->preds_tail->next = p;
    else
        t->preds = p;
    t->preds_tail = p;
    pthread_mutex_unlock(&t->pred_lock);
    if (handle)
        *handle = h;
    if (!sst__on_poll_thread(t))
        sst_notify(t);
    return 0;
}

int sst_predicate_remove(struct sst_table *t, struct sst_pred *h)
{
    if (!t || !h)
        return -EINVAL;
    pthread_mutex_lock(&t->pred_lock);
    /* Only a handle still registered here is touched: removing twice, a
     * one-time predicate that fired, or another table's handle finds no
     * predicate of that generation. */
    struct sst_pred *p = slot_find(t, h);
    if (!p || p->removed) {
        pthread_mutex_unlock(&t->pred_lock);
        return -ENOENT;
    }
    p->removed = true;
    if (!sst__on_poll_thread(t)) {
        t->remove_waiters++;
        while (t->running == p)
            pthread_cond_wait(&t->pred_cond, &t->pred_lock);
        t->remove_waiters--;
    }
    pthread_mutex_unlock(&t->pred_lock);
    /* The polling thread unlinks and frees it at the end of a pass. */
    return 0;
}

static void sweep_locked(struct sst_table *t)
{
    struct sst_pred *prev = NULL;
    for (struct sst_pred *p = t->preds; p;) {
        struct sst_pred *next = p->next;
        if (p->removed) {
            if (prev)
                prev->next = next;
            else
                t->preds = next;
            if (t->preds_tail == p)
                t->preds_tail = prev;
            slot_release(t, p);
            free(p);
        } else {
            prev = p;
        }
        p = next;
    }
}

void sst__preds_free(struct sst_table *t)
{
    pthread_mutex_lock(&t->pred_lock);
    for (struct sst_pred *p = t->preds; p; p = p->next)
        p->removed = true;
    sweep_locked(t);
    pthread_mutex_unlock(&t->pred_lock);
}

/* One pass over the predicates registered when it starts, in order.  The
 * lock is not held while user code runs, so predicates and triggers may
 * add and remove predicates. */
static int evaluate(struct sst_table *t)
{
    int fired = 0;
    pthread_mutex_lock(&t->pred_lock);
    struct sst_pred *last = t->preds_tail;
    struct sst_pred *p = last ? t->preds : NULL;
    bool any_removed = false;
    while (p) {
        if (!p->removed) {
            t->running = p;
            pthread_mutex_unlock(&t->pred_lock);
            bool hold = p->pred(t, p->ctx);
            if (hold) {
                p->trigger(t, p->ctx);
                fired++;
            }
            pthread_mutex_lock(&t->pred_lock);
            t->running = NULL;
            if (hold && p->kind == SST_ONE_TIME)
                p->removed = true;
            if (t->remove_waiters)
                pthread_cond_broadcast(&t->pred_cond);
        }
        if (p->removed)
            any_removed = true;
        if (p == last)
            break;
        p = p->next;
    }
    if (any_removed)
        sweep_locked(t);
    pthread_mutex_unlock(&t->pred_lock);
    if (fired)
        atomic_fetch_add_explicit(&t->st_triggers, (uint64_t)fired,
                                  memory_order_relaxed);
    return fired;
}

/* ---- the loop --------------------------------------------------------- */

void *sst__poll_main(void *arg)
{
    struct sst_table *t = arg;
    pthread_setname_np(pthread_self(), t->thread_name);
    int64_t now = sst__now_us();
    int64_t last_change = now;

    while (!atomic_load(&t->stopping)) {
        int handled = fab_pool_progress(t->pool);
        now = sst__now_us();
        atomic_store_explicit(&t->in_user_code, true, memory_order_release);
        if (atomic_load(&t->failure_pending))
            handle_failures(t);
        bool closing = check_closing(t);
        bool changed =
            atomic_exchange_explicit(&t->changed, false, memory_order_acq_rel);
        int fired = evaluate(t);
        atomic_store_explicit(&t->in_user_code, false, memory_order_release);
        if (changed || fired || closing) {
            last_change = now;
            sst__wake_waiters(t);
        }
        if (handled > 0)
            continue; /* more may be queued: progress again at once */
        if (now - last_change < t->spin_us) {
            /* Spin budget: stay responsive right after a change, but let
             * the other threads and processes on this core run. */
            sched_yield();
            continue;
        }
        /* Sleep until a completion or a wake-up (the timer thread wakes
         * us for failures; the bound is a safety net). */
        if (fab_pool_trywait(t->pool) != 0) {
            sched_yield();
            continue;
        }
        if (atomic_load(&t->changed) || atomic_load(&t->failure_pending) ||
            atomic_load(&t->stopping))
            continue;
        struct epoll_event evs[4];
        int n = epoll_wait(t->epfd, evs, 4, 1000);
        atomic_fetch_add_explicit(&t->st_wakeups, 1, memory_order_relaxed);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == t->evfd) {
                uint64_t v;
                ssize_t rd = read(t->evfd, &v, sizeof(v));
                (void)rd;
            }
        }
    }
    return NULL;
}
