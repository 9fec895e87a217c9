/* libsst's Check runner: suites sst-unit, sst-multiproc and sst-stress
 * (select with CK_RUN_SUITE), and the children multi-process tests spawn. */
#include "test-sst.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

void ts_log(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    if (level <= LOG_ERR || getenv("SST_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s: %s\n", (int)getpid(), module, msg);
}

struct fab_pool *ts_pool(uint32_t node_id, const char *addr, uint16_t port,
                         const char *provider)
{
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = node_id;
    o.port = port;
    o.listen_addr = addr;
    o.provider = provider ? provider : "tcp";
    o.fingerprint = 0x55aa;
    o.connect_timeout_ms = 5000;
    o.log = ts_log;
    o.log_level = getenv("SST_TEST_VERBOSE") ? LOG_DEBUG : LOG_WARNING;
    struct fab_pool *pool = NULL;
    struct fab_error err;
    if (fab_pool_create(&o, &pool, &err) != 0)
        fprintf(stderr, "pool %u: %s\n", node_id, err.msg);
    return pool;
}

void ts_options(struct sst_options *o, uint64_t table_id, int suspect_ms)
{
    sst_options_init(o);
    o->table_id = table_id;
    o->suspect_timeout_ms = suspect_ms;
    o->setup_timeout_ms = 20000;
    o->log = ts_log;
    o->log_level = getenv("SST_TEST_VERBOSE") ? LOG_DEBUG : LOG_WARNING;
}

int ts_write_file(const char *dir, const char *name, const char *text)
{
    char path[512], tmp[520];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    fputs(text, f);
    fclose(f);
    return rename(tmp, path) == 0 ? 0 : -errno; /* appears whole */
}

bool ts_file_exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

int ts_read_file(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -errno;
    buf[n] = 0;
    return (int)n;
}

int main(int argc, char **argv)
{
    static Suite *(*const suites[])(void) = {sst_unit_suite, sst_misuse_suite,
                                             sst_multiproc_suite,
                                             sst_stress_suite, NULL};
    static const struct th_child children[] = {
        {"rows", child_rows}, {"guard", child_guard},
        {"fail", child_fail}, {"churn", child_churn},
        {"part", child_part}, {"feat", child_feat},
        {"torn", child_torn}, {NULL, NULL}};
    return th_main(argc, argv, suites, children);
}
