/* Suites of the libmutils Check runner. */
#ifndef TEST_MUTILS_H
#define TEST_MUTILS_H

#include <check.h>

Suite *mutils_buf_suite(void);

#endif
