/* Unit tests: schema layout, options, and tables of several pools inside
 * one process (visibility, predicates, barrier, schema mismatch). */
#include "test-sst.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- schema ----------------------------------------------------------- */

START_TEST(test_layout_aligns)
{
    struct sst_field f[] = {{"flag", 1, 3}, {"counter", 8, 2}, {"half", 2, 1},
                            {"word", 4, 1}, {"blob", 100, 1},  {"odd", 3, 1}};
    size_t off[6], size = 0;
    ck_assert_int_eq(sst_schema_layout(f, 6, off, &size), 0);
    ck_assert_uint_eq(off[0], 0);
    ck_assert_uint_eq(off[1], 8);  /* 3 flags, then 8-aligned */
    ck_assert_uint_eq(off[2], 24); /* after 2 counters */
    ck_assert_uint_eq(off[3], 28);
    ck_assert_uint_eq(off[4], 32); /* 100-byte elements: 8-aligned */
    ck_assert_uint_eq(off[5], 132);
    ck_assert_uint_eq(size, 136);
}
END_TEST

START_TEST(test_layout_rejects)
{
    struct sst_field zero[] = {{"a", 0, 1}};
    struct sst_field nocount[] = {{"a", 8, 0}};
    struct sst_field dup[] = {{"a", 8, 1}, {"a", 4, 1}};
    struct sst_field noname[] = {{"", 8, 1}};
    struct sst_field huge[] = {{"a", 4096, SST_MAX_ROW_SIZE / 4096 + 1}};
    struct sst_field edge[] = {{"a", 4096, SST_MAX_ROW_SIZE / 4096}};
    struct sst_field edge2[] = {{"a", 4096, SST_MAX_ROW_SIZE / 4096},
                                {"b", 1, 1}};
    size_t size = 0;
    ck_assert_int_eq(sst_schema_layout(edge, 1, NULL, &size), 0);
    ck_assert_uint_eq(size, SST_MAX_ROW_SIZE);
    ck_assert_int_eq(sst_schema_layout(edge2, 2, NULL, NULL), -ERANGE);
    ck_assert_int_eq(sst_schema_layout(zero, 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(sst_schema_layout(nocount, 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(sst_schema_layout(dup, 2, NULL, NULL), -EINVAL);
    ck_assert_int_eq(sst_schema_layout(noname, 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(sst_schema_layout(huge, 1, NULL, NULL), -ERANGE);
    ck_assert_int_eq(sst_schema_layout(NULL, 1, NULL, NULL), -EINVAL);
    ck_assert_uint_eq(sst_schema_hash(dup, 2), 0);
}
END_TEST

START_TEST(test_schema_hash)
{
    struct sst_field a[] = {{"x", 8, 1}, {"y", 4, 2}};
    struct sst_field b[] = {{"x", 8, 1}, {"y", 4, 2}};
    struct sst_field renamed[] = {{"x", 8, 1}, {"z", 4, 2}};
    struct sst_field resized[] = {{"x", 8, 1}, {"y", 4, 3}};
    struct sst_field swapped[] = {{"y", 4, 2}, {"x", 8, 1}};
    uint64_t h = sst_schema_hash(a, 2);
    ck_assert_uint_ne(h, 0);
    ck_assert_uint_eq(h, sst_schema_hash(b, 2));
    ck_assert_uint_ne(h, sst_schema_hash(renamed, 2));
    ck_assert_uint_ne(h, sst_schema_hash(resized, 2));
    ck_assert_uint_ne(h, sst_schema_hash(swapped, 2));
}
END_TEST

START_TEST(test_options_and_errors)
{
    struct sst_options o;
    sst_options_init(&o);
    ck_assert_uint_eq(o.size, sizeof(o));
    ck_assert_int_eq(o.heartbeat_ms, 20);
    ck_assert_int_eq(o.suspect_timeout_ms, 1000);
    ck_assert_int_eq(o.spin_us, -1);
    ck_assert_ptr_nonnull(sst_strerror(-EPROTO));
    ck_assert_ptr_nonnull(sst_strerror(-ETIMEDOUT));
    ck_assert_ptr_nonnull(sst_strerror(-12345));
    sst_destroy(NULL);
    struct sst_table *t = NULL;
    struct sst_error err;
    struct sst_field f[] = {{"x", 8, 1}};
    struct sst_member m[] = {{1, "127.0.0.1", 1}};
    ck_assert_int_eq(sst_create(NULL, m, 1, 0, f, 1, NULL, &t, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
}
END_TEST

/* ---- tables in one process -------------------------------------------- */

#define NP 3

struct proc {
    struct fab_pool *pool;
    struct sst_table *table;
    struct sst_member members[NP];
    const struct sst_field *fields;
    size_t n_fields;
    uint32_t rank;
    uint32_t n;
    uint64_t table_id;
    int rc;
    struct sst_error err;
};

static void *create_main(void *arg)
{
    struct proc *p = arg;
    struct sst_options o;
    ts_options(&o, p->table_id, 5000);
    p->rc = sst_create(p->pool, p->members, p->n, p->rank, p->fields,
                       p->n_fields, &o, &p->table, &p->err);
    return NULL;
}

static struct fab_pool *pools[NP];

static void make_pools(void)
{
    for (int i = 0; i < NP; i++) {
        pools[i] = ts_pool((uint32_t)(i + 1), NULL, 0, "tcp");
        ck_assert_ptr_nonnull(pools[i]);
    }
}

static void free_pools(void)
{
    for (int i = 0; i < NP; i++)
        fab_pool_destroy(pools[i]);
}

/* Creates one table over the first n pools, concurrently (sst_create
 * returns after a barrier among all members). */
static void create_tables(struct proc *p, uint32_t n, uint64_t table_id,
                          const struct sst_field *fields, size_t n_fields)
{
    pthread_t th[NP];
    for (uint32_t i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].pool = pools[i];
        p[i].rank = i;
        p[i].n = n;
        p[i].table_id = table_id;
        p[i].fields = fields;
        p[i].n_fields = n_fields;
        for (uint32_t k = 0; k < n; k++) {
            p[i].members[k].node_id = k + 1;
            p[i].members[k].host = "127.0.0.1";
            p[i].members[k].port = fab_pool_port(pools[k]);
        }
        pthread_create(&th[i], NULL, create_main, &p[i]);
    }
    for (uint32_t i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static const struct sst_field basic_fields[] = {
    {"counter", 8, 1}, {"flags", 1, 5}, {"values", 8, 4}};

struct seen {
    struct sst_table *t;
    uint64_t want;
};

static bool all_counters(void *arg)
{
    struct seen *s = arg;
    for (uint32_t r = 0; r < sst_num_members(s->t); r++)
        if (ts_load(sst_field(s->t, r, 0, 0)) != s->want + r)
            return false;
    return true;
}

START_TEST(test_rows_visible_in_process)
{
    make_pools();
    struct proc p[NP];
    create_tables(p, NP, 7, basic_fields, 3);
    for (int i = 0; i < NP; i++) {
        ck_assert_msg(p[i].rc == 0, "create %d: %s", i, p[i].err.msg);
        ck_assert_uint_eq(sst_num_members(p[i].table), NP);
        ck_assert_uint_eq(sst_num_live(p[i].table), NP);
        ck_assert_int_eq(sst_field_index(p[i].table, "values"), 2);
        ck_assert_int_eq(sst_field_index(p[i].table, "nope"), -ENOENT);
    }
    for (int i = 0; i < NP; i++) {
        struct sst_table *t = p[i].table;
        /* A plain local write, then a push of the field. */
        ts_store(sst_field(t, (uint32_t)i, 0, 0), 100 + (uint64_t)i);
        ck_assert_int_eq(sst_put(t, sst_field_offset(t, 0), 8), 0);
    }
    for (int i = 0; i < NP; i++) {
        struct seen s = {p[i].table, 100};
        ck_assert(th_wait_until(all_counters, &s, 5000));
    }
    /* A put to a chosen subset reaches only it. */
    struct sst_table *t0 = p[0].table;
    ts_store(sst_field(t0, 0, 2, 3), 0xabcdef);
    uint32_t only2 = 2;
    ck_assert_int_eq(
        sst_put_wait(t0, &only2, 1, sst_field_offset(t0, 2) + 24, 8, 5000), 0);
    struct sst_table *t2 = p[2].table;
    TH_WAIT_UNTIL(ts_load(sst_field(t2, 0, 2, 3)) == 0xabcdef, 5000);
    ck_assert_uint_eq(ts_load(sst_field(t2, 0, 2, 3)), 0xabcdef);
    ck_assert_uint_eq(ts_load(sst_field(p[1].table, 0, 2, 3)), 0);
    ck_assert_int_eq(sst_put(t0, 0, sst_row_size(t0) + 1), -ERANGE);
    for (int i = 0; i < NP; i++)
        sst_destroy(p[i].table);
    free_pools();
}
END_TEST

static void *sync_main(void *arg)
{
    struct proc *p = arg;
    p->rc = sst_sync(p->table, 10000);
    return NULL;
}

START_TEST(test_sync_barrier)
{
    make_pools();
    struct proc p[NP];
    create_tables(p, NP, 8, basic_fields, 3);
    for (int i = 0; i < NP; i++)
        ck_assert_msg(p[i].rc == 0, "create %d: %s", i, p[i].err.msg);
    /* Alone, a barrier cannot complete. */
    ck_assert_int_eq(sst_sync(p[0].table, 100), -ETIMEDOUT);
    /* The others join (rank 0 already entered generation 2 above, so one
     * barrier each completes for them; rank 0 then enters generation 3,
     * which completes when the others enter again). */
    pthread_t th[NP];
    for (int i = 1; i < NP; i++)
        pthread_create(&th[i], NULL, sync_main, &p[i]);
    for (int i = 1; i < NP; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(p[i].rc, 0);
    }
    for (int i = 0; i < NP; i++)
        pthread_create(&th[i], NULL, sync_main, &p[i]);
    for (int i = 0; i < NP; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(p[i].rc, 0);
    }
    for (int i = 0; i < NP; i++)
        sst_destroy(p[i].table);
    free_pools();
}
END_TEST

START_TEST(test_schema_mismatch)
{
    make_pools();
    struct sst_field other[] = {{"counter", 8, 1}, {"flags", 1, 6}};
    struct proc p[2];
    pthread_t th[2];
    for (uint32_t i = 0; i < 2; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].pool = pools[i];
        p[i].rank = i;
        p[i].n = 2;
        p[i].table_id = 9;
        p[i].fields = i == 0 ? basic_fields : other;
        p[i].n_fields = i == 0 ? 3 : 2;
        for (uint32_t k = 0; k < 2; k++) {
            p[i].members[k].node_id = k + 1;
            p[i].members[k].host = "127.0.0.1";
            p[i].members[k].port = fab_pool_port(pools[k]);
        }
        pthread_create(&th[i], NULL, create_main, &p[i]);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(p[i].rc, -EPROTO);
        ck_assert_int_eq(p[i].err.code, -EPROTO);
        ck_assert_msg(strstr(p[i].err.msg, "schema") != NULL, "%s",
                      p[i].err.msg);
        ck_assert_ptr_null(p[i].table);
    }
    free_pools();
}
END_TEST

/* ---- predicates -------------------------------------------------------- */

struct pred_log {
    struct sst_table *t;
    _Atomic int order[64];
    _Atomic int n;
    _Atomic int one_time_fired;
    _Atomic int recurrent_fired;
    _Atomic int self_removing_fired;
    _Atomic bool go;
    _Atomic bool pass_go; /* go as the first predicate of a pass saw it */
    struct sst_pred *self_handle;
    struct sst_pred *victim_handle;
    _Atomic int victim_fired;
};

static void note(struct pred_log *l, int id)
{
    int i = atomic_fetch_add(&l->n, 1);
    if (i < 64)
        atomic_store(&l->order[i], id);
}

/* The first predicate samples go for its whole pass: go set by the test
 * in the middle of a pass must not let only the later predicates fire. */
static bool go_sample_pred(struct sst_table *t, void *ctx)
{
    (void)t;
    struct pred_log *l = ctx;
    atomic_store(&l->pass_go, atomic_load(&l->go));
    return atomic_load(&l->pass_go);
}

static bool go_pred(struct sst_table *t, void *ctx)
{
    (void)t;
    struct pred_log *l = ctx;
    return atomic_load(&l->pass_go);
}

static void one_time_trig(struct sst_table *t, void *ctx)
{
    (void)t;
    struct pred_log *l = ctx;
    note(l, 1);
    atomic_fetch_add(&l->one_time_fired, 1);
}

static void recurrent_trig(struct sst_table *t, void *ctx)
{
    (void)t;
    struct pred_log *l = ctx;
    if (atomic_fetch_add(&l->recurrent_fired, 1) == 0)
        note(l, 2);
}

/* Removes itself on its third firing, and the victim on its first. */
static void self_remove_trig(struct sst_table *t, void *ctx)
{
    struct pred_log *l = ctx;
    int k = atomic_fetch_add(&l->self_removing_fired, 1);
    if (k == 0) {
        note(l, 3);
        sst_predicate_remove(t, l->victim_handle);
    }
    if (k == 2)
        sst_predicate_remove(t, l->self_handle);
}

static void victim_trig(struct sst_table *t, void *ctx)
{
    (void)t;
    struct pred_log *l = ctx;
    atomic_fetch_add(&l->victim_fired, 1);
}

static bool fired_enough(void *arg)
{
    struct pred_log *l = arg;
    return atomic_load(&l->recurrent_fired) >= 20 &&
           atomic_load(&l->self_removing_fired) >= 3;
}

START_TEST(test_predicates)
{
    make_pools();
    struct proc p[NP];
    create_tables(p, 2, 10, basic_fields, 3);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(p[i].rc == 0, "create %d: %s", i, p[i].err.msg);
    struct pred_log *l = calloc(1, sizeof(*l));
    l->t = p[0].table;
    struct sst_table *t = p[0].table;
    struct sst_pred *h1 = NULL, *h2 = NULL;
    ck_assert_int_eq(sst_predicate_add(t, go_sample_pred, one_time_trig, l,
                                       SST_ONE_TIME, &h1),
                     0);
    ck_assert_int_eq(
        sst_predicate_add(t, go_pred, recurrent_trig, l, SST_RECURRENT, &h2),
        0);
    ck_assert_int_eq(sst_predicate_add(t, go_pred, self_remove_trig, l,
                                       SST_RECURRENT, &l->self_handle),
                     0);
    /* The victim is registered after its remover: in the pass where the
     * remover first fires, the victim must not run. */
    ck_assert_int_eq(sst_predicate_add(t, go_pred, victim_trig, l,
                                       SST_RECURRENT, &l->victim_handle),
                     0);
    ck_assert_int_eq(
        sst_predicate_add(NULL, go_pred, victim_trig, l, SST_RECURRENT, NULL),
        -EINVAL);
    atomic_store(&l->go, true);
    sst_notify(t);
    ck_assert(th_wait_until(fired_enough, l, 5000));
    ck_assert_int_eq(atomic_load(&l->one_time_fired), 1);
    ck_assert_int_eq(atomic_load(&l->self_removing_fired), 3);
    ck_assert_int_eq(atomic_load(&l->victim_fired), 0);
    /* Registration order within the first pass. */
    ck_assert_int_eq(atomic_load(&l->order[0]), 1);
    ck_assert_int_eq(atomic_load(&l->order[1]), 2);
    ck_assert_int_eq(atomic_load(&l->order[2]), 3);
    /* Removal from another thread: no firing after it returns. */
    ck_assert_int_eq(sst_predicate_remove(t, h2), 0);
    int after = atomic_load(&l->recurrent_fired);
    int64_t end = th_now_ms() + 100;
    while (th_now_ms() < end)
        sst_notify(t);
    ck_assert_int_eq(atomic_load(&l->recurrent_fired), after);
    (void)h1;
    struct sst_stats st;
    sst_get_stats(t, &st);
    ck_assert_uint_ge(st.triggers, 24);
    ck_assert_uint_gt(st.heartbeats, 0);
    for (int i = 0; i < 2; i++)
        sst_destroy(p[i].table);
    free(l);
    free_pools();
}
END_TEST

/* A remote push wakes a predicate on the other side; a trigger pushes. */
struct pingpong {
    struct sst_table *t;
    uint32_t me, other;
    uint64_t rounds;
    _Atomic uint64_t done;
};

static bool pp_pred(struct sst_table *t, void *ctx)
{
    struct pingpong *pp = ctx;
    uint64_t mine = ts_load(sst_field(t, pp->me, 0, 0));
    uint64_t theirs = ts_load(sst_field(t, pp->other, 0, 0));
    return theirs > mine ||
           (pp->me == 0 && theirs == mine && mine < pp->rounds);
}

static void pp_trig(struct sst_table *t, void *ctx)
{
    struct pingpong *pp = ctx;
    uint64_t mine = ts_load(sst_field(t, pp->me, 0, 0));
    uint64_t next = mine + 1;
    if (next > pp->rounds) {
        atomic_store(&pp->done, 1);
        return;
    }
    ts_store(sst_field(t, pp->me, 0, 0), next);
    sst_put(t, sst_field_offset(t, 0), 8);
    if (next >= pp->rounds)
        atomic_store(&pp->done, 1);
}

static bool pp_done(void *arg)
{
    struct pingpong *pp = arg;
    return atomic_load(&pp[0].done) && atomic_load(&pp[1].done);
}

START_TEST(test_trigger_pingpong)
{
    make_pools();
    struct proc p[NP];
    create_tables(p, 2, 11, basic_fields, 3);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(p[i].rc == 0, "create %d: %s", i, p[i].err.msg);
    struct pingpong pp[2];
    for (uint32_t i = 0; i < 2; i++) {
        pp[i].t = p[i].table;
        pp[i].me = i;
        pp[i].other = 1 - i;
        pp[i].rounds = 500;
        atomic_store(&pp[i].done, 0);
        ck_assert_int_eq(sst_predicate_add(p[i].table, pp_pred, pp_trig, &pp[i],
                                           SST_RECURRENT, NULL),
                         0);
    }
    ck_assert(th_wait_until(pp_done, pp, 20000));
    for (int i = 0; i < 2; i++)
        sst_destroy(p[i].table);
    free_pools();
}
END_TEST

/* Destroy and recreate tables on the same pools: connections are reused,
 * no thread or fd is left behind. */
START_TEST(test_recreate_no_leaks)
{
    make_pools();
    struct proc p[NP];
    int fds = 0, threads = 0;
    for (int it = 0; it < 15; it++) {
        create_tables(p, NP, 100 + (uint64_t)it, basic_fields, 3);
        for (int i = 0; i < NP; i++)
            ck_assert_msg(p[i].rc == 0, "iteration %d create %d: %s", it, i,
                          p[i].err.msg);
        for (int i = 0; i < NP; i++)
            sst_destroy(p[i].table);
        if (it == 0) {
            fds = th_count_fds();
            threads = th_count_threads();
        }
    }
    /* A pool thread may still be closing a set-up fetch's socket. */
    TH_WAIT_UNTIL(th_count_fds() <= fds && th_count_threads() <= threads, 3000);
    /* No growth (the warm-up count may have caught a transient socket). */
    ck_assert_int_le(th_count_fds(), fds);
    ck_assert_int_le(th_count_threads(), threads);
    for (int i = 0; i < NP; i++) {
        struct fab_pool_stats st;
        fab_pool_get_stats(pools[i], &st);
        ck_assert_uint_eq(st.bootstraps_in + st.bootstraps_out, NP - 1);
        ck_assert_uint_eq(st.failures, 0);
        ck_assert_uint_eq(st.live, NP - 1);
    }
    free_pools();
}
END_TEST

/* A row far over 0.1's 1 MiB cap (3 MiB + 8): created, pushed whole (in
 * pieces), every byte arrives, with initial contents in place at once. */
static const struct sst_field big_fields[] = {{"blob", 4096, 768},
                                              {"tail", 8, 1}};

struct big_seen {
    struct sst_table *t;
    uint32_t from;
};

static bool big_arrived(void *arg)
{
    struct big_seen *s = arg;
    return ts_load(sst_field(s->t, s->from, 1, 0)) == 0x7a11;
}

START_TEST(test_big_row)
{
    make_pools();
    struct proc p[NP];
    create_tables(p, NP, 31, big_fields, 2);
    for (int i = 0; i < NP; i++)
        ck_assert_msg(p[i].rc == 0, "create %d: %s", i, p[i].err.msg);
    struct sst_table *t0 = p[0].table;
    ck_assert_uint_eq(sst_row_size(t0), 768 * 4096 + 8);
    uint8_t *blob = sst_field(t0, 0, 0, 0);
    for (size_t k = 0; k < 768 * 4096; k++)
        blob[k] = (uint8_t)(k * 131 + 7);
    ts_store(sst_field(t0, 0, 1, 0), 0x7a11);
    ck_assert_int_eq(sst_put(t0, 0, sst_row_size(t0)), 0);
    for (int i = 1; i < NP; i++) {
        struct big_seen s = {p[i].table, 0};
        ck_assert(th_wait_until(big_arrived, &s, 20000));
        const uint8_t *got = sst_field(p[i].table, 0, 0, 0);
        for (size_t k = 0; k < 768 * 4096; k++)
            if (got[k] != (uint8_t)(k * 131 + 7))
                ck_abort_msg("table %d: byte %zu differs", i, k);
    }
    for (int i = 0; i < NP; i++)
        sst_destroy(p[i].table);
    free_pools();
}
END_TEST

/* Every way a write landing in pieces can leave an element: the first k
 * bytes new, the rest old (tcp lands a write in address order), and
 * arbitrary byte mixes (other providers): never accepted unless whole. */
START_TEST(test_word_torn_refused)
{
    const uint64_t pairs[][2] = {{0, 1},
                                 {0xff, 0x100},
                                 {41, 42},
                                 {UINT64_MAX, 0},
                                 {0x0101010101010101ull, 0x0202020202020202ull},
                                 {123456789, 987654321}};
    uint64_t v = 7;
    uint8_t zero[SST_WORD_SIZE] = {0};
    ck_assert_int_eq(sst_word_load(zero, &v), 0);
    ck_assert_uint_eq(v, 0); /* a fresh row reads 0 */
    ck_assert_int_eq(sst_word_load(NULL, &v), -EINVAL);
    ck_assert_int_eq(sst_word_load(zero, NULL), -EINVAL);
    sst_word_store(NULL, 1);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
        _Alignas(8) uint8_t old_e[SST_WORD_SIZE], new_e[SST_WORD_SIZE],
            mix_e[SST_WORD_SIZE];
        sst_word_store(old_e, pairs[p][0]);
        sst_word_store(new_e, pairs[p][1]);
        ck_assert_int_eq(sst_word_load(old_e, &v), 0);
        ck_assert_uint_eq(v, pairs[p][0]);
        ck_assert_int_eq(sst_word_load(new_e, &v), 0);
        ck_assert_uint_eq(v, pairs[p][1]);
        for (int k = 1; k < SST_WORD_SIZE; k++) {
            memcpy(mix_e, new_e, (size_t)k);
            memcpy(mix_e + k, old_e + k, (size_t)(SST_WORD_SIZE - k));
            if (memcmp(mix_e, old_e, sizeof(mix_e)) == 0 ||
                memcmp(mix_e, new_e, sizeof(mix_e)) == 0)
                continue; /* bytes that did not change */
            ck_assert_msg(sst_word_load(mix_e, &v) == -EAGAIN,
                          "pair %zu: %d new bytes accepted as %llu", p, k,
                          (unsigned long long)v);
        }
        for (int round = 0; round < 2000; round++) {
            for (int b = 0; b < SST_WORD_SIZE; b++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                mix_e[b] = (seed >> 40) & 1 ? new_e[b] : old_e[b];
            }
            if (memcmp(mix_e, old_e, sizeof(mix_e)) == 0 ||
                memcmp(mix_e, new_e, sizeof(mix_e)) == 0)
                continue;
            ck_assert_int_eq(sst_word_load(mix_e, &v), -EAGAIN);
        }
    }
}
END_TEST

Suite *sst_unit_suite(void)
{
    Suite *s = suite_create("sst-unit");
    TCase *tc = tcase_create("schema");
    tcase_add_test(tc, test_layout_aligns);
    tcase_add_test(tc, test_layout_rejects);
    tcase_add_test(tc, test_schema_hash);
    tcase_add_test(tc, test_options_and_errors);
    tcase_add_test(tc, test_word_torn_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("in-process");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_rows_visible_in_process);
    tcase_add_test(tc, test_sync_barrier);
    tcase_add_test(tc, test_schema_mismatch);
    tcase_add_test(tc, test_predicates);
    tcase_add_test(tc, test_trigger_pingpong);
    tcase_add_test(tc, test_recreate_no_leaks);
    tcase_add_test(tc, test_big_row);
    suite_add_tcase(s, tc);
    return s;
}
