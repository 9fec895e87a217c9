/* Subgroup and shard layouts: the application's declared types and
 * policies (the spec), and the allocator that maps a view's members to
 * subgroups and shards, keeping members in their shards across views. */
#include "derecho-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ======================================================================= */
/* Specs                                                                   */
/* ======================================================================= */

void derecho_shard_policy_init(struct derecho_shard_policy *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof(*p));
    p->size = sizeof(*p);
    p->min_nodes = 1;
    p->max_nodes = DERECHO_UNLIMITED;
    p->mode = DERECHO_MODE_ORDERED;
}

int derecho_layout_spec_create(struct derecho_layout_spec **out)
{
    if (!out)
        return -EINVAL;
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

static void spec_shard_fini(struct derecho__spec_shard *s)
{
    free(s->reserved);
    free(s->senders);
}

static void spec_subgroup_fini(struct derecho__spec_subgroup *sg)
{
    for (uint32_t i = 0; sg->shards && i < sg->num_shards; i++)
        spec_shard_fini(&sg->shards[i]);
    free(sg->shards);
}

void derecho__spec_free_subgroups(struct derecho_layout_spec *spec)
{
    for (uint32_t i = 0; i < spec->num_subgroups; i++)
        spec_subgroup_fini(&spec->subgroups[i]);
    free(spec->subgroups);
    spec->subgroups = NULL;
    spec->num_subgroups = spec->cap_subgroups = 0;
}

void derecho_layout_spec_destroy(struct derecho_layout_spec *spec)
{
    if (!spec)
        return;
    derecho__spec_free_subgroups(spec);
    free(spec->type_names);
    free(spec);
}

static bool valid_name(const char *name)
{
    if (!name)
        return false;
    size_t n = strnlen(name, DERECHO_MAX_NAME + 1);
    return n >= 1 && n <= DERECHO_MAX_NAME;
}

int derecho_layout_spec_add_type(struct derecho_layout_spec *spec,
                                 const char *name, uint32_t *type_index)
{
    if (!spec || !valid_name(name))
        return -EINVAL;
    for (uint32_t i = 0; i < spec->num_types; i++)
        if (strcmp(spec->type_names[i], name) == 0)
            return -EINVAL;
    if (spec->num_types >= DERECHO_MAX_TYPES)
        return -ENOSPC;
    char(*names)[DERECHO_MAX_NAME + 1] = realloc(
        spec->type_names, (spec->num_types + 1) * sizeof(*spec->type_names));
    if (!names)
        return -ENOMEM;
    spec->type_names = names;
    derecho__copy_str(names[spec->num_types], sizeof(names[0]), name);
    if (type_index)
        *type_index = spec->num_types;
    spec->num_types++;
    return 0;
}

uint32_t derecho_layout_spec_num_types(const struct derecho_layout_spec *spec)
{
    return spec ? spec->num_types : 0;
}

uint32_t
derecho_layout_spec_num_subgroups(const struct derecho_layout_spec *spec)
{
    return spec ? spec->num_subgroups : 0;
}

int derecho_layout_spec_set_allocator(struct derecho_layout_spec *spec,
                                      derecho_allocator_fn fn, void *ctx)
{
    if (!spec)
        return -EINVAL;
    spec->allocator = fn;
    spec->allocator_ctx = fn ? ctx : NULL;
    return 0;
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* A policy as the caller gave it: fields past its size take defaults. */
static int read_policy(const struct derecho_shard_policy *in,
                       struct derecho_shard_policy *p)
{
    derecho_shard_policy_init(p);
    if (!in)
        return 0;
    /* This is the first released layout: a caller's struct covers it all;
     * a newer caller's larger struct is accepted when the extra is zero. */
    if (in->size < sizeof(*p))
        return -EINVAL;
    size_t n = in->size < sizeof(*p) ? in->size : sizeof(*p);
    if (in->size > sizeof(*p)) {
        const unsigned char *extra = (const unsigned char *)in + sizeof(*p);
        for (size_t i = 0; i < in->size - sizeof(*p); i++)
            if (extra[i])
                return -EINVAL;
    }
    memcpy(p, in, n);
    p->size = sizeof(*p);
    return 0;
}

static int check_policy(const struct derecho_shard_policy *p)
{
    if (p->min_nodes == 0 || p->max_nodes < p->min_nodes)
        return -EINVAL;
    if (p->mode != DERECHO_MODE_ORDERED && p->mode != DERECHO_MODE_UNORDERED)
        return -EINVAL;
    if (p->profile && !valid_name(p->profile))
        return -EINVAL;
    if ((p->num_reserved && !p->reserved) || (p->num_senders && !p->senders))
        return -EINVAL;
    if (p->num_reserved > DERECHO_MAX_MEMBERS ||
        p->num_senders > DERECHO_MAX_MEMBERS)
        return -ENOSPC;
    for (size_t i = 0; i < p->num_reserved; i++)
        if (p->reserved[i] == DERECHO_NODE_NONE ||
            id_in(p->reserved, i, p->reserved[i]))
            return -EINVAL;
    for (size_t i = 0; i < p->num_senders; i++) {
        if (p->senders[i] == DERECHO_NODE_NONE ||
            id_in(p->senders, i, p->senders[i]))
            return -EINVAL;
        /* The original: senders are a subset of the reserved nodes. */
        if (p->num_reserved &&
            !id_in(p->reserved, p->num_reserved, p->senders[i]))
            return -EINVAL;
    }
    return 0;
}

static uint32_t *dup_ids(const uint32_t *ids, size_t n, bool *failed)
{
    if (n == 0)
        return NULL;
    uint32_t *copy = malloc(n * sizeof(*copy));
    if (!copy)
        *failed = true;
    else
        memcpy(copy, ids, n * sizeof(*copy));
    return copy;
}

static int add_subgroup(struct derecho_layout_spec *spec, uint32_t type_index,
                        bool entire_view,
                        const struct derecho_shard_policy *policies,
                        bool same_policy, uint32_t num_shards,
                        uint32_t *subgroup_index)
{
    if (!spec || type_index >= spec->num_types || num_shards == 0)
        return -EINVAL;
    if (num_shards > DERECHO_MAX_SHARDS)
        return -ENOSPC;
    if (spec->num_subgroups >= DERECHO_MAX_SUBGROUPS)
        return -ENOSPC;
    /* Check every policy, and that no node is reserved by two shards of
     * this subgroup (a node is in one shard of a subgroup at most). */
    for (uint32_t i = 0; i < num_shards; i++) {
        struct derecho_shard_policy p;
        int rc =
            read_policy(policies ? &policies[same_policy ? 0 : i] : NULL, &p);
        if (rc == 0)
            rc = check_policy(&p);
        if (rc)
            return rc;
        if (same_policy && num_shards > 1 && p.num_reserved)
            return -EINVAL;
        for (uint32_t j = 0; !same_policy && j < i; j++) {
            struct derecho_shard_policy q;
            read_policy(&policies[j], &q);
            for (size_t k = 0; k < p.num_reserved; k++)
                if (id_in(q.reserved, q.num_reserved, p.reserved[k]))
                    return -EINVAL;
        }
    }
    if (spec->num_subgroups == spec->cap_subgroups) {
        uint32_t cap = spec->cap_subgroups ? 2 * spec->cap_subgroups : 8;
        struct derecho__spec_subgroup *sgs =
            realloc(spec->subgroups, cap * sizeof(*sgs));
        if (!sgs)
            return -ENOMEM;
        spec->subgroups = sgs;
        spec->cap_subgroups = cap;
    }
    struct derecho__spec_subgroup sg = {.type_index = type_index,
                                        .entire_view = entire_view,
                                        .num_shards = num_shards};
    sg.shards = calloc(num_shards, sizeof(*sg.shards));
    if (!sg.shards)
        return -ENOMEM;
    bool failed = false;
    for (uint32_t i = 0; i < num_shards; i++) {
        struct derecho_shard_policy p;
        read_policy(policies ? &policies[same_policy ? 0 : i] : NULL, &p);
        struct derecho__spec_shard *s = &sg.shards[i];
        s->min_nodes = p.min_nodes;
        s->max_nodes = p.max_nodes;
        s->mode = p.mode;
        derecho__copy_str(s->profile, sizeof(s->profile),
                          p.profile ? p.profile : "DEFAULT");
        s->reserved = dup_ids(p.reserved, p.num_reserved, &failed);
        s->num_reserved = p.num_reserved;
        s->senders = dup_ids(p.senders, p.num_senders, &failed);
        s->num_senders = p.num_senders;
        s->max_senders = p.max_senders;
    }
    if (failed) {
        spec_subgroup_fini(&sg);
        return -ENOMEM;
    }
    if (subgroup_index)
        *subgroup_index = spec->num_subgroups;
    spec->subgroups[spec->num_subgroups++] = sg;
    return 0;
}

int derecho_layout_spec_add_subgroup(struct derecho_layout_spec *spec,
                                     uint32_t type_index, uint32_t num_shards,
                                     const struct derecho_shard_policy *policy,
                                     uint32_t *subgroup_index)
{
    return add_subgroup(spec, type_index, false, policy, true, num_shards,
                        subgroup_index);
}

int derecho_layout_spec_add_custom_subgroup(
    struct derecho_layout_spec *spec, uint32_t type_index,
    const struct derecho_shard_policy *policies, uint32_t num_shards,
    uint32_t *subgroup_index)
{
    if (!policies)
        return -EINVAL;
    return add_subgroup(spec, type_index, false, policies, false, num_shards,
                        subgroup_index);
}

int derecho_layout_spec_add_entire_view(struct derecho_layout_spec *spec,
                                        uint32_t type_index, int mode,
                                        uint32_t *subgroup_index)
{
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.mode = mode;
    return add_subgroup(spec, type_index, true, &p, true, 1, subgroup_index);
}

int derecho_layout_spec_add_identical_subgroups(
    struct derecho_layout_spec *spec, uint32_t type_index, uint32_t k,
    uint32_t num_shards, const struct derecho_shard_policy *policy,
    uint32_t *first_subgroup)
{
    if (!spec || k == 0)
        return -EINVAL;
    if (k > DERECHO_MAX_SUBGROUPS - spec->num_subgroups)
        return -ENOSPC;
    /* All or nothing: undo the ones added when one fails. */
    uint32_t before = spec->num_subgroups;
    for (uint32_t i = 0; i < k; i++) {
        int rc = add_subgroup(spec, type_index, false, policy, true, num_shards,
                              i == 0 ? first_subgroup : NULL);
        if (rc) {
            while (spec->num_subgroups > before)
                spec_subgroup_fini(&spec->subgroups[--spec->num_subgroups]);
            return rc;
        }
    }
    return 0;
}

int derecho__spec_take_subgroups(struct derecho_layout_spec *spec,
                                 struct derecho_layout_spec *other)
{
    uint32_t need = spec->num_subgroups + other->num_subgroups;
    if (need > spec->cap_subgroups) {
        struct derecho__spec_subgroup *sgs =
            realloc(spec->subgroups, need * sizeof(*sgs));
        if (!sgs)
            return -ENOMEM;
        spec->subgroups = sgs;
        spec->cap_subgroups = need;
    }
    memcpy(&spec->subgroups[spec->num_subgroups], other->subgroups,
           other->num_subgroups * sizeof(*other->subgroups));
    spec->num_subgroups = need;
    other->num_subgroups = 0;
    return 0;
}

/* Serialises what the spec declares, for the fingerprint; names and
 * numbers only (no C layout), so equal specs agree on every host. */
static int spec_write(const struct derecho_layout_spec *spec,
                      struct mutils_writer *w)
{
    mutils_put_u32(w, DERECHO_PROTOCOL_VERSION);
    mutils_put_u32(w, spec->num_types);
    for (uint32_t i = 0; i < spec->num_types; i++)
        mutils_put_string(w, spec->type_names[i], DERECHO_MAX_NAME);
    mutils_put_u32(w, spec->num_subgroups);
    for (uint32_t i = 0; i < spec->num_subgroups; i++) {
        const struct derecho__spec_subgroup *sg = &spec->subgroups[i];
        mutils_put_u32(w, sg->type_index);
        mutils_put_bool(w, sg->entire_view);
        mutils_put_u32(w, sg->num_shards);
        for (uint32_t j = 0; j < sg->num_shards; j++) {
            const struct derecho__spec_shard *s = &sg->shards[j];
            mutils_put_u32(w, s->min_nodes);
            mutils_put_u32(w, s->max_nodes);
            mutils_put_u8(w, (uint8_t)s->mode);
            mutils_put_string(w, s->profile, DERECHO_MAX_NAME);
            mutils_put_array(w, MUTILS_KIND_U32, s->reserved, s->num_reserved,
                             DERECHO_MAX_MEMBERS);
            mutils_put_array(w, MUTILS_KIND_U32, s->senders, s->num_senders,
                             DERECHO_MAX_MEMBERS);
            mutils_put_u32(w, s->max_senders);
        }
    }
    return mutils_writer_error(w);
}

int derecho_layout_spec_fingerprint(const struct derecho_layout_spec *spec,
                                    uint64_t *fingerprint)
{
    if (!spec || !fingerprint)
        return -EINVAL;
    struct mutils_writer w;
    int rc = mutils_writer_init_growable(&w, 256);
    if (rc == 0)
        rc = spec_write(spec, &w);
    if (rc == 0)
        *fingerprint =
            XXH3_64bits(mutils_writer_data(&w), mutils_writer_len(&w));
    mutils_writer_fini(&w);
    return rc;
}

/* ======================================================================= */
/* Layouts                                                                 */
/* ======================================================================= */

struct derecho_layout *derecho__layout_alloc(uint32_t num_subgroups)
{
    struct derecho_layout *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    if (num_subgroups) {
        l->subgroups = calloc(num_subgroups, sizeof(*l->subgroups));
        if (!l->subgroups) {
            free(l);
            return NULL;
        }
    }
    l->num_subgroups = num_subgroups;
    return l;
}

void derecho_layout_destroy(struct derecho_layout *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; i < l->num_subgroups; i++) {
        struct derecho__subgroup *sg = &l->subgroups[i];
        for (uint32_t j = 0; sg->shards && j < sg->num_shards; j++) {
            free(sg->shards[j].members);
            free(sg->shards[j].is_sender);
        }
        free(sg->shards);
    }
    free(l->subgroups);
    free(l);
}

/* Node id -> rank, by binary search over (id, rank) pairs sorted by id. */
struct rank_entry {
    uint32_t id;
    uint32_t rank;
};

static int cmp_rank_entry(const void *a, const void *b)
{
    uint32_t x = ((const struct rank_entry *)a)->id;
    uint32_t y = ((const struct rank_entry *)b)->id;
    return x < y ? -1 : x > y;
}

static long rank_lookup(const struct rank_entry *index, size_t n, uint32_t id)
{
    struct rank_entry key = {id, 0};
    const struct rank_entry *e =
        bsearch(&key, index, n, sizeof(*index), cmp_rank_entry);
    return e ? (long)e->rank : -1;
}

/* In shard j of subgroup sg (any j other than except)? */
static bool in_other_shard(const struct derecho__subgroup *sg, uint32_t except,
                           uint32_t id)
{
    for (uint32_t j = 0; j < sg->num_shards; j++)
        if (j != except &&
            id_in(sg->shards[j].members, sg->shards[j].num_members, id))
            return true;
    return false;
}

static void shard_append(struct derecho__shard *s, uint32_t id)
{
    s->members[s->num_members++] = id;
}

static void assign_senders(struct derecho__shard *s,
                           const struct derecho__spec_shard *p)
{
    s->num_senders = 0;
    for (size_t i = 0; i < s->num_members; i++) {
        bool allowed = p->num_senders == 0 ||
                       id_in(p->senders, p->num_senders, s->members[i]);
        if (allowed && p->max_senders && s->num_senders >= p->max_senders)
            allowed = false;
        s->is_sender[i] = allowed;
        s->num_senders += allowed;
    }
}

static bool prev_matches(const struct derecho_layout_spec *spec,
                         const struct derecho_layout *prev)
{
    if (prev->num_subgroups != spec->num_subgroups)
        return false;
    for (uint32_t i = 0; i < spec->num_subgroups; i++)
        if (prev->subgroups[i].num_shards != spec->subgroups[i].num_shards ||
            prev->subgroups[i].type_index != spec->subgroups[i].type_index)
            return false;
    return true;
}

/* What an application allocator fills: the layout being made and the
 * view's members, to check what it puts in. */
struct derecho_layout_draft {
    struct derecho_layout *layout;
    const struct rank_entry *index;
    size_t num_members;
};

int derecho_layout_draft_set_shard(struct derecho_layout_draft *d,
                                   uint32_t subgroup, uint32_t shard,
                                   const uint32_t *members,
                                   const bool *is_sender, size_t n)
{
    if (!d || (!members && n > 0))
        return -EINVAL;
    struct derecho_layout *l = d->layout;
    if (subgroup >= l->num_subgroups ||
        shard >= l->subgroups[subgroup].num_shards)
        return -ERANGE;
    struct derecho__subgroup *sg = &l->subgroups[subgroup];
    struct derecho__shard *s = &sg->shards[shard];
    if (n > d->num_members)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (rank_lookup(d->index, d->num_members, members[i]) < 0 ||
            id_in(members, i, members[i]) ||
            in_other_shard(sg, shard, members[i]))
            return -EINVAL;
    memcpy(s->members, members, n * sizeof(*members));
    s->num_members = n;
    s->num_senders = 0;
    for (size_t i = 0; i < n; i++) {
        s->is_sender[i] = is_sender ? is_sender[i] : true;
        s->num_senders += s->is_sender[i];
    }
    return 0;
}

int derecho_layout_draft_unprovisioned(struct derecho_layout_draft *d,
                                       uint32_t subgroup)
{
    if (!d)
        return -EINVAL;
    if (subgroup >= d->layout->num_subgroups)
        return -ERANGE;
    d->layout->subgroups[subgroup].provisioned = false;
    return 0;
}

int derecho_layout_compute(const struct derecho_layout_spec *spec,
                           const uint32_t *members, size_t n,
                           const struct derecho_layout *prev,
                           struct derecho_layout **out,
                           struct derecho_error *err)
{
    if (out)
        *out = NULL;
    if (!spec || !out || (!members && n > 0))
        return derecho__fail(err, -EINVAL, "layout: NULL argument");
    if (n > DERECHO_MAX_MEMBERS)
        return derecho__fail(err, -ERANGE, "layout: %zu members (at most %d)",
                             n, DERECHO_MAX_MEMBERS);
    if (prev && !prev_matches(spec, prev))
        return derecho__fail(err, -EINVAL,
                             "layout: the previous layout has other "
                             "subgroups or shards than the spec");

    struct rank_entry *index = malloc((n ? n : 1) * sizeof(*index));
    bool *assigned = calloc(n ? n : 1, sizeof(*assigned));
    bool *reserved_anywhere = calloc(n ? n : 1, sizeof(*reserved_anywhere));
    struct derecho_layout *l = derecho__layout_alloc(spec->num_subgroups);
    int rc = 0;
    if (!index || !assigned || !reserved_anywhere || !l) {
        rc = derecho__fail(err, -ENOMEM, "layout: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        index[i].id = members[i];
        index[i].rank = (uint32_t)i;
    }
    qsort(index, n, sizeof(*index), cmp_rank_entry);
    for (size_t i = 0; i < n; i++) {
        if (index[i].id == DERECHO_NODE_NONE ||
            (i > 0 && index[i].id == index[i - 1].id)) {
            rc = derecho__fail(err, -EINVAL,
                               "layout: node id %u listed twice or invalid",
                               index[i].id);
            goto done;
        }
    }

    /* Shapes and step 1: every shard keeps its surviving members (in their
     * previous order), then takes its present reserved nodes. */
    for (uint32_t g = 0; g < spec->num_subgroups; g++) {
        const struct derecho__spec_subgroup *ssg = &spec->subgroups[g];
        struct derecho__subgroup *sg = &l->subgroups[g];
        sg->type_index = ssg->type_index;
        sg->num_shards = ssg->num_shards;
        sg->shards = calloc(ssg->num_shards, sizeof(*sg->shards));
        if (!sg->shards) {
            rc = derecho__fail(err, -ENOMEM, "layout: out of memory");
            goto done;
        }
        for (uint32_t j = 0; j < ssg->num_shards; j++) {
            struct derecho__shard *s = &sg->shards[j];
            const struct derecho__spec_shard *p = &ssg->shards[j];
            s->mode = p->mode;
            memcpy(s->profile, p->profile, sizeof(s->profile));
            s->members = malloc((n ? n : 1) * sizeof(*s->members));
            s->is_sender = malloc((n ? n : 1) * sizeof(*s->is_sender));
            if (!s->members || !s->is_sender) {
                rc = derecho__fail(err, -ENOMEM, "layout: out of memory");
                goto done;
            }
            for (size_t k = 0; k < p->num_reserved; k++) {
                long r = rank_lookup(index, n, p->reserved[k]);
                if (r >= 0)
                    reserved_anywhere[r] = true;
            }
        }
    }
    if (spec->allocator) {
        for (uint32_t g = 0; g < spec->num_subgroups; g++)
            l->subgroups[g].provisioned = true;
        struct derecho_layout_draft draft = {l, index, n};
        rc = spec->allocator(spec->allocator_ctx, members, n, prev, &draft);
        if (rc > 0)
            rc = -rc;
        if (rc)
            derecho__fail(err, rc,
                          "layout: the application's allocator "
                          "failed: %s",
                          derecho_strerror(rc));
        goto done;
    }
    for (uint32_t g = 0; g < spec->num_subgroups; g++) {
        const struct derecho__spec_subgroup *ssg = &spec->subgroups[g];
        struct derecho__subgroup *sg = &l->subgroups[g];
        if (ssg->entire_view)
            continue;
        for (uint32_t j = 0; j < ssg->num_shards; j++) {
            struct derecho__shard *s = &sg->shards[j];
            const struct derecho__spec_shard *p = &ssg->shards[j];
            if (prev) {
                const struct derecho__shard *ps = &prev->subgroups[g].shards[j];
                for (size_t k = 0; k < ps->num_members; k++) {
                    long r = rank_lookup(index, n, ps->members[k]);
                    if (r < 0 ||
                        id_in(s->members, s->num_members, ps->members[k]))
                        continue;
                    shard_append(s, ps->members[k]);
                    assigned[r] = true;
                }
            }
            for (size_t k = 0; k < p->num_reserved; k++) {
                long r = rank_lookup(index, n, p->reserved[k]);
                if (r < 0 ||
                    id_in(s->members, s->num_members, p->reserved[k]) ||
                    in_other_shard(sg, j, p->reserved[k]))
                    continue;
                shard_append(s, p->reserved[k]);
                assigned[r] = true;
            }
            /* A reserved node that joined must not push the shard above its
             * maximum: kept members that this shard does not reserve make
             * room, the latest first (back to the pool unless in a shard of
             * another subgroup). */
            for (size_t k = s->num_members;
                 k-- > 0 && s->num_members > p->max_nodes;) {
                uint32_t id = s->members[k];
                if (id_in(p->reserved, p->num_reserved, id))
                    continue;
                memmove(&s->members[k], &s->members[k + 1],
                        (s->num_members - k - 1) * sizeof(*s->members));
                s->num_members--;
            }
        }
    }
    /* Who is in a shard now (a member that made room may still be in a
     * shard of another subgroup). */
    memset(assigned, 0, (n ? n : 1) * sizeof(*assigned));
    for (uint32_t g = 0; g < spec->num_subgroups; g++) {
        if (spec->subgroups[g].entire_view)
            continue;
        const struct derecho__subgroup *sg = &l->subgroups[g];
        for (uint32_t j = 0; j < sg->num_shards; j++)
            for (size_t k = 0; k < sg->shards[j].num_members; k++)
                assigned[rank_lookup(index, n, sg->shards[j].members[k])] =
                    true;
    }

    /* The pool: members in no shard yet and reserved by none, rank order. */
    size_t pool_len = 0, next = 0;
    uint32_t *pool = malloc((n ? n : 1) * sizeof(*pool));
    if (!pool) {
        rc = derecho__fail(err, -ENOMEM, "layout: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (!assigned[i] && !reserved_anywhere[i])
            pool[pool_len++] = members[i];

    /* Step 2: minimums, subgroup by subgroup in declaration order.  A
     * subgroup that cannot have all its minimums takes nobody, so that the
     * members stay available to the subgroups after it. */
    for (uint32_t g = 0; g < spec->num_subgroups; g++) {
        const struct derecho__spec_subgroup *ssg = &spec->subgroups[g];
        struct derecho__subgroup *sg = &l->subgroups[g];
        if (ssg->entire_view) {
            for (size_t i = 0; i < n; i++)
                shard_append(&sg->shards[0], members[i]);
            sg->provisioned = n > 0;
            continue;
        }
        size_t need = 0;
        for (uint32_t j = 0; j < ssg->num_shards; j++)
            if (sg->shards[j].num_members < ssg->shards[j].min_nodes)
                need += ssg->shards[j].min_nodes - sg->shards[j].num_members;
        if (need > pool_len - next)
            continue;
        for (uint32_t j = 0; j < ssg->num_shards; j++)
            while (sg->shards[j].num_members < ssg->shards[j].min_nodes)
                shard_append(&sg->shards[j], pool[next++]);
        sg->provisioned = true;
    }

    /* Step 3: deal what is left one at a time, shard by shard in
     * declaration order, up to each maximum, so extra members spread
     * evenly. */
    /* Only when every subgroup has its minimums: while one lacks members,
     * those left unassigned stay free for it (the next joins add to them)
     * rather than being dealt to shards that would keep them. */
    bool progress = true;
    for (uint32_t g = 0; g < spec->num_subgroups; g++)
        if (!l->subgroups[g].provisioned)
            progress = false;
    while (next < pool_len && progress) {
        progress = false;
        for (uint32_t g = 0; g < spec->num_subgroups && next < pool_len; g++) {
            const struct derecho__spec_subgroup *ssg = &spec->subgroups[g];
            struct derecho__subgroup *sg = &l->subgroups[g];
            if (ssg->entire_view || !sg->provisioned)
                continue;
            for (uint32_t j = 0; j < ssg->num_shards && next < pool_len; j++)
                if (sg->shards[j].num_members < ssg->shards[j].max_nodes) {
                    shard_append(&sg->shards[j], pool[next++]);
                    progress = true;
                }
        }
    }
    free(pool);

    for (uint32_t g = 0; g < spec->num_subgroups; g++)
        for (uint32_t j = 0; j < spec->subgroups[g].num_shards; j++)
            assign_senders(&l->subgroups[g].shards[j],
                           &spec->subgroups[g].shards[j]);
done:
    free(index);
    free(assigned);
    free(reserved_anywhere);
    if (rc) {
        derecho_layout_destroy(l);
        return rc;
    }
    *out = l;
    return 0;
}

bool derecho_layout_provisioned(const struct derecho_layout *l)
{
    if (!l)
        return false;
    for (uint32_t i = 0; i < l->num_subgroups; i++)
        if (!l->subgroups[i].provisioned)
            return false;
    return true;
}

uint32_t derecho_layout_num_subgroups(const struct derecho_layout *l)
{
    return l ? l->num_subgroups : 0;
}

int derecho_layout_subgroup(const struct derecho_layout *l, uint32_t subgroup,
                            struct derecho_subgroup_info *info)
{
    if (!l || !info)
        return -EINVAL;
    if (subgroup >= l->num_subgroups)
        return -ERANGE;
    const struct derecho__subgroup *sg = &l->subgroups[subgroup];
    info->type_index = sg->type_index;
    info->num_shards = sg->num_shards;
    info->provisioned = sg->provisioned;
    return 0;
}

int derecho_layout_shard(const struct derecho_layout *l, uint32_t subgroup,
                         uint32_t shard, struct derecho_shard_info *info)
{
    if (!l || !info)
        return -EINVAL;
    if (subgroup >= l->num_subgroups ||
        shard >= l->subgroups[subgroup].num_shards)
        return -ERANGE;
    const struct derecho__shard *s = &l->subgroups[subgroup].shards[shard];
    info->members = s->members;
    info->is_sender = s->is_sender;
    info->num_members = s->num_members;
    info->num_senders = s->num_senders;
    info->mode = s->mode;
    info->profile = s->profile;
    return 0;
}

int derecho_layout_shard_of(const struct derecho_layout *l, uint32_t subgroup,
                            uint32_t node_id)
{
    if (!l)
        return -EINVAL;
    if (subgroup >= l->num_subgroups)
        return -ERANGE;
    const struct derecho__subgroup *sg = &l->subgroups[subgroup];
    for (uint32_t j = 0; j < sg->num_shards; j++)
        if (id_in(sg->shards[j].members, sg->shards[j].num_members, node_id))
            return (int)j;
    return -ENOENT;
}

/* ---- encoding (inside a view's encoding) -------------------------------- */

int derecho__layout_encode(const struct derecho_layout *l,
                           struct mutils_writer *w)
{
    mutils_put_u32(w, l->num_subgroups);
    for (uint32_t g = 0; g < l->num_subgroups; g++) {
        const struct derecho__subgroup *sg = &l->subgroups[g];
        mutils_put_u32(w, sg->type_index);
        mutils_put_bool(w, sg->provisioned);
        mutils_put_u32(w, sg->num_shards);
        for (uint32_t j = 0; j < sg->num_shards; j++) {
            const struct derecho__shard *s = &sg->shards[j];
            mutils_put_u8(w, (uint8_t)s->mode);
            mutils_put_string(w, s->profile, DERECHO_MAX_NAME);
            mutils_put_array(w, MUTILS_KIND_U32, s->members, s->num_members,
                             DERECHO_MAX_MEMBERS);
            mutils_put_array(w, MUTILS_KIND_BOOL, s->is_sender, s->num_members,
                             DERECHO_MAX_MEMBERS);
        }
    }
    return mutils_writer_error(w);
}

int derecho__layout_decode(struct mutils_reader *r, const uint32_t *members,
                           size_t num_members, struct derecho_layout **out,
                           struct derecho_error *err)
{
    uint32_t num_subgroups;
    *out = NULL;
    if (mutils_get_u32(r, &num_subgroups))
        return derecho__fail(err, -EBADMSG, "view: layout truncated");
    if (num_subgroups > DERECHO_MAX_SUBGROUPS)
        return derecho__fail(err, -EBADMSG, "view: %u subgroups (at most %d)",
                             num_subgroups, DERECHO_MAX_SUBGROUPS);
    /* Each subgroup takes at least 9 bytes: refuse counts the bytes left
     * cannot hold before allocating for them. */
    if ((size_t)num_subgroups * 9 > mutils_reader_remaining(r))
        return derecho__fail(err, -EBADMSG, "view: layout truncated");
    struct derecho_layout *l = derecho__layout_alloc(num_subgroups);
    if (!l)
        return derecho__fail(err, -ENOMEM, "view: out of memory");
    int rc = 0;
    for (uint32_t g = 0; g < num_subgroups && rc == 0; g++) {
        struct derecho__subgroup *sg = &l->subgroups[g];
        uint32_t num_shards = 0;
        mutils_get_u32(r, &sg->type_index);
        mutils_get_bool(r, &sg->provisioned);
        if (mutils_get_u32(r, &num_shards)) {
            rc = derecho__fail(err, -EBADMSG, "view: layout truncated");
            break;
        }
        if (sg->type_index >= DERECHO_MAX_TYPES || num_shards == 0 ||
            num_shards > DERECHO_MAX_SHARDS ||
            (size_t)num_shards * 13 > mutils_reader_remaining(r)) {
            rc = derecho__fail(err, -EBADMSG,
                               "view: subgroup %u: bad type or shard count", g);
            break;
        }
        sg->shards = calloc(num_shards, sizeof(*sg->shards));
        if (!sg->shards) {
            rc = derecho__fail(err, -ENOMEM, "view: out of memory");
            break;
        }
        sg->num_shards = num_shards;
        for (uint32_t j = 0; j < num_shards && rc == 0; j++) {
            struct derecho__shard *s = &sg->shards[j];
            uint8_t mode = 0;
            size_t count = 0, flags = 0;
            mutils_get_u8(r, &mode);
            mutils_get_string(r, s->profile, sizeof(s->profile), NULL,
                              DERECHO_MAX_NAME);
            if (mutils_reader_error(r, NULL) || mode > DERECHO_MODE_UNORDERED ||
                s->profile[0] == 0) {
                rc = derecho__fail(err, -EBADMSG,
                                   "view: subgroup %u shard %u: bad mode or "
                                   "profile",
                                   g, j);
                break;
            }
            s->mode = mode;
            s->members =
                malloc((num_members ? num_members : 1) * sizeof(*s->members));
            s->is_sender =
                malloc((num_members ? num_members : 1) * sizeof(*s->is_sender));
            if (!s->members || !s->is_sender) {
                rc = derecho__fail(err, -ENOMEM, "view: out of memory");
                break;
            }
            if (mutils_get_array(r, MUTILS_KIND_U32, s->members, num_members,
                                 &count, DERECHO_MAX_MEMBERS) ||
                mutils_get_array(r, MUTILS_KIND_BOOL, s->is_sender, num_members,
                                 &flags, DERECHO_MAX_MEMBERS) ||
                flags != count) {
                rc = derecho__fail(err, -EBADMSG,
                                   "view: subgroup %u shard %u: bad member "
                                   "list",
                                   g, j);
                break;
            }
            s->num_members = count;
            for (size_t k = 0; k < count; k++) {
                if (!id_in(members, num_members, s->members[k]) ||
                    id_in(s->members, k, s->members[k]) ||
                    in_other_shard(sg, j, s->members[k])) {
                    rc = derecho__fail(err, -EBADMSG,
                                       "view: subgroup %u shard %u: node %u "
                                       "is no member, or listed twice",
                                       g, j, s->members[k]);
                    break;
                }
                s->num_senders += s->is_sender[k];
            }
        }
    }
    if (rc) {
        derecho_layout_destroy(l);
        return rc;
    }
    *out = l;
    return 0;
}
