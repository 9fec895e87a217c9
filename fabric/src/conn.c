/* Connections: endpoints, borrowing, the dialing side of the bootstrap. */
#include "fab-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <unistd.h>

/* ---- locking helpers: a thread already progressing (inside a callback)
 * holds progress_lock and must not take it again. */

static bool progress_enter(struct fab_pool *pool)
{
    if (atomic_load(&pool->progress_owned) &&
        pthread_equal(atomic_load(&pool->progress_owner), pthread_self()))
        return false;
    pthread_mutex_lock(&pool->progress_lock);
    return true;
}

static void progress_leave(struct fab_pool *pool, bool taken)
{
    if (taken)
        pthread_mutex_unlock(&pool->progress_lock);
}

void fab__progress_add(struct fab_pool *pool, struct fab_conn *conn)
{
    bool taken = progress_enter(pool);
    pthread_mutex_lock(&pool->lock);
    if (!conn->in_progress_set) {
        if (pool->n_progress == pool->cap_progress) {
            size_t ncap = pool->cap_progress ? pool->cap_progress * 2 : 16;
            struct fab_conn **n =
                realloc(pool->progress_conns, ncap * sizeof(*n));
            if (n) {
                pool->progress_conns = n;
                pool->cap_progress = ncap;
            }
        }
        if (pool->n_progress < pool->cap_progress) {
            pool->progress_conns[pool->n_progress++] = conn;
            conn->in_progress_set = true;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    progress_leave(pool, taken);
}

void fab__progress_remove(struct fab_pool *pool, struct fab_conn *conn)
{
    bool taken = progress_enter(pool);
    pthread_mutex_lock(&pool->lock);
    for (size_t i = 0; i < pool->n_progress; i++) {
        if (pool->progress_conns[i] == conn) {
            pool->progress_conns[i] = pool->progress_conns[--pool->n_progress];
            break;
        }
    }
    conn->in_progress_set = false;
    pthread_mutex_unlock(&pool->lock);
    progress_leave(pool, taken);
}

struct fab_conn *fab__conn_find(struct fab_pool *pool, uint32_t node_id)
{
    /* A failed entry may linger until reaped; a newer one is preferred. */
    struct fab_conn *failed = NULL;
    for (struct fab_conn *c = pool->conns; c; c = c->next) {
        if (c->node_id != node_id)
            continue;
        if (c->state != FAB__CONN_FAILED)
            return c;
        if (!failed || c->refs > 0)
            failed = c;
    }
    return failed;
}

int fab__conn_open_ep(struct fab_pool *pool, struct fab_conn *conn,
                      struct fi_info *info)
{
    struct fi_cq_attr cq_attr;
    memset(&cq_attr, 0, sizeof(cq_attr));
    cq_attr.size = pool->opts.cq_size;
    cq_attr.format = FI_CQ_FORMAT_DATA;
    cq_attr.wait_obj = FI_WAIT_FD;
    int rc = fi_cq_open(pool->domain, &cq_attr, &conn->cq, conn);
    if (rc)
        return rc;
    rc = fi_control(&conn->cq->fid, FI_GETWAIT, &conn->cq_fd);
    if (rc)
        goto fail;
    rc = fi_endpoint(pool->domain, info, &conn->ep, conn);
    if (rc)
        goto fail;
    rc = fi_ep_bind(conn->ep, &pool->eq->fid, 0);
    if (!rc)
        rc = fi_ep_bind(conn->ep, &conn->cq->fid,
                        FI_TRANSMIT | FI_RECV | FI_SELECTIVE_COMPLETION);
    if (!rc)
        rc = fi_enable(conn->ep);
    if (rc)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = conn};
    if (epoll_ctl(pool->user_wait_fd, EPOLL_CTL_ADD, conn->cq_fd, &ev) < 0) {
        rc = -errno;
        goto fail;
    }
    if (pool->rules.rx_cq_data) {
        for (int i = 0; i < FAB__RX_DATA_CREDITS; i++) {
            rc = fab__post_rx_data(conn, &conn->rx_data_ops[i]);
            if (rc)
                goto fail;
        }
    }
    fab__progress_add(pool, conn);
    return 0;
fail:
    if (conn->cq_fd >= 0)
        epoll_ctl(pool->user_wait_fd, EPOLL_CTL_DEL, conn->cq_fd, NULL);
    if (conn->ep)
        fi_close(&conn->ep->fid);
    if (conn->cq)
        fi_close(&conn->cq->fid);
    conn->ep = NULL;
    conn->cq = NULL;
    conn->cq_fd = -1;
    return rc;
}

void fab__conn_close(struct fab_pool *pool, struct fab_conn *conn)
{
    fab__progress_remove(pool, conn);
    if (conn->cq_fd >= 0)
        epoll_ctl(pool->user_wait_fd, EPOLL_CTL_DEL, conn->cq_fd, NULL);
    if (conn->ep) {
        if (conn->state == FAB__CONN_LIVE)
            fi_shutdown(conn->ep, 0);
        fi_close(&conn->ep->fid);
    }
    if (conn->cq)
        fi_close(&conn->cq->fid);
    free(conn);
}

void fab__conn_fail_locked(struct fab_pool *pool, struct fab_conn *conn,
                           int reason)
{
    if (conn->state == FAB__CONN_FAILED)
        return;
    bool was_live = conn->state == FAB__CONN_LIVE;
    conn->state = FAB__CONN_FAILED;
    atomic_store_explicit(&conn->status, reason, memory_order_release);
    if (was_live) {
        pool->stats.live--;
        pool->stats.failures++;
        if (conn->ep)
            fi_shutdown(conn->ep, 0); /* tell the peer, if it listens */
    }
    atomic_store(&pool->failure_pending, true);
    pthread_cond_broadcast(&pool->cond);
    fab__pool_kick(pool);
}

/* ---- users ------------------------------------------------------------ */

int fab_user_create(struct fab_pool *pool, const struct fab_user_callbacks *cbs,
                    void *ctx, struct fab_user **out)
{
    if (!pool || !out)
        return -EINVAL;
    struct fab_user *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->pool = pool;
    if (cbs)
        u->cbs = *cbs;
    u->ctx = ctx;
    pthread_mutex_lock(&pool->lock);
    u->next = pool->users;
    pool->users = u;
    fab__data_user_added(pool, u);
    pthread_mutex_unlock(&pool->lock);
    *out = u;
    return 0;
}

/* Drops one reference (pool->lock held). */
static void unref_locked(struct fab_pool *pool, struct fab_conn *c)
{
    if (--c->refs == 0 && c->state == FAB__CONN_FAILED) {
        c->reported = true;
        fab__pool_kick(pool); /* the pool thread frees it */
    }
}

void fab_user_destroy(struct fab_user *user)
{
    if (!user)
        return;
    struct fab_pool *pool = user->pool;
    bool on_pool_thread = pthread_equal(pthread_self(), pool->thread);
    /* No new on_failure call of this user starts; wait for the running
     * one (only the pool thread runs them; on it, a call of this user is
     * further up our own stack, so the user is freed when it returns). */
    pthread_mutex_lock(&pool->lock);
    user->dying = true;
    while (!on_pool_thread && user->in_cb > 0)
        pthread_cond_wait(&pool->cb_cond, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    bool taken = progress_enter(pool);
    pthread_mutex_lock(&pool->lock);
    for (struct fab_user **pp = &pool->users; *pp; pp = &(*pp)->next) {
        if (*pp == user) {
            *pp = user->next;
            break;
        }
    }
    fab__data_user_removed(pool, user);
    while (user->borrows) {
        struct fab_borrow_rec *r = user->borrows;
        user->borrows = r->next;
        for (int i = 0; i < r->count; i++)
            unref_locked(pool, r->conn);
        free(r);
    }
    bool deferred = user->in_cb > 0;
    if (deferred)
        user->free_when_idle = true;
    pthread_mutex_unlock(&pool->lock);
    progress_leave(pool, taken);
    if (!deferred)
        free(user);
}

static int add_borrow_locked(struct fab_user *user, struct fab_conn *c)
{
    for (struct fab_borrow_rec *r = user->borrows; r; r = r->next) {
        if (r->conn == c) {
            r->count++;
            c->refs++;
            return 0;
        }
    }
    struct fab_borrow_rec *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->conn = c;
    r->count = 1;
    r->next = user->borrows;
    user->borrows = r;
    c->refs++;
    return 0;
}

void fab_release(struct fab_user *user, struct fab_conn *conn)
{
    if (!user || !conn)
        return;
    struct fab_pool *pool = user->pool;
    pthread_mutex_lock(&pool->lock);
    for (struct fab_borrow_rec **pp = &user->borrows; *pp; pp = &(*pp)->next) {
        struct fab_borrow_rec *r = *pp;
        if (r->conn != conn)
            continue;
        unref_locked(pool, conn);
        if (--r->count == 0) {
            *pp = r->next;
            free(r);
        }
        break;
    }
    pthread_mutex_unlock(&pool->lock);
}

uint32_t fab_conn_node_id(const struct fab_conn *conn)
{
    return conn ? conn->node_id : UINT32_MAX;
}

int fab_conn_status(const struct fab_conn *conn)
{
    if (!conn)
        return -EINVAL;
    return atomic_load_explicit(&((struct fab_conn *)conn)->status,
                                memory_order_acquire);
}

size_t fab_conn_outstanding(const struct fab_conn *conn)
{
    return conn ? atomic_load(&((struct fab_conn *)conn)->outstanding) : 0;
}

int fab_pool_fail_peer(struct fab_pool *pool, uint32_t node_id, int reason)
{
    if (!pool || reason >= 0)
        return -EINVAL;
    int rc = -ENOENT;
    pthread_mutex_lock(&pool->lock);
    for (struct fab_conn *c = pool->conns; c; c = c->next) {
        if (c->node_id == node_id && c->state != FAB__CONN_FAILED) {
            fab__conn_fail_locked(pool, c, reason);
            rc = 0;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

/* ---- dialing ---------------------------------------------------------- */

static int cond_wait_until(struct fab_pool *pool, int64_t deadline_ms)
{
    int64_t now = fab__now_ms();
    if (now >= deadline_ms)
        return -ETIMEDOUT;
    int64_t wait = deadline_ms - now;
    if (wait > 50)
        wait = 50; /* re-check now and then: states also change by time */
    struct timespec ts;
    fab__abstime_after_ms(wait, &ts);
    pthread_cond_timedwait(&pool->cond, &pool->lock, &ts);
    return 0;
}

/* Bootstrap exchange + fi_connect for an entry in DIALING state.  Returns 0
 * once the connect request is posted (or the peer dials us instead:
 * *wait_incoming), else an error. */
static int dial(struct fab_pool *pool, struct fab_conn *c, uint64_t token,
                const char *host, uint16_t port, int64_t deadline,
                bool *wait_incoming, struct fab_error *err)
{
    /* token is ours: c->token may be rewritten under pool->lock when the
     * peer's own attempt takes the entry over. */
    for (;;) {
        struct fab__frame hello, f;
        fab__frame_init(&hello, FAB__MSG_HELLO);
        hello.token = token;
        hello.addr_len = (uint16_t)pool->pep_addr_len;
        memcpy(hello.addr, pool->pep_addr, pool->pep_addr_len);
        uint8_t buf[FAB__FRAME_MAX];
        int rc = fab__boot_request(pool, host, port, c->node_id, &hello, buf,
                                   sizeof(buf), &f, deadline, err);
        if (rc == -EACCES || rc == -EPROTO)
            return rc; /* err and the log say why */
        if (rc < 0) {
            if (rc == -ECONNRESET)
                rc = -ECONNREFUSED; /* closed without a reply */
            fab__set_error(err, rc, "bootstrap with node %u at %s:%u: %s",
                           c->node_id, host, (unsigned)port,
                           rc == -EBADMSG ? "malformed reply"
                                          : fab_strerror(rc));
            return rc;
        }
        char msg[160];
        enum fab__field bad =
            fab__frame_check(&f, pool->opts.fingerprint, msg, sizeof(msg));
        if (bad == FAB__F_NONE && f.type != FAB__MSG_REPLY) {
            fab__set_error(err, -EPROTO, "node %u: unexpected frame type %u",
                           c->node_id, f.type);
            return -EPROTO;
        }
        if (bad == FAB__F_NONE && f.status == FAB__ST_MISMATCH) {
            bad = (enum fab__field)f.field;
            snprintf(msg, sizeof(msg), "%s differs (as the peer sees it)",
                     fab__field_name(bad));
        }
        if (bad == FAB__F_NONE && f.src_node != c->node_id) {
            bad = FAB__F_NODE_ID;
            snprintf(msg, sizeof(msg),
                     "node id differs (expected %u, "
                     "peer is %u)",
                     c->node_id, f.src_node);
        }
        if (bad != FAB__F_NONE) {
            fab__set_error(err, -EPROTO, "bootstrap with node %u: %s",
                           c->node_id, msg);
            fab__log(pool, LOG_ERR, "bootstrap with node %u: %s", c->node_id,
                     msg);
            return -EPROTO;
        }
        if (f.status == FAB__ST_DUPLICATE) {
            *wait_incoming = true;
            return 0;
        }
        /* Our entry may have been taken over by the peer's own attempt
         * (it has the lower id): then that one becomes the connection. */
        pthread_mutex_lock(&pool->lock);
        bool taken_over = c->state != FAB__CONN_DIALING;
        pthread_mutex_unlock(&pool->lock);
        if (taken_over) {
            *wait_incoming = true;
            return 0;
        }
        if (f.status == FAB__ST_BUSY) {
            /* The peer still holds an old connection to us; it goes away
             * when its failure is noticed and released. */
            if (fab__now_ms() + 20 >= deadline) {
                fab__set_error(err, -ETIMEDOUT,
                               "node %u still holds an older connection",
                               c->node_id);
                return -ETIMEDOUT;
            }
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        if (f.status != FAB__ST_OK || f.addr_len == 0) {
            fab__set_error(err, -EPROTO, "node %u: bad bootstrap status %u",
                           c->node_id, f.status);
            return -EPROTO;
        }
        /* A wildcard fabric address means "where you reached me". */
        if (f.addr_len >= sizeof(struct sockaddr_in)) {
            struct sockaddr_in sin;
            memcpy(&sin, f.addr, sizeof(sin));
            if (sin.sin_family == AF_INET &&
                sin.sin_addr.s_addr == htonl(INADDR_ANY) &&
                inet_pton(AF_INET, host, &sin.sin_addr) == 1)
                memcpy(f.addr, &sin, sizeof(sin));
        }
        pthread_mutex_lock(&pool->lock);
        if (c->state != FAB__CONN_DIALING) {
            pthread_mutex_unlock(&pool->lock);
            *wait_incoming = true;
            return 0;
        }
        pool->stats.bootstraps_out++;
        c->state = FAB__CONN_CONNECTING;
        pthread_mutex_unlock(&pool->lock);
        rc = fab__conn_open_ep(pool, c, pool->info);
        if (rc == 0) {
            uint8_t param[12];
            mutils_store_le32(param, pool->opts.node_id);
            mutils_store_le64(param + 4, token);
            rc = fi_connect(c->ep, f.addr, param, sizeof(param));
        }
        if (rc) {
            fab__set_error(err, rc, "connecting to node %u: %s", c->node_id,
                           fi_strerror(-rc));
            return rc;
        }
        return 0;
    }
}

/* fab_borrow, phase 1: the arguments (an empty host is none). */
static int borrow_validate(struct fab_user *user, uint32_t node_id,
                           const char **host, struct fab_conn **out,
                           struct fab_error *err)
{
    if (out)
        *out = NULL;
    if (!user || !out) {
        fab__set_error(err, -EINVAL, "missing user or output");
        return -EINVAL;
    }
    if (*host && !(*host)[0])
        *host = NULL; /* "" is no address either */
    if (*host && strnlen(*host, sizeof(((struct fab_conn *)0)->host)) >=
                     sizeof(((struct fab_conn *)0)->host)) {
        fab__set_error(err, -EINVAL, "node %u: host name too long", node_id);
        return -EINVAL;
    }
    if (node_id == user->pool->opts.node_id) {
        fab__set_error(err, -EINVAL, "node %u is this pool's own id", node_id);
        return -EINVAL;
    }
    return 0;
}

/* Phase 2 (pool->lock held, kept): a live connection borrowed, or a
 * refusal (*done, the result returned), or a wait while someone sets one
 * up; *done false when this call must dial. */
static int borrow_wait_locked(struct fab_user *user, uint32_t node_id,
                              int64_t start, int64_t deadline,
                              struct fab_conn **out, bool *done,
                              struct fab_error *err)
{
    struct fab_pool *pool = user->pool;
    for (;;) {
        struct fab_conn *c = fab__conn_find(pool, node_id);
        if (c && c->state == FAB__CONN_LIVE) {
            *done = true;
            int rc = add_borrow_locked(user, c);
            if (rc == 0)
                *out = c;
            return rc;
        }
        if (c && c->state == FAB__CONN_FAILED && c->refs > 0) {
            *done = true;
            fab__set_error(err, -EHOSTDOWN,
                           "node %u: connection failed (%s) and is still "
                           "held",
                           node_id, fab_strerror(atomic_load(&c->status)));
            return -EHOSTDOWN;
        }
        if (pthread_equal(pthread_self(), pool->thread)) {
            /* From on_failure (forbidden): set-up needs this very thread
             * (bootstrap server, connection events); waiting here would
             * stall it, and every failure report, until the timeout. */
            *done = true;
            fab__set_error(err, -EDEADLK,
                           "node %u: borrow from the pool's thread needs "
                           "a live connection",
                           node_id);
            return -EDEADLK;
        }
        if (c && c->state != FAB__CONN_FAILED) {
            /* Someone (us or the peer) is setting it up: wait. */
            if (cond_wait_until(pool, deadline) < 0) {
                *done = true;
                fab__set_error(err, -ETIMEDOUT,
                               "node %u: connection set-up timed out", node_id);
                return -ETIMEDOUT;
            }
            continue;
        }
        /* The peer's HELLO was answered a moment ago: its connection
         * request is on its way, and dialing now would cross it.  Wait a
         * little (only for HELLOs older than this borrow, so a spoofer
         * repeating HELLOs delays it at most FAB__PENDING_GRACE_MS), then
         * dial: a real request still takes our DIALING entry over. */
        int64_t grace = fab__pending_grace(pool, node_id, start, fab__now_ms());
        if (grace) {
            if (cond_wait_until(pool, grace < deadline ? grace : deadline) <
                    0 &&
                fab__now_ms() >= deadline) {
                *done = true;
                fab__set_error(err, -ETIMEDOUT,
                               "node %u: connection set-up timed out", node_id);
                return -ETIMEDOUT;
            }
            continue;
        }
        *done = false; /* nobody sets it up: dial */
        return 0;
    }
}

/* Phase 3 (pool->lock held): a DIALING entry for node_id, held by us. */
static int dial_entry_locked(struct fab_pool *pool, uint32_t node_id,
                             const char *host, uint16_t port, int64_t deadline,
                             struct fab_conn **out)
{
    struct fab_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->pool = pool;
    c->node_id = node_id;
    c->cq_fd = -1;
    c->anon_op.internal[0] = c;
    c->silent_op.internal[0] = c;
    c->state = FAB__CONN_DIALING;
    c->refs = 1; /* ours while dialing: the pool thread leaves it alone */
    c->deadline_ms = deadline;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    if (getrandom(&c->token, sizeof(c->token), 0) != sizeof(c->token))
        c->token = (uint64_t)fab__now_ms() ^ ((uint64_t)node_id << 32);
    c->next = pool->conns;
    pool->conns = c;
    *out = c;
    return 0;
}

/* Phase 4, after the dial (rc): wait until the entry is live and hand our
 * dialing reference over as the user's borrow, or fail the entry. */
static int borrow_finish(struct fab_user *user, struct fab_conn *c, int rc,
                         bool wait_incoming, int64_t deadline,
                         struct fab_conn **out, struct fab_error *err)
{
    struct fab_pool *pool = user->pool;
    uint32_t node_id = c->node_id;
    pthread_mutex_lock(&pool->lock);
    if (rc == 0 && wait_incoming) {
        /* The peer's attempt wins: the pool thread takes this entry over
         * at its connection request (DIALING -> CONNECTING -> LIVE). */
        c->waiting_incoming = true;
    }
    if (rc != 0 && c->waiting_incoming &&
        (c->state == FAB__CONN_CONNECTING || c->state == FAB__CONN_LIVE)) {
        /* Our dial failed after the peer's request took the entry over:
         * that connection is the one to wait for. */
        rc = 0;
        if (err) {
            err->code = 0;
            err->msg[0] = 0;
        }
    }
    while (rc == 0 && c->state != FAB__CONN_LIVE &&
           c->state != FAB__CONN_FAILED) {
        if (cond_wait_until(pool, deadline) < 0) {
            rc = -ETIMEDOUT;
            fab__set_error(err, rc, "node %u: connection timed out", node_id);
        }
    }
    if (rc == 0 && c->state == FAB__CONN_FAILED) {
        rc = c->connect_err ? c->connect_err : atomic_load(&c->status);
        fab__set_error(err, rc, "node %u: connection failed: %s", node_id,
                       fab_strerror(rc));
    }
    if (rc == 0) {
        c->refs--; /* the dialing reference becomes the user's borrow */
        rc = add_borrow_locked(user, c);
        if (rc == 0) {
            pthread_mutex_unlock(&pool->lock);
            *out = c;
            return 0;
        }
        c->refs++;
    }
    c->connect_err = rc;
    if (c->state != FAB__CONN_FAILED)
        fab__conn_fail_locked(pool, c, rc);
    c->refs--;
    c->reported = c->refs == 0;
    pthread_mutex_unlock(&pool->lock);
    if (err && err->code == 0)
        fab__set_error(err, rc, "node %u: %s", node_id, fab_strerror(rc));
    return rc;
}

int fab_borrow(struct fab_user *user, uint32_t node_id, const char *host,
               uint16_t port, int timeout_ms, struct fab_conn **out,
               struct fab_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    int rc = borrow_validate(user, node_id, &host, out, err);
    if (rc)
        return rc;
    struct fab_pool *pool = user->pool;
    if (timeout_ms < 0)
        timeout_ms = pool->opts.connect_timeout_ms;
    int64_t start = fab__now_ms();
    int64_t deadline = start + timeout_ms;

    pthread_mutex_lock(&pool->lock);
    bool done = false;
    rc = borrow_wait_locked(user, node_id, start, deadline, out, &done, err);
    if (done) {
        pthread_mutex_unlock(&pool->lock);
        return rc;
    }
    if (!host || !port) {
        pthread_mutex_unlock(&pool->lock);
        fab__set_error(err, -EINVAL, "node %u: no address to dial", node_id);
        return -EINVAL;
    }
    struct fab_conn *c = NULL;
    rc = dial_entry_locked(pool, node_id, host, port, deadline, &c);
    if (rc) {
        pthread_mutex_unlock(&pool->lock);
        return rc;
    }
    uint64_t token = c->token;
    pthread_mutex_unlock(&pool->lock);

    bool wait_incoming = false;
    rc = dial(pool, c, token, host, port, deadline, &wait_incoming, err);
    return borrow_finish(user, c, rc, wait_incoming, deadline, out, err);
}
