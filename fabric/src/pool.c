/* The pool: fabric/domain, bootstrap listener, passive endpoint, the pool
 * thread (bootstrap server, connection-management events, failure fan-out,
 * reaping of unreferenced dead connections). */
#include "fab-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define POOL_TICK_MS 100

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void fab__pool_kick(struct fab_pool *pool)
{
    uint64_t one = 1;
    ssize_t n = write(pool->wake_fd, &one, sizeof(one));
    (void)n;
}

static void drain_eventfd(int fd)
{
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
}

/* ---- bootstrap server -------------------------------------------------- */

static void stat_refused(struct fab_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stats.bootstraps_refused++;
    pthread_mutex_unlock(&pool->lock);
}

static void reply(struct fab_pool *pool, int fd, uint8_t type, uint8_t status,
                  uint8_t field, uint32_t dst, uint64_t token, const void *blob,
                  size_t blob_len, int64_t deadline)
{
    struct fab__frame r;
    fab__frame_init(&r, type);
    r.status = status;
    r.field = field;
    r.src_node = pool->opts.node_id;
    r.dst_node = dst;
    r.port = pool->port;
    r.fingerprint = pool->opts.fingerprint;
    r.token = token;
    if (type == FAB__MSG_REPLY) {
        r.addr_len = (uint16_t)pool->pep_addr_len;
        memcpy(r.addr, pool->pep_addr, pool->pep_addr_len);
    }
    r.blob = blob;
    r.blob_len = (uint32_t)blob_len;
    int rc = fab__send_frame(fd, &r, deadline);
    if (rc < 0)
        fab__log(pool, LOG_INFO, "bootstrap: reply not sent: %s",
                 fab_strerror(rc));
}

static struct fab_conn *conn_new(struct fab_pool *pool, uint32_t node_id)
{
    struct fab_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->pool = pool;
    c->node_id = node_id;
    c->cq_fd = -1;
    c->anon_op.internal[0] = c;
    c->silent_op.internal[0] = c;
    c->next = pool->conns;
    pool->conns = c;
    return c;
}

static void serve_hello(struct fab_pool *pool, int fd,
                        const struct fab__frame *f, const char *peer_ip,
                        int64_t deadline)
{
    if (f->dst_node != pool->opts.node_id) {
        fab__log(pool, LOG_WARNING,
                 "bootstrap: node %u dialed node id %u, I am %u", f->src_node,
                 f->dst_node, pool->opts.node_id);
        stat_refused(pool);
        reply(pool, fd, FAB__MSG_REPLY, FAB__ST_MISMATCH, FAB__F_NODE_ID,
              f->src_node, 0, NULL, 0, deadline);
        return;
    }
    if (f->src_node == pool->opts.node_id) {
        stat_refused(pool);
        reply(pool, fd, FAB__MSG_REPLY, FAB__ST_MISMATCH, FAB__F_NODE_ID,
              f->src_node, 0, NULL, 0, deadline);
        return;
    }
    uint8_t status = FAB__ST_OK;
    pthread_mutex_lock(&pool->lock);
    struct fab_conn *c = fab__conn_find(pool, f->src_node);
    if (!c || (c->state == FAB__CONN_FAILED && c->refs == 0)) {
        c = conn_new(pool, f->src_node);
        if (!c)
            status = FAB__ST_BUSY;
    } else if (c->state == FAB__CONN_DIALING &&
               f->src_node < pool->opts.node_id) {
        /* Simultaneous connect: the lower node id's attempt wins; our own
         * dial gets DUPLICATE from the peer and waits for this one. */
        c->waiting_incoming = true;
    } else if (c->state == FAB__CONN_DIALING) {
        status = FAB__ST_DUPLICATE;
        c = NULL;
    } else {
        status = FAB__ST_BUSY; /* live, or still held after failing */
        c = NULL;
    }
    if (c && status == FAB__ST_OK) {
        pool->stats.bootstraps_in++;
        c->state = FAB__CONN_ACCEPTING;
        c->token = f->token;
        c->deadline_ms = fab__now_ms() + pool->opts.connect_timeout_ms;
        copy_str(c->host, sizeof(c->host), peer_ip);
        c->port = f->port;
    }
    pthread_mutex_unlock(&pool->lock);
    reply(pool, fd, FAB__MSG_REPLY, status, FAB__F_NONE, f->src_node, f->token,
          NULL, 0, deadline);
}

static void serve_fetch(struct fab_pool *pool, int fd,
                        const struct fab__frame *f, int64_t deadline)
{
    uint8_t buf[FAB_BLOB_MAX];
    size_t len = 0;
    bool found = false;
    pthread_mutex_lock(&pool->lock);
    for (struct fab_blob *b = pool->blobs; b; b = b->next) {
        if (b->key == f->token) {
            memcpy(buf, b->bytes, b->len);
            len = b->len;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    reply(pool, fd, FAB__MSG_FETCH_REPLY, found ? FAB__ST_OK : FAB__ST_NOTFOUND,
          FAB__F_NONE, f->src_node, f->token, buf, len, deadline);
}

/* One accepted bootstrap socket, served to the end.  Hostile input costs at
 * most the frame deadline and never more than one frame's memory. */
void fab__serve_bootstrap(struct fab_pool *pool, int fd)
{
    int timeout = pool->opts.connect_timeout_ms;
    if (timeout > 2000)
        timeout = 2000;
    int64_t deadline = fab__now_ms() + timeout;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char peer_ip[64] = "?";
    if (getpeername(fd, (struct sockaddr *)&sin, &sl) == 0)
        inet_ntop(AF_INET, &sin.sin_addr, peer_ip, sizeof(peer_ip));

    uint8_t buf[FAB__FRAME_MAX];
    int n = fab__sock_recv_frame(fd, buf, sizeof(buf), deadline);
    struct fab__frame f;
    if (n >= 0)
        n = fab__frame_decode(buf, (size_t)n, &f);
    if (n < 0) {
        fab__log(pool, LOG_WARNING, "bootstrap from %s: %s", peer_ip,
                 n == -EBADMSG ? "malformed frame" : fab_strerror(n));
        stat_refused(pool);
        return;
    }
    char msg[160];
    enum fab__field bad =
        fab__frame_check(&f, pool->opts.fingerprint, msg, sizeof(msg));
    if (bad == FAB__F_NONE && f.type != FAB__MSG_HELLO &&
        f.type != FAB__MSG_FETCH) {
        bad = FAB__F_TYPE;
        snprintf(msg, sizeof(msg), "unexpected frame type %u", f.type);
    }
    if (bad != FAB__F_NONE) {
        fab__log(pool, LOG_WARNING, "bootstrap from %s (node %u): %s", peer_ip,
                 f.src_node, msg);
        stat_refused(pool);
        reply(pool, fd, FAB__MSG_REPLY, FAB__ST_MISMATCH, (uint8_t)bad,
              f.src_node, 0, NULL, 0, deadline);
        return;
    }
    if (f.type == FAB__MSG_FETCH)
        serve_fetch(pool, fd, &f, deadline);
    else
        serve_hello(pool, fd, &f, peer_ip, deadline);
}

/* ---- connection-management events ------------------------------------ */

static struct fab_conn *conn_of_fid(struct fab_pool *pool, fid_t fid)
{
    if (!fid)
        return NULL;
    for (struct fab_conn *c = pool->conns; c; c = c->next)
        if (c->ep && &c->ep->fid == fid)
            return c;
    return NULL;
}

static void handle_connreq(struct fab_pool *pool, struct fi_eq_cm_entry *e,
                           size_t param_len)
{
    uint32_t node = 0;
    uint64_t token = 0;
    if (param_len >= 12) {
        for (int i = 0; i < 4; i++)
            node |= (uint32_t)e->data[i] << (8 * i);
        for (int i = 0; i < 8; i++)
            token |= (uint64_t)e->data[4 + i] << (8 * i);
    }
    pthread_mutex_lock(&pool->lock);
    struct fab_conn *c = fab__conn_find(pool, node);
    bool ok = param_len >= 12 && c && c->state == FAB__CONN_ACCEPTING &&
              c->token == token;
    if (ok)
        c->state = FAB__CONN_CONNECTING; /* claimed by this thread */
    pthread_mutex_unlock(&pool->lock);
    if (!ok) {
        fab__log(pool, LOG_WARNING,
                 "connection request from node %u without bootstrap: "
                 "rejected",
                 node);
        fi_reject(pool->pep, e->info->handle, NULL, 0);
        return;
    }
    int rc = fab__conn_open_ep(pool, c, e->info);
    if (rc == 0)
        rc = fi_accept(c->ep, NULL, 0);
    if (rc) {
        fab__log(pool, LOG_ERR, "accepting node %u: %s", node,
                 fi_strerror(-rc));
        if (!c->ep)
            fi_reject(pool->pep, e->info->handle, NULL, 0);
        pthread_mutex_lock(&pool->lock);
        c->connect_err = rc;
        fab__conn_fail_locked(pool, c, rc);
        c->reported = c->refs == 0;
        pthread_mutex_unlock(&pool->lock);
    }
}

void fab__handle_eq(struct fab_pool *pool)
{
    for (;;) {
        union {
            struct fi_eq_cm_entry cm;
            uint8_t bytes[sizeof(struct fi_eq_cm_entry) + 256];
        } buf;
        uint32_t event = 0;
        ssize_t n = fi_eq_read(pool->eq, &event, &buf, sizeof(buf), 0);
        if (n == -FI_EAGAIN)
            return;
        if (n == -FI_EAVAIL) {
            struct fi_eq_err_entry err;
            memset(&err, 0, sizeof(err));
            if (fi_eq_readerr(pool->eq, &err, 0) < 0)
                return;
            pthread_mutex_lock(&pool->lock);
            struct fab_conn *c = conn_of_fid(pool, err.fid);
            if (c) {
                int reason =
                    err.err == FI_ECONNREFUSED ? -ECONNREFUSED : -ECONNRESET;
                fab__log(pool, LOG_NOTICE, "node %u: connection error: %s",
                         c->node_id, fi_strerror(err.err));
                if (c->state != FAB__CONN_LIVE)
                    c->connect_err = reason;
                fab__conn_fail_locked(pool, c, reason);
            }
            pthread_mutex_unlock(&pool->lock);
            continue;
        }
        if (n < 0) {
            fab__log(pool, LOG_ERR, "fi_eq_read: %s", fi_strerror((int)-n));
            return;
        }
        switch (event) {
        case FI_CONNREQ: {
            size_t param = (size_t)n > sizeof(struct fi_eq_cm_entry)
                               ? (size_t)n - sizeof(struct fi_eq_cm_entry)
                               : 0;
            handle_connreq(pool, &buf.cm, param);
            fi_freeinfo(buf.cm.info);
            break;
        }
        case FI_CONNECTED: {
            pthread_mutex_lock(&pool->lock);
            struct fab_conn *c = conn_of_fid(pool, buf.cm.fid);
            if (c && c->state == FAB__CONN_CONNECTING) {
                c->state = FAB__CONN_LIVE;
                pool->stats.connections++;
                pool->stats.live++;
                fab__log(pool, LOG_INFO, "node %u: connected", c->node_id);
                pthread_cond_broadcast(&pool->cond);
            }
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        case FI_SHUTDOWN: {
            pthread_mutex_lock(&pool->lock);
            struct fab_conn *c = conn_of_fid(pool, buf.cm.fid);
            if (c) {
                fab__log(pool, LOG_NOTICE, "node %u: connection shut down",
                         c->node_id);
                fab__conn_fail_locked(pool, c, -ECONNRESET);
            }
            pthread_mutex_unlock(&pool->lock);
            break;
        }
        default:
            break;
        }
    }
}

/* ---- failure fan-out and reaping -------------------------------------- */

struct failure_call {
    void (*fn)(void *ctx, uint32_t node_id, int reason);
    void *ctx;
    uint32_t node_id;
    int reason;
};

void fab__report_failures(struct fab_pool *pool)
{
    atomic_store_explicit(&pool->failure_pending, false, memory_order_relaxed);
    pthread_mutex_lock(&pool->cb_lock);
    pthread_mutex_lock(&pool->lock);
    size_t n = 0, cap = 0;
    struct failure_call *calls = NULL;
    for (struct fab_user *u = pool->users; u; u = u->next) {
        for (struct fab_borrow_rec *r = u->borrows; r; r = r->next) {
            if (r->conn->state != FAB__CONN_FAILED || r->reported)
                continue;
            r->reported = true;
            if (!u->cbs.on_failure)
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 8;
                struct failure_call *nc = realloc(calls, ncap * sizeof(*calls));
                if (!nc) {
                    r->reported = false; /* try again next tick */
                    atomic_store(&pool->failure_pending, true);
                    break;
                }
                calls = nc;
                cap = ncap;
            }
            calls[n++] = (struct failure_call){u->cbs.on_failure, u->ctx,
                                               r->conn->node_id,
                                               atomic_load(&r->conn->status)};
        }
    }
    for (struct fab_conn *c = pool->conns; c; c = c->next)
        if (c->state == FAB__CONN_FAILED)
            c->reported = true;
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < n; i++)
        calls[i].fn(calls[i].ctx, calls[i].node_id, calls[i].reason);
    pthread_mutex_unlock(&pool->cb_lock);
    free(calls);
}

/* Expires stalled set-ups and frees dead connections nobody holds. */
static void reap(struct fab_pool *pool)
{
    int64_t now = fab__now_ms();
    struct fab_conn *dead = NULL;
    pthread_mutex_lock(&pool->lock);
    for (struct fab_conn **pp = &pool->conns; *pp;) {
        struct fab_conn *c = *pp;
        if ((c->state == FAB__CONN_ACCEPTING ||
             c->state == FAB__CONN_CONNECTING) &&
            c->deadline_ms && now > c->deadline_ms) {
            c->connect_err = -ETIMEDOUT;
            fab__conn_fail_locked(pool, c, -ETIMEDOUT);
        }
        if (c->state == FAB__CONN_FAILED && c->refs == 0 && c->reported) {
            *pp = c->next;
            c->next = dead;
            dead = c;
            continue;
        }
        pp = &c->next;
    }
    pthread_mutex_unlock(&pool->lock);
    while (dead) {
        struct fab_conn *c = dead;
        dead = c->next;
        fab__conn_close(pool, c);
    }
}

static void *pool_thread(void *arg)
{
    struct fab_pool *pool = arg;
    pthread_setname_np(pthread_self(), "fab-pool");
    while (!atomic_load(&pool->stopping)) {
        struct fid *eq_fid = &pool->eq->fid;
        struct epoll_event evs[8];
        int n = 0;
        if (fi_trywait(pool->fabric, &eq_fid, 1) == FI_SUCCESS) {
            n = epoll_wait(pool->epoll_fd, evs, 8, POOL_TICK_MS);
        } else {
            n = epoll_wait(pool->epoll_fd, evs, 8, 0);
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == pool->wake_fd) {
                drain_eventfd(pool->wake_fd);
            } else if (evs[i].data.fd == pool->listen_fd) {
                for (;;) {
                    int fd = accept4(pool->listen_fd, NULL, NULL,
                                     SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (fd < 0)
                        break;
                    fab__serve_bootstrap(pool, fd);
                    close(fd);
                }
            }
        }
        fab__handle_eq(pool);
        if (atomic_load(&pool->failure_pending))
            fab__report_failures(pool);
        fab__progress_idle(pool);
        reap(pool);
    }
    return NULL;
}

/* ---- create / destroy ------------------------------------------------- */

static int open_fabric(struct fab_pool *pool, struct fab_error *err)
{
    struct fi_info *hints = fi_allocinfo();
    if (!hints)
        return -ENOMEM;
    hints->ep_attr->type = FI_EP_MSG;
    hints->caps = FI_MSG | FI_RMA;
    /* We cope with FI_RX_CQ_DATA (fab_mr_rules); no FI_CONTEXT: our op
     * contexts are not fi_context. */
    hints->mode = FI_RX_CQ_DATA;
    hints->domain_attr->mr_mode =
        FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
    hints->domain_attr->threading = FI_THREAD_SAFE;
    hints->addr_format = FI_SOCKADDR_IN;
    hints->fabric_attr->prov_name = strdup(pool->provider);
    if (pool->domain_name[0])
        hints->domain_attr->name = strdup(pool->domain_name);
    hints->tx_attr->msg_order = FI_ORDER_WAW | FI_ORDER_RAW;

    int rc = fi_getinfo(FI_VERSION(1, 9), pool->listen_addr, NULL, FI_SOURCE,
                        hints, &pool->info);
    if (rc == -FI_ENODATA) {
        /* Retry without the ordering wish: then FAB_WRITE_FENCE does it. */
        hints->tx_attr->msg_order = 0;
        rc = fi_getinfo(FI_VERSION(1, 9), pool->listen_addr, NULL, FI_SOURCE,
                        hints, &pool->info);
    }
    fi_freeinfo(hints);
    if (rc) {
        fab__set_error(
            err, rc,
            "no libfabric provider '%s' (domain '%s', FI_EP_MSG, "
            "address %s): %s%s",
            pool->provider, pool->domain_name[0] ? pool->domain_name : "any",
            pool->listen_addr, fi_strerror(-rc),
            rc == -FI_ENODATA ? " (no such device or provider?)" : "");
        fab__log(pool, LOG_ERR, "%s", err ? err->msg : "fi_getinfo failed");
        return rc;
    }
    struct fi_info *info = pool->info;
    rc = fab_mr_rules_from_modes(info->domain_attr->mr_mode, info->mode,
                                 &pool->rules);
    if (rc) {
        fab__set_error(err, rc, "provider MR mode 0x%llx not supported",
                       (unsigned long long)info->domain_attr->mr_mode);
        return rc;
    }
    pool->ordered_writes = (info->tx_attr->msg_order & FI_ORDER_WAW) != 0;
    pool->fence = (info->caps & FI_FENCE) != 0;
    switch (pool->opts.write_ordering) {
    case FAB_ORDERING_AUTO:
        break;
    case FAB_ORDERING_FENCE:
        if (!pool->fence) {
            fab__set_error(err, -ENOTSUP, "provider %s has no FI_FENCE",
                           info->fabric_attr->prov_name);
            return -ENOTSUP;
        }
        pool->ordered_writes = false;
        break;
    case FAB_ORDERING_WAIT:
        pool->ordered_writes = false;
        pool->fence = false;
        break;
    default:
        fab__set_error(err, -EINVAL, "bad write_ordering %d",
                       pool->opts.write_ordering);
        return -EINVAL;
    }
    /* tcp says FI_PROGRESS_AUTO yet needs calls (issue 5, measured). */
    pool->manual_progress =
        info->domain_attr->data_progress == FI_PROGRESS_MANUAL ||
        strcmp(info->fabric_attr->prov_name, "tcp") == 0;
    copy_str(pool->provider, sizeof(pool->provider),
             info->fabric_attr->prov_name);
    copy_str(pool->domain_name, sizeof(pool->domain_name),
             info->domain_attr->name);
    pool->next_key = 1;

    rc = fi_fabric(info->fabric_attr, &pool->fabric, NULL);
    if (!rc)
        rc = fi_domain(pool->fabric, info, &pool->domain, NULL);
    if (!rc) {
        struct fi_eq_attr eq_attr = {.size = 256, .wait_obj = FI_WAIT_FD};
        rc = fi_eq_open(pool->fabric, &eq_attr, &pool->eq, NULL);
    }
    if (!rc)
        rc = fi_control(&pool->eq->fid, FI_GETWAIT, &pool->eq_fd);
    if (!rc)
        rc = fi_passive_ep(pool->fabric, info, &pool->pep, NULL);
    if (!rc)
        rc = fi_pep_bind(pool->pep, &pool->eq->fid, 0);
    if (!rc)
        rc = fi_listen(pool->pep);
    if (!rc) {
        size_t len = sizeof(pool->pep_addr);
        rc = fi_getname(&pool->pep->fid, pool->pep_addr, &len);
        pool->pep_addr_len = len;
    }
    if (rc) {
        fab__set_error(err, rc, "opening %s fabric/domain: %s", pool->provider,
                       fi_strerror(-rc));
        fab__log(pool, LOG_ERR, "%s", err ? err->msg : "open failed");
    }
    return rc;
}

static void pool_free(struct fab_pool *pool)
{
    if (pool->pep)
        fi_close(&pool->pep->fid);
    if (pool->eq)
        fi_close(&pool->eq->fid);
    if (pool->domain)
        fi_close(&pool->domain->fid);
    if (pool->fabric)
        fi_close(&pool->fabric->fid);
    if (pool->info)
        fi_freeinfo(pool->info);
    int fds[] = {pool->listen_fd, pool->wake_fd, pool->epoll_fd,
                 pool->user_wait_fd, pool->user_wake_fd};
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    while (pool->blobs) {
        struct fab_blob *b = pool->blobs;
        pool->blobs = b->next;
        free(b);
    }
    free(pool->progress_conns);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->progress_lock);
    pthread_mutex_destroy(&pool->cb_lock);
    free(pool);
}

int fab_pool_create(const struct fab_options *opts, struct fab_pool **out,
                    struct fab_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    if (out)
        *out = NULL;
    if (!opts || !out) {
        fab__set_error(err, -EINVAL, "missing options or output");
        return -EINVAL;
    }
    /* Smaller than the first layout: a caller's mistake (a partial copy
     * could even split a pointer).  Between it and ours: an older caller,
     * the fields it lacks take their defaults.  Larger: a newer header,
     * its extra fields are ignored. */
    if (opts->size < FAB__OPTIONS_V1_SIZE) {
        fab__set_error(err, -EINVAL,
                       "options size %zu, expected %zu (fab_options_init)",
                       opts->size, sizeof(struct fab_options));
        return -EINVAL;
    }
    const char *strs[] = {opts->provider, opts->domain, opts->listen_addr};
    const size_t caps[] = {sizeof(((struct fab_pool *)0)->provider),
                           sizeof(((struct fab_pool *)0)->domain_name),
                           sizeof(((struct fab_pool *)0)->listen_addr)};
    for (size_t i = 0; i < 3; i++) {
        if (strs[i] && strnlen(strs[i], caps[i]) >= caps[i]) {
            fab__set_error(err, -EINVAL, "%s name longer than %zu bytes",
                           i == 0   ? "provider"
                           : i == 1 ? "domain"
                                    : "address",
                           caps[i] - 1);
            return -EINVAL;
        }
    }
    /* Every connection allocates its queue at once: refuse sizes no
     * provider grants rather than fail (or abort under a sanitizer) at
     * the first borrow. */
    if (opts->node_id == UINT32_MAX) {
        /* Reserved: "no node" / "NULL" in the getters and the layers
         * above (RDMC_NO_PEER). */
        fab__set_error(err, -EINVAL, "node id %u is reserved", opts->node_id);
        return -EINVAL;
    }
    if (opts->cq_size > FAB__CQ_SIZE_MAX) {
        fab__set_error(err, -EINVAL, "cq_size %zu over %u", opts->cq_size,
                       FAB__CQ_SIZE_MAX);
        return -EINVAL;
    }
    struct fab_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    fab_options_init(&pool->opts);
    memcpy(&pool->opts, opts,
           opts->size < sizeof(pool->opts) ? opts->size : sizeof(pool->opts));
    pool->opts.size = sizeof(pool->opts);
    struct fab_options *o = &pool->opts;
    if (!o->provider || !o->provider[0])
        o->provider = "tcp";
    if (!o->listen_addr || !o->listen_addr[0])
        o->listen_addr = "127.0.0.1";
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = 5000;
    if (o->cq_size == 0)
        o->cq_size = 1024;
    if (o->max_outstanding == 0)
        o->max_outstanding = 512;
    copy_str(pool->provider, sizeof(pool->provider), o->provider);
    copy_str(pool->domain_name, sizeof(pool->domain_name), o->domain);
    copy_str(pool->listen_addr, sizeof(pool->listen_addr), o->listen_addr);
    struct in_addr parsed;
    if (inet_pton(AF_INET, pool->listen_addr, &parsed) != 1) {
        /* Checked before libfabric, which would try to resolve it. */
        fab__set_error(err, -EINVAL, "listen_addr '%s' is not an IPv4 address",
                       pool->listen_addr);
        free(pool);
        return -EINVAL;
    }
    /* Our copies outlive the caller's strings. */
    o->provider = NULL;
    o->domain = NULL;
    o->listen_addr = NULL;
    pool->listen_fd = pool->wake_fd = pool->epoll_fd = -1;
    pool->user_wait_fd = pool->user_wake_fd = pool->eq_fd = -1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->progress_lock, NULL);
    pthread_mutex_init(&pool->cb_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cond, &ca);
    pthread_condattr_destroy(&ca);

    int rc = open_fabric(pool, err);
    if (rc)
        goto fail;
    rc = fab__sock_listen(pool->listen_addr, o->port, &pool->listen_fd,
                          &pool->port);
    if (rc) {
        fab__set_error(err, rc, "bootstrap listener on %s:%u: %s",
                       pool->listen_addr, (unsigned)o->port, fab_strerror(rc));
        goto fail;
    }
    pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool->user_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    pool->user_wait_fd = epoll_create1(EPOLL_CLOEXEC);
    if (pool->wake_fd < 0 || pool->user_wake_fd < 0 || pool->epoll_fd < 0 ||
        pool->user_wait_fd < 0) {
        rc = -errno;
        fab__set_error(err, rc, "eventfd/epoll: %s", fab_strerror(rc));
        goto fail;
    }
    int fds[] = {pool->wake_fd, pool->listen_fd, pool->eq_fd};
    for (size_t i = 0; i < 3; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(pool->epoll_fd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
            rc = -errno;
            fab__set_error(err, rc, "epoll_ctl: %s", fab_strerror(rc));
            goto fail;
        }
    }
    struct epoll_event uev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(pool->user_wait_fd, EPOLL_CTL_ADD, pool->user_wake_fd, &uev) <
        0) {
        rc = -errno;
        goto fail;
    }
    rc = -pthread_create(&pool->thread, NULL, pool_thread, pool);
    if (rc) {
        fab__set_error(err, rc, "pthread_create: %s", fab_strerror(rc));
        goto fail;
    }
    pool->thread_started = true;
    fab__log(pool, LOG_INFO,
             "node %u: provider %s domain %s, bootstrap %s:%u, mr_mode "
             "0x%llx, ordered writes %s",
             o->node_id, pool->provider, pool->domain_name, pool->listen_addr,
             (unsigned)pool->port,
             (unsigned long long)pool->info->domain_attr->mr_mode,
             pool->ordered_writes ? "yes" : "no");
    *out = pool;
    return 0;
fail:
    if (err && err->code == 0)
        fab__set_error(err, rc, "%s", fab_strerror(rc));
    pool_free(pool);
    return rc;
}

void fab_pool_destroy(struct fab_pool *pool)
{
    if (!pool)
        return;
    /* From a callback (the pool thread, or a thread inside progress) the
     * join below would wait for itself and the pool would be freed under
     * the running callback: refuse (the header forbids it). */
    if ((pool->thread_started && pthread_equal(pthread_self(), pool->thread)) ||
        (atomic_load(&pool->progress_owned) &&
         pthread_equal(atomic_load(&pool->progress_owner), pthread_self()))) {
        fab__log(pool, LOG_ERR,
                 "fab_pool_destroy called from a callback: refused");
        return;
    }
    /* Users left (an SST table, an RDMC group) still point at the pool
     * and their threads drive its progress: freeing it under them is a
     * use after free waiting to happen.  Refuse; the caller destroys them
     * first and the pool then. */
    pthread_mutex_lock(&pool->lock);
    bool has_users = pool->users != NULL;
    pthread_mutex_unlock(&pool->lock);
    if (has_users) {
        fab__log(pool, LOG_ERR,
                 "fab_pool_destroy with users left: refused (destroy them "
                 "first)");
        return;
    }
    atomic_store(&pool->stopping, true);
    fab__pool_kick(pool);
    if (pool->thread_started)
        pthread_join(pool->thread, NULL);
    while (pool->conns) {
        struct fab_conn *c = pool->conns;
        pool->conns = c->next;
        fab__conn_close(pool, c);
    }
    pool_free(pool);
}

uint16_t fab_pool_port(const struct fab_pool *pool)
{
    return pool ? pool->port : 0;
}

uint32_t fab_pool_node_id(const struct fab_pool *pool)
{
    return pool ? pool->opts.node_id : UINT32_MAX;
}

void fab_pool_get_info(const struct fab_pool *pool, struct fab_pool_info *info)
{
    if (!info)
        return;
    memset(info, 0, sizeof(*info));
    if (!pool)
        return;
    copy_str(info->provider, sizeof(info->provider), pool->provider);
    copy_str(info->domain, sizeof(info->domain), pool->domain_name);
    info->mr_mode = pool->info->domain_attr->mr_mode;
    info->mode = pool->info->mode;
    info->msg_order = pool->info->tx_attr->msg_order;
    info->cq_data_size = fab__cq_data_size(pool);
    info->max_msg_size = pool->info->ep_attr->max_msg_size;
    info->ordered_writes = pool->ordered_writes;
    info->fence = pool->fence;
    info->manual_progress = pool->manual_progress;
}

void fab_pool_get_stats(struct fab_pool *pool, struct fab_pool_stats *stats)
{
    if (!stats)
        return;
    if (!pool) {
        memset(stats, 0, sizeof(*stats));
        return;
    }
    pthread_mutex_lock(&pool->lock);
    *stats = pool->stats;
    pthread_mutex_unlock(&pool->lock);
}

int fab_pool_publish(struct fab_pool *pool, uint64_t key, const void *blob,
                     size_t len)
{
    if (!pool || (!blob && len) || len > FAB_BLOB_MAX)
        return -EINVAL;
    struct fab_blob *b = malloc(sizeof(*b) + len);
    if (!b)
        return -ENOMEM;
    b->key = key;
    b->len = len;
    if (len)
        memcpy(b->bytes, blob, len);
    pthread_mutex_lock(&pool->lock);
    for (struct fab_blob **pp = &pool->blobs; *pp; pp = &(*pp)->next) {
        if ((*pp)->key == key) {
            struct fab_blob *old = *pp;
            *pp = old->next;
            free(old);
            break;
        }
    }
    b->next = pool->blobs;
    pool->blobs = b;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

int fab_pool_unpublish(struct fab_pool *pool, uint64_t key)
{
    if (!pool)
        return -EINVAL;
    int rc = -ENOENT;
    pthread_mutex_lock(&pool->lock);
    for (struct fab_blob **pp = &pool->blobs; *pp; pp = &(*pp)->next) {
        if ((*pp)->key == key) {
            struct fab_blob *old = *pp;
            *pp = old->next;
            free(old);
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int fab_pool_fetch(struct fab_pool *pool, uint32_t node_id, uint64_t key,
                   void *buf, size_t cap, size_t *len, int timeout_ms,
                   struct fab_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    if (!pool || (!buf && cap) || !len) {
        fab__set_error(err, -EINVAL, "fetch: missing pool, buffer or length");
        return -EINVAL;
    }
    if (timeout_ms < 0)
        timeout_ms = pool->opts.connect_timeout_ms;
    char host[64];
    uint16_t port = 0;
    pthread_mutex_lock(&pool->lock);
    struct fab_conn *c = fab__conn_find(pool, node_id);
    if (c && c->port) {
        copy_str(host, sizeof(host), c->host);
        port = c->port;
    }
    pthread_mutex_unlock(&pool->lock);
    if (!port) {
        fab__set_error(err, -ENOENT, "node %u: not known to the pool", node_id);
        return -ENOENT;
    }
    int64_t deadline = fab__now_ms() + timeout_ms;
    int backoff_ms = 1;
    for (;;) {
        int fd = -1;
        int rc = fab__sock_connect(host, port, deadline, &fd);
        struct fab__frame f;
        uint8_t rbuf[FAB__FRAME_MAX];
        if (rc == 0) {
            fab__frame_init(&f, FAB__MSG_FETCH);
            f.src_node = pool->opts.node_id;
            f.dst_node = node_id;
            f.port = pool->port;
            f.fingerprint = pool->opts.fingerprint;
            f.token = key;
            rc = fab__send_frame(fd, &f, deadline);
        }
        if (rc == 0)
            rc = fab__sock_recv_frame(fd, rbuf, sizeof(rbuf), deadline);
        if (rc >= 0)
            rc = fab__frame_decode(rbuf, (size_t)rc, &f);
        if (fd >= 0)
            close(fd);
        if (rc == 0) {
            char msg[160];
            enum fab__field bad =
                fab__frame_check(&f, pool->opts.fingerprint, msg, sizeof(msg));
            if (bad != FAB__F_NONE || f.status == FAB__ST_MISMATCH) {
                fab__set_error(err, -EPROTO, "fetch from node %u: %s", node_id,
                               bad != FAB__F_NONE ? msg
                                                  : fab__field_name(f.field));
                return -EPROTO;
            }
            if (f.type == FAB__MSG_FETCH_REPLY && f.status == FAB__ST_OK) {
                *len = f.blob_len;
                if (f.blob_len > cap) {
                    fab__set_error(err, -ENOSPC,
                                   "fetch from node %u: blob of %u bytes, "
                                   "room for %zu",
                                   node_id, f.blob_len, cap);
                    return -ENOSPC;
                }
                if (f.blob_len)
                    memcpy(buf, f.blob, f.blob_len);
                return 0;
            }
        }
        if (fab__now_ms() + backoff_ms >= deadline) {
            fab__set_error(err, -ETIMEDOUT,
                           "fetch of key 0x%llx from node %u: %s",
                           (unsigned long long)key, node_id,
                           rc ? fab_strerror(rc) : "not published");
            return -ETIMEDOUT;
        }
        struct timespec ts = {0, (long)backoff_ms * 1000000L};
        nanosleep(&ts, NULL);
        if (backoff_ms < 20)
            backoff_ms *= 2;
    }
}
