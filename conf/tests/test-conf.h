/* Shared helpers of the conf test suite. */
#ifndef DERECHO_TEST_CONF_H
#define DERECHO_TEST_CONF_H

#include "harness.h"

#include <conf/conf.h>

/* What the log callback saw. */
struct log_capture {
    int count;
    int warnings;
    int last_level;
    char last[2048];
};

void capture_log(void *ctx, int level, const char *module, const char *msg);

/* Creates a conf logging into cap (may be NULL), strict or not. */
struct conf *new_conf(struct log_capture *cap, bool strict);

/* Loads text (NUL-terminated) as file "test.cfg" into a new conf.  Returns
 * the conf (also on failure, so state can be checked) and the result. */
struct conf *load_text(const char *text, bool strict, struct log_capture *cap,
                       int *rc, struct conf_error *err);

/* Writes text into dir/name; returns the path in buf. */
void write_file(const char *dir, const char *name, const char *text, char *buf,
                size_t len);

/* A writable argv built from string literals. */
struct args {
    int argc;
    char *argv[64];
    char *orig[64];
};
/* src is NULL-terminated; args_fini frees the copies. */
void args_init(struct args *a, const char *const *src);
void args_fini(struct args *a);

Suite *parse_suite(void);
Suite *getters_suite(void);
Suite *args_suite(void);
Suite *dump_suite(void);
Suite *misuse_suite(void);
Suite *contract_suite(void);

#endif
