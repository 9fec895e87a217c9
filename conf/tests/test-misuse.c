/* The public API used the way a careless or hostile client would: NULL
 * objects and outputs, meaningless counts and ranges, error structs that
 * were never filled by the library, argv arrays without a terminator,
 * options structs of an older (shorter) layout, callbacks that call back.
 * Each must give a clear error and lose nothing; the sanitizer build turns
 * any stray read or write here into a failure. */
#include "test-conf.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *str(struct conf *c, const char *section, const char *key)
{
    const char *s = NULL;
    ck_assert_int_eq(conf_get_string(c, section, key, &s), 0);
    return s;
}

START_TEST(null_objects)
{
    struct conf_error err;
    conf_options_init(NULL);
    conf_destroy(NULL);
    ck_assert_int_eq(conf_create(NULL, NULL), -EINVAL);
    memset(&err, 0, sizeof(err));
    ck_assert_int_eq(conf_load_buffer(NULL, "x", "", 0, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "invalid argument"));
    ck_assert_int_eq(conf_load_buffer(NULL, "x", "", 0, NULL), -EINVAL);
    ck_assert_int_eq(conf_load_file(NULL, "derecho.cfg", &err), -EINVAL);
    ck_assert_int_eq(conf_load_default(NULL, &err), -EINVAL);
    int argc = 1;
    char *argv[] = {(char *)"app", NULL};
    ck_assert_int_eq(conf_parse_args(NULL, &argc, argv, &err), -EINVAL);
    ck_assert_int_eq(argc, 1);
    ck_assert_int_eq(conf_open(NULL, NULL, NULL, NULL, &err), -EINVAL);
    char *text = (char *)"untouched";
    size_t len = 3;
    ck_assert_int_eq(conf_dump(NULL, &text, &len), -EINVAL);
    ck_assert_str_eq(text, "untouched");
    ck_assert_uint_eq(len, 3);

    const char *s = "untouched";
    int64_t i = 1;
    uint64_t u = 2;
    double d = 3;
    bool b = true;
    int idx = 4;
    char **items = NULL;
    size_t count = 5;
    enum conf_source src = CONF_SOURCE_FILE;
    ck_assert_int_eq(conf_get_string(NULL, "DERECHO", "local_ip", &s), -EINVAL);
    ck_assert_int_eq(conf_get_i64(NULL, "DERECHO", "local_id", &i), -EINVAL);
    ck_assert_int_eq(conf_get_u64(NULL, "DERECHO", "local_id", &u), -EINVAL);
    ck_assert_int_eq(conf_get_i64_range(NULL, "DERECHO", "local_id", 0, 9, &i),
                     -EINVAL);
    ck_assert_int_eq(conf_get_u64_range(NULL, "DERECHO", "local_id", 0, 9, &u),
                     -EINVAL);
    ck_assert_int_eq(conf_get_double(NULL, "DERECHO", "local_id", &d), -EINVAL);
    ck_assert_int_eq(conf_get_bool(NULL, "PERS", "reset", &b), -EINVAL);
    ck_assert_int_eq(conf_get_size(NULL, "DERECHO", "block_size", &u), -EINVAL);
    ck_assert_int_eq(
        conf_get_enum(NULL, "LOGGER", "default_log_level", &idx, &s), -EINVAL);
    ck_assert_int_eq(
        conf_get_list(NULL, "DERECHO", "restart_leaders", &items, &count),
        -EINVAL);
    ck_assert_int_eq(
        conf_get_source(NULL, "DERECHO", "local_id", &src, &s, &idx), -EINVAL);
    ck_assert_str_eq(s, "untouched");
    ck_assert(i == 1 && u == 2 && d == 3 && b && idx == 4 && !items &&
              count == 5 && src == CONF_SOURCE_FILE);
    ck_assert_int_eq(conf_error_format(NULL, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(null_outputs_and_names)
{
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    ck_assert_int_eq(conf_get_string(c, "DERECHO", "local_ip", NULL), -EINVAL);
    ck_assert_int_eq(conf_get_i64(c, "DERECHO", "local_id", NULL), -EINVAL);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", NULL), -EINVAL);
    ck_assert_int_eq(conf_get_i64_range(c, "DERECHO", "local_id", 0, 9, NULL),
                     -EINVAL);
    ck_assert_int_eq(conf_get_u64_range(c, "DERECHO", "local_id", 0, 9, NULL),
                     -EINVAL);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "local_id", NULL), -EINVAL);
    ck_assert_int_eq(conf_get_bool(c, "PERS", "reset", NULL), -EINVAL);
    ck_assert_int_eq(conf_get_size(c, "DERECHO", "block_size", NULL), -EINVAL);
    size_t count = 7;
    char **items = NULL;
    ck_assert_int_eq(
        conf_get_list(c, "DERECHO", "restart_leaders", NULL, &count), -EINVAL);
    ck_assert_int_eq(
        conf_get_list(c, "DERECHO", "restart_leaders", &items, NULL), -EINVAL);
    ck_assert_ptr_null(items);
    ck_assert_uint_eq(count, 7);
    const char *s = NULL;
    ck_assert_int_eq(conf_get_string(c, NULL, "local_ip", &s), -EINVAL);
    ck_assert_int_eq(conf_get_string(c, "DERECHO", NULL, &s), -EINVAL);
    ck_assert_int_eq(conf_dump(c, NULL, NULL), -EINVAL);
    /* Optional outputs really are optional. */
    ck_assert_int_eq(
        conf_get_enum(c, "LOGGER", "default_log_level", NULL, NULL), 0);
    ck_assert_int_eq(
        conf_get_source(c, "DERECHO", "local_id", NULL, NULL, NULL), 0);

    /* A buffer needs a name (it becomes the source of every key), and
     * text unless it is empty. */
    static const char text[] = "[DERECHO]\nlocal_id = 3\n";
    ck_assert_int_eq(conf_load_buffer(c, NULL, text, strlen(text), &err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "name"));
    ck_assert_int_eq(conf_load_buffer(c, "t.cfg", NULL, 10, &err), -EINVAL);
    ck_assert_int_eq(conf_load_file(c, NULL, &err), -EINVAL);
    ck_assert_int_eq(conf_load_buffer(c, "empty.cfg", NULL, 0, &err), 0);
    enum conf_source src;
    ck_assert_int_eq(
        conf_get_source(c, "DERECHO", "local_id", &src, NULL, NULL), 0);
    ck_assert_int_eq(src, CONF_SOURCE_DEFAULT);
    conf_destroy(c);
}
END_TEST

START_TEST(range_with_min_above_max)
{
    struct conf *c = new_conf(NULL, false);
    int64_t i = 77;
    uint64_t u = 78;
    ck_assert_int_eq(conf_get_i64_range(c, "DERECHO", "local_id", 5, 4, &i),
                     -EINVAL);
    ck_assert_int_eq(conf_get_u64_range(c, "DERECHO", "local_id", 5, 4, &u),
                     -EINVAL);
    ck_assert_int_eq(i, 77);
    ck_assert_uint_eq(u, 78);
    /* An empty range of one value is fine. */
    ck_assert_int_eq(conf_get_u64_range(c, "DERECHO", "local_id", 0, 0, &u), 0);
    ck_assert_uint_eq(u, 0);
    conf_destroy(c);
}
END_TEST

/* An error struct the caller filled itself, with no NUL anywhere: the
 * formatter reads each field only up to the end of its array.  On the heap
 * so that the sanitizer sees any byte read past it. */
START_TEST(error_format_unterminated_fields)
{
    struct conf_error *e = malloc(sizeof(*e));
    ck_assert_ptr_nonnull(e);
    memset(e, 'A', sizeof(*e));
    e->line = 12;
    e->other_line = 0;
    char buf[4096];
    int n = conf_error_format(e, buf, sizeof(buf));
    ck_assert_int_eq(n, (int)(strlen("command line: ") + sizeof(e->arg) + 2 +
                              sizeof(e->msg)));
    ck_assert_int_eq((int)strlen(buf), n);
    e->arg[0] = '\0';
    n = conf_error_format(e, buf, sizeof(buf));
    ck_assert_int_eq((int)strlen(buf), n);
    ck_assert_ptr_nonnull(strstr(buf, "A:12: A"));
    ck_assert_int_eq(n, (int)(sizeof(e->file) + 3 + 2 + sizeof(e->section) + 1 +
                              sizeof(e->key) + 2 + sizeof(e->msg)));
    /* Measuring with no buffer, and a buffer without room. */
    ck_assert_int_eq(conf_error_format(e, NULL, 0), n);
    ck_assert_int_eq(conf_error_format(e, NULL, 10), -EINVAL);
    buf[0] = 'x';
    ck_assert_int_eq(conf_error_format(e, buf, 1), n);
    ck_assert_int_eq(buf[0], '\0');
    free(e);
}
END_TEST

/* The usual shortcut of a careless caller: format an error into its own
 * msg field.  The line must come out as if formatted anywhere else. */
START_TEST(error_format_into_itself)
{
    int rc;
    struct conf_error err;
    struct conf *c =
        load_text("[RDMA]\ntx_depth = lots\n", false, NULL, &rc, &err);
    ck_assert_int_eq(rc, -EINVAL);
    char expect[2048];
    int n = conf_error_format(&err, expect, sizeof(expect));
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(conf_error_format(&err, err.msg, sizeof(err.msg)), n);
    ck_assert_str_eq(err.msg, expect);
    /* And a command-line error into its arg. */
    struct args a;
    args_init(&a, (const char *const[]){"app", "--RDMA/tx_depth=x", NULL});
    int argc = a.argc;
    ck_assert_int_eq(conf_parse_args(c, &argc, a.argv, &err), -EINVAL);
    n = conf_error_format(&err, expect, sizeof(expect));
    ck_assert_int_eq(conf_error_format(&err, err.arg, sizeof(err.arg)), n);
    ck_assert_str_eq(err.arg, expect);
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

/* Loading again the file the last error named, with the same error
 * struct: its name must survive being both input and output. */
START_TEST(load_the_file_an_error_named)
{
    char dir[512], path[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    write_file(dir, "bad.cfg", "[RDMA]\ntx_depth = x\n", path, sizeof(path));
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    ck_assert_int_eq(conf_load_file(c, path, &err), -EINVAL);
    ck_assert_str_eq(err.file, path);
    ck_assert_int_eq(conf_load_file(c, err.file, &err), -EINVAL);
    ck_assert_str_eq(err.file, path);
    ck_assert_int_eq(err.line, 2);
    ck_assert_str_eq(err.key, "tx_depth");
    unlink(path);
    ck_assert_int_eq(conf_load_file(c, err.file, &err), -ENOENT);
    ck_assert_str_eq(err.file, path);
    conf_destroy(c);
}
END_TEST

START_TEST(parse_args_meaningless_vectors)
{
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    char *argv[] = {(char *)"app", (char *)"--DERECHO/local_id=4", NULL};
    int argc = -1;
    ck_assert_int_eq(conf_parse_args(c, &argc, argv, &err), -EINVAL);
    ck_assert_int_eq(argc, -1);
    argc = INT_MIN;
    ck_assert_int_eq(conf_parse_args(c, &argc, argv, &err), -EINVAL);
    ck_assert_int_eq(conf_parse_args(c, NULL, argv, &err), -EINVAL);
    argc = 2;
    ck_assert_int_eq(conf_parse_args(c, &argc, NULL, &err), -EINVAL);
    ck_assert_int_eq(argc, 2);
    /* argc larger than the vector: the NULL terminator comes early. */
    char *short_argv[] = {(char *)"app", NULL, (char *)"--DERECHO/local_id=4",
                          NULL};
    argc = 3;
    ck_assert_int_eq(conf_parse_args(c, &argc, short_argv, &err), -EINVAL);
    ck_assert_int_eq(argc, 3);
    ck_assert_str_eq(short_argv[2], "--DERECHO/local_id=4");
    /* Nothing was applied by any of these. */
    uint64_t id;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", &id), 0);
    ck_assert_uint_eq(id, 0);
    /* argc 0 (and even no argv then) is nothing to do. */
    argc = 0;
    ck_assert_int_eq(conf_parse_args(c, &argc, NULL, &err), 0);
    ck_assert_int_eq(argc, 0);
    argc = 2;
    ck_assert_int_eq(conf_parse_args(c, &argc, argv, &err), 0);
    ck_assert_int_eq(argc, 1);
    ck_assert_ptr_null(argv[1]);
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", &id), 0);
    ck_assert_uint_eq(id, 4);
    conf_destroy(c);
}
END_TEST

/* "--SECTION/key value" must not take the next override as its value:
 * that override would be lost without a word. */
START_TEST(parse_args_override_is_no_value)
{
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    struct args a;
    args_init(&a, (const char *const[]){"app", "--DERECHO/contact_ip",
                                        "--DERECHO/gms_port=5", "rest", NULL});
    int argc = a.argc;
    ck_assert_int_eq(conf_parse_args(c, &argc, a.argv, &err), -EINVAL);
    ck_assert_str_eq(err.arg, "--DERECHO/contact_ip");
    ck_assert_ptr_nonnull(strstr(err.msg, "missing value"));
    ck_assert_int_eq(argc, a.argc);
    for (int i = 0; i < a.argc; i++)
        ck_assert_ptr_eq(a.argv[i], a.orig[i]);
    ck_assert_str_eq(str(c, "DERECHO", "contact_ip"), "127.0.0.1");
    uint64_t port;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "gms_port", &port), 0);
    ck_assert_uint_eq(port, 23580);
    args_fini(&a);
    /* A value that merely starts with "--" is still a value. */
    args_init(&a,
              (const char *const[]){"app", "--PERS/file_path", "--x", NULL});
    argc = a.argc;
    ck_assert_int_eq(conf_parse_args(c, &argc, a.argv, &err), 0);
    ck_assert_int_eq(argc, 1);
    ck_assert_str_eq(str(c, "PERS", "file_path"), "--x");
    args_fini(&a);
    conf_destroy(c);
}
END_TEST

/* An argv of exactly argc slots, without the NULL that main()'s has: when
 * nothing is taken out, nothing is written (not even argv[argc]). */
START_TEST(parse_args_vector_without_terminator)
{
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    char **argv = malloc(2 * sizeof(*argv));
    ck_assert_ptr_nonnull(argv);
    argv[0] = (char *)"app";
    argv[1] = (char *)"positional";
    int argc = 2;
    ck_assert_int_eq(conf_parse_args(c, &argc, argv, &err), 0);
    ck_assert_int_eq(argc, 2);
    ck_assert_str_eq(argv[1], "positional");
    argv[1] = (char *)"--DERECHO/local_id=9";
    ck_assert_int_eq(conf_parse_args(c, &argc, argv, &err), 0);
    ck_assert_int_eq(argc, 1);
    ck_assert_ptr_null(argv[1]);
    free(argv);
    conf_destroy(c);
}
END_TEST

/* A heap copy of the first full->size bytes of *full only, as a caller
 * built against an older, shorter struct conf_options would pass. */
static struct conf_options *short_copy(const struct conf_options *full)
{
    void *raw = malloc(full->size);
    ck_assert_ptr_nonnull(raw);
    memcpy(raw, full, full->size);
    return raw;
}

/* An options struct of an older, shorter layout: what it does not cover
 * is never read, what it covers is honoured. */
START_TEST(open_with_short_options)
{
    char dir[512];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_int_eq(chdir(dir), 0);
    unsetenv(CONF_FILE_ENV);
    FILE *f = fopen(CONF_DEFAULT_FILE, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[DERECHO]\nlocal_id = 6\nbogus = 1\n", f);
    ck_assert_int_eq(fclose(f), 0);

    struct conf_options full;
    conf_options_init(&full);
    full.strict = true;
    full.size = offsetof(struct conf_options, file);
    struct conf_options *opts = short_copy(&full);
    struct conf *c = NULL;
    struct conf_error err;
    /* strict is covered: the unknown key of ./derecho.cfg is an error. */
    ck_assert_int_eq(conf_open(&c, opts, NULL, NULL, &err), -EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err.key, "bogus");
    free(opts);
    full.strict = false;
    full.log = capture_log;
    struct log_capture cap = {0};
    full.log_ctx = &cap;
    opts = short_copy(&full);
    ck_assert_int_eq(conf_open(&c, opts, NULL, NULL, &err), 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(cap.warnings, 1);
    uint64_t id;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "local_id", &id), 0);
    ck_assert_uint_eq(id, 6);
    conf_destroy(c);
    free(opts);
    /* Too short to hold even the log callback: refused. */
    full.size = offsetof(struct conf_options, log);
    opts = short_copy(&full);
    c = (struct conf *)&full;
    ck_assert_int_eq(conf_open(&c, opts, NULL, NULL, &err), -EINVAL);
    ck_assert_ptr_null(c);
    free(opts);
    /* A newer, longer layout: accepted when the extra bytes are zero (the
     * newer fields at their defaults), refused when they ask for something
     * this version cannot do. */
    struct {
        struct conf_options o;
        char future[64];
    } longer;
    memset(&longer, 0x5a, sizeof(longer));
    conf_options_init(&longer.o);
    longer.o.size = sizeof(longer);
    longer.o.no_env = true;
    ck_assert_int_eq(conf_create(&c, &longer.o), -EINVAL);
    ck_assert_ptr_null(c);
    memset(longer.future, 0, sizeof(longer.future));
    ck_assert_int_eq(conf_create(&c, &longer.o), 0);
    conf_destroy(c);
}
END_TEST

/* The log callback may use the object that is logging: read it, dump it,
 * even load more into it. */
struct reentry {
    struct conf *c;
    int calls;
    char seen[64];
};

static void reentrant_log(void *ctx, int level, const char *module,
                          const char *msg)
{
    (void)level;
    (void)module;
    (void)msg;
    struct reentry *re = ctx;
    if (re->calls++ > 0)
        return;
    const char *s;
    ck_assert_int_eq(conf_get_string(re->c, "RDMA", "provider", &s), 0);
    snprintf(re->seen, sizeof(re->seen), "%s", s);
    char *dump;
    ck_assert_int_eq(conf_dump(re->c, &dump, NULL), 0);
    free(dump);
    static const char more[] = "[PERS]\nreset = true\n";
    ck_assert_int_eq(
        conf_load_buffer(re->c, "nested.cfg", more, strlen(more), NULL), 0);
}

START_TEST(log_callback_reenters)
{
    struct reentry re = {0};
    struct conf_options opts;
    conf_options_init(&opts);
    opts.log = reentrant_log;
    opts.log_ctx = &re;
    opts.no_env = true;
    ck_assert_int_eq(conf_create(&re.c, &opts), 0);
    static const char text[] = "[RDMA]\nprovider = verbs\n"
                               "[DERECHO]\nunknown_key = 1\nlocal_id = 2\n";
    ck_assert_int_eq(
        conf_load_buffer(re.c, "outer.cfg", text, strlen(text), NULL), 0);
    ck_assert_int_eq(re.calls, 1);
    ck_assert_str_eq(re.seen, "tcp"); /* the outer load was not in yet */
    ck_assert_str_eq(str(re.c, "RDMA", "provider"), "verbs");
    bool reset;
    ck_assert_int_eq(conf_get_bool(re.c, "PERS", "reset", &reset), 0);
    ck_assert(reset);
    conf_destroy(re.c);
}
END_TEST

START_TEST(strerror_any_int)
{
    static const int codes[] = {INT_MIN, -1, 0, 1, INT_MAX};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        ck_assert_ptr_nonnull(conf_strerror(codes[i]));
    ck_assert_ptr_null(conf_schema_get(SIZE_MAX));
    ck_assert_ptr_null(conf_schema_find("DERECHO", NULL));
    ck_assert_ptr_null(conf_schema_find("", ""));
    ck_assert_str_eq(conf_type_name((enum conf_type)12345), "unknown");
    ck_assert_str_eq(conf_strerror(-12345), "unknown error");
    /* Any errno open() may give is named, not "unknown error". */
    static char path[5000];
    memset(path, 'p', sizeof(path) - 1);
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    int rc = conf_load_file(c, path, &err);
    ck_assert_int_eq(rc, -ENAMETOOLONG);
    ck_assert_str_eq(conf_strerror(rc), "File name too long");
    ck_assert_str_eq(conf_strerror(-ELOOP),
                     "Too many levels of symbolic links");
    conf_destroy(c);
}
END_TEST

/* Keys and values as long as a line allows load, answer and dump back;
 * one byte more is an error naming the line. */
START_TEST(longest_key_and_value)
{
    size_t klen = CONF_MAX_LINE - 2; /* "k=v" */
    char *text = malloc(CONF_MAX_LINE + 64);
    ck_assert_ptr_nonnull(text);
    int n = snprintf(text, 64, "[LAYOUT]\n");
    memset(text + n, 'k', klen);
    memcpy(text + n + klen, "=v\n", 4);
    struct log_capture cap;
    struct conf *c = new_conf(&cap, false);
    struct conf_error err;
    ck_assert_int_eq(conf_load_buffer(c, "long.cfg", text, strlen(text), &err),
                     0);
    ck_assert_int_eq(cap.warnings, 1); /* an unknown key */
    char *dump;
    size_t len;
    ck_assert_int_eq(conf_dump(c, &dump, &len), 0);
    struct log_capture back_cap;
    struct conf *back = new_conf(&back_cap, false);
    ck_assert_int_eq(conf_load_buffer(back, "dump.cfg", dump, len, &err), 0);
    text[n + klen] = '\0';
    ck_assert_str_eq(str(back, "LAYOUT", text + n), "v");
    free(dump);
    conf_destroy(back);
    /* The value side: json_layout = <4086 bytes>. */
    n = snprintf(text, 64, "[LAYOUT]\njson_layout=");
    size_t vlen = CONF_MAX_LINE - strlen("json_layout=");
    memset(text + n, 'j', vlen);
    memcpy(text + n + vlen, "\n", 2);
    ck_assert_int_eq(conf_load_buffer(c, "long.cfg", text, strlen(text), &err),
                     0);
    ck_assert_uint_eq(strlen(str(c, "LAYOUT", "json_layout")), vlen);
    memcpy(text + n + vlen, "j\n", 3);
    ck_assert_int_eq(conf_load_buffer(c, "long.cfg", text, strlen(text), &err),
                     -EBADMSG);
    ck_assert_int_eq(err.line, 2);
    ck_assert_uint_eq(strlen(str(c, "LAYOUT", "json_layout")), vlen);
    free(text);
    conf_destroy(c);
}
END_TEST

/* The size limit is 16 MiB: a file of exactly that loads, one byte more is
 * -EFBIG.  Lines of 4095 blanks keep the parse short. */
START_TEST(file_of_exactly_the_size_limit)
{
    char dir[512], path[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/limit.cfg", dir);
    size_t limit = 16u << 20;
    char *text = malloc(limit + 1);
    ck_assert_ptr_nonnull(text);
    memset(text, ' ', limit + 1);
    for (size_t i = 4095; i < limit; i += 4096)
        text[i] = '\n';
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, limit, f), limit);
    ck_assert_int_eq(fclose(f), 0);
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    ck_assert_int_eq(conf_load_file(c, path, &err), 0);
    f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputc('\n', f), '\n');
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(conf_load_file(c, path, &err), -EFBIG);
    ck_assert_str_eq(err.file, path);
    ck_assert_ptr_nonnull(strstr(err.msg, "16 MiB"));
    free(text);
    conf_destroy(c);
}
END_TEST

/* The dump of a configuration of many profiles (a hostile or generated
 * file) takes O(n log n), not O(n^2): 50,000 profiles took minutes. */
START_TEST(dump_of_many_profiles)
{
    enum { PROFILES = 50000 };
    size_t cap = (size_t)PROFILES * 48 + 64;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t n = 0;
    for (int i = 0; i < PROFILES; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "[SUBGROUP/P%d]\nwindow_size = %d\n", i,
                              1 + i % 64);
    int rc;
    struct conf_error err;
    struct conf *c = load_text(text, true, NULL, &rc, &err);
    ck_assert_int_eq(rc, 0);
    int64_t t0 = th_now_ms();
    char *dump;
    size_t len;
    ck_assert_int_eq(conf_dump(c, &dump, &len), 0);
    int64_t took = th_now_ms() - t0;
    ck_assert_msg(took < 5000, "dump took %lld ms", (long long)took);
    /* Every profile once, in load order, each with its value. */
    const char *p0 = strstr(dump, "\n[SUBGROUP/P0]\nwindow_size = 1  ;");
    const char *plast = strstr(dump, "\n[SUBGROUP/P49999]\nwindow_size = 16");
    ck_assert_ptr_nonnull(p0);
    ck_assert_ptr_nonnull(plast);
    ck_assert(p0 < plast);
    size_t headers = 0; /* by hand: a sanitizer's strstr is O(len) */
    for (size_t i = 0; i + 10 < len; i++)
        headers +=
            dump[i] == '\n' && memcmp(dump + i + 1, "[SUBGROUP/", 10) == 0;
    ck_assert_uint_eq(headers, PROFILES);
    free(dump);
    free(text);
    conf_destroy(c);
}
END_TEST

Suite *misuse_suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc = tcase_create("misuse");
    tcase_add_test(tc, null_objects);
    tcase_add_test(tc, null_outputs_and_names);
    tcase_add_test(tc, range_with_min_above_max);
    tcase_add_test(tc, error_format_unterminated_fields);
    tcase_add_test(tc, error_format_into_itself);
    tcase_add_test(tc, load_the_file_an_error_named);
    tcase_add_test(tc, parse_args_meaningless_vectors);
    tcase_add_test(tc, parse_args_override_is_no_value);
    tcase_add_test(tc, parse_args_vector_without_terminator);
    tcase_add_test(tc, open_with_short_options);
    tcase_add_test(tc, log_callback_reenters);
    tcase_add_test(tc, strerror_any_int);
    tcase_add_test(tc, longest_key_and_value);
    tcase_add_test(tc, file_of_exactly_the_size_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("scale");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, dump_of_many_profiles);
    suite_add_tcase(s, tc);
    return s;
}
