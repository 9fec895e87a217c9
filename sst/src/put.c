/* Pushing my row to members: sst_put*, sst_sync. */
#include "sst-private.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- staging ring ------------------------------------------------------ */

struct chunk_hdr {
    uint32_t total; /* header included, multiple of 8 */
    uint32_t refs;  /* staging lock */
};

int sst__staging_init(struct sst_table *t)
{
    struct sst__staging *s = &t->staging;
    pthread_mutex_init(&s->lock, NULL);
    size_t cap = 256 * 1024;
    size_t piece =
        t->row_stride < SST__MAX_PUSH ? t->row_stride : SST__MAX_PUSH;
    while (cap < 2 * (piece + 64))
        cap *= 2;
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, cap))
        return -ENOMEM;
    memset(buf, 0, cap);
    s->buf = buf;
    s->cap = cap;
    return fab_mr_register(t->pool, s->buf, s->cap, FAB_ACCESS_LOCAL, &s->mr);
}

void sst__staging_fini(struct sst_table *t)
{
    struct sst__staging *s = &t->staging;
    fab_mr_destroy(s->mr);
    free(s->buf);
    pthread_mutex_destroy(&s->lock);
}

static struct chunk_hdr *chunk_at(struct sst__staging *s, uint64_t pos)
{
    return (struct chunk_hdr *)(void *)(s->buf + pos % s->cap);
}

/* A chunk of len bytes (one reference held by the caller); its offset in
 * the staging region, or -1 when the ring is full. */
static int64_t chunk_alloc(struct sst__staging *s, size_t len)
{
    uint64_t total = (sizeof(struct chunk_hdr) + len + 7) & ~(uint64_t)7;
    pthread_mutex_lock(&s->lock);
    uint64_t pos = s->head % s->cap;
    if (s->cap - pos < total) {
        /* No room before the end: pad to the start. */
        uint64_t pad = s->cap - pos;
        if (s->head + pad + total - s->tail > s->cap) {
            pthread_mutex_unlock(&s->lock);
            return -1;
        }
        struct chunk_hdr *h = chunk_at(s, s->head);
        h->total = (uint32_t)pad;
        h->refs = 0;
        s->head += pad;
        if (s->tail == s->head - pad) /* ring was empty: skip the pad */
            s->tail = s->head;
        pos = 0;
    }
    if (s->head + total - s->tail > s->cap) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    struct chunk_hdr *h = chunk_at(s, s->head);
    h->total = (uint32_t)total;
    h->refs = 1;
    s->head += total;
    pthread_mutex_unlock(&s->lock);
    return (int64_t)(pos + sizeof(struct chunk_hdr));
}

static void chunk_ref(struct sst__staging *s, size_t off)
{
    pthread_mutex_lock(&s->lock);
    chunk_at(s, off - sizeof(struct chunk_hdr))->refs++;
    pthread_mutex_unlock(&s->lock);
}

static void chunk_unref(struct sst__staging *s, size_t off)
{
    pthread_mutex_lock(&s->lock);
    chunk_at(s, off - sizeof(struct chunk_hdr))->refs--;
    while (s->tail < s->head) {
        struct chunk_hdr *h = chunk_at(s, s->tail);
        if (h->refs)
            break;
        s->tail += h->total;
    }
    pthread_mutex_unlock(&s->lock);
}

/* Write completions (any progressing thread): the context goes back to its
 * peer's free list and the staging chunk loses a reference.  Failed writes
 * need nothing more: libfab fails the connection and on_failure suspects
 * the member. */
void sst__op_done(struct fab_op *op, int status)
{
    (void)status;
    struct sst__peer_op *po = (struct sst__peer_op *)op;
    struct sst__peer *p = po->peer;
    chunk_unref(&p->table->staging, po->chunk);
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
    /* A member dropped during set-up may have no region we know of. */
    return p->conn && !atomic_load(&p->suspected) && !atomic_load(&p->closed) &&
           !atomic_load(&p->failure) && !p->setup_failure;
}

/* Waits for resources (contexts, staging, provider queue): progress,
 * bounded by *deadline (set on the first call).  -EAGAIN when over. */
static int backoff(struct sst_table *t, int64_t *deadline)
{
    if (*deadline < 0)
        return -EAGAIN; /* sst_put_try: never wait */
    int64_t now = sst__now_us();
    if (!*deadline)
        *deadline = now + 1000000;
    else if (now > *deadline)
        return -EAGAIN;
    if (fab_pool_progress(t->pool) == 0)
        sched_yield();
    return 0;
}

static void note_failure(struct sst_table *t, struct sst__peer *p, int rc)
{
    int zero = 0;
    atomic_compare_exchange_strong(&p->failure, &zero, rc);
    atomic_store(&t->failure_pending, true);
    if (!sst__on_poll_thread(t))
        sst_notify(t);
}

/* push flag (never passed to libfab): count the write in posted and
 * completed, never inject it. */
#define PUSH_TRACKED 0x80000000u

/* Posts one write of chunk to p; 0 when posted or skipped. */
static int post_one(struct sst_table *t, struct sst__peer *p, size_t chunk,
                    size_t row_off, size_t len, uint64_t data, unsigned flags,
                    bool no_wait)
{
    size_t dst_off = (size_t)t->my_rank * t->row_stride + row_off;
    int64_t deadline = no_wait ? -1 : 0;
    /* A small push nobody waits for: the provider copies it before
     * fab_writedata returns, so it holds no context and no chunk. */
    bool inject = flags == 0 && len <= t->inject_max;
    flags &= ~PUSH_TRACKED;
    for (;;) {
        int rc = 0;
        bool retry = false;
        pthread_mutex_lock(&p->post_lock);
        if (!writable(p)) {
            pthread_mutex_unlock(&p->post_lock);
            return 0;
        }
        struct sst__peer_op *po = inject ? NULL : take_op(p);
        if (inject) {
            rc = fab_writedata(p->conn, t->staging.mr, chunk, len, &p->remote,
                               dst_off, data,
                               FAB_WRITE_FENCE | FAB_WRITE_INJECT, NULL);
            if (rc == 0)
                atomic_fetch_add_explicit(&t->st_puts, 1, memory_order_relaxed);
            retry = rc == -EAGAIN;
        } else if (!po) {
            retry = true;
        } else {
            po->chunk = chunk;
            chunk_ref(&t->staging, chunk);
            /* Every push is fenced: pushes to one member land in posting
             * order (free with FI_ORDER_WAW). */
            rc = fab_writedata(p->conn, t->staging.mr, chunk, len, &p->remote,
                               dst_off, data, FAB_WRITE_FENCE | flags, &po->op);
            if (rc == 0) {
                atomic_fetch_add(&p->posted, 1);
                atomic_fetch_add_explicit(&t->st_puts, 1, memory_order_relaxed);
            } else {
                chunk_unref(&t->staging, chunk);
                give_op(p, po);
                retry = rc == -EAGAIN;
            }
        }
        pthread_mutex_unlock(&p->post_lock);
        if (!retry) {
            if (rc == -ECONNRESET || rc == -EHOSTDOWN || rc == -ENOTCONN ||
                rc == -ENOENT || rc == -EPIPE) {
                /* The member is failing: suspect it on the polling
                 * thread (on_failure follows too). */
                note_failure(t, p, rc);
                return 0;
            }
            return rc;
        }
        rc = backoff(t, &deadline);
        if (rc)
            return rc;
    }
}

static int push_ranks(struct sst_table *t, const uint32_t *ranks, size_t n,
                      size_t row_off, size_t len, bool wake, unsigned flags,
                      bool no_wait)
{
    /* The receiver's libfab tag when it claimed one, else our own word. */
    uint64_t data = 0;
    if (t->use_data)
        data = ((uint64_t)t->tag << 1) | (wake ? SST__DATA_WAKE : 0);
    uint32_t wake_bit = wake ? SST__DATA_WAKE : 0;
    /* Anyone to send to? */
    bool any = false;
    size_t count = ranks ? n : t->n;
    for (size_t i = 0; i < count && !any; i++) {
        uint32_t r = ranks ? ranks[i] : (uint32_t)i;
        any = r != t->my_rank && writable(&t->peers[r]);
    }
    if (!any)
        return 0;
    int64_t deadline = no_wait ? -1 : 0;
    int64_t chunk;
    while ((chunk = chunk_alloc(&t->staging, len)) < 0) {
        int rc = backoff(t, &deadline);
        if (rc)
            return rc;
    }
    memcpy(t->staging.buf + chunk, sst__row_base(t, t->my_rank) + row_off, len);
    int first = 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t r = ranks ? ranks[i] : (uint32_t)i;
        if (r == t->my_rank)
            continue;
        const struct sst__peer *p = &t->peers[r];
        uint64_t word = t->use_data && p->fab_tag
                            ? fab_data_word(t->pool, p->fab_tag, wake_bit)
                            : data;
        int rc = post_one(t, &t->peers[r], (size_t)chunk, row_off, len, word,
                          flags, no_wait);
        if (rc && !first)
            first = rc;
    }
    chunk_unref(&t->staging, (size_t)chunk);
    return first;
}

/* Ranges longer than max_push go as several pushes, in order; only the
 * last one wakes. */
static int push_pieces(struct sst_table *t, const uint32_t *ranks, size_t n,
                       size_t row_off, size_t len, bool wake, unsigned flags,
                       bool no_wait)
{
    while (len > t->max_push) {
        int rc = push_ranks(t, ranks, n, row_off, t->max_push, false, flags,
                            no_wait);
        if (rc)
            return rc;
        row_off += t->max_push;
        len -= t->max_push;
    }
    return push_ranks(t, ranks, n, row_off, len, wake, flags, no_wait);
}

int sst__push_ranks(struct sst_table *t, const uint32_t *ranks, size_t n,
                    size_t row_off, size_t len, bool wake)
{
    return push_pieces(t, ranks, n, row_off, len, wake, 0, false);
}

int sst__push(struct sst_table *t, struct sst__peer *p, size_t row_off,
              size_t len, bool wake)
{
    return sst__push_ranks(t, &p->rank, 1, row_off, len, wake);
}

int sst__push_tracked(struct sst_table *t, struct sst__peer *p, size_t row_off,
                      size_t len, bool wake)
{
    return push_pieces(t, &p->rank, 1, row_off, len, wake, PUSH_TRACKED, false);
}

int sst__push_header(struct sst_table *t, bool wake)
{
    return sst__push_ranks(t, NULL, 0, 0, t->hdr_base, wake);
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
    return sst__push_ranks(t, ranks, n_ranks, t->hdr_size + offset, len, true);
}

int sst_put(struct sst_table *t, size_t offset, size_t len)
{
    if (!t)
        return -EINVAL;
    int rc = check_range(t, offset, len);
    if (rc)
        return rc;
    return sst__push_ranks(t, NULL, 0, t->hdr_size + offset, len, true);
}

int sst_put_try(struct sst_table *t, const uint32_t *ranks, size_t n_ranks,
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
    return push_pieces(t, ranks, n_ranks, t->hdr_size + offset, len, true, 0,
                       true);
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
        /* Delivery completion: the peer's provider acknowledges once the
         * bytes are in its memory. */
        rc = push_pieces(t, NULL, 0, t->hdr_size + offset, len, true,
                         FAB_WRITE_DELIVERED, false);
        for (uint32_t r = 0; r < t->n; r++)
            if (r != t->my_rank)
                targets[r] = atomic_load(&t->peers[r].posted);
    } else {
        for (size_t i = 0; i < n_ranks; i++)
            if (ranks[i] >= t->n)
                return -EINVAL;
        rc = push_pieces(t, ranks, n_ranks, t->hdr_size + offset, len, true,
                         FAB_WRITE_DELIVERED, false);
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

/* Waits on sync_cond until done(t, arg) or the deadline. */
static int wait_for(struct sst_table *t,
                    bool (*done)(struct sst_table *, void *), void *arg,
                    int timeout_ms)
{
    int64_t deadline =
        timeout_ms < 0 ? INT64_MAX : sst__now_us() + (int64_t)timeout_ms * 1000;
    int rc;
    atomic_fetch_add(&t->sync_waiters, 1);
    pthread_mutex_lock(&t->sync_lock);
    for (;;) {
        if (done(t, arg)) {
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
        sst__abstime_after_us(2000, &ts);
        pthread_cond_timedwait(&t->sync_cond, &t->sync_lock, &ts);
    }
    pthread_mutex_unlock(&t->sync_lock);
    atomic_fetch_sub(&t->sync_waiters, 1);
    return rc;
}

static bool sync_done(struct sst_table *t, void *arg)
{
    return sync_reached(t, *(uint64_t *)arg);
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
    return wait_for(t, sync_done, &target, timeout_ms);
}

/* sst_sync_ranks: one counter per pair of members (my row's pair_sync[r]
 * counts my barriers with r), so barriers over different subsets never
 * disturb each other or sst_sync. */
struct pair_wait {
    bool want[SST_MAX_MEMBERS];
    uint64_t target[SST_MAX_MEMBERS];
};

static bool pairs_done(struct sst_table *t, void *arg)
{
    struct pair_wait *w = arg;
    for (uint32_t r = 0; r < t->n; r++) {
        if (!w->want[r])
            continue;
        struct sst__peer *p = &t->peers[r];
        if (atomic_load(&p->suspected) || atomic_load(&p->closed))
            continue;
        uint64_t v = atomic_load_explicit(sst__pair_sync(t, r, t->my_rank),
                                          memory_order_acquire);
        if (v < w->target[r])
            return false;
    }
    return true;
}

int sst_sync_ranks(struct sst_table *t, const uint32_t *ranks, size_t n_ranks,
                   int timeout_ms)
{
    if (!t || (!ranks && n_ranks))
        return -EINVAL;
    for (size_t i = 0; i < n_ranks; i++)
        if (ranks[i] >= t->n)
            return -EINVAL;
    if (sst__on_poll_thread(t))
        return -EDEADLK;
    struct pair_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    uint32_t list[SST_MAX_MEMBERS];
    size_t count = 0;
    for (size_t i = 0; i < (ranks ? n_ranks : t->n); i++) {
        uint32_t r = ranks ? ranks[i] : (uint32_t)i;
        if (r == t->my_rank || w->want[r])
            continue;
        w->want[r] = true;
        w->target[r] =
            atomic_fetch_add(sst__pair_sync(t, t->my_rank, r), 1) + 1;
        list[count++] = r;
    }
    int rc = 0;
    if (count)
        rc = sst__push_ranks(t, list, count, t->pair_off,
                             (size_t)t->n * sizeof(uint64_t), true);
    if (rc == 0)
        rc = wait_for(t, pairs_done, w, timeout_ms);
    free(w);
    return rc;
}
