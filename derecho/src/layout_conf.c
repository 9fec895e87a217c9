/* Layout specs from the configuration: [SUBGROUP/NAME] profiles and the
 * original's JSON layouts ([LAYOUT] json_layout / json_layout_file). */
#include "derecho-private.h"

#include <conf/conf.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LAYOUT_FILE (16u << 20)

int derecho_layout_spec_add_profile_subgroup(
    struct derecho_layout_spec *spec, uint32_t type_index, const struct conf *c,
    const char *profile, uint32_t *subgroup_index, struct derecho_error *err)
{
    if (!spec || !c || !profile ||
        strnlen(profile, DERECHO_MAX_NAME + 1) == 0 ||
        strnlen(profile, DERECHO_MAX_NAME + 1) > DERECHO_MAX_NAME)
        return derecho__fail(err, -EINVAL, "profile subgroup: bad argument");
    char section[DERECHO_MAX_NAME + 16];
    snprintf(section, sizeof(section), "SUBGROUP/%s", profile);
    static const char *const keys[] = {"num_shards", "min_nodes", "max_nodes"};
    uint64_t v[3];
    for (int i = 0; i < 3; i++) {
        int rc =
            conf_get_u64_range(c, section, keys[i], 1,
                               i == 0 ? DERECHO_MAX_SHARDS : UINT32_MAX, &v[i]);
        if (rc)
            return derecho__fail(err, rc, "[%s] %s: %s", section, keys[i],
                                 rc == -ENOENT
                                     ? "not set (in the profile or in "
                                       "[SUBGROUP/DEFAULT])"
                                     : derecho_strerror(rc));
    }
    if (v[2] < v[1])
        return derecho__fail(
            err, -EINVAL, "[%s] max_nodes (%llu) is below min_nodes (%llu)",
            section, (unsigned long long)v[2], (unsigned long long)v[1]);
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.min_nodes = (uint32_t)v[1];
    p.max_nodes = (uint32_t)v[2];
    p.profile = profile;
    int rc = derecho_layout_spec_add_subgroup(spec, type_index, (uint32_t)v[0],
                                              &p, subgroup_index);
    if (rc)
        return derecho__fail(err, rc, "[%s]: %s", section,
                             derecho_strerror(rc));
    return 0;
}

/* ---- JSON -----------------------------------------------------------------
 */

/* A non-negative integer below 2^32 - 1 given as a number or as a decimal
 * string (the original's files use strings: "min_nodes_by_shard": ["1"]). */
static bool json_uint(const struct derecho__json *v, bool allow_star,
                      uint32_t *out, bool *star)
{
    const char *s = v->text;
    if (v->kind != DERECHO__JSON_NUMBER && v->kind != DERECHO__JSON_STRING)
        return false;
    if (star)
        *star = false;
    if (allow_star && v->kind == DERECHO__JSON_STRING && s[0] == '*') {
        *star = true;
        s++;
    }
    if (!*s)
        return false;
    uint64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        x = x * 10 + (uint64_t)(*s - '0');
        if (x >= DERECHO_NODE_NONE)
            return false;
    }
    *out = (uint32_t)x;
    return true;
}

struct json_ctx {
    struct derecho_error *err;
    uint32_t entry;
    uint32_t subgroup;
};

static int shape(struct json_ctx *x, const struct derecho__json *at,
                 const char *key, const char *what)
{
    return derecho__fail(x->err, -EINVAL,
                         "JSON layout entry %u, subgroup %u%s%s (line %d, "
                         "column %d): %s",
                         x->entry, x->subgroup, key ? ", " : "", key ? key : "",
                         at->line, at->column, what);
}

static const char *const subgroup_keys[] = {
    "min_nodes_by_shard", "max_nodes_by_shard", "delivery_modes_by_shard",
    "profiles_by_shard", "reserved_node_ids_by_shard"};

static int json_subgroup(struct json_ctx *x, struct derecho_layout_spec *spec,
                         uint32_t type_index, const struct derecho__json *sg)
{
    if (sg->kind != DERECHO__JSON_OBJECT)
        return shape(x, sg, NULL, "a subgroup must be an object");
    for (size_t i = 0; i < sg->count; i++) {
        bool known = false;
        for (size_t k = 0; k < 5; k++)
            known |= strcmp(sg->keys[i], subgroup_keys[k]) == 0;
        if (!known)
            return shape(x, &sg->items[i], sg->keys[i], "unknown key");
    }
    const struct derecho__json *arr[5];
    for (int k = 0; k < 5; k++) {
        arr[k] = derecho__json_get(sg, subgroup_keys[k]);
        if (!arr[k] && k < 4)
            return shape(x, sg, subgroup_keys[k], "missing");
        if (arr[k] && arr[k]->kind != DERECHO__JSON_ARRAY)
            return shape(x, arr[k], subgroup_keys[k], "must be an array");
    }
    size_t num_shards = arr[0]->count;
    if (num_shards == 0)
        return shape(x, arr[0], subgroup_keys[0], "no shards");
    if (num_shards > DERECHO_MAX_SHARDS)
        return shape(x, arr[0], subgroup_keys[0], "too many shards");
    for (int k = 1; k < 5; k++)
        if (arr[k] && arr[k]->count != num_shards)
            return shape(x, arr[k], subgroup_keys[k],
                         "not as many entries as min_nodes_by_shard");

    struct derecho_shard_policy *pol = calloc(num_shards, sizeof(*pol));
    uint32_t *ids = NULL;
    size_t total_ids = 0;
    for (size_t j = 0; arr[4] && j < num_shards; j++)
        total_ids += arr[4]->items[j].count;
    /* Reserved ids and senders of all shards, in one block: twice the ids. */
    if (total_ids > 2 * (size_t)DERECHO_MAX_MEMBERS * DERECHO_MAX_SHARDS) {
        free(pol);
        return shape(x, arr[4], subgroup_keys[4], "too many node ids");
    }
    ids = malloc((2 * total_ids + 1) * sizeof(*ids));
    if (!pol || !ids) {
        free(pol);
        free(ids);
        return derecho__fail(x->err, -ENOMEM, "JSON layout: out of memory");
    }
    int rc = 0;
    size_t used = 0;
    for (size_t j = 0; j < num_shards && rc == 0; j++) {
        struct derecho_shard_policy *p = &pol[j];
        derecho_shard_policy_init(p);
        const struct derecho__json *mn = &arr[0]->items[j];
        const struct derecho__json *mx = &arr[1]->items[j];
        const struct derecho__json *md = &arr[2]->items[j];
        const struct derecho__json *pf = &arr[3]->items[j];
        if (!json_uint(mn, false, &p->min_nodes, NULL) || p->min_nodes == 0) {
            rc = shape(x, mn, subgroup_keys[0],
                       "expected a whole number of at least 1");
        } else if (!json_uint(mx, false, &p->max_nodes, NULL) ||
                   p->max_nodes < p->min_nodes) {
            rc = shape(x, mx, subgroup_keys[1],
                       "expected a whole number, at least min_nodes");
        } else if (md->kind != DERECHO__JSON_STRING ||
                   (strcmp(md->text, "Ordered") != 0 &&
                    strcmp(md->text, "Raw") != 0)) {
            rc = shape(x, md, subgroup_keys[2],
                       "expected \"Ordered\" or \"Raw\"");
        } else if (pf->kind != DERECHO__JSON_STRING || pf->len == 0 ||
                   pf->len > DERECHO_MAX_NAME) {
            rc = shape(x, pf, subgroup_keys[3],
                       "expected a profile name of 1 to 63 bytes");
        } else {
            p->mode = strcmp(md->text, "Raw") == 0 ? DERECHO_MODE_UNORDERED
                                                   : DERECHO_MODE_ORDERED;
            p->profile = pf->text;
        }
        if (rc || !arr[4])
            continue;
        const struct derecho__json *res = &arr[4]->items[j];
        if (res->kind != DERECHO__JSON_ARRAY) {
            rc = shape(x, res, subgroup_keys[4],
                       "each shard's entry must be an array");
            continue;
        }
        uint32_t *reserved = ids + used;
        uint32_t *senders = reserved + res->count;
        size_t nsend = 0;
        for (size_t k = 0; k < res->count && rc == 0; k++) {
            bool star;
            if (!json_uint(&res->items[k], true, &reserved[k], &star)) {
                rc = shape(x, &res->items[k], subgroup_keys[4],
                           "expected a node id (\"*ID\" for a sender)");
                break;
            }
            for (size_t q = 0; q < k; q++)
                if (reserved[q] == reserved[k])
                    rc = shape(x, &res->items[k], subgroup_keys[4],
                               "node id listed twice");
            if (star)
                senders[nsend++] = reserved[k];
        }
        used += 2 * res->count;
        p->reserved = reserved;
        p->num_reserved = res->count;
        p->senders = senders;
        p->num_senders = nsend;
    }
    if (rc == 0) {
        rc = derecho_layout_spec_add_custom_subgroup(
            spec, type_index, pol, (uint32_t)num_shards, NULL);
        if (rc == -EINVAL)
            rc = shape(x, sg, NULL, "two shards reserve the same node id");
        else if (rc)
            rc = derecho__fail(x->err, rc, "JSON layout entry %u: %s", x->entry,
                               derecho_strerror(rc));
    }
    free(pol);
    free(ids);
    return rc;
}

int derecho_layout_spec_load_json(struct derecho_layout_spec *spec,
                                  const char *json, size_t len,
                                  struct derecho_error *err)
{
    if (!spec || (!json && len))
        return derecho__fail(err, -EINVAL, "JSON layout: NULL argument");
    if (spec->num_subgroups)
        return derecho__fail(err, -EINVAL,
                             "JSON layout: the spec already has subgroups");
    if (spec->num_types == 0)
        return derecho__fail(err, -EINVAL,
                             "JSON layout: declare the subgroup types first");
    struct derecho__json *doc;
    int rc = derecho__json_parse(json, len, &doc, err);
    if (rc)
        return rc;
    /* Built into a scratch spec with the same types: all or nothing. */
    struct derecho_layout_spec scratch = {.num_types = spec->num_types,
                                          .type_names = spec->type_names};
    struct json_ctx x = {.err = err};
    if (doc->kind != DERECHO__JSON_ARRAY) {
        rc = derecho__fail(err, -EINVAL,
                           "JSON layout: expected an array of one entry per "
                           "subgroup type");
    } else if (doc->count != spec->num_types) {
        rc = derecho__fail(err, -EINVAL,
                           "JSON layout: %zu entries, but the application "
                           "declares %u subgroup types",
                           doc->count, spec->num_types);
    }
    for (uint32_t t = 0; rc == 0 && t < spec->num_types; t++) {
        const struct derecho__json *e = &doc->items[t];
        x.entry = t;
        x.subgroup = 0;
        const struct derecho__json *alias = derecho__json_get(e, "type_alias");
        const struct derecho__json *layout = derecho__json_get(e, "layout");
        if (e->kind != DERECHO__JSON_OBJECT || !alias || !layout ||
            e->count != 2) {
            rc = derecho__fail(err, -EINVAL,
                               "JSON layout entry %u (line %d): expected an "
                               "object with exactly \"type_alias\" and "
                               "\"layout\"",
                               t, e->line);
        } else if (alias->kind != DERECHO__JSON_STRING ||
                   strcmp(alias->text, spec->type_names[t]) != 0) {
            rc = derecho__fail(err, -EINVAL,
                               "JSON layout entry %u (line %d): type_alias "
                               "is not \"%s\", the type declared at index %u",
                               t, alias->line, spec->type_names[t], t);
        } else if (layout->kind != DERECHO__JSON_ARRAY || layout->count == 0) {
            rc = derecho__fail(err, -EINVAL,
                               "JSON layout entry %u (line %d): \"layout\" "
                               "must be a non-empty array of subgroups",
                               t, layout->line);
        }
        for (size_t g = 0; rc == 0 && g < layout->count; g++) {
            x.subgroup = (uint32_t)g;
            rc = json_subgroup(&x, &scratch, t, &layout->items[g]);
        }
    }
    if (rc == 0)
        rc = derecho__spec_take_subgroups(spec, &scratch);
    if (rc == -ENOMEM)
        derecho__fail(err, rc, "JSON layout: out of memory");
    derecho__spec_free_subgroups(&scratch);
    derecho__json_free(doc);
    return rc;
}

static int read_file(const char *path, char **out, size_t *len,
                     struct derecho_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return derecho__fail(err, -errno, "json_layout_file %s: %s", path,
                             derecho_strerror(-errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return derecho__fail(err, -EINVAL,
                             "json_layout_file %s: not a regular file", path);
    }
    if (st.st_size > MAX_LAYOUT_FILE) {
        close(fd);
        return derecho__fail(err, -EFBIG,
                             "json_layout_file %s: larger than 16 MiB", path);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return derecho__fail(err, -ENOMEM, "json_layout_file: out of memory");
    }
    size_t n = 0;
    while (n < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
}

int derecho_layout_spec_load_conf(struct derecho_layout_spec *spec,
                                  const struct conf *c,
                                  struct derecho_error *err)
{
    if (!spec || !c)
        return derecho__fail(err, -EINVAL, "layout: NULL argument");
    const char *inline_json = NULL, *path = NULL;
    conf_get_string(c, "LAYOUT", "json_layout", &inline_json);
    conf_get_string(c, "LAYOUT", "json_layout_file", &path);
    if (inline_json && inline_json[0])
        return derecho_layout_spec_load_json(spec, inline_json,
                                             strlen(inline_json), err);
    if (!path || !path[0])
        return derecho__fail(err, -ENOENT,
                             "[LAYOUT] json_layout and json_layout_file are "
                             "not set");
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc)
        return rc;
    rc = derecho_layout_spec_load_json(spec, text, len, err);
    if (rc && err) {
        /* Say which file. */
        char msg[sizeof(err->msg)];
        memcpy(msg, err->msg, sizeof(msg));
        size_t n = strnlen(path, 96);
        derecho__fail(err, rc, "%.*s: %.*s", (int)n, path,
                      (int)(sizeof(msg) - n - 3), msg);
    }
    free(text);
    return rc;
}
