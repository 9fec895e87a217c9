/* The dump (valid INI, sources, round trip) and the shipped sample
 * configuration against the schema. */
#include "strip-sources.h"
#include "test-conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dump(struct conf *c)
{
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(conf_dump(c, &text, &len), 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

static struct conf *build_rich_conf(void)
{
    struct conf *c = new_conf(NULL, false);
    const char *text =
        "[DERECHO]\nlocal_id = 5\nblock_size = 64K\nratio = 0.5\n"
        "restart_leaders = a, b ,c\nleader_gms_port = 4000\n"
        "[LAYOUT]\njson_layout = [{\"type\": 1}]\n"
        "json_layout_file = \" padded ; # x \"\n"
        "[SUBGROUP/LARGE]\nwindow_size = 4\nextra = \"\"\n"
        "[SUBGROUP/DEFAULT]\nblock_size = 1M\n"
        "[PERS]\nfile_path=#hash\nramdisk_path = a\"b\n"
        "[LOGGER]\nodd=; \"q\n"
        "[SUBGROUP/SHAPED]\nnum_shards = 2\n[SUBGROUP/DEFAULT]\nmax_nodes = "
        "3\n";
    struct conf_error err;
    ck_assert_msg(conf_load_buffer(c, "rich.cfg", text, strlen(text), &err) ==
                      0,
                  "%d: %s", err.line, err.msg);
    struct args a;
    args_init(&a, (const char *const[]){
                      "app", "--RDMA/provider=verbs",
                      "--SUBGROUP/LARGE/max_smc_payload_size=9",
                      "--PERS/reset=yes", "--LOGGER/x=; not a comment", NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), 0);
    args_fini(&a);
    return c;
}

static void assert_same(struct conf *a, struct conf *b, const char *section,
                        const char *key)
{
    const char *va, *vb;
    ck_assert_int_eq(conf_get_string(a, section, key, &va), 0);
    ck_assert_int_eq(conf_get_string(b, section, key, &vb), 0);
    ck_assert_msg(strcmp(va, vb) == 0, "%s/%s: \"%s\" != \"%s\"", section, key,
                  va, vb);
}

START_TEST(dump_round_trip_identical)
{
    struct conf *c = build_rich_conf();
    char *text = dump(c);
    struct conf *d = new_conf(NULL, false);
    struct conf_error err;
    ck_assert_msg(conf_load_buffer(d, "dump", text, strlen(text), &err) == 0,
                  "%d: %s\n%s", err.line, err.msg, text);
    for (size_t i = 0; i < conf_schema_count(); i++) {
        const struct conf_option *o = conf_schema_get(i);
        if (o->flags & CONF_OPT_OBSOLETE)
            continue;
        if (o->flags & CONF_OPT_PROFILE_ONLY) {
            /* Set in SHAPED or DEFAULT, or nowhere (no default). */
            const char *v;
            if (conf_get_string(c, "SUBGROUP/SHAPED", o->key, &v) == 0)
                assert_same(c, d, "SUBGROUP/SHAPED", o->key);
            else
                ck_assert_int_eq(
                    conf_get_string(d, "SUBGROUP/SHAPED", o->key, &v), -ENOENT);
            continue;
        }
        assert_same(c, d, o->section, o->key);
        if (o->flags & CONF_OPT_PROFILE) {
            assert_same(c, d, "SUBGROUP/LARGE", o->key);
            assert_same(c, d, "SUBGROUP/DEFAULT", o->key);
            assert_same(c, d, "SUBGROUP/OTHER", o->key);
        }
    }
    assert_same(c, d, "DERECHO", "ratio");
    assert_same(c, d, "LOGGER", "x");
    assert_same(c, d, "LOGGER", "odd");
    assert_same(c, d, "SUBGROUP/LARGE", "extra");
    assert_same(c, d, "SUBGROUP/SHAPED", "num_shards");
    assert_same(c, d, "SUBGROUP/OTHER", "max_nodes");
    const char *v;
    ck_assert_int_eq(conf_get_string(d, "LAYOUT", "json_layout", &v), 0);
    ck_assert_str_eq(v, "[{\"type\": 1}]");
    ck_assert_int_eq(conf_get_string(d, "LAYOUT", "json_layout_file", &v), 0);
    ck_assert_str_eq(v, " padded ; # x ");
    ck_assert_int_eq(conf_get_string(d, "PERS", "file_path", &v), 0);
    ck_assert_str_eq(v, "#hash");
    ck_assert_int_eq(conf_get_string(d, "LOGGER", "x", &v), 0);
    ck_assert_str_eq(v, "; not a comment");
    /* Dumping again gives the same text apart from the sources. */
    char *again = dump(d);
    strip_sources(text);
    strip_sources(again);
    ck_assert_str_eq(text, again);
    free(again);
    free(text);
    conf_destroy(d);
    conf_destroy(c);
}
END_TEST

START_TEST(dump_names_sources)
{
    struct conf *c = build_rich_conf();
    char *text = dump(c);
    static const char *const lines[] = {
        "\n[DERECHO]\ncontact_ip = 127.0.0.1  ; source: default\n",
        "\ncontact_port = 4000  ; source: rich.cfg:6\n",
        "\nlocal_id = 5  ; source: rich.cfg:2\n",
        "\nprovider = verbs  ; source: command line\n",
        "\nratio = 0.5  ; source: rich.cfg:4\n",
        "\nfile_path = \"#hash\"  ; source: rich.cfg:16\n",
        "\nramdisk_path = a\"b  ; source: rich.cfg:17\n",
        "\n[LAYOUT]\njson_layout = [{\"type\": 1}]  ; source: rich.cfg:8\n",
        "\njson_layout_file = \" padded ; # x \"  ; source: rich.cfg:9\n",
        "\n[SUBGROUP/LARGE]\nwindow_size = 4  ; source: rich.cfg:11\n"
        "extra = \"\"  ; source: rich.cfg:12\n"
        "max_smc_payload_size = 9  ; source: command line\n",
        "\n[SUBGROUP/DEFAULT]\nblock_size = 1M  ; source: rich.cfg:14\n",
        "\nodd=; \"q  ; source: rich.cfg:19\n",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        ck_assert_msg(strstr(text, lines[i]), "missing \"%s\" in:\n%s",
                      lines[i], text);
    /* Old and obsolete names are never written. */
    ck_assert_ptr_null(strstr(text, "\nleader_"));
    ck_assert_ptr_null(strstr(text, "rpc_port"));
    free(text);
    conf_destroy(c);
}
END_TEST

START_TEST(dump_of_defaults_is_strictly_valid)
{
    struct conf *c = new_conf(NULL, true);
    char *text = dump(c);
    struct conf *d = new_conf(NULL, true);
    struct conf_error err;
    ck_assert_msg(conf_load_buffer(d, "dump", text, strlen(text), &err) == 0,
                  "%d: %s", err.line, err.msg);
    free(text);
    conf_destroy(d);
    conf_destroy(c);
}
END_TEST

/* Values as long as a line allows still dump to lines that load back. */
START_TEST(dump_keeps_lines_within_limit)
{
    size_t max = CONF_MAX_LINE;
    char *text = malloc(3 * max);
    ck_assert_ptr_nonnull(text);
    /* json_layout="<value with ' ; '>" and file_path=#xxx, both max long */
    size_t n = (size_t)sprintf(text, "[LAYOUT]\njson_layout=\"");
    size_t vlen = max - strlen("json_layout=\"\"");
    memset(text + n, 'j', vlen);
    memcpy(text + n + 10, " ; ", 3);
    n += vlen;
    n += (size_t)sprintf(text + n, "\"\n[PERS]\nfile_path=#");
    memset(text + n, 'p', max - strlen("file_path=#"));
    n += max - strlen("file_path=#");
    text[n++] = '\n';
    struct conf *c = new_conf(NULL, true);
    struct conf_error err;
    ck_assert_msg(conf_load_buffer(c, "long.cfg", text, n, &err) == 0, "%d: %s",
                  err.line, err.msg);
    char *out = dump(c);
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        ck_assert_uint_le((size_t)(nl - line), max);
        line = nl + 1;
    }
    struct conf *d = new_conf(NULL, true);
    ck_assert_msg(conf_load_buffer(d, "dump", out, strlen(out), &err) == 0,
                  "%d: %s", err.line, err.msg);
    assert_same(c, d, "LAYOUT", "json_layout");
    assert_same(c, d, "PERS", "file_path");
    free(out);
    conf_destroy(d);

    /* The command line cannot set what a file line could not hold. */
    memcpy(text, "--PERS/file_path=", 17);
    memset(text + 17, 'x', max);
    text[17 + max] = '\0';
    struct args a;
    args_init(&a, (const char *const[]){"app", text, NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
    args_fini(&a);
    text[17 + max - strlen("file_path=")] = '\0';
    args_init(&a, (const char *const[]){"app", text, NULL});
    ck_assert_int_eq(conf_parse_args(c, &a.argc, a.argv, &err), 0);
    args_fini(&a);
    free(text);
    conf_destroy(c);
}
END_TEST

static char *read_source_file(const char *rel)
{
    const char *root = getenv("CONF_SOURCE_ROOT");
    ck_assert_msg(root != NULL, "CONF_SOURCE_ROOT not set");
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(1 << 20);
    ck_assert_ptr_nonnull(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* derecho-sample.cfg: strictly valid, every schema key written in its
 * section with the schema's default, profiles only with defaults too; the
 * profile-only keys (no default) in the commented example profile. */
START_TEST(sample_config_matches_schema)
{
    char *text = read_source_file("derecho-sample.cfg");
    struct conf *c = new_conf(NULL, true);
    struct conf_error err;
    ck_assert_msg(conf_load_buffer(c, "derecho-sample.cfg", text, strlen(text),
                                   &err) == 0,
                  "%d: %s/%s: %s", err.line, err.section, err.key, err.msg);
    for (size_t i = 0; i < conf_schema_count(); i++) {
        const struct conf_option *o = conf_schema_get(i);
        if (o->flags & CONF_OPT_PROFILE_ONLY) {
            /* No default to write: shown in the example profile. */
            char line[128];
            snprintf(line, sizeof(line), "\n# %s = ", o->key);
            ck_assert_msg(strstr(text, line), "%s missing from the sample",
                          o->key);
            continue;
        }
        if (!o->default_value)
            continue;
        enum conf_source src;
        const char *v;
        ck_assert_int_eq(
            conf_get_source(c, o->section, o->key, &src, NULL, NULL), 0);
        ck_assert_msg(src == CONF_SOURCE_FILE, "%s/%s missing from the sample",
                      o->section, o->key);
        ck_assert_int_eq(conf_get_string(c, o->section, o->key, &v), 0);
        ck_assert_msg(strcmp(v, o->default_value) == 0,
                      "%s/%s: sample \"%s\", schema \"%s\"", o->section, o->key,
                      v, o->default_value);
        if (o->flags & CONF_OPT_PROFILE) {
            ck_assert_int_eq(conf_get_string(c, "SUBGROUP/DEFAULT", o->key, &v),
                             0);
            ck_assert_str_eq(v, o->default_value);
        }
    }
    free(text);
    conf_destroy(c);
}
END_TEST

Suite *dump_suite(void)
{
    Suite *s = suite_create("dump");
    TCase *tc = tcase_create("dump");
    tcase_add_test(tc, dump_round_trip_identical);
    tcase_add_test(tc, dump_names_sources);
    tcase_add_test(tc, dump_of_defaults_is_strictly_valid);
    tcase_add_test(tc, dump_keeps_lines_within_limit);
    tcase_add_test(tc, sample_config_matches_schema);
    suite_add_tcase(s, tc);
    return s;
}
