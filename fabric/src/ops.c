/* Data-plane operations and progress. */
#include "fab-private.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define RX_DATA_MARK ((void *)1)

static int check_conn(struct fab_conn *conn)
{
    if (!conn)
        return -EINVAL;
    int st = atomic_load_explicit(&conn->status, memory_order_acquire);
    if (st)
        return st;
    if (!conn->ep)
        return -ENOTCONN;
    return 0;
}

static struct fab_op *prepare_op(struct fab_conn *conn, struct fab_op *op)
{
    if (!op)
        return &conn->anon_op;
    op->node_id = conn->node_id;
    op->status = 0;
    op->len = 0;
    op->data = 0;
    op->internal[0] = conn;
    op->internal[1] = NULL;
    return op;
}

int fab__post_rx_data(struct fab_conn *conn, struct fab_op *op)
{
    op->internal[0] = conn;
    op->internal[1] = RX_DATA_MARK;
    struct fi_msg msg = {.context = op};
    ssize_t rc = fi_recvmsg(conn->ep, &msg, FI_COMPLETION);
    return fab__fi_err(rc);
}

/* Waits until every earlier operation on conn completed, driving progress
 * when no other thread does: the fallback ordering for providers without
 * FI_ORDER_WAW and FI_FENCE. */
static int drain_cq(struct fab_pool *pool, struct fab_conn *conn);

static bool progressing_here(struct fab_pool *pool)
{
    return atomic_load(&pool->progress_owned) &&
           pthread_equal(atomic_load(&pool->progress_owner), pthread_self());
}

static int drain_outstanding(struct fab_conn *conn)
{
    while (atomic_load(&conn->outstanding) > 0) {
        int st = atomic_load(&conn->status);
        if (st)
            return st;
        /* From inside a completion callback we already own progress: read
         * this connection's queue directly (nested callbacks may run). */
        int n = progressing_here(conn->pool) ? drain_cq(conn->pool, conn)
                                             : fab_pool_progress(conn->pool);
        if (n == 0)
            sched_yield();
    }
    return 0;
}

static int post_write(struct fab_conn *conn, const struct fab_mr *src,
                      size_t src_off, size_t len, const struct fab_mr_desc *dst,
                      uint64_t dst_off, bool with_data, uint64_t data,
                      unsigned flags, struct fab_op *op)
{
    int rc = check_conn(conn);
    if (rc)
        return rc;
    if (!src || !dst ||
        (flags & ~(FAB_WRITE_FENCE | FAB_WRITE_DELIVERED | FAB_WRITE_INJECT)))
        return -EINVAL;
    bool inject = flags & FAB_WRITE_INJECT;
    if (inject && (op || (flags & FAB_WRITE_DELIVERED)))
        return -EINVAL;
    if (src->pool != conn->pool)
        return -EINVAL; /* registered with another pool's domain */
    if (src_off > src->len || len > src->len - src_off)
        return -ERANGE;
    struct fab_pool *pool = conn->pool;
    if (with_data) {
        size_t sz = fab__cq_data_size(pool);
        if (sz == 0 || (sz < 8 && (data >> (8 * sz)) != 0))
            return -ERANGE;
    }
    if (inject && len > fab_pool_inject_size(pool))
        return -EMSGSIZE;
    uint64_t raddr;
    rc = fab_mr_remote_addr(&pool->rules, dst, dst_off, len, &raddr);
    if (rc)
        return rc;
    uint64_t fi_flags = FI_COMPLETION;
    if (flags & FAB_WRITE_DELIVERED)
        fi_flags |= FI_DELIVERY_COMPLETE;
    if (with_data)
        fi_flags |= FI_REMOTE_CQ_DATA;
    if ((flags & FAB_WRITE_FENCE) && !pool->ordered_writes) {
        if (pool->fence) {
            fi_flags |= FI_FENCE;
        } else {
            rc = drain_outstanding(conn);
            if (rc)
                return rc;
        }
    }
    /* A write nobody waits for needs no local completion, unless the
     * ordering fallback must count it: that saves the provider a queue
     * entry and a wake-up per push.  Errors still come back.  Only where
     * we progress by hand (tcp): the sockets provider's own threads were
     * measured slower with it. */
    bool silent =
        inject || (!op && pool->ordered_writes && pool->manual_progress &&
                   !(flags & FAB_WRITE_DELIVERED));
    if (!silent &&
        atomic_load(&conn->outstanding) >= pool->opts.max_outstanding)
        return -EAGAIN;
    struct fab_op *ctx = silent ? &conn->silent_op : prepare_op(conn, op);
    if (!silent)
        fi_flags |= FI_COMPLETION;
    else
        fi_flags &= ~(uint64_t)FI_COMPLETION;
    if (inject)
        fi_flags |= FI_INJECT; /* bytes copied before fi_writemsg returns */
    struct iovec iov = {.iov_base = (char *)src->buf + src_off, .iov_len = len};
    void *desc = src->desc;
    struct fi_rma_iov rma = {.addr = raddr, .len = len, .key = dst->key};
    struct fi_msg_rma msg = {.msg_iov = &iov,
                             .desc = &desc,
                             .iov_count = 1,
                             .addr = 0,
                             .rma_iov = &rma,
                             .rma_iov_count = 1,
                             .context = ctx,
                             .data = data};
    if (!silent)
        atomic_fetch_add(&conn->outstanding, 1);
    ssize_t ret;
    int tries = 0;
    for (;;) {
        ret = fi_writemsg(conn->ep, &msg, fi_flags);
        if (ret != -FI_EAGAIN || ++tries > 100)
            break;
        fab_pool_progress(pool); /* make room in the provider's queue */
    }
    if (ret) {
        if (!silent)
            atomic_fetch_sub(&conn->outstanding, 1);
        return ret == -FI_EAGAIN ? -EAGAIN : (int)ret;
    }
    return 0;
}

int fab_write(struct fab_conn *conn, const struct fab_mr *src, size_t src_off,
              size_t len, const struct fab_mr_desc *dst, uint64_t dst_off,
              unsigned flags, struct fab_op *op)
{
    return post_write(conn, src, src_off, len, dst, dst_off, false, 0, flags,
                      op);
}

int fab_writedata(struct fab_conn *conn, const struct fab_mr *src,
                  size_t src_off, size_t len, const struct fab_mr_desc *dst,
                  uint64_t dst_off, uint64_t data, unsigned flags,
                  struct fab_op *op)
{
    return post_write(conn, src, src_off, len, dst, dst_off, true, data, flags,
                      op);
}

static int post_msg(struct fab_conn *conn, const struct fab_mr *mr, size_t off,
                    size_t len, struct fab_op *op, bool is_send, unsigned flags)
{
    int rc = check_conn(conn);
    if (rc)
        return rc;
    if (!mr || (flags & ~FAB_WRITE_DELIVERED) || mr->pool != conn->pool)
        return -EINVAL;
    if (off > mr->len || len > mr->len - off)
        return -ERANGE;
    struct fab_pool *pool = conn->pool;
    if (!is_send && pool->rules.rx_cq_data)
        return -ENOTSUP;
    if (atomic_load(&conn->outstanding) >= pool->opts.max_outstanding)
        return -EAGAIN;
    uint64_t send_flags = FI_COMPLETION;
    if (flags & FAB_WRITE_DELIVERED)
        send_flags |= FI_DELIVERY_COMPLETE;
    struct fab_op *ctx = prepare_op(conn, op);
    struct iovec iov = {.iov_base = (char *)mr->buf + off, .iov_len = len};
    void *desc = mr->desc;
    struct fi_msg msg = {.msg_iov = &iov,
                         .desc = &desc,
                         .iov_count = 1,
                         .addr = 0,
                         .context = ctx,
                         .data = 0};
    atomic_fetch_add(&conn->outstanding, 1);
    ssize_t ret;
    int tries = 0;
    for (;;) {
        ret = is_send ? fi_sendmsg(conn->ep, &msg, send_flags)
                      : fi_recvmsg(conn->ep, &msg, FI_COMPLETION);
        if (ret != -FI_EAGAIN || ++tries > 100)
            break;
        fab_pool_progress(pool);
    }
    if (ret) {
        atomic_fetch_sub(&conn->outstanding, 1);
        return ret == -FI_EAGAIN ? -EAGAIN : (int)ret;
    }
    return 0;
}

int fab_send(struct fab_conn *conn, const struct fab_mr *src, size_t off,
             size_t len, struct fab_op *op)
{
    return post_msg(conn, src, off, len, op, true, 0);
}

int fab_send_flags(struct fab_conn *conn, const struct fab_mr *src, size_t off,
                   size_t len, unsigned flags, struct fab_op *op)
{
    return post_msg(conn, src, off, len, op, true, flags);
}

int fab_recv(struct fab_conn *conn, const struct fab_mr *dst, size_t off,
             size_t len, struct fab_op *op)
{
    return post_msg(conn, dst, off, len, op, false, 0);
}

/* ---- progress --------------------------------------------------------- */

static void complete(struct fab_conn *conn, struct fab_op *op, int status,
                     size_t len, uint64_t data)
{
    if (op->internal[1] == RX_DATA_MARK) {
        if (status == 0) {
            fab__deliver_data(conn->pool, conn, data);
            if (atomic_load(&conn->status) == 0)
                fab__post_rx_data(conn, op);
        }
        return;
    }
    if (op == &conn->silent_op)
        return; /* uncounted; its error already failed the connection */
    atomic_fetch_sub(&conn->outstanding, 1);
    if (op == &conn->anon_op)
        return;
    op->status = status;
    op->len = len;
    op->data = data;
    if (op->done)
        op->done(op, status);
}

static int drain_cq(struct fab_pool *pool, struct fab_conn *conn)
{
    int handled = 0;
    for (;;) {
        struct fi_cq_data_entry e[16];
        ssize_t n = fi_cq_read(conn->cq, e, 16);
        if (n == -FI_EAGAIN)
            return handled;
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry err;
            memset(&err, 0, sizeof(err));
            if (fi_cq_readerr(conn->cq, &err, 0) < 0)
                return handled;
            int status = err.err ? -err.err : -EIO;
            if (err.err != FI_ECANCELED) {
                char buf[128];
                const char *detail = fi_cq_strerror(
                    conn->cq, err.prov_errno, err.err_data, buf, sizeof(buf));
                fab__log(pool, LOG_NOTICE, "node %u: operation failed: %s (%s)",
                         conn->node_id, fi_strerror(err.err),
                         detail ? detail : "");
                pthread_mutex_lock(&pool->lock);
                fab__conn_fail_locked(pool, conn, -ECONNRESET);
                pthread_mutex_unlock(&pool->lock);
            }
            if (err.op_context)
                complete(conn, err.op_context, status, 0, 0);
            handled++;
            continue;
        }
        if (n < 0) {
            fab__log(pool, LOG_ERR, "node %u: fi_cq_read: %s", conn->node_id,
                     fi_strerror((int)-n));
            return handled;
        }
        for (ssize_t i = 0; i < n; i++) {
            handled++;
            struct fab_op *op = e[i].op_context;
            if (op)
                complete(conn, op, 0, e[i].len, e[i].data);
            else if (e[i].flags & FI_REMOTE_CQ_DATA)
                fab__deliver_data(pool, conn, e[i].data); /* no receive */
        }
        /* A short batch emptied the queue.  Reading it again would run the
         * provider's progress once more (on tcp an epoll_wait, and a read
         * of the completion signal the batch left) before the caller gets
         * to answer what just arrived: the next pass does that, after. */
        if (n < 16)
            return handled;
    }
}

void fab__progress_idle(struct fab_pool *pool)
{
    /* Connections nobody borrows have nobody to progress them; without
     * this a pooled connection to a peer that died or restarted would
     * never see its FI_SHUTDOWN (tcp) and would block the peer's new
     * bootstrap (BUSY) forever.  They have no users, so no callbacks. */
    if (pthread_mutex_trylock(&pool->progress_lock) != 0)
        return;
    atomic_store(&pool->progress_owner, pthread_self());
    atomic_store(&pool->progress_owned, true);
    for (size_t i = 0; i < pool->n_progress; i++) {
        struct fab_conn *c = pool->progress_conns[i];
        pthread_mutex_lock(&pool->lock);
        bool idle = c->refs == 0 && c->state == FAB__CONN_LIVE;
        pthread_mutex_unlock(&pool->lock);
        if (idle)
            drain_cq(pool, c);
    }
    atomic_store(&pool->progress_owned, false);
    pthread_mutex_unlock(&pool->progress_lock);
}

int fab_pool_progress(struct fab_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (progressing_here(pool))
        return 0; /* from inside a callback */
    if (pthread_mutex_trylock(&pool->progress_lock) != 0)
        return 0;
    atomic_store(&pool->progress_owner, pthread_self());
    atomic_store(&pool->progress_owned, true);
    int total = 0;
    /* The array may change only under progress_lock, which we hold.  In
     * turn from where the last call stopped, until a connection had
     * completions: the caller reacts to them (posts an answer) before the
     * idle connections behind it cost it a provider poll each; the next
     * call starts after it, so none waits behind a busy one. */
    size_t n = pool->n_progress;
    for (size_t k = 0; k < n; k++) {
        size_t i = (pool->progress_next + k) % n;
        total += drain_cq(pool, pool->progress_conns[i]);
        if (total > 0) {
            pool->progress_next = (i + 1) % n;
            break;
        }
    }
    atomic_store(&pool->progress_owned, false);
    pthread_mutex_unlock(&pool->progress_lock);
    return total;
}

int fab_pool_trywait(struct fab_pool *pool)
{
    if (!pool)
        return -EINVAL;
    if (pthread_mutex_trylock(&pool->progress_lock) != 0)
        return -EAGAIN;
    int rc = 0;
    size_t n = pool->n_progress;
    if (n > 0) {
        struct fid *stack[64];
        struct fid **fids = n <= 64 ? stack : malloc(n * sizeof(*fids));
        if (!fids) {
            rc = -EAGAIN;
        } else {
            for (size_t i = 0; i < n; i++)
                fids[i] = &pool->progress_conns[i]->cq->fid;
            int t = fi_trywait(pool->fabric, fids, (int)n);
            rc = t == FI_SUCCESS ? 0 : -EAGAIN;
            if (fids != stack)
                free(fids);
        }
    }
    pthread_mutex_unlock(&pool->progress_lock);
    return rc;
}

int fab_pool_wait_fd(const struct fab_pool *pool)
{
    return pool ? pool->user_wait_fd : -EINVAL;
}

void fab_pool_wake(struct fab_pool *pool)
{
    if (!pool)
        return;
    uint64_t one = 1;
    ssize_t n = write(pool->user_wake_fd, &one, sizeof(one));
    (void)n;
}

int fab_pool_progress_wait(struct fab_pool *pool, int spin_us, int timeout_ms)
{
    if (!pool)
        return -EINVAL;
    int64_t start = fab__now_us();
    for (;;) {
        int n = fab_pool_progress(pool);
        if (n != 0)
            return n;
        if (fab__now_us() - start >= spin_us)
            break;
        /* Spinning: stay polite to the provider's and peers' threads. */
        sched_yield();
    }
    if (timeout_ms == 0)
        return 0;
    if (fab_pool_trywait(pool) == 0) {
        struct epoll_event evs[8];
        int n = epoll_wait(pool->user_wait_fd, evs, 8, timeout_ms);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t r = read(pool->user_wake_fd, &v, sizeof(v));
                (void)r;
            }
        }
    }
    return fab_pool_progress(pool);
}
