/* The INI dialect and every error path of loading, with its detail. */
#include "test-conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

static const char *str(struct conf *c, const char *section, const char *key)
{
    const char *v = NULL;
    ck_assert_int_eq(conf_get_string(c, section, key, &v), 0);
    return v;
}

/* Loads text expecting failure rc at line, and checks the detail. */
static void expect_error(const char *text, int want_rc, int line,
                         const char *section, const char *key,
                         const char *msg_part)
{
    struct conf_error err;
    int rc;
    struct conf *c = load_text(text, false, NULL, &rc, &err);
    ck_assert_msg(rc == want_rc, "rc %d (%s), want %d for: %s", rc, err.msg,
                  want_rc, text);
    ck_assert_str_eq(err.file, "test.cfg");
    ck_assert_int_eq(err.line, line);
    ck_assert_str_eq(err.section, section);
    ck_assert_str_eq(err.key, key);
    ck_assert_str_eq(err.arg, "");
    ck_assert_msg(strstr(err.msg, msg_part), "message \"%s\" lacks \"%s\"",
                  err.msg, msg_part);
    /* A failed load changes nothing: everything is still the default. */
    enum conf_source src;
    ck_assert_int_eq(
        conf_get_source(c, "DERECHO", "local_id", &src, NULL, NULL), 0);
    ck_assert_int_eq(src, CONF_SOURCE_DEFAULT);
    conf_destroy(c);
}

START_TEST(dialect_comments_quotes_and_blanks)
{
    const char *text = "# leading comment\n"
                       "; another\n"
                       "   \t\n"
                       "[DERECHO]   ; section comment\n"
                       "  local_ip   =   10.0.0.1   # trailing\n"
                       "contact_ip=10.0.0.2;not-a-comment\n"
                       "[LAYOUT]\n"
                       "json_layout = \"  {\"\n"
                       "json_layout_file = \"a # b ; c\"   ; comment\n"
                       "[RDMA]\r\n"
                       "provider = sockets\r\n"
                       "domain =\n";
    struct conf_error err;
    int rc;
    struct conf *c = load_text(text, true, NULL, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(str(c, "DERECHO", "local_ip"), "10.0.0.1");
    ck_assert_str_eq(str(c, "DERECHO", "contact_ip"), "10.0.0.2;not-a-comment");
    ck_assert_str_eq(str(c, "LAYOUT", "json_layout"), "  {");
    ck_assert_str_eq(str(c, "LAYOUT", "json_layout_file"), "a # b ; c");
    ck_assert_str_eq(str(c, "RDMA", "provider"), "sockets");
    ck_assert_str_eq(str(c, "RDMA", "domain"), "");
    const char *file;
    int line;
    enum conf_source src;
    ck_assert_int_eq(
        conf_get_source(c, "DERECHO", "local_ip", &src, &file, &line), 0);
    ck_assert_int_eq(src, CONF_SOURCE_FILE);
    ck_assert_str_eq(file, "test.cfg");
    ck_assert_int_eq(line, 5);
    conf_destroy(c);
}
END_TEST

START_TEST(dialect_bom_and_no_final_newline)
{
    struct conf_error err;
    int rc;
    struct conf *c = load_text("\xef\xbb\xbf[PERS]\nfile_path = /var/lib/x",
                               true, NULL, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(str(c, "PERS", "file_path"), "/var/lib/x");
    conf_destroy(c);
}
END_TEST

START_TEST(dialect_utf8_values_accepted)
{
    struct conf_error err;
    int rc;
    struct conf *c =
        load_text("[PERS]\nfile_path = /d\xc3\xa9j\xc3\xa0/\xf0\x9f"
                  "\x93\x81\n",
                  true, NULL, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_str_eq(str(c, "PERS", "file_path"),
                     "/d\xc3\xa9j\xc3\xa0/\xf0\x9f\x93\x81");
    conf_destroy(c);
}
END_TEST

START_TEST(error_syntax)
{
    expect_error("[DERECHO]\nlocal_id\n", -EBADMSG, 2, "", "",
                 "expected key = value");
    expect_error("\n[DERECHO\n", -EBADMSG, 2, "", "", "expected [SECTION]");
    expect_error("[DERECHO] x\n", -EBADMSG, 1, "", "", "expected [SECTION]");
    expect_error("[]\n", -EBADMSG, 1, "", "", "malformed section name");
    expect_error("local_id = 1\n", -EBADMSG, 1, "", "local_id",
                 "outside of any");
    expect_error("[DERECHO]\nlocal ip = 1\n", -EBADMSG, 2, "DERECHO", "",
                 "malformed key");
    expect_error("[DERECHO]\n = 1\n", -EBADMSG, 2, "DERECHO", "",
                 "malformed key");
    expect_error("[PERS]\nfile_path = \"abc\n", -EBADMSG, 2, "PERS",
                 "file_path", "missing closing");
    expect_error("[PERS]\nfile_path = \"abc\" def\n", -EBADMSG, 2, "PERS",
                 "file_path", "after the closing");
}
END_TEST

START_TEST(error_unknown_section)
{
    expect_error("[DERECHO]\n[NOPE]\n", -EINVAL, 2, "NOPE", "",
                 "unknown section");
    expect_error("[SUBGROUP]\n", -EINVAL, 1, "SUBGROUP", "", "unknown section");
    expect_error("[SUBGROUP/A/B]\n", -EINVAL, 1, "SUBGROUP/A/B", "",
                 "unknown section");
    expect_error("[derecho]\n", -EINVAL, 1, "derecho", "", "unknown section");
}
END_TEST

START_TEST(error_wrong_type_and_range)
{
    expect_error("[DERECHO]\n\nlocal_id = abc\n", -EINVAL, 3, "DERECHO",
                 "local_id", "unsigned decimal integer");
    expect_error("[DERECHO]\nlocal_id = -1\n", -EINVAL, 2, "DERECHO",
                 "local_id", "unsigned");
    expect_error("[DERECHO]\ngms_port = 70000\n", -ERANGE, 2, "DERECHO",
                 "gms_port", "out of range [1, 65535]");
    expect_error("[DERECHO]\ngms_port = 0\n", -ERANGE, 2, "DERECHO", "gms_port",
                 "out of range");
    /* The profile-only shape keys are checked at load like any other. */
    expect_error("[SUBGROUP/S]\nnum_shards = 0\n", -ERANGE, 2, "SUBGROUP/S",
                 "num_shards", "0 is out of range [1, 4096]");
    expect_error("[SUBGROUP/S]\nnum_shards = 4097\n", -ERANGE, 2, "SUBGROUP/S",
                 "num_shards", "out of range [1, 4096]");
    expect_error("[SUBGROUP/DEFAULT]\nmin_nodes = two\n", -EINVAL, 2,
                 "SUBGROUP/DEFAULT", "min_nodes", "unsigned decimal integer");
    expect_error("[SUBGROUP/S]\nmax_nodes = 4294967296\n", -ERANGE, 2,
                 "SUBGROUP/S", "max_nodes", "out of range [1, 4294967295]");
    expect_error("[SUBGROUP/S]\nmin_nodes = -1\n", -EINVAL, 2, "SUBGROUP/S",
                 "min_nodes", "unsigned");
    expect_error("[DERECHO]\nlocal_id = 99999999999999999999999\n", -ERANGE, 2,
                 "DERECHO", "local_id", "out of range");
    expect_error("[PERS]\nreset = maybe\n", -EINVAL, 2, "PERS", "reset",
                 "true/false");
    expect_error("[DERECHO]\nblock_size = 1T\n", -EINVAL, 2, "DERECHO",
                 "block_size", "byte size");
    expect_error("[DERECHO]\nblock_size = 1KB\n", -EINVAL, 2, "DERECHO",
                 "block_size", "byte size");
    expect_error("[DERECHO]\nmax_smc_payload_size = 2M\n", -ERANGE, 2,
                 "DERECHO", "max_smc_payload_size", "out of range");
    expect_error("[DERECHO]\nrdmc_send_algorithm = fast\n", -EINVAL, 2,
                 "DERECHO", "rdmc_send_algorithm",
                 "binomial_send, chain_send, sequential_send, tree_send");
    expect_error("[DERECHO]\nrestart_leader_ports = 1,,2\n", -EINVAL, 2,
                 "DERECHO", "restart_leader_ports", "empty item");
    expect_error("[DERECHO]\nrestart_leader_ports = 1, 99999\n", -ERANGE, 2,
                 "DERECHO", "restart_leader_ports", "99999 is out of range");
    expect_error("[SUBGROUP/BIG]\nwindow_size = 0\n", -ERANGE, 2,
                 "SUBGROUP/BIG", "window_size", "out of range");
    expect_error("[LOGGER]\ndefault_log_level = loud\n", -EINVAL, 2, "LOGGER",
                 "default_log_level", "expected one of");
}
END_TEST

START_TEST(error_duplicate_names_both_lines)
{
    struct conf_error err;
    int rc;
    struct conf *c =
        load_text("[DERECHO]\nlocal_id = 1\n[RDMA]\n[DERECHO]\nlocal_id = 1\n",
                  false, NULL, &rc, &err);
    ck_assert_int_eq(rc, -EEXIST);
    ck_assert_int_eq(err.line, 5);
    ck_assert_int_eq(err.other_line, 2);
    ck_assert_str_eq(err.key, "local_id");
    ck_assert_ptr_nonnull(strstr(err.msg, "line 2"));
    char buf[1024];
    conf_error_format(&err, buf, sizeof(buf));
    ck_assert_str_eq(buf, "test.cfg:5: DERECHO/local_id: duplicate key "
                          "(first set at line 2)");
    conf_destroy(c);
    /* The same key in two sections is no duplicate. */
    c = load_text("[SUBGROUP/A]\nwindow_size=2\n[SUBGROUP/B]\nwindow_size=3\n",
                  false, NULL, &rc, &err);
    ck_assert_int_eq(rc, 0);
    conf_destroy(c);
}
END_TEST

/* Duplicate detection must not be quadratic: a 100,000-section file (a
 * hostile or generated one) loads in well under the case's time-out, and a
 * duplicate at its very end still names both lines. */
START_TEST(many_keys_load_in_linear_time)
{
    enum { PROFILES = 100000 };
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
    uint64_t w = 0;
    ck_assert_int_eq(conf_get_u64(c, "SUBGROUP/P77777", "window_size", &w), 0);
    ck_assert_uint_eq(w, 1 + 77777 % 64);
    conf_destroy(c);

    snprintf(text + n, cap - n, "[SUBGROUP/P0]\nwindow_size = 9\n");
    c = load_text(text, true, NULL, &rc, &err);
    ck_assert_int_eq(rc, -EEXIST);
    ck_assert_int_eq(err.line, 2 * PROFILES + 2);
    ck_assert_int_eq(err.other_line, 2);
    conf_destroy(c);
    free(text);
}
END_TEST

START_TEST(error_long_line)
{
    /* Exactly CONF_MAX_LINE bytes is fine, one more is an error. */
    size_t prefix = strlen("file_path = ");
    char *text = malloc(CONF_MAX_LINE + 64);
    ck_assert_ptr_nonnull(text);
    strcpy(text, "[PERS]\nfile_path = ");
    size_t start = strlen(text);
    memset(text + start, 'x', CONF_MAX_LINE - prefix);
    strcpy(text + start + CONF_MAX_LINE - prefix, "\n");
    struct conf_error err;
    int rc;
    struct conf *c = load_text(text, true, NULL, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(strlen(str(c, "PERS", "file_path")),
                      CONF_MAX_LINE - prefix);
    conf_destroy(c);
    strcpy(text + start + CONF_MAX_LINE - prefix, "y\n");
    c = load_text(text, true, NULL, &rc, &err);
    ck_assert_int_eq(rc, -EBADMSG);
    ck_assert_int_eq(err.line, 2);
    ck_assert_ptr_nonnull(strstr(err.msg, "longer than 4096"));
    conf_destroy(c);
    /* A huge line with no line break at all. */
    size_t big = 1u << 20;
    char *huge = malloc(big);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'a', big);
    struct conf *d = new_conf(NULL, false);
    ck_assert_int_eq(conf_load_buffer(d, "huge", huge, big, &err), -EBADMSG);
    ck_assert_int_eq(err.line, 1);
    conf_destroy(d);
    free(huge);
    free(text);
}
END_TEST

START_TEST(error_nul_byte)
{
    static const char text[] = "[PERS]\nfile_path = a\0b\n";
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    ck_assert_int_eq(
        conf_load_buffer(c, "nul.cfg", text, sizeof(text) - 1, &err), -EBADMSG);
    ck_assert_str_eq(err.file, "nul.cfg");
    ck_assert_int_eq(err.line, 2);
    ck_assert_ptr_nonnull(strstr(err.msg, "NUL"));
    /* also in a comment line */
    static const char text2[] = "[PERS]\n# a\0b\n";
    ck_assert_int_eq(
        conf_load_buffer(c, "nul.cfg", text2, sizeof(text2) - 1, &err),
        -EBADMSG);
    ck_assert_int_eq(err.line, 2);
    conf_destroy(c);
}
END_TEST

START_TEST(error_invalid_utf8_and_control)
{
    static const char *const bad[] = {
        "\xff", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xc3", "a\x80",    "\xe2\x82",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64];
        snprintf(text, sizeof(text), "[PERS]\nfile_path = /x%s\n", bad[i]);
        expect_error(text, -EBADMSG, 2, "PERS", "file_path", "invalid UTF-8");
    }
    expect_error("[PERS]\nfile_path = a\x01z\n", -EBADMSG, 2, "PERS",
                 "file_path", "control character");
    expect_error("[PERS]\nfile_path = a\rz\n", -EBADMSG, 2, "PERS", "file_path",
                 "control character");
}
END_TEST

START_TEST(unknown_key_warns_or_fails_when_strict)
{
    struct log_capture cap;
    struct conf_error err;
    int rc;
    struct conf *c =
        load_text("[DERECHO]\n\nratio = 0.25\n", false, &cap, &rc, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cap.warnings, 1);
    ck_assert_int_eq(cap.last_level, LOG_WARNING);
    ck_assert_msg(
        strncmp(cap.last, "test.cfg:3: DERECHO/ratio: unknown key", 38) == 0,
        "%s", cap.last);
    double d;
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "ratio", &d), 0);
    ck_assert(d == 0.25);
    conf_destroy(c);

    c = load_text("[DERECHO]\n\nratio = 0.25\n", true, &cap, &rc, &err);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_int_eq(err.line, 3);
    ck_assert_str_eq(err.section, "DERECHO");
    ck_assert_str_eq(err.key, "ratio");
    ck_assert_ptr_nonnull(strstr(err.msg, "unknown key"));
    ck_assert_int_eq(cap.count, 0);
    ck_assert_int_eq(conf_get_double(c, "DERECHO", "ratio", &d), -ENOENT);
    conf_destroy(c);
}
END_TEST

START_TEST(log_level_filters_messages)
{
    struct log_capture cap = {0};
    struct conf_options opts;
    conf_options_init(&opts);
    ck_assert_int_eq(opts.log_level, LOG_WARNING);
    opts.log = capture_log;
    opts.log_ctx = &cap;
    opts.log_level = LOG_ERR;
    struct conf *c;
    ck_assert_int_eq(conf_create(&c, &opts), 0);
    const char *text = "[DERECHO]\nratio = 1\n";
    ck_assert_int_eq(conf_load_buffer(c, "t", text, strlen(text), NULL), 0);
    ck_assert_int_eq(cap.count, 0);
    conf_destroy(c);
}
END_TEST

START_TEST(deprecated_aliases)
{
    struct log_capture cap;
    struct conf_error err;
    int rc;
    struct conf *c =
        load_text("[DERECHO]\nleader_ip = 10.1.1.1\nleader_gms_port = 4000\n",
                  false, &cap, &rc, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cap.warnings, 2);
    ck_assert_ptr_nonnull(strstr(cap.last, "DERECHO/leader_gms_port: "
                                           "deprecated, use contact_port"));
    ck_assert_str_eq(str(c, "DERECHO", "contact_ip"), "10.1.1.1");
    ck_assert_str_eq(str(c, "DERECHO", "leader_ip"), "10.1.1.1");
    uint64_t port;
    ck_assert_int_eq(conf_get_u64(c, "DERECHO", "contact_port", &port), 0);
    ck_assert_uint_eq(port, 4000);
    conf_destroy(c);

    /* Both names, same value (even written differently): fine. */
    c = load_text("[DERECHO]\ncontact_port = 4000\nleader_gms_port = 04000\n",
                  false, &cap, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    conf_destroy(c);

    /* Both names, different values: an error naming both lines. */
    c = load_text("[DERECHO]\nleader_ip = 10.1.1.1\n\ncontact_ip = 10.2.2.2\n",
                  false, &cap, &rc, &err);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_int_eq(err.line, 4);
    ck_assert_int_eq(err.other_line, 2);
    ck_assert_str_eq(err.key, "contact_ip");
    ck_assert_ptr_nonnull(strstr(err.msg, "conflicts with leader_ip"));
    conf_destroy(c);

    /* Strict mode: the old name is an error. */
    c = load_text("[DERECHO]\nleader_ip = 10.1.1.1\n", true, &cap, &rc, &err);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_str_eq(err.key, "leader_ip");
    conf_destroy(c);

    /* The old name twice is a plain duplicate. */
    c = load_text("[DERECHO]\nleader_ip = a\nleader_ip = a\n", false, &cap, &rc,
                  &err);
    ck_assert_int_eq(rc, -EEXIST);
    ck_assert_int_eq(err.other_line, 2);
    conf_destroy(c);

    /* A wrong type under the old name names the old name. */
    expect_error("[DERECHO]\nleader_gms_port = x\n", -EINVAL, 2, "DERECHO",
                 "leader_gms_port", "unsigned");
}
END_TEST

START_TEST(rpc_port_is_obsolete)
{
    struct log_capture cap;
    struct conf_error err;
    int rc;
    struct conf *c =
        load_text("[DERECHO]\nrpc_port = 28366\n", false, &cap, &rc, &err);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cap.warnings, 1);
    ck_assert_str_eq(cap.last, "test.cfg:2: DERECHO/rpc_port: obsolete, "
                               "ignored");
    const char *v;
    ck_assert_int_eq(conf_get_string(c, "DERECHO", "rpc_port", &v), -ENOENT);
    conf_destroy(c);
    c = load_text("[DERECHO]\nrpc_port = 28366\n", true, &cap, &rc, &err);
    ck_assert_int_eq(rc, -EINVAL);
    ck_assert_str_eq(err.key, "rpc_port");
    conf_destroy(c);
}
END_TEST

START_TEST(files_missing_unreadable_and_directories)
{
    char dir[512], path[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct conf *c = new_conf(NULL, false);
    struct conf_error err;
    snprintf(path, sizeof(path), "%s/none.cfg", dir);
    ck_assert_int_eq(conf_load_file(c, path, &err), -ENOENT);
    ck_assert_str_eq(err.file, path);
    ck_assert_int_eq(err.line, 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "cannot open"));
    char buf[1200];
    conf_error_format(&err, buf, sizeof(buf));
    ck_assert_ptr_eq(strstr(buf, path), buf);
    ck_assert_int_eq(conf_load_file(c, dir, &err), -EISDIR);
    ck_assert_int_eq(conf_load_file(c, dir, NULL), -EISDIR);
    write_file(dir, "ok.cfg", "[RDMA]\nprovider = verbs\n", path, sizeof(path));
    ck_assert_int_eq(conf_load_file(c, path, &err), 0);
    ck_assert_str_eq(str(c, "RDMA", "provider"), "verbs");
    conf_destroy(c);
}
END_TEST

START_TEST(strerror_and_error_format)
{
    ck_assert_str_eq(conf_strerror(-EEXIST), "duplicate key");
    ck_assert_ptr_nonnull(conf_strerror(-12345));
    ck_assert_ptr_nonnull(conf_strerror(0));
    struct conf_error e = {.line = 7};
    strcpy(e.file, "a.cfg");
    strcpy(e.section, "RDMA");
    strcpy(e.key, "tx_depth");
    strcpy(e.msg, "bad");
    char buf[256];
    conf_error_format(&e, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a.cfg:7: RDMA/tx_depth: bad");
    e.key[0] = '\0';
    conf_error_format(&e, buf, sizeof(buf));
    ck_assert_str_eq(buf, "a.cfg:7: RDMA: bad");
    strcpy(e.arg, "--RDMA/tx_depth=x");
    conf_error_format(&e, buf, sizeof(buf));
    ck_assert_str_eq(buf, "command line: --RDMA/tx_depth=x: bad");
    /* truncation is safe */
    conf_error_format(&e, buf, 5);
    ck_assert_str_eq(buf, "comm");
}
END_TEST

Suite *parse_suite(void)
{
    Suite *s = suite_create("parse");
    TCase *tc = tcase_create("dialect");
    tcase_add_test(tc, dialect_comments_quotes_and_blanks);
    tcase_add_test(tc, dialect_bom_and_no_final_newline);
    tcase_add_test(tc, dialect_utf8_values_accepted);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, error_syntax);
    tcase_add_test(tc, error_unknown_section);
    tcase_add_test(tc, error_wrong_type_and_range);
    tcase_add_test(tc, error_duplicate_names_both_lines);
    tcase_add_test(tc, error_long_line);
    tcase_add_test(tc, error_nul_byte);
    tcase_add_test(tc, error_invalid_utf8_and_control);
    tcase_add_test(tc, unknown_key_warns_or_fails_when_strict);
    tcase_add_test(tc, log_level_filters_messages);
    tcase_add_test(tc, deprecated_aliases);
    tcase_add_test(tc, rpc_port_is_obsolete);
    tcase_add_test(tc, files_missing_unreadable_and_directories);
    tcase_add_test(tc, strerror_and_error_format);
    suite_add_tcase(s, tc);
    tc = tcase_create("scale");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, many_keys_load_in_linear_time);
    suite_add_tcase(s, tc);
    return s;
}
