/* Groups: set-up, the message state machine and the progress thread.
 *
 * Protocol of message m (slot m % window), all one-sided writes with remote
 * CQ data (rdmc_cq_encode):
 *  1. the sender writes HEADER(m, size) into every receiver's control
 *     region;
 *  2. a receiver obtains a destination buffer (incoming callback or its
 *     own), registers it and writes READY(m, region) to every rank that
 *     sends it blocks in the schedule (its sources);
 *  3. every member walks its own sends in schedule order; a send leaves
 *     once the member holds the block (the BLOCK notification of its own
 *     receive) and the target's READY arrived: block b goes to offset
 *     b * block_size of the target's region;
 *  4. a receiver holding every block whose own sends completed writes
 *     DONE(m) to the sender and delivers m (in index order); the sender
 *     delivers m once every receiver's DONE arrived.
 * Slot reuse is safe without more acknowledgements: the sender starts
 * m + window only after DONE(m) from everyone, and a member sends DONE(m)
 * only after it consumed every control record of m addressed to it (a
 * member's sources send READY only to it, and it needs READY from each of
 * its targets before its sends complete).
 */
#include "rdmc-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <xxhash.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pump(struct rdmc_group *g);
static void handle_done(struct rdmc_group *g, struct rdmc__op *op,
                        uint32_t node, int status);
static void handle_data(struct rdmc_group *g, uint32_t node_id, uint64_t data);
static void fail_group(struct rdmc_group *g, uint32_t node_id, int reason);

/* What the application gave for a message (incoming or incoming_mr). */
struct incoming_buf {
    bool asked;
    int want; /* incoming_mr's return */
    void *buf;
    struct fab_mr *mr;
    size_t at;
};

static void ask_incoming(struct rdmc_group *g, const struct rdmc__event *ev,
                         struct incoming_buf *got);
static void finish_recv(struct rdmc_group *g, uint32_t slot,
                        const struct incoming_buf *got);

static void glock(struct rdmc_group *g)
{
    pthread_mutex_lock(&g->lock);
    atomic_store_explicit(&g->owner, pthread_self(), memory_order_relaxed);
    atomic_store_explicit(&g->owned, true, memory_order_release);
}

/* This thread holds the group's lock (libfab calls us back from inside
 * our own post). */
static bool held_here(struct rdmc_group *g)
{
    return atomic_load_explicit(&g->owned, memory_order_acquire) &&
           pthread_equal(atomic_load_explicit(&g->owner, memory_order_relaxed),
                         pthread_self());
}

static void defer(struct rdmc_group *g, struct rdmc__deferred *d)
{
    d->next = NULL;
    if (g->def_tail)
        g->def_tail->next = d;
    else
        g->def_head = d;
    g->def_tail = d;
}

/* Handles what libfab handed us while we held the lock (in order; the
 * handlers may post and so defer more).  Lock held. */
static void drain_deferred(struct rdmc_group *g)
{
    while (g->def_head || g->def_oom) {
        if (g->def_oom) {
            g->def_oom = false;
            fail_group(g, RDMC_NO_PEER, -ENOMEM);
            continue;
        }
        struct rdmc__deferred *d = g->def_head;
        g->def_head = d->next;
        if (!g->def_head)
            g->def_tail = NULL;
        if (d->op) {
            handle_done(g, d->op, d->node_id, d->status);
        } else {
            handle_data(g, d->node_id, d->data);
            free(d);
        }
    }
}

static void gunlock(struct rdmc_group *g)
{
    drain_deferred(g);
    atomic_store_explicit(&g->owned, false, memory_order_release);
    pthread_mutex_unlock(&g->lock);
}

static void queue_event(struct rdmc_group *g, struct rdmc__event *ev)
{
    ev->next = NULL;
    if (g->ev_tail)
        g->ev_tail->next = ev;
    else
        g->ev_head = ev;
    g->ev_tail = ev;
}

/* Blocks of a message of size bytes; size + block_size - 1 could wrap. */
static uint32_t blocks_of(const struct rdmc_group *g, uint64_t size)
{
    uint64_t bs = g->opts.block_size;
    return (uint32_t)(size / bs + (size % bs != 0));
}
static void start_recv(struct rdmc_group *g, uint32_t slot);

/* ---- small helpers ---------------------------------------------------- */

static int rank_of(const struct rdmc_group *g, uint32_t node_id)
{
    for (uint32_t r = 0; r < g->n; r++)
        if (g->node_ids[r] == node_id)
            return (int)r;
    return -1;
}

static size_t ctrl_offset(const struct rdmc_group *g, unsigned kind,
                          uint32_t slot, uint32_t rank)
{
    return (((size_t)(kind - 1) * g->window + slot) * g->n + rank) *
           RDMC_CTRL_SIZE;
}

static void send_closes(struct rdmc_group *g);

static void fail_group(struct rdmc_group *g, uint32_t node_id, int reason)
{
    int r = node_id == RDMC_NO_PEER ? -1 : rank_of(g, node_id);
    if (r >= 0) {
        if (g->failed_reported[r])
            return;
        g->failed_reported[r] = 1;
    }
    if (g->status == 0)
        g->status = reason;
    rdmc__log(g, LOG_NOTICE, "member %u failed: %s", node_id,
              rdmc_strerror(reason));
    /* We post nothing more: say so to every peer, so that theirs stop too
     * and each side knows when no write can land in its memory. */
    g->closing = true;
    send_closes(g);
    if (!g->stopping && g->cbs.failure) {
        struct rdmc__event *ev = calloc(1, sizeof(*ev));
        if (!ev) {
            rdmc__log(g, LOG_ERR, "no memory to report member %u", node_id);
            return;
        }
        ev->failure = true;
        ev->node = node_id;
        ev->reason = reason;
        queue_event(g, ev); /* made by rdmc__dispatch, unlocked */
    }
}

static struct rdmc__op *get_op(struct rdmc_group *g)
{
    struct rdmc__op *op = g->free_ops;
    if (op)
        g->free_ops = op->next_free;
    return op;
}

static void put_op(struct rdmc_group *g, struct rdmc__op *op)
{
    op->next_free = g->free_ops;
    g->free_ops = op;
}

static void free_slot(struct rdmc_group *g, struct rdmc__msg *m)
{
    if (m->own_mr)
        fab_mr_destroy(m->mr);
    m->mr = NULL;
    m->own_mr = false;
    m->mr_off = 0;
    if (m->own_buf)
        free(m->buf);
    m->buf = NULL;
    free(m->sends);
    m->sends = NULL;
    free(m->have);
    m->have = NULL;
    free(m->rlist);
    m->rlist = NULL;
    size_t n = g->n;
    memset(m->is_source, 0, n);
    memset(m->is_target, 0, n);
    memset(m->ctrl_sent, 0, n);
    memset(m->ready_got, 0, n);
    memset(m->acked, 0, n);
    m->active = false;
    m->delivered = false;
    m->done_sent = false;
    m->nsends = m->next_send = m->sends_done = 0;
    m->nhave = m->acks = 0;
    m->outstanding = 0;
}

/* ---- posting ---------------------------------------------------------- */

static void op_done(struct fab_op *fop, int status);

/* The data word of a write to rank `to` (its group's tag). */
static uint64_t word(const struct rdmc_group *g, uint32_t to, unsigned kind,
                     uint32_t slot, uint32_t block)
{
    return fab_data_word(g->pool, g->peer_tag[to],
                         rdmc_data_encode(kind, slot, block));
}

/* Where rank `from` writes its CLOSE in a member's control region: after
 * the per-kind slots. */
static size_t close_offset(const struct rdmc_group *g, uint32_t from)
{
    return ((size_t)RDMC__NKINDS * g->window * g->n + from) * RDMC_CTRL_SIZE;
}

/* Posts CLOSE to every peer that has not got one and whose connection is
 * alive: "I write nothing more into your memory".  Fenced: it lands after
 * every earlier write of ours.  -EAGAIN is retried by the group's thread
 * and by waiters. */
static void send_closes(struct rdmc_group *g)
{
    if (!g->closing || !g->open)
        return;
    for (uint32_t r = 0; r < g->n; r++) {
        if (r == g->rank || g->close_sent[r] || !g->conns[r] ||
            fab_conn_status(g->conns[r]) != 0)
            continue;
        struct rdmc__op *op = get_op(g);
        if (!op) {
            g->retry = true;
            return;
        }
        struct rdmc_ctrl c = {.kind = RDMC_KIND_DONE,
                              .group_id = g->opts.group_id};
        size_t off = close_offset(g, g->rank);
        rdmc__ctrl_encode(&c, 0, g->ctrl_out + off);
        op->slot = 0;
        op->data = false;
        op->close = true;
        op->fop.done = op_done;
        op->fop.ctx = op;
        int rc = fab_writedata(g->conns[r], g->ctrl_out_mr, off, RDMC_CTRL_SIZE,
                               &g->peer_ctrl[r], off,
                               word(g, r, RDMC_KIND_DONE, 0, RDMC__CLOSE_MARK),
                               FAB_WRITE_FENCE, &op->fop);
        if (rc) {
            put_op(g, op);
            if (rc == -EAGAIN)
                g->retry = true;
            else
                g->close_sent[r] = 1; /* broken: nothing will land */
            continue;
        }
        g->close_sent[r] = 1;
        g->ops_outstanding++;
    }
}

/* True when no live peer can still write into our memory: each sent its
 * CLOSE or its connection is gone. */
static bool closed_everywhere(struct rdmc_group *g)
{
    for (uint32_t r = 0; r < g->n; r++) {
        if (r == g->rank || g->close_got[r] || !g->conns[r] ||
            fab_conn_status(g->conns[r]) != 0)
            continue;
        return false;
    }
    return true;
}

/* Posts one control record to rank `to`.  Returns 0, -EAGAIN (retry later)
 * or a failure (the group is failed). */
static int post_ctrl(struct rdmc_group *g, struct rdmc__msg *m, uint32_t slot,
                     unsigned kind, uint32_t to)
{
    struct rdmc_ctrl c = {.kind = (enum rdmc_ctrl_kind)kind,
                          .group_id = g->opts.group_id,
                          .index = m->index};
    if (kind == RDMC_KIND_HEADER)
        c.size = m->size;
    else if (kind == RDMC_KIND_READY)
        fab_mr_get_desc(m->mr, &c.dest);
    size_t off = ctrl_offset(g, kind, slot, to);
    rdmc__ctrl_encode(&c, kind == RDMC_KIND_READY ? m->mr_off : 0,
                      g->ctrl_out + off);
    if (g->inject_ctrl) {
        /* Copied before the call returns: no context, no completion (on
         * tcp no wake-up at the sender), the record may be rewritten. */
        int rc = fab_writedata(
            g->conns[to], g->ctrl_out_mr, off, RDMC_CTRL_SIZE,
            &g->peer_ctrl[to], ctrl_offset(g, kind, slot, g->rank),
            word(g, to, kind, slot, 0), FAB_WRITE_INJECT, NULL);
        if (rc == -EAGAIN)
            g->retry = true;
        else if (rc)
            fail_group(g, g->node_ids[to], rc);
        return rc;
    }
    struct rdmc__op *op = get_op(g);
    if (!op) {
        g->retry = true;
        return -EAGAIN;
    }
    op->slot = slot;
    op->data = false;
    op->close = false;
    op->fop.done = op_done;
    op->fop.ctx = op;
    int rc =
        fab_writedata(g->conns[to], g->ctrl_out_mr, off, RDMC_CTRL_SIZE,
                      &g->peer_ctrl[to], ctrl_offset(g, kind, slot, g->rank),
                      word(g, to, kind, slot, 0), 0, &op->fop);
    if (rc) {
        put_op(g, op);
        if (rc == -EAGAIN) {
            g->retry = true;
            return rc;
        }
        fail_group(g, g->node_ids[to], rc);
        return rc;
    }
    m->outstanding++;
    g->ops_outstanding++;
    return 0;
}

static int post_block(struct rdmc_group *g, struct rdmc__msg *m, uint32_t slot,
                      const struct rdmc__send *s)
{
    struct rdmc__op *op = get_op(g);
    if (!op) {
        g->retry = true;
        return -EAGAIN;
    }
    size_t bs = g->opts.block_size;
    size_t off = (size_t)s->block * bs;
    size_t len = m->size - off < bs ? m->size - off : bs;
    op->slot = slot;
    op->data = true;
    op->close = false;
    op->fop.done = op_done;
    op->fop.ctx = op;
    int rc = fab_writedata(g->conns[s->target], m->mr, m->mr_off + off, len,
                           &m->dest[s->target], m->dest_off[s->target] + off,
                           word(g, s->target, RDMC_KIND_BLOCK, slot, s->block),
                           0, &op->fop);
    if (rc) {
        put_op(g, op);
        if (rc == -EAGAIN) {
            g->retry = true;
            return rc;
        }
        fail_group(g, g->node_ids[s->target], rc);
        return rc;
    }
    m->outstanding++;
    g->ops_outstanding++;
    g->data_inflight++;
    return 0;
}

static bool msg_finished(const struct rdmc_group *g, const struct rdmc__msg *m)
{
    if (m->sends_done < m->nsends)
        return false;
    if (g->rank == 0)
        return m->acks == g->n - 1;
    return m->nhave == m->blocks;
}

/* Posts whatever message m can post now. */
static void pump_msg(struct rdmc_group *g, uint32_t slot)
{
    struct rdmc__msg *m = &g->slots[slot];
    if (g->rank == 0) {
        for (uint32_t r = 1; r < g->n; r++) {
            if (m->ctrl_sent[r])
                continue;
            if (post_ctrl(g, m, slot, RDMC_KIND_HEADER, r))
                return;
            m->ctrl_sent[r] = 1;
        }
    } else {
        for (uint32_t r = 0; r < g->n; r++) {
            if (!m->is_source[r] || m->ctrl_sent[r])
                continue;
            if (post_ctrl(g, m, slot, RDMC_KIND_READY, r))
                return;
            m->ctrl_sent[r] = 1;
        }
    }
    while (m->next_send < m->nsends && g->data_inflight < RDMC__DATA_INFLIGHT) {
        const struct rdmc__send *s = &m->sends[m->next_send];
        if (g->rank != 0 && !m->have[s->block])
            break;
        if (!m->ready_got[s->target])
            break;
        if (post_block(g, m, slot, s))
            return;
        m->next_send++;
    }
    if (g->rank != 0 && !m->done_sent && msg_finished(g, m)) {
        if (post_ctrl(g, m, slot, RDMC_KIND_DONE, 0))
            return;
        m->done_sent = true;
    }
}

/* Takes rank r's READY for message m (slot) from the control region:
 * where to write m's blocks in r's memory.  -EBADMSG when malformed, for
 * another message, too small, or from a rank I send nothing to. */
static int apply_ready(struct rdmc_group *g, struct rdmc__msg *m, uint32_t slot,
                       uint32_t r)
{
    struct rdmc_ctrl c;
    uint64_t dest_off = 0;
    size_t off = ctrl_offset(g, RDMC_KIND_READY, slot, r);
    if (rdmc__ctrl_decode(g->ctrl_in + off, RDMC_CTRL_SIZE, &c, &dest_off) ||
        c.kind != RDMC_KIND_READY || c.index != m->index ||
        c.dest.len - dest_off < m->size || !m->is_target[r])
        return -EBADMSG;
    m->dest[r] = c.dest;
    m->dest_off[r] = dest_off;
    m->ready_got[r] = 1;
    return 0;
}

/* Starts the sender's next queued message if its slot is free. */
static void start_sends(struct rdmc_group *g)
{
    while (g->queue_head) {
        struct rdmc__queued *q = g->queue_head;
        uint32_t slot = (uint32_t)(q->index % g->window);
        struct rdmc__msg *m = &g->slots[slot];
        if (m->active)
            return;
        uint32_t blocks = blocks_of(g, q->size);
        uint32_t steps = rdmc_schedule_steps(g->opts.algorithm, g->n, blocks);
        m->sends = steps ? calloc(steps, sizeof(*m->sends)) : NULL;
        int rc = 0;
        if (q->mr) {
            m->mr = q->mr; /* the caller's region: nothing to register */
            m->mr_off = q->mr_off;
        } else {
            rc = fab_mr_register(g->pool, (void *)(uintptr_t)q->buf, q->size,
                                 FAB_ACCESS_LOCAL, &m->mr);
            m->own_mr = rc == 0;
        }
        if ((steps && !m->sends) || rc) {
            free(m->sends);
            m->sends = NULL;
            fail_group(g, RDMC_NO_PEER, rc ? rc : -ENOMEM);
            return;
        }
        for (uint32_t s = 0; s < steps; s++) {
            struct rdmc_transfer snd, rcv;
            rdmc_schedule_step(g->opts.algorithm, g->n, 0, blocks, s, &snd,
                               &rcv);
            if (snd.peer != RDMC_NO_PEER) {
                m->sends[m->nsends++] =
                    (struct rdmc__send){snd.peer, snd.block};
                m->is_target[snd.peer] = 1;
            }
        }
        m->active = true;
        m->index = q->index;
        m->size = q->size;
        m->blocks = blocks;
        m->buf = q->mr ? (uint8_t *)fab_mr_addr(q->mr) + q->mr_off
                       : (uint8_t *)(uintptr_t)q->buf;
        m->own_buf = false;
        m->last_activity_ms = now_ms();
        /* READY records that landed before we started this message */
        for (uint32_t r = 1; r < g->n; r++) {
            if (!m->pending_ready[r])
                continue;
            m->pending_ready[r] = 0;
            if (apply_ready(g, m, slot, r)) {
                fail_group(g, g->node_ids[r], -EBADMSG);
                return;
            }
        }
        g->queue_head = q->next;
        if (!g->queue_head)
            g->queue_tail = NULL;
        free(q);
    }
}

static void deliver(struct rdmc_group *g)
{
    for (;;) {
        uint32_t slot = (uint32_t)(g->next_deliver % g->window);
        struct rdmc__msg *m = &g->slots[slot];
        if (!m->active || m->index != g->next_deliver || m->delivered)
            return;
        if (!msg_finished(g, m) || (g->rank != 0 && !m->done_sent))
            return;
        m->delivered = true;
        g->next_deliver++;
        if (!g->stopping && g->cbs.complete) {
            /* the slot (and its buffer) stays until the callback returned */
            m->cb_pending = true;
            m->ev = (struct rdmc__event){.index = m->index,
                                         .data = m->buf,
                                         .size = m->size,
                                         .slot = slot};
            queue_event(g, &m->ev);
            continue;
        }
        if (m->outstanding == 0) {
            free_slot(g, m);
            if (m->pending_header)
                start_recv(g, slot);
            g->repump = true; /* the freed slot may start a message */
        }
    }
}

static void pump(struct rdmc_group *g)
{
    if (g->pump_depth > 0) {
        g->repump = true;
        return;
    }
    g->pump_depth++;
    do {
        g->repump = false;
        if (g->status || g->stopping || !g->open)
            break;
        if (g->rank == 0)
            start_sends(g);
        /* oldest first: it gets the block budget first */
        for (uint32_t i = 0; i < g->window && !g->status; i++) {
            uint32_t slot = (uint32_t)((g->next_deliver + i) % g->window);
            if (g->slots[slot].active && !g->slots[slot].delivered)
                pump_msg(g, slot);
        }
        if (!g->status)
            deliver(g);
    } while (g->repump);
    g->pump_depth--;
}

/* ---- events ----------------------------------------------------------- */

/* Makes the queued callbacks in order with the lock released, one
 * dispatcher per group at a time (a group's callbacks never overlap, and
 * a callback may call into librdmc, e.g. rdmc_send, without deadlock).
 * Every entry point calls it after releasing the lock; a nested call (a
 * callback's own call into librdmc) leaves the work to the outer one.
 * After destroy began, events are dropped without calls. */
static void dispatch(struct rdmc_group *g)
{
    glock(g);
    if (g->dispatching || !g->ev_head) {
        gunlock(g);
        return;
    }
    g->dispatching = true;
    g->cb_thread = pthread_self();
    while (g->ev_head) {
        struct rdmc__event *ev = g->ev_head;
        g->ev_head = ev->next;
        if (!g->ev_head)
            g->ev_tail = NULL;
        bool call = !g->stopping;
        gunlock(g);
        struct incoming_buf got = {0};
        if (call && ev->incoming)
            ask_incoming(g, ev, &got);
        else if (call && ev->failure)
            g->cbs.failure(g->ctx, g, ev->node, ev->reason);
        else if (call)
            g->cbs.complete(g->ctx, g, ev->index, ev->data, ev->size);
        glock(g);
        if (ev->incoming) {
            g->slots[ev->slot].awaiting_buf = false;
            if (call)
                finish_recv(g, ev->slot, &got);
            pump(g);
            free(ev);
            continue;
        }
        if (ev->failure) {
            free(ev);
            continue;
        }
        struct rdmc__msg *m = &g->slots[ev->slot];
        m->cb_pending = false;
        if (m->outstanding == 0) {
            free_slot(g, m);
            if (m->pending_header)
                start_recv(g, ev->slot);
            pump(g); /* the freed slot may start a message */
        }
    }
    g->dispatching = false;
    gunlock(g);
}

static void op_done(struct fab_op *fop, int status)
{
    struct rdmc__op *op = fop->ctx;
    struct rdmc_group *g = op->g;
    if (held_here(g)) {
        /* inside our own post: after the poster's work, before unlock */
        op->def_rec = (struct rdmc__deferred){
            .op = op, .status = status, .node_id = fop->node_id};
        defer(g, &op->def_rec);
        return;
    }
    glock(g);
    handle_done(g, op, fop->node_id, status);
    gunlock(g);
    dispatch(g);
}

/* op completed with status; lock held. */
static void handle_done(struct rdmc_group *g, struct rdmc__op *op,
                        uint32_t node, int status)
{
    if (op->close) {
        g->ops_outstanding--;
        put_op(g, op);
        return; /* an error fails the connection: on_failure says it */
    }
    struct rdmc__msg *m = &g->slots[op->slot];
    g->ops_outstanding--;
    m->outstanding--;
    if (op->data) {
        g->data_inflight--;
        m->sends_done++;
    }
    put_op(g, op);
    m->last_activity_ms = now_ms();
    if (status) {
        fail_group(g, node, status);
    } else if (m->delivered && m->outstanding == 0 && !m->cb_pending) {
        uint32_t slot = (uint32_t)(m - g->slots);
        free_slot(g, m);
        if (m->pending_header)
            start_recv(g, slot);
    }
    pump(g);
}

/* A HEADER landed in slot (from rank 0) and the slot is free: start
 * receiving. */
static void start_recv(struct rdmc_group *g, uint32_t slot)
{
    struct rdmc__msg *m = &g->slots[slot];
    m->pending_header = false;
    if (g->status || g->stopping)
        return;
    struct rdmc_ctrl c;
    size_t off = ctrl_offset(g, RDMC_KIND_HEADER, slot, 0);
    if (rdmc__ctrl_decode(g->ctrl_in + off, RDMC_CTRL_SIZE, &c, NULL) ||
        c.kind != RDMC_KIND_HEADER || c.group_id != g->opts.group_id ||
        c.index % g->window != slot || c.index < g->next_deliver ||
        c.index >= g->next_deliver + g->window ||
        c.size > g->opts.max_msg_size) {
        rdmc__log(g, LOG_ERR, "malformed HEADER from node %u", g->node_ids[0]);
        fail_group(g, g->node_ids[0], -EBADMSG);
        return;
    }
    uint32_t blocks = blocks_of(g, c.size);
    uint32_t steps = rdmc_schedule_steps(g->opts.algorithm, g->n, blocks);
    m->sends = calloc(steps ? steps : 1, sizeof(*m->sends));
    m->have = calloc(blocks, 1);
    m->rlist = calloc(blocks, sizeof(*m->rlist));
    if (!m->sends || !m->have || !m->rlist) {
        fail_group(g, RDMC_NO_PEER, -ENOMEM);
        return;
    }
    m->index = c.index;
    m->size = (size_t)c.size;
    m->blocks = blocks;
    struct incoming_buf none = {0};
    if (!g->opts.incoming_mr && !g->cbs.incoming) {
        finish_recv(g, slot, &none);
        return;
    }
    /* The application's buffer: asked by the dispatcher without the lock;
     * it finishes the start (finish_recv) after the call. */
    struct rdmc__event *ev = calloc(1, sizeof(*ev));
    if (!ev) {
        fail_group(g, RDMC_NO_PEER, -ENOMEM);
        return;
    }
    ev->incoming = true;
    ev->slot = slot;
    ev->index = c.index;
    ev->size = m->size;
    m->awaiting_buf = true;
    queue_event(g, ev);
}

/* The incoming/incoming_mr call for ev, without the lock. */
static void ask_incoming(struct rdmc_group *g, const struct rdmc__event *ev,
                         struct incoming_buf *got)
{
    got->asked = true;
    if (g->opts.incoming_mr)
        got->want = g->opts.incoming_mr(g->ctx, g, ev->index, ev->size,
                                        &got->mr, &got->at);
    else if (g->cbs.incoming)
        got->buf = g->cbs.incoming(g->ctx, g, ev->index, ev->size);
}

/* The rest of start_recv once the destination is known (got); lock held. */
static void finish_recv(struct rdmc_group *g, uint32_t slot,
                        const struct incoming_buf *got)
{
    struct rdmc__msg *m = &g->slots[slot];
    if (g->status || g->stopping)
        return;
    uint32_t blocks = m->blocks;
    uint32_t steps = rdmc_schedule_steps(g->opts.algorithm, g->n, blocks);
    void *buf = got->buf;
    int rc = 0;
    if (got->asked && g->opts.incoming_mr && got->want == 0 && got->mr) {
        struct fab_mr *mr = got->mr;
        size_t at = got->at;
        if (at > fab_mr_len(mr) || fab_mr_len(mr) - at < m->size) {
            rdmc__log(g, LOG_ERR,
                      "incoming_mr: region too small for message %llu",
                      (unsigned long long)m->index);
            fail_group(g, RDMC_NO_PEER, -ERANGE);
            return;
        }
        m->mr = mr; /* registered already: no per-message work */
        m->mr_off = at;
        buf = (uint8_t *)fab_mr_addr(mr) + at;
    }
    if (!m->mr) {
        m->own_buf = buf == NULL;
        if (!buf)
            buf = malloc(m->size);
        rc = buf ? fab_mr_register(g->pool, buf, m->size,
                                   FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                   &m->mr)
                 : -ENOMEM;
        m->own_mr = rc == 0;
    }
    m->buf = buf;
    if (rc) {
        fail_group(g, RDMC_NO_PEER, rc);
        return;
    }
    /* Two passes over the schedule: count what each source sends me,
     * then lay the blocks out per source in step order. */
    memset(m->rcnt, 0, g->n * sizeof(*m->rcnt));
    for (uint32_t s = 0; s < steps; s++) {
        struct rdmc_transfer snd, rcv;
        rdmc_schedule_step(g->opts.algorithm, g->n, g->rank, blocks, s, &snd,
                           &rcv);
        if (snd.peer != RDMC_NO_PEER) {
            m->sends[m->nsends++] = (struct rdmc__send){snd.peer, snd.block};
            m->is_target[snd.peer] = 1;
        }
        if (rcv.peer != RDMC_NO_PEER) {
            m->is_source[rcv.peer] = 1;
            m->rcnt[rcv.peer]++;
        }
    }
    uint32_t off_sum = 0;
    for (uint32_t r = 0; r < g->n; r++) {
        m->roff[r] = off_sum;
        m->rcur[r] = off_sum;
        off_sum += m->rcnt[r];
    }
    if (off_sum != blocks) {
        fail_group(g, RDMC_NO_PEER, -EPROTO); /* schedule bug */
        return;
    }
    for (uint32_t s = 0; s < steps; s++) {
        struct rdmc_transfer snd, rcv;
        rdmc_schedule_step(g->opts.algorithm, g->n, g->rank, blocks, s, &snd,
                           &rcv);
        if (rcv.peer != RDMC_NO_PEER)
            m->rlist[m->rcur[rcv.peer]++] = rcv.block;
    }
    for (uint32_t r = 0; r < g->n; r++)
        m->rcur[r] = m->roff[r];
    m->active = true;
    m->last_activity_ms = now_ms();
    for (uint32_t r = 1; r < g->n; r++) {
        if (!m->pending_ready[r])
            continue;
        m->pending_ready[r] = 0;
        if (apply_ready(g, m, slot, r)) {
            fail_group(g, g->node_ids[r], -EBADMSG);
            return;
        }
    }
}

/* Which block a BLOCK word from rank r names: the first block of r's
 * sends to me, in schedule order, not yet received and with residue
 * block_mod.  UINT32_MAX when there is none. */
static uint32_t find_block(struct rdmc__msg *m, uint32_t r, uint32_t block_mod)
{
    uint32_t end = m->roff[r] + m->rcnt[r];
    while (m->rcur[r] < end && m->have[m->rlist[m->rcur[r]]])
        m->rcur[r]++;
    for (uint32_t i = m->rcur[r]; i < end; i++) {
        uint32_t b = m->rlist[i];
        if (!m->have[b] && b % RDMC_DATA_BLOCK_MOD == block_mod)
            return b;
    }
    return UINT32_MAX;
}

static void on_remote_data(void *ctx, uint32_t node_id, uint64_t data)
{
    struct rdmc_group *g = ctx;
    if (held_here(g)) {
        /* inside our own post: after the poster's work, before unlock */
        struct rdmc__deferred *d = calloc(1, sizeof(*d));
        if (!d) {
            g->def_oom = true;
            return;
        }
        d->node_id = node_id;
        d->data = data;
        defer(g, d);
        return;
    }
    glock(g);
    handle_data(g, node_id, data);
    gunlock(g);
    dispatch(g);
}

/* A peer's data word; lock held. */
static void handle_data(struct rdmc_group *g, uint32_t node_id, uint64_t data)
{
    unsigned kind;
    uint32_t slot, block_mod;
    rdmc_data_decode((uint32_t)(data & FAB_DATA_PAYLOAD_MAX), &kind, &slot,
                     &block_mod);
    int r = rank_of(g, node_id);
    if (r < 0 || (uint32_t)r == g->rank)
        return;
    if (kind == RDMC_KIND_DONE && block_mod == RDMC__CLOSE_MARK) {
        /* the peer writes nothing more here; a group still running
         * cannot go on without it: failed, and we close too */
        g->close_got[r] = 1;
        if (g->status == 0)
            fail_group(g, node_id, -ESHUTDOWN);
        g->closing = true;
        send_closes(g);
        return;
    }
    if (g->status || g->stopping)
        return;
    if (slot >= g->window) {
        fail_group(g, node_id, -EBADMSG);
        return;
    }
    struct rdmc__msg *m = &g->slots[slot];
    bool current = m->active && !m->delivered;
    switch (kind) {
    case RDMC_KIND_HEADER:
        if (r != 0 || g->rank == 0 || m->pending_header) {
            fail_group(g, node_id, -EBADMSG);
            break;
        }
        if (m->active || m->awaiting_buf)
            m->pending_header = true;
        else
            start_recv(g, slot);
        break;
    case RDMC_KIND_READY: {
        if (r == 0 || m->pending_ready[r]) {
            fail_group(g, node_id, -EBADMSG);
            break;
        }
        struct rdmc_ctrl c;
        size_t off = ctrl_offset(g, RDMC_KIND_READY, slot, (uint32_t)r);
        int bad = rdmc__ctrl_decode(g->ctrl_in + off, RDMC_CTRL_SIZE, &c, NULL);
        if (!current || (!bad && c.index != m->index)) {
            /* a later message's: checked when that message starts */
            m->pending_ready[r] = 1;
            break;
        }
        if (bad || m->ready_got[r] || apply_ready(g, m, slot, (uint32_t)r)) {
            fail_group(g, node_id, -EBADMSG);
            break;
        }
        m->last_activity_ms = now_ms();
        break;
    }
    case RDMC_KIND_DONE: {
        struct rdmc_ctrl c;
        size_t off = ctrl_offset(g, RDMC_KIND_DONE, slot, (uint32_t)r);
        if (g->rank != 0 || !current || m->acked[r] ||
            rdmc__ctrl_decode(g->ctrl_in + off, RDMC_CTRL_SIZE, &c, NULL) ||
            c.kind != RDMC_KIND_DONE || c.index != m->index) {
            fail_group(g, node_id, -EBADMSG);
            break;
        }
        m->acked[r] = 1;
        m->acks++;
        m->last_activity_ms = now_ms();
        break;
    }
    case RDMC_KIND_BLOCK: {
        uint32_t block = UINT32_MAX;
        if (g->rank != 0 && current && m->is_source[r])
            block = find_block(m, (uint32_t)r, block_mod);
        if (block == UINT32_MAX) {
            fail_group(g, node_id, -EBADMSG);
            break;
        }
        m->have[block] = 1;
        m->nhave++;
        m->last_activity_ms = now_ms();
        break;
    }
    default:
        fail_group(g, node_id, -EBADMSG);
        break;
    }
    pump(g);
}

static void on_failure(void *ctx, uint32_t node_id, int reason)
{
    struct rdmc_group *g = ctx;
    glock(g);
    if (rank_of(g, node_id) >= 0)
        fail_group(g, node_id, reason ? reason : -ECONNRESET);
    gunlock(g);
    dispatch(g);
}

/* ---- the group's thread ------------------------------------------------ */

/* The member a stalled message m waits for, as a node id, or RDMC_NO_PEER
 * when it waits for no one in particular (docs/rdmc.md, "Failures").  A
 * receiver missing blocks names the source of the first block it misses
 * in schedule order; a receiver holding every block names the target of
 * its first unfinished send (it waits for that member's READY or for the
 * member to take its writes).  The sender names the target of its first
 * unfinished send likewise, or, once everything is sent, the one receiver
 * whose DONE is missing when exactly one is. */
static uint32_t stalled_peer(const struct rdmc_group *g,
                             const struct rdmc__msg *m)
{
    if (g->rank != 0 && m->nhave < m->blocks) {
        uint32_t steps =
            rdmc_schedule_steps(g->opts.algorithm, g->n, m->blocks);
        for (uint32_t s = 0; s < steps; s++) {
            struct rdmc_transfer snd, rcv;
            if (rdmc_schedule_step(g->opts.algorithm, g->n, g->rank, m->blocks,
                                   s, &snd, &rcv))
                break;
            if (rcv.peer != RDMC_NO_PEER && rcv.peer < g->n &&
                rcv.block < m->blocks && !m->have[rcv.block])
                return g->node_ids[rcv.peer];
        }
        return RDMC_NO_PEER;
    }
    if (m->sends_done < m->nsends) {
        /* sends are posted in order; the first one not finished */
        uint32_t t = m->sends[m->sends_done].target;
        return t < g->n ? g->node_ids[t] : RDMC_NO_PEER;
    }
    if (g->rank == 0 && m->acks + 2 == g->n) {
        for (uint32_t r = 1; r < g->n; r++)
            if (!m->acked[r])
                return g->node_ids[r];
    }
    return RDMC_NO_PEER;
}

static void check_timeouts(struct rdmc_group *g)
{
    if (g->status || g->opts.timeout_ms < 0)
        return;
    int64_t now = now_ms();
    if (g->opts.log_level >= LOG_DEBUG && now - g->last_dump_ms > 3000) {
        g->last_dump_ms = now;
        for (uint32_t i = 0; i < g->window; i++) {
            struct rdmc__msg *m = &g->slots[i];
            if (!m->active)
                continue;
            unsigned cs = 0, rg = 0, pr = 0;
            for (uint32_t r = 0; r < g->n; r++) {
                cs += m->ctrl_sent[r];
                rg += m->ready_got[r];
                pr += m->pending_ready[r];
            }
            rdmc__log(g, LOG_DEBUG,
                      "g%u rank %u ctrl_sent %u ready_got %u pend_ready %u "
                      "open %d status %d",
                      g->opts.group_id, g->rank, cs, rg, pr, g->open,
                      g->status);
            rdmc__log(g, LOG_DEBUG,
                      "slot %u: active %d idx %llu delivered %d out %u have "
                      "%u/%u sends %u/%u/%u acks %u pend_hdr %d done_sent %d "
                      "next_deliver %llu inflight %u",
                      i, m->active, (unsigned long long)m->index, m->delivered,
                      m->outstanding, m->nhave, m->blocks, m->next_send,
                      m->sends_done, m->nsends, m->acks, m->pending_header,
                      m->done_sent, (unsigned long long)g->next_deliver,
                      g->data_inflight);
        }
    }
    for (uint32_t i = 0; i < g->window; i++) {
        struct rdmc__msg *m = &g->slots[i];
        if (m->active && !m->delivered &&
            now - m->last_activity_ms > g->opts.timeout_ms) {
            uint32_t peer = stalled_peer(g, m);
            /* Naming a relay (rank r > 0) waits r / 2 timeouts more (at
             * most 4): a relay that itself waits for its predecessor then
             * reports first and its CLOSE fails this group, instead of
             * this member naming it, which did nothing wrong. */
            int pr = peer == RDMC_NO_PEER ? 0 : rank_of(g, peer);
            int64_t extra = (int64_t)g->opts.timeout_ms *
                            (pr > 8   ? 8
                             : pr > 0 ? pr
                                      : 0) /
                            2;
            if (now - m->last_activity_ms <= g->opts.timeout_ms + extra)
                continue;
            if (peer == RDMC_NO_PEER)
                rdmc__log(g, LOG_WARNING, "message %llu stalled for %d ms",
                          (unsigned long long)m->index, g->opts.timeout_ms);
            else
                rdmc__log(g, LOG_WARNING,
                          "message %llu stalled for %d ms waiting for node %u",
                          (unsigned long long)m->index, g->opts.timeout_ms,
                          peer);
            fail_group(g, peer, -ETIMEDOUT);
            return;
        }
    }
}

/* What the group's thread does after each progress pass (and
 * rdmc_groups_poll for groups without a thread): retries, timeouts,
 * callbacks. */
static void service(struct rdmc_group *g)
{
    glock(g);
    if (g->retry) {
        g->retry = false;
        pump(g);
        send_closes(g);
    }
    check_timeouts(g);
    gunlock(g);
    dispatch(g);
}

static void *group_main(void *arg)
{
    struct rdmc_group *g = arg;
    char name[16];
    snprintf(name, sizeof(name), "rdmc-%u", g->opts.group_id);
    pthread_setname_np(pthread_self(), name);
    while (!atomic_load_explicit(&g->stop, memory_order_acquire)) {
        glock(g);
        drain_deferred(g);
        int wait_ms = g->retry || g->ev_head ? 2 : 50;
        gunlock(g);
        fab_pool_progress_wait(g->pool, g->opts.spin_us, wait_ms);
        service(g);
    }
    return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

/* Parameters every member must agree on, published under
 * rdmc_blob_key(group_id, epoch). */
#define BLOB_VERSION 2
#define BLOB_EPOCH_OFF 44 /* options.epoch */
#define BLOB_TAG_OFF 52   /* this member's libfab data tag */
#define BLOB_DESC_OFF 56  /* its control region: the last bytes */
#define BLOB_SIZE (BLOB_DESC_OFF + FAB_MR_DESC_SIZE)

uint64_t rdmc_blob_key(uint32_t group_id, uint64_t epoch)
{
    if (epoch == 0)
        return RDMC_BLOB_KEY(group_id); /* the first version's key */
    uint64_t in[2] = {group_id, epoch};
    /* top byte 'r': never one of the first version's keys ('R...') */
    return (0x72ull << 56) | (XXH3_64bits(in, sizeof(in)) >> 8);
}

static uint64_t blob_key(const struct rdmc_group *g)
{
    return rdmc_blob_key(g->opts.group_id, g->opts.epoch);
}

/* Little-endian fields of 4 or 8 bytes. */
static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    if (bytes == 4)
        mutils_store_le32(p, (uint32_t)v);
    else
        mutils_store_le64(p, v);
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    return bytes == 4 ? mutils_load_le32(p) : mutils_load_le64(p);
}

static uint64_t members_hash(const struct rdmc_group *g)
{
    uint8_t buf[4 * RDMC_MAX_MEMBERS];
    for (uint32_t r = 0; r < g->n; r++)
        put_le(buf + 4 * r, g->node_ids[r], 4);
    return XXH3_64bits(buf, 4 * (size_t)g->n);
}

static void encode_blob(const struct rdmc_group *g, uint8_t *b)
{
    struct fab_mr_desc d;
    fab_mr_get_desc(g->ctrl_in_mr, &d);
    put_le(b, BLOB_VERSION, 4);
    put_le(b + 4, g->opts.group_id, 4);
    put_le(b + 8, (uint64_t)g->opts.algorithm, 4);
    put_le(b + 12, g->window, 4);
    put_le(b + 16, g->opts.block_size, 8);
    put_le(b + 24, g->opts.max_msg_size, 8);
    put_le(b + 32, g->n, 4);
    put_le(b + 36, members_hash(g), 8);
    put_le(b + BLOB_EPOCH_OFF, g->opts.epoch, 8);
    put_le(b + BLOB_TAG_OFF, g->tag, 4);
    fab_mr_desc_encode(&d, b + BLOB_DESC_OFF);
}

/* Compares a peer's blob with ours; returns 0 or -EPROTO (logged). */
static int check_blob(struct rdmc_group *g, uint32_t r, const uint8_t *b,
                      size_t len, const uint8_t *mine)
{
    static const struct {
        const char *name;
        int off, bytes;
    } fields[] = {{"version", 0, 4},           {"group id", 4, 4},
                  {"algorithm", 8, 4},         {"window", 12, 4},
                  {"block size", 16, 8},       {"max message size", 24, 8},
                  {"member count", 32, 4},     {"member list", 36, 8},
                  {"epoch", BLOB_EPOCH_OFF, 8}};
    if (len != BLOB_SIZE) {
        rdmc__log(g, LOG_ERR, "node %u: malformed group parameters",
                  g->node_ids[r]);
        return -EPROTO;
    }
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint64_t a = get_le(mine + fields[i].off, fields[i].bytes);
        uint64_t p = get_le(b + fields[i].off, fields[i].bytes);
        if (a != p) {
            rdmc__log(g, LOG_ERR,
                      "node %u: %s differs (mine %llu, theirs %llu)",
                      g->node_ids[r], fields[i].name, (unsigned long long)a,
                      (unsigned long long)p);
            return -EPROTO;
        }
    }
    if (fab_mr_desc_decode(b + BLOB_DESC_OFF, FAB_MR_DESC_SIZE,
                           &g->peer_ctrl[r]) ||
        g->peer_ctrl[r].len < g->ctrl_len) {
        rdmc__log(g, LOG_ERR, "node %u: bad control region", g->node_ids[r]);
        return -EPROTO;
    }
    g->peer_tag[r] = (uint32_t)get_le(b + BLOB_TAG_OFF, 4);
    if (g->peer_tag[r] == 0 || g->peer_tag[r] > FAB_DATA_TAG_MAX) {
        rdmc__log(g, LOG_ERR, "node %u: bad data tag %u", g->node_ids[r],
                  g->peer_tag[r]);
        return -EPROTO;
    }
    return 0;
}

static int validate(struct fab_pool *pool, const struct rdmc_member *members,
                    size_t num, const struct rdmc_options *o, uint32_t *rank)
{
    if (!pool || !members || num == 0 || num > RDMC_MAX_MEMBERS)
        return -EINVAL;
    if (o->group_id > RDMC_MAX_GROUP_ID || o->block_size == 0 ||
        o->max_msg_size == 0 || !rdmc_algorithm_name(o->algorithm) ||
        o->window == 0 || o->window > 64 || (o->window & (o->window - 1)))
        return -EINVAL;
    if ((o->max_msg_size - 1) / o->block_size + 1 > RDMC_MAX_BLOCKS)
        return -EINVAL;
    /* 0 would fail the first message at once (< 0 means never) */
    if (o->timeout_ms == 0)
        return -EINVAL;
    if (o->threading != RDMC_THREAD_PER_GROUP &&
        o->threading != RDMC_THREAD_CALLER)
        return -EINVAL;
    uint32_t me = fab_pool_node_id(pool);
    int found = -1;
    for (size_t i = 0; i < num; i++) {
        if (members[i].node_id == RDMC_NO_PEER)
            return -EINVAL; /* means "no member" in callbacks */
        if (members[i].node_id == me)
            found = (int)i;
        else if (!members[i].host)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (members[j].node_id == members[i].node_id)
                return -EINVAL;
    }
    if (found < 0)
        return -EINVAL;
    *rank = (uint32_t)found;
    return 0;
}

static void release_all(struct rdmc_group *g)
{
    if (g->published)
        fab_pool_unpublish(g->pool, blob_key(g));
    fab_user_destroy(g->user); /* after it, no callback of ours runs */
    g->user = NULL;
    bool leak = g->ops_outstanding > 0;
    if (leak)
        rdmc__log(g, LOG_WARNING,
                  "%u operations never completed; keeping their memory",
                  g->ops_outstanding);
    for (uint32_t i = 0; g->slots && i < g->window; i++) {
        struct rdmc__msg *m = &g->slots[i];
        if (!leak && m->own_mr)
            fab_mr_destroy(m->mr);
        if (m->own_buf && !leak)
            free(m->buf);
        free(m->sends);
        free(m->have);
        free(m->is_source);
        free(m->is_target);
        free(m->ctrl_sent);
        free(m->ready_got);
        free(m->pending_ready);
        free(m->acked);
        free(m->dest);
        free(m->rlist);
        free(m->roff);
        free(m->dest_off);
        free(m->rcnt);
        free(m->rcur);
    }
    free(g->slots);
    if (!leak) {
        fab_mr_destroy(g->ctrl_in_mr);
        fab_mr_destroy(g->ctrl_out_mr);
        free(g->ctrl_in);
        free(g->ctrl_out);
        free(g->ops);
    }
    while (g->ev_head) {
        struct rdmc__event *ev = g->ev_head;
        g->ev_head = ev->next;
        if (ev->failure)
            free(ev);
    }
    while (g->queue_head) {
        struct rdmc__queued *q = g->queue_head;
        g->queue_head = q->next;
        free(q);
    }
    free(g->conns);
    free(g->peer_ctrl);
    free(g->peer_tag);
    free(g->node_ids);
    free(g->failed_reported);
    free(g->close_sent);
    free(g->close_got);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static void stop_thread(struct rdmc_group *g)
{
    if (!g->thread_started)
        return;
    atomic_store_explicit(&g->stop, true, memory_order_release);
    fab_pool_wake(g->pool);
    pthread_join(g->thread, NULL);
    g->thread_started = false;
}

static void set_err(struct rdmc_error *err, int code, uint32_t node,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void set_err(struct rdmc_error *err, int code, uint32_t node,
                    const char *fmt, ...)
{
    if (!err || err->code)
        return; /* the first error of a call is the one reported */
    err->code = code;
    err->node_id = node;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* Phase 1a: the options (NULL: every default) checked and copied into *o,
 * the members checked, my rank found. */
static int setup_validate(struct fab_pool *pool,
                          const struct rdmc_member *members, size_t num_members,
                          const struct rdmc_options *opts,
                          struct rdmc_options *o_out, uint32_t *rank_out,
                          struct rdmc_error *err)
{
    struct rdmc_options o;
    rdmc_options_init(&o); /* NULL options: all defaults */
    /* Smaller than the first layout (0: not initialised) is a mistake: a
     * partial copy could split a pointer.  Between it and ours: an older
     * caller, the fields it lacks keep their defaults.  Larger: a newer
     * header, accepted while the fields it adds are zero (their defaults);
     * a set one asks for something this version cannot do. */
    if (opts && opts->size < RDMC__OPTIONS_V1_SIZE) {
        set_err(err, -EINVAL, RDMC_NO_PEER, "options size %zu too small",
                opts->size);
        return -EINVAL;
    }
    for (size_t i = sizeof(o); opts && i < opts->size; i++)
        if (((const uint8_t *)opts)[i] != 0) {
            set_err(err, -EINVAL, RDMC_NO_PEER,
                    "options size %zu: byte %zu past this version's %zu is "
                    "set",
                    opts->size, i, sizeof(o));
            return -EINVAL;
        }
    if (opts)
        memcpy(&o, opts, opts->size < sizeof(o) ? opts->size : sizeof(o));
    o.size = sizeof(o);
    int rc = validate(pool, members, num_members, &o, rank_out);
    if (rc) {
        set_err(err, rc, RDMC_NO_PEER, "invalid members or options");
        return rc;
    }
    *o_out = o;
    return 0;
}

/* Phase 1b: the group object and its per-member and per-slot state. */
static int setup_alloc(struct fab_pool *pool, const struct rdmc_member *members,
                       size_t num_members, const struct rdmc_options *o,
                       uint32_t rank, const struct rdmc_callbacks *cbs,
                       void *ctx, struct rdmc_group **out)
{
    struct rdmc_group *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->pool = pool;
    g->inject_ctrl = fab_pool_inject_size(pool) >= RDMC_CTRL_SIZE;
    g->opts = *o;
    if (cbs)
        g->cbs = *cbs;
    g->ctx = ctx;
    g->n = (uint32_t)num_members;
    g->rank = rank;
    g->window = o->window;
    pthread_mutex_init(&g->lock, NULL);
    atomic_init(&g->owned, false);
    atomic_init(&g->stop, false);
    size_t n = g->n;
    g->node_ids = calloc(n, sizeof(*g->node_ids));
    g->conns = calloc(n, sizeof(*g->conns));
    g->peer_ctrl = calloc(n, sizeof(*g->peer_ctrl));
    g->peer_tag = calloc(n, sizeof(*g->peer_tag));
    g->failed_reported = calloc(n, 1);
    g->slots = calloc(g->window, sizeof(*g->slots));
    g->ctrl_len = ((size_t)RDMC__NKINDS * g->window * n + n) * RDMC_CTRL_SIZE;
    g->ctrl_in = calloc(1, g->ctrl_len);
    g->ctrl_out = calloc(1, g->ctrl_len);
    g->nops = RDMC__DATA_INFLIGHT + (size_t)RDMC__NKINDS * g->window * n + n;
    g->close_sent = calloc(n, 1);
    g->close_got = calloc(n, 1);
    g->ops = calloc(g->nops, sizeof(*g->ops));
    int rc = -ENOMEM;
    if (!g->node_ids || !g->conns || !g->peer_ctrl || !g->peer_tag ||
        !g->failed_reported || !g->close_sent || !g->close_got || !g->slots ||
        !g->ctrl_in || !g->ctrl_out || !g->ops)
        goto fail;
    for (uint32_t i = 0; i < g->window; i++) {
        struct rdmc__msg *m = &g->slots[i];
        m->is_source = calloc(n, 1);
        m->is_target = calloc(n, 1);
        m->ctrl_sent = calloc(n, 1);
        m->ready_got = calloc(n, 1);
        m->pending_ready = calloc(n, 1);
        m->acked = calloc(n, 1);
        m->dest = calloc(n, sizeof(*m->dest));
        m->roff = calloc(n, sizeof(*m->roff));
        m->dest_off = calloc(n, sizeof(*m->dest_off));
        m->rcnt = calloc(n, sizeof(*m->rcnt));
        m->rcur = calloc(n, sizeof(*m->rcur));
        if (!m->is_source || !m->is_target || !m->ctrl_sent || !m->ready_got ||
            !m->pending_ready || !m->acked || !m->dest || !m->roff ||
            !m->rcnt || !m->rcur || !m->dest_off)
            goto fail;
    }
    for (size_t i = 0; i < g->nops; i++) {
        g->ops[i].g = g;
        put_op(g, &g->ops[i]);
    }
    for (size_t i = 0; i < n; i++)
        g->node_ids[i] = members[i].node_id;

    *out = g;
    return 0;

fail:
    release_all(g);
    return rc;
}

/* Phase 1c: the control regions registered, a libfab user with a data
 * tag.  No thread, nothing published. */
static int setup_register(struct rdmc_group *g, struct rdmc_error *err)
{
    struct fab_pool *pool = g->pool;
    int rc;
    rc = fab_mr_register(pool, g->ctrl_in, g->ctrl_len,
                         FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                         &g->ctrl_in_mr);
    if (rc)
        return rc;
    rc = fab_mr_register(pool, g->ctrl_out, g->ctrl_len, FAB_ACCESS_LOCAL,
                         &g->ctrl_out_mr);
    if (rc)
        return rc;
    struct fab_user_callbacks ucbs = {.on_failure = on_failure,
                                      .on_remote_data = on_remote_data};
    rc = fab_user_create(pool, &ucbs, g, &g->user);
    if (rc)
        return rc;
    /* Our words come to us alone, by tag; peers learn it from the blob. */
    rc = fab_user_claim_tag(g->user, FAB_DATA_TAG_ANY, &g->tag);
    if (rc) {
        rdmc__log(g, LOG_ERR, "no libfab data tag: %s", rdmc_strerror(rc));
        set_err(err, rc, RDMC_NO_PEER, "no libfab data tag: %s",
                rdmc_strerror(rc));
        return rc;
    }
    return 0;
}

/* Phase 1: validate, allocate, register. */
static int group_setup(struct fab_pool *pool, const struct rdmc_member *members,
                       size_t num_members, const struct rdmc_options *opts,
                       const struct rdmc_callbacks *cbs, void *ctx,
                       struct rdmc_group **out, struct rdmc_error *err)
{
    struct rdmc_options o;
    uint32_t rank;
    int rc = setup_validate(pool, members, num_members, opts, &o, &rank, err);
    if (rc)
        return rc;
    struct rdmc_group *g = NULL;
    rc = setup_alloc(pool, members, num_members, &o, rank, cbs, ctx, &g);
    if (rc)
        return rc;
    rc = setup_register(g, err);
    if (rc) {
        release_all(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* Phase 2: start the thread (peers may write as soon as they fetched our
 * blob; nothing is posted before the group is open) and publish our
 * parameters. */
static int group_publish(struct rdmc_group *g, struct rdmc_error *err)
{
    if (g->opts.threading == RDMC_THREAD_PER_GROUP) {
        if (pthread_create(&g->thread, NULL, group_main, g)) {
            set_err(err, -EAGAIN, RDMC_NO_PEER, "no thread");
            return -EAGAIN;
        }
        g->thread_started = true;
    }
    uint8_t mine[BLOB_SIZE];
    encode_blob(g, mine);
    int rc = fab_pool_publish(g->pool, blob_key(g), mine, sizeof(mine));
    if (rc) {
        set_err(err, rc, RDMC_NO_PEER, "publishing: %s", rdmc_strerror(rc));
        return rc;
    }
    g->published = true;
    return 0;
}

/* The rendezvous callbacks of phase 3. */
struct meet {
    struct rdmc_group *g;
    uint8_t mine[BLOB_SIZE];
    size_t failed_index; /* the member named by the error */
    bool blamed;         /* create_wait gave up, naming blame */
    uint32_t blame;
};

static int meet_check(void *ctx, size_t index, const void *blob, size_t len,
                      struct fab_error *ferr)
{
    struct meet *mt = ctx;
    struct rdmc_group *g = mt->g;
    glock(g);
    int rc = check_blob(g, (uint32_t)index, blob, len, mt->mine);
    gunlock(g);
    if (rc) {
        mt->failed_index = index;
        ferr->code = rc;
        snprintf(ferr->msg, sizeof(ferr->msg),
                 "node %u's parameters differ (see the log)",
                 g->node_ids[index]);
        return rc;
    }
    return FAB_RENDEZVOUS_DONE;
}

/* The caller's create_wait hook: give up early, naming whom it blames. */
static int meet_waiting(void *ctx, size_t index, struct fab_error *ferr)
{
    struct meet *mt = ctx;
    struct rdmc_group *g = mt->g;
    if (!g->opts.create_wait)
        return 0;
    uint32_t blame = g->node_ids[index];
    int rc = g->opts.create_wait(g->opts.create_wait_ctx, g->node_ids[index],
                                 &blame);
    if (rc >= 0)
        return 0;
    mt->blame = blame;
    mt->blamed = true;
    ferr->code = rc;
    if (blame == RDMC_NO_PEER)
        snprintf(ferr->msg, sizeof(ferr->msg),
                 "given up while waiting for node %u: %s", g->node_ids[index],
                 rdmc_strerror(rc));
    else
        snprintf(ferr->msg, sizeof(ferr->msg),
                 "given up while waiting for node %u: node %u failed (%s)",
                 g->node_ids[index], blame, rdmc_strerror(rc));
    rdmc__log(g, LOG_NOTICE, "%s", ferr->msg);
    return rc;
}

static int meet_failed(void *ctx, size_t index, int rc,
                       const struct fab_error *why, struct fab_error *ferr)
{
    struct meet *mt = ctx;
    mt->failed_index = index;
    *ferr = *why;
    rdmc__log(mt->g, LOG_ERR, "%s", why->msg);
    return rc;
}

/* Phase 3: borrow a connection to every other member, fetch and compare
 * its parameters (libfab's rendezvous). */
static int group_meet(struct rdmc_group *g, const struct rdmc_member *members,
                      int64_t deadline, struct rdmc_error *err)
{
    struct meet mt = {.g = g, .failed_index = SIZE_MAX};
    encode_blob(g, mt.mine);
    static const struct fab_rendezvous_ops ops = {
        .check = meet_check, .waiting = meet_waiting, .failed = meet_failed};
    struct fab_error ferr = {0};
    int left = (int)(deadline - now_ms());
    int rc = fab_rendezvous(g->user, members, g->n, NULL, blob_key(g),
                            left > 0 ? left : 1, &ops, &mt, g->conns, &ferr);
    if (rc)
        set_err(err, rc,
                mt.blamed                ? mt.blame
                : mt.failed_index < g->n ? g->node_ids[mt.failed_index]
                                         : RDMC_NO_PEER,
                "group %u: %s", g->opts.group_id,
                ferr.msg[0] ? ferr.msg : rdmc_strerror(rc));
    return rc;
}

static void group_abort(struct rdmc_group *g)
{
    glock(g);
    g->stopping = true;
    gunlock(g);
    stop_thread(g);
    release_all(g);
}

int rdmc_groups_create(struct fab_pool *pool,
                       const struct rdmc_group_spec *specs, size_t count,
                       struct rdmc_group **out, struct rdmc_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
        err->node_id = RDMC_NO_PEER;
    }
    if (out)
        for (size_t i = 0; i < count; i++)
            out[i] = NULL;
    if (!pool || !specs || !out || count == 0) {
        set_err(err, -EINVAL, RDMC_NO_PEER, "missing argument");
        return -EINVAL;
    }
    int rc = 0;
    size_t made = 0;
    for (; made < count; made++) {
        const struct rdmc_group_spec *sp = &specs[made];
        rc = group_setup(pool, sp->members, sp->num_members, sp->opts, sp->cbs,
                         sp->ctx, &out[made], err);
        if (rc)
            goto fail;
        /* one group id per pool at a time: a batch must not repeat one */
        for (size_t j = 0; j < made; j++)
            if (out[j]->opts.group_id == out[made]->opts.group_id) {
                made++;
                rc = -EINVAL;
                set_err(err, rc, RDMC_NO_PEER, "group id %u twice",
                        out[j]->opts.group_id);
                goto fail;
            }
    }
    /* One rendezvous for the whole batch: every group publishes before
     * any waits for a peer's parameters, so members that list the groups
     * in different orders do not wait for each other. */
    int timeout = 0;
    for (size_t i = 0; i < count; i++) {
        int t = out[i]->opts.create_timeout_ms > 0
                    ? out[i]->opts.create_timeout_ms
                    : 10000;
        if (t > timeout)
            timeout = t;
    }
    int64_t deadline = now_ms() + timeout;
    for (size_t i = 0; i < count && !rc; i++)
        rc = group_publish(out[i], err);
    for (size_t i = 0; i < count && !rc; i++)
        rc = group_meet(out[i], specs[i].members, deadline, err);
    if (rc)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        struct rdmc_group *g = out[i];
        glock(g);
        g->open = true;
        pump(g); /* anything that arrived while we waited */
        drain_deferred(g);
        bool events = g->ev_head != NULL;
        gunlock(g);
        if (events)
            fab_pool_wake(g->pool); /* callbacks: on the group's thread */
    }
    return 0;

fail:
    if (err && err->code == 0)
        set_err(err, rc, RDMC_NO_PEER, "%s", rdmc_strerror(rc));
    for (size_t i = 0; i < made && i < count; i++) {
        if (out[i])
            group_abort(out[i]);
        out[i] = NULL;
    }
    return rc;
}

int rdmc_group_create_ex(struct fab_pool *pool,
                         const struct rdmc_member *members, size_t num_members,
                         const struct rdmc_options *opts,
                         const struct rdmc_callbacks *cbs, void *ctx,
                         struct rdmc_group **out, struct rdmc_error *err)
{
    if (!out) {
        if (err) {
            err->code = 0;
            err->msg[0] = 0;
            err->node_id = RDMC_NO_PEER;
        }
        set_err(err, -EINVAL, RDMC_NO_PEER, "missing argument");
        return -EINVAL;
    }
    struct rdmc_group_spec spec = {members, num_members, opts, cbs, ctx};
    return rdmc_groups_create(pool, &spec, 1, out, err);
}

int rdmc_group_create(struct fab_pool *pool, const struct rdmc_member *members,
                      size_t num_members, const struct rdmc_options *opts,
                      const struct rdmc_callbacks *cbs, void *ctx,
                      struct rdmc_group **out)
{
    return rdmc_group_create_ex(pool, members, num_members, opts, cbs, ctx, out,
                                NULL);
}

/* This thread runs one of the group's callbacks (or is its thread);
 * lock held. */
static bool in_callback(const struct rdmc_group *g)
{
    pthread_t me = pthread_self();
    return (g->dispatching && pthread_equal(g->cb_thread, me)) ||
           (g->thread_started && pthread_equal(me, g->thread));
}

void rdmc_group_destroy(struct rdmc_group *g)
{
    if (!g)
        return;
    glock(g);
    /* From one of our callbacks (made by the dispatcher: only its thread
     * sees itself as cb_thread) or our own thread, the join below
     * would wait for itself and the group would be freed under the
     * running callback.  The header forbids it: refuse. */
    if (in_callback(g)) {
        gunlock(g);
        rdmc__log(g, LOG_ERR,
                  "rdmc_group_destroy called from a callback: refused");
        return;
    }
    g->stopping = true;
    g->closing = true;
    send_closes(g);
    bool handshake = g->open;
    gunlock(g);
    stop_thread(g);
    /* Operations in flight still point at our memory: let them complete
     * (those on broken connections complete with errors), bounded.  And a
     * region deregistered under a peer's write makes the peer's provider
     * fail the whole connection (which other groups and tables share): wait
     * for every live peer's CLOSE (closing handshake), bounded too, so no
     * write of theirs can land any more.  Peers close as soon as they see
     * our CLOSE or notice a failure themselves, so this is short. */
    int64_t start = now_ms();
    for (;;) {
        glock(g);
        send_closes(g);
        bool closed = !handshake || closed_everywhere(g);
        /* a callback running on another thread finishes first */
        uint32_t left = g->ops_outstanding + (g->dispatching ? 1u : 0u);
        gunlock(g);
        int64_t waited = now_ms() - start;
        if (left == 0 && (closed || waited > RDMC__FAILED_GRACE_MS))
            break;
        if (waited > 3000)
            break;
        fab_pool_progress_wait(g->pool, 0, 5);
    }
    if (handshake && !closed_everywhere(g))
        rdmc__log(g, LOG_WARNING,
                  "destroy: a peer did not close within %d ms; its late "
                  "writes may fail the connection",
                  RDMC__FAILED_GRACE_MS);
    release_all(g);
}

int rdmc_group_wedge(struct rdmc_group *g, int timeout_ms)
{
    if (!g)
        return -EINVAL;
    glock(g);
    if (in_callback(g)) {
        gunlock(g);
        return -EDEADLK; /* the wait below needs this thread's progress */
    }
    g->wedged = true;
    if (g->status == 0)
        g->status = -ESHUTDOWN; /* stopped on purpose: no failure call */
    g->closing = true;
    send_closes(g);
    gunlock(g);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
    for (;;) {
        glock(g);
        send_closes(g);
        bool closed = !g->open || closed_everywhere(g);
        if (!closed && now_ms() >= deadline) {
            for (uint32_t r = 0; r < g->n; r++)
                if (r != g->rank && !g->close_got[r] && g->conns[r] &&
                    fab_conn_status(g->conns[r]) == 0)
                    rdmc__log(g, LOG_WARNING,
                              "wedge: node %u did not close within %d ms",
                              g->node_ids[r], timeout_ms);
            gunlock(g);
            return -ETIMEDOUT;
        }
        gunlock(g);
        if (closed)
            return 0;
        fab_pool_progress_wait(g->pool, 0, 5);
    }
}

int rdmc_groups_poll(struct rdmc_group *const *groups, size_t n, int timeout_ms)
{
    if (n == 0)
        return 0;
    if (!groups)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!groups[i])
            return -EINVAL;
    fab_pool_progress_wait(groups[0]->pool, groups[0]->opts.spin_us,
                           timeout_ms);
    for (size_t i = 1; i < n; i++) {
        bool seen = false; /* each pool once */
        for (size_t j = 0; j < i && !seen; j++)
            seen = groups[j]->pool == groups[i]->pool;
        if (!seen)
            fab_pool_progress(groups[i]->pool);
    }
    for (size_t i = 0; i < n; i++)
        service(groups[i]);
    return 0;
}

/* Queues a message: buf (registered per message) or mr + mr_off. */
static int enqueue(struct rdmc_group *g, const void *buf, struct fab_mr *mr,
                   size_t mr_off, size_t size, uint64_t *index)
{
    if (g->rank != 0)
        return -EPERM;
    if (size > g->opts.max_msg_size)
        return -EMSGSIZE;
    struct rdmc__queued *q = calloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    glock(g);
    if (g->status || g->stopping) {
        int st = g->status ? g->status : -ECANCELED;
        gunlock(g);
        free(q);
        return st;
    }
    if (g->opts.max_queued &&
        g->next_index - g->next_deliver >= g->window + g->opts.max_queued) {
        gunlock(g);
        free(q);
        return -EAGAIN; /* the queue is full: wait for a completion */
    }
    q->buf = buf;
    q->mr = mr;
    q->mr_off = mr_off;
    q->size = size;
    q->index = g->next_index++;
    if (g->queue_tail)
        g->queue_tail->next = q;
    else
        g->queue_head = q;
    g->queue_tail = q;
    if (index)
        *index = q->index;
    pump(g);
    /* Never a callback inside rdmc_send: what pump made complete is
     * dispatched by the group's thread (or rdmc_groups_poll). */
    drain_deferred(g);
    bool events = g->ev_head != NULL && !g->dispatching;
    gunlock(g);
    if (events)
        fab_pool_wake(g->pool);
    return 0;
}

int rdmc_send(struct rdmc_group *g, const void *buf, size_t size,
              uint64_t *index)
{
    if (!g || !buf || size == 0)
        return -EINVAL;
    return enqueue(g, buf, NULL, 0, size, index);
}

int rdmc_send_mr(struct rdmc_group *g, struct fab_mr *mr, size_t offset,
                 size_t size, uint64_t *index)
{
    if (!g || !mr || size == 0)
        return -EINVAL;
    if (offset > fab_mr_len(mr) || fab_mr_len(mr) - offset < size)
        return -ERANGE;
    return enqueue(g, NULL, mr, offset, size, index);
}

uint32_t rdmc_group_rank(const struct rdmc_group *g)
{
    return g ? g->rank : RDMC_NO_PEER;
}

uint32_t rdmc_group_size(const struct rdmc_group *g)
{
    return g ? g->n : 0;
}

uint32_t rdmc_group_id(const struct rdmc_group *g)
{
    return g ? g->opts.group_id : UINT32_MAX;
}

int rdmc_group_status(struct rdmc_group *g)
{
    if (!g)
        return -EINVAL;
    glock(g);
    int st = g->status;
    gunlock(g);
    return st;
}

size_t rdmc_group_pending(struct rdmc_group *g)
{
    if (!g)
        return 0;
    glock(g);
    size_t n = 0;
    if (g->rank == 0)
        n = (size_t)(g->next_index - g->next_deliver);
    else
        for (uint32_t i = 0; i < g->window; i++)
            if (g->slots[i].active && !g->slots[i].delivered)
                n++;
    gunlock(g);
    return n;
}
