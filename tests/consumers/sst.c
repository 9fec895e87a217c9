/* Consumer check: libsst through its installed header and pkg-config.  A
 * one-member table: local writes, a put (nobody to push to), a predicate. */
#include <sst/sst.h>

#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static bool is_set(struct sst_table *t, void *ctx)
{
    (void)ctx;
    return *(volatile unsigned long long *)sst_field(t, 0, 0, 0) == 42;
}

static void fired(struct sst_table *t, void *ctx)
{
    (void)t;
    atomic_store((atomic_int *)ctx, 1);
}

int main(void)
{
    struct fab_options fo;
    fab_options_init(&fo);
    fo.node_id = 1;
    struct fab_pool *pool = NULL;
    if (fab_pool_create(&fo, &pool, NULL) != 0)
        return 1;
    struct sst_member me = {1, "127.0.0.1", fab_pool_port(pool)};
    struct sst_field fields[] = {{"counter", 8, 1}};
    struct sst_options o;
    sst_options_init(&o);
    struct sst_table *t = NULL;
    struct sst_error err;
    if (sst_create(pool, &me, 1, 0, fields, 1, &o, &t, &err) != 0) {
        fprintf(stderr, "sst_create: %s\n", err.msg);
        return 2;
    }
    atomic_int done = 0;
    if (sst_predicate_add(t, is_set, fired, &done, SST_ONE_TIME, NULL) != 0)
        return 3;
    *(volatile unsigned long long *)sst_field(t, 0, 0, 0) = 42;
    if (sst_put(t, 0, 8) != 0)
        return 4;
    sst_notify(t);
    for (int i = 0; i < 5000 && !atomic_load(&done); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int rc = atomic_load(&done) && sst_sync(t, 1000) == 0 ? 0 : 5;
    sst_destroy(t);
    fab_pool_destroy(pool);
    return rc;
}
