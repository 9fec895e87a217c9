/* Descriptor checks and layout fingerprints: walks of the descriptor tree
 * alone (no values).  Both keep the path from the root so that recursive
 * descriptors (a struct holding an optional of itself) terminate. */
#include "mutils-private.h"

#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

static bool is_indirect(const struct mutils_type *t)
{
    return t->kind == MUTILS_KIND_OPTIONAL || t->kind == MUTILS_KIND_ARRAY ||
           t->kind == MUTILS_KIND_MAP;
}

/* Index of t on path[0..depth), or -1. */
static int on_path(const struct mutils_type *const *path, int depth,
                   const struct mutils_type *t)
{
    for (int i = 0; i < depth; i++)
        if (path[i] == t)
            return i;
    return -1;
}

static int check(const struct mutils_type *t, const struct mutils_type **path,
                 int depth)
{
    if (!t)
        return -EINVAL;
    int at = on_path(path, depth, t);
    if (at >= 0) {
        /* A cycle is fine only through an indirection (optional, array,
         * map): then values are finite and their depth is data-driven. */
        for (int i = at; i < depth; i++)
            if (is_indirect(path[i]))
                return 0;
        return -ELOOP;
    }
    if (depth >= MUTILS_MAX_DEPTH)
        return -ELOOP;
    if (t->kind < MUTILS_KIND_U8 || t->kind > MUTILS_KIND_ARGS)
        return -EINVAL;
    path[depth] = t;
    int rc = 0;
    switch (t->kind) {
    case MUTILS_KIND_STRING:
    case MUTILS_KIND_BYTES:
        return t->max <= MUTILS_MAX_LEN ? 0 : -EINVAL;
    case MUTILS_KIND_STRBUF:
        return t->max >= 1 && t->max - 1 <= MUTILS_MAX_LEN ? 0 : -EINVAL;
    case MUTILS_KIND_ARRAY:
    case MUTILS_KIND_FIXED:
    case MUTILS_KIND_OPTIONAL:
        if (t->max > MUTILS_MAX_LEN)
            return -EINVAL;
        rc = check(t->elem, path, depth + 1);
        if (rc || t->kind != MUTILS_KIND_FIXED)
            return rc;
        if (t->max && mutils__c_size(t->elem) > SIZE_MAX / t->max)
            return -EINVAL;
        return 0;
    case MUTILS_KIND_MAP:
        if (t->max > MUTILS_MAX_LEN)
            return -EINVAL;
        rc = check(t->elem, path, depth + 1);
        return rc ? rc : check(t->value, path, depth + 1);
    case MUTILS_KIND_ARGS:
        if (depth != 0)
            return -EINVAL;
        __attribute__((fallthrough)); /* a pack is checked like a struct */
    case MUTILS_KIND_STRUCT:
        if (t->num_fields && !t->fields)
            return -EINVAL;
        if (t->kind == MUTILS_KIND_STRUCT && t->c_align &&
            (t->c_align & (t->c_align - 1)))
            return -EINVAL;
        for (size_t i = 0; i < t->num_fields; i++) {
            const struct mutils_field *f = &t->fields[i];
            rc = check(f->type, path, depth + 1);
            if (rc)
                return rc;
            if (f->type->kind == MUTILS_KIND_ARGS)
                return -EINVAL;
            size_t cs = mutils__c_size(f->type);
            if (t->kind == MUTILS_KIND_STRUCT &&
                (f->offset > t->c_size || cs > t->c_size - f->offset))
                return -EINVAL;
        }
        return 0;
    default:
        return 0;
    }
}

int mutils_type_check(const struct mutils_type *t)
{
    const struct mutils_type *path[MUTILS_MAX_DEPTH];
    return check(t, path, 0);
}

/* ---- fingerprint ------------------------------------------------------ */

/* Feeds host-independent bytes (little-endian numbers) to the hash. */
static int feed(XXH3_state_t *st, const void *p, size_t n)
{
    return XXH3_64bits_update(st, p, n) == XXH_OK ? 0 : -EINVAL;
}

static int feed_u64(XXH3_state_t *st, uint64_t v)
{
    uint8_t b[8];
    mutils__st64(b, v);
    return feed(st, b, 8);
}

static int feed_name(XXH3_state_t *st, const char *name)
{
    if (!name)
        return feed_u64(st, UINT64_MAX);
    size_t len = strlen(name);
    int rc = feed_u64(st, len);
    return rc ? rc : feed(st, name, len);
}

static int hash_node(XXH3_state_t *st, const struct mutils_type *t,
                     const struct mutils_type **path, int depth)
{
    if (!t)
        return -EINVAL;
    int at = on_path(path, depth, t);
    if (at >= 0) {
        /* A back reference: how many levels up the cycle closes. */
        uint8_t tag = 0xff;
        int rc = feed(st, &tag, 1);
        return rc ? rc : feed_u64(st, (uint64_t)(depth - at));
    }
    if (depth >= MUTILS_MAX_DEPTH)
        return -ELOOP;
    if (t->kind < MUTILS_KIND_U8 || t->kind > MUTILS_KIND_ARGS)
        return -EINVAL;
    path[depth] = t;
    uint8_t kind = (uint8_t)t->kind;
    int rc = feed(st, &kind, 1);
    if (rc)
        return rc;
    switch (t->kind) {
    case MUTILS_KIND_STRING:
    case MUTILS_KIND_BYTES:
    case MUTILS_KIND_STRBUF:
        return feed_u64(st, t->max);
    case MUTILS_KIND_ARRAY:
    case MUTILS_KIND_FIXED:
        rc = feed_u64(st, t->max);
        return rc ? rc : hash_node(st, t->elem, path, depth + 1);
    case MUTILS_KIND_OPTIONAL:
        return hash_node(st, t->elem, path, depth + 1);
    case MUTILS_KIND_MAP:
        rc = feed_u64(st, t->max);
        if (!rc)
            rc = hash_node(st, t->elem, path, depth + 1);
        return rc ? rc : hash_node(st, t->value, path, depth + 1);
    case MUTILS_KIND_STRUCT:
    case MUTILS_KIND_ARGS:
        rc = feed_name(st, t->name);
        if (!rc)
            rc = feed_u64(st, t->num_fields);
        for (size_t i = 0; !rc && i < t->num_fields; i++) {
            rc = feed_name(st, t->fields[i].name);
            if (!rc)
                rc = hash_node(st, t->fields[i].type, path, depth + 1);
        }
        return rc;
    default:
        return 0;
    }
}

int mutils_fingerprint(const struct mutils_type *t, uint64_t *fingerprint)
{
    static const char magic[] = "derecho-mutils-layout";
    const struct mutils_type *path[MUTILS_MAX_DEPTH];
    if (!t || !fingerprint)
        return -EINVAL;
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return -ENOMEM;
    int rc = XXH3_64bits_reset(st) == XXH_OK ? 0 : -EINVAL;
    if (!rc)
        rc = feed(st, magic, sizeof magic - 1);
    if (!rc)
        rc = feed_u64(st, MUTILS_WIRE_VERSION);
    if (!rc)
        rc = hash_node(st, t, path, 0);
    if (!rc)
        *fingerprint = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rc;
}
