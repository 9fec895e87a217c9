/* The pool: fabric/domain, bootstrap listener, passive endpoint, the pool
 * thread (bootstrap server, connection-management events, failure fan-out,
 * reaping of unreferenced dead connections). */
#include "fab-private.h"

#include <mutils/mutils.h>

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

#include <openssl/crypto.h>

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

struct fab_conn *fab__conn_new_locked(struct fab_pool *pool, uint32_t node_id)
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
        node = mutils_load_le32(e->data);
        token = mutils_load_le64(e->data + 4);
    }
    pthread_mutex_lock(&pool->lock);
    /* Only a request that carries the token of a HELLO we answered makes
     * a connection; until then nothing of that peer was kept. */
    int64_t now = fab__now_ms();
    int pi = param_len >= 12 ? fab__pending_find(pool, node, token, now) : -1;
    struct fab_conn *c = pi >= 0 ? fab__conn_find(pool, node) : NULL;
    bool ok = pi >= 0;
    if (ok && (!c || (c->state == FAB__CONN_FAILED && c->refs == 0))) {
        c = fab__conn_new_locked(pool, node);
        ok = c != NULL;
    } else if (ok && c->state == FAB__CONN_DIALING) {
        /* Our own borrow is still bootstrapping (the peer had our OK
         * first, or we wait for it after a DUPLICATE): its attempt becomes
         * the connection; dial() sees the state change and waits. */
        c->waiting_incoming = true;
    } else {
        ok = false; /* connecting or live already, or failed and held */
    }
    if (ok) {
        const struct fab__pending *p = &pool->pending[pi];
        snprintf(c->host, sizeof(c->host), "%s", p->host);
        c->port = p->port;
        c->token = token;
        c->state = FAB__CONN_CONNECTING; /* claimed by this thread */
        c->deadline_ms = now + pool->opts.connect_timeout_ms;
        pool->stats.bootstraps_in++;
        fab__pending_drop_node(pool, node);
        pthread_cond_broadcast(&pool->cond);
    }
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
    struct fab_user *user; /* pinned by its in_cb count */
    void (*fn)(void *ctx, uint32_t node_id, int reason);
    void *ctx;
    uint32_t node_id;
    int reason;
};

/* Runs on the pool thread only, so reports reach each user in the order
 * the failures were collected.  The calls are collected under pool->lock,
 * each pinning its user (in_cb), and made with no lock held. */
void fab__report_failures(struct fab_pool *pool)
{
    atomic_store_explicit(&pool->failure_pending, false, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    size_t n = 0, cap = 0;
    struct failure_call *calls = NULL;
    for (struct fab_user *u = pool->users; u; u = u->next) {
        if (u->dying)
            continue;
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
            calls[n++] = (struct failure_call){u, u->cbs.on_failure, u->ctx,
                                               r->conn->node_id,
                                               atomic_load(&r->conn->status)};
            u->in_cb++;
        }
    }
    for (struct fab_conn *c = pool->conns; c; c = c->next)
        if (c->state == FAB__CONN_FAILED)
            c->reported = true;
    pthread_mutex_unlock(&pool->lock);
    for (size_t i = 0; i < n; i++) {
        struct fab_user *u = calls[i].user;
        pthread_mutex_lock(&pool->lock);
        bool skip = u->dying; /* destroy began after collection */
        pthread_mutex_unlock(&pool->lock);
        if (!skip)
            calls[i].fn(calls[i].ctx, calls[i].node_id, calls[i].reason);
        pthread_mutex_lock(&pool->lock);
        bool free_it = --u->in_cb == 0 && u->free_when_idle;
        pthread_cond_broadcast(&pool->cb_cond);
        pthread_mutex_unlock(&pool->lock);
        if (free_it)
            free(u);
    }
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
        if (c->state == FAB__CONN_CONNECTING && c->deadline_ms &&
            now > c->deadline_ms) {
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
    fab__pending_expire(pool, now);
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
        struct epoll_event evs[32];
        int n = 0;
        if (fi_trywait(pool->fabric, &eq_fid, 1) == FI_SUCCESS) {
            n = epoll_wait(pool->epoll_fd, evs, 32, POOL_TICK_MS);
        } else {
            n = epoll_wait(pool->epoll_fd, evs, 32, 0);
        }
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &pool->wake_fd)
                drain_eventfd(pool->wake_fd);
            else if (tag == &pool->listen_fd)
                fab__boot_accept(pool);
            else if (tag != &pool->eq_fd)
                fab__boot_event(pool, tag);
        }
        fab__boot_tick(pool, fab__now_ms());
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
    free(pool->pending);
    fab__boot_free_all(pool);
    OPENSSL_cleanse(pool->auth_key, sizeof(pool->auth_key));
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->progress_lock);
    pthread_cond_destroy(&pool->cb_cond);
    free(pool);
}

/* fab_pool_create, phase 1: the options (NULL: every default) checked
 * and copied into *given, defaults for fields the caller's layout lacks. */
static int pool_validate(const struct fab_options *opts,
                         struct fab_options *given, struct fab_error *err)
{
    struct fab_options defaults;
    if (!opts) {
        fab_options_init(&defaults); /* NULL: every default */
        opts = &defaults;
    }
    /* Two layouts exist: the first version's (the fields up to
     * log_level; the later ones take their defaults) and this one.  A
     * size in between would cut a field.  A larger one comes from a newer
     * header: accepted when its extra bytes are zero (the newer fields at
     * their defaults), else it asks for what this version cannot do. */
    if (opts->size != FAB__OPTIONS_V1_SIZE &&
        opts->size < sizeof(struct fab_options)) {
        fab__set_error(err, -EINVAL,
                       "options size %zu, expected %zu or %zu "
                       "(fab_options_init)",
                       opts->size, (size_t)FAB__OPTIONS_V1_SIZE,
                       sizeof(struct fab_options));
        return -EINVAL;
    }
    if (opts->size > sizeof(struct fab_options)) {
        const unsigned char *tail = (const unsigned char *)opts;
        for (size_t i = sizeof(struct fab_options); i < opts->size; i++) {
            if (tail[i]) {
                fab__set_error(err, -EINVAL,
                               "options size %zu: byte %zu past this "
                               "version's %zu is not zero (an option this "
                               "libfab does not know)",
                               opts->size, i, sizeof(struct fab_options));
                return -EINVAL;
            }
        }
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
    fab_options_init(given);
    memcpy(given, opts,
           opts->size < sizeof(*given) ? opts->size : sizeof(*given));
    if (given->auth_key_len &&
        (!given->auth_key || given->auth_key_len < FAB_AUTH_KEY_MIN ||
         given->auth_key_len > FAB_AUTH_KEY_MAX)) {
        fab__set_error(err, -EINVAL, "auth_key: %zu bytes%s; %d to %d needed",
                       given->auth_key_len, given->auth_key ? "" : " at NULL",
                       FAB_AUTH_KEY_MIN, FAB_AUTH_KEY_MAX);
        return -EINVAL;
    }
    if (given->bootstrap_timeout_ms < 0 || given->bootstrap_max_conns > 65536 ||
        given->bootstrap_max_pending > 65536) {
        fab__set_error(err, -EINVAL,
                       "bootstrap limits out of range (timeout %d ms, %u "
                       "connections, %u pending; at most 65536 each)",
                       given->bootstrap_timeout_ms, given->bootstrap_max_conns,
                       given->bootstrap_max_pending);
        return -EINVAL;
    }
    return 0;
}

/* Phase 2: the pool object with its defaults, copies of the caller's
 * strings and key, locks; nothing opened yet. */
static int pool_alloc(const struct fab_options *given, struct fab_pool **out,
                      struct fab_error *err)
{
    struct fab_pool *pool = calloc(1, sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    pool->opts = *given;
    pool->opts.size = sizeof(pool->opts);
    struct fab_options *o = &pool->opts;
    if (o->auth_key_len) {
        memcpy(pool->auth_key, o->auth_key, o->auth_key_len);
        pool->auth_key_len = o->auth_key_len;
    }
    o->auth_key = NULL; /* the caller's bytes are not kept */
    o->auth_key_len = 0;
    if (o->bootstrap_timeout_ms == 0)
        o->bootstrap_timeout_ms = 2000;
    if (o->bootstrap_max_conns == 0)
        o->bootstrap_max_conns = 64;
    if (o->bootstrap_max_pending == 0)
        o->bootstrap_max_pending = 256;
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
    pool->boot_timeout_ms = o->bootstrap_timeout_ms < o->connect_timeout_ms
                                ? o->bootstrap_timeout_ms
                                : o->connect_timeout_ms;
    copy_str(pool->provider, sizeof(pool->provider), o->provider);
    copy_str(pool->domain_name, sizeof(pool->domain_name), o->domain);
    copy_str(pool->listen_addr, sizeof(pool->listen_addr), o->listen_addr);
    struct in_addr parsed;
    if (inet_pton(AF_INET, pool->listen_addr, &parsed) != 1) {
        /* Checked before libfabric, which would try to resolve it. */
        fab__set_error(err, -EINVAL, "listen_addr '%s' is not an IPv4 address",
                       pool->listen_addr);
        OPENSSL_cleanse(pool->auth_key, sizeof(pool->auth_key));
        free(pool);
        return -EINVAL;
    }
    pool->pending = calloc(o->bootstrap_max_pending, sizeof(*pool->pending));
    if (!pool->pending) {
        OPENSSL_cleanse(pool->auth_key, sizeof(pool->auth_key));
        free(pool);
        return -ENOMEM;
    }
    /* Our copies outlive the caller's strings. */
    o->provider = NULL;
    o->domain = NULL;
    o->listen_addr = NULL;
    pool->listen_fd = pool->wake_fd = pool->epoll_fd = -1;
    pool->user_wait_fd = pool->user_wake_fd = pool->eq_fd = -1;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_mutex_init(&pool->progress_lock, NULL);
    pthread_cond_init(&pool->cb_cond, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->cond, &ca);
    pthread_condattr_destroy(&ca);
    *out = pool;
    return 0;
}

/* Phase 3: the fabric, the bootstrap listener, the wake-up and epoll
 * descriptors. */
static int pool_open(struct fab_pool *pool, struct fab_error *err)
{
    const struct fab_options *o = &pool->opts;
    int rc = open_fabric(pool, err);
    if (rc)
        return rc;
    rc = fab__sock_listen(pool->listen_addr, o->port, &pool->listen_fd,
                          &pool->port);
    if (rc) {
        fab__set_error(err, rc, "bootstrap listener on %s:%u: %s",
                       pool->listen_addr, (unsigned)o->port, fab_strerror(rc));
        return rc;
    }
    pool->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool->user_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pool->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    pool->user_wait_fd = epoll_create1(EPOLL_CLOEXEC);
    if (pool->wake_fd < 0 || pool->user_wake_fd < 0 || pool->epoll_fd < 0 ||
        pool->user_wait_fd < 0) {
        rc = -errno;
        fab__set_error(err, rc, "eventfd/epoll: %s", fab_strerror(rc));
        return rc;
    }
    int *fds[] = {&pool->wake_fd, &pool->listen_fd, &pool->eq_fd};
    for (size_t i = 0; i < 3; i++) {
        /* Tagged by address: bootstrap sessions use their own pointers. */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = fds[i]};
        if (epoll_ctl(pool->epoll_fd, EPOLL_CTL_ADD, *fds[i], &ev) < 0) {
            rc = -errno;
            fab__set_error(err, rc, "epoll_ctl: %s", fab_strerror(rc));
            return rc;
        }
    }
    struct epoll_event uev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(pool->user_wait_fd, EPOLL_CTL_ADD, pool->user_wake_fd, &uev) <
        0) {
        rc = -errno;
        fab__set_error(err, rc, "epoll_ctl: %s", fab_strerror(rc));
        return rc;
    }
    return 0;
}

/* Phase 4: the pool thread. */
static int pool_start(struct fab_pool *pool, struct fab_error *err)
{
    const struct fab_options *o = &pool->opts;
    int rc = -pthread_create(&pool->thread, NULL, pool_thread, pool);
    if (rc) {
        fab__set_error(err, rc, "pthread_create: %s", fab_strerror(rc));
        return rc;
    }
    pool->thread_started = true;
    fab__log(pool, LOG_INFO,
             "node %u: provider %s domain %s, bootstrap %s:%u, mr_mode "
             "0x%llx, ordered writes %s",
             o->node_id, pool->provider, pool->domain_name, pool->listen_addr,
             (unsigned)pool->port,
             (unsigned long long)pool->info->domain_attr->mr_mode,
             pool->ordered_writes ? "yes" : "no");
    return 0;
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
    if (!out) {
        fab__set_error(err, -EINVAL, "missing output");
        return -EINVAL;
    }
    struct fab_options given;
    int rc = pool_validate(opts, &given, err);
    if (rc)
        return rc;
    struct fab_pool *pool = NULL;
    rc = pool_alloc(&given, &pool, err);
    if (rc)
        return rc;
    rc = pool_open(pool, err);
    if (rc == 0)
        rc = pool_start(pool, err);
    if (rc) {
        if (err && err->code == 0)
            fab__set_error(err, rc, "%s", fab_strerror(rc));
        pool_free(pool);
        return rc;
    }
    *out = pool;
    return 0;
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

size_t fab_pool_inject_size(const struct fab_pool *pool)
{
    /* Injected writes are not counted: the completion-wait fallback of
     * FAB_WRITE_FENCE could not order after them.  Only where we progress
     * by hand (tcp): the sockets provider lost the remote completion data
     * of injected writes (rdmc-sockets: no HEADER arrived). */
    if (!pool || !pool->manual_progress ||
        (!pool->ordered_writes && !pool->fence))
        return 0;
    return pool->info->tx_attr->inject_size;
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
        struct fab__frame req, f;
        uint8_t rbuf[FAB__FRAME_MAX];
        fab__frame_init(&req, FAB__MSG_FETCH);
        req.token = key;
        int rc = fab__boot_request(pool, host, port, node_id, &req, rbuf,
                                   sizeof(rbuf), &f, deadline, err);
        if (rc == -EACCES || rc == -EPROTO)
            return rc; /* err says why */
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
