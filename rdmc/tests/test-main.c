/* librdmc's Check runner: suites rdmc-unit (schedules, wire format),
 * rdmc-local (groups inside one process), rdmc-multiproc and rdmc-stress
 * (select with CK_RUN_SUITE), plus the member child that multi-process
 * tests spawn. */
#include "test-rdmc.h"

#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

void tr_quiet_log(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    if (level <= LOG_ERR || getenv("RDMC_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), module, msg);
}

struct fab_pool *tr_pool(uint32_t node_id, uint16_t port, const char *provider)
{
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = node_id;
    o.port = port;
    o.provider = provider ? provider : "tcp";
    o.connect_timeout_ms = 10000;
    o.log = tr_quiet_log;
    o.log_level = getenv("RDMC_TEST_VERBOSE") ? LOG_DEBUG : LOG_WARNING;
    /* RDMC_TEST_CQ_DATA=4: every pool carries 4 bytes of CQ data, as
     * verbs does (the second meson entry of each suite). */
    const char *cq = getenv("RDMC_TEST_CQ_DATA");
    if (cq && *cq)
        o.cq_data_limit = (size_t)strtoul(cq, NULL, 10);
    struct fab_pool *pool = NULL;
    struct fab_error err;
    if (fab_pool_create(&o, &pool, &err))
        fprintf(stderr, "pool %u: %s\n", node_id, err.msg);
    return pool;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tr_fill(uint8_t *buf, size_t size, uint32_t group, uint64_t index)
{
    uint64_t s = ((uint64_t)group << 40) ^ (index * 0x100000001b3ull) ^ size;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t v = splitmix(&s);
        __builtin_memcpy(buf + i, &v, 8);
    }
    uint64_t v = splitmix(&s);
    for (; i < size; i++, v >>= 8)
        buf[i] = (uint8_t)v;
}

int main(int argc, char **argv)
{
    Suite *(*const suites[])(void) = {rdmc_unit_suite,
                                      rdmc_local_suite,
                                      rdmc_misuse_suite,
                                      rdmc_multiproc_suite,
                                      rdmc_stress_suite,
                                      rdmc_sockets_suite,
                                      NULL};
    static const struct th_child children[] = {{"member", child_member},
                                               {NULL, NULL}};
    return th_main(argc, argv, suites, children);
}
