/* A careless or hostile caller of the public API: every refused call
 * returns its documented error, crashes nothing, leaks nothing and leaves
 * the group usable. */
#include "test-rdmc.h"

#include <errno.h>
#include <stddef.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static struct rdmc_group *const SENTINEL = (struct rdmc_group *)(uintptr_t)0x10;

static void opts_init(struct rdmc_options *o, uint32_t group_id)
{
    rdmc_options_init(o);
    o->group_id = group_id;
    o->log = tr_quiet_log;
    o->log_level = 0; /* refusals are logged as errors: expected here */
    o->create_timeout_ms = 5000;
}

START_TEST(pure_functions_refuse_nonsense)
{
    const int codes[] = {INT_MIN, INT_MAX, 0, -1, 1, -99999, 99999};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_ptr_nonnull(rdmc_strerror(codes[i]));
        ck_assert_uint_gt(strlen(rdmc_strerror(codes[i])), 0);
    }
    ck_assert_str_eq(rdmc_strerror(EPERM), rdmc_strerror(-EPERM));
    ck_assert_str_eq(rdmc_strerror(EBADMSG), rdmc_strerror(-EBADMSG));
    /* every errno, either sign: the same text, never "unknown error" */
    for (int e = 1; e < 134; e++) {
        if (e == 41 || e == 58)
            continue; /* numbers Linux leaves unused */
        ck_assert_str_eq(rdmc_strerror(e), rdmc_strerror(-e));
        ck_assert_msg(strcmp(rdmc_strerror(e), "unknown error") != 0,
                      "errno %d", e);
    }
    ck_assert_str_eq(rdmc_strerror(-ENOENT), "No such file or directory");
    ck_assert_ptr_nonnull(strstr(rdmc_strerror(-ESHUTDOWN), "closed"));

    ck_assert_ptr_null(rdmc_algorithm_name((enum rdmc_algorithm)4));
    ck_assert_ptr_null(rdmc_algorithm_name((enum rdmc_algorithm) - 1));
    enum rdmc_algorithm a = RDMC_TREE_SEND;
    const char *bad_names[] = {"",         "BINOMIAL_SEND", "binomial_send ",
                               "binomial", "tree_send\n",   "x"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        ck_assert_int_eq(rdmc_algorithm_from_name(bad_names[i], &a), -EINVAL);
    ck_assert_int_eq(rdmc_algorithm_from_name(NULL, &a), -EINVAL);
    ck_assert_int_eq(rdmc_algorithm_from_name("chain_send", NULL), -EINVAL);
    ck_assert_int_eq(a, RDMC_TREE_SEND); /* untouched by refusals */
    ck_assert_int_eq(rdmc_algorithm_from_name("chain_send", &a), 0);
    ck_assert_int_eq(a, RDMC_CHAIN_SEND);

    ck_assert_uint_eq(rdmc_schedule_steps(RDMC_CHAIN_SEND, 0, 4), 0);
    ck_assert_uint_eq(rdmc_schedule_steps(RDMC_CHAIN_SEND, 1, 4), 0);
    ck_assert_uint_eq(
        rdmc_schedule_steps(RDMC_CHAIN_SEND, RDMC_MAX_MEMBERS + 1, 4), 0);
    ck_assert_uint_eq(rdmc_schedule_steps(RDMC_CHAIN_SEND, 3, 0), 0);
    ck_assert_uint_eq(
        rdmc_schedule_steps(RDMC_CHAIN_SEND, 3, RDMC_MAX_BLOCKS + 1), 0);
    ck_assert_uint_eq(rdmc_schedule_steps((enum rdmc_algorithm)9, 3, 4), 0);
    ck_assert_uint_gt(rdmc_schedule_steps(RDMC_SEQUENTIAL_SEND,
                                          RDMC_MAX_MEMBERS, RDMC_MAX_BLOCKS),
                      0);
    struct rdmc_transfer s, r;
    ck_assert_int_eq(
        rdmc_schedule_step(RDMC_BINOMIAL_SEND, 3, 0, 4, 0, NULL, &r), -EINVAL);
    ck_assert_int_eq(
        rdmc_schedule_step(RDMC_BINOMIAL_SEND, 3, 0, 4, 0, &s, NULL), -EINVAL);
    ck_assert_int_eq(rdmc_schedule_step(RDMC_BINOMIAL_SEND, 3, 3, 4, 0, &s, &r),
                     -EINVAL);
    uint32_t steps = rdmc_schedule_steps(RDMC_BINOMIAL_SEND, 3, 4);
    ck_assert_int_eq(
        rdmc_schedule_step(RDMC_BINOMIAL_SEND, 3, 0, 4, steps, &s, &r),
        -EINVAL);
    ck_assert_int_eq(
        rdmc_schedule_step((enum rdmc_algorithm)9, 3, 0, 4, 0, &s, &r),
        -EINVAL);

    uint8_t rec[RDMC_CTRL_SIZE];
    struct rdmc_ctrl c = {.kind = RDMC_KIND_BLOCK, .group_id = 1};
    ck_assert_int_eq(rdmc_ctrl_encode(&c, rec), -EINVAL);
    ck_assert_int_eq(rdmc_ctrl_encode(NULL, rec), -EINVAL);
    c.kind = RDMC_KIND_DONE;
    ck_assert_int_eq(rdmc_ctrl_encode(&c, NULL), -EINVAL);
    c.group_id = RDMC_MAX_GROUP_ID + 1;
    ck_assert_int_eq(rdmc_ctrl_encode(&c, rec), -EINVAL);
    c.group_id = 1;
    ck_assert_int_eq(rdmc_ctrl_encode(&c, rec), 0);
    struct rdmc_ctrl d;
    ck_assert_int_eq(rdmc_ctrl_decode(rec, sizeof(rec), &d), 0);
    ck_assert_int_eq(rdmc_ctrl_decode(NULL, sizeof(rec), &d), -EBADMSG);
    ck_assert_int_eq(rdmc_ctrl_decode(rec, sizeof(rec), NULL), -EBADMSG);
    ck_assert_int_eq(rdmc_ctrl_decode(rec, sizeof(rec) - 1, &d), -EBADMSG);
    ck_assert_int_eq(rdmc_ctrl_decode(rec, sizeof(rec) + 1, &d), -EBADMSG);
    ck_assert(!rdmc_cq_decode(0, NULL, NULL, NULL, NULL));
    ck_assert(rdmc_cq_decode(rdmc_cq_encode(1, RDMC_KIND_BLOCK, 2, 3), NULL,
                             NULL, NULL, NULL));
}
END_TEST

static void expect_refused(struct fab_pool *pool,
                           const struct rdmc_member *members, size_t n,
                           const struct rdmc_options *o)
{
    struct rdmc_group *g = SENTINEL;
    ck_assert_int_eq(rdmc_group_create(pool, members, n, o, NULL, NULL, &g),
                     -EINVAL);
    ck_assert_ptr_null(g);
}

/* th_check_options_sizes callbacks (ctx: the pool): a one-member group
 * with options of group id 5 and a given size. */
static void fill_options(void *opts, size_t size, void *ctx)
{
    (void)ctx;
    opts_init(opts, 5);
    ((struct rdmc_options *)opts)->size = size;
}

static int try_options(void *opts, void *ctx)
{
    struct fab_pool *pool = ctx;
    struct rdmc_member me = {fab_pool_node_id(pool), "127.0.0.1",
                             fab_pool_port(pool)};
    struct rdmc_group *g = SENTINEL;
    int rc = rdmc_group_create(pool, &me, 1, opts, NULL, NULL, &g);
    if (rc == 0) {
        ck_assert_uint_eq(rdmc_group_id(g), 5);
        rdmc_group_destroy(g);
    } else {
        ck_assert_ptr_null(g);
    }
    return rc;
}

START_TEST(create_refuses_bad_options)
{
    struct fab_pool *pool = tr_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct rdmc_member me = {1, "127.0.0.1", fab_pool_port(pool)};
    struct rdmc_options o;
    opts_init(&o, 1);
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, NULL, NULL, NULL),
                     -EINVAL);
    /* NULL options: every default (group id 0) */
    struct rdmc_group *dflt = NULL;
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, NULL, NULL, NULL, &dflt),
                     0);
    ck_assert_uint_eq(rdmc_group_id(dflt), 0);
    rdmc_group_destroy(dflt);
    /* zeroed, or a size that is not this version's; a struct from a newer
     * header: zeroed extra bytes accepted, others refused */
    struct rdmc_options bad;
    memset(&bad, 0, sizeof(bad));
    expect_refused(pool, &me, 1, &bad);
    const size_t bad_sizes[] = {0, 1, sizeof(size_t),
                                offsetof(struct rdmc_options, incoming_mr) - 1};
    const struct th_options_case sizes = {sizeof(struct rdmc_options),
                                          fill_options, try_options, pool};
    th_check_options_sizes(&sizes, bad_sizes,
                           sizeof(bad_sizes) / sizeof(bad_sizes[0]));
    const int bad_algs[] = {-1, 4, 99};
    for (size_t i = 0; i < sizeof(bad_algs) / sizeof(bad_algs[0]); i++) {
        opts_init(&bad, 1);
        bad.algorithm = (enum rdmc_algorithm)bad_algs[i];
        expect_refused(pool, &me, 1, &bad);
    }
    const unsigned bad_windows[] = {0, 3, 6, 128, UINT_MAX};
    for (size_t i = 0; i < sizeof(bad_windows) / sizeof(bad_windows[0]); i++) {
        opts_init(&bad, 1);
        bad.window = bad_windows[i];
        expect_refused(pool, &me, 1, &bad);
    }
    opts_init(&bad, 1);
    bad.timeout_ms = 0; /* would fail the first message at once */
    expect_refused(pool, &me, 1, &bad);
    opts_init(&bad, 1);
    bad.block_size = 0;
    expect_refused(pool, &me, 1, &bad);
    opts_init(&bad, 1);
    bad.max_msg_size = 0;
    expect_refused(pool, &me, 1, &bad);
    opts_init(&bad, 1);
    bad.block_size = 1;
    bad.max_msg_size = SIZE_MAX;
    expect_refused(pool, &me, 1, &bad);
    opts_init(&bad, RDMC_MAX_GROUP_ID + 1);
    expect_refused(pool, &me, 1, &bad);
    opts_init(&bad, UINT32_MAX);
    expect_refused(pool, &me, 1, &bad);
    /* member lists */
    expect_refused(NULL, &me, 1, &o);
    expect_refused(pool, NULL, 1, &o);
    expect_refused(pool, &me, 0, &o);
    static struct rdmc_member many[RDMC_MAX_MEMBERS + 1];
    for (uint32_t i = 0; i <= RDMC_MAX_MEMBERS; i++)
        many[i] = (struct rdmc_member){i + 1, "127.0.0.1", 1};
    expect_refused(pool, many, RDMC_MAX_MEMBERS + 1, &o);
    struct rdmc_member others[2] = {{2, "127.0.0.1", 1}, {3, "127.0.0.1", 1}};
    expect_refused(pool, others, 2, &o); /* my node is not a member */
    struct rdmc_member dup[3] = {me, {2, "127.0.0.1", 1}, {2, "127.0.0.1", 1}};
    expect_refused(pool, dup, 3, &o);
    struct rdmc_member reserved[2] = {{RDMC_NO_PEER, "127.0.0.1", 1}, me};
    expect_refused(pool, reserved, 2, &o);
    struct rdmc_member nohost[2] = {{2, NULL, 1}, me};
    expect_refused(pool, nohost, 2, &o);
    char long_host[100];
    memset(long_host, 'h', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = 0;
    struct rdmc_member far[2] = {{2, long_host, 1}, me};
    expect_refused(pool, far, 2, &o);
    struct rdmc_member noport[2] = {{2, "127.0.0.1", 0}, me};
    expect_refused(pool, noport, 2, &o);

    fab_pool_destroy(pool);
}
END_TEST

struct recorder {
    struct rdmc_group *g;
    atomic_int completed;
    atomic_int refused_destroys;
    atomic_int failures;
    atomic_int reason;
    bool destroy_in_callbacks;
};

static void on_complete(void *ctx, struct rdmc_group *g, uint64_t index,
                        void *data, size_t size)
{
    (void)index;
    (void)data;
    (void)size;
    struct recorder *r = ctx;
    if (r->destroy_in_callbacks) {
        rdmc_group_destroy(g);
        atomic_fetch_add(&r->refused_destroys, 1);
    }
    atomic_fetch_add(&r->completed, 1);
}

static void on_failure(void *ctx, struct rdmc_group *g, uint32_t node,
                       int reason)
{
    (void)node;
    struct recorder *r = ctx;
    if (atomic_fetch_add(&r->failures, 1) == 0)
        atomic_store(&r->reason, reason);
    if (r->destroy_in_callbacks) {
        rdmc_group_destroy(g);
        atomic_fetch_add(&r->refused_destroys, 1);
    }
}

struct completions_at_least {
    struct recorder *r;
    int n;
};

static bool completions_reached(void *arg)
{
    struct completions_at_least *c = arg;
    return atomic_load(&c->r->completed) >= c->n;
}

START_TEST(send_misuse_and_destroy_from_complete)
{
    struct fab_pool *pool = tr_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct rdmc_member me = {1, NULL, 0};
    struct rdmc_options o;
    opts_init(&o, 3);
    o.max_msg_size = 4096;
    o.block_size = 1000; /* need not be a power of two */
    struct recorder rec = {.destroy_in_callbacks = true};
    struct rdmc_callbacks cbs = {.complete = on_complete,
                                 .failure = on_failure};
    struct rdmc_group *g = NULL;
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, &cbs, &rec, &g), 0);
    static char buf[4097];
    uint64_t idx = 77;
    ck_assert_int_eq(rdmc_send(NULL, buf, 1, &idx), -EINVAL);
    ck_assert_int_eq(rdmc_send(g, NULL, 1, &idx), -EINVAL);
    ck_assert_int_eq(rdmc_send(g, buf, 0, &idx), -EINVAL);
    ck_assert_int_eq(rdmc_send(g, buf, sizeof(buf), &idx), -EMSGSIZE);
    ck_assert_int_eq(rdmc_send(g, buf, SIZE_MAX, &idx), -EMSGSIZE);
    ck_assert_uint_eq(idx, 77);
    ck_assert_uint_eq(rdmc_group_pending(g), 0);
    ck_assert_uint_eq(rdmc_group_rank(NULL), RDMC_NO_PEER);
    ck_assert_uint_eq(rdmc_group_size(NULL), 0);
    ck_assert_uint_eq(rdmc_group_id(NULL), UINT32_MAX);
    ck_assert_int_eq(rdmc_group_status(NULL), -EINVAL);
    ck_assert_uint_eq(rdmc_group_pending(NULL), 0);
    /* the complete callback tries to destroy the group: refused */
    ck_assert_int_eq(rdmc_send(g, buf, 4096, &idx), 0);
    ck_assert_uint_eq(idx, 0);
    /* never inside rdmc_send: the group's thread makes the callback */
    struct completions_at_least one = {&rec, 1};
    ck_assert(th_wait_until(completions_reached, &one, 5000));
    ck_assert_int_eq(atomic_load(&rec.completed), 1);
    ck_assert_int_eq(atomic_load(&rec.refused_destroys), 1);
    /* and the group goes on */
    ck_assert_int_eq(rdmc_group_status(g), 0);
    ck_assert_int_eq(rdmc_send(g, buf, 1, &idx), 0);
    ck_assert_uint_eq(idx, 1);
    struct completions_at_least two = {&rec, 2};
    ck_assert(th_wait_until(completions_reached, &two, 5000));
    ck_assert_int_eq(atomic_load(&rec.completed), 2);
    ck_assert_int_eq(atomic_load(&rec.failures), 0);
    /* the pool cannot go away under the group */
    fab_pool_destroy(pool);
    ck_assert_int_eq(rdmc_send(g, buf, 2, &idx), 0);
    struct completions_at_least three = {&rec, 3};
    ck_assert(th_wait_until(completions_reached, &three, 5000));
    ck_assert_int_eq(atomic_load(&rec.completed), 3);
    rdmc_group_destroy(g);
    fab_pool_destroy(pool);
}
END_TEST

/* Two pools of this process form a group; the sender's pool declares the
 * receiver failed. */
struct side {
    struct fab_pool *pool;
    struct rdmc_member members[2];
    struct rdmc_options opts;
    struct recorder rec;
    struct rdmc_group *g;
    int rc;
};

static void *side_create(void *arg)
{
    struct side *s = arg;
    struct rdmc_callbacks cbs = {.complete = on_complete,
                                 .failure = on_failure};
    s->rc = rdmc_group_create(s->pool, s->members, 2, &s->opts, &cbs, &s->rec,
                              &s->g);
    return NULL;
}

static bool failed(void *arg)
{
    struct recorder *r = arg;
    return atomic_load(&r->refused_destroys) > 0;
}

START_TEST(failed_group_refuses_sends_and_destroy_from_failure)
{
    struct side s[2];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < 2; i++) {
        s[i].pool = tr_pool((uint32_t)i + 1, 0, "tcp");
        ck_assert_ptr_nonnull(s[i].pool);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 2; k++)
            s[i].members[k] = (struct rdmc_member){(uint32_t)k + 1, "127.0.0.1",
                                                   fab_pool_port(s[k].pool)};
        opts_init(&s[i].opts, 9);
        s[i].opts.block_size = 4096;
        s[i].rec.destroy_in_callbacks = true;
        pthread_create(&th[i], NULL, side_create, &s[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(s[0].rc, 0);
    ck_assert_int_eq(s[1].rc, 0);
    static char buf[64];
    ck_assert_int_eq(rdmc_send(s[1].g, buf, sizeof(buf), NULL), -EPERM);
    ck_assert_int_eq(fab_pool_fail_peer(s[0].pool, 2, -EHOSTDOWN), 0);
    ck_assert(th_wait_until(failed, &s[0].rec, 5000));
    ck_assert_int_eq(atomic_load(&s[0].rec.reason), -EHOSTDOWN);
    ck_assert_int_eq(rdmc_group_status(s[0].g), -EHOSTDOWN);
    uint64_t idx = 5;
    ck_assert_int_eq(rdmc_send(s[0].g, buf, sizeof(buf), &idx), -EHOSTDOWN);
    ck_assert_uint_eq(idx, 5);
    ck_assert_uint_eq(rdmc_group_pending(s[0].g), 0);
    for (int i = 0; i < 2; i++)
        rdmc_group_destroy(s[i].g);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(s[i].pool);
}
END_TEST

/* Issue 11's contract, the same cases as every library's contract test:
 * options sizes (short, zeroed, longer), NULL options and out, strerror of
 * every code both signs and of an unrelated errno, getters on NULL, a
 * callback that calls back into the library.  (librdmc has no removable
 * handle a caller could hold stale: a group is the caller's until
 * rdmc_group_destroy.) */
struct calls_back {
    atomic_int completed;
    atomic_int send_rc;
    atomic_uint rank;
};

static void complete_calls_back(void *ctx, struct rdmc_group *g, uint64_t index,
                                void *data, size_t size)
{
    struct calls_back *cb = ctx;
    (void)data;
    (void)size;
    atomic_store(&cb->rank, rdmc_group_rank(g));
    if (index == 0) {
        static char b[4];
        atomic_store(&cb->send_rc, rdmc_send(g, b, sizeof(b), NULL));
    }
    atomic_fetch_add(&cb->completed, 1);
}

START_TEST(contract)
{
    /* strerror: both signs, every errno, an unrelated one is the system's
     * text */
    for (int e = 1; e < 134; e++) {
        ck_assert_str_eq(rdmc_strerror(e), rdmc_strerror(-e));
        if (strerrordesc_np(e))
            ck_assert_msg(strcmp(rdmc_strerror(e), "unknown error") != 0,
                          "errno %d", e);
    }
    ck_assert_str_eq(rdmc_strerror(EDOM), strerrordesc_np(EDOM));
    ck_assert_str_eq(rdmc_strerror(-EDOM), strerrordesc_np(EDOM));
    ck_assert_str_eq(rdmc_strerror(0), rdmc_strerror(-0));

    /* getters on NULL: never valid values */
    ck_assert_uint_eq(rdmc_group_rank(NULL), RDMC_NO_PEER);
    ck_assert_uint_eq(rdmc_group_size(NULL), 0);
    ck_assert_uint_gt(rdmc_group_id(NULL), RDMC_MAX_GROUP_ID);
    ck_assert_int_eq(rdmc_group_status(NULL), -EINVAL);
    ck_assert_uint_eq(rdmc_group_pending(NULL), 0);

    struct fab_pool *pool = tr_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct rdmc_member me = {1, NULL, 0};
    struct rdmc_error err;
    struct rdmc_group *g = SENTINEL;
    struct rdmc_options o;
    /* short and zeroed options refused */
    opts_init(&o, 3);
    o.size = offsetof(struct rdmc_options, group_id);
    ck_assert_int_eq(
        rdmc_group_create_ex(pool, &me, 1, &o, NULL, NULL, &g, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_ptr_null(g);
    memset(&o, 0, sizeof(o));
    g = SENTINEL;
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &o, NULL, NULL, &g),
                     -EINVAL);
    ck_assert_ptr_null(g);
    /* a newer caller's struct: zero extra bytes accepted, set refused */
    struct {
        struct rdmc_options o;
        uint64_t newer[4];
    } big;
    memset(&big, 0, sizeof(big));
    opts_init(&big.o, 3);
    big.o.size = sizeof(big);
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, &big.o, NULL, NULL, &g),
                     0);
    rdmc_group_destroy(g);
    big.newer[1] = 1;
    g = SENTINEL;
    ck_assert_int_eq(
        rdmc_group_create_ex(pool, &me, 1, &big.o, NULL, NULL, &g, &err),
        -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_ptr_null(g);
    /* NULL out */
    ck_assert_int_eq(
        rdmc_group_create_ex(pool, &me, 1, &o, NULL, NULL, NULL, &err),
        -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    /* NULL options: every default; a complete that calls back (a getter
     * and a send) */
    static struct calls_back cb;
    memset(&cb, 0, sizeof(cb));
    atomic_store(&cb.send_rc, 1);
    atomic_store(&cb.rank, 99);
    struct rdmc_callbacks cbs = {.complete = complete_calls_back};
    ck_assert_int_eq(rdmc_group_create(pool, &me, 1, NULL, &cbs, &cb, &g), 0);
    ck_assert_uint_eq(rdmc_group_id(g), 0);
    static char buf[16];
    ck_assert_int_eq(rdmc_send(g, buf, sizeof(buf), NULL), 0);
    ck_assert(TH_WAIT_UNTIL(atomic_load(&cb.completed) == 2, 10000));
    ck_assert_int_eq(atomic_load(&cb.send_rc), 0);
    ck_assert_uint_eq(atomic_load(&cb.rank), 0);
    rdmc_group_destroy(g);
    fab_pool_destroy(pool);
}
END_TEST

Suite *rdmc_misuse_suite(void)
{
    Suite *s = suite_create("rdmc-misuse");
    TCase *tc = tcase_create("misuse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pure_functions_refuse_nonsense);
    tcase_add_test(tc, create_refuses_bad_options);
    tcase_add_test(tc, send_misuse_and_destroy_from_complete);
    tcase_add_test(tc, failed_group_refuses_sends_and_destroy_from_failure);
    tcase_add_test(tc, contract);
    suite_add_tcase(s, tc);
    return s;
}
