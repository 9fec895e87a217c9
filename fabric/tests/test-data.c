/* Remote completion data: every holder gets untagged words (no cap),
 * tagged words reach their tag's user only, the 4-byte limit. */
#include "test-fab.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

struct data_user {
    struct fab_user *user;
    struct fab_conn *conn;
    atomic_int calls;
    atomic_uint_fast64_t last;
    atomic_int foreign; /* tagged user: words that are not its own */
    uint32_t tag;
    uint32_t peer_expected;
};

static void on_data(void *ctx, uint32_t node_id, uint64_t data)
{
    struct data_user *d = ctx;
    if (node_id != d->peer_expected)
        atomic_fetch_add(&d->foreign, 1);
    if (d->tag &&
        ((data >> FAB_DATA_PAYLOAD_BITS) & FAB_DATA_TAG_MAX) != d->tag)
        atomic_fetch_add(&d->foreign, 1);
    atomic_store(&d->last, data);
    atomic_fetch_add(&d->calls, 1);
}

static const struct fab_user_callbacks data_cbs = {NULL, on_data};

/* Two pools, a (node 1) writes into b (node 2); b is progressed on a
 * thread.  limit: fab_options.cq_data_limit of both. */
struct rig {
    struct fab_pool *a, *b;
    struct fab_user *ua;
    struct fab_conn *ab;
    struct fab_mr *src, *dst;
    struct fab_mr_desc dst_desc;
    uint8_t sbuf[64], dbuf[64];
    struct tf_progress pb;
};

static struct fab_pool *pool_limit(uint32_t node, size_t limit)
{
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = node;
    o.fingerprint = 0x5eed;
    o.cq_data_limit = limit;
    struct fab_pool *p = NULL;
    struct fab_error err;
    ck_assert_msg(fab_pool_create(&o, &p, &err) == 0, "%s", err.msg);
    return p;
}

static void rig_up(struct rig *r, size_t limit)
{
    memset(r, 0, sizeof(*r));
    r->a = pool_limit(1, limit);
    r->b = pool_limit(2, limit);
    ck_assert_int_eq(fab_user_create(r->a, NULL, NULL, &r->ua), 0);
    struct fab_error err;
    ck_assert_msg(fab_borrow(r->ua, 2, "127.0.0.1", fab_pool_port(r->b), 5000,
                             &r->ab, &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(fab_mr_register(r->a, r->sbuf, sizeof(r->sbuf),
                                     FAB_ACCESS_LOCAL, &r->src),
                     0);
    ck_assert_int_eq(fab_mr_register(r->b, r->dbuf, sizeof(r->dbuf),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &r->dst),
                     0);
    fab_mr_get_desc(r->dst, &r->dst_desc);
    tf_progress_start(&r->pb, r->b);
}

static void rig_down(struct rig *r)
{
    tf_progress_stop(&r->pb);
    fab_release(r->ua, r->ab);
    fab_user_destroy(r->ua);
    fab_mr_destroy(r->src);
    fab_mr_destroy(r->dst);
    fab_pool_destroy(r->a);
    fab_pool_destroy(r->b);
}

/* A user on b holding the connection to node 1. */
static void user_on_b(struct rig *r, struct data_user *d)
{
    memset(d, 0, sizeof(*d));
    d->peer_expected = 1;
    ck_assert_int_eq(fab_user_create(r->b, &data_cbs, d, &d->user), 0);
    ck_assert_int_eq(fab_borrow(d->user, 1, NULL, 0, 5000, &d->conn, NULL), 0);
}

static void user_gone(struct data_user *d)
{
    fab_release(d->user, d->conn);
    fab_user_destroy(d->user);
}

static void write_word(struct rig *r, uint64_t word)
{
    int rc;
    while ((rc = fab_writedata(r->ab, r->src, 0, 8, &r->dst_desc, 0, word, 0,
                               NULL)) == -EAGAIN)
        fab_pool_progress(r->a);
    ck_assert_int_eq(rc, 0);
    fab_pool_progress(r->a);
}

struct calls_at_least {
    struct data_user *d;
    int n;
};

static bool has_calls(void *arg)
{
    struct calls_at_least *c = arg;
    return atomic_load(&c->d->calls) >= c->n;
}

/* b is progressed by its thread: wait until d got n words. */
static bool wait_calls(struct data_user *d, int n, int ms)
{
    struct calls_at_least c = {d, n};
    return th_wait_until(has_calls, &c, ms);
}

#define MANY 40 /* more than the 32 users the first version reached */

START_TEST(every_untagged_holder_gets_the_word)
{
    struct rig r;
    rig_up(&r, 0);
    static struct data_user users[MANY];
    for (int i = 0; i < MANY; i++)
        user_on_b(&r, &users[i]);
    write_word(&r, 0x123456789ull);
    for (int i = 0; i < MANY; i++) {
        ck_assert_msg(wait_calls(&users[i], 1, 5000), "user %d got nothing", i);
        ck_assert_uint_eq(atomic_load(&users[i].last), 0x123456789ull);
    }
    /* exactly once each */
    write_word(&r, 7);
    for (int i = 0; i < MANY; i++)
        ck_assert(wait_calls(&users[i], 2, 5000));
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(atomic_load(&users[i].calls), 2);
    for (int i = 0; i < MANY; i++)
        user_gone(&users[i]);
    rig_down(&r);
}
END_TEST

/* Tagged users get their own words only; untagged holders get all. */
static void tagged_dispatch(size_t limit)
{
    struct rig r;
    rig_up(&r, limit);
    struct fab_pool_info info;
    fab_pool_get_info(r.b, &info);
    ck_assert_uint_eq(info.cq_data_size, limit ? limit : 8);
    static struct data_user tagged[MANY], plain[2];
    for (int i = 0; i < MANY; i++) {
        user_on_b(&r, &tagged[i]);
        ck_assert_int_eq(fab_user_claim_tag(tagged[i].user, FAB_DATA_TAG_ANY,
                                            &tagged[i].tag),
                         0);
        ck_assert_uint_ge(tagged[i].tag, 1);
        ck_assert_uint_le(tagged[i].tag, FAB_DATA_TAG_MAX);
        ck_assert_uint_eq(fab_user_tag(tagged[i].user), tagged[i].tag);
        for (int j = 0; j < i; j++)
            ck_assert_uint_ne(tagged[i].tag, tagged[j].tag);
    }
    for (int i = 0; i < 2; i++)
        user_on_b(&r, &plain[i]);
    for (int i = 0; i < MANY; i++) {
        uint64_t w = fab_data_word(r.a, tagged[i].tag, (uint32_t)i + 1000);
        if (limit == 4)
            ck_assert_uint_lt(w, 1ull << 32);
        write_word(&r, w);
    }
    /* A word of an untagged writer: nobody tagged gets it. */
    write_word(&r, 0x5);
    for (int i = 0; i < 2; i++) {
        ck_assert(wait_calls(&plain[i], MANY + 1, 5000));
        ck_assert_uint_eq(atomic_load(&plain[i].last), 0x5);
    }
    for (int i = 0; i < MANY; i++) {
        ck_assert(wait_calls(&tagged[i], 1, 5000));
        ck_assert_int_eq(atomic_load(&tagged[i].calls), 1);
        ck_assert_int_eq(atomic_load(&tagged[i].foreign), 0);
        ck_assert_uint_eq(atomic_load(&tagged[i].last) & FAB_DATA_PAYLOAD_MAX,
                          (uint64_t)i + 1000);
    }
    /* A destroyed tagged user's words reach nobody tagged; its tag is not
     * the next one handed out. */
    uint32_t old = tagged[0].tag;
    user_gone(&tagged[0]);
    struct data_user fresh;
    user_on_b(&r, &fresh);
    ck_assert_int_eq(
        fab_user_claim_tag(fresh.user, FAB_DATA_TAG_ANY, &fresh.tag), 0);
    ck_assert_uint_ne(fresh.tag, old);
    write_word(&r, fab_data_word(r.a, old, 1));
    ck_assert(wait_calls(&plain[0], MANY + 2, 5000));
    ck_assert_int_eq(atomic_load(&fresh.calls), 0);
    user_gone(&fresh);
    for (int i = 1; i < MANY; i++)
        user_gone(&tagged[i]);
    for (int i = 0; i < 2; i++)
        user_gone(&plain[i]);
    rig_down(&r);
}

START_TEST(tagged_words_reach_their_user_only)
{
    tagged_dispatch(0);
}
END_TEST

START_TEST(tagged_words_in_four_bytes)
{
    tagged_dispatch(4);
}
END_TEST

START_TEST(four_byte_limit_refuses_wide_words)
{
    struct rig r;
    rig_up(&r, 4);
    ck_assert_int_eq(
        fab_writedata(r.ab, r.src, 0, 8, &r.dst_desc, 0, 1ull << 32, 0, NULL),
        -ERANGE);
    ck_assert_int_eq(fab_writedata(r.ab, r.src, 0, 8, &r.dst_desc, 0,
                                   0xffffffffull, 0, NULL),
                     0);
    rig_down(&r);
}
END_TEST

START_TEST(claim_rules)
{
    struct fab_pool *p = pool_limit(1, 0);
    struct fab_user *u, *v;
    ck_assert_int_eq(fab_user_create(p, &data_cbs, NULL, &u), 0);
    ck_assert_int_eq(fab_user_create(p, &data_cbs, NULL, &v), 0);
    uint32_t t = 0;
    ck_assert_int_eq(fab_user_claim_tag(NULL, 1, &t), -EINVAL);
    ck_assert_int_eq(fab_user_claim_tag(u, FAB_DATA_TAG_MAX + 1, &t), -EINVAL);
    ck_assert_uint_eq(fab_user_tag(u), 0);
    ck_assert_uint_eq(fab_user_tag(NULL), 0);
    ck_assert_int_eq(fab_user_claim_tag(u, 77, &t), 0);
    ck_assert_uint_eq(t, 77);
    ck_assert_int_eq(fab_user_claim_tag(u, 78, &t), -EALREADY);
    ck_assert_int_eq(fab_user_claim_tag(v, 77, &t), -EBUSY);
    ck_assert_int_eq(fab_user_claim_tag(v, FAB_DATA_TAG_ANY, NULL), 0);
    ck_assert_uint_ne(fab_user_tag(v), 77);
    ck_assert_uint_eq(fab_data_word(p, 0, 1), 0);
    ck_assert_uint_eq(fab_data_word(p, FAB_DATA_TAG_MAX + 1, 1), 0);
    ck_assert_uint_eq(fab_data_word(NULL, 1, 1), 0);
    ck_assert_uint_eq(fab_data_word(p, 3, 0xfffffff5u),
                      ((uint64_t)FAB_DATA_MARK << 32) | (3u << 20) | 0xffff5u);
    fab_user_destroy(u);
    fab_user_destroy(v);
    /* Every tag taken: -ENOSPC, and one freed is found again. */
    struct fab_user **all = calloc(FAB_DATA_TAG_MAX, sizeof(*all));
    for (uint32_t i = 0; i < FAB_DATA_TAG_MAX; i++) {
        ck_assert_int_eq(fab_user_create(p, NULL, NULL, &all[i]), 0);
        ck_assert_int_eq(fab_user_claim_tag(all[i], FAB_DATA_TAG_ANY, NULL), 0);
    }
    ck_assert_int_eq(fab_user_create(p, NULL, NULL, &u), 0);
    ck_assert_int_eq(fab_user_claim_tag(u, FAB_DATA_TAG_ANY, NULL), -ENOSPC);
    uint32_t freed = fab_user_tag(all[100]);
    fab_user_destroy(all[100]);
    all[100] = NULL;
    ck_assert_int_eq(fab_user_claim_tag(u, FAB_DATA_TAG_ANY, &t), 0);
    ck_assert_uint_eq(t, freed);
    fab_user_destroy(u);
    for (uint32_t i = 0; i < FAB_DATA_TAG_MAX; i++)
        fab_user_destroy(all[i]);
    free(all);
    fab_pool_destroy(p);
}
END_TEST

/* Words from two peers waiting at once: one fab_pool_progress call hands
 * over one connection's and returns (the caller answers before the other
 * connection costs it a provider poll), the next call the other's, a third
 * finds nothing.  The pool's wait fd is an epoll set with one entry per
 * connection's completion queue (docs/fab.md): both ready means both words
 * are on their sockets. */
struct hub_rec {
    atomic_int calls;
    uint32_t nodes[4];
};

static void hub_on_data(void *ctx, uint32_t node_id, uint64_t data)
{
    (void)data;
    struct hub_rec *h = ctx;
    int i = atomic_fetch_add(&h->calls, 1);
    if (i < 4)
        h->nodes[i] = node_id;
}

static bool both_queues_ready(void *arg)
{
    struct fab_pool *hub = arg;
    struct epoll_event evs[8];
    int n = epoll_wait(fab_pool_wait_fd(hub), evs, 8, 0);
    int ready = 0;
    for (int i = 0; i < n; i++)
        ready += evs[i].data.ptr != NULL; /* NULL: the wake-up eventfd */
    return ready == 2;
}

START_TEST(progress_returns_after_one_busy_connection)
{
    struct fab_pool *hub = pool_limit(1, 0);
    struct fab_pool *w[2] = {pool_limit(2, 0), pool_limit(3, 0)};
    struct hub_rec rec;
    memset(&rec, 0, sizeof(rec));
    const struct fab_user_callbacks cbs = {NULL, hub_on_data};
    struct fab_user *uh, *uw[2];
    struct fab_conn *ch[2], *cw[2];
    struct fab_mr *src[2], *dst;
    uint8_t sbuf[2][8] = {{0}}, dbuf[16];
    ck_assert_int_eq(fab_user_create(hub, &cbs, &rec, &uh), 0);
    ck_assert_int_eq(fab_mr_register(hub, dbuf, sizeof(dbuf),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &dst),
                     0);
    struct fab_mr_desc desc;
    fab_mr_get_desc(dst, &desc);
    for (int i = 0; i < 2; i++) {
        struct fab_error err;
        ck_assert_int_eq(fab_user_create(w[i], NULL, NULL, &uw[i]), 0);
        ck_assert_msg(fab_borrow(uw[i], 1, "127.0.0.1", fab_pool_port(hub),
                                 5000, &cw[i], &err) == 0,
                      "%s", err.msg);
        ck_assert_int_eq(
            fab_borrow(uh, (uint32_t)i + 2, NULL, 0, 5000, &ch[i], NULL), 0);
        ck_assert_int_eq(fab_mr_register(w[i], sbuf[i], sizeof(sbuf[i]),
                                         FAB_ACCESS_LOCAL, &src[i]),
                         0);
    }
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(fab_writedata(cw[i], src[i], 0, 8, &desc,
                                       (uint64_t)i * 8, (uint64_t)i + 1, 0,
                                       NULL),
                         0);
    ck_assert_msg(th_wait_until(both_queues_ready, hub, 5000),
                  "the words did not reach both sockets");
    ck_assert_int_eq(fab_pool_progress(hub), 1);
    ck_assert_int_eq(atomic_load(&rec.calls), 1);
    ck_assert_int_eq(fab_pool_progress(hub), 1);
    ck_assert_int_eq(atomic_load(&rec.calls), 2);
    ck_assert_uint_ne(rec.nodes[0], rec.nodes[1]);
    ck_assert_int_eq(fab_pool_progress(hub), 0);
    for (int i = 0; i < 2; i++) {
        fab_release(uh, ch[i]);
        fab_release(uw[i], cw[i]);
        fab_user_destroy(uw[i]);
        fab_mr_destroy(src[i]);
    }
    fab_user_destroy(uh);
    fab_mr_destroy(dst);
    fab_pool_destroy(w[0]);
    fab_pool_destroy(w[1]);
    fab_pool_destroy(hub);
}
END_TEST

/* A caller built against the first struct fab_options (no auth_key, no
 * cq_data_limit)
 * still creates a pool, with the provider's full CQ data. */
START_TEST(first_options_layout_accepted)
{
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = 1;
    o.cq_data_limit = 4; /* beyond the old size: must be ignored */
    o.size = offsetof(struct fab_options, auth_key);
    struct fab_pool *p = NULL;
    struct fab_error err;
    ck_assert_msg(fab_pool_create(&o, &p, &err) == 0, "%s", err.msg);
    struct fab_pool_info info;
    fab_pool_get_info(p, &info);
    ck_assert_uint_eq(info.cq_data_size, 8);
    fab_pool_destroy(p);
    o.size = offsetof(struct fab_options, auth_key) - 1;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
}
END_TEST

Suite *fab_data_suite(void)
{
    Suite *s = suite_create("fab-data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_untagged_holder_gets_the_word);
    tcase_add_test(tc, tagged_words_reach_their_user_only);
    tcase_add_test(tc, tagged_words_in_four_bytes);
    tcase_add_test(tc, four_byte_limit_refuses_wide_words);
    tcase_add_test(tc, claim_rules);
    tcase_add_test(tc, first_options_layout_accepted);
    tcase_add_test(tc, progress_returns_after_one_busy_connection);
    suite_add_tcase(s, tc);
    return s;
}
