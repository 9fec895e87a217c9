/* Helpers shared by the areas of the libpersistent suite. */
#ifndef PERSISTENT_TEST_COMMON_H
#define PERSISTENT_TEST_COMMON_H

#include "harness.h"

#include <persistent/persistent.h>

/* A fresh directory under the run's temporary root (ck_assert on error). */
void tc_tmpdir(char *buf, size_t len);

/* Options for dir with logging captured into a per-process buffer
 * (tc_last_log()) instead of stderr. */
void tc_options(struct persistent_options *opts, const char *dir);

/* Opens name in dir with tc_options (asserting success). */
struct persistent_log *tc_open(const char *dir, const char *name);

/* The last message logged through tc_options' callback ("" when none). */
const char *tc_last_log(void);

/* Deterministic payload of an entry: size and bytes depend on (seed, v). */
size_t tc_payload_size(uint64_t seed, int64_t v, size_t max);
void tc_payload(uint64_t seed, int64_t v, uint8_t *buf, size_t size);
/* True when entry e holds exactly tc_payload(seed, e->version, ...). */
bool tc_payload_ok(uint64_t seed, const struct persistent_entry *e, size_t max);

/* Appends versions first..last (step 1) with timestamp v*10 and payloads
 * from tc_payload(seed, v, size <= max). */
void tc_fill(struct persistent_log *log, uint64_t seed, int64_t first,
             int64_t last, size_t max);

/* Reads/writes a file whole or a byte of it (ck_assert on errors). */
uint64_t tc_file_size(const char *path);
void tc_flip_bit(const char *path, uint64_t offset, int bit);
void tc_truncate_file(const char *path, uint64_t size);

Suite *tc_lookup_suite(void);
Suite *tc_durability_suite(void);
Suite *tc_export_suite(void);
Suite *tc_registry_suite(void);
Suite *tc_threads_suite(void);
Suite *tc_crash_suite(void);
Suite *tc_faults_suite(void);
Suite *tc_misuse_suite(void);
Suite *tc_issue13_suite(void);
Suite *tc_issue12_suite(void);
Suite *tc_contract_suite(void);

int tc_crash_child(int argc, char **argv);
int tc_enospc_child(int argc, char **argv);

#endif
