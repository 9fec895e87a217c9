/* Pushing my row to members: sst_put*, sst_sync. */
#include "sst-private.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

/* Write completions (any progressing thread): the context goes back to its
 * peer's free list.  Failed writes need nothing here: libfab fails the
 * connection and on_failure suspects the member. */
void sst__op_done(struct fab_op *op, int status)
{
    (void)status;
    struct sst__peer_op *po = (struct sst__peer_op *)op;
    struct sst__peer *p = po->peer;
    pthread_mutex_lock(&p->ops_lock);
    po->next_free = p->free_ops;
    p->free_ops = po;
    pthread_mutex_unlock(&p->ops_lock);
    atomic_fetch_add_explicit(&p->completed, 1, memory_order_release);
}

static struct sst__peer_op *take_op(struct sst__peer *p)
{
    pthread_mutex_lock(&p->ops_lock);
    struct sst__peer_op *po = p->free_ops;
    if (po)
        p->free_ops = po->next_free;
    pthread_mutex_unlock(&p->ops_lock);
    return po;
}

static void give_op(struct sst__peer *p, struct sst__peer_op *po)
{
    pthread_mutex_lock(&p->ops_lock);
    po->next_free = p->free_ops;
    p->free_ops = po;
    pthread_mutex_unlock(&p->ops_lock);
}

static bool writable(const struct sst__peer *p)
{
    return p->conn && !atomic_load(&p->suspected) && !atomic_load(&p->closed) &&
           !atomic_load(&p->failure);
}

int sst__push(struct sst_table *t, struct sst__peer *p, size_t row_off,
              size_t len, bool wake)
{
    uint64_t data = 0;
    if (t->use_data)
        data = ((uint64_t)t->tag << 1) | (wake ? SST__DATA_WAKE : 0);
    size_t src_off = (size_t)t->my_rank * t->row_stride + row_off;
    int64_t deadline = 0;
    for (;;) {
        int rc = 0;
        bool retry = false;
        pthread_mutex_lock(&p->post_lock);
        if (!writable(p)) {
            pthread_mutex_unlock(&p->post_lock);
            return 0;
        }
        struct sst__peer_op *po = take_op(p);
        if (!po) {
            retry = true;
        } else {
            /* Every push is fenced: pushes to one member land in posting
             * order (free with FI_ORDER_WAW). */
            rc = fab_writedata(p->conn, t->mr, src_off, len, &p->remote,
                               src_off, data, FAB_WRITE_FENCE, &po->op);
            if (rc == 0) {
                atomic_fetch_add(&p->posted, 1);
                atomic_fetch_add_explicit(&t->st_puts, 1, memory_order_relaxed);
            } else {
                give_op(p, po);
                if (rc == -EAGAIN)
                    retry = true;
            }
        }
        pthread_mutex_unlock(&p->post_lock);
        if (!retry) {
            if (rc == -ECONNRESET || rc == -EHOSTDOWN || rc == -ENOTCONN ||
                rc == -ENOENT || rc == -EPIPE) {
                /* The member is failing: on_failure follows; suspect it
                 * on the polling thread. */
                int zero = 0;
                atomic_compare_exchange_strong(&p->failure, &zero,
                                               rc < 0 ? rc : -ECONNRESET);
                atomic_store(&t->failure_pending, true);
                sst_notify(t);
                return 0;
            }
            return rc;
        }
        /* Too many writes in flight: make progress, bounded. */
        int64_t now = sst__now_us();
        if (!deadline)
            deadline = now + 1000000;
        else if (now > deadline)
            return -EAGAIN;
        if (fab_pool_progress(t->pool) == 0)
            sched_yield();
    }
}

int sst__push_header(struct sst_table *t, bool wake)
{
    int first = 0;
    for (uint32_t r = 0; r < t->n; r++) {
        if (r == t->my_rank)
            continue;
        int rc = sst__push(t, &t->peers[r], 0, t->hdr_size, wake);
        if (rc && !first)
            first = rc;
    }
    return first;
}

static int check_range(const struct sst_table *t, size_t offset, size_t len)
{
    if (len == 0 || offset > t->user_size || len > t->user_size - offset)
        return -ERANGE;
    return 0;
}

int sst_put_to(struct sst_table *t, const uint32_t *ranks, size_t n_ranks,
               size_t offset, size_t len)
{
    if (!t || (!ranks && n_ranks))
        return -EINVAL;
    int rc = check_range(t, offset, len);
    if (rc)
        return rc;
    for (size_t i = 0; i < n_ranks; i++)
        if (ranks[i] >= t->n)
            return -EINVAL;
    int first = 0;
    for (size_t i = 0; i < n_ranks; i++) {
        if (ranks[i] == t->my_rank)
            continue;
        rc = sst__push(t, &t->peers[ranks[i]], t->hdr_size + offset, len, true);
        if (rc && !first)
            first = rc;
    }
    return first;
}

int sst_put(struct sst_table *t, size_t offset, size_t len)
{
    if (!t)
        return -EINVAL;
    int rc = check_range(t, offset, len);
    if (rc)
        return rc;
    int first = 0;
    for (uint32_t r = 0; r < t->n; r++) {
        if (r == t->my_rank)
            continue;
        rc = sst__push(t, &t->peers[r], t->hdr_size + offset, len, true);
        if (rc && !first)
            first = rc;
    }
    return first;
}

/* Drives progress for a thread that waits (not the polling thread). */
static void wait_step(struct sst_table *t)
{
    if (fab_pool_progress(t->pool) == 0) {
        /* Someone else progresses, or nothing to do: let them run. */
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

int sst_put_wait(struct sst_table *t, const uint32_t *ranks, size_t n_ranks,
                 size_t offset, size_t len, int timeout_ms)
{
    if (!t || (!ranks && n_ranks))
        return -EINVAL;
    if (sst__on_poll_thread(t))
        return -EDEADLK;
    int rc = check_range(t, offset, len);
    if (rc)
        return rc;
    uint64_t targets[SST_MAX_MEMBERS];
    for (uint32_t r = 0; r < t->n; r++)
        targets[r] = 0;
    if (!ranks) {
        rc = sst_put(t, offset, len);
        for (uint32_t r = 0; r < t->n; r++)
            if (r != t->my_rank)
                targets[r] = atomic_load(&t->peers[r].posted);
    } else {
        rc = sst_put_to(t, ranks, n_ranks, offset, len);
        for (size_t i = 0; i < n_ranks; i++)
            if (ranks[i] != t->my_rank)
                targets[ranks[i]] = atomic_load(&t->peers[ranks[i]].posted);
    }
    if (rc)
        return rc;
    int64_t deadline =
        timeout_ms < 0 ? INT64_MAX : sst__now_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        bool done = true;
        for (uint32_t r = 0; r < t->n && done; r++) {
            struct sst__peer *p = &t->peers[r];
            if (!targets[r] || !p->conn)
                continue;
            if (atomic_load(&p->suspected) || atomic_load(&p->failure) ||
                fab_conn_status(p->conn))
                continue;
            if (atomic_load_explicit(&p->completed, memory_order_acquire) <
                targets[r])
                done = false;
        }
        if (done)
            return 0;
        if (sst__now_us() > deadline)
            return -ETIMEDOUT;
        wait_step(t);
    }
}

static bool sync_reached(struct sst_table *t, uint64_t target)
{
    for (uint32_t r = 0; r < t->n; r++) {
        if (r == t->my_rank)
            continue;
        struct sst__peer *p = &t->peers[r];
        if (atomic_load(&p->suspected) || atomic_load(&p->closed))
            continue;
        uint64_t v = atomic_load_explicit(sst__hdr_u64(t, r, SST__HDR_SYNC),
                                          memory_order_acquire);
        if (v < target)
            return false;
    }
    return true;
}

int sst_sync(struct sst_table *t, int timeout_ms)
{
    if (!t)
        return -EINVAL;
    if (sst__on_poll_thread(t))
        return -EDEADLK;
    uint64_t target =
        atomic_fetch_add(sst__hdr_u64(t, t->my_rank, SST__HDR_SYNC), 1) + 1;
    int rc = sst__push_header(t, true);
    if (rc)
        return rc;
    int64_t deadline =
        timeout_ms < 0 ? INT64_MAX : sst__now_us() + (int64_t)timeout_ms * 1000;
    atomic_fetch_add(&t->sync_waiters, 1);
    pthread_mutex_lock(&t->sync_lock);
    for (;;) {
        if (sync_reached(t, target)) {
            rc = 0;
            break;
        }
        int64_t now = sst__now_us();
        if (now > deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        /* The polling thread signals after pushes land; the short bound
         * covers a signal sent between our check and the wait. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 2000000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->sync_cond, &t->sync_lock, &ts);
    }
    pthread_mutex_unlock(&t->sync_lock);
    atomic_fetch_sub(&t->sync_waiters, 1);
    return rc;
}
