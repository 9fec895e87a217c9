/* Shared helpers of libfab's tests (public API only). */
#ifndef FAB_TEST_FAB_H
#define FAB_TEST_FAB_H

#include "harness.h"

#include <fab/fab.h>

#include <pthread.h>
#include <stdatomic.h>

Suite *fab_unit_suite(void);
Suite *fab_misuse_suite(void);
Suite *fab_pool_suite(void);
Suite *fab_multiproc_suite(void);
Suite *fab_stress_suite(void);
Suite *fab_harden_suite(void);
Suite *fab_data_suite(void);

int child_guard_writer(int argc, char **argv);
int child_guard_reader(int argc, char **argv);
int child_victim(int argc, char **argv);

/* A pool for node_id on 127.0.0.1 (port 0: any), logging errors only. */
struct fab_pool *tf_pool(uint32_t node_id, uint16_t port, const char *provider);
/* Same, with options.write_ordering set. */
struct fab_pool *tf_pool_ordering(uint32_t node_id, uint16_t port,
                                  const char *provider, int ordering);
/* Same, listening on addr. */
struct fab_pool *tf_pool_at(uint32_t node_id, const char *addr, uint16_t port,
                            const char *provider, int ordering);

/* Drives a pool's progress on a thread until stopped. */
struct tf_progress {
    struct fab_pool *pool;
    pthread_t thread;
    atomic_bool stop;
};
void tf_progress_start(struct tf_progress *p, struct fab_pool *pool);
void tf_progress_stop(struct tf_progress *p);

#endif
