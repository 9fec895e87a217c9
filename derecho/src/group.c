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
#include <limits.h>
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
/* A joiner whose leader died: how long it tries a leader it was
 * redirected to (a dead one refuses at once), and its pause before
 * starting again from the contact (the survivors replace the leader). */
#define REDIRECT_CONNECT_MS 1000
#define REJOIN_PAUSE_MS 100
/* A leader tells a joiner its view once every live member holds the
 * commit; it gives up (the joiner starts again) after this long. */
#define COMMIT_HELD_MS 5000
#define LEAVE_TIMEOUT_MS 5000 /* a graceful leave waits this long */
/* Without a majority, a member waits this long for rows saying it was
 * removed (a resumed member: "expelled") before it stops "partitioned". */
#define PARTITION_GRACE_MS 300
#define MAX_REQUEST 4096

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
    bool leader; /* the protocol's leader is me (admits joins) */
    int listen_fd;
    int wake_fd;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* guards view */
    struct derecho_view *view;
    struct derecho__smc *smc; /* the pool, SST tables, delivery thread */
    struct derecho__gms *gms; /* the current view's membership protocol */
    /* Owned by the group's thread. */
    struct pending *pending; /* MAX_PENDING of them */
    size_t num_pending;
    struct joiner batch[MAX_PENDING]; /* admitted, not yet in a view */
    size_t batch_len;
    int64_t batch_since_ms;
    size_t batch_proposed; /* of them handed to the protocol */
    /* Told by the multicast on the SST's polling thread (under lock):
     * whether a member suspects me or I lost the majority.  wake_fd
     * wakes the group's thread; stop_requested tells it to end,
     * leave_requested to leave gracefully first. */
    bool expelled_seen, partitioned_seen;
    int64_t partitioned_since_ms;
    atomic_bool stop_requested, leave_requested;
    bool leave_asked, left;
    int64_t leave_view; /* the view whose protocol I asked (-1 none) */
    int64_t leave_since_ms;
    atomic_int stopped; /* 0 or DERECHO_STOPPED_* */
};

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
    o->join_timeout_ms = DERECHO_JOIN_TIMEOUT_CONF;
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

void derecho_group_stats_init(struct derecho_group_stats *s)
{
    if (!s)
        return;
    memset(s, 0, sizeof(*s));
    s->size = sizeof(*s);
}

int derecho_group_stats(struct derecho_group *g, struct derecho_group_stats *s)
{
    if (!g || !s || s->size < sizeof(*s))
        return -EINVAL;
    for (size_t i = sizeof(*s); i < s->size; i++)
        if (((const unsigned char *)s)[i])
            return -EINVAL;
    s->view_id = -1;
    s->num_members = 0;
    s->num_shards = 0;
    pthread_mutex_lock(&g->lock);
    if (g->view) {
        s->view_id = derecho_view_id(g->view);
        s->num_members = derecho_view_num_members(g->view);
        for (size_t i = 0;
             s->members && i < s->num_members && i < s->max_members; i++)
            s->members[i] = (struct derecho_member_stats){
                derecho_view_member(g->view, i)->node_id, 0, 0};
    }
    pthread_mutex_unlock(&g->lock);
    if (g->smc && s->view_id >= 0)
        derecho__smc_stats(g->smc, s->view_id, s);
    return 0;
}

static void stop_member(struct derecho_group *g, int reason);

/* Makes v current and tells the application, with no lock held.  Only
 * the thread that installs views frees them, so v stays valid for the
 * callback. */
static void gms_wake(void *ctx);

static int install(struct derecho_group *g, struct derecho_view *v,
                   const uint32_t *failed, size_t num_failed, bool joining)
{
    /* The old view's epoch ends first (its last deliveries come before
     * the new view is announced to the application), then every member
     * of v creates v's table together. */
    struct derecho__smc_view *sv = NULL;
    if (g->smc) {
        derecho__smc_view_end(g->smc, v);
        derecho__gms_free(g->gms); /* its table is gone */
        g->gms = NULL;
        int why = derecho__smc_stopped(g->smc);
        if (why) {
            /* Expelled or partitioned while ending the view: the next one
             * is not installed here. */
            glog(g, LOG_WARNING, "view %lld not installed: stopped",
                 (long long)derecho_view_id(v));
            derecho_view_destroy(v);
            stop_member(g, why);
            return -ESHUTDOWN;
        }
        int rc = derecho__smc_view_start(g->smc, v, failed, num_failed, &sv);
        if (rc == 0) {
            rc = derecho__gms_start(derecho__smc_view_table(sv), g->me.node_id,
                                    derecho__smc_partition_safety(g->smc),
                                    gms_wake, g, &g->gms);
            if (rc)
                glog(g, LOG_ERR,
                     "view %lld: no membership protocol in this view (%s)",
                     (long long)derecho_view_id(v), derecho_strerror(rc));
        }
        if (rc && !sv && joining && derecho_view_num_members(v) > 1) {
            /* My first view, and no table with its other members: they
             * gave up waiting for me (and remove me next).  Not
             * installed: the joiner starts again. */
            glog(g, LOG_WARNING,
                 "join: view %lld: no table with its other members (%s)",
                 (long long)derecho_view_id(v), derecho_strerror(rc));
            derecho_view_destroy(v);
            return rc;
        }
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
    return 0;
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
    else if (kind == DERECHO__SMC_PARTITIONED && !g->partitioned_seen) {
        g->partitioned_seen = true;
        g->partitioned_since_ms = derecho__now_ms();
    }
    (void)node_id; /* suspicions: the protocol reads them from the table */
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
    if (g->smc) {
        /* Quiet first: suspicions I raise from now on (my connections
         * break as the others remove me) must not reach their rows. */
        derecho__smc_quiet(g->smc);
        derecho__smc_stop(g->smc, reason);
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
        int lr =
            g->gms ? derecho_view_rank_of(g->view, derecho__gms_leader(g->gms))
                   : -1;
        const struct derecho_member *leader = derecho_view_member(
            g->view,
            (size_t)(lr >= 0 ? lr : derecho_view_leader_rank(g->view)));
        ans.status = DERECHO_JOIN_REDIRECT;
        ans.leader_id = leader->node_id;
        memcpy(ans.leader_ip, leader->ip, sizeof(ans.leader_ip));
        ans.leader_port = leader->gms_port;
        refuse(fd, &ans);
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
        g->batch_since_ms = derecho__now_ms();
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

/* The view committed by the membership protocol: the current members
 * minus the committed failures and leaves, plus the committed joiners
 * (in that order), computed alike by every member.  Joiners whose join
 * connection I hold (I admitted them) get the answer and the view over
 * it.  Then I install it, or, not in it, leave (asked to) or stop
 * (expelled).  Group's thread. */
static void view_change(struct derecho_group *g,
                        const struct derecho__gms_change *ch, size_t k)
{
    const struct derecho_view *cur = g->view;
    size_t n = derecho_view_num_members(cur);
    struct derecho_member *members = calloc(n + k + 1, sizeof(*members));
    uint32_t *failed = calloc(n + 1, sizeof(*failed));
    size_t m = 0, num_failed = 0;
    char why[256] = "";
    size_t wl = 0;
    for (size_t i = 0; members && i < n; i++) {
        const struct derecho_member *x = derecho_view_member(cur, i);
        int kind = 0;
        for (size_t c = 0; c < k; c++)
            if (ch[c].node_id == x->node_id && ch[c].kind != DERECHO__GMS_JOIN)
                kind = (int)ch[c].kind;
        if (kind) {
            if (wl < sizeof(why))
                wl += (size_t)snprintf(
                    why + wl, sizeof(why) - wl, " %u %s", x->node_id,
                    kind == DERECHO__GMS_FAIL ? "failed" : "left");
            continue;
        }
        members[m++] = *x;
        /* Suspected but not removed yet: it starts suspected in the next
         * table (and the leader removes it in the change after). */
        if (x->node_id != g->me.node_id &&
            derecho__smc_suspects(g->smc, x->node_id))
            failed[num_failed++] = x->node_id;
    }
    for (size_t c = 0; members && c < k; c++)
        if (ch[c].kind == DERECHO__GMS_JOIN) {
            members[m++] = ch[c].member;
            if (wl < sizeof(why))
                wl += (size_t)snprintf(why + wl, sizeof(why) - wl, " %u joined",
                                       ch[c].node_id);
        }
    struct derecho_view *next = NULL;
    struct derecho_error err;
    int rc = members && failed ? 0 : -ENOMEM;
    uint32_t leader_rank = 0;
    for (size_t i = 0; rc == 0 && i < m; i++) {
        bool f = false;
        for (size_t x = 0; x < num_failed; x++)
            f |= failed[x] == members[i].node_id;
        if (!f) {
            leader_rank = (uint32_t)i;
            break;
        }
    }
    if (rc == 0 && m == 0) {
        /* Everyone left together: nothing to install. */
        glog(g, LOG_INFO, "view %lld: no members;%s",
             (long long)derecho_view_id(cur) + 1, why);
        free(members);
        free(failed);
        g->left = true;
        return;
    }
    if (rc == 0)
        rc = derecho_view_create((uint32_t)derecho_view_id(cur) + 1, members, m,
                                 leader_rank, cur, g->spec, g->me.node_id,
                                 &next, &err);
    free(members);
    if (rc) {
        glog(g, LOG_ERR, "cannot make the next view: %s",
             rc == -ENOMEM ? "out of memory" : err.msg);
        free(failed);
        stop_member(g, DERECHO_STOPPED_PARTITIONED);
        return;
    }
    /* Joiners I admitted: the answer and the view, once every live member
     * holds the commit (were I to die before, a successor that never saw
     * it could commit another view with this id; a joiner told nothing
     * starts again from its contact). */
    bool held = !g->gms;
    for (int64_t end = derecho__now_ms() + COMMIT_HELD_MS;
         !held && g->batch_len > 0 && derecho__now_ms() < end;) {
        held = derecho__gms_commit_held(g->gms);
        if (!held)
            poll(NULL, 0, 1);
    }
    struct mutils_writer w;
    bool enc = held && mutils_writer_init_growable(&w, 1024) == 0 &&
               derecho_view_encode(next, &w) == 0;
    size_t kept = 0;
    for (size_t i = 0; i < g->batch_len; i++) {
        bool in = false;
        for (size_t c = 0; c < k; c++)
            in |= ch[c].kind == DERECHO__GMS_JOIN &&
                  ch[c].node_id == g->batch[i].member.node_id;
        if (!in) {
            g->batch[kept++] = g->batch[i];
            continue;
        }
        struct derecho_join_answer ans;
        memset(&ans, 0, sizeof(ans));
        ans.status = DERECHO_JOIN_ACCEPTED;
        ans.leader_id = g->me.node_id;
        if (!enc ||
            send_encoded(g->batch[i].fd, DERECHO_CONTROL_JOIN_ANSWER,
                         encode_answer, &ans) != 0 ||
            derecho_control_send(g->batch[i].fd, DERECHO_CONTROL_VIEW,
                                 mutils_writer_data(&w), mutils_writer_len(&w),
                                 FRAME_TIMEOUT_MS) != 0)
            glog(g, LOG_WARNING, "node %u: its view could not be sent",
                 g->batch[i].member.node_id);
        close(g->batch[i].fd);
    }
    g->batch_len = kept;
    if (held)
        mutils_writer_fini(&w);
    char list[256] = "";
    size_t ll = 0;
    for (size_t i = 0; i < derecho_view_num_members(next) && ll < sizeof(list);
         i++)
        ll +=
            (size_t)snprintf(list + ll, sizeof(list) - ll, "%s%u", i ? "," : "",
                             derecho_view_member(next, i)->node_id);
    glog(g, LOG_INFO, "view %lld: members %s;%s (committed by leader %u)",
         (long long)derecho_view_id(next), list, why[0] ? why : " no change",
         derecho__gms_leader(g->gms));
    if (derecho_view_my_rank(next) < 0) {
        if (atomic_load(&g->leave_requested)) {
            /* My graceful leave: deliver this view up to its edge. */
            derecho__smc_view_end(g->smc, next);
            g->left = true;
        } else {
            glog(g, LOG_WARNING, "view %lld does not include me: expelled",
                 (long long)derecho_view_id(next));
            stop_member(g, DERECHO_STOPPED_EXPELLED);
        }
        derecho_view_destroy(next);
        free(failed);
        return;
    }
    install(g, next, failed, num_failed, false);
    free(failed);
}

static void gms_wake(void *ctx)
{
    struct derecho_group *g = ctx;
    uint64_t one = 1;
    if (write(g->wake_fd, &one, sizeof(one)) < 0) {
        /* the counter is full: the thread is being woken anyway */
    }
}

/* One turn of the group's loop, for the leader and members alike. */
static void group_round(struct derecho_group *g, struct pollfd *fds, bool *stop)
{
    /* [0] wake, [1] listen, then pending connections. */
    size_t nq = g->num_pending;
    fds[0] = (struct pollfd){.fd = g->wake_fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = g->listen_fd, .events = POLLIN};
    for (size_t i = 0; i < nq; i++)
        fds[2 + i] = (struct pollfd){.fd = g->pending[i].fd, .events = POLLIN};
    int timeout = g->partitioned_seen ? 20 : 100;
    if (g->batch_len > g->batch_proposed) {
        int64_t left = g->batch_since_ms + BATCH_WINDOW_MS - derecho__now_ms();
        timeout = left < 0 ? 0 : (int)left;
    }
    if (poll(fds, 2 + nq, timeout) < 0)
        return;
    if (fds[0].revents) {
        uint64_t drain;
        if (read(g->wake_fd, &drain, sizeof(drain)) < 0) {
            /* nothing to drain */
        }
    }
    if (atomic_load(&g->stop_requested)) {
        *stop = true;
        return;
    }
    if (g->smc)
        derecho__smc_test_break_link(g->smc);
    pthread_mutex_lock(&g->lock);
    bool expelled = g->expelled_seen, partitioned = g->partitioned_seen;
    int64_t since = g->partitioned_since_ms;
    pthread_mutex_unlock(&g->lock);
    if (expelled)
        stop_member(g, DERECHO_STOPPED_EXPELLED);
    if (partitioned && (derecho__smc_stopped(g->smc) ||
                        derecho__now_ms() - since >= PARTITION_GRACE_MS)) {
        /* Without a majority after a stall of mine past the suspicion
         * timeout: the others suspected me and went on (their rows may
         * never reach me once they closed the view's table). */
        bool stalled = derecho__smc_self_stalled(g->smc);
        if (stalled)
            glog(g, LOG_WARNING,
                 "this process stalled past the suspicion timeout: the "
                 "others removed it");
        stop_member(g, stalled ? DERECHO_STOPPED_EXPELLED
                               : DERECHO_STOPPED_PARTITIONED);
    }
    if (atomic_load(&g->stopped) || g->left) {
        *stop = g->left || atomic_load(&g->leave_requested);
        return; /* a stopped member only waits for destroy */
    }
    if (atomic_load(&g->leave_requested)) {
        if (g->gms && g->leave_view != derecho_view_id(g->view)) {
            /* Asked again in every view until a change removes me (an
             * earlier change may have removed others only). */
            if (!g->leave_asked)
                g->leave_since_ms = derecho__now_ms();
            g->leave_asked = true;
            g->leave_view = derecho_view_id(g->view);
            derecho__gms_leave(g->gms);
        }
        if (!g->gms || derecho_view_num_members(g->view) == 1 ||
            derecho__now_ms() - g->leave_since_ms > LEAVE_TIMEOUT_MS) {
            *stop = true;
            return;
        }
    }
    g->leader = g->gms && derecho__gms_leader(g->gms) == g->me.node_id;
    size_t nm = derecho_view_num_members(g->view);
    size_t njoined = 0;
    derecho_view_joined(g->view, &njoined);
    if (!g->gms && nm > 1 && nm - 1 > njoined &&
        derecho__smc_partition_safety(g->smc)) {
        /* No table in this view, and some of the others were members of
         * the previous view: they failed during its set-up, or gave up on
         * me.  Alone I am no majority of it (a view of my own would split
         * the group): stop.  (Only joiners that never set up a table,
         * e.g. died, leave me the previous view's sole survivor: below.) */
        glog(g, LOG_WARNING,
             "view %lld: no other member set up its table: no majority",
             (long long)derecho_view_id(g->view));
        stop_member(g, DERECHO_STOPPED_PARTITIONED);
        return;
    }
    if (!g->gms && nm > 1) {
        /* No table in this view: every other member failed during its
         * set-up (joiners that died, or partition safety off).  The next
         * view is without them. */
        glog(g, LOG_WARNING,
             "view %lld: no other member set up its table: next view "
             "without them",
             (long long)derecho_view_id(g->view));
        struct derecho__gms_change ch[DERECHO__GMS_MAX_CHANGES];
        size_t k = 0;
        for (size_t i = 0; i < nm && k < DERECHO__GMS_MAX_CHANGES; i++) {
            uint32_t id = derecho_view_member(g->view, i)->node_id;
            if (id == g->me.node_id)
                continue;
            memset(&ch[k], 0, sizeof(ch[k]));
            ch[k].node_id = id;
            ch[k].kind = DERECHO__GMS_FAIL;
            k++;
        }
        view_change(g, ch, k);
        g->batch_proposed = 0;
        return;
    }
    if (g->gms) {
        struct derecho__gms_change ch[DERECHO__GMS_MAX_CHANGES];
        size_t k = derecho__gms_committed(g->gms, ch);
        if (k) {
            view_change(g, ch, k);
            g->batch_proposed = 0;
            if (g->left)
                *stop = true;
            return;
        }
    }
    /* Join requests, read as their bytes arrive. */
    int64_t now = derecho__now_ms();
    size_t kept = 0;
    for (size_t i = 0; i < nq; i++) {
        struct pending *p = &g->pending[i];
        bool done = false;
        if (fds[2 + i].revents)
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
        p->since_ms = derecho__now_ms();
        p->have = 0;
        p->need = DERECHO_CONTROL_HEADER_SIZE;
    }
    /* Joins that arrive together are one view change: wait a short window
     * for requests still in flight, then hand the batch to the protocol
     * (the leader proposes it over the SST). */
    if (g->batch_len > g->batch_proposed && g->gms &&
        (g->num_pending == 0 ||
         derecho__now_ms() - g->batch_since_ms >= BATCH_WINDOW_MS)) {
        struct derecho_member joiners[MAX_PENDING];
        for (size_t i = 0; i < g->batch_len; i++)
            joiners[i] = g->batch[i].member;
        derecho__gms_propose_joins(g->gms, joiners, g->batch_len);
        g->batch_proposed = g->batch_len;
    }
}

/* ---- the group's thread -------------------------------------------------
 */

static void *group_main(void *arg)
{
    struct derecho_group *g = arg;
    pthread_setname_np(pthread_self(), "derecho-gms");
    bool stop = false;
    struct pollfd *fds = NULL;
    size_t cap = 0;
    while (!stop) {
        size_t need = 2 + g->num_pending;
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

/* A join connection that its peer closed or reset unanswered. */
static bool dropped(int rc)
{
    return rc == -ECONNRESET || rc == -EPIPE || rc == -ECONNABORTED ||
           rc == -ENOTCONN;
}

/* Back to the contact after a pause (bounded by the deadline); returns the
 * hop number to continue from (the loop's step makes it 0). */
static int restart(const char *contact_ip, uint16_t contact_port, char *ip,
                   size_t ip_size, uint16_t *port, int64_t deadline)
{
    int64_t left = deadline - derecho__now_ms();
    poll(NULL, 0,
         left < REJOIN_PAUSE_MS ? (left > 0 ? (int)left : 0) : REJOIN_PAUSE_MS);
    derecho__copy_str(ip, ip_size, contact_ip);
    *port = contact_port;
    return -1;
}

static int join(struct derecho_group *g, const char *contact_ip,
                uint16_t contact_port, int64_t deadline,
                struct derecho_view **view, struct derecho_error *err)
{
    char ip[DERECHO_MAX_IP + 1];
    derecho__copy_str(ip, sizeof(ip), contact_ip);
    uint16_t port = contact_port;
    struct derecho_join_request req = {.member = g->me,
                                       .fingerprint = g->fingerprint};
    /* restarted: a leader dropped my request unanswered (it died before
     * telling me a view), so a view that committed my join may list me
     * until the next change removes me. */
    bool restarted = false;
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        int left = (int)(deadline - derecho__now_ms());
        if (left <= 0)
            break;
        int fd;
        /* A leader I was redirected to gets a short try: it may have died
         * since the redirect (then: from the contact again). */
        int rc = derecho_control_connect(
            ip, port,
            hop > 0 && left > REDIRECT_CONNECT_MS ? REDIRECT_CONNECT_MS : left,
            &fd);
        if (rc && hop > 0 && derecho__now_ms() < deadline) {
            glog(g, LOG_WARNING,
                 "join: cannot reach the leader %s:%u (%s): starting again "
                 "from the contact",
                 ip, port, derecho_strerror(rc));
            hop = restart(contact_ip, contact_port, ip, sizeof(ip), &port,
                          deadline);
            continue;
        }
        if (rc)
            return derecho__fail(err, rc, "join: cannot reach %s:%u: %s", ip,
                                 port, derecho_strerror(rc));
        int type = 0;
        void *body = NULL;
        size_t len = 0;
        struct derecho_join_answer ans;
        rc = send_encoded(fd, DERECHO_CONTROL_JOIN_REQUEST, encode_request,
                          &req);
        left = (int)(deadline - derecho__now_ms());
        if (rc == 0)
            rc = derecho_control_recv(fd, left > 0 ? left : 0, 4096, &type,
                                      &body, &len, err);
        if (rc == 0 && type != DERECHO_CONTROL_JOIN_ANSWER)
            rc = -EPROTO;
        if (rc == 0 && derecho_join_answer_decode(body, len, &ans) != 0)
            rc = -EPROTO;
        free(body);
        if (rc && dropped(rc) && derecho__now_ms() < deadline) {
            close(fd);
            glog(g, LOG_WARNING,
                 "join: %s:%u closed my connection unanswered (%s): starting "
                 "again from the contact",
                 ip, port, derecho_strerror(rc));
            restarted = true;
            hop = restart(contact_ip, contact_port, ip, sizeof(ip), &port,
                          deadline);
            continue;
        }
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
        if (ans.status == DERECHO_JOIN_REFUSED &&
            ans.field == DERECHO_FIELD_NODE_ID && restarted &&
            derecho__now_ms() < deadline) {
            /* The view that committed my join (its leader died before
             * telling me) lists me until the next change removes me. */
            close(fd);
            glog(g, LOG_INFO, "join: %s:%u still lists me (%s): retrying", ip,
                 port, ans.reason);
            hop = restart(contact_ip, contact_port, ip, sizeof(ip), &port,
                          deadline);
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
        left = (int)(deadline - derecho__now_ms());
        rc = derecho_control_recv(fd, left > 0 ? left : 0, DERECHO_MAX_FRAME,
                                  &type, &body, &len, err);
        if (rc == 0 && type != DERECHO_CONTROL_VIEW)
            rc = derecho__fail(err, -EPROTO, "join: expected a view");
        if (rc == 0)
            rc = derecho_view_decode(body, len, g->me.node_id, view, err);
        free(body);
        if (rc && dropped(rc) && derecho__now_ms() < deadline) {
            /* Accepted, then dropped before the view: my leader died or
             * could not confirm the commit (it tells a joiner only a view
             * every live member holds). */
            close(fd);
            glog(g, LOG_WARNING,
                 "join: %s:%u closed my connection before my view (%s): "
                 "starting again from the contact",
                 ip, port, derecho_strerror(rc));
            restarted = true;
            hop = restart(contact_ip, contact_port, ip, sizeof(ip), &port,
                          deadline);
            continue;
        }
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
        close(fd); /* views come over the SST from now on */
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
    return o->join_timeout_ms < 0 &&
                   o->join_timeout_ms != DERECHO_JOIN_TIMEOUT_CONF
               ? -EINVAL
               : 0;
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
    g->listen_fd = g->wake_fd = -1;
    g->leave_view = -1;
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
    if (rc == 0 && g->o.join_timeout_ms == DERECHO_JOIN_TIMEOUT_CONF) {
        uint64_t ms = 30000;
        rc = conf_get_u64_range(c, "DERECHO", "join_timeout_ms", 0, INT_MAX,
                                &ms);
        if (rc) {
            derecho__fail(err, rc, "group: [DERECHO] join_timeout_ms: %s",
                          derecho_strerror(rc));
            goto fail;
        }
        g->o.join_timeout_ms = (int)ms;
    }
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
    if (g->leader) {
        rc = derecho_view_create(0, &g->me, 1, 0, NULL, spec, g->me.node_id,
                                 &first, err);
        if (rc)
            goto fail;
        install(g, first, NULL, 0, false);
    } else {
        /* A joiner installs only a view a leader sent it, and only once
         * its table with the view's other members is up: a view whose
         * members gave up waiting for me (they remove me next) is not
         * mine; I start again from the contact. */
        int64_t deadline = derecho__now_ms() + g->o.join_timeout_ms;
        for (;;) {
            rc = join(g, contact_ip, contact_port, deadline, &first, err);
            if (rc)
                goto fail;
            rc = install(g, first, NULL, 0, true);
            if (rc == 0)
                break;
            if (rc == -ESHUTDOWN || derecho__now_ms() >= deadline) {
                rc = derecho__fail(err, rc == -ESHUTDOWN ? -ESHUTDOWN : rc,
                                   "join: my first view's table could not be "
                                   "set up with its members: %s",
                                   derecho_strerror(rc));
                goto fail;
            }
            poll(NULL, 0, REJOIN_PAUSE_MS);
        }
    }
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
        /* A graceful leave: the group's thread asks the leader (over the
         * SST) to remove me, delivers the view up to its edge and ends
         * (bounded by LEAVE_TIMEOUT_MS). */
        atomic_store(&g->leave_requested, true);
        uint64_t one = 1;
        if (write(g->wake_fd, &one, sizeof(one)) < 0)
            glog(g, LOG_ERR, "cannot wake the group's thread");
        pthread_join(g->thread, NULL);
    }
    derecho__smc_destroy(g->smc);
    derecho__gms_free(g->gms);
    for (size_t i = 0; i < g->num_pending; i++)
        close(g->pending[i].fd);
    for (size_t i = 0; i < g->batch_len; i++)
        close(g->batch[i].fd);
    free(g->pending);
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
