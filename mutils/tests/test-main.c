/* Check runner for libmutils. */
#include "harness.h"
#include "test-mutils.h"

int main(int argc, char **argv)
{
    Suite *(*const suites[])(void) = {mutils_buf_suite,
                                      mutils_type_suite,
                                      mutils_fingerprint_suite,
                                      mutils_prop_suite,
                                      mutils_misuse_suite,
                                      mutils_contract_suite,
                                      NULL};
    static const struct th_child children[] = {{NULL, NULL}};
    return th_main(argc, argv, suites, children);
}
