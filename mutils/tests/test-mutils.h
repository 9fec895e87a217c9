/* Suites of the libmutils Check runner. */
#ifndef TEST_MUTILS_H
#define TEST_MUTILS_H

#include <check.h>

Suite *mutils_buf_suite(void);
Suite *mutils_type_suite(void);
Suite *mutils_fingerprint_suite(void);
Suite *mutils_prop_suite(void);
Suite *mutils_misuse_suite(void);
Suite *mutils_contract_suite(void);

#endif
