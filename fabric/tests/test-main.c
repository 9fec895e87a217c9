/* libfab's Check runner: suites fab-unit, fab-pool (in-process), fab-
 * multiproc and fab-stress (select with CK_RUN_SUITE), plus the children
 * that multi-process tests spawn. */
#include "test-fab.h"

#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

static void quiet_log(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    if (level <= LOG_ERR || getenv("FAB_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), module, msg);
}

struct fab_pool *tf_pool(uint32_t node_id, uint16_t port, const char *provider)
{
    return tf_pool_ordering(node_id, port, provider, FAB_ORDERING_AUTO);
}

struct fab_pool *tf_pool_ordering(uint32_t node_id, uint16_t port,
                                  const char *provider, int ordering)
{
    return tf_pool_at(node_id, "127.0.0.1", port, provider, ordering);
}

struct fab_pool *tf_pool_at(uint32_t node_id, const char *addr, uint16_t port,
                            const char *provider, int ordering)
{
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = node_id;
    o.listen_addr = addr;
    o.port = port;
    o.provider = provider ? provider : "tcp";
    o.fingerprint = 0x5eed;
    o.connect_timeout_ms = 5000;
    o.write_ordering = ordering;
    o.log = quiet_log;
    o.log_level = getenv("FAB_TEST_VERBOSE") ? LOG_DEBUG : LOG_WARNING;
    struct fab_pool *pool = NULL;
    struct fab_error err;
    int rc = fab_pool_create(&o, &pool, &err);
    if (rc)
        fprintf(stderr, "pool %u: %s\n", node_id, err.msg);
    return pool;
}

static void *progress_main(void *arg)
{
    struct tf_progress *p = arg;
    while (!atomic_load(&p->stop))
        fab_pool_progress_wait(p->pool, 50, 20);
    return NULL;
}

void tf_progress_start(struct tf_progress *p, struct fab_pool *pool)
{
    p->pool = pool;
    atomic_store(&p->stop, false);
    pthread_create(&p->thread, NULL, progress_main, p);
}

void tf_progress_stop(struct tf_progress *p)
{
    atomic_store(&p->stop, true);
    fab_pool_wake(p->pool);
    pthread_join(p->thread, NULL);
}

static const struct th_child children[] = {
    {"guard_writer", child_guard_writer},
    {"guard_reader", child_guard_reader},
    {"victim", child_victim},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    static Suite *(*const suites[])(void) = {
        fab_unit_suite,   fab_misuse_suite, fab_pool_suite, fab_multiproc_suite,
        fab_stress_suite, fab_harden_suite, fab_data_suite, NULL};
    return th_main(argc, argv, suites, children);
}
