/* libderecho's Check runner: suites derecho-unit, derecho-multiproc and
 * derecho-stress (select with CK_RUN_SUITE), and the children that the
 * multi-process tests spawn. */
#include "test-derecho.h"

#include <stdlib.h>
#include <string.h>

struct conf *td_conf(const char *text)
{
    struct conf_options o;
    conf_options_init(&o);
    o.log_level = 0; /* unknown profile keys warn; keep the output clean */
    struct conf *c = NULL;
    ck_assert_int_eq(conf_create(&c, &o), 0);
    struct conf_error err;
    int rc = conf_load_buffer(c, "test.cfg", text, strlen(text), &err);
    ck_assert_msg(rc == 0, "conf: %s", err.msg);
    return c;
}

static Suite *unit_suite(void)
{
    Suite *s = suite_create("derecho-unit");
    suite_add_tcase(s, tc_layout());
    suite_add_tcase(s, tc_json());
    suite_add_tcase(s, tc_view());
    suite_add_tcase(s, tc_control());
    suite_add_tcase(s, tc_smc_count());
    return s;
}

static Suite *multiproc_suite(void)
{
    Suite *s = suite_create("derecho-multiproc");
    suite_add_tcase(s, tc_group());
    suite_add_tcase(s, tc_smc());
    return s;
}

/* vs_stress processes checked by check_vs (the test in
 * applications/meson.build passes their paths). */
static Suite *vs_suite(void)
{
    Suite *s = suite_create("derecho-vs");
    suite_add_tcase(s, tc_vs());
    suite_add_tcase(s, tc_vs_unordered());
    suite_add_tcase(s, tc_vs_setup());
    suite_add_tcase(s, tc_vs_faults());
    suite_add_tcase(s, tc_vs_join_leader_dies());
    suite_add_tcase(s, tc_vs_rdmc_stall());
    suite_add_tcase(s, tc_vs_partition());
    return s;
}

static Suite *vs_stress_suite(void)
{
    Suite *s = suite_create("derecho-vs-stress");
    suite_add_tcase(s, tc_vs_stress());
    suite_add_tcase(s, tc_vs_faults_stress());
    return s;
}

/* The stress tier (meson test --setup stress --suite derecho). */
static Suite *stress_suite(void)
{
    Suite *s = suite_create("derecho-stress");
    suite_add_tcase(s, tc_group_stress());
    return s;
}

int main(int argc, char **argv)
{
    static Suite *(*const suites[])(void) = {unit_suite,      multiproc_suite,
                                             stress_suite,    vs_suite,
                                             vs_stress_suite, NULL};
    return th_main(argc, argv, suites, group_children);
}
