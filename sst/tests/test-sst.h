/* Shared helpers of libsst's tests (public headers only). */
#ifndef SST_TEST_SST_H
#define SST_TEST_SST_H

#include "harness.h"

#include <fab/fab.h>
#include <sst/sst.h>

#include <stdatomic.h>

Suite *sst_unit_suite(void);
Suite *sst_misuse_suite(void);
Suite *sst_multiproc_suite(void);
Suite *sst_stress_suite(void);

int child_rows(int argc, char **argv);
int child_guard(int argc, char **argv);
int child_fail(int argc, char **argv);
int child_churn(int argc, char **argv);
int child_part(int argc, char **argv);
int child_feat(int argc, char **argv);
int child_torn(int argc, char **argv);

/* A pool for node_id on addr (NULL: 127.0.0.1), port (0: any). */
struct fab_pool *ts_pool(uint32_t node_id, const char *addr, uint16_t port,
                         const char *provider);
/* Table options for tests: quiet logging, given timeouts. */
void ts_options(struct sst_options *o, uint64_t table_id, int suspect_ms);
void ts_log(void *ctx, int level, const char *module, const char *msg);

/* Writes/reads a small text file (rendezvous between processes). */
int ts_write_file(const char *dir, const char *name, const char *text);
bool ts_file_exists(const char *dir, const char *name);
int ts_read_file(const char *dir, const char *name, char *buf, size_t cap);

static inline uint64_t ts_load(const void *p)
{
    return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}
static inline void ts_store(void *p, uint64_t v)
{
    __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

#endif
