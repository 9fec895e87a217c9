/* The polling thread: progress, predicates, heartbeats, failure detection,
 * spin-then-sleep. */
#include "sst-private.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
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

void sst__suspect(struct sst_table *t, uint32_t rank, int reason)
{
    struct sst__peer *p = &t->peers[rank];
    if (rank == t->my_rank || atomic_load(&p->suspected))
        return;
    /* 1. The member is leaving the group: fail its connection for every
     *    user of the pool, so no more writes of it land anywhere. */
    fab_pool_fail_peer(t->pool, p->node_id, -EHOSTDOWN);
    /* 2. Freeze its row: no pushes to it, no heartbeat checks, not waited
     *    for by sst_sync. */
    pthread_mutex_lock(&p->post_lock);
    atomic_store(&p->suspected, true);
    pthread_mutex_unlock(&p->post_lock);
    /* 3. Say so in my row and tell the others. */
    sst__suspected(t, t->my_rank)[rank] = 1;
    atomic_fetch_add(&t->st_suspicions, 1);
    sst__push_header(t, true);
    sst__log(t, LOG_NOTICE, "table %llu: suspect rank %u (node %u): %s",
             (unsigned long long)t->opts.table_id, rank, p->node_id,
             sst_strerror(reason));
    if (t->opts.on_suspect)
        t->opts.on_suspect(t->opts.suspect_ctx, t, rank, p->node_id, reason);
    sst__wake_waiters(t);
}

static void handle_failures(struct sst_table *t)
{
    atomic_store(&t->failure_pending, false);
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        int f = atomic_load(&p->failure);
        if (r != t->my_rank && f && !atomic_load(&p->suspected) &&
            !atomic_load(&p->closed))
            sst__suspect(t, r, f);
    }
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
        sst__push(t, p, 0, t->hdr_size, true);
        pthread_mutex_lock(&p->post_lock);
        atomic_store(&p->closed, true);
        pthread_mutex_unlock(&p->post_lock);
        any = true;
    }
    return any;
}

static void heartbeat_tick(struct sst_table *t, int64_t now, int64_t gap_us)
{
    atomic_fetch_add_explicit(sst__hdr_u64(t, t->my_rank, SST__HDR_HEARTBEAT),
                              1, memory_order_release);
    atomic_fetch_add_explicit(&t->st_heartbeats, 1, memory_order_relaxed);
    sst__push_header(t, false);
    if (!atomic_load(&t->armed))
        return;
    int64_t timeout_us = (int64_t)t->opts.suspect_timeout_ms * 1000;
    /* This thread itself did not run for a long while (stopped, starved):
     * the silence is ours, do not blame the others for it. */
    bool we_stalled = gap_us > timeout_us / 2;
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        if (r == t->my_rank || atomic_load(&p->suspected) ||
            atomic_load(&p->closed))
            continue;
        uint64_t hb = atomic_load_explicit(
            sst__hdr_u64(t, r, SST__HDR_HEARTBEAT), memory_order_acquire);
        if (hb != p->last_heartbeat || we_stalled) {
            p->last_heartbeat = hb;
            p->last_change_us = now;
        } else if (now - p->last_change_us > timeout_us) {
            sst__suspect(t, r, -ETIMEDOUT);
        }
    }
}

/* ---- predicates ------------------------------------------------------- */

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
    if (t->preds_tail)
        t->preds_tail->next = p;
    else
        t->preds = p;
    t->preds_tail = p;
    pthread_mutex_unlock(&t->pred_lock);
    if (handle)
        *handle = p;
    if (!sst__on_poll_thread(t))
        sst_notify(t);
    return 0;
}

int sst_predicate_remove(struct sst_table *t, struct sst_pred *p)
{
    if (!t || !p)
        return -EINVAL;
    pthread_mutex_lock(&t->pred_lock);
    /* Only a handle still registered here is touched: removing twice, a
     * one-time predicate that fired, or another table's handle would
     * otherwise write into freed memory. */
    struct sst_pred *q = t->preds;
    while (q && q != p)
        q = q->next;
    if (!q || p->removed) {
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
    int64_t hb_us = (int64_t)t->opts.heartbeat_ms * 1000;
    int64_t now = sst__now_us();
    int64_t last_change = now;
    int64_t last_tick = now;
    int64_t next_tick = now; /* first heartbeat at once */
    for (uint32_t r = 0; r < t->n; r++)
        t->peers[r].last_change_us = now;

    while (!atomic_load(&t->stopping)) {
        int handled = fab_pool_progress(t->pool);
        now = sst__now_us();
        if (atomic_load(&t->failure_pending))
            handle_failures(t);
        bool closing = check_closing(t);
        if (now >= next_tick) {
            heartbeat_tick(t, now, now - last_tick);
            last_tick = now;
            next_tick = now + hb_us;
        }
        bool changed =
            atomic_exchange_explicit(&t->changed, false, memory_order_acq_rel);
        int fired = evaluate(t);
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
        /* Sleep until a completion, a wake-up or the next heartbeat. */
        if (fab_pool_trywait(t->pool) != 0) {
            sched_yield();
            continue;
        }
        if (atomic_load(&t->changed) || atomic_load(&t->failure_pending) ||
            atomic_load(&t->stopping))
            continue;
        int64_t wait_us = next_tick - sst__now_us();
        if (wait_us <= 0)
            continue;
        struct epoll_event evs[4];
        int n = epoll_wait(t->epfd, evs, 4, (int)((wait_us + 999) / 1000));
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
