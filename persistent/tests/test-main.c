/* The libpersistent Check runner. */
#include "test-common.h"

int main(int argc, char **argv)
{
    Suite *(*const suites[])(void) = {
        tc_lookup_suite,   tc_durability_suite, tc_export_suite,
        tc_registry_suite, tc_threads_suite,    tc_crash_suite,
        tc_faults_suite,   tc_misuse_suite,     tc_issue13_suite,
        tc_issue12_suite,  tc_contract_suite,   NULL,
    };
    const struct th_child children[] = {
        {"crash", tc_crash_child},
        {"enospc", tc_enospc_child},
        {NULL, NULL},
    };
    return th_main(argc, argv, suites, children);
}
