/* Groups inside one process: bad input, a one-member group, two pools. */
#include "test-rdmc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct counter {
    atomic_int completed;
    atomic_int failures;
    atomic_int reason;
    atomic_uint node;
};

static void count_failure(void *ctx, struct rdmc_group *g, uint32_t node,
                          int reason)
{
    struct counter *c = ctx;
    (void)g;
    if (atomic_fetch_add(&c->failures, 1) == 0) {
        atomic_store(&c->reason, reason);
        atomic_store(&c->node, node);
    }
}

static void count_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                           void *data, size_t size)
{
    (void)g;
    (void)index;
    (void)data;
    (void)size;
    atomic_fetch_add(&((struct counter *)ctx)->completed, 1);
}

static void quiet_opts(struct rdmc_options *o, uint32_t group_id)
{
    rdmc_options_init(o);
    o->group_id = group_id;
    o->log = tr_quiet_log;
    o->create_timeout_ms = 5000;
}

static bool two_completed(void *arg)
{
    return atomic_load(&((struct counter *)arg)->completed) >= 2;
}

START_TEST(test_bad_input)
{
    struct fab_pool *pool = tr_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct rdmc_options o;
    quiet_opts(&o, 1);
    struct rdmc_group *g = NULL;
    struct rdmc_member me = {1, "127.0.0.1", fab_pool_port(pool)};
    struct rdmc_member other = {2, "127.0.0.1", 1};
    /* zero members, sender/me not in the group, duplicates */
    ck_assert_int_eq(rdmc_group_create(pool, &me, 0, &o, NULL, NULL, &g),
                     -EINVAL);
    ck_assert_int_eq(rdmc_group_create(pool, &other, 1, &o, NULL, NULL, &g),
                     -EINVAL);
    struct rdmc_member dup[2] = {me, me};
    ck_assert_int_eq(rdmc_group_create(pool, dup, 2, &o, NULL, NULL, &g),
                     -EINVAL);
    ck_assert_int_eq(rdmc_group_create(NULL, &me, 1, &o, NULL, NULL, &g),
                     -EINVAL);
    o.window = 3;
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, NULL, NULL, &g),
                     -EINVAL);
    quiet_opts(&o, RDMC_MAX_GROUP_ID + 1);
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, NULL, NULL, &g),
                     -EINVAL);
    quiet_opts(&o, 1);
    o.block_size = 1;
    o.max_msg_size = (size_t)RDMC_MAX_BLOCKS + 1;
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, NULL, NULL, &g),
                     -EINVAL);
    ck_assert_ptr_null(g);
    /* a one-member group: sizes over the maximum, zero, NULL */
    quiet_opts(&o, 1);
    o.max_msg_size = 1000;
    struct counter c = {0};
    struct rdmc_callbacks cbs = {.complete = count_complete};
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, &cbs, &c, &g), 0);
    static char buf[1001];
    ck_assert_int_eq(rdmc_send(g, buf, 1001, NULL), -EMSGSIZE);
    ck_assert_int_eq(rdmc_send(g, buf, 0, NULL), -EINVAL);
    ck_assert_int_eq(rdmc_send(g, NULL, 5, NULL), -EINVAL);
    uint64_t idx = 99;
    ck_assert_int_eq(rdmc_send(g, buf, 1, &idx), 0);
    ck_assert_uint_eq(idx, 0);
    ck_assert_int_eq(rdmc_send(g, buf, 1000, &idx), 0);
    ck_assert_uint_eq(idx, 1);
    /* complete at once, but never inside rdmc_send: the group's thread
     * reports them */
    ck_assert(th_wait_until(two_completed, &c, 5000));
    ck_assert_int_eq(atomic_load(&c.completed), 2);
    ck_assert_int_eq(rdmc_group_status(g), 0);
    rdmc_group_destroy(g);
    rdmc_group_destroy(NULL);
    fab_pool_destroy(pool);
}
END_TEST

struct creator {
    struct fab_pool *pool;
    struct rdmc_member members[2];
    struct rdmc_options opts;
    struct counter c;
    struct rdmc_group *g;
    int rc;
    const struct rdmc_callbacks *cbs; /* NULL: count_complete/failure */
    void *cb_ctx;                     /* with cbs */
};

static void *create_thread(void *arg)
{
    struct creator *cr = arg;
    struct rdmc_callbacks cbs = {.complete = count_complete,
                                 .failure = count_failure};
    cr->rc = rdmc_group_create(cr->pool, cr->members, 2, &cr->opts,
                               cr->cbs ? cr->cbs : &cbs,
                               cr->cbs ? cr->cb_ctx : &cr->c, &cr->g);
    return NULL;
}

/* Two pools in this process create a two-member group concurrently. */
static void create_pair(struct creator cr[2], size_t block0, size_t block1)
{
    for (int i = 0; i < 2; i++) {
        cr[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(cr[i].pool);
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            cr[i].members[j] = (struct rdmc_member){
                (uint32_t)j + 1, "127.0.0.1", fab_pool_port(cr[j].pool)};
        quiet_opts(&cr[i].opts, 42);
        cr[i].opts.block_size = i == 0 ? block0 : block1;
        cr[i].opts.log_level = 0; /* the mismatch is expected here */
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, create_thread, &cr[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
}

static void destroy_pair(struct creator cr[2])
{
    for (int i = 0; i < 2; i++)
        rdmc_group_destroy(cr[i].g);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(cr[i].pool);
}

START_TEST(test_mismatched_block_size)
{
    struct creator cr[2];
    memset(cr, 0, sizeof(cr));
    create_pair(cr, 4096, 8192);
    /* whoever compares first refuses with -EPROTO and leaves; the other
     * then either saw the difference too or waits for it in vain */
    ck_assert(cr[0].rc == -EPROTO || cr[1].rc == -EPROTO);
    ck_assert(cr[0].rc == -EPROTO || cr[0].rc == -ETIMEDOUT);
    ck_assert(cr[1].rc == -EPROTO || cr[1].rc == -ETIMEDOUT);
    ck_assert_ptr_null(cr[0].g);
    ck_assert_ptr_null(cr[1].g);
    destroy_pair(cr);
}
END_TEST

static bool two_done(void *arg)
{
    struct creator *cr = arg;
    return atomic_load(&cr[0].c.completed) == 2 &&
           atomic_load(&cr[1].c.completed) == 2;
}

START_TEST(test_pair_in_process)
{
    struct creator cr[2];
    memset(cr, 0, sizeof(cr));
    create_pair(cr, 4096, 4096);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    ck_assert_uint_eq(rdmc_group_rank(cr[1].g), 1);
    ck_assert_uint_eq(rdmc_group_size(cr[1].g), 2);
    ck_assert_uint_eq(rdmc_group_id(cr[1].g), 42);
    static char buf[10000];
    ck_assert_int_eq(rdmc_send(cr[1].g, buf, 10, NULL), -EPERM);
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, 1, NULL), 0);
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, sizeof(buf), NULL), 0);
    ck_assert(th_wait_until(two_done, cr, 20000));
    ck_assert_uint_eq(rdmc_group_pending(cr[0].g), 0);
    destroy_pair(cr);
}
END_TEST

static bool got_failure(void *arg)
{
    return atomic_load(&((struct counter *)arg)->failures) > 0;
}

/* A peer (here: a plain libfab user on the sender's pool) writes a malformed
 * HEADER into the receiver's control region with a valid data word: the
 * receiver fails the group with -EBADMSG naming that peer, nothing
 * crashes, and the group can still be destroyed. */
START_TEST(test_malformed_control_from_peer)
{
    struct creator cr[2];
    memset(cr, 0, sizeof(cr));
    create_pair(cr, 4096, 4096);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    struct fab_user *rogue = NULL;
    ck_assert_int_eq(fab_user_create(cr[0].pool, NULL, NULL, &rogue), 0);
    struct fab_conn *conn = NULL;
    ck_assert_int_eq(fab_borrow(rogue, 2, "127.0.0.1",
                                fab_pool_port(cr[1].pool), 5000, &conn, NULL),
                     0);
    /* the published group parameters end with the control region's
     * descriptor (docs/rdmc.md, "Protocol") */
    uint8_t blob[FAB_BLOB_MAX];
    size_t len = 0;
    ck_assert_int_eq(fab_pool_fetch(cr[0].pool, 2, RDMC_BLOB_KEY(42), blob,
                                    sizeof(blob), &len, 5000, NULL),
                     0);
    ck_assert_uint_ge(len, FAB_MR_DESC_SIZE + 4);
    /* ... after the member's libfab data tag */
    const uint8_t *tp = blob + len - FAB_MR_DESC_SIZE - 4;
    uint32_t tag = (uint32_t)tp[0] | (uint32_t)tp[1] << 8 |
                   (uint32_t)tp[2] << 16 | (uint32_t)tp[3] << 24;
    struct fab_mr_desc ctrl;
    ck_assert_int_eq(fab_mr_desc_decode(blob + len - FAB_MR_DESC_SIZE,
                                        FAB_MR_DESC_SIZE, &ctrl),
                     0);
    static uint8_t garbage[RDMC_CTRL_SIZE];
    memset(garbage, 0xa5, sizeof(garbage)); /* bad version, kind, ... */
    struct fab_mr *mr = NULL;
    ck_assert_int_eq(fab_mr_register(cr[0].pool, garbage, sizeof(garbage),
                                     FAB_ACCESS_LOCAL, &mr),
                     0);
    /* HEADER slot of message 0 from rank 0 is the region's first record */
    ck_assert_int_eq(
        fab_writedata(conn, mr, 0, sizeof(garbage), &ctrl, 0,
                      fab_data_word(cr[0].pool, tag,
                                    rdmc_data_encode(RDMC_KIND_HEADER, 0, 0)),
                      0, NULL),
        0);
    struct fab_pool *pool0 = cr[0].pool;
    for (int i = 0; i < 400 && !got_failure(&cr[1].c); i++)
        fab_pool_progress_wait(pool0, 0, 5);
    ck_assert(th_wait_until(got_failure, &cr[1].c, 10000));
    ck_assert_int_eq(atomic_load(&cr[1].c.reason), -EBADMSG);
    ck_assert_uint_eq(atomic_load(&cr[1].c.node), 1);
    ck_assert_int_eq(rdmc_group_status(cr[1].g), -EBADMSG);
    fab_release(rogue, conn);
    fab_user_destroy(rogue);
    fab_mr_destroy(mr);
    destroy_pair(cr);
}
END_TEST

/* More groups over one pair of pools than libfab first reached with
 * completion data (32 users per connection): every group moves its
 * message, each to its own receiver, whatever CQ data the pools carry. */
#define MANY_GROUPS 40

static bool all_groups_done(void *arg)
{
    struct creator *cr = arg;
    for (int i = 0; i < 2 * MANY_GROUPS; i++)
        if (atomic_load(&cr[i].c.completed) < 1)
            return false;
    return true;
}

START_TEST(test_many_groups_share_a_connection)
{
    struct fab_pool *pools[2];
    for (int i = 0; i < 2; i++) {
        pools[i] = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(pools[i]);
    }
    static struct creator cr[2 * MANY_GROUPS];
    memset(cr, 0, sizeof(cr));
    pthread_t t[2 * MANY_GROUPS];
    for (int k = 0; k < MANY_GROUPS; k++) {
        for (int i = 0; i < 2; i++) {
            struct creator *c = &cr[2 * k + i];
            c->pool = pools[i];
            for (int j = 0; j < 2; j++)
                c->members[j] = (struct rdmc_member){
                    (uint32_t)j + 1, "127.0.0.1", fab_pool_port(pools[j])};
            quiet_opts(&c->opts, 100 + (uint32_t)k);
            c->opts.block_size = 1024;
            c->opts.max_msg_size = 8192;
            c->opts.create_timeout_ms = 20000;
        }
    }
    for (int i = 0; i < 2 * MANY_GROUPS; i++)
        pthread_create(&t[i], NULL, create_thread, &cr[i]);
    for (int i = 0; i < 2 * MANY_GROUPS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2 * MANY_GROUPS; i++)
        ck_assert_msg(cr[i].rc == 0, "group %d: %s", i / 2,
                      rdmc_strerror(cr[i].rc));
    static char buf[5000];
    for (int k = 0; k < MANY_GROUPS; k++)
        ck_assert_int_eq(rdmc_send(cr[2 * k].g, buf, sizeof(buf), NULL), 0);
    ck_assert(th_wait_until(all_groups_done, cr, 30000));
    for (int i = 0; i < 2 * MANY_GROUPS; i++) {
        ck_assert_int_eq(atomic_load(&cr[i].c.completed), 1);
        ck_assert_int_eq(atomic_load(&cr[i].c.failures), 0);
    }
    for (int i = 0; i < 2 * MANY_GROUPS; i++)
        rdmc_group_destroy(cr[i].g);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(pools[i]);
}
END_TEST

/* Registered memory: the sender multicasts ranges of one registered ring
 * (rdmc_send_mr), the receiver takes each message into its own ring at
 * an offset (incoming_mr); bytes, offsets and refusals are checked. */
#define RING_SLOT 3000
#define RING_MSGS 6

struct ring {
    struct fab_mr *mr;
    uint8_t *mem;
    atomic_int completed;
    atomic_int wrong;
};

static int ring_incoming(void *ctx, struct rdmc_group *g, uint64_t index,
                         size_t size, struct fab_mr **mr, size_t *offset)
{
    struct ring *r = ctx;
    (void)g;
    (void)size;
    *mr = r->mr;
    *offset = (size_t)(index % 4) * RING_SLOT + 7; /* odd offsets too */
    return 0;
}

static void ring_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                          void *data, size_t size)
{
    struct ring *r = ctx;
    uint8_t *want = r->mem + (size_t)(index % 4) * RING_SLOT + 7;
    if (rdmc_group_rank(g) == 0)
        want = r->mem + (size_t)index * 100;
    if ((uint8_t *)data != want || size != 1000 + (size_t)index * 311)
        atomic_fetch_add(&r->wrong, 1);
    else if (rdmc_group_rank(g) != 0) {
        uint8_t expect[RING_SLOT];
        tr_fill(expect, size, 7, index);
        if (memcmp(expect, data, size) != 0)
            atomic_fetch_add(&r->wrong, 1);
    }
    atomic_fetch_add(&r->completed, 1);
}

struct ring_creator {
    struct fab_pool *pool;
    struct rdmc_member members[2];
    struct rdmc_options opts;
    struct ring ring;
    struct rdmc_group *g;
    int rc;
};

static void *ring_create_thread(void *arg)
{
    struct ring_creator *cr = arg;
    struct rdmc_callbacks cbs = {.complete = ring_complete};
    cr->rc = rdmc_group_create(cr->pool, cr->members, 2, &cr->opts, &cbs,
                               &cr->ring, &cr->g);
    return NULL;
}

static bool ring_done(void *arg)
{
    struct ring_creator *cr = arg;
    return atomic_load(&cr[0].ring.completed) == RING_MSGS &&
           atomic_load(&cr[1].ring.completed) == RING_MSGS;
}

struct ring_counts {
    struct ring_creator *cr;
    int n;
};

static bool ring_reached(void *arg)
{
    struct ring_counts *w = arg;
    return atomic_load(&w->cr[0].ring.completed) >= w->n &&
           atomic_load(&w->cr[1].ring.completed) >= w->n;
}

START_TEST(test_registered_memory)
{
    static struct ring_creator cr[2];
    memset(cr, 0, sizeof(cr));
    static uint8_t mem[2][4 * RING_SLOT + 64];
    for (int i = 0; i < 2; i++) {
        cr[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(cr[i].pool);
        cr[i].ring.mem = mem[i];
        ck_assert_int_eq(
            fab_mr_register(cr[i].pool, mem[i], sizeof(mem[i]),
                            FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                            &cr[i].ring.mr),
            0);
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            cr[i].members[j] = (struct rdmc_member){
                (uint32_t)j + 1, "127.0.0.1", fab_pool_port(cr[j].pool)};
        quiet_opts(&cr[i].opts, 43);
        cr[i].opts.block_size = 1024;
        cr[i].opts.max_msg_size = RING_SLOT;
        cr[i].opts.incoming_mr = ring_incoming;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, ring_create_thread, &cr[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    struct rdmc_group *g = cr[0].g;
    ck_assert_int_eq(rdmc_send_mr(g, NULL, 0, 10, NULL), -EINVAL);
    ck_assert_int_eq(rdmc_send_mr(g, cr[0].ring.mr, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(
        rdmc_send_mr(g, cr[0].ring.mr, sizeof(mem[0]) - 5, 10, NULL), -ERANGE);
    ck_assert_int_eq(
        rdmc_send_mr(g, cr[0].ring.mr, sizeof(mem[0]) + 1, 1, NULL), -ERANGE);
    ck_assert_int_eq(rdmc_send_mr(cr[1].g, cr[1].ring.mr, 0, 10, NULL), -EPERM);
    /* overlapping ranges of one ring: each message's range is filled
     * after the one before it completed everywhere */
    for (uint64_t i = 0; i < RING_MSGS; i++) {
        tr_fill(mem[0] + i * 100, 1000 + (size_t)i * 311, 7, i);
        uint64_t idx = 99;
        ck_assert_int_eq(rdmc_send_mr(g, cr[0].ring.mr, (size_t)i * 100,
                                      1000 + (size_t)i * 311, &idx),
                         0);
        ck_assert_uint_eq(idx, i);
        struct ring_counts want = {cr, (int)i + 1};
        ck_assert(th_wait_until(ring_reached, &want, 20000));
    }
    ck_assert(th_wait_until(ring_done, cr, 20000));
    ck_assert_int_eq(atomic_load(&cr[0].ring.wrong), 0);
    ck_assert_int_eq(atomic_load(&cr[1].ring.wrong), 0);
    for (int i = 0; i < 2; i++)
        rdmc_group_destroy(cr[i].g);
    for (int i = 0; i < 2; i++) {
        fab_mr_destroy(cr[i].ring.mr);
        fab_pool_destroy(cr[i].pool);
    }
}
END_TEST

/* Wedge at one member: the other sees its group fail with -ESHUTDOWN and
 * closes too, the wedge returns 0, sends are refused, and both destroys
 * are quick (no fixed sleep for the failed group). */
START_TEST(test_wedge_closes_both_sides)
{
    struct creator cr[2];
    memset(cr, 0, sizeof(cr));
    create_pair(cr, 4096, 4096);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    static char buf[10000];
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, sizeof(buf), NULL), 0);
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, 10, NULL), 0);
    ck_assert(th_wait_until(two_done, cr, 20000));
    ck_assert_int_eq(rdmc_group_wedge(NULL, 100), -EINVAL);
    int64_t t0 = th_now_ms();
    ck_assert_int_eq(rdmc_group_wedge(cr[0].g, 5000), 0);
    ck_assert_int_lt(th_now_ms() - t0, 2000);
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, 10, NULL), -ESHUTDOWN);
    ck_assert_int_eq(rdmc_group_status(cr[0].g), -ESHUTDOWN);
    ck_assert(th_wait_until(got_failure, &cr[1].c, 5000));
    ck_assert_int_eq(atomic_load(&cr[1].c.reason), -ESHUTDOWN);
    ck_assert_uint_eq(atomic_load(&cr[1].c.node), 1);
    ck_assert_int_eq(atomic_load(&cr[0].c.failures), 0); /* on purpose */
    /* wedging again, or the other side, returns at once */
    ck_assert_int_eq(rdmc_group_wedge(cr[0].g, 0), 0);
    ck_assert_int_eq(rdmc_group_wedge(cr[1].g, 1000), 0);
    for (int i = 0; i < 2; i++) {
        t0 = th_now_ms();
        rdmc_group_destroy(cr[i].g);
        ck_assert_int_lt(th_now_ms() - t0, 300);
        cr[i].g = NULL;
    }
    destroy_pair(cr);
}
END_TEST

/* Destroying groups at one member fails them at the other (-ESHUTDOWN);
 * destroying those failed groups takes no fixed half second each. */
#define FAILED_GROUPS 4

START_TEST(test_failed_groups_destroy_quickly)
{
    struct fab_pool *pools[2];
    for (int i = 0; i < 2; i++) {
        pools[i] = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(pools[i]);
    }
    static struct creator cr[2 * FAILED_GROUPS];
    memset(cr, 0, sizeof(cr));
    pthread_t t[2 * FAILED_GROUPS];
    for (int k = 0; k < FAILED_GROUPS; k++) {
        for (int i = 0; i < 2; i++) {
            struct creator *c = &cr[2 * k + i];
            c->pool = pools[i];
            for (int j = 0; j < 2; j++)
                c->members[j] = (struct rdmc_member){
                    (uint32_t)j + 1, "127.0.0.1", fab_pool_port(pools[j])};
            quiet_opts(&c->opts, 200 + (uint32_t)k);
        }
    }
    for (int i = 0; i < 2 * FAILED_GROUPS; i++)
        pthread_create(&t[i], NULL, create_thread, &cr[i]);
    for (int i = 0; i < 2 * FAILED_GROUPS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2 * FAILED_GROUPS; i++)
        ck_assert_int_eq(cr[i].rc, 0);
    for (int k = 0; k < FAILED_GROUPS; k++)
        rdmc_group_destroy(cr[2 * k].g);
    for (int k = 0; k < FAILED_GROUPS; k++) {
        ck_assert(th_wait_until(got_failure, &cr[2 * k + 1].c, 5000));
        ck_assert_int_eq(atomic_load(&cr[2 * k + 1].c.reason), -ESHUTDOWN);
        ck_assert_int_eq(rdmc_group_status(cr[2 * k + 1].g), -ESHUTDOWN);
    }
    int64_t t0 = th_now_ms();
    for (int k = 0; k < FAILED_GROUPS; k++)
        rdmc_group_destroy(cr[2 * k + 1].g);
    /* the first version slept 500 ms per failed group */
    ck_assert_int_lt(th_now_ms() - t0, FAILED_GROUPS * 500 / 2);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(pools[i]);
}
END_TEST

/* The groups of a view in one batch: the two members list them in
 * opposite orders (one at a time, each would wait for the other). */
#define BATCH 3

struct batch_side {
    struct fab_pool *pool;
    struct rdmc_member members[2];
    struct rdmc_options opts[BATCH];
    struct rdmc_group_spec specs[BATCH];
    struct counter c[BATCH];
    struct rdmc_group *g[BATCH];
    struct rdmc_error err;
    int rc;
};

static void *batch_thread(void *arg)
{
    struct batch_side *b = arg;
    b->rc = rdmc_groups_create(b->pool, b->specs, BATCH, b->g, &b->err);
    return NULL;
}

static bool batch_done(void *arg)
{
    struct batch_side *b = arg;
    for (int k = 0; k < BATCH; k++)
        if (atomic_load(&b[0].c[k].completed) < 1 ||
            atomic_load(&b[1].c[k].completed) < 1)
            return false;
    return true;
}

START_TEST(test_batch_create_in_any_order)
{
    static struct batch_side b[2];
    memset(b, 0, sizeof(b));
    static const struct rdmc_callbacks cbs = {.complete = count_complete,
                                              .failure = count_failure};
    for (int i = 0; i < 2; i++) {
        b[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(b[i].pool);
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            b[i].members[j] = (struct rdmc_member){(uint32_t)j + 1, "127.0.0.1",
                                                   fab_pool_port(b[j].pool)};
        for (int k = 0; k < BATCH; k++) {
            int pos = i == 0 ? k : BATCH - 1 - k; /* opposite orders */
            quiet_opts(&b[i].opts[pos], 300 + (uint32_t)k);
            b[i].opts[pos].epoch = 5;
            b[i].specs[pos] = (struct rdmc_group_spec){
                b[i].members, 2, &b[i].opts[pos], &cbs, &b[i].c[k]};
        }
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, batch_thread, &b[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(b[i].rc == 0, "%s", b[i].err.msg);
    static char buf[3000];
    for (int k = 0; k < BATCH; k++)
        ck_assert_int_eq(rdmc_send(b[0].g[k], buf, sizeof(buf), NULL), 0);
    ck_assert(th_wait_until(batch_done, b, 20000));
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < BATCH; k++)
            rdmc_group_destroy(b[i].g[k]);
    /* bad batches: all or nothing, nothing left behind */
    struct rdmc_group *g[2] = {(void *)1, (void *)1};
    struct rdmc_group_spec dup[2] = {b[0].specs[0], b[0].specs[0]};
    ck_assert_int_eq(rdmc_groups_create(b[0].pool, dup, 2, g, &b[0].err),
                     -EINVAL);
    ck_assert_int_eq(b[0].err.code, -EINVAL);
    ck_assert_ptr_null(g[0]);
    ck_assert_ptr_null(g[1]);
    ck_assert_int_eq(rdmc_groups_create(b[0].pool, NULL, 1, g, NULL), -EINVAL);
    ck_assert_int_eq(rdmc_groups_create(b[0].pool, dup, 0, g, NULL), -EINVAL);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(b[i].pool);
}
END_TEST

/* A set-up timeout names the member it waited for; a group id reused
 * with a new epoch never takes the old group's parameters. */
START_TEST(test_timeout_names_peer_and_epochs)
{
    struct creator cr[2];
    memset(cr, 0, sizeof(cr));
    for (int i = 0; i < 2; i++) {
        cr[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(cr[i].pool);
        for (int j = 0; j < 2; j++)
            cr[i].members[j] =
                (struct rdmc_member){(uint32_t)j + 1, "127.0.0.1", 0};
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            cr[i].members[j].port = fab_pool_port(cr[j].pool);
    for (int i = 0; i < 2; i++) {
        quiet_opts(&cr[i].opts, 7);
        cr[i].opts.epoch = 1;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, create_thread, &cr[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    /* node 1 moves on to epoch 2; node 2 still holds epoch 1's group */
    rdmc_group_destroy(cr[0].g);
    cr[0].g = NULL;
    struct rdmc_options o = cr[0].opts;
    o.epoch = 2;
    o.create_timeout_ms = 400;
    o.log_level = 0;
    struct rdmc_error err;
    struct rdmc_group *g = (void *)1;
    int rc = rdmc_group_create_ex(cr[0].pool, cr[0].members, 2, &o, NULL, NULL,
                                  &g, &err);
    ck_assert_int_eq(rc, -ETIMEDOUT); /* not the stale epoch-1 group */
    ck_assert_ptr_null(g);
    ck_assert_int_eq(err.code, -ETIMEDOUT);
    ck_assert_uint_eq(err.node_id, 2);
    ck_assert_msg(strstr(err.msg, "node 2") != NULL, "%s", err.msg);
    ck_assert_uint_ne(rdmc_blob_key(7, 2), rdmc_blob_key(7, 1));
    ck_assert_uint_eq(rdmc_blob_key(7, 0), RDMC_BLOB_KEY(7));
    /* both at epoch 2: fine */
    rdmc_group_destroy(cr[1].g);
    cr[1].g = NULL;
    for (int i = 0; i < 2; i++) {
        cr[i].opts.epoch = 2;
        memset(&cr[i].c, 0, sizeof(cr[i].c));
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, create_thread, &cr[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    static char buf[100];
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, sizeof(buf), NULL), 0);
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, 1, NULL), 0);
    ck_assert(th_wait_until(two_done, cr, 20000));
    destroy_pair(cr);
}
END_TEST

/* create_wait: the caller gives up while the create waits for a member
 * that never sets the group up, and names the member it blames (not the
 * one waited for), long before create_timeout_ms. */
struct waiter {
    atomic_int calls;
    atomic_uint waiting_for;
    int give_up_after;
    uint32_t blame;
};

static int give_up(void *ctx, uint32_t waiting_for, uint32_t *blame)
{
    struct waiter *w = ctx;
    atomic_store(&w->waiting_for, waiting_for);
    ck_assert_uint_eq(*blame, waiting_for); /* the default */
    if (atomic_fetch_add(&w->calls, 1) + 1 < w->give_up_after)
        return 0;
    *blame = w->blame;
    return -EHOSTDOWN;
}

START_TEST(test_create_wait_gives_up_and_blames)
{
    struct fab_pool *pool[2];
    struct rdmc_member members[2];
    for (int i = 0; i < 2; i++) {
        pool[i] = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(pool[i]);
    }
    for (int j = 0; j < 2; j++)
        members[j] = (struct rdmc_member){(uint32_t)j + 1, "127.0.0.1",
                                          fab_pool_port(pool[j])};
    /* Node 2's pool runs, its group is never created: node 1 waits. */
    for (int round = 0; round < 2; round++) {
        struct waiter w = {.give_up_after = 3,
                           .blame = round == 0 ? 5 : RDMC_NO_PEER};
        struct rdmc_options o;
        quiet_opts(&o, 11);
        o.epoch = (uint64_t)round + 1;
        o.create_timeout_ms = 20000;
        o.log_level = 0;
        o.create_wait = give_up;
        o.create_wait_ctx = &w;
        struct rdmc_error err;
        struct rdmc_group *g = (void *)1;
        int64_t t0 = th_now_ms();
        int rc =
            rdmc_group_create_ex(pool[0], members, 2, &o, NULL, NULL, &g, &err);
        int64_t took = th_now_ms() - t0;
        ck_assert_int_eq(rc, -EHOSTDOWN);
        ck_assert_ptr_null(g);
        ck_assert_int_eq(err.code, -EHOSTDOWN);
        ck_assert_uint_eq(err.node_id, w.blame);
        ck_assert_uint_eq(atomic_load(&w.waiting_for), 2);
        ck_assert_int_eq(atomic_load(&w.calls), 3);
        ck_assert_msg(took < 10000, "gave up after %lld ms", (long long)took);
        ck_assert_msg(strstr(err.msg, "waiting for node 2") != NULL, "%s",
                      err.msg);
    }
    /* A hook that keeps waiting changes nothing: the deadline names the
     * member waited for. */
    struct waiter w = {.give_up_after = 1000000, .blame = 5};
    struct rdmc_options o;
    quiet_opts(&o, 11);
    o.epoch = 3;
    o.create_timeout_ms = 500;
    o.log_level = 0;
    o.create_wait = give_up;
    o.create_wait_ctx = &w;
    struct rdmc_error err;
    struct rdmc_group *g = NULL;
    ck_assert_int_eq(
        rdmc_group_create_ex(pool[0], members, 2, &o, NULL, NULL, &g, &err),
        -ETIMEDOUT);
    ck_assert_uint_eq(err.node_id, 2);
    ck_assert_int_ge(atomic_load(&w.calls), 1);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(pool[i]);
}
END_TEST

/* A caller lock held around rdmc_send and taken in `complete` (which
 * also sends): no deadlock, since callbacks run with no librdmc lock and
 * never inside rdmc_send (the first version called `complete` inline,
 * under the group's lock). */
struct locked_sender {
    pthread_mutex_t lock;
    struct rdmc_group *g;
    atomic_int completed;
    atomic_int lock_timeouts;
    atomic_int resend_rc;
};

static void locked_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                            void *data, size_t size)
{
    struct locked_sender *ls = ctx;
    (void)data;
    (void)size;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    if (pthread_mutex_timedlock(&ls->lock, &ts) != 0) {
        atomic_fetch_add(&ls->lock_timeouts, 1);
    } else {
        static char b[8];
        if (index == 0) /* a callback may send */
            atomic_store(&ls->resend_rc, rdmc_send(g, b, sizeof(b), NULL));
        pthread_mutex_unlock(&ls->lock);
    }
    atomic_fetch_add(&ls->completed, 1);
}

static bool two_locked(void *arg)
{
    return atomic_load(&((struct locked_sender *)arg)->completed) >= 2;
}

START_TEST(test_caller_lock_around_send)
{
    struct fab_pool *pool = tr_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct rdmc_member me = {1, NULL, 0};
    struct rdmc_options o;
    quiet_opts(&o, 9);
    static struct locked_sender ls;
    memset(&ls, 0, sizeof(ls));
    pthread_mutex_init(&ls.lock, NULL);
    atomic_store(&ls.resend_rc, 1);
    struct rdmc_callbacks cbs = {.complete = locked_complete};
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, &cbs, &ls, &ls.g), 0);
    static char buf[100];
    pthread_mutex_lock(&ls.lock);
    ck_assert_int_eq(rdmc_send(ls.g, buf, sizeof(buf), NULL), 0);
    pthread_mutex_unlock(&ls.lock);
    ck_assert(th_wait_until(two_locked, &ls, 10000));
    ck_assert_int_eq(atomic_load(&ls.lock_timeouts), 0);
    ck_assert_int_eq(atomic_load(&ls.resend_rc), 0);
    rdmc_group_destroy(ls.g);
    pthread_mutex_destroy(&ls.lock);
    fab_pool_destroy(pool);
}
END_TEST

/* The incoming callback runs without the group's lock: while it waits
 * for a caller lock, the holder of that lock can call into the group
 * (rdmc_group_pending takes the group's lock).  The first versions called
 * incoming under the group's lock: rdmc_group_pending waited until
 * incoming gave up its 3 s wait for the caller lock. */
struct incoming_lock {
    pthread_mutex_t lock;
    atomic_int entered;
    atomic_int lock_timeouts;
    atomic_int completed;
};

static void *locked_incoming(void *ctx, struct rdmc_group *g, uint64_t index,
                             size_t size)
{
    struct incoming_lock *il = ctx;
    (void)g;
    (void)index;
    (void)size;
    atomic_store(&il->entered, 1);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 3;
    if (pthread_mutex_timedlock(&il->lock, &ts) != 0)
        atomic_fetch_add(&il->lock_timeouts, 1);
    else
        pthread_mutex_unlock(&il->lock);
    return NULL; /* librdmc's own buffer */
}

static void incoming_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                              void *data, size_t size)
{
    (void)g;
    (void)index;
    (void)data;
    (void)size;
    atomic_fetch_add(&((struct incoming_lock *)ctx)->completed, 1);
}

START_TEST(test_incoming_without_group_lock)
{
    struct creator cr[2];
    memset(cr, 0, sizeof(cr));
    static struct incoming_lock il;
    memset(&il, 0, sizeof(il));
    pthread_mutex_init(&il.lock, NULL);
    static const struct rdmc_callbacks cbs = {.incoming = locked_incoming,
                                              .complete = incoming_complete};
    cr[1].cbs = &cbs;
    cr[1].cb_ctx = &il;
    create_pair(cr, 4096, 4096);
    ck_assert_int_eq(cr[0].rc, 0);
    ck_assert_int_eq(cr[1].rc, 0);
    static char buf[100];
    pthread_mutex_lock(&il.lock);
    ck_assert_int_eq(rdmc_send(cr[0].g, buf, sizeof(buf), NULL), 0);
    bool entered = TH_WAIT_UNTIL(atomic_load(&il.entered), 10000);
    int64_t t0 = th_now_ms();
    size_t pending = rdmc_group_pending(cr[1].g);
    int64_t waited = th_now_ms() - t0;
    pthread_mutex_unlock(&il.lock);
    ck_assert(entered);
    ck_assert_uint_le(pending, 1);
    ck_assert_int_lt(waited, 1000);
    ck_assert(TH_WAIT_UNTIL(atomic_load(&il.completed) == 1, 10000));
    ck_assert_int_eq(atomic_load(&il.lock_timeouts), 0);
    destroy_pair(cr);
    pthread_mutex_destroy(&il.lock);
}
END_TEST

/* RDMC_THREAD_CALLER: no group thread; this thread serves both groups
 * with rdmc_groups_poll, and their callbacks run here.  max_queued
 * bounds the sender's queue. */
struct polled {
    atomic_int completed;
    atomic_int foreign_thread;
    pthread_t poller;
};

static void polled_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                            void *data, size_t size)
{
    struct polled *p = ctx;
    (void)g;
    (void)index;
    (void)data;
    (void)size;
    if (!pthread_equal(pthread_self(), p->poller))
        atomic_fetch_add(&p->foreign_thread, 1);
    atomic_fetch_add(&p->completed, 1);
}

struct polled_creator {
    struct fab_pool *pool;
    struct rdmc_member members[2];
    struct rdmc_options opts;
    struct polled p;
    struct rdmc_group *g;
    int rc;
};

static void *polled_create(void *arg)
{
    struct polled_creator *c = arg;
    struct rdmc_callbacks cbs = {.complete = polled_complete};
    c->rc =
        rdmc_group_create(c->pool, c->members, 2, &c->opts, &cbs, &c->p, &c->g);
    return NULL;
}

START_TEST(test_caller_driven_groups)
{
    static struct polled_creator c[2];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 2; i++) {
        c[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(c[i].pool);
        c[i].p.poller = pthread_self();
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            c[i].members[j] = (struct rdmc_member){(uint32_t)j + 1, "127.0.0.1",
                                                   fab_pool_port(c[j].pool)};
        quiet_opts(&c[i].opts, 11);
        c[i].opts.threading = RDMC_THREAD_CALLER;
        c[i].opts.window = 2;
        c[i].opts.max_queued = 1;
        c[i].opts.block_size = 512;
    }
    /* creation needs the peers' pools progressed: libfab's own threads do
     * the rendezvous, and nothing is sent yet */
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, polled_create, &c[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(c[0].rc, 0);
    ck_assert_int_eq(c[1].rc, 0);
    struct rdmc_options bad = c[0].opts;
    bad.threading = 7;
    struct rdmc_group *none = NULL;
    ck_assert_int_eq(
        rdmc_group_create(c[0].pool, c[0].members, 2, &bad, NULL, NULL, &none),
        -EINVAL);
    static char buf[2000];
    /* window 2 + max_queued 1: the fourth waits for a completion */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rdmc_send(c[0].g, buf, sizeof(buf), NULL), 0);
    ck_assert_int_eq(rdmc_send(c[0].g, buf, sizeof(buf), NULL), -EAGAIN);
    ck_assert_int_eq(rdmc_groups_poll(NULL, 1, 0), -EINVAL);
    ck_assert_int_eq(rdmc_groups_poll(NULL, 0, 0), 0);
    struct rdmc_group *gs[2] = {c[0].g, c[1].g};
    int sent = 3;
    int64_t end = th_now_ms() + 20000;
    while ((atomic_load(&c[0].p.completed) < 6 ||
            atomic_load(&c[1].p.completed) < 6) &&
           th_now_ms() < end) {
        ck_assert_int_eq(rdmc_groups_poll(gs, 2, 5), 0);
        if (sent < 6 && rdmc_send(c[0].g, buf, sizeof(buf), NULL) == 0)
            sent++;
    }
    ck_assert_int_eq(atomic_load(&c[0].p.completed), 6);
    ck_assert_int_eq(atomic_load(&c[1].p.completed), 6);
    ck_assert_int_eq(atomic_load(&c[0].p.foreign_thread), 0);
    ck_assert_int_eq(atomic_load(&c[1].p.foreign_thread), 0);
    for (int i = 0; i < 2; i++)
        rdmc_group_destroy(c[i].g);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(c[i].pool);
}
END_TEST

/* More blocks than the 4096 residues a BLOCK word can name: every block
 * from one sender is told apart by schedule order, byte-exact. */
#define TINY_BLOCK 64
#define MANY_BLOCKS_SIZE (TINY_BLOCK * 5000 + 17)

struct verified {
    atomic_int completed;
    atomic_int wrong;
};

static void verify_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                            void *data, size_t size)
{
    struct verified *v = ctx;
    if (rdmc_group_rank(g) != 0) {
        static uint8_t expect[MANY_BLOCKS_SIZE];
        tr_fill(expect, size, 8, index);
        if (size != MANY_BLOCKS_SIZE || memcmp(expect, data, size) != 0)
            atomic_fetch_add(&v->wrong, 1);
    }
    atomic_fetch_add(&v->completed, 1);
}

struct verified_creator {
    struct fab_pool *pool;
    struct rdmc_member members[2];
    struct rdmc_options opts;
    struct verified v;
    struct rdmc_group *g;
    int rc;
};

static void *verified_create(void *arg)
{
    struct verified_creator *c = arg;
    struct rdmc_callbacks cbs = {.complete = verify_complete};
    c->rc =
        rdmc_group_create(c->pool, c->members, 2, &c->opts, &cbs, &c->v, &c->g);
    return NULL;
}

static bool verified_done(void *arg)
{
    struct verified_creator *c = arg;
    return atomic_load(&c[0].v.completed) >= 2 &&
           atomic_load(&c[1].v.completed) >= 2;
}

START_TEST(test_more_blocks_than_residues)
{
    static struct verified_creator c[2];
    memset(c, 0, sizeof(c));
    for (int i = 0; i < 2; i++) {
        c[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(c[i].pool);
    }
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++)
            c[i].members[j] = (struct rdmc_member){(uint32_t)j + 1, "127.0.0.1",
                                                   fab_pool_port(c[j].pool)};
        quiet_opts(&c[i].opts, 12);
        c[i].opts.block_size = TINY_BLOCK;
        c[i].opts.max_msg_size = MANY_BLOCKS_SIZE;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, verified_create, &c[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(c[0].rc, 0);
    ck_assert_int_eq(c[1].rc, 0);
    static uint8_t msg[2][MANY_BLOCKS_SIZE];
    for (uint64_t i = 0; i < 2; i++) {
        tr_fill(msg[i], MANY_BLOCKS_SIZE, 8, i);
        ck_assert_int_eq(rdmc_send(c[0].g, msg[i], MANY_BLOCKS_SIZE, NULL), 0);
    }
    ck_assert(th_wait_until(verified_done, c, 30000));
    ck_assert_int_eq(atomic_load(&c[1].v.wrong), 0);
    ck_assert_int_eq(rdmc_group_status(c[1].g), 0);
    for (int i = 0; i < 2; i++)
        rdmc_group_destroy(c[i].g);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(c[i].pool);
}
END_TEST

Suite *rdmc_local_suite(void)
{
    Suite *s = suite_create("rdmc-local");
    TCase *tc = tcase_create("local");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_mismatched_block_size);
    tcase_add_test(tc, test_pair_in_process);
    tcase_add_test(tc, test_malformed_control_from_peer);
    tcase_add_test(tc, test_many_groups_share_a_connection);
    tcase_add_test(tc, test_registered_memory);
    tcase_add_test(tc, test_wedge_closes_both_sides);
    tcase_add_test(tc, test_failed_groups_destroy_quickly);
    tcase_add_test(tc, test_batch_create_in_any_order);
    tcase_add_test(tc, test_timeout_names_peer_and_epochs);
    tcase_add_test(tc, test_create_wait_gives_up_and_blames);
    tcase_add_test(tc, test_caller_lock_around_send);
    tcase_add_test(tc, test_incoming_without_group_lock);
    tcase_add_test(tc, test_caller_driven_groups);
    tcase_add_test(tc, test_more_blocks_than_residues);
    suite_add_tcase(s, tc);
    return s;
}
