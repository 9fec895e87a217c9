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
TCase *tc_vs_setup(void);
TCase *tc_vs_stress(void);
TCase *tc_vs_faults(void);
TCase *tc_vs_join_leader_dies(void);
TCase *tc_vs_rdmc_stall(void);
TCase *tc_vs_partition(void);
TCase *tc_vs_faults_stress(void);

/* Child processes of the group tests (test-group.c). */
extern const struct th_child group_children[];

/* A conf holding only the defaults plus text (an INI document). */
struct conf *td_conf(const char *text);

/* The suspicion timeout (ms, as text) of the members tests start, unless a
 * case is about the timeout: the default 100 ms is five heartbeats, and
 * with several members' threads (more under ASan) and CI's other tests on
 * two cores a member can wait that long for a CPU and be falsely
 * suspected; the cases are about the failures the test causes. */
#define TD_SUSPECT_MS "500"

/* Storage for td_vs_member_args. */
struct td_vs_args {
    char a[6][128];
};

/* Appends to argv at *k the overrides that make vs_stress member id of a
 * test group: local_id, its ports (port[2 * id] gms, port[2 * id + 1]
 * sst; member 0 is the contact), local and contact address, then the
 * suspicion timeout TD_SUSPECT_MS (an override after it wins).  The
 * strings live in *s. */
void td_vs_member_args(struct td_vs_args *s, int id, const uint16_t *port,
                       const char *ip, const char *contact_ip,
                       const char **argv, int *k);

/* The 0.3 s between two members' starts (the harness rule). */
void td_vs_spacing(void);

#endif
