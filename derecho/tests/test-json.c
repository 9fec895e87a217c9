/* JSON layouts in the original's format, and [LAYOUT] in the config. */
#include "test-derecho.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The original's style: numbers as strings, "*" marking senders. */
static const char *const original_layout =
    "[\n"
    "  {\n"
    "    \"type_alias\": \"Meta\",\n"
    "    \"layout\": [\n"
    "      {\n"
    "        \"min_nodes_by_shard\": [\"1\"],\n"
    "        \"max_nodes_by_shard\": [\"1\"],\n"
    "        \"delivery_modes_by_shard\": [\"Ordered\"],\n"
    "        \"reserved_node_ids_by_shard\": [[\"*7\"]],\n"
    "        \"profiles_by_shard\": [\"DEFAULT\"]\n"
    "      }\n"
    "    ]\n"
    "  },\n"
    "  {\n"
    "    \"type_alias\": \"Store\",\n"
    "    \"layout\": [\n"
    "      {\n"
    "        \"min_nodes_by_shard\": [1, 2],\n"
    "        \"max_nodes_by_shard\": [\"2\", 3],\n"
    "        \"delivery_modes_by_shard\": [\"Ordered\", \"Raw\"],\n"
    "        \"profiles_by_shard\": [\"SMALL\", \"BIG\"]\n"
    "      },\n"
    "      {\n"
    "        \"min_nodes_by_shard\": [\"1\"],\n"
    "        \"max_nodes_by_shard\": [\"1\"],\n"
    "        \"delivery_modes_by_shard\": [\"Raw\"],\n"
    "        \"profiles_by_shard\": [\"DEFAULT\"]\n"
    "      }\n"
    "    ]\n"
    "  }\n"
    "]\n";

static struct derecho_layout_spec *two_types(void)
{
    struct derecho_layout_spec *spec = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Meta", NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Store", NULL), 0);
    return spec;
}

START_TEST(original_format_loads)
{
    struct derecho_layout_spec *spec = two_types();
    struct derecho_error err;
    int rc = derecho_layout_spec_load_json(spec, original_layout,
                                           strlen(original_layout), &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 3);
    const uint32_t m[] = {1, 2, 3, 4, 5, 7};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 6, NULL, &l, NULL), 0);
    ck_assert(derecho_layout_provisioned(l));
    struct derecho_shard_info info;
    struct derecho_subgroup_info si;
    ck_assert_int_eq(derecho_layout_subgroup(l, 0, &si), 0);
    ck_assert_uint_eq(si.type_index, 0);
    ck_assert_int_eq(derecho_layout_shard(l, 0, 0, &info), 0);
    ck_assert_uint_eq(info.num_members, 1);
    ck_assert_uint_eq(info.members[0], 7); /* reserved */
    ck_assert(info.is_sender[0]);
    ck_assert_int_eq(derecho_layout_subgroup(l, 1, &si), 0);
    ck_assert_uint_eq(si.type_index, 1);
    ck_assert_uint_eq(si.num_shards, 2);
    ck_assert_int_eq(derecho_layout_shard(l, 1, 1, &info), 0);
    ck_assert_int_eq(info.mode, DERECHO_MODE_UNORDERED);
    ck_assert_str_eq(info.profile, "BIG");
    ck_assert_uint_eq(info.num_members, 2); /* min 2: 2 and 3 */
    ck_assert_uint_eq(info.members[0], 2);
    ck_assert_int_eq(derecho_layout_shard(l, 1, 0, &info), 0);
    ck_assert_int_eq(info.mode, DERECHO_MODE_ORDERED);
    ck_assert_str_eq(info.profile, "SMALL");
    ck_assert_int_eq(derecho_layout_shard(l, 2, 0, &info), 0);
    ck_assert_int_eq(info.mode, DERECHO_MODE_UNORDERED);
    derecho_layout_destroy(l);
    /* Loading twice is refused: the spec already has subgroups. */
    ck_assert_int_eq(derecho_layout_spec_load_json(
                         spec, original_layout, strlen(original_layout), &err),
                     -EINVAL);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* A layout with one subgroup for Meta and `store` as Store's subgroup. */
static char *doc_with(const char *store)
{
    static const char fmt[] =
        "[{\"type_alias\": \"Meta\", \"layout\": [{\"min_nodes_by_shard\": "
        "[1], \"max_nodes_by_shard\": [1], \"delivery_modes_by_shard\": "
        "[\"Ordered\"], \"profiles_by_shard\": [\"DEFAULT\"]}]},\n"
        "{\"type_alias\": \"Store\", \"layout\": [%s]}]";
    size_t n = sizeof(fmt) + strlen(store);
    char *s = malloc(n);
    ck_assert_ptr_nonnull(s);
    snprintf(s, n, fmt, store);
    return s;
}

struct bad_case {
    const char *doc;   /* whole document, or NULL to use store */
    const char *store; /* Store's subgroup, inside doc_with */
    int code;
    const char *needle; /* in the error message */
};

static const struct bad_case bad_cases[] = {
    {"", NULL, -EBADMSG, "line 1, column 1"},
    {"[", NULL, -EBADMSG, "end of document"},
    {"[1,]", NULL, -EBADMSG, "line 1, column 4"},
    {"[] x", NULL, -EBADMSG, "after the document"},
    {"[\"a\n\"]", NULL, -EBADMSG, "control character"},
    {"[\"\\x\"]", NULL, -EBADMSG, "bad escape"},
    {"[\"\\ud800\"]", NULL, -EBADMSG, "surrogate"},
    {"[\"\\u0000\"]", NULL, -EBADMSG, "NUL"},
    {"[01]", NULL, -EBADMSG, "expected ','"},
    {"[1.]", NULL, -EBADMSG, "bad number"},
    {"[tru]", NULL, -EBADMSG, "unknown literal"},
    {"{\"a\": 1, \"a\": 2}", NULL, -EBADMSG, "duplicate key"},
    {"[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]", NULL, -EBADMSG, "deeply"},
    {"{}", NULL, -EINVAL, "array"},
    {"[{\"type_alias\": \"Meta\", \"layout\": []}]", NULL, -EINVAL,
     "1 entries, but the application declares 2"},
    {NULL, "{\"min_nodes_by_shard\": [1]}", -EINVAL, "max_nodes_by_shard"},
    {NULL,
     "{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1, 2], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"]}",
     -EINVAL, "not as many entries"},
    {NULL,
     "{\"min_nodes_by_shard\": [0], \"max_nodes_by_shard\": [1], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"]}",
     -EINVAL, "at least 1"},
    {NULL,
     "{\"min_nodes_by_shard\": [\"2\"], \"max_nodes_by_shard\": [\"1\"], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"]}",
     -EINVAL, "max_nodes_by_shard"},
    {NULL,
     "{\"min_nodes_by_shard\": [\"1x\"], \"max_nodes_by_shard\": [\"1\"], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"]}",
     -EINVAL, "whole number"},
    {NULL,
     "{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1], "
     "\"delivery_modes_by_shard\": [\"Fast\"], \"profiles_by_shard\": [\"P\"]}",
     -EINVAL, "\"Ordered\" or \"Raw\""},
    {NULL,
     "{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"\"]}",
     -EINVAL, "profile name"},
    {NULL,
     "{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"], "
     "\"colour\": 1}",
     -EINVAL, "colour"},
    {NULL,
     "{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"], "
     "\"reserved_node_ids_by_shard\": [[\"1\", \"*1\"]]}",
     -EINVAL, "listed twice"},
    {NULL,
     "{\"min_nodes_by_shard\": [1, 1], \"max_nodes_by_shard\": [1, 1], "
     "\"delivery_modes_by_shard\": [\"Raw\", \"Raw\"], "
     "\"profiles_by_shard\": [\"P\", \"P\"], "
     "\"reserved_node_ids_by_shard\": [[\"3\"], [\"*3\"]]}",
     -EINVAL, "same node id"},
    {NULL,
     "{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1], "
     "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": [\"P\"], "
     "\"reserved_node_ids_by_shard\": [[\"-1\"]]}",
     -EINVAL, "node id"},
    {NULL, "[]", -EINVAL, "subgroup must be an object"},
};

START_TEST(malformed_layouts_are_clear_errors)
{
    const struct bad_case *c = &bad_cases[_i];
    char *doc = c->doc ? strdup(c->doc) : doc_with(c->store);
    struct derecho_layout_spec *spec = two_types();
    struct derecho_error err;
    memset(&err, 0, sizeof(err));
    int rc = derecho_layout_spec_load_json(spec, doc, strlen(doc), &err);
    ck_assert_msg(rc == c->code, "case %d: %d (%s), expected %d", _i, rc,
                  err.msg, c->code);
    ck_assert_int_eq(err.code, c->code);
    ck_assert_msg(strstr(err.msg, c->needle), "case %d: \"%s\" lacks \"%s\"",
                  _i, err.msg, c->needle);
    /* All or nothing: Meta's good subgroup was not kept. */
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 0);
    derecho_layout_spec_destroy(spec);
    free(doc);
}
END_TEST

START_TEST(type_alias_must_match)
{
    char *doc = doc_with("{\"min_nodes_by_shard\": [1], "
                         "\"max_nodes_by_shard\": [1], "
                         "\"delivery_modes_by_shard\": [\"Raw\"], "
                         "\"profiles_by_shard\": [\"P\"]}");
    struct derecho_layout_spec *spec = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Meta", NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Other", NULL), 0);
    struct derecho_error err;
    ck_assert_int_eq(
        derecho_layout_spec_load_json(spec, doc, strlen(doc), &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "\"Other\""));
    /* No types declared yet: a clear error too. */
    struct derecho_layout_spec *empty = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&empty), 0);
    ck_assert_int_eq(
        derecho_layout_spec_load_json(empty, doc, strlen(doc), &err), -EINVAL);
    ck_assert_int_eq(derecho_layout_spec_load_json(NULL, doc, 1, &err),
                     -EINVAL);
    derecho_layout_spec_destroy(empty);
    derecho_layout_spec_destroy(spec);
    free(doc);
}
END_TEST

START_TEST(layout_from_conf)
{
    char dir[512], path[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/layout.json", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(original_layout, f);
    fclose(f);

    /* json_layout_file */
    char text[1024];
    snprintf(text, sizeof(text), "[LAYOUT]\njson_layout_file = %s\n", path);
    struct conf *c = td_conf(text);
    struct derecho_layout_spec *spec = two_types();
    struct derecho_error err;
    int rc = derecho_layout_spec_load_conf(spec, c, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 3);
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);

    /* json_layout, inline: wins over the file */
    snprintf(text, sizeof(text),
             "[LAYOUT]\njson_layout_file = %s\njson_layout = "
             "[{\"type_alias\": \"Meta\", \"layout\": "
             "[{\"min_nodes_by_shard\": [1], \"max_nodes_by_shard\": [1], "
             "\"delivery_modes_by_shard\": [\"Raw\"], \"profiles_by_shard\": "
             "[\"DEFAULT\"]}]}]\n",
             path);
    c = td_conf(text);
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Meta", NULL), 0);
    rc = derecho_layout_spec_load_conf(spec, c, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 1);
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);

    /* neither set; a missing file; a malformed file names the file */
    c = td_conf("");
    spec = two_types();
    ck_assert_int_eq(derecho_layout_spec_load_conf(spec, c, &err), -ENOENT);
    conf_destroy(c);
    snprintf(text, sizeof(text), "[LAYOUT]\njson_layout_file = %s/nope\n", dir);
    c = td_conf(text);
    ck_assert_int_eq(derecho_layout_spec_load_conf(spec, c, &err), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope"));
    conf_destroy(c);
    f = fopen(path, "w");
    fputs("[{\"type_alias\": \"Meta\",\n \"layout\": [}]", f);
    fclose(f);
    snprintf(text, sizeof(text), "[LAYOUT]\njson_layout_file = %s\n", path);
    c = td_conf(text);
    ck_assert_int_eq(derecho_layout_spec_load_conf(spec, c, &err), -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err.msg, "layout.json"));
    ck_assert_ptr_nonnull(strstr(err.msg, "line 2"));
    conf_destroy(c);
    derecho_layout_spec_destroy(spec);
}
END_TEST

TCase *tc_json(void)
{
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, original_format_loads);
    tcase_add_loop_test(tc, malformed_layouts_are_clear_errors, 0,
                        (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, type_alias_must_match);
    tcase_add_test(tc, layout_from_conf);
    return tc;
}
