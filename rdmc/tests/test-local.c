/* Groups inside one process: bad input, a one-member group, two pools. */
#include "test-rdmc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct counter {
    atomic_int completed;
    atomic_int failures;
};

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
};

static void *create_thread(void *arg)
{
    struct creator *cr = arg;
    struct rdmc_callbacks cbs = {.complete = count_complete};
    cr->rc = rdmc_group_create(cr->pool, cr->members, 2, &cr->opts, &cbs,
                               &cr->c, &cr->g);
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
    ck_assert_int_eq(cr[0].rc, -EPROTO);
    ck_assert_int_eq(cr[1].rc, -EPROTO);
    ck_assert_ptr_null(cr[0].g);
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

Suite *rdmc_local_suite(void)
{
    Suite *s = suite_create("rdmc-local");
    TCase *tc = tcase_create("local");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_mismatched_block_size);
    tcase_add_test(tc, test_pair_in_process);
    suite_add_tcase(s, tc);
    return s;
}
