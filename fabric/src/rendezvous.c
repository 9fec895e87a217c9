/* The peer rendezvous of set-up (fab_rendezvous): borrow with retry,
 * fetch every peer's blob, let the caller compare. */
#include "fab-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAUSE_FIRST_US 100
#define PAUSE_MAX_US 2000

enum peer_state { SKIP, NEED_BORROW, NEED_BLOB, DONE };

struct rendezvous {
    struct fab_pool *pool;
    struct fab_user *user;
    const struct fab_member *members;
    size_t n;
    uint64_t key;
    int timeout_ms;
    int64_t deadline;
    const struct fab_rendezvous_ops *ops;
    void *ctx;
    struct fab_conn **conns;
    struct fab_error *err;
    enum peer_state *state;
    int64_t *refused_until; /* per peer: next `waiting` call while refused */
    uint8_t blob[FAB_BLOB_MAX];
};

static int ms_left(const struct rendezvous *rv)
{
    int64_t left = rv->deadline - fab__now_ms();
    return left > 0 ? (int)left : 0;
}

static void pause_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Peer i failed with rc: dropped (0) or the end (negative, err set). */
static int peer_failed(struct rendezvous *rv, size_t i, int rc,
                       const char *what, const char *detail)
{
    struct fab_error why;
    fab__set_error(&why, rc, "node %u: %s: %s", rv->members[i].node_id, what,
                   detail && detail[0] ? detail : fab_strerror(rc));
    rv->state[i] = DONE;
    if (!rv->ops->failed) {
        if (rv->err)
            *rv->err = why;
        return rc;
    }
    int r = rv->ops->failed(rv->ctx, i, rc, &why, rv->err);
    if (r < 0 && rv->err && rv->err->code == 0)
        *rv->err = why;
    return r < 0 ? r : 0;
}

/* 1: connected, 0: not listening yet, < 0: the end. */
static int step_borrow(struct rendezvous *rv, size_t i)
{
    const struct fab_member *m = &rv->members[i];
    struct fab_error ferr = {0};
    struct fab_conn *conn = NULL;
    int rc = fab_borrow(rv->user, m->node_id, m->host, m->port,
                        ms_left(rv) > 0 ? ms_left(rv) : 1, &conn, &ferr);
    if (rc == -ECONNREFUSED) {
        /* Its process may still be starting (or is gone): every
         * FAB_RENDEZVOUS_SLICE_MS of refusals the caller may give up, as
         * for a blob that does not come. */
        int64_t now = fab__now_ms();
        if (!rv->ops->waiting)
            return 0;
        if (rv->refused_until[i] == 0) {
            rv->refused_until[i] = now + FAB_RENDEZVOUS_SLICE_MS;
            return 0;
        }
        if (now < rv->refused_until[i])
            return 0;
        rv->refused_until[i] = now + FAB_RENDEZVOUS_SLICE_MS;
        rc = rv->ops->waiting(rv->ctx, i, rv->err);
        return rc < 0 ? rc : 0;
    }
    if (rc)
        return peer_failed(rv, i, rc, "connecting", ferr.msg);
    rv->conns[i] = conn;
    rv->state[i] = NEED_BLOB;
    return 1;
}

/* 1: something changed, 0: nothing, < 0: the end. */
static int step_blob(struct rendezvous *rv, size_t i)
{
    int slice = ms_left(rv);
    if (slice > FAB_RENDEZVOUS_SLICE_MS)
        slice = FAB_RENDEZVOUS_SLICE_MS;
    size_t len = 0;
    struct fab_error ferr = {0};
    int rc =
        fab_pool_fetch(rv->pool, rv->members[i].node_id, rv->key, rv->blob,
                       sizeof(rv->blob), &len, slice > 0 ? slice : 1, &ferr);
    if (rc == -ETIMEDOUT) {
        if (!rv->ops->waiting)
            return 0;
        rc = rv->ops->waiting(rv->ctx, i, rv->err);
        return rc < 0 ? rc : 0;
    }
    if (rc)
        return peer_failed(rv, i, rc, "fetching its set-up blob", ferr.msg);
    rc = rv->ops->check(rv->ctx, i, rv->blob, len, rv->err);
    if (rc < 0)
        return rc;
    if (rc == FAB_RENDEZVOUS_DONE) {
        rv->state[i] = DONE;
        return 1;
    }
    return rc == FAB_RENDEZVOUS_CHANGED;
}

/* One pass over the peers: 1 all done, 0 go on (*moved: something
 * changed), < 0 the end. */
static int pass(struct rendezvous *rv, bool *moved)
{
    bool all_done = true;
    for (size_t i = 0; i < rv->n; i++) {
        if (rv->state[i] == SKIP || rv->state[i] == DONE)
            continue;
        all_done = false;
        int rc;
        struct fab_conn *c = rv->conns[i];
        if (ms_left(rv) <= 0) {
            char detail[64];
            snprintf(detail, sizeof(detail), "nothing within %d ms",
                     rv->timeout_ms);
            rc = peer_failed(rv, i, -ETIMEDOUT,
                             rv->state[i] == NEED_BORROW
                                 ? "no connection"
                                 : "did not publish (or confirm) in time",
                             detail);
        } else if (rv->state[i] == NEED_BLOB && c && fab_conn_status(c)) {
            rc = peer_failed(rv, i, fab_conn_status(c), "connection failed",
                             NULL);
        } else if (rv->state[i] == NEED_BORROW) {
            rc = step_borrow(rv, i);
        } else {
            rc = step_blob(rv, i);
        }
        if (rc < 0)
            return rc;
        if (rc > 0)
            *moved = true;
    }
    return all_done ? 1 : 0;
}

int fab_rendezvous(struct fab_user *user, const struct fab_member *members,
                   size_t n, const bool *skip, uint64_t key, int timeout_ms,
                   const struct fab_rendezvous_ops *ops, void *ctx,
                   struct fab_conn **conns, struct fab_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    if (!user || !members || n == 0 || n > 65536 || timeout_ms <= 0 || !ops ||
        !ops->check || !conns) {
        fab__set_error(err, -EINVAL, "rendezvous: missing argument");
        return -EINVAL;
    }
    struct rendezvous *rv = calloc(1, sizeof(*rv));
    enum peer_state *state = calloc(n, sizeof(*state));
    int64_t *refused_until = calloc(n, sizeof(*refused_until));
    if (!rv || !state || !refused_until) {
        free(rv);
        free(state);
        free(refused_until);
        fab__set_error(err, -ENOMEM, "rendezvous: out of memory");
        return -ENOMEM;
    }
    *rv = (struct rendezvous){.pool = user->pool,
                              .user = user,
                              .members = members,
                              .n = n,
                              .key = key,
                              .timeout_ms = timeout_ms,
                              .deadline = fab__now_ms() + timeout_ms,
                              .ops = ops,
                              .ctx = ctx,
                              .conns = conns,
                              .err = err,
                              .state = state,
                              .refused_until = refused_until};
    uint32_t me = fab_pool_node_id(user->pool);
    for (size_t i = 0; i < n; i++)
        state[i] = members[i].node_id == me || (skip && skip[i]) ? SKIP
                   : conns[i] ? NEED_BLOB /* borrowed by the caller */
                              : NEED_BORROW;
    long idle_us = PAUSE_FIRST_US;
    int rc;
    for (;;) {
        bool moved = false;
        rc = pass(rv, &moved);
        if (rc != 0)
            break;
        /* Members are usually a round trip behind: a short pause first,
         * longer ones while nothing moves. */
        if (moved) {
            idle_us = PAUSE_FIRST_US;
            continue;
        }
        pause_us(idle_us);
        if (idle_us < PAUSE_MAX_US)
            idle_us *= 2;
    }
    free(state);
    free(refused_until);
    free(rv);
    return rc > 0 ? 0 : rc;
}
