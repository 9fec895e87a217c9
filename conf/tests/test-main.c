/* Runner of the conf suite. */
#include "test-conf.h"

#include <stdio.h>
#include <syslog.h>
#include <stdlib.h>
#include <string.h>

void capture_log(void *ctx, int level, const char *module, const char *msg)
{
    struct log_capture *cap = ctx;
    ck_assert_str_eq(module, "conf");
    cap->count++;
    if (level == LOG_WARNING)
        cap->warnings++;
    cap->last_level = level;
    snprintf(cap->last, sizeof(cap->last), "%s", msg);
}

struct conf *new_conf(struct log_capture *cap, bool strict)
{
    struct conf_options opts;
    conf_options_init(&opts);
    if (cap) {
        memset(cap, 0, sizeof(*cap));
        opts.log = capture_log;
        opts.log_ctx = cap;
    }
    opts.strict = strict;
    opts.no_env = true;
    struct conf *c = NULL;
    ck_assert_int_eq(conf_new(&opts, &c, NULL), 0);
    ck_assert_ptr_nonnull(c);
    return c;
}

struct conf *load_text(const char *text, bool strict, struct log_capture *cap,
                       int *rc, struct conf_error *err)
{
    struct conf *c = new_conf(cap, strict);
    *rc = conf_load_buffer(c, "test.cfg", text, strlen(text), err);
    return c;
}

void write_file(const char *dir, const char *name, const char *text, char *buf,
                size_t len)
{
    snprintf(buf, len, "%s/%s", dir, name);
    FILE *f = fopen(buf, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(text, f) >= 0, 1);
    ck_assert_int_eq(fclose(f), 0);
}

void args_init(struct args *a, const char *const *src)
{
    memset(a, 0, sizeof(*a));
    while (src[a->argc]) {
        ck_assert_int_lt(a->argc, 63);
        a->orig[a->argc] = strdup(src[a->argc]);
        ck_assert_ptr_nonnull(a->orig[a->argc]);
        a->argv[a->argc] = a->orig[a->argc];
        a->argc++;
    }
}

void args_fini(struct args *a)
{
    for (int i = 0; a->orig[i]; i++)
        free(a->orig[i]);
}

int main(int argc, char **argv)
{
    static Suite *(*const suites[])(void) = {
        parse_suite,  getters_suite,  args_suite, dump_suite,
        misuse_suite, contract_suite, NULL};
    return th_main(argc, argv, suites, NULL);
}
