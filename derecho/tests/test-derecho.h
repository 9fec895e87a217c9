/* Shared declarations of libderecho's Check suites. */
#ifndef DERECHO_TEST_DERECHO_H
#define DERECHO_TEST_DERECHO_H

#include "harness.h"

#include <conf/conf.h>
#include <derecho/derecho.h>
#include <mutils/mutils.h>

#include <check.h>

TCase *tc_layout(void);
TCase *tc_json(void);
TCase *tc_view(void);
TCase *tc_control(void);
TCase *tc_group(void);
TCase *tc_group_stress(void);
TCase *tc_smc(void);
TCase *tc_smc_count(void);
TCase *tc_vs(void);
TCase *tc_vs_unordered(void);
TCase *tc_vs_stress(void);
TCase *tc_vs_faults(void);
TCase *tc_vs_join_leader_dies(void);
TCase *tc_vs_partition(void);
TCase *tc_vs_faults_stress(void);

/* Child processes of the group tests (test-group.c). */
extern const struct th_child group_children[];

/* A conf holding only the defaults plus text (an INI document). */
struct conf *td_conf(const char *text);

#endif
