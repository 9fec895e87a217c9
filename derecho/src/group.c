/* The group: lifecycle, the contact rule, and the first membership
 * protocol over the control channel (control.c): the leader admits joins
 * in batches and announces every view to every member; a member whose
 * control connection closes leaves in the next view.  Failure detection
 * over the SST, ragged edges and multicast are later steps (DESIGN.md,
 * "libderecho inside"). */
#include "derecho-private.h"

#include <conf/conf.h>
#include <mutils/mutils.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define MAX_PENDING 64          /* accepted connections awaiting a request */
#define PENDING_TIMEOUT_MS 5000 /* a silent one is dropped after this */
#define FRAME_TIMEOUT_MS 1000   /* to read a frame that has begun to arrive */
#define BATCH_WINDOW_MS                                                        \
    50 /* joins within this of the first are one                               \
          view change (when more are in flight) */
#define MAX_REDIRECTS 4
#define TAKEOVER_MS 2000 /* a new leader waits this long for survivors */
#define MAX_REQUEST 4096

struct peer {
    int fd;
    uint32_t node_id;
};

/* An accepted connection whose join request is still arriving: read as
 * bytes come, never blocking the leader's loop on one peer. */
struct pending {
    int fd;
    int64_t since_ms;
    size_t have; /* bytes of frame received */
    size_t need; /* bytes of frame expected so far */
    uint8_t frame[DERECHO_CONTROL_HEADER_SIZE + MAX_REQUEST];
};

struct joiner {
    int fd;
    struct derecho_member member;
};

struct derecho_group {
    struct derecho_group_options o;
    const struct derecho_layout_spec *spec;
    uint64_t fingerprint;
    struct derecho_member me;
    bool leader;
    int listen_fd;
    int leader_fd; /* members: the connection to the leader, or -1 */
    int wake_fd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* guards view */
    struct derecho_view *view;
    struct derecho__smc *smc; /* the pool, SST tables, delivery thread */
    /* Leader only, owned by the group's thread. */
    struct peer *peers;
    size_t num_peers;
    struct pending *pending; /* MAX_PENDING of them */
    size_t num_pending;
    struct joiner batch[MAX_PENDING]; /* admitted, not yet in a view */
    size_t batch_len;
    int64_t batch_since_ms;
    /* Told by the multicast on the SST's polling thread (under lock):
     * members suspected, and whether a member suspects me.  wake_fd
     * wakes the group's thread; stop_requested tells it to end. */
    uint32_t suspects[MAX_PENDING];
    size_t num_suspects;
    bool expelled_seen, partitioned_seen;
    atomic_bool stop_requested;
    atomic_int stopped; /* 0 or DERECHO_STOPPED_* */
    /* Leader takeover: I became the leader after old_leader failed and
     * wait (bounded) for the survivors to reconnect before the change. */
    bool takeover;
    int64_t takeover_since_ms;
    uint32_t old_leader;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *level_name(int level)
{
    return level <= LOG_ERR                           ? "error"
           : level == LOG_WARNING                     ? "warning"
           : level == LOG_NOTICE || level == LOG_INFO ? "info"
                                                      : "debug";
}

static void glog(const struct derecho_group *g, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void glog(const struct derecho_group *g, int level, const char *fmt, ...)
{
    if (level > g->o.log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (g->o.log)
        g->o.log(g->o.log_ctx, level, "derecho", msg);
    else
        fprintf(stderr, "derecho: %s: %s\n", level_name(level), msg);
}

void derecho_group_options_init(struct derecho_group_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof(*o));
    o->size = sizeof(*o);
    o->join_timeout_ms = 30000;
    o->log_level = LOG_WARNING;
}

/* ---- views ------------------------------------------------------------- */

static int copy_view(const struct derecho_view *v, uint32_t me,
                     struct derecho_view **out)
{
    struct mutils_writer w;
    int rc = mutils_writer_init_growable(&w, 256);
    if (rc == 0)
        rc = derecho_view_encode(v, &w);
    if (rc == 0)
        rc = derecho_view_decode(mutils_writer_data(&w), mutils_writer_len(&w),
                                 me, out, NULL);
    mutils_writer_fini(&w);
    return rc;
}

int derecho_group_get_view(struct derecho_group *g, struct derecho_view **out)
{
    if (out)
        *out = NULL;
    if (!g || !out)
        return -EINVAL;
    pthread_mutex_lock(&g->lock);
    int rc = g->view ? copy_view(g->view, g->me.node_id, out) : -ENOENT;
    pthread_mutex_unlock(&g->lock);
    return rc;
}

static void stop_member(struct derecho_group *g, int reason);

/* Makes v current and tells the application, with no lock held.  Only
 * the thread that installs views frees them, so v stays valid for the
 * callback. */
static void install(struct derecho_group *g, struct derecho_view *v)
{
    /* The old view's epoch ends first (its last deliveries come before
     * the new view is announced to the application), then every member
     * of v creates v's table together. */
    struct derecho__smc_view *sv = NULL;
    if (g->smc) {
        derecho__smc_view_end(g->smc, v);
        int why = derecho__smc_stopped(g->smc);
        if (why) {
            /* Expelled or partitioned while ending the view: the next one
             * is not installed here. */
            glog(g, LOG_WARNING, "view %lld not installed: stopped",
                 (long long)derecho_view_id(v));
            derecho_view_destroy(v);
            stop_member(g, why);
            return;
        }
        int rc = derecho__smc_view_start(g->smc, v, &sv);
        if (rc)
            glog(g, LOG_ERR,
                 "view %lld: no multicast in this view (%s); sends wait "
                 "for the next",
                 (long long)derecho_view_id(v), derecho_strerror(rc));
    }
    pthread_mutex_lock(&g->lock);
    struct derecho_view *old = g->view;
    g->view = v;
    pthread_mutex_unlock(&g->lock);
    derecho_view_destroy(old);
    size_t joined, departed;
    derecho_view_joined(v, &joined);
    derecho_view_departed(v, &departed);
    glog(g, LOG_INFO,
         "view %lld installed: %zu members (%zu joined, %zu "
         "departed), my rank %d",
         (long long)derecho_view_id(v), derecho_view_num_members(v), joined,
         departed, derecho_view_my_rank(v));
    if (g->o.on_view)
        g->o.on_view(g->o.ctx, v);
    if (sv)
        derecho__smc_view_activate(g->smc, sv);
}

static int send_encoded(int fd, int type, int (*encode)(const void *, void *),
                        const void *msg)
{
    uint8_t buf[512];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof(buf));
    int rc = encode(msg, &w);
    if (rc == 0)
        rc = derecho_control_send(fd, type, buf, mutils_writer_len(&w),
                                  FRAME_TIMEOUT_MS);
    return rc;
}

static int encode_answer(const void *ans, void *w)
{
    return derecho_join_answer_encode(ans, w);
}

static int encode_request(const void *req, void *w)
{
    return derecho_join_request_encode(req, w);
}

/* ---- failures ------------------------------------------------------------ */

/* The multicast's hook (SST polling thread: never blocks for long). */
static void smc_event(void *ctx, int kind, uint32_t node_id)
{
    struct derecho_group *g = ctx;
    pthread_mutex_lock(&g->lock);
    if (kind == DERECHO__SMC_EXPELLED)
        g->expelled_seen = true;
    else if (kind == DERECHO__SMC_PARTITIONED)
        g->partitioned_seen = true;
    else if (g->num_suspects < MAX_PENDING)
        g->suspects[g->num_suspects++] = node_id;
    pthread_mutex_unlock(&g->lock);
    uint64_t one = 1;
    if (write(g->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: the thread is being woken anyway */
    }
}

/* This process is no member any more: stop sends and deliveries, drop the
 * leader's connection, tell the application once.  Group's thread. */
static void stop_member(struct derecho_group *g, int reason)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g->stopped, &expected, reason))
        return;
    if (g->smc)
        derecho__smc_stop(g->smc, reason);
    if (g->leader_fd >= 0) {
        close(g->leader_fd);
        g->leader_fd = -1;
    }
    glog(g, LOG_ERR, "stopped: %s",
         reason == DERECHO_STOPPED_EXPELLED ? "expelled" : "partitioned");
    if (g->o.on_stopped)
        g->o.on_stopped(g->o.stopped_ctx, reason);
}

int derecho_group_stopped(struct derecho_group *g)
{
    if (!g)
        return -EINVAL;
    int why = atomic_load(&g->stopped);
    /* The multicast stops first (on the SST's thread); the group's
     * thread tells the application right after. */
    return why ? why : g->smc ? derecho__smc_stopped(g->smc) : 0;
}

/* ---- leader -------------------------------------------------------------- */

struct live_ctx {
    const struct derecho_view *view;
    const struct joiner *batch;
    size_t batch_len;
};

static bool is_live(void *ctx, uint32_t node_id)
{
    const struct live_ctx *l = ctx;
    if (derecho_view_rank_of(l->view, node_id) >= 0)
        return true;
    for (size_t i = 0; i < l->batch_len; i++)
        if (l->batch[i].member.node_id == node_id)
            return true;
    return false;
}

/* Sends a final answer (refusal or redirect) and closes. */
static void refuse(int fd, const struct derecho_join_answer *ans)
{
    send_encoded(fd, DERECHO_CONTROL_JOIN_ANSWER, encode_answer, ans);
    close(fd);
}

/* Decides a complete join request: into the batch, refused, or (at a
 * member that is not the leader) redirected. */
static void decide(struct derecho_group *g, int fd, const uint8_t *body,
                   size_t len)
{
    struct derecho_join_request req;
    struct derecho_join_answer ans;
    if (derecho_join_request_decode(body, len, &req) != 0) {
        glog(g, LOG_WARNING,
             "control connection dropped: malformed join "
             "request");
        close(fd);
        return;
    }
    if (!g->leader) {
        /* Only the leader admits: send the joiner there.  g->view is only
         * replaced on this thread, so it can be read without the lock. */
        memset(&ans, 0, sizeof(ans));
        const struct derecho_member *leader = derecho_view_member(
            g->view, (size_t)derecho_view_leader_rank(g->view));
        ans.status = DERECHO_JOIN_REDIRECT;
        ans.leader_id = leader->node_id;
        memcpy(ans.leader_ip, leader->ip, sizeof(ans.leader_ip));
        ans.leader_port = leader->gms_port;
        refuse(fd, &ans);
        return;
    }
    if (derecho_view_rank_of(g->view, req.member.node_id) >= 0 &&
        req.member.node_id != g->me.node_id &&
        req.fingerprint == g->fingerprint) {
        /* A member of the view reconnecting to me, its new leader. */
        memset(&ans, 0, sizeof(ans));
        ans.status = DERECHO_JOIN_ACCEPTED;
        ans.leader_id = g->me.node_id;
        struct peer *peers =
            realloc(g->peers, (g->num_peers + 1) * sizeof(*peers));
        if (!peers || send_encoded(fd, DERECHO_CONTROL_JOIN_ANSWER,
                                   encode_answer, &ans) != 0) {
            if (peers)
                g->peers = peers;
            close(fd);
            return;
        }
        g->peers = peers;
        for (size_t i = 0; i < g->num_peers; i++)
            if (g->peers[i].node_id == req.member.node_id &&
                g->peers[i].fd >= 0) {
                close(g->peers[i].fd); /* an older connection */
                g->peers[i].fd = -1;
            }
        g->peers[g->num_peers].fd = fd;
        g->peers[g->num_peers].node_id = req.member.node_id;
        g->num_peers++;
        glog(g, LOG_INFO, "node %u reconnected to me, the new leader",
             req.member.node_id);
        return;
    }
    struct live_ctx live = {g->view, g->batch, g->batch_len};
    derecho_join_check(&req, g->fingerprint, g->me.node_id, is_live, &live,
                       &ans);
    if (ans.status != DERECHO_JOIN_ACCEPTED) {
        glog(g, LOG_WARNING, "join of node %u refused: %s", req.member.node_id,
             ans.reason);
        refuse(fd, &ans);
        return;
    }
    if (g->batch_len == 0)
        g->batch_since_ms = now_ms();
    g->batch[g->batch_len].fd = fd;
    g->batch[g->batch_len].member = req.member;
    g->batch_len++;
}

/* Reads what has arrived on a pending connection.  Returns true when the
 * connection is done with (decided, refused or dropped), false while its
 * request is incomplete. */
static bool pending_read(struct derecho_group *g, struct pending *p)
{
    /* Whatever has arrived, up to the largest frame accepted: a header and
     * its body usually come together. */
    ssize_t r = recv(p->fd, p->frame + p->have, sizeof(p->frame) - p->have,
                     MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return false;
    if (r <= 0) {
        glog(g, LOG_INFO, "control connection closed before its request");
        close(p->fd);
        return true;
    }
    p->have += (size_t)r;
    if (p->have < p->need)
        return false;
    if (p->need == DERECHO_CONTROL_HEADER_SIZE) {
        struct derecho_control_header h;
        struct derecho_error err;
        int rc =
            derecho_control_header_decode(p->frame, p->have, &h, NULL, &err);
        if (rc == -EPROTO && err.field != DERECHO_FIELD_MAGIC) {
            /* A Derecho process of another build: tell it which field. */
            struct derecho_join_answer ans;
            memset(&ans, 0, sizeof(ans));
            ans.status = DERECHO_JOIN_REFUSED;
            ans.field = err.field;
            snprintf(ans.reason, sizeof(ans.reason), "%s differs",
                     derecho_compat_field_name(err.field));
            glog(g, LOG_WARNING, "join refused: %s", err.msg);
            refuse(p->fd, &ans);
            return true;
        }
        if (rc == 0 && (h.type != DERECHO_CONTROL_JOIN_REQUEST ||
                        h.body_len > MAX_REQUEST))
            rc = derecho__fail(&err, -EBADMSG,
                               "frame type %u of %u bytes where a join "
                               "request was expected",
                               h.type, h.body_len);
        if (rc) {
            glog(g, LOG_WARNING, "control connection dropped: %s", err.msg);
            close(p->fd);
            return true;
        }
        p->need += h.body_len;
        if (p->have < p->need)
            return false;
    }
    if (p->have > p->need) {
        /* A joiner sends one request, then waits for the answer. */
        glog(g, LOG_WARNING,
             "control connection dropped: bytes after the "
             "join request");
        close(p->fd);
        return true;
    }
    decide(g, p->fd, p->frame + DERECHO_CONTROL_HEADER_SIZE,
           p->need - DERECHO_CONTROL_HEADER_SIZE);
    return true;
}

/* Installs the next view: the current members minus departed, plus the
 * batch of joiners, announced to everyone. */
static void change_view(struct derecho_group *g, const uint32_t *departed,
                        size_t num_departed)
{
    struct joiner *batch = g->batch;
    size_t batch_len = g->batch_len;
    g->batch_len = 0;
    const struct derecho_view *cur = g->view;
    size_t n = derecho_view_num_members(cur);
    struct derecho_member *members =
        calloc(n + batch_len + 1, sizeof(*members));
    struct peer *peers =
        realloc(g->peers, (g->num_peers + batch_len + 1) * sizeof(*peers));
    if (peers)
        g->peers = peers;
    size_t m = 0;
    for (size_t i = 0; members && i < n; i++) {
        const struct derecho_member *x = derecho_view_member(cur, i);
        bool gone = false;
        for (size_t k = 0; k < num_departed; k++)
            gone |= x->node_id == departed[k];
        if (!gone)
            members[m++] = *x;
    }
    for (size_t i = 0; members && i < batch_len; i++)
        members[m++] = batch[i].member;
    struct derecho_view *next = NULL;
    struct derecho_error err;
    int rc = members && peers ? 0 : -ENOMEM;
    if (rc == 0)
        rc = derecho_view_create((uint32_t)derecho_view_id(cur) + 1, members, m,
                                 0, cur, g->spec, g->me.node_id, &next, &err);
    free(members);
    if (rc) {
        glog(g, LOG_ERR, "cannot make the next view: %s",
             rc == -ENOMEM ? "out of memory" : err.msg);
        for (size_t i = 0; i < batch_len; i++)
            close(batch[i].fd);
        return;
    }
    struct derecho_join_answer ans;
    memset(&ans, 0, sizeof(ans));
    ans.status = DERECHO_JOIN_ACCEPTED;
    ans.leader_id = g->me.node_id;
    for (size_t i = 0; i < batch_len; i++) {
        if (send_encoded(batch[i].fd, DERECHO_CONTROL_JOIN_ANSWER,
                         encode_answer, &ans) != 0) {
            close(batch[i].fd);
            batch[i].fd = -1; /* leaves in the next change */
        }
        g->peers[g->num_peers].fd = batch[i].fd;
        g->peers[g->num_peers].node_id = batch[i].member.node_id;
        g->num_peers++;
    }
    struct mutils_writer w;
    rc = mutils_writer_init_growable(&w, 1024);
    if (rc == 0)
        rc = derecho_view_encode(next, &w);
    for (size_t i = 0; rc == 0 && i < g->num_peers; i++) {
        if (g->peers[i].fd < 0)
            continue;
        if (derecho_control_send(g->peers[i].fd, DERECHO_CONTROL_VIEW,
                                 mutils_writer_data(&w), mutils_writer_len(&w),
                                 FRAME_TIMEOUT_MS) != 0) {
            glog(g, LOG_WARNING, "node %u: view announcement failed",
                 g->peers[i].node_id);
            close(g->peers[i].fd);
            g->peers[i].fd = -1;
        }
    }
    mutils_writer_fini(&w);
    install(g, next);
}

/* The leader failed (its connection closed or the SST suspects it): the
 * lowest-ranked member of the view that is neither it nor suspected takes
 * over.  If that is me I become the leader and wait for the others to
 * reconnect; otherwise I reconnect to it (bounded: it may not have
 * noticed yet and redirect me meanwhile).  Group's thread. */
static void leader_lost(struct derecho_group *g)
{
    const struct derecho_view *v = g->view;
    const struct derecho_member *old =
        derecho_view_member(v, (size_t)derecho_view_leader_rank(v));
    uint32_t old_id = old->node_id;
    if (g->leader_fd >= 0) {
        close(g->leader_fd);
        g->leader_fd = -1;
    }
    const struct derecho_member *next = NULL;
    for (size_t i = 0; i < derecho_view_num_members(v) && !next; i++) {
        const struct derecho_member *m = derecho_view_member(v, i);
        if (m->node_id != old_id &&
            (m->node_id == g->me.node_id ||
             !derecho__smc_suspects(g->smc, m->node_id)))
            next = m;
    }
    if (!next)
        return;
    glog(g, LOG_WARNING, "leader %u lost: node %u takes over", old_id,
         next->node_id);
    if (next->node_id == g->me.node_id) {
        g->leader = true;
        g->takeover = true;
        g->takeover_since_ms = now_ms();
        g->old_leader = old_id;
        return;
    }
    struct derecho_join_request req = {.member = g->me,
                                       .fingerprint = g->fingerprint};
    int64_t deadline = now_ms() + TAKEOVER_MS + 1000;
    while (now_ms() < deadline && !atomic_load(&g->stopped)) {
        int fd, type = 0;
        void *body = NULL;
        size_t len = 0;
        struct derecho_join_answer ans;
        struct derecho_error err;
        int rc = derecho_control_connect(next->ip, next->gms_port, 500, &fd);
        if (rc == 0) {
            rc = send_encoded(fd, DERECHO_CONTROL_JOIN_REQUEST, encode_request,
                              &req);
            if (rc == 0)
                rc = derecho_control_recv(fd, 1000, 4096, &type, &body, &len,
                                          &err);
            if (rc == 0 && (type != DERECHO_CONTROL_JOIN_ANSWER ||
                            derecho_join_answer_decode(body, len, &ans) != 0))
                rc = -EPROTO;
            free(body);
            if (rc == 0 && ans.status == DERECHO_JOIN_ACCEPTED) {
                g->leader_fd = fd;
                glog(g, LOG_INFO, "reconnected to the new leader %u",
                     next->node_id);
                return;
            }
            close(fd);
        }
        pthread_mutex_lock(&g->lock);
        bool expelled = g->expelled_seen || g->partitioned_seen;
        pthread_mutex_unlock(&g->lock);
        if (expelled)
            return;
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    glog(g, LOG_ERR, "could not reconnect to the new leader %u", next->node_id);
}

/* A member reads the next view from the leader's connection. */
static void read_leader(struct derecho_group *g)
{
    int type;
    void *body = NULL;
    size_t len;
    struct derecho_error err;
    struct derecho_view *v = NULL;
    int rc = derecho_control_recv(g->leader_fd, FRAME_TIMEOUT_MS,
                                  DERECHO_MAX_FRAME, &type, &body, &len, &err);
    if (rc == 0 && type == DERECHO_CONTROL_VIEW)
        rc = derecho_view_decode(body, len, g->me.node_id, &v, &err);
    else if (rc == 0)
        rc = derecho__fail(&err, -EBADMSG, "unexpected frame type %d", type);
    free(body);
    if (rc == 0 && derecho_view_my_rank(v) < 0) {
        glog(g, LOG_WARNING, "view %lld does not include me: expelled",
             (long long)derecho_view_id(v));
        derecho_view_destroy(v);
        stop_member(g, DERECHO_STOPPED_EXPELLED);
        return;
    } else if (rc == 0) {
        install(g, v);
    }
    if (rc) {
        glog(g, LOG_WARNING, "connection to the leader lost: %s",
             rc == -ECONNRESET ? "closed" : err.msg);
        close(g->leader_fd);
        g->leader_fd = -1;
        leader_lost(g);
    }
}

/* One turn of the group's loop, for the leader and members alike. */
static void group_round(struct derecho_group *g, struct pollfd *fds, bool *stop)
{
    /* [0] wake, [1] listen, [2] the leader's connection (members; -1 is
     * ignored by poll), then peers (leader), then pending connections. */
    size_t np = g->num_peers, nq = g->num_pending;
    fds[0] = (struct pollfd){.fd = g->wake_fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = g->listen_fd, .events = POLLIN};
    fds[2] = (struct pollfd){.fd = g->leader_fd, .events = POLLIN};
    for (size_t i = 0; i < np; i++)
        fds[3 + i] = (struct pollfd){.fd = g->peers[i].fd, .events = POLLIN};
    for (size_t i = 0; i < nq; i++)
        fds[3 + np + i] =
            (struct pollfd){.fd = g->pending[i].fd, .events = POLLIN};
    int timeout = 1000;
    if (g->batch_len) {
        int64_t left = g->batch_since_ms + BATCH_WINDOW_MS - now_ms();
        timeout = left < 0 ? 0 : (int)left;
    }
    if (poll(fds, 3 + np + nq, timeout) < 0)
        return;
    if (fds[0].revents) {
        uint64_t drain;
        if (read(g->wake_fd, &drain, sizeof(drain)) < 0) {
            /* nothing to drain */
        }
        if (atomic_load(&g->stop_requested)) {
            *stop = true;
            return;
        }
    }
    /* What the SST told: expelled, or members suspected (the leader
     * removes them in the next view, as a closed connection). */
    pthread_mutex_lock(&g->lock);
    bool expelled = g->expelled_seen, partitioned = g->partitioned_seen;
    uint32_t suspects[MAX_PENDING];
    size_t num_suspects = g->num_suspects;
    memcpy(suspects, g->suspects, num_suspects * sizeof(*suspects));
    g->num_suspects = 0;
    pthread_mutex_unlock(&g->lock);
    if (expelled)
        stop_member(g, DERECHO_STOPPED_EXPELLED);
    if (partitioned)
        stop_member(g, DERECHO_STOPPED_PARTITIONED);
    if (atomic_load(&g->stopped))
        return; /* a stopped member only waits for destroy */
    if (g->leader_fd >= 0 && fds[2].revents)
        read_leader(g);
    if (!g->leader && g->leader_fd >= 0) {
        /* The SST suspects the leader before its connection closes
         * (e.g. it is stopped). */
        const struct derecho_member *l = derecho_view_member(
            g->view, (size_t)derecho_view_leader_rank(g->view));
        for (size_t k = 0; k < num_suspects; k++)
            if (suspects[k] == l->node_id) {
                leader_lost(g);
                break;
            }
    }
    /* Departures: a member's control connection closed (or misbehaved:
     * members send nothing on it yet). */
    uint32_t *departed = calloc(np + 1, sizeof(*departed));
    if (!departed)
        return;
    size_t num_departed = 0;
    for (size_t i = 0; i < np; i++) {
        bool suspected = false;
        for (size_t k = 0; k < num_suspects; k++)
            suspected |= suspects[k] == g->peers[i].node_id;
        if (g->peers[i].fd >= 0 && !fds[3 + i].revents && !suspected)
            continue;
        if (suspected)
            glog(g, LOG_WARNING, "node %u suspected: removed in the next view",
                 g->peers[i].node_id);
        if (g->peers[i].fd >= 0)
            close(g->peers[i].fd);
        departed[num_departed++] = g->peers[i].node_id;
        g->peers[i].fd = -2; /* removed below */
    }
    size_t kept = 0;
    for (size_t i = 0; i < g->num_peers; i++)
        if (g->peers[i].fd != -2)
            g->peers[kept++] = g->peers[i];
    g->num_peers = kept;
    /* Join requests, read as their bytes arrive. */
    int64_t now = now_ms();
    kept = 0;
    for (size_t i = 0; i < nq; i++) {
        struct pending *p = &g->pending[i];
        bool done = false;
        if (fds[3 + np + i].revents)
            done = pending_read(g, p);
        else if (now - p->since_ms > PENDING_TIMEOUT_MS) {
            glog(g, LOG_WARNING,
                 "control connection dropped: no join request within %d ms",
                 PENDING_TIMEOUT_MS);
            close(p->fd);
            done = true;
        }
        if (!done) {
            if (kept != i)
                memcpy(&g->pending[kept], p, sizeof(*p));
            kept++;
        }
    }
    g->num_pending = kept;
    /* Every connection waiting in the backlog (the listening socket is
     * non-blocking), so that joiners that came together are read
     * together. */
    while (fds[1].revents) {
        int fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            break;
        if (g->num_pending == MAX_PENDING) {
            close(fd); /* too many at once: it retries */
            continue;
        }
        struct pending *p = &g->pending[g->num_pending++];
        p->fd = fd;
        p->since_ms = now_ms();
        p->have = 0;
        p->need = DERECHO_CONTROL_HEADER_SIZE;
    }
    /* Joins that arrive together are one view change: wait a short window
     * for requests still in flight, unless a departure forces a change
     * now or nothing else is on its way. */
    bool window_over =
        g->batch_len && (g->num_pending == 0 ||
                         now_ms() - g->batch_since_ms >= BATCH_WINDOW_MS);
    if (g->takeover) {
        /* A new leader: once every member of the view but the old leader
         * and the suspected reconnected (or after TAKEOVER_MS), the next
         * view leaves out everyone who did not. */
        const struct derecho_view *v = g->view;
        size_t n = derecho_view_num_members(v), missing = 0, waiting = 0;
        uint32_t *gone = calloc(n + 1, sizeof(*gone));
        for (size_t i = 0; gone && i < n; i++) {
            uint32_t id = derecho_view_member(v, i)->node_id;
            if (id == g->me.node_id)
                continue;
            bool here = false;
            for (size_t k = 0; k < g->num_peers; k++)
                here |= g->peers[k].node_id == id && g->peers[k].fd >= 0;
            if (here)
                continue;
            gone[missing++] = id;
            if (id != g->old_leader && !derecho__smc_suspects(g->smc, id))
                waiting++;
        }
        if (gone &&
            (waiting == 0 || now_ms() - g->takeover_since_ms >= TAKEOVER_MS)) {
            g->takeover = false;
            change_view(g, gone, missing);
        }
        free(gone);
    } else if (num_departed || window_over) {
        change_view(g, departed, num_departed);
    }
    free(departed);
}

/* ---- members --------------------------------------------------------------
 */

static void *group_main(void *arg)
{
    struct derecho_group *g = arg;
    pthread_setname_np(pthread_self(), "derecho-gms");
    bool stop = false;
    struct pollfd *fds = NULL;
    size_t cap = 0;
    while (!stop) {
        size_t need = 3 + g->num_peers + g->num_pending;
        if (need > cap) {
            struct pollfd *n = realloc(fds, need * sizeof(*n));
            if (!n) {
                poll(NULL, 0, 100);
                continue;
            }
            fds = n;
            cap = need;
        }
        group_round(g, fds, &stop);
    }
    free(fds);
    return NULL;
}

/* ---- joining ----------------------------------------------------------------
 */

static int join(struct derecho_group *g, const char *contact_ip,
                uint16_t contact_port, struct derecho_view **view,
                struct derecho_error *err)
{
    int64_t deadline = now_ms() + g->o.join_timeout_ms;
    char ip[DERECHO_MAX_IP + 1];
    derecho__copy_str(ip, sizeof(ip), contact_ip);
    uint16_t port = contact_port;
    struct derecho_join_request req = {.member = g->me,
                                       .fingerprint = g->fingerprint};
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            break;
        int fd;
        int rc = derecho_control_connect(ip, port, left, &fd);
        if (rc)
            return derecho__fail(err, rc, "join: cannot reach %s:%u: %s", ip,
                                 port, derecho_strerror(rc));
        int type = 0;
        void *body = NULL;
        size_t len = 0;
        struct derecho_join_answer ans;
        rc = send_encoded(fd, DERECHO_CONTROL_JOIN_REQUEST, encode_request,
                          &req);
        left = (int)(deadline - now_ms());
        if (rc == 0)
            rc = derecho_control_recv(fd, left > 0 ? left : 0, 4096, &type,
                                      &body, &len, err);
        if (rc == 0 && type != DERECHO_CONTROL_JOIN_ANSWER)
            rc = -EPROTO;
        if (rc == 0 && derecho_join_answer_decode(body, len, &ans) != 0)
            rc = -EPROTO;
        free(body);
        if (rc) {
            close(fd);
            return derecho__fail(err, rc, "join: no answer from %s:%u: %s", ip,
                                 port, derecho_strerror(rc));
        }
        if (ans.status == DERECHO_JOIN_REDIRECT) {
            close(fd);
            glog(g, LOG_INFO, "join: %s:%u redirects to the leader %s:%u", ip,
                 port, ans.leader_ip, ans.leader_port);
            memcpy(ip, ans.leader_ip, sizeof(ip));
            port = ans.leader_port;
            continue;
        }
        if (ans.status == DERECHO_JOIN_REFUSED) {
            close(fd);
            derecho__fail(err, -ECONNREFUSED, "join refused by %s:%u (%s): %s",
                          ip, port, derecho_compat_field_name(ans.field),
                          ans.reason);
            if (err)
                err->field = ans.field;
            glog(g, LOG_ERR, "join refused by %s:%u (%s): %s", ip, port,
                 derecho_compat_field_name(ans.field), ans.reason);
            return -ECONNREFUSED;
        }
        left = (int)(deadline - now_ms());
        rc = derecho_control_recv(fd, left > 0 ? left : 0, DERECHO_MAX_FRAME,
                                  &type, &body, &len, err);
        if (rc == 0 && type != DERECHO_CONTROL_VIEW)
            rc = derecho__fail(err, -EPROTO, "join: expected a view");
        if (rc == 0)
            rc = derecho_view_decode(body, len, g->me.node_id, view, err);
        free(body);
        if (rc == 0 && derecho_view_my_rank(*view) < 0) {
            derecho_view_destroy(*view);
            *view = NULL;
            rc = derecho__fail(err, -EPROTO,
                               "join: the first view does not include me");
        }
        if (rc) {
            close(fd);
            return rc;
        }
        g->leader_fd = fd;
        return 0;
    }
    return derecho__fail(err, -ETIMEDOUT,
                         "join: not admitted within %d ms (or more than %d "
                         "redirects)",
                         g->o.join_timeout_ms, MAX_REDIRECTS);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int read_port(const struct conf *c, const char *key, uint16_t *port,
                     struct derecho_error *err)
{
    uint64_t v;
    int rc = conf_get_u64_range(c, "DERECHO", key, 1, 65535, &v);
    if (rc)
        return derecho__fail(err, rc, "[DERECHO] %s: %s", key,
                             derecho_strerror(rc));
    *port = (uint16_t)v;
    return 0;
}

static int read_options(const struct derecho_group_options *in,
                        struct derecho_group_options *o)
{
    derecho_group_options_init(o);
    if (!in)
        return 0;
    /* A struct from the header before the multicast ends at on_deliver,
     * one from before failure handling at on_stopped. */
    size_t old = offsetof(struct derecho_group_options, on_deliver);
    size_t old2 = offsetof(struct derecho_group_options, on_stopped);
    if (in->size != old && in->size != old2 && in->size < sizeof(*o))
        return -EINVAL;
    const unsigned char *extra = (const unsigned char *)in + sizeof(*o);
    for (size_t i = 0; in->size > sizeof(*o) && i < in->size - sizeof(*o); i++)
        if (extra[i])
            return -EINVAL;
    memcpy(o, in, in->size < sizeof(*o) ? in->size : sizeof(*o));
    o->size = sizeof(*o);
    return o->join_timeout_ms < 0 ? -EINVAL : 0;
}

int derecho_group_create(const struct conf *c,
                         const struct derecho_layout_spec *spec,
                         const struct derecho_group_options *opts,
                         struct derecho_group **out, struct derecho_error *err)
{
    if (out)
        *out = NULL;
    if (!c || !spec || !out)
        return derecho__fail(err, -EINVAL, "group: NULL argument");
    struct derecho_group *g = calloc(1, sizeof(*g));
    if (!g)
        return derecho__fail(err, -ENOMEM, "group: out of memory");
    g->listen_fd = g->leader_fd = g->wake_fd = -1;
    pthread_mutex_init(&g->lock, NULL);
    g->pending = calloc(MAX_PENDING, sizeof(*g->pending));
    if (!g->pending) {
        derecho_group_destroy(g);
        return derecho__fail(err, -ENOMEM, "group: out of memory");
    }
    int rc = read_options(opts, &g->o);
    if (rc) {
        derecho__fail(err, rc, "group: bad options");
        goto fail;
    }
    g->spec = spec;
    rc = derecho_layout_spec_fingerprint(spec, &g->fingerprint);
    uint64_t id = 0;
    const char *ip = NULL, *contact_ip = NULL;
    uint16_t contact_port = 0;
    if (rc == 0)
        rc = conf_get_u64(c, "DERECHO", "local_id", &id);
    if (rc == 0)
        rc = conf_get_string(c, "DERECHO", "local_ip", &ip);
    if (rc == 0)
        rc = conf_get_string(c, "DERECHO", "contact_ip", &contact_ip);
    if (rc) {
        derecho__fail(err, rc,
                      "group: [DERECHO] local_id, local_ip or "
                      "contact_ip: %s",
                      derecho_strerror(rc));
        goto fail;
    }
    if (strlen(ip) > DERECHO_MAX_IP || strlen(contact_ip) > DERECHO_MAX_IP ||
        id >= DERECHO_NODE_NONE) {
        rc = derecho__fail(err, -EINVAL, "group: address too long or bad id");
        goto fail;
    }
    g->me.node_id = (uint32_t)id;
    derecho__copy_str(g->me.ip, sizeof(g->me.ip), ip);
    if ((rc = read_port(c, "gms_port", &g->me.gms_port, err)) ||
        (rc = read_port(c, "sst_port", &g->me.sst_port, err)) ||
        (rc = read_port(c, "rdmc_port", &g->me.rdmc_port, err)) ||
        (rc = read_port(c, "external_port", &g->me.external_port, err)) ||
        (rc = read_port(c, "contact_port", &contact_port, err)))
        goto fail;
    g->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g->wake_fd < 0) {
        rc = derecho__fail(err, -errno, "group: eventfd: %s",
                           derecho_strerror(-errno));
        goto fail;
    }
    rc = derecho_control_listen(g->me.ip, g->me.gms_port, &g->listen_fd);
    if (rc == 0 && fcntl(g->listen_fd, F_SETFL, O_NONBLOCK) != 0)
        rc = -errno;
    if (rc) {
        derecho__fail(err, rc, "group: cannot listen on %s:%u: %s", g->me.ip,
                      g->me.gms_port, derecho_strerror(rc));
        goto fail;
    }
    rc = derecho__smc_create(c, spec, &g->me, g->fingerprint, &g->o, &g->smc,
                             err);
    if (rc)
        goto fail;
    derecho__smc_set_events(g->smc, smc_event, g);
    /* The contact rule: the process at the contact address is the leader
     * of view 0; everyone else joins through it. */
    g->leader =
        strcmp(g->me.ip, contact_ip) == 0 && g->me.gms_port == contact_port;
    struct derecho_view *first = NULL;
    if (g->leader)
        rc = derecho_view_create(0, &g->me, 1, 0, NULL, spec, g->me.node_id,
                                 &first, err);
    else
        rc = join(g, contact_ip, contact_port, &first, err);
    if (rc)
        goto fail;
    install(g, first);
    rc = pthread_create(&g->thread, NULL, group_main, g);
    if (rc) {
        rc = derecho__fail(err, -rc, "group: cannot start its thread");
        goto fail;
    }
    g->thread_started = true;
    *out = g;
    return 0;
fail:
    derecho_group_destroy(g);
    return rc;
}

void derecho_group_destroy(struct derecho_group *g)
{
    if (!g)
        return;
    if (g->thread_started) {
        atomic_store(&g->stop_requested, true);
        uint64_t one = 1;
        if (write(g->wake_fd, &one, sizeof(one)) < 0)
            glog(g, LOG_ERR, "cannot wake the group's thread");
        pthread_join(g->thread, NULL);
    }
    /* Leave the multicast first (the others see this table close), then
     * close the control connections, which makes the leader install the
     * next view. */
    derecho__smc_destroy(g->smc);
    for (size_t i = 0; i < g->num_peers; i++)
        if (g->peers[i].fd >= 0)
            close(g->peers[i].fd);
    for (size_t i = 0; i < g->num_pending; i++)
        close(g->pending[i].fd);
    for (size_t i = 0; i < g->batch_len; i++)
        close(g->batch[i].fd);
    free(g->pending);
    free(g->peers);
    if (g->leader_fd >= 0)
        close(g->leader_fd);
    if (g->listen_fd >= 0)
        close(g->listen_fd);
    if (g->wake_fd >= 0)
        close(g->wake_fd);
    derecho_view_destroy(g->view);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

/* ---- sending ------------------------------------------------------------ */

int derecho_send_reserve(struct derecho_group *g, uint32_t subgroup,
                         size_t size, int flags, void **buf)
{
    if (buf)
        *buf = NULL;
    if (!g || !buf || !g->smc)
        return -EINVAL;
    return derecho__smc_reserve(g->smc, subgroup, size, flags, buf);
}

int derecho_send_commit(struct derecho_group *g, uint32_t subgroup, size_t size)
{
    if (!g || !g->smc || size == SIZE_MAX)
        return -EINVAL;
    return derecho__smc_commit(g->smc, subgroup, size);
}

int derecho_send_cancel(struct derecho_group *g, uint32_t subgroup)
{
    if (!g || !g->smc)
        return -EINVAL;
    return derecho__smc_cancel(g->smc, subgroup);
}

int derecho_send(struct derecho_group *g, uint32_t subgroup, const void *data,
                 size_t size, int flags)
{
    if (!g || (!data && size > 0))
        return -EINVAL;
    void *buf;
    int rc = derecho_send_reserve(g, subgroup, size, flags, &buf);
    if (rc)
        return rc;
    if (size)
        memcpy(buf, data, size);
    return derecho_send_commit(g, subgroup, size);
}

int derecho_send_max_size(struct derecho_group *g, uint32_t subgroup,
                          size_t *size)
{
    if (!g || !size || !g->smc)
        return -EINVAL;
    return derecho__smc_max_payload(g->smc, subgroup, false, size);
}

int derecho_send_max_payload(struct derecho_group *g, uint32_t subgroup,
                             size_t *size)
{
    if (!g || !size || !g->smc)
        return -EINVAL;
    return derecho__smc_max_payload(g->smc, subgroup, true, size);
}
