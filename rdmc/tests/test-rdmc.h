/* Shared declarations of librdmc's tests (public API only). */
#ifndef RDMC_TEST_RDMC_H
#define RDMC_TEST_RDMC_H

#include "harness.h"

#include <rdmc/rdmc.h>

Suite *rdmc_unit_suite(void);
Suite *rdmc_local_suite(void);
Suite *rdmc_misuse_suite(void);
Suite *rdmc_multiproc_suite(void);
Suite *rdmc_stress_suite(void);
Suite *rdmc_sockets_suite(void);

int child_member(int argc, char **argv);
void rdmc_add_full_schedules(Suite *s);

/* Deterministic message contents for (group, index, size). */
void tr_fill(uint8_t *buf, size_t size, uint32_t group, uint64_t index);
/* A pool for node_id on 127.0.0.1 (port 0: any), logging errors only. */
struct fab_pool *tr_pool(uint32_t node_id, uint16_t port, const char *provider);
void tr_quiet_log(void *ctx, int level, const char *module, const char *msg);

#endif
