/* Large messages of the ordered multicast: the RDMC path (issue 15).
 *
 * A message of my shard above max_smc_payload_size (and up to the
 * profile's max_payload_size) travels through librdmc, but takes its place
 * in its sender's one sequence like any other: the sender writes the bytes
 * into its registered send ring, multicasts them with rdmc_send_mr, then
 * publishes an SMC slot that says "RDMC message <index>, <size> bytes"
 * (smc.c).  A receiver counts that slot as received (recv, pushed in its
 * row) only once the RDMC message completed here, so round robin order,
 * stability and the window work over both paths unchanged.
 *
 * Per view and per shard of mine that needs it: one RDMC group per sender
 * (the sender first, then the other shard members in shard order), all of
 * the view's groups made in one rendezvous (rdmc_groups_create) over the
 * process's one fab pool, epoch = view id, group id = 1 + the sender's
 * position among all senders of the layout (the same at every member).
 * Every member registers one ring of `ring` x max_payload_size bytes per
 * sender once: RDMC message i of a sender lands at position i mod ring
 * (incoming_mr), and the sender sends from its own ring at the same
 * position (rdmc_send_mr): no registration per message.  The sender
 * reuses a position only when every shard member delivered the message
 * that held it (smc.c checks that SMC sequence number's ndel), so a
 * receiver's position is free by the time the next message for it comes.
 *
 * Callbacks (complete, failure) may run on any thread progressing the
 * pool: they store an atomic count or a failure and wake the delivery
 * thread, nothing more.  A failure (other than a peer's wedge, -ESHUTDOWN)
 * is turned into an SST suspicion by the delivery thread
 * (derecho__rdmc_failures): of the member RDMC names (for a stall, the
 * member it waited for, e.g. a stopped relay), or of the group's sender
 * when it names no one.  A sender's own group stalls only after twice
 * rdmc_timeout_ms, so that the receivers, which can name the member they
 * wait for, report first. */
#include "derecho-private.h"

#include <fab/fab.h>
#include <rdmc/rdmc.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#define WEDGE_TIMEOUT_MS 2000
#define MAX_FAILURES 64

struct rsender {
    struct rshard *rs;
    uint32_t j;
    uint32_t node; /* the sender's node id */
    uint8_t *buf;  /* ring of rs->ring x rs->max bytes */
    struct fab_mr *mr;
    struct rdmc_group *group; /* NULL in a one-member shard */
    _Atomic uint64_t done;    /* receiver: messages complete here */
};

struct rshard {
    struct derecho__rdmc_view *rv;
    size_t max;    /* 0: no RDMC for this shard */
    uint32_t ring; /* positions per sender ring */
    uint32_t k;
    int me_sender;
    struct rsender *senders;
    /* Sender side (under the caller's lock). */
    uint64_t sent;      /* RDMC messages sent in this view */
    uint64_t *ring_seq; /* SMC sequence of the message at each position */
};

struct derecho__rdmc_view {
    int64_t view_id;
    struct rshard *shards;
    size_t num_shards;
    struct rdmc_group **all;
    size_t num_groups;
    void (*wake)(void *ctx);
    void *wake_ctx;
    rdmc_log_fn log;
    void *log_ctx;
    int log_level;
    pthread_mutex_t flock; /* failures, filled by callbacks */
    uint32_t failed_node[MAX_FAILURES];
    int failed_reason[MAX_FAILURES];
    bool failed_fallback[MAX_FAILURES]; /* RDMC named no one: the sender */
    size_t num_failed;
    atomic_bool any_failed;
    bool wedged;
};

static void rlog(const struct derecho__rdmc_view *rv, int level,
                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void rlog(const struct derecho__rdmc_view *rv, int level,
                 const char *fmt, ...)
{
    if (level > rv->log_level)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rv->log)
        rv->log(rv->log_ctx, level, "derecho", msg);
    else
        fprintf(stderr, "derecho: %s\n", msg);
}

static int on_incoming_mr(void *ctx, struct rdmc_group *group, uint64_t index,
                          size_t size, struct fab_mr **mr, size_t *offset)
{
    (void)group;
    struct rsender *sd = ctx;
    if (size > sd->rs->max)
        return -EMSGSIZE; /* max_msg_size is max: librdmc refuses it first */
    *mr = sd->mr;
    *offset = (size_t)(index % sd->rs->ring) * sd->rs->max;
    return 0;
}

static void on_complete(void *ctx, struct rdmc_group *group, uint64_t index,
                        void *data, size_t size)
{
    (void)group;
    (void)data;
    (void)size;
    struct rsender *sd = ctx;
    if ((int)sd->j == sd->rs->me_sender)
        return; /* the sender: its own messages count as received at once */
    atomic_store(&sd->done, index + 1);
    sd->rs->rv->wake(sd->rs->rv->wake_ctx);
}

static void on_failure(void *ctx, struct rdmc_group *group, uint32_t node_id,
                       int reason)
{
    (void)group;
    struct rsender *sd = ctx;
    struct derecho__rdmc_view *rv = sd->rs->rv;
    if (reason == -ESHUTDOWN)
        return; /* a peer wedged its groups: the view is ending */
    pthread_mutex_lock(&rv->flock);
    if (rv->num_failed < MAX_FAILURES) {
        /* No member named (a stall waiting for no one in particular):
         * suspect the group's sender, so that a view change rebuilds the
         * groups; at the sender itself that is no one (the receivers'
         * shorter timeouts name the member, see derecho__rdmc_view_create) */
        bool fallback = node_id == RDMC_NO_PEER;
        rv->failed_node[rv->num_failed] = fallback ? sd->node : node_id;
        rv->failed_reason[rv->num_failed] = reason;
        rv->failed_fallback[rv->num_failed] = fallback;
        rv->num_failed++;
    }
    pthread_mutex_unlock(&rv->flock);
    atomic_store(&rv->any_failed, true);
    rv->wake(rv->wake_ctx);
}

/* 1 + the number of senders of the layout's shards before (sg, shard). */
static uint32_t group_base(const struct derecho_layout *l, uint32_t sg,
                           uint32_t shard)
{
    uint32_t base = 1;
    for (uint32_t i = 0; i < derecho_layout_num_subgroups(l); i++) {
        struct derecho_subgroup_info si;
        if (derecho_layout_subgroup(l, i, &si))
            continue;
        for (uint32_t k = 0; k < si.num_shards; k++) {
            if (i == sg && k == shard)
                return base;
            struct derecho_shard_info info;
            if (derecho_layout_shard(l, i, k, &info) == 0)
                base += info.num_senders;
        }
    }
    return base;
}

void derecho__rdmc_view_destroy(struct derecho__rdmc_view *rv)
{
    if (!rv)
        return;
    for (size_t g = 0; g < rv->num_groups; g++)
        rdmc_group_destroy(rv->all[g]);
    for (size_t i = 0; i < rv->num_shards; i++) {
        struct rshard *rs = &rv->shards[i];
        for (uint32_t j = 0; rs->senders && j < rs->k; j++) {
            fab_mr_destroy(rs->senders[j].mr);
            free(rs->senders[j].buf);
        }
        free(rs->senders);
        free(rs->ring_seq);
    }
    free(rv->shards);
    free(rv->all);
    pthread_mutex_destroy(&rv->flock);
    free(rv);
}

int derecho__rdmc_view_create(struct fab_pool *pool,
                              const struct derecho_view *view,
                              const struct derecho__rdmc_spec *specs,
                              size_t num_specs,
                              const struct derecho__rdmc_hooks *hooks,
                              struct derecho__rdmc_view **out,
                              uint32_t *failed_node)
{
    *out = NULL;
    *failed_node = UINT32_MAX;
    bool any = false;
    for (size_t i = 0; i < num_specs; i++)
        any = any || specs[i].max_payload > 0;
    if (!any)
        return 0;
    const struct derecho_layout *l = derecho_view_layout(view);
    uint32_t my_id =
        derecho_view_member(view, (size_t)derecho_view_my_rank(view))->node_id;
    struct derecho__rdmc_view *rv = calloc(1, sizeof(*rv));
    if (!rv)
        return -ENOMEM;
    pthread_mutex_init(&rv->flock, NULL);
    rv->view_id = derecho_view_id(view);
    rv->wake = hooks->wake;
    rv->wake_ctx = hooks->wake_ctx;
    rv->log = hooks->log;
    rv->log_ctx = hooks->log_ctx;
    rv->log_level = hooks->log_level;
    rv->num_shards = num_specs;
    rv->shards = calloc(num_specs, sizeof(*rv->shards));
    size_t cap = 0;
    for (size_t i = 0; i < num_specs; i++) {
        struct derecho_shard_info info;
        if (specs[i].max_payload &&
            derecho_layout_shard(l, specs[i].subgroup, specs[i].shard, &info) ==
                0 &&
            info.num_members > 1)
            cap += info.num_senders;
    }
    rv->all = calloc(cap + 1, sizeof(*rv->all));
    struct rdmc_group_spec *gs = calloc(cap + 1, sizeof(*gs));
    struct rdmc_options *go = calloc(cap + 1, sizeof(*go));
    struct fab_member *mem = NULL;
    size_t mem_used = 0, mem_cap = 0;
    int rc = -ENOMEM;
    if (!rv->shards || !rv->all || !gs || !go)
        goto fail;
    for (size_t i = 0; i < num_specs; i++) {
        struct derecho_shard_info info;
        if (derecho_layout_shard(l, specs[i].subgroup, specs[i].shard, &info))
            continue;
        mem_cap += info.num_members * info.num_senders;
    }
    mem = calloc(mem_cap + 1, sizeof(*mem));
    if (!mem)
        goto fail;
    struct rdmc_callbacks cbs = {
        .incoming = NULL,
        .complete = on_complete,
        .failure = on_failure,
    };
    for (size_t i = 0; i < num_specs; i++) {
        const struct derecho__rdmc_spec *sp = &specs[i];
        struct rshard *rs = &rv->shards[i];
        rs->rv = rv;
        rs->me_sender = -1;
        struct derecho_shard_info info;
        if (!sp->max_payload ||
            derecho_layout_shard(l, sp->subgroup, sp->shard, &info) ||
            info.num_senders == 0)
            continue;
        rs->max = sp->max_payload;
        rs->ring = sp->ring ? sp->ring : 1;
        rs->k = info.num_senders;
        rs->senders = calloc(rs->k, sizeof(*rs->senders));
        rs->ring_seq = calloc(rs->ring, sizeof(*rs->ring_seq));
        if (!rs->senders || !rs->ring_seq)
            goto fail;
        uint32_t base = group_base(l, sp->subgroup, sp->shard);
        unsigned window = 1;
        while (window * 2 <= rs->ring && window * 2 <= 64)
            window *= 2;
        uint32_t j = 0;
        for (size_t m = 0; m < info.num_members; m++) {
            if (!info.is_sender[m])
                continue;
            struct rsender *sd = &rs->senders[j];
            sd->rs = rs;
            sd->j = j;
            sd->node = info.members[m];
            if (info.members[m] == my_id)
                rs->me_sender = (int)j;
            size_t bytes = (size_t)rs->ring * rs->max;
            if (bytes / rs->ring != rs->max) {
                rc = -EOVERFLOW;
                goto fail;
            }
            /* calloc: large rings come from mmap, untouched pages cost
             * no resident memory until a message lands there. */
            sd->buf = calloc(1, bytes);
            if (!sd->buf) {
                rc = -ENOMEM;
                goto fail;
            }
            rc = fab_mr_register(pool, sd->buf, bytes,
                                 FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                 &sd->mr);
            if (rc) {
                rlog(rv, LOG_ERR,
                     "view %lld: cannot register an RDMC ring of %zu "
                     "bytes: %s",
                     (long long)rv->view_id, bytes, rdmc_strerror(rc));
                goto fail;
            }
            if (info.num_members > 1) {
                if (base + j > RDMC_MAX_GROUP_ID) {
                    rc = -ERANGE;
                    goto fail;
                }
                /* The group's members: the sender, then the others. */
                struct fab_member *gm = mem + mem_used;
                size_t ng = 0;
                for (size_t pass = 0; pass < 2; pass++)
                    for (size_t x = 0; x < info.num_members; x++) {
                        if ((x == m) != (pass == 0))
                            continue;
                        int rank = derecho_view_rank_of(view, info.members[x]);
                        const struct derecho_member *dm =
                            derecho_view_member(view, (size_t)rank);
                        gm[ng++] = (struct fab_member){dm->node_id, dm->ip,
                                                       dm->sst_port};
                    }
                mem_used += ng;
                struct rdmc_options *o = &go[rv->num_groups];
                rdmc_options_init(o);
                o->group_id = base + j;
                o->epoch = (uint64_t)rv->view_id;
                o->algorithm = (enum rdmc_algorithm)sp->algorithm;
                o->block_size =
                    sp->block_size < rs->max ? sp->block_size : rs->max;
                o->max_msg_size = rs->max;
                o->window = window;
                o->create_timeout_ms = sp->create_timeout_ms;
                /* The sender waits twice as long as its receivers: a
                 * receiver names the member it waits for (a stalled
                 * relay), the sender waiting for several receivers names
                 * no one, and its failure would close the group at the
                 * receivers (-ESHUTDOWN, ignored) before they report. */
                o->timeout_ms = sp->timeout_ms;
                if (info.members[m] == my_id && sp->timeout_ms > 0)
                    o->timeout_ms = sp->timeout_ms <= INT_MAX / 2
                                        ? sp->timeout_ms * 2
                                        : INT_MAX;
                o->log = hooks->log;
                o->log_ctx = hooks->log_ctx;
                o->log_level = hooks->log_level;
                o->incoming_mr = on_incoming_mr;
                o->threading = RDMC_THREAD_PER_GROUP;
                o->create_wait = hooks->create_wait;
                o->create_wait_ctx = hooks->create_wait_ctx;
                gs[rv->num_groups] =
                    (struct rdmc_group_spec){gm, ng, o, &cbs, sd};
                rv->num_groups++;
            }
            j++;
        }
    }
    if (rv->num_groups) {
        struct rdmc_error err;
        memset(&err, 0, sizeof(err));
        rc = rdmc_groups_create(pool, gs, rv->num_groups, rv->all, &err);
        if (rc) {
            rlog(rv, LOG_ERR, "view %lld: RDMC groups: %s",
                 (long long)rv->view_id, err.msg);
            *failed_node = err.node_id;
            for (size_t g = 0; g < rv->num_groups; g++)
                rv->all[g] = NULL;
            rv->num_groups = 0;
            goto fail;
        }
        size_t g = 0;
        for (size_t i = 0; i < num_specs; i++) {
            struct rshard *rs = &rv->shards[i];
            for (uint32_t j = 0; rs->max && g < rv->num_groups && j < rs->k;
                 j++)
                if (gs[g].ctx == &rs->senders[j])
                    rs->senders[j].group = rv->all[g++];
        }
    }
    rlog(rv, LOG_INFO, "view %lld: %zu RDMC group(s)", (long long)rv->view_id,
         rv->num_groups);
    free(gs);
    free(go);
    free(mem);
    *out = rv;
    return 0;
fail:
    free(gs);
    free(go);
    free(mem);
    derecho__rdmc_view_destroy(rv);
    return rc;
}

size_t derecho__rdmc_max(const struct derecho__rdmc_view *rv, size_t shard)
{
    return rv && shard < rv->num_shards ? rv->shards[shard].max : 0;
}

bool derecho__rdmc_reuse(const struct derecho__rdmc_view *rv, size_t shard,
                         uint64_t *seq)
{
    const struct rshard *rs = &rv->shards[shard];
    if (rs->sent < rs->ring)
        return false;
    *seq = rs->ring_seq[rs->sent % rs->ring];
    return true;
}

void *derecho__rdmc_send_buf(struct derecho__rdmc_view *rv, size_t shard)
{
    struct rshard *rs = &rv->shards[shard];
    if (!rs->max || rs->me_sender < 0)
        return NULL;
    return rs->senders[rs->me_sender].buf +
           (size_t)(rs->sent % rs->ring) * rs->max;
}

int derecho__rdmc_send(struct derecho__rdmc_view *rv, size_t shard, size_t size,
                       uint64_t seq, uint64_t *index)
{
    struct rshard *rs = &rv->shards[shard];
    if (!rs->max || rs->me_sender < 0)
        return -EPERM;
    if (size == 0 || size > rs->max)
        return -EMSGSIZE;
    struct rsender *sd = &rs->senders[rs->me_sender];
    size_t off = (size_t)(rs->sent % rs->ring) * rs->max;
    int rc = 0;
    if (sd->group) {
        uint64_t idx = 0;
        rc = rdmc_send_mr(sd->group, sd->mr, off, size, &idx);
        if (rc == 0 && idx != rs->sent) {
            rlog(rv, LOG_ERR,
                 "view %lld: RDMC index %llu where %llu was expected",
                 (long long)rv->view_id, (unsigned long long)idx,
                 (unsigned long long)rs->sent);
            rc = -EPROTO;
        }
    }
    /* The position is the message's even when the group refused it (it
     * failed or was wedged): the message stays committed and is carried
     * into the next view from here. */
    rs->ring_seq[rs->sent % rs->ring] = seq;
    *index = rs->sent++;
    return rc;
}

uint64_t derecho__rdmc_done(struct derecho__rdmc_view *rv, size_t shard,
                            uint32_t sender)
{
    if (!rv || shard >= rv->num_shards)
        return 0;
    struct rshard *rs = &rv->shards[shard];
    if (!rs->max || sender >= rs->k)
        return 0;
    if ((int)sender == rs->me_sender)
        return rs->sent;
    return atomic_load(&rs->senders[sender].done);
}

const void *derecho__rdmc_data(struct derecho__rdmc_view *rv, size_t shard,
                               uint32_t sender, uint64_t index, size_t size)
{
    if (!rv || shard >= rv->num_shards)
        return NULL;
    struct rshard *rs = &rv->shards[shard];
    if (!rs->max || sender >= rs->k || size > rs->max)
        return NULL;
    return rs->senders[sender].buf + (size_t)(index % rs->ring) * rs->max;
}

void derecho__rdmc_failures(struct derecho__rdmc_view *rv,
                            void (*fn)(void *ctx, uint32_t node_id, int reason),
                            void *ctx)
{
    if (!rv || !atomic_load(&rv->any_failed))
        return;
    uint32_t nodes[MAX_FAILURES];
    int reasons[MAX_FAILURES];
    bool fallback[MAX_FAILURES];
    pthread_mutex_lock(&rv->flock);
    size_t n = rv->num_failed;
    memcpy(nodes, rv->failed_node, n * sizeof(*nodes));
    memcpy(reasons, rv->failed_reason, n * sizeof(*reasons));
    memcpy(fallback, rv->failed_fallback, n * sizeof(*fallback));
    rv->num_failed = 0;
    atomic_store(&rv->any_failed, false);
    pthread_mutex_unlock(&rv->flock);
    for (size_t i = 0; i < n; i++) {
        if (fallback[i])
            rlog(rv, LOG_WARNING,
                 "view %lld: RDMC transfer from node %u failed waiting for "
                 "no member in particular (%s): suspecting its sender",
                 (long long)rv->view_id, nodes[i], rdmc_strerror(reasons[i]));
        else if (reasons[i] == -ETIMEDOUT)
            rlog(rv, LOG_WARNING,
                 "view %lld: RDMC transfer stalled waiting for node %u",
                 (long long)rv->view_id, nodes[i]);
        else
            rlog(rv, LOG_WARNING, "view %lld: RDMC reports node %u failed: %s",
                 (long long)rv->view_id, nodes[i], rdmc_strerror(reasons[i]));
        fn(ctx, nodes[i], reasons[i]);
    }
}

void derecho__rdmc_view_wedge(struct derecho__rdmc_view *rv)
{
    if (!rv || rv->wedged)
        return;
    rv->wedged = true;
    for (size_t g = 0; g < rv->num_groups; g++) {
        int rc = rdmc_group_wedge(rv->all[g], WEDGE_TIMEOUT_MS);
        if (rc)
            rlog(rv, LOG_WARNING, "view %lld: wedging RDMC group %u: %s",
                 (long long)rv->view_id, rdmc_group_id(rv->all[g]),
                 rdmc_strerror(rc));
    }
}
