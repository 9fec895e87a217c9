/* The bootstrap exchange at both ends (docs/fab.md, "Connection set-up"):
 * the listener's sessions, served by the pool thread as non-blocking state
 * machines so that no socket can stall it; HELLOs answered and awaiting
 * their connection request; the dialer's request; and the optional
 * challenge-response authentication with the group key (OpenSSL's
 * HMAC-SHA-256, compared in constant time). */
#include "fab-private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mutils/mutils.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* ---- authentication ---------------------------------------------------- */

/* n little-endian bytes of v (1, 2, 4 or 8) at p, through libmutils. */
static size_t put_le(uint8_t *p, uint64_t v, int n)
{
    switch (n) {
    case 8:
        mutils_store_le64(p, v);
        break;
    case 4:
        mutils_store_le32(p, (uint32_t)v);
        break;
    case 2:
        mutils_store_le16(p, (uint16_t)v);
        break;
    default:
        p[0] = (uint8_t)v;
        break;
    }
    return (size_t)n;
}

/* The MAC one side answers with: over both nonces, both node ids, the
 * compatibility fields and the fingerprint.  role ('D' dialer, 'A'
 * acceptor) keeps one side's answer from ever serving as the other's. */
static int auth_mac(const struct fab_pool *pool, uint8_t role,
                    const uint8_t *nonce_d, const uint8_t *nonce_a,
                    uint32_t dialer, uint32_t acceptor,
                    uint8_t out[FAB__MAC_LEN])
{
    struct fab__frame me;
    fab__frame_init(&me, 0);
    static const char label[] = "DFAB-auth-1";
    uint8_t
        msg[sizeof(label) + 1 + 2 * FAB__NONCE_LEN + 4 + 4 + 4 + 2 + 1 + 1 + 8];
    size_t n = 0;
    memcpy(msg, label, sizeof(label));
    n += sizeof(label);
    msg[n++] = role;
    memcpy(msg + n, nonce_d, FAB__NONCE_LEN);
    n += FAB__NONCE_LEN;
    memcpy(msg + n, nonce_a, FAB__NONCE_LEN);
    n += FAB__NONCE_LEN;
    n += put_le(msg + n, dialer, 4);
    n += put_le(msg + n, acceptor, 4);
    n += put_le(msg + n, me.magic, 4);
    n += put_le(msg + n, me.version, 2);
    n += put_le(msg + n, me.endian, 1);
    n += put_le(msg + n, me.word_size, 1);
    n += put_le(msg + n, pool->opts.fingerprint, 8);
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), pool->auth_key, (int)pool->auth_key_len, msg, n,
              out, &len) ||
        len != FAB__MAC_LEN)
        return -EIO;
    return 0;
}

static bool auth_check(const struct fab_pool *pool, uint8_t role,
                       const uint8_t *nonce_d, const uint8_t *nonce_a,
                       uint32_t dialer, uint32_t acceptor, const uint8_t *mac)
{
    uint8_t want[FAB__MAC_LEN];
    if (auth_mac(pool, role, nonce_d, nonce_a, dialer, acceptor, want))
        return false;
    bool ok = CRYPTO_memcmp(want, mac, FAB__MAC_LEN) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

static int random_bytes(uint8_t *buf, size_t len)
{
    return RAND_bytes(buf, (int)len) == 1 ? 0 : -EIO;
}

int fab_auth_key_read(const char *path, void *buf, size_t cap, size_t *len,
                      struct fab_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    if (!path || !buf || !len) {
        fab__set_error(err, -EINVAL, "auth key: missing path or buffer");
        return -EINVAL;
    }
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int rc = -errno;
        fab__set_error(err, rc, "auth key %s: %s", path, fab_strerror(rc));
        return rc;
    }
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        fab__set_error(err, rc, "auth key %s: %s", path, fab_strerror(rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        fab__set_error(err, rc, "auth key %s: not a regular file", path);
    } else if (st.st_mode & S_IRWXO) {
        /* A key everyone may read authenticates nobody. */
        rc = -EPERM;
        fab__set_error(err, rc,
                       "auth key %s: others may access it (mode %03o); "
                       "chmod 600 it",
                       path, (unsigned)(st.st_mode & 0777));
    } else if (st.st_size < FAB_AUTH_KEY_MIN) {
        rc = -EINVAL;
        fab__set_error(err, rc,
                       "auth key %s: %lld bytes, at least %d needed (head -c "
                       "32 /dev/urandom > FILE)",
                       path, (long long)st.st_size, FAB_AUTH_KEY_MIN);
    } else if (st.st_size > FAB_AUTH_KEY_MAX) {
        rc = -EFBIG;
        fab__set_error(err, rc, "auth key %s: %lld bytes, at most %d", path,
                       (long long)st.st_size, FAB_AUTH_KEY_MAX);
    } else if ((size_t)st.st_size > cap) {
        rc = -ENOSPC;
        fab__set_error(err, rc, "auth key %s: %lld bytes, room for %zu", path,
                       (long long)st.st_size, cap);
    }
    size_t want = rc ? 0 : (size_t)st.st_size, got = 0;
    while (got < want) {
        ssize_t n = read(fd, (uint8_t *)buf + got, want - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            fab__set_error(err, rc, "auth key %s: %s", path,
                           n < 0 ? fab_strerror(rc) : "shorter than its size");
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (rc) {
        OPENSSL_cleanse(buf, got);
        return rc;
    }
    *len = got;
    return 0;
}

/* ---- pending HELLOs (pool->lock) --------------------------------------- */

static bool pending_live(const struct fab_pool *pool,
                         const struct fab__pending *p, int64_t now)
{
    return now - p->created_ms <= pool->opts.connect_timeout_ms;
}

int fab__pending_find(struct fab_pool *pool, uint32_t node_id, uint64_t token,
                      int64_t now_ms)
{
    for (uint32_t i = 0; i < pool->n_pending; i++) {
        struct fab__pending *p = &pool->pending[i];
        if (p->node_id == node_id && p->token == token &&
            pending_live(pool, p, now_ms))
            return (int)i;
    }
    return -1;
}

static void pending_remove(struct fab_pool *pool, uint32_t i)
{
    pool->pending[i] = pool->pending[--pool->n_pending];
}

void fab__pending_drop_node(struct fab_pool *pool, uint32_t node_id)
{
    for (uint32_t i = 0; i < pool->n_pending;) {
        if (pool->pending[i].node_id == node_id)
            pending_remove(pool, i);
        else
            i++;
    }
}

void fab__pending_expire(struct fab_pool *pool, int64_t now_ms)
{
    for (uint32_t i = 0; i < pool->n_pending;) {
        if (!pending_live(pool, &pool->pending[i], now_ms))
            pending_remove(pool, i);
        else
            i++;
    }
}

int64_t fab__pending_grace(struct fab_pool *pool, uint32_t node_id,
                           int64_t start_ms, int64_t now_ms)
{
    /* With a group key a pending HELLO came from a key holder: wait for
     * its request as long as it may come.  Without, anyone may have sent
     * it: wait briefly. */
    int64_t grace = pool->auth_key_len ? pool->opts.connect_timeout_ms
                                       : FAB__PENDING_GRACE_MS;
    int64_t until = 0;
    for (uint32_t i = 0; i < pool->n_pending; i++) {
        const struct fab__pending *p = &pool->pending[i];
        /* Only HELLOs older than the borrow count: fresh ones (a spoofer
         * repeating itself) cannot prolong the wait. */
        if (p->node_id != node_id || p->created_ms > start_ms)
            continue;
        int64_t end = p->created_ms + grace;
        if (end > now_ms && end > until)
            until = end;
    }
    return until;
}

/* Records an answered HELLO.  Bounded: at most FAB__PENDING_PER_NODE per
 * node id and bootstrap_max_pending in all; beyond, the oldest (of that
 * node, else of all) makes room, so a flood of HELLOs costs a fixed
 * table and a real peer's HELLO is always recorded. */
static void pending_add(struct fab_pool *pool, uint32_t node_id, uint64_t token,
                        const char *host, uint16_t port)
{
    int64_t now = fab__now_ms();
    uint32_t same = 0, oldest_same = 0, oldest = 0;
    for (uint32_t i = 0; i < pool->n_pending; i++) {
        struct fab__pending *p = &pool->pending[i];
        if (p->created_ms < pool->pending[oldest].created_ms)
            oldest = i;
        if (p->node_id != node_id)
            continue;
        if (same == 0 || p->created_ms < pool->pending[oldest_same].created_ms)
            oldest_same = i;
        same++;
    }
    uint32_t slot;
    if (same >= FAB__PENDING_PER_NODE) {
        slot = oldest_same;
    } else if (pool->n_pending < pool->opts.bootstrap_max_pending) {
        slot = pool->n_pending++;
    } else {
        slot = oldest;
        fab__log(pool, LOG_NOTICE,
                 "bootstrap: %u HELLOs await their connection; the oldest "
                 "(node %u) dropped",
                 pool->n_pending, pool->pending[oldest].node_id);
    }
    struct fab__pending *p = &pool->pending[slot];
    p->node_id = node_id;
    p->token = token;
    p->port = port;
    p->created_ms = now;
    snprintf(p->host, sizeof(p->host), "%s", host);
}

/* ---- listener sessions (pool thread) ----------------------------------- */

static void stat_refused(struct fab_pool *pool)
{
    pthread_mutex_lock(&pool->lock);
    pool->stats.bootstraps_refused++;
    pthread_mutex_unlock(&pool->lock);
}

static void bs_close(struct fab_pool *pool, struct fab__bs *s)
{
    if (s->dead)
        return;
    epoll_ctl(pool->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    s->fd = -1;
    s->dead = true;
    if (s->prev)
        s->prev->next = s->next;
    else
        pool->bs_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        pool->bs_tail = s->prev;
    pool->n_bs--;
    /* Freed at the end of the loop turn: later events of this turn may
     * still name it. */
    s->next = pool->bs_dead;
    s->prev = NULL;
    pool->bs_dead = s;
}

static void bs_watch(struct fab_pool *pool, struct fab__bs *s, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(pool->epoll_fd, EPOLL_CTL_MOD, s->fd, &ev) < 0)
        bs_close(pool, s);
}

/* Writes what is left of out[]; then closes or reads the next frame. */
static void bs_flush(struct fab_pool *pool, struct fab__bs *s)
{
    while (s->out_off < s->out_len) {
        ssize_t n = send(s->fd, s->out + s->out_off, s->out_len - s->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            s->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!s->sending) {
                s->sending = true;
                bs_watch(pool, s, EPOLLOUT);
            }
            return;
        }
        fab__log(pool, LOG_INFO, "bootstrap from %s: reply not sent: %s",
                 s->peer_ip, fab_strerror(n < 0 ? -errno : -EIO));
        bs_close(pool, s);
        return;
    }
    if (s->close_after_send) {
        bs_close(pool, s);
        return;
    }
    if (s->sending) {
        s->sending = false;
        bs_watch(pool, s, EPOLLIN);
    }
}

static void bs_reply(struct fab_pool *pool, struct fab__bs *s, uint8_t type,
                     uint8_t status, uint8_t field, uint32_t dst,
                     uint64_t token, const void *blob, size_t blob_len,
                     bool last)
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
    if (type == FAB__MSG_REPLY && status == FAB__ST_OK) {
        r.addr_len = (uint16_t)pool->pep_addr_len;
        memcpy(r.addr, pool->pep_addr, pool->pep_addr_len);
    }
    r.blob = blob;
    r.blob_len = (uint32_t)blob_len;
    int n = fab__frame_encode(&r, s->out, sizeof(s->out));
    if (n < 0) {
        bs_close(pool, s);
        return;
    }
    s->out_len = (size_t)n;
    s->out_off = 0;
    s->close_after_send = last;
    bs_flush(pool, s);
}

static void refuse(struct fab_pool *pool, struct fab__bs *s,
                   const struct fab__frame *f, enum fab__field field)
{
    stat_refused(pool);
    bs_reply(pool, s, FAB__MSG_REPLY, FAB__ST_MISMATCH, (uint8_t)field,
             f->src_node, 0, NULL, 0, true);
}

static void serve_hello(struct fab_pool *pool, struct fab__bs *s,
                        const struct fab__frame *f)
{
    uint32_t me = pool->opts.node_id;
    if (f->dst_node != me || f->src_node == me) {
        fab__log(pool, LOG_WARNING,
                 "bootstrap from %s: node %u dialed node id %u, I am %u",
                 s->peer_ip, f->src_node, f->dst_node, me);
        refuse(pool, s, f, FAB__F_NODE_ID);
        return;
    }
    /* No connection is made or changed here: the answer is recorded as
     * pending, and only the dialer's connection request carrying its
     * token makes the connection (handle_connreq).  A HELLO that is never
     * followed up (lost, or spoofed) expires without having kept anyone
     * out. */
    uint8_t status = FAB__ST_OK;
    pthread_mutex_lock(&pool->lock);
    struct fab_conn *c = fab__conn_find(pool, f->src_node);
    if (c && c->state == FAB__CONN_DIALING && f->src_node > me) {
        /* Simultaneous connect: the lower node id's attempt (ours) wins;
         * the peer waits for it. */
        status = FAB__ST_DUPLICATE;
    } else if (c && c->state != FAB__CONN_DIALING &&
               !(c->state == FAB__CONN_FAILED && c->refs == 0)) {
        status = FAB__ST_BUSY; /* live, or still held after failing */
    } else {
        pending_add(pool, f->src_node, f->token, s->peer_ip, f->port);
    }
    pthread_mutex_unlock(&pool->lock);
    bs_reply(pool, s, FAB__MSG_REPLY, status, FAB__F_NONE, f->src_node,
             f->token, NULL, 0, true);
}

static void serve_fetch(struct fab_pool *pool, struct fab__bs *s,
                        const struct fab__frame *f)
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
    bs_reply(pool, s, FAB__MSG_FETCH_REPLY,
             found ? FAB__ST_OK : FAB__ST_NOTFOUND, FAB__F_NONE, f->src_node,
             f->token, buf, len, true);
}

static void serve_challenge(struct fab_pool *pool, struct fab__bs *s,
                            const struct fab__frame *f)
{
    uint32_t me = pool->opts.node_id;
    if (!pool->auth_key_len) {
        fab__log(pool, LOG_WARNING,
                 "bootstrap from %s (node %u): the peer authenticates with a "
                 "group key, this pool has none: refused",
                 s->peer_ip, f->src_node);
        refuse(pool, s, f, FAB__F_AUTH);
        return;
    }
    if (f->dst_node != me || f->src_node == me) {
        fab__log(pool, LOG_WARNING,
                 "bootstrap from %s: node %u dialed node id %u, I am %u",
                 s->peer_ip, f->src_node, f->dst_node, me);
        refuse(pool, s, f, FAB__F_NODE_ID);
        return;
    }
    if (f->blob_len != FAB__NONCE_LEN) {
        fab__log(pool, LOG_WARNING, "bootstrap from %s: malformed challenge",
                 s->peer_ip);
        stat_refused(pool);
        bs_close(pool, s);
        return;
    }
    memcpy(s->nonce_d, f->blob, FAB__NONCE_LEN);
    uint8_t blob[FAB__NONCE_LEN + FAB__MAC_LEN];
    if (random_bytes(s->nonce_a, FAB__NONCE_LEN) ||
        auth_mac(pool, 'A', s->nonce_d, s->nonce_a, f->src_node, me,
                 blob + FAB__NONCE_LEN)) {
        fab__log(pool, LOG_ERR, "bootstrap: no random bytes or HMAC failed");
        bs_close(pool, s);
        return;
    }
    memcpy(blob, s->nonce_a, FAB__NONCE_LEN);
    s->challenged = true;
    s->peer_node = f->src_node;
    bs_reply(pool, s, FAB__MSG_CHALLENGE_REPLY, FAB__ST_OK, FAB__F_NONE,
             f->src_node, 0, blob, sizeof(blob), false);
}

/* One complete frame in s->in. */
static void bs_frame(struct fab_pool *pool, struct fab__bs *s)
{
    size_t len = s->in_len - 4;
    s->in_len = 0;
    struct fab__frame f;
    int rc = fab__frame_decode(s->in + 4, len, &f);
    if (rc < 0) {
        fab__log(pool, LOG_WARNING, "bootstrap from %s: malformed frame",
                 s->peer_ip);
        stat_refused(pool);
        bs_close(pool, s);
        return;
    }
    char msg[160];
    enum fab__field bad =
        fab__frame_check(&f, pool->opts.fingerprint, msg, sizeof(msg));
    bool request = f.type == FAB__MSG_HELLO || f.type == FAB__MSG_FETCH;
    if (bad == FAB__F_NONE &&
        !(request || (f.type == FAB__MSG_CHALLENGE && !s->challenged))) {
        bad = FAB__F_TYPE;
        snprintf(msg, sizeof(msg), "unexpected frame type %u", f.type);
    }
    if (bad != FAB__F_NONE) {
        fab__log(pool, LOG_WARNING, "bootstrap from %s (node %u): %s",
                 s->peer_ip, f.src_node, msg);
        refuse(pool, s, &f, bad);
        return;
    }
    if (f.type == FAB__MSG_CHALLENGE) {
        serve_challenge(pool, s, &f);
        return;
    }
    if (pool->auth_key_len) {
        /* Nothing about the peer is kept, and nothing is answered but a
         * refusal, until it proved the key. */
        if (!s->challenged) {
            fab__log(pool, LOG_WARNING,
                     "bootstrap from %s (node %u): not authenticated (this "
                     "pool requires the group key): refused",
                     s->peer_ip, f.src_node);
            refuse(pool, s, &f, FAB__F_AUTH);
            return;
        }
        if (f.src_node != s->peer_node || f.blob_len != FAB__MAC_LEN ||
            !auth_check(pool, 'D', s->nonce_d, s->nonce_a, s->peer_node,
                        pool->opts.node_id, f.blob)) {
            fab__log(pool, LOG_WARNING,
                     "bootstrap from %s (node %u): authentication failed "
                     "(another key?): refused",
                     s->peer_ip, f.src_node);
            refuse(pool, s, &f, FAB__F_AUTH);
            return;
        }
    }
    if (f.type == FAB__MSG_FETCH)
        serve_fetch(pool, s, &f);
    else
        serve_hello(pool, s, &f);
}

void fab__boot_event(struct fab_pool *pool, struct fab__bs *s)
{
    if (s->dead)
        return;
    if (s->sending) {
        bs_flush(pool, s);
        return;
    }
    for (;;) {
        size_t total = 4;
        if (s->in_len >= 4) {
            uint32_t body = (uint32_t)s->in[0] | (uint32_t)s->in[1] << 8 |
                            (uint32_t)s->in[2] << 16 | (uint32_t)s->in[3] << 24;
            if (body == 0 || body > FAB__FRAME_MAX) {
                fab__log(pool, LOG_WARNING,
                         "bootstrap from %s: malformed frame (length %u)",
                         s->peer_ip, body);
                stat_refused(pool);
                bs_close(pool, s);
                return;
            }
            total = 4 + (size_t)body;
            if (s->in_len == total) {
                bs_frame(pool, s);
                if (s->dead || s->sending)
                    return;
                continue; /* the next frame after a challenge */
            }
        }
        ssize_t n = recv(s->fd, s->in + s->in_len, total - s->in_len, 0);
        if (n > 0) {
            s->in_len += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (s->challenged && s->in_len == 0)
            fab__log(pool, LOG_WARNING,
                     "bootstrap from %s (node %u): closed after our "
                     "challenge reply (another key?)",
                     s->peer_ip, s->peer_node);
        else
            fab__log(pool, LOG_WARNING, "bootstrap from %s: %s", s->peer_ip,
                     n == 0 ? "closed before a whole frame"
                            : fab_strerror(-errno));
        stat_refused(pool);
        bs_close(pool, s);
        return;
    }
}

void fab__boot_accept(struct fab_pool *pool)
{
    for (;;) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);
        int fd = accept4(pool->listen_fd, (struct sockaddr *)&sin, &sl,
                         SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EMFILE || errno == ENFILE) && pool->bs_tail) {
                /* Out of descriptors: the oldest session makes room. */
                bs_close(pool, pool->bs_tail);
                continue;
            }
            return;
        }
        if (pool->n_bs >= pool->opts.bootstrap_max_conns && pool->bs_tail) {
            /* Idle sockets held open must not keep a real peer waiting:
             * the oldest unfinished one goes (a real exchange takes a
             * millisecond, so it is never the oldest for long). */
            fab__log(pool, LOG_NOTICE,
                     "bootstrap from %s: %u connections unfinished, the "
                     "oldest closed",
                     pool->bs_tail->peer_ip, pool->n_bs);
            stat_refused(pool);
            bs_close(pool, pool->bs_tail);
        }
        struct fab__bs *s = malloc(sizeof(*s));
        if (!s) {
            close(fd);
            continue;
        }
        memset(s, 0, offsetof(struct fab__bs, in));
        s->fd = fd;
        s->deadline_ms = fab__now_ms() + pool->boot_timeout_ms;
        snprintf(s->peer_ip, sizeof(s->peer_ip), "?");
        if (sl >= sizeof(sin) && sin.sin_family == AF_INET)
            inet_ntop(AF_INET, &sin.sin_addr, s->peer_ip, sizeof(s->peer_ip));
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        if (epoll_ctl(pool->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(s);
            continue;
        }
        s->next = pool->bs_head;
        if (pool->bs_head)
            pool->bs_head->prev = s;
        else
            pool->bs_tail = s;
        pool->bs_head = s;
        pool->n_bs++;
        /* Usually the frame is there already. */
        fab__boot_event(pool, s);
    }
}

static void free_dead(struct fab_pool *pool)
{
    while (pool->bs_dead) {
        struct fab__bs *s = pool->bs_dead;
        pool->bs_dead = s->next;
        OPENSSL_cleanse(s->nonce_a, sizeof(s->nonce_a));
        free(s);
    }
}

void fab__boot_tick(struct fab_pool *pool, int64_t now_ms)
{
    /* Oldest at the tail; deadlines grow towards the head. */
    while (pool->bs_tail && pool->bs_tail->deadline_ms <= now_ms) {
        struct fab__bs *s = pool->bs_tail;
        fab__log(pool, LOG_NOTICE, "bootstrap from %s: timed out", s->peer_ip);
        stat_refused(pool);
        bs_close(pool, s);
    }
    free_dead(pool);
}

void fab__boot_free_all(struct fab_pool *pool)
{
    while (pool->bs_head)
        bs_close(pool, pool->bs_head);
    free_dead(pool);
}

/* ---- the dialer's side -------------------------------------------------- */

static int recv_reply(int fd, uint8_t *rbuf, size_t rcap,
                      struct fab__frame *rep, int64_t deadline)
{
    int rc = fab__sock_recv_frame(fd, rbuf, rcap, deadline);
    if (rc >= 0)
        rc = fab__frame_decode(rbuf, (size_t)rc, rep);
    return rc;
}

static int auth_refused(struct fab_pool *pool, uint32_t peer, const char *why,
                        struct fab_error *err)
{
    fab__set_error(err, -EACCES, "bootstrap with node %u: %s", peer, why);
    fab__log(pool, LOG_WARNING, "bootstrap with node %u: %s", peer, why);
    return -EACCES;
}

static bool refused_auth(const struct fab__frame *rep)
{
    return rep->status == FAB__ST_MISMATCH && rep->field == FAB__F_AUTH;
}

int fab__boot_request(struct fab_pool *pool, const char *host, uint16_t port,
                      uint32_t peer, struct fab__frame *req, uint8_t *rbuf,
                      size_t rcap, struct fab__frame *rep, int64_t deadline_ms,
                      struct fab_error *err)
{
    uint32_t me = pool->opts.node_id;
    req->src_node = me;
    req->dst_node = peer;
    req->port = pool->port;
    req->fingerprint = pool->opts.fingerprint;
    int fd = -1;
    int rc = fab__sock_connect(host, port, deadline_ms, &fd);
    if (rc)
        return rc;
    uint8_t mac_d[FAB__MAC_LEN];
    if (pool->auth_key_len) {
        uint8_t nonce_d[FAB__NONCE_LEN], nonce_a[FAB__NONCE_LEN];
        struct fab__frame ch;
        fab__frame_init(&ch, FAB__MSG_CHALLENGE);
        ch.src_node = me;
        ch.dst_node = peer;
        ch.port = pool->port;
        ch.fingerprint = pool->opts.fingerprint;
        ch.blob = nonce_d;
        ch.blob_len = FAB__NONCE_LEN;
        rc = random_bytes(nonce_d, sizeof(nonce_d));
        if (rc == 0)
            rc = fab__send_frame(fd, &ch, deadline_ms);
        if (rc == 0)
            rc = recv_reply(fd, rbuf, rcap, rep, deadline_ms);
        if (rc)
            goto out;
        if (refused_auth(rep)) {
            rc = auth_refused(pool, peer,
                              "refused our authentication (it has no group "
                              "key?)",
                              err);
            goto out;
        }
        /* Mismatches (fingerprint, node id) are the caller's to name. */
        if (rep->status == FAB__ST_MISMATCH ||
            fab__frame_check(rep, pool->opts.fingerprint, NULL, 0) !=
                FAB__F_NONE)
            goto out;
        if (rep->type != FAB__MSG_CHALLENGE_REPLY ||
            rep->blob_len != FAB__NONCE_LEN + FAB__MAC_LEN ||
            rep->src_node != peer) {
            rc = -EPROTO;
            fab__set_error(err, rc,
                           "bootstrap with node %u: unexpected answer to our "
                           "challenge (type %u, node %u)",
                           peer, rep->type, rep->src_node);
            goto out;
        }
        memcpy(nonce_a, rep->blob, FAB__NONCE_LEN);
        if (!auth_check(pool, 'A', nonce_d, nonce_a, me, peer,
                        rep->blob + FAB__NONCE_LEN)) {
            rc = auth_refused(pool, peer,
                              "authentication failed: its group key differs "
                              "from ours",
                              err);
            goto out;
        }
        rc = auth_mac(pool, 'D', nonce_d, nonce_a, me, peer, mac_d);
        if (rc)
            goto out;
        req->blob = mac_d;
        req->blob_len = FAB__MAC_LEN;
    }
    rc = fab__send_frame(fd, req, deadline_ms);
    if (rc == 0)
        rc = recv_reply(fd, rbuf, rcap, rep, deadline_ms);
    if (rc == 0 && refused_auth(rep))
        rc = auth_refused(pool, peer,
                          pool->auth_key_len
                              ? "refused our authentication (another key?)"
                              : "it requires a group key, we have none",
                          err);
out:
    close(fd);
    if (pool->auth_key_len) {
        req->blob = NULL;
        req->blob_len = 0;
    }
    return rc;
}
