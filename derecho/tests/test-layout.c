/* Layout specs and the allocator. */
#include "test-derecho.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Asserts that (subgroup, shard) holds exactly the given node ids, in order. */
static void expect_shard(const struct derecho_layout *l, uint32_t sg,
                         uint32_t shard, const uint32_t *ids, size_t n)
{
    struct derecho_shard_info info;
    ck_assert_int_eq(derecho_layout_shard(l, sg, shard, &info), 0);
    ck_assert_msg(info.num_members == n,
                  "subgroup %u shard %u: %zu members, "
                  "expected %zu",
                  sg, shard, info.num_members, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(info.members[i] == ids[i],
                      "subgroup %u shard %u member %zu: %u, expected %u", sg,
                      shard, i, info.members[i], ids[i]);
}

#define EXPECT(l, sg, shard, ...)                                              \
    do {                                                                       \
        const uint32_t ids_[] = {__VA_ARGS__};                                 \
        expect_shard(l, sg, shard, ids_, sizeof(ids_) / sizeof(ids_[0]));      \
    } while (0)

static struct derecho_layout_spec *spec_with_type(const char *name)
{
    struct derecho_layout_spec *spec = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    uint32_t t = 99;
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, name, &t), 0);
    ck_assert_uint_eq(t, 0);
    return spec;
}

START_TEST(types_are_declared_in_order)
{
    struct derecho_layout_spec *spec = spec_with_type("Foo");
    uint32_t t = 99;
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Bar", &t), 0);
    ck_assert_uint_eq(t, 1);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Foo", &t), -EINVAL);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "", &t), -EINVAL);
    char longname[80];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[79] = 0;
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, longname, &t), -EINVAL);
    ck_assert_int_eq(derecho_layout_spec_add_type(NULL, "X", &t), -EINVAL);
    ck_assert_uint_eq(derecho_layout_spec_num_types(spec), 2);
    /* A subgroup of an undeclared type, zero shards, bad policies. */
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 2, 1, &p, NULL),
                     -EINVAL);
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 0, &p, NULL),
                     -EINVAL);
    p.min_nodes = 0;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL),
                     -EINVAL);
    p.min_nodes = 3;
    p.max_nodes = 2;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL),
                     -EINVAL);
    derecho_shard_policy_init(&p);
    p.mode = 7;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL),
                     -EINVAL);
    derecho_shard_policy_init(&p);
    p.size = sizeof(p) - 1; /* older than the first version: refused */
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL),
                     -EINVAL);
    /* A sender outside the reserved nodes. */
    derecho_shard_policy_init(&p);
    uint32_t reserved[] = {1, 2}, senders[] = {3};
    p.reserved = reserved;
    p.num_reserved = 2;
    p.senders = senders;
    p.num_senders = 1;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL),
                     -EINVAL);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 0);
    derecho_layout_spec_destroy(spec);
    derecho_layout_spec_destroy(NULL);
}
END_TEST

START_TEST(entire_view_holds_everyone_in_rank_order)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "B", NULL), 0);
    uint32_t sg0 = 9, sg1 = 9;
    ck_assert_int_eq(derecho_layout_spec_add_entire_view(
                         spec, 0, DERECHO_MODE_ORDERED, &sg0),
                     0);
    ck_assert_int_eq(derecho_layout_spec_add_entire_view(
                         spec, 1, DERECHO_MODE_UNORDERED, &sg1),
                     0);
    ck_assert_uint_eq(sg0, 0);
    ck_assert_uint_eq(sg1, 1);
    const uint32_t members[] = {5, 3, 9};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, members, 3, NULL, &l, NULL),
                     0);
    ck_assert(derecho_layout_provisioned(l));
    ck_assert_uint_eq(derecho_layout_num_subgroups(l), 2);
    EXPECT(l, 0, 0, 5, 3, 9);
    EXPECT(l, 1, 0, 5, 3, 9);
    struct derecho_shard_info info;
    ck_assert_int_eq(derecho_layout_shard(l, 1, 0, &info), 0);
    ck_assert_int_eq(info.mode, DERECHO_MODE_UNORDERED);
    ck_assert_str_eq(info.profile, "DEFAULT");
    ck_assert_uint_eq(info.num_senders, 3);
    struct derecho_subgroup_info si;
    ck_assert_int_eq(derecho_layout_subgroup(l, 1, &si), 0);
    ck_assert_uint_eq(si.type_index, 1);
    ck_assert_uint_eq(si.num_shards, 1);
    ck_assert(si.provisioned);
    ck_assert_int_eq(derecho_layout_subgroup(l, 2, &si), -ERANGE);
    ck_assert_int_eq(derecho_layout_shard(l, 0, 1, &info), -ERANGE);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 9), 0);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 4), -ENOENT);
    ck_assert_int_eq(derecho_layout_shard_of(l, 5, 9), -ERANGE);
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(fixed_even_shards)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.min_nodes = p.max_nodes = 2;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 2, &p, NULL), 0);
    const uint32_t five[] = {10, 11, 12, 13, 14};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, five, 5, NULL, &l, NULL), 0);
    ck_assert(derecho_layout_provisioned(l));
    EXPECT(l, 0, 0, 10, 11);
    EXPECT(l, 0, 1, 12, 13);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 14), -ENOENT);
    derecho_layout_destroy(l);
    /* Three members cannot fill two shards of two: inadequate, and the
     * layout says so instead of failing. */
    ck_assert_int_eq(derecho_layout_compute(spec, five, 3, NULL, &l, NULL), 0);
    ck_assert(!derecho_layout_provisioned(l));
    struct derecho_subgroup_info si;
    ck_assert_int_eq(derecho_layout_subgroup(l, 0, &si), 0);
    ck_assert(!si.provisioned);
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(flexible_shards_spread_extra_members)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.min_nodes = 1;
    p.max_nodes = 3;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 2, &p, NULL), 0);
    const uint32_t m[] = {1, 2, 3, 4, 5, 6, 7, 8};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 5, NULL, &l, NULL), 0);
    EXPECT(l, 0, 0, 1, 3, 5);
    EXPECT(l, 0, 1, 2, 4);
    derecho_layout_destroy(l);
    /* Eight members: both shards full at 3, two left unassigned. */
    ck_assert_int_eq(derecho_layout_compute(spec, m, 8, NULL, &l, NULL), 0);
    EXPECT(l, 0, 0, 1, 3, 5);
    EXPECT(l, 0, 1, 2, 4, 6);
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(members_keep_their_shards_across_views)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.min_nodes = 1;
    p.max_nodes = 2;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 2, &p, NULL), 0);
    const uint32_t v1[] = {1, 2, 3, 4};
    struct derecho_layout *l1 = NULL, *l2 = NULL, *l3 = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, v1, 4, NULL, &l1, NULL), 0);
    EXPECT(l1, 0, 0, 1, 3);
    EXPECT(l1, 0, 1, 2, 4);
    /* 1 failed, 5 joined: 3 stays in shard 0 and 5 fills the hole. */
    const uint32_t v2[] = {2, 3, 4, 5};
    ck_assert_int_eq(derecho_layout_compute(spec, v2, 4, l1, &l2, NULL), 0);
    EXPECT(l2, 0, 0, 3, 5);
    EXPECT(l2, 0, 1, 2, 4);
    /* 2 and 4 failed: shard 1 is refilled from what is unassigned (6),
     * shard 0 is left alone. */
    const uint32_t v3[] = {3, 5, 6};
    ck_assert_int_eq(derecho_layout_compute(spec, v3, 3, l2, &l3, NULL), 0);
    EXPECT(l3, 0, 0, 3, 5);
    EXPECT(l3, 0, 1, 6);
    ck_assert_int_eq(derecho_layout_shard_of(l3, 0, 6), 1);
    derecho_layout_destroy(l1);
    derecho_layout_destroy(l2);
    derecho_layout_destroy(l3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(unprovisioned_subgroup_waits_for_joins)
{
    /* A needs 3 nodes in one shard; B takes 1 to unlimited. */
    struct derecho_layout_spec *spec = spec_with_type("A");
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "B", NULL), 0);
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.min_nodes = 3;
    p.max_nodes = 3;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, &p, NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 1, 1, NULL, NULL),
                     0);
    const uint32_t m[] = {1, 2, 3, 4, 5};
    struct derecho_layout *l1 = NULL, *l2 = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 2, NULL, &l1, NULL), 0);
    ck_assert(!derecho_layout_provisioned(l1));
    struct derecho_subgroup_info a, b;
    derecho_layout_subgroup(l1, 0, &a);
    derecho_layout_subgroup(l1, 1, &b);
    ck_assert(!a.provisioned);
    ck_assert(b.provisioned);
    EXPECT(l1, 1, 0, 1); /* only its minimum: 2 stays free for A */
    struct derecho_shard_info info;
    derecho_layout_shard(l1, 0, 0, &info);
    ck_assert_uint_eq(info.num_members, 0);
    /* Three join: A gets 2, 3, 4; B keeps 1; then 5 goes to B. */
    ck_assert_int_eq(derecho_layout_compute(spec, m, 5, l1, &l2, NULL), 0);
    ck_assert(derecho_layout_provisioned(l2));
    EXPECT(l2, 0, 0, 2, 3, 4);
    EXPECT(l2, 1, 0, 1, 5);
    derecho_layout_destroy(l1);
    derecho_layout_destroy(l2);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(identical_subgroups)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.min_nodes = p.max_nodes = 1;
    uint32_t first = 99;
    ck_assert_int_eq(
        derecho_layout_spec_add_identical_subgroups(spec, 0, 3, 1, &p, &first),
        0);
    ck_assert_uint_eq(first, 0);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 3);
    /* All or nothing. */
    p.min_nodes = 0;
    ck_assert_int_eq(
        derecho_layout_spec_add_identical_subgroups(spec, 0, 2, 1, &p, NULL),
        -EINVAL);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 3);
    const uint32_t m[] = {7, 8, 9, 10};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 4, NULL, &l, NULL), 0);
    EXPECT(l, 0, 0, 7);
    EXPECT(l, 1, 0, 8);
    EXPECT(l, 2, 0, 9);
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(reserved_nodes_and_senders)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "B", NULL), 0);
    struct derecho_shard_policy pol[2];
    derecho_shard_policy_init(&pol[0]);
    derecho_shard_policy_init(&pol[1]);
    uint32_t res0[] = {9, 4}, send0[] = {9};
    pol[0].reserved = res0;
    pol[0].num_reserved = 2;
    pol[0].senders = send0;
    pol[0].num_senders = 1;
    pol[0].max_nodes = 2;
    pol[1].max_nodes = 2;
    pol[1].max_senders = 1;
    pol[1].profile = "SMALL";
    ck_assert_int_eq(
        derecho_layout_spec_add_custom_subgroup(spec, 0, pol, 2, NULL), 0);
    /* Type B: one shard that reserves node 9 too (colocated). */
    struct derecho_shard_policy pb;
    derecho_shard_policy_init(&pb);
    uint32_t resb[] = {9};
    pb.reserved = resb;
    pb.num_reserved = 1;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 1, 1, &pb, NULL),
                     0);
    const uint32_t m[] = {1, 2, 3, 9};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 4, NULL, &l, NULL), 0);
    /* 4 is absent; 9 is reserved in shard 0 (and in B's shard); the rest
     * fill in rank order: minimums first, then one at a time. */
    EXPECT(l, 0, 0, 9, 2);
    EXPECT(l, 0, 1, 1, 3);
    EXPECT(l, 1, 0, 9);
    struct derecho_shard_info info;
    derecho_layout_shard(l, 0, 0, &info);
    ck_assert(info.is_sender[0]);  /* 9: a declared sender */
    ck_assert(!info.is_sender[1]); /* 2: not declared */
    ck_assert_uint_eq(info.num_senders, 1);
    derecho_layout_shard(l, 0, 1, &info);
    ck_assert(info.is_sender[0]);
    ck_assert(!info.is_sender[1]);
    ck_assert_uint_eq(info.num_senders, 1);
    ck_assert_str_eq(info.profile, "SMALL");
    derecho_layout_destroy(l);
    /* Two shards of one subgroup cannot reserve the same node. */
    uint32_t res1[] = {4};
    pol[1].reserved = res1;
    pol[1].num_reserved = 1;
    ck_assert_int_eq(
        derecho_layout_spec_add_custom_subgroup(spec, 0, pol, 2, NULL),
        -EINVAL);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* A shard that reserves an absent node takes another member meanwhile;
 * when the reserved node joins, the shard still respects its maximum: the
 * member it took makes room (and goes back to the pool). */
START_TEST(reserved_node_joining_keeps_the_maximum)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    struct derecho_shard_policy p[2];
    derecho_shard_policy_init(&p[0]);
    derecho_shard_policy_init(&p[1]);
    uint32_t res[] = {2};
    p[0].reserved = res;
    p[0].num_reserved = 1;
    p[0].min_nodes = p[0].max_nodes = 1;
    ck_assert_int_eq(
        derecho_layout_spec_add_custom_subgroup(spec, 0, p, 1, NULL), 0);
    const uint32_t before[] = {1};
    struct derecho_layout *l1 = NULL, *l2 = NULL, *l3 = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, before, 1, NULL, &l1, NULL),
                     0);
    EXPECT(l1, 0, 0, 1);
    const uint32_t after[] = {1, 2};
    ck_assert_int_eq(derecho_layout_compute(spec, after, 2, l1, &l2, NULL), 0);
    EXPECT(l2, 0, 0, 2);
    ck_assert(derecho_layout_provisioned(l2));
    derecho_layout_destroy(l1);
    derecho_layout_destroy(l2);
    derecho_layout_spec_destroy(spec);

    /* Two shards, max 2: shard 0 (reserving 2) holds 1 and 3 before 2
     * joins; then it keeps 1 (earlier), takes 2, and 3 moves to shard 1,
     * which had room. */
    spec = spec_with_type("A");
    p[0].min_nodes = 1;
    p[0].max_nodes = 2;
    p[1].max_nodes = 2;
    ck_assert_int_eq(
        derecho_layout_spec_add_custom_subgroup(spec, 0, p, 2, NULL), 0);
    const uint32_t three[] = {1, 4, 3};
    ck_assert_int_eq(derecho_layout_compute(spec, three, 3, NULL, &l1, NULL),
                     0);
    EXPECT(l1, 0, 0, 1, 3);
    EXPECT(l1, 0, 1, 4);
    const uint32_t four[] = {1, 4, 3, 2};
    ck_assert_int_eq(derecho_layout_compute(spec, four, 4, l1, &l3, NULL), 0);
    EXPECT(l3, 0, 0, 1, 2);
    EXPECT(l3, 0, 1, 4, 3);
    derecho_layout_destroy(l1);
    derecho_layout_destroy(l3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(compute_refuses_bad_members)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, NULL, NULL),
                     0);
    struct derecho_layout *l = (void *)1;
    struct derecho_error err;
    const uint32_t dup[] = {1, 2, 1};
    ck_assert_int_eq(derecho_layout_compute(spec, dup, 3, NULL, &l, &err),
                     -EINVAL);
    ck_assert_ptr_null(l);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    const uint32_t none[] = {DERECHO_NODE_NONE};
    ck_assert_int_eq(derecho_layout_compute(spec, none, 1, NULL, &l, NULL),
                     -EINVAL);
    ck_assert_int_eq(derecho_layout_compute(spec, NULL, 1, NULL, &l, NULL),
                     -EINVAL);
    ck_assert_int_eq(derecho_layout_compute(spec, dup, DERECHO_MAX_MEMBERS + 1,
                                            NULL, &l, NULL),
                     -ERANGE);
    /* A previous layout of another spec. */
    struct derecho_layout_spec *other = spec_with_type("A");
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(other, 0, 2, NULL, NULL),
                     0);
    struct derecho_layout *prev = NULL;
    ck_assert_int_eq(derecho_layout_compute(other, dup, 2, NULL, &prev, NULL),
                     0);
    ck_assert_int_eq(derecho_layout_compute(spec, dup, 2, prev, &l, &err),
                     -EINVAL);
    derecho_layout_destroy(prev);
    derecho_layout_spec_destroy(other);
    /* An empty view: nothing provisioned, but a layout. */
    ck_assert_int_eq(derecho_layout_compute(spec, NULL, 0, NULL, &l, NULL), 0);
    ck_assert(!derecho_layout_provisioned(l));
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
    /* NULL getters return their sentinels. */
    ck_assert(!derecho_layout_provisioned(NULL));
    ck_assert_uint_eq(derecho_layout_num_subgroups(NULL), 0);
    ck_assert_int_eq(derecho_layout_shard_of(NULL, 0, 0), -EINVAL);
}
END_TEST

START_TEST(fingerprint_follows_the_declaration)
{
    uint64_t fp[4];
    for (int i = 0; i < 4; i++) {
        struct derecho_layout_spec *spec = spec_with_type(i == 2 ? "B" : "A");
        struct derecho_shard_policy p;
        derecho_shard_policy_init(&p);
        p.max_nodes = i == 3 ? 4 : 3;
        ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 2, &p, NULL),
                         0);
        ck_assert_int_eq(derecho_layout_spec_fingerprint(spec, &fp[i]), 0);
        derecho_layout_spec_destroy(spec);
    }
    ck_assert(fp[0] == fp[1]); /* the same declaration */
    ck_assert(fp[0] != fp[2]); /* another type name */
    ck_assert(fp[0] != fp[3]); /* another maximum */
    ck_assert_int_eq(derecho_layout_spec_fingerprint(NULL, &fp[0]), -EINVAL);
}
END_TEST

START_TEST(profile_subgroup_from_conf)
{
    struct conf *c = td_conf("[SUBGROUP/SMALL]\nnum_shards = 2\n"
                             "min_nodes = 1\nmax_nodes = 2\n"
                             "[SUBGROUP/HALF]\nnum_shards = 2\n");
    struct derecho_layout_spec *spec = spec_with_type("A");
    uint32_t sg = 9;
    struct derecho_error err;
    ck_assert_int_eq(derecho_layout_spec_add_profile_subgroup(
                         spec, 0, c, "SMALL", &sg, &err),
                     0);
    ck_assert_uint_eq(sg, 0);
    ck_assert_int_eq(
        derecho_layout_spec_add_profile_subgroup(spec, 0, c, "HALF", &sg, &err),
        -ENOENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "min_nodes"));
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 1);
    const uint32_t m[] = {1, 2, 3, 4, 5};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 5, NULL, &l, NULL), 0);
    EXPECT(l, 0, 0, 1, 3);
    EXPECT(l, 0, 1, 2, 4);
    struct derecho_shard_info info;
    derecho_layout_shard(l, 0, 1, &info);
    ck_assert_str_eq(info.profile, "SMALL");
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);
}
END_TEST

/* The shape keys are in libconf's schema (profile-only, no default): a bad
 * value is refused when the file is loaded, naming the key; max_nodes
 * below min_nodes is refused by the call, naming both; [SUBGROUP/DEFAULT]
 * supplies what the profile does not set. */
START_TEST(profile_subgroup_bad_values)
{
    const struct conf_option *o = conf_schema_find("SUBGROUP/X", "num_shards");
    ck_assert_ptr_nonnull(o);
    ck_assert_uint_eq(o->max_u, DERECHO_MAX_SHARDS);
    static const char *const bad[][2] = {
        {"[SUBGROUP/S]\nnum_shards = 0\n", "out of range"},
        {"[SUBGROUP/S]\nnum_shards = 5000\n", "out of range"},
        {"[SUBGROUP/S]\nmin_nodes = many\n", "unsigned decimal integer"},
        {"[SUBGROUP/DEFAULT]\nmax_nodes = 0\n", "out of range"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct conf *c = NULL;
        ck_assert_int_eq(conf_new(NULL, &c, NULL), 0);
        struct conf_error cerr;
        ck_assert_int_lt(
            conf_load_buffer(c, "t.cfg", bad[i][0], strlen(bad[i][0]), &cerr),
            0);
        ck_assert_int_eq(cerr.line, 2);
        ck_assert_msg(strstr(cerr.msg, bad[i][1]), "%s", cerr.msg);
        conf_destroy(c);
    }
    struct conf *c = td_conf("[SUBGROUP/DEFAULT]\nmin_nodes = 2\n"
                             "max_nodes = 2\n"
                             "[SUBGROUP/WIDE]\nnum_shards = 1\n"
                             "[SUBGROUP/BACKWARDS]\nnum_shards = 1\n"
                             "min_nodes = 3\n");
    struct derecho_layout_spec *spec = spec_with_type("A");
    struct derecho_error err;
    uint32_t sg = 9;
    ck_assert_int_eq(
        derecho_layout_spec_add_profile_subgroup(spec, 0, c, "WIDE", &sg, &err),
        0);
    ck_assert_uint_eq(sg, 0);
    ck_assert_int_eq(derecho_layout_spec_add_profile_subgroup(
                         spec, 0, c, "BACKWARDS", &sg, &err),
                     -EINVAL);
    ck_assert_msg(strstr(err.msg, "max_nodes (2) is below min_nodes (3)"), "%s",
                  err.msg);
    ck_assert_int_eq(derecho_layout_spec_add_profile_subgroup(
                         spec, 0, c, "NOWHERE", &sg, &err),
                     -ENOENT);
    ck_assert_msg(strstr(err.msg, "num_shards: not set"), "%s", err.msg);
    ck_assert_uint_eq(derecho_layout_spec_num_subgroups(spec), 1);
    const uint32_t m[] = {1, 2};
    struct derecho_layout *l = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 2, NULL, &l, NULL), 0);
    EXPECT(l, 0, 0, 1, 2);
    derecho_layout_destroy(l);
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);
}
END_TEST

struct alloc_log {
    int calls;
    bool saw_prev;
    int set_rc[4];
};

/* Reverse rank order in subgroup 0; subgroup 1 only with 3 members or
 * more, where only its first member sends.  Probes the draft's checks. */
static int reverse_allocator(void *ctx, const uint32_t *members, size_t n,
                             const struct derecho_layout *prev,
                             struct derecho_layout_draft *draft)
{
    struct alloc_log *log = ctx;
    log->calls++;
    log->saw_prev = prev != NULL;
    if (n == 0)
        return -ENOSPC;
    uint32_t rev[8];
    for (size_t i = 0; i < n; i++)
        rev[i] = members[n - 1 - i];
    int rc = derecho_layout_draft_set_shard(draft, 0, 0, rev, NULL, n);
    if (rc)
        return rc;
    const uint32_t stranger[] = {99};
    const uint32_t twice[] = {members[0], members[0]};
    log->set_rc[0] =
        derecho_layout_draft_set_shard(draft, 1, 0, stranger, NULL, 1);
    log->set_rc[1] =
        derecho_layout_draft_set_shard(draft, 1, 0, twice, NULL, 2);
    log->set_rc[2] = derecho_layout_draft_set_shard(draft, 2, 0, rev, NULL, 1);
    log->set_rc[3] = derecho_layout_draft_unprovisioned(draft, 7);
    if (n < 3)
        return derecho_layout_draft_unprovisioned(draft, 1);
    const bool senders[] = {true, false};
    return derecho_layout_draft_set_shard(draft, 1, 0, members, senders, 2);
}

START_TEST(application_allocator)
{
    struct derecho_layout_spec *spec = spec_with_type("A");
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, NULL, NULL),
                     0);
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, NULL, NULL),
                     0);
    struct alloc_log log = {0};
    ck_assert_int_eq(
        derecho_layout_spec_set_allocator(spec, reverse_allocator, &log), 0);
    const uint32_t m[] = {4, 5, 6};
    struct derecho_layout *l1 = NULL, *l2 = NULL;
    ck_assert_int_eq(derecho_layout_compute(spec, m, 2, NULL, &l1, NULL), 0);
    ck_assert_int_eq(log.calls, 1);
    ck_assert(!log.saw_prev);
    ck_assert_int_eq(log.set_rc[0], -EINVAL); /* not in the view */
    ck_assert_int_eq(log.set_rc[1], -EINVAL); /* listed twice */
    ck_assert_int_eq(log.set_rc[2], -ERANGE); /* no such subgroup */
    ck_assert_int_eq(log.set_rc[3], -ERANGE);
    EXPECT(l1, 0, 0, 5, 4);
    ck_assert(!derecho_layout_provisioned(l1));
    ck_assert_int_eq(derecho_layout_compute(spec, m, 3, l1, &l2, NULL), 0);
    ck_assert(log.saw_prev);
    ck_assert(derecho_layout_provisioned(l2));
    EXPECT(l2, 0, 0, 6, 5, 4);
    EXPECT(l2, 1, 0, 4, 5);
    struct derecho_shard_info info;
    derecho_layout_shard(l2, 1, 0, &info);
    ck_assert_uint_eq(info.num_senders, 1);
    ck_assert(info.is_sender[0] && !info.is_sender[1]);
    derecho_layout_destroy(l1);
    derecho_layout_destroy(l2);
    /* Its error is the computation's. */
    struct derecho_error err;
    ck_assert_int_eq(derecho_layout_compute(spec, NULL, 0, NULL, &l1, &err),
                     -ENOSPC);
    ck_assert_ptr_null(l1);
    ck_assert_ptr_nonnull(strstr(err.msg, "allocator"));
    /* Back to the default allocator. */
    ck_assert_int_eq(derecho_layout_spec_set_allocator(spec, NULL, NULL), 0);
    ck_assert_int_eq(derecho_layout_compute(spec, m, 3, NULL, &l1, NULL), 0);
    EXPECT(l1, 0, 0, 4, 6);
    EXPECT(l1, 1, 0, 5);
    derecho_layout_destroy(l1);
    ck_assert_int_eq(derecho_layout_spec_set_allocator(NULL, NULL, NULL),
                     -EINVAL);
    derecho_layout_spec_destroy(spec);
}
END_TEST

TCase *tc_layout(void)
{
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, types_are_declared_in_order);
    tcase_add_test(tc, entire_view_holds_everyone_in_rank_order);
    tcase_add_test(tc, fixed_even_shards);
    tcase_add_test(tc, flexible_shards_spread_extra_members);
    tcase_add_test(tc, members_keep_their_shards_across_views);
    tcase_add_test(tc, unprovisioned_subgroup_waits_for_joins);
    tcase_add_test(tc, identical_subgroups);
    tcase_add_test(tc, reserved_nodes_and_senders);
    tcase_add_test(tc, reserved_node_joining_keeps_the_maximum);
    tcase_add_test(tc, compute_refuses_bad_members);
    tcase_add_test(tc, fingerprint_follows_the_declaration);
    tcase_add_test(tc, profile_subgroup_from_conf);
    tcase_add_test(tc, profile_subgroup_bad_values);
    tcase_add_test(tc, application_allocator);
    return tc;
}
