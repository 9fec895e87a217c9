/* A careless or hostile caller of the public API: every refused call
 * returns its documented error, crashes nothing, leaks nothing and leaves
 * the table usable. */
#include "test-sst.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static struct sst_table *const SENTINEL = (struct sst_table *)(uintptr_t)0x10;

static void silent_log(void *ctx, int level, const char *module,
                       const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    (void)msg;
}

static void opts_init(struct sst_options *o, uint64_t table_id)
{
    ts_options(o, table_id, 5000);
    o->log = silent_log;
}

static const struct sst_field fields[] = {{"a", 8, 2}, {"b", 1, 3}};

/* A table whose only member is this pool. */
static struct sst_table *solo_table(struct fab_pool *pool, uint64_t table_id)
{
    struct sst_member me = {fab_pool_node_id(pool), NULL, 0};
    struct sst_options o;
    opts_init(&o, table_id);
    struct sst_table *t = NULL;
    struct sst_error err;
    int rc = sst_create(pool, &me, 1, 0, fields, 2, &o, &t, &err);
    ck_assert_msg(rc == 0, "solo table: %s", err.msg);
    return t;
}

static void expect_refused(struct fab_pool *pool,
                           const struct sst_member *members, size_t n,
                           uint32_t rank, const struct sst_field *f,
                           size_t n_fields, const struct sst_options *o,
                           int want)
{
    struct sst_table *t = SENTINEL;
    struct sst_error err;
    int rc = sst_create(pool, members, n, rank, f, n_fields, o, &t, &err);
    ck_assert_msg(rc == want, "got %d (%s), want %d", rc, err.msg, want);
    ck_assert_int_eq(err.code, want);
    ck_assert_ptr_null(t);
}

/* th_check_options_sizes callbacks (ctx: the pool): a one-member table
 * with options of table id 2 and a given size. */
static void fill_options(void *opts, size_t size, void *ctx)
{
    (void)ctx;
    opts_init(opts, 2);
    ((struct sst_options *)opts)->size = size;
}

static int try_options(void *opts, void *ctx)
{
    struct fab_pool *pool = ctx;
    struct sst_member me = {fab_pool_node_id(pool), NULL, 0};
    struct sst_table *t = SENTINEL;
    struct sst_error err;
    int rc = sst_create(pool, &me, 1, 0, fields, 2, opts, &t, &err);
    if (rc == 0) {
        sst_destroy(t);
    } else {
        ck_assert_int_eq(err.code, rc);
        ck_assert_ptr_null(t);
    }
    return rc;
}

START_TEST(pure_functions_refuse_nonsense)
{
    const int codes[] = {INT_MIN, INT_MAX, 0, -1, 1, -99999, 99999};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        ck_assert_ptr_nonnull(sst_strerror(codes[i]));
        ck_assert_uint_gt(strlen(sst_strerror(codes[i])), 0);
    }
    ck_assert_str_eq(sst_strerror(EDEADLK), sst_strerror(-EDEADLK));
    sst_options_init(NULL);
    size_t off[2], size = 7;
    ck_assert_int_eq(sst_schema_layout(NULL, 0, off, &size), -EINVAL);
    ck_assert_int_eq(sst_schema_layout(fields, 0, off, &size), -EINVAL);
    ck_assert_int_eq(sst_schema_layout(fields, SST_MAX_FIELDS + 1, NULL, NULL),
                     -EINVAL);
    ck_assert_uint_eq(size, 7); /* untouched by refusals */
    char long_name[80];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    struct sst_field named[] = {{long_name, 8, 1}};
    ck_assert_int_eq(sst_schema_layout(named, 1, NULL, NULL), -EINVAL);
    struct sst_field wide[] = {{"w", 4097, 1}};
    ck_assert_int_eq(sst_schema_layout(wide, 1, NULL, NULL), -EINVAL);
    struct sst_field many[] = {{"m", 8, SIZE_MAX}};
    ck_assert_int_eq(sst_schema_layout(many, 1, NULL, NULL), -ERANGE);
    ck_assert_uint_eq(sst_schema_hash(NULL, 3), 0);
    ck_assert_uint_eq(sst_schema_hash(many, 1), 0);
    ck_assert_int_eq(sst_schema_layout(fields, 2, NULL, NULL), 0);
}
END_TEST

START_TEST(create_refuses_bad_arguments)
{
    struct fab_pool *pool = ts_pool(1, NULL, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    uint16_t port = fab_pool_port(pool);
    struct sst_member me = {1, "127.0.0.1", port};
    struct sst_options o;
    opts_init(&o, 1);
    struct sst_error err;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &o, NULL, &err),
                     -EINVAL);
    expect_refused(NULL, &me, 1, 0, fields, 2, &o, -EINVAL);
    expect_refused(pool, NULL, 1, 0, fields, 2, &o, -EINVAL);
    expect_refused(pool, &me, 0, 0, fields, 2, &o, -EINVAL);
    expect_refused(pool, &me, 1, 1, fields, 2, &o, -EINVAL);
    /* absurdly long member list */
    static struct sst_member many[SST_MAX_MEMBERS + 1];
    for (uint32_t i = 0; i <= SST_MAX_MEMBERS; i++)
        many[i] = (struct sst_member){i + 1, "127.0.0.1", 1};
    expect_refused(pool, many, SST_MAX_MEMBERS + 1, 0, fields, 2, &o, -EINVAL);
    /* our own id missing, listed twice, or another id listed twice */
    struct sst_member others[2] = {{2, "127.0.0.1", 1}, {3, "127.0.0.1", 1}};
    expect_refused(pool, others, 2, 0, fields, 2, &o, -EINVAL);
    struct sst_member twice[2] = {me, me};
    expect_refused(pool, twice, 2, 0, fields, 2, &o, -EINVAL);
    struct sst_member dup[3] = {me, {2, "127.0.0.1", 1}, {2, "127.0.0.1", 1}};
    expect_refused(pool, dup, 3, 0, fields, 2, &o, -EINVAL);
    struct sst_member reserved[2] = {me, {UINT32_MAX, "127.0.0.1", 1}};
    expect_refused(pool, reserved, 2, 0, fields, 2, &o, -EINVAL);
    /* a host that would not fit the copy */
    char long_host[100];
    memset(long_host, 'h', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = 0;
    struct sst_member far[2] = {me, {2, long_host, 1}};
    expect_refused(pool, far, 2, 0, fields, 2, &o, -EINVAL);
    /* schemas: none, empty, absurd counts, bad fields, row too large */
    expect_refused(pool, &me, 1, 0, NULL, 2, &o, -EINVAL);
    expect_refused(pool, &me, 1, 0, fields, 0, &o, -EINVAL);
    expect_refused(pool, &me, 1, 0, fields, SIZE_MAX / 2, &o, -EINVAL);
    struct sst_field zero[] = {{"z", 0, 1}};
    expect_refused(pool, &me, 1, 0, zero, 1, &o, -EINVAL);
    struct sst_field huge[] = {{"h", 4096, SST_MAX_ROW_SIZE / 4096 + 1}};
    expect_refused(pool, &me, 1, 0, huge, 1, &o, -ERANGE);
    struct sst_field unnamed[] = {{NULL, 8, 1}};
    expect_refused(pool, &me, 1, 0, unnamed, 1, &o, -EINVAL);
    /* options: zeroed, sizes that are not this version's, bad periods */
    struct sst_options bad;
    memset(&bad, 0, sizeof(bad));
    expect_refused(pool, &me, 1, 0, fields, 2, &bad, -EINVAL);
    /* (and a newer header's struct: zeroed extra bytes accepted, others
     * refused) */
    const size_t bad_sizes[] = {1, sizeof(size_t), sizeof(o) - 1};
    const struct th_options_case sizes = {sizeof(struct sst_options),
                                          fill_options, try_options, pool};
    th_check_options_sizes(&sizes, bad_sizes,
                           sizeof(bad_sizes) / sizeof(bad_sizes[0]));
    opts_init(&bad, 1);
    bad.heartbeat_ms = 0;
    expect_refused(pool, &me, 1, 0, fields, 2, &bad, -EINVAL);
    opts_init(&bad, 1);
    bad.suspect_timeout_ms = -1;
    expect_refused(pool, &me, 1, 0, fields, 2, &bad, -EINVAL);
    /* A heartbeat as long as the suspicion timeout (or longer) is refused
     * and the message names both; one millisecond less is accepted. */
    const int periods[][2] = {{1000, 1000}, {600, 500}, {150, 150}};
    for (size_t i = 0; i < sizeof(periods) / sizeof(periods[0]); i++) {
        opts_init(&bad, 1);
        bad.heartbeat_ms = periods[i][0];
        bad.suspect_timeout_ms = periods[i][1];
        expect_refused(pool, &me, 1, 0, fields, 2, &bad, -EINVAL);
        struct sst_table *tt = SENTINEL;
        sst_create(pool, &me, 1, 0, fields, 2, &bad, &tt, &err);
        ck_assert_ptr_nonnull(strstr(err.msg, "heartbeat_ms"));
        ck_assert_ptr_nonnull(strstr(err.msg, "suspect_timeout_ms"));
    }
    /* new options: failed ranks out of range, mine, all others; an
     * initial row longer than the row */
    struct sst_member pair[2] = {me, {2, "127.0.0.1", 1}};
    const uint32_t bad_failed[][2] = {{2, 1}, {0, 1}, {1, 1}};
    for (size_t i = 0; i < 3; i++) {
        opts_init(&bad, 1);
        bad.failed_ranks = bad_failed[i];
        bad.n_failed_ranks = i == 2 ? 2 : 1;
        expect_refused(pool, pair, 2, 0, fields, 2, &bad, -EINVAL);
    }
    opts_init(&bad, 1);
    bad.n_failed_ranks = 1; /* NULL list */
    expect_refused(pool, pair, 2, 0, fields, 2, &bad, -EINVAL);
    static const uint8_t row[4096];
    opts_init(&bad, 1);
    bad.initial_row = row;
    bad.initial_row_len = sizeof(row);
    expect_refused(pool, &me, 1, 0, fields, 2, &bad, -ERANGE);
    opts_init(&bad, 1);
    bad.initial_row_len = 8; /* NULL contents */
    expect_refused(pool, &me, 1, 0, fields, 2, &bad, -ERANGE);

    /* after all that: defaults (opts NULL) and a newer, larger struct */
    struct sst_table *t = NULL;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, NULL, &t, &err), 0);
    ck_assert_uint_eq(sst_num_members(t), 1);
    sst_destroy(t);
    /* the 0.1 layout (before the fields added since): accepted, the rest
     * defaults (the garbage after it is not read) */
    opts_init(&bad, 3);
    bad.heartbeat_ms = 10;
    bad.size = offsetof(struct sst_options, on_expelled);
    memset(&bad.on_expelled, 0xa5,
           sizeof(bad) - offsetof(struct sst_options, on_expelled));
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &bad, &t, &err), 0);
    sst_destroy(t);
    /* the layout before tolerate_silent (up to initial_row_len): accepted,
     * tolerate_silent not read */
    opts_init(&bad, 5);
    bad.size = offsetof(struct sst_options, initial_row_len) + sizeof(size_t);
    memset(&bad.tolerate_silent, 0xa5,
           sizeof(bad) - offsetof(struct sst_options, tolerate_silent));
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &bad, &t, &err), 0);
    sst_destroy(t);
    /* one byte short of it: refused */
    opts_init(&bad, 6);
    bad.size =
        offsetof(struct sst_options, initial_row_len) + sizeof(size_t) - 1;
    expect_refused(pool, &me, 1, 0, fields, 2, &bad, -EINVAL);
    /* a heartbeat just shorter than the timeout */
    opts_init(&bad, 4);
    bad.heartbeat_ms = 999;
    bad.suspect_timeout_ms = 1000;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &bad, &t, &err), 0);
    sst_destroy(t);
    fab_pool_destroy(pool);
}
END_TEST

static bool never(struct sst_table *t, void *ctx)
{
    (void)t;
    (void)ctx;
    return false;
}

static bool always(struct sst_table *t, void *ctx)
{
    (void)t;
    (void)ctx;
    return true;
}

static void count(struct sst_table *t, void *ctx)
{
    (void)t;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static bool positive(void *arg)
{
    return atomic_load((atomic_int *)arg) > 0;
}

START_TEST(table_refuses_bad_calls_and_stays_usable)
{
    struct fab_pool *pool = ts_pool(1, NULL, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct sst_table *t = solo_table(pool, 1);
    size_t row = sst_row_size(t);
    ck_assert_uint_eq(row, 24);

    /* accessors */
    ck_assert_uint_eq(sst_num_members(NULL), 0);
    ck_assert_uint_eq(sst_node_id(NULL, 0), UINT32_MAX);
    ck_assert_uint_eq(sst_node_id(t, 1), UINT32_MAX);
    ck_assert_int_eq(sst_rank_of(NULL, 1), -EINVAL);
    ck_assert_int_eq(sst_rank_of(t, 99), -ENOENT);
    ck_assert_ptr_null(sst_row(NULL, 0));
    ck_assert_ptr_null(sst_row(t, 1));
    ck_assert_ptr_null(sst_row(t, UINT32_MAX));
    ck_assert_uint_eq(sst_row_size(NULL), 0);
    ck_assert_uint_eq(sst_field_offset(t, 2), SIZE_MAX);
    ck_assert_uint_eq(sst_field_offset(NULL, 0), SIZE_MAX);
    ck_assert_int_eq(sst_field_index(t, NULL), -EINVAL);
    ck_assert_int_eq(sst_field_index(t, "zz"), -ENOENT);
    ck_assert_int_eq(sst_field_index(t, "b"), 1);
    ck_assert_ptr_null(sst_field(t, 0, 0, 2));
    ck_assert_ptr_null(sst_field(t, 0, 2, 0));
    ck_assert_ptr_null(sst_field(t, 1, 0, 0));
    ck_assert_ptr_null(sst_field(NULL, 0, 0, 0));
    ck_assert_uint_eq(sst_heartbeat(t, 1), 0);
    ck_assert(!sst_suspects(t, 0, 1));
    ck_assert(!sst_suspects(t, 1, 0));
    ck_assert(!sst_suspects(NULL, 0, 0));
    ck_assert_uint_eq(sst_num_live(NULL), 0);
    ck_assert_uint_eq(sst_num_live(t), 1);
    sst_get_stats(t, NULL);
    struct sst_stats st = {0};
    sst_get_stats(NULL, &st);
    sst_notify(NULL);

    /* pushes out of range */
    ck_assert_int_eq(sst_put(NULL, 0, 8), -EINVAL);
    ck_assert_int_eq(sst_put(t, 0, 0), -ERANGE);
    ck_assert_int_eq(sst_put(t, row, 1), -ERANGE);
    ck_assert_int_eq(sst_put(t, 0, row + 1), -ERANGE);
    ck_assert_int_eq(sst_put(t, SIZE_MAX, 2), -ERANGE);
    ck_assert_int_eq(sst_put(t, 8, SIZE_MAX), -ERANGE);
    uint32_t bad_ranks[] = {0, 1};
    uint32_t huge_rank[] = {UINT32_MAX};
    uint32_t mine[] = {0};
    ck_assert_int_eq(sst_put_to(t, NULL, 2, 0, 8), -EINVAL);
    ck_assert_int_eq(sst_put_to(t, bad_ranks, 2, 0, 8), -EINVAL);
    ck_assert_int_eq(sst_put_to(t, huge_rank, 1, 0, 8), -EINVAL);
    ck_assert_int_eq(sst_put_to(t, mine, 1, row - 4, 8), -ERANGE);
    ck_assert_int_eq(sst_put_to(NULL, mine, 1, 0, 8), -EINVAL);
    ck_assert_int_eq(sst_put_wait(NULL, NULL, 0, 0, 8, 10), -EINVAL);
    ck_assert_int_eq(sst_put_wait(t, NULL, 1, 0, 8, 10), -EINVAL);
    ck_assert_int_eq(sst_put_wait(t, huge_rank, 1, 0, 8, 10), -EINVAL);
    ck_assert_int_eq(sst_put_wait(t, NULL, 0, row, 8, 10), -ERANGE);
    ck_assert_int_eq(sst_sync(NULL, 10), -EINVAL);

    /* predicates */
    atomic_int fired = 0;
    struct sst_pred *h = NULL;
    ck_assert_int_eq(
        sst_predicate_add(t, NULL, count, &fired, SST_RECURRENT, &h), -EINVAL);
    ck_assert_int_eq(
        sst_predicate_add(t, always, NULL, &fired, SST_RECURRENT, &h), -EINVAL);
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &fired, (enum sst_pred_kind)7, &h),
        -EINVAL);
    ck_assert_int_eq(sst_predicate_remove(NULL, h), -EINVAL);
    ck_assert_int_eq(sst_predicate_remove(t, NULL), -EINVAL);
    /* removing twice */
    ck_assert_int_eq(
        sst_predicate_add(t, never, count, &fired, SST_RECURRENT, &h), 0);
    ck_assert_int_eq(sst_predicate_remove(t, h), 0);
    ck_assert_int_eq(sst_predicate_remove(t, h), -ENOENT);
    /* a one-time predicate's handle after it fired (the marker registered
     * after it runs once its pass is done with it) */
    atomic_int marker = 0;
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &fired, SST_ONE_TIME, &h), 0);
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &marker, SST_ONE_TIME, NULL), 0);
    ck_assert(th_wait_until(positive, &marker, 5000));
    ck_assert_int_eq(sst_predicate_remove(t, h), -ENOENT);
    ck_assert_int_eq(atomic_load(&fired), 1);
    /* another table's handle */
    struct sst_table *t2 = solo_table(pool, 2);
    atomic_int fired2 = 0;
    struct sst_pred *h2 = NULL;
    ck_assert_int_eq(
        sst_predicate_add(t2, always, count, &fired2, SST_RECURRENT, &h2), 0);
    ck_assert_int_eq(sst_predicate_remove(t, h2), -ENOENT);
    atomic_store(&fired2, 0);
    ck_assert(th_wait_until(positive, &fired2, 5000)); /* still runs */
    ck_assert_int_eq(sst_predicate_remove(t2, h2), 0);
    sst_destroy(t2);

    /* the table still works */
    atomic_store(&fired, 0);
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &fired, SST_RECURRENT, NULL), 0);
    ck_assert(th_wait_until(positive, &fired, 5000));
    ts_store(sst_field(t, 0, 0, 1), 42);
    ck_assert_int_eq(sst_put(t, 0, row), 0);
    ck_assert_int_eq(sst_put_wait(t, NULL, 0, 0, 8, 1000), 0);
    ck_assert_int_eq(sst_sync(t, 5000), 0);
    ck_assert_uint_eq(ts_load(sst_field(t, 0, 0, 1)), 42);
    sst_destroy(t);
    fab_pool_destroy(pool);
}
END_TEST

/* sst_destroy from the polling thread (a trigger, on_suspect) is
 * forbidden: it must be refused, not join itself and free the table under
 * the running trigger. */
struct self_destroy {
    atomic_int calls;
    atomic_int suspects;
};

static void destroy_trigger(struct sst_table *t, void *ctx)
{
    struct self_destroy *d = ctx;
    sst_destroy(t);
    /* the blocking calls are refused here too */
    if (sst_sync(t, 100) == -EDEADLK &&
        sst_put_wait(t, NULL, 0, 0, 8, 100) == -EDEADLK)
        atomic_fetch_add(&d->suspects, 1);
    atomic_fetch_add(&d->calls, 1);
}

START_TEST(destroy_from_trigger_is_refused)
{
    struct fab_pool *pool = ts_pool(1, NULL, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct sst_table *t = solo_table(pool, 1);
    struct self_destroy d = {0};
    ck_assert_int_eq(
        sst_predicate_add(t, always, destroy_trigger, &d, SST_ONE_TIME, NULL),
        0);
    ck_assert(th_wait_until(positive, &d.calls, 5000));
    ck_assert_int_eq(atomic_load(&d.suspects), 1); /* -EDEADLK both */
    /* the table survived and its thread still runs predicates */
    atomic_int fired = 0;
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &fired, SST_ONE_TIME, NULL), 0);
    ck_assert(th_wait_until(positive, &fired, 5000));
    ck_assert_int_eq(sst_sync(t, 5000), 0);
    ck_assert_int_eq(sst_put(t, 0, 8), 0);
    /* the pool cannot go away under the table either */
    fab_pool_destroy(pool);
    atomic_store(&fired, 0);
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &fired, SST_ONE_TIME, NULL), 0);
    ck_assert(th_wait_until(positive, &fired, 5000));
    ck_assert_int_eq(sst_sync(t, 5000), 0);
    sst_destroy(t);
    fab_pool_destroy(pool);
}
END_TEST

/* Two members in this process; the first suspects the second through the
 * pool and tries to destroy its table from on_suspect. */
struct member {
    struct fab_pool *pool;
    struct sst_member members[2];
    uint32_t rank;
    struct self_destroy *d;
    struct sst_table *t;
    int rc;
    struct sst_error err;
};

static void destroy_on_suspect(void *ctx, struct sst_table *t, uint32_t rank,
                               uint32_t node_id, int reason)
{
    (void)rank;
    (void)node_id;
    (void)reason;
    struct self_destroy *d = ctx;
    atomic_fetch_add(&d->suspects, 1);
    sst_destroy(t);
    atomic_fetch_add(&d->calls, 1);
}

static void *member_create(void *arg)
{
    struct member *m = arg;
    struct sst_options o;
    opts_init(&o, 3);
    o.on_suspect = destroy_on_suspect;
    o.suspect_ctx = m->d;
    m->rc = sst_create(m->pool, m->members, 2, m->rank, fields, 2, &o, &m->t,
                       &m->err);
    return NULL;
}

START_TEST(destroy_from_on_suspect_is_refused)
{
    struct self_destroy d[2];
    memset(d, 0, sizeof(d));
    struct member m[2];
    memset(m, 0, sizeof(m));
    for (int i = 0; i < 2; i++) {
        m[i].pool = ts_pool((uint32_t)i + 1, NULL, 0, "tcp");
        ck_assert_ptr_nonnull(m[i].pool);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        for (int k = 0; k < 2; k++)
            m[i].members[k] = (struct sst_member){(uint32_t)k + 1, "127.0.0.1",
                                                  fab_pool_port(m[k].pool)};
        m[i].rank = (uint32_t)i;
        m[i].d = &d[i];
        pthread_create(&th[i], NULL, member_create, &m[i]);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(m[i].rc == 0, "create %d: %s", i, m[i].err.msg);
    ck_assert_int_eq(fab_pool_fail_peer(m[0].pool, 2, -EHOSTDOWN), 0);
    ck_assert(th_wait_until(positive, &d[0].calls, 5000));
    ck_assert_int_eq(atomic_load(&d[0].suspects), 1);
    /* still usable: the suspected member is skipped, not waited for */
    ck_assert(sst_suspects(m[0].t, 0, 1));
    ck_assert_uint_eq(sst_num_live(m[0].t), 1);
    ck_assert_int_eq(sst_put(m[0].t, 0, 8), 0);
    ck_assert_int_eq(sst_sync(m[0].t, 5000), 0);
    for (int i = 0; i < 2; i++)
        sst_destroy(m[i].t);
    for (int i = 0; i < 2; i++)
        fab_pool_destroy(m[i].pool);
}
END_TEST

/* Issue 11's contract, the same cases as every library's contract test:
 * options sizes, NULL options and out, strerror of every code both signs,
 * getters on NULL, the default log line, a stale handle. */
static void log_to_stderr_trigger(struct sst_table *t, void *ctx)
{
    /* Refused and logged at LOG_ERR through the default logger. */
    sst_destroy(t);
    atomic_store((atomic_int *)ctx, 1);
}

START_TEST(contract)
{
    /* strerror: both signs, every errno, never "unknown error" */
    for (int e = 1; e < 134; e++) {
        const char *a = sst_strerror(e), *b = sst_strerror(-e);
        ck_assert_str_eq(a, b);
        if (strerrordesc_np(e))
            ck_assert_msg(strstr(a, "nknown") == NULL, "errno %d: %s", e, a);
    }
    ck_assert_str_eq(sst_strerror(0), "success");
    ck_assert_ptr_nonnull(sst_strerror(INT_MIN));
    /* an errno libsst does not use: the system's text */
    ck_assert_str_eq(sst_strerror(EDOM), strerrordesc_np(EDOM));
    ck_assert_str_eq(sst_strerror(-EDOM), strerrordesc_np(EDOM));
    /* getters on NULL: sentinels never valid */
    ck_assert_uint_eq(sst_my_rank(NULL), SST_NO_RANK);
    ck_assert_uint_eq(sst_num_members(NULL), 0);
    ck_assert_uint_eq(sst_node_id(NULL, 0), UINT32_MAX);
    ck_assert_ptr_null(sst_row(NULL, 0));
    ck_assert_int_eq(sst_suspect(NULL, 0, -EIO), -EINVAL);

    struct fab_pool *pool = ts_pool(1, NULL, 0, "tcp");
    ck_assert_ptr_nonnull(pool);
    struct sst_member me = {1, "127.0.0.1", fab_pool_port(pool)};
    struct sst_error err;
    /* a newer caller's struct: zero extra bytes accepted, set refused */
    struct {
        struct sst_options o;
        uint64_t newer[4];
    } big;
    memset(&big, 0, sizeof(big));
    opts_init(&big.o, 5);
    big.o.size = sizeof(big);
    big.newer[2] = 1;
    struct sst_table *t = SENTINEL;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &big.o, &t, &err),
                     -EINVAL);
    ck_assert_ptr_null(t);
    big.newer[2] = 0;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &big.o, &t, &err),
                     0);
    sst_destroy(t);
    /* short and zeroed options, NULL out */
    struct sst_options small;
    opts_init(&small, 5);
    small.size = offsetof(struct sst_options, table_id);
    t = SENTINEL;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &small, &t, &err),
                     -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_ptr_null(t);
    memset(&small, 0, sizeof(small));
    t = SENTINEL;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &small, &t, &err),
                     -EINVAL);
    ck_assert_ptr_null(t);
    opts_init(&small, 5);
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &small, NULL, &err),
                     -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    /* NULL options: defaults; my_rank then a valid rank */
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, NULL, &t, &err), 0);
    ck_assert_uint_eq(sst_my_rank(t), 0);
    ck_assert_int_eq(sst_suspect(t, 0, -EIO), -EINVAL); /* myself */
    ck_assert_int_eq(sst_suspect(t, 1, -EIO), -EINVAL); /* out of range */

    /* a stale handle whose slot a later registration reuses */
    atomic_int fired = 0;
    struct sst_pred *h1 = NULL, *h2 = NULL;
    ck_assert_int_eq(
        sst_predicate_add(t, never, count, &fired, SST_RECURRENT, &h1), 0);
    ck_assert_int_eq(sst_predicate_remove(t, h1), 0);
    /* let a pass free it, then register another in its place */
    atomic_int marker = 0;
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &marker, SST_ONE_TIME, NULL), 0);
    ck_assert(th_wait_until(positive, &marker, 5000));
    ck_assert_int_eq(
        sst_predicate_add(t, always, count, &fired, SST_RECURRENT, &h2), 0);
    ck_assert_int_eq(sst_predicate_remove(t, h1), -ENOENT);
    atomic_store(&fired, 0);
    ck_assert(th_wait_until(positive, &fired, 5000)); /* h2 still runs */
    ck_assert_int_eq(sst_predicate_remove(t, h2), 0);
    sst_destroy(t);

    /* the default log line: "sst: LEVEL: message" on stderr */
    char path[] = "/tmp/sst-contract-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    int saved = dup(2);
    dup2(fd, 2);
    struct sst_options o;
    sst_options_init(&o);
    o.table_id = 6;
    atomic_int done = 0;
    ck_assert_int_eq(sst_create(pool, &me, 1, 0, fields, 2, &o, &t, &err), 0);
    ck_assert_int_eq(sst_predicate_add(t, always, log_to_stderr_trigger, &done,
                                       SST_ONE_TIME, NULL),
                     0);
    ck_assert(th_wait_until(positive, &done, 5000));
    sst_destroy(t);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[1024] = {0};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    ck_assert_int_gt(n, 0);
    ck_assert_msg(strncmp(buf, "sst: error: ", 12) == 0, "log line: %s", buf);
    fab_pool_destroy(pool);
}
END_TEST

Suite *sst_misuse_suite(void)
{
    Suite *s = suite_create("sst-misuse");
    TCase *tc = tcase_create("misuse");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pure_functions_refuse_nonsense);
    tcase_add_test(tc, create_refuses_bad_arguments);
    tcase_add_test(tc, table_refuses_bad_calls_and_stays_usable);
    tcase_add_test(tc, destroy_from_trigger_is_refused);
    tcase_add_test(tc, destroy_from_on_suspect_is_refused);
    tcase_add_test(tc, contract);
    suite_add_tcase(s, tc);
    return s;
}
