#include "test-sst.h"
int child_rows(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
int child_guard(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
int child_fail(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
int child_churn(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
int child_part(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
Suite *sst_multiproc_suite(void)
{
    return suite_create("sst-multiproc");
}
Suite *sst_stress_suite(void)
{
    return suite_create("sst-stress");
}
