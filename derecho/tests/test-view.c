/* The view object and its encoding. */
#include "test-derecho.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct derecho_member member(uint32_t id)
{
    struct derecho_member m;
    memset(&m, 0, sizeof(m));
    m.node_id = id;
    snprintf(m.ip, sizeof(m.ip), "127.0.0.%u", id % 250 + 1);
    m.gms_port = (uint16_t)(23580 + id);
    m.sst_port = (uint16_t)(37683 + id);
    m.rdmc_port = (uint16_t)(31675 + id);
    m.external_port = (uint16_t)(32645 + id);
    return m;
}

static struct derecho_layout_spec *two_shards(void)
{
    struct derecho_layout_spec *spec = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "A", NULL), 0);
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.max_nodes = 2;
    p.max_senders = 1;
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 2, &p, NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_entire_view(
                         spec, 0, DERECHO_MODE_UNORDERED, NULL),
                     0);
    return spec;
}

static bool same_ids(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

START_TEST(views_follow_each_other)
{
    struct derecho_layout_spec *spec = two_shards();
    struct derecho_member m0[] = {member(1), member(2), member(3), member(4)};
    struct derecho_view *v0 = NULL, *v1 = NULL;
    struct derecho_error err;
    ck_assert_int_eq(derecho_view_create(0, m0, 4, 0, NULL, spec, 3, &v0, &err),
                     0);
    ck_assert_int_eq(derecho_view_id(v0), 0);
    ck_assert_uint_eq(derecho_view_num_members(v0), 4);
    ck_assert_int_eq(derecho_view_my_rank(v0), 2);
    ck_assert_int_eq(derecho_view_leader_rank(v0), 0);
    ck_assert_int_eq(derecho_view_rank_of(v0, 4), 3);
    ck_assert_int_eq(derecho_view_rank_of(v0, 9), -1);
    ck_assert_str_eq(derecho_view_member(v0, 1)->ip, "127.0.0.3");
    ck_assert_uint_eq(derecho_view_member(v0, 1)->sst_port, 37685);
    ck_assert_ptr_null(derecho_view_member(v0, 4));
    size_t n;
    const uint32_t *joined = derecho_view_joined(v0, &n);
    const uint32_t all[] = {1, 2, 3, 4};
    ck_assert(same_ids(joined, n, all, 4)); /* view 0: everyone joined */
    ck_assert_ptr_null(derecho_view_departed(v0, &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(derecho_layout_shard_of(derecho_view_layout(v0), 0, 3), 0);

    /* 1 leaves, 5 and 6 join: 3 keeps its shard. */
    struct derecho_member m1[] = {member(2), member(3), member(4), member(5),
                                  member(6)};
    ck_assert_int_eq(derecho_view_create(1, m1, 5, 0, v0, spec, 3, &v1, &err),
                     0);
    const uint32_t j1[] = {5, 6}, d1[] = {1};
    joined = derecho_view_joined(v1, &n);
    ck_assert(same_ids(joined, n, j1, 2));
    const uint32_t *departed = derecho_view_departed(v1, &n);
    ck_assert(same_ids(departed, n, d1, 1));
    ck_assert_int_eq(derecho_view_my_rank(v1), 1);
    const struct derecho_layout *l = derecho_view_layout(v1);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 3), 0);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 2), 1);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 4), 1);
    ck_assert_int_eq(derecho_layout_shard_of(l, 0, 5), 0);
    struct derecho_shard_info info;
    ck_assert_int_eq(derecho_layout_shard(l, 1, 0, &info), 0);
    ck_assert_uint_eq(info.num_members, 5);

    /* Refusals: ids that do not grow, duplicates, empty addresses. */
    struct derecho_view *bad = (void *)1;
    ck_assert_int_eq(derecho_view_create(1, m1, 5, 0, v1, spec, 3, &bad, &err),
                     -EINVAL);
    ck_assert_ptr_null(bad);
    struct derecho_member dup[] = {member(2), member(2)};
    ck_assert_int_eq(derecho_view_create(2, dup, 2, 0, v1, spec, 3, &bad, &err),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
    struct derecho_member noip[] = {member(7)};
    noip[0].ip[0] = 0;
    ck_assert_int_eq(
        derecho_view_create(2, noip, 1, 0, v1, spec, 3, &bad, &err), -EINVAL);
    ck_assert_int_eq(derecho_view_create(2, m1, 5, 5, v1, spec, 3, &bad, &err),
                     -EINVAL);
    ck_assert_int_eq(derecho_view_create(2, m1, 0, 0, v1, spec, 3, &bad, &err),
                     -EINVAL);

    /* An outsider's view of it, and NULL sentinels. */
    struct derecho_view *outside = NULL;
    ck_assert_int_eq(derecho_view_create(0, m0, 4, 0, NULL, NULL,
                                         DERECHO_NODE_NONE, &outside, &err),
                     0);
    ck_assert_int_eq(derecho_view_my_rank(outside), -1);
    ck_assert_ptr_null(derecho_view_layout(outside));
    derecho_view_destroy(outside);
    ck_assert_int_eq(derecho_view_id(NULL), -1);
    ck_assert_int_eq(derecho_view_my_rank(NULL), -1);
    ck_assert_int_eq(derecho_view_leader_rank(NULL), -1);
    ck_assert_uint_eq(derecho_view_num_members(NULL), 0);
    ck_assert_ptr_null(derecho_view_layout(NULL));
    derecho_view_destroy(NULL);

    derecho_view_destroy(v0);
    derecho_view_destroy(v1);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* Encodes v into a growable writer; the caller frees *buf. */
static void encode(const struct derecho_view *v, void **buf, size_t *len)
{
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 64), 0);
    ck_assert_int_eq(derecho_view_encode(v, &w), 0);
    *buf = mutils_writer_steal(&w, len);
    mutils_writer_fini(&w);
}

static struct derecho_view *sample_view(struct derecho_layout_spec **spec_out)
{
    struct derecho_layout_spec *spec = two_shards();
    struct derecho_member m0[] = {member(1), member(2), member(3)};
    struct derecho_member m1[] = {member(2), member(3), member(7), member(8)};
    struct derecho_view *v0 = NULL, *v1 = NULL;
    ck_assert_int_eq(derecho_view_create(4, m0, 3, 0, NULL, spec, 2, &v0, NULL),
                     0);
    ck_assert_int_eq(derecho_view_create(5, m1, 4, 1, v0, spec, 2, &v1, NULL),
                     0);
    derecho_view_destroy(v0);
    *spec_out = spec;
    return v1;
}

START_TEST(encoding_round_trips)
{
    struct derecho_layout_spec *spec;
    struct derecho_view *v = sample_view(&spec);
    void *buf;
    size_t len;
    encode(v, &buf, &len);
    struct derecho_view *d = NULL;
    struct derecho_error err;
    ck_assert_int_eq(derecho_view_decode(buf, len, 7, &d, &err), 0);
    ck_assert_int_eq(derecho_view_id(d), 5);
    ck_assert_int_eq(derecho_view_leader_rank(d), 1);
    ck_assert_int_eq(derecho_view_my_rank(d), 2); /* as node 7 sees it */
    ck_assert_uint_eq(derecho_view_num_members(d), 4);
    for (size_t i = 0; i < 4; i++)
        ck_assert(memcmp(derecho_view_member(d, i), derecho_view_member(v, i),
                         sizeof(struct derecho_member)) == 0);
    size_t n1, n2;
    const uint32_t *a = derecho_view_joined(v, &n1);
    const uint32_t *b = derecho_view_joined(d, &n2);
    ck_assert(same_ids(a, n1, b, n2));
    a = derecho_view_departed(v, &n1);
    b = derecho_view_departed(d, &n2);
    ck_assert(same_ids(a, n1, b, n2));
    const struct derecho_layout *lv = derecho_view_layout(v);
    const struct derecho_layout *ld = derecho_view_layout(d);
    ck_assert_uint_eq(derecho_layout_num_subgroups(ld), 2);
    for (uint32_t g = 0; g < 2; g++) {
        struct derecho_subgroup_info sv, sd;
        derecho_layout_subgroup(lv, g, &sv);
        derecho_layout_subgroup(ld, g, &sd);
        ck_assert_uint_eq(sv.num_shards, sd.num_shards);
        ck_assert_int_eq(sv.provisioned, sd.provisioned);
        for (uint32_t j = 0; j < sv.num_shards; j++) {
            struct derecho_shard_info iv, id;
            derecho_layout_shard(lv, g, j, &iv);
            derecho_layout_shard(ld, g, j, &id);
            ck_assert(same_ids(iv.members, iv.num_members, id.members,
                               id.num_members));
            ck_assert_uint_eq(iv.num_senders, id.num_senders);
            ck_assert_int_eq(iv.mode, id.mode);
            ck_assert_str_eq(iv.profile, id.profile);
            for (size_t k = 0; k < iv.num_members; k++)
                ck_assert_int_eq(iv.is_sender[k], id.is_sender[k]);
        }
    }
    /* The decoded view encodes to the same bytes, and its layout can be
     * the previous layout of the next view (members keep their shards). */
    void *again;
    size_t again_len;
    encode(d, &again, &again_len);
    ck_assert_uint_eq(again_len, len);
    ck_assert(memcmp(again, buf, len) == 0);
    struct derecho_member m2[] = {member(3), member(7), member(8), member(9)};
    struct derecho_view *next = NULL;
    ck_assert_int_eq(derecho_view_create(6, m2, 4, 0, d, spec, 9, &next, &err),
                     0);
    ck_assert_int_eq(derecho_layout_shard_of(derecho_view_layout(next), 0, 3),
                     derecho_layout_shard_of(derecho_view_layout(d), 0, 3));
    derecho_view_destroy(next);
    free(again);
    derecho_view_destroy(d);
    free(buf);
    derecho_view_destroy(v);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(every_truncation_and_corruption_is_caught)
{
    struct derecho_layout_spec *spec;
    struct derecho_view *v = sample_view(&spec);
    void *buf;
    size_t len;
    encode(v, &buf, &len);
    struct derecho_view *d = (void *)1;
    for (size_t cut = 0; cut < len; cut++) {
        ck_assert_int_eq(derecho_view_decode(buf, cut, 1, &d, NULL), -EBADMSG);
        ck_assert_ptr_null(d);
    }
    /* One more byte at the end. */
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    struct derecho_error err;
    ck_assert_int_eq(derecho_view_decode(longer, len + 1, 1, &d, &err),
                     -EBADMSG);
    ck_assert_ptr_nonnull(strstr(err.msg, "after the end"));
    free(longer);
    /* Every byte flipped in turn: decoded or refused, never a crash (the
     * sanitizer build watches), and what decodes is self-consistent. */
    uint8_t *bytes = buf;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            bytes[i] ^= (uint8_t)(1u << bit);
            int rc = derecho_view_decode(bytes, len, 1, &d, NULL);
            ck_assert(rc == 0 || rc == -EBADMSG);
            if (rc == 0) {
                ck_assert_uint_ge(derecho_view_num_members(d), 1);
                derecho_view_destroy(d);
            }
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    }
    free(buf);
    derecho_view_destroy(v);
    derecho_layout_spec_destroy(spec);
}
END_TEST

START_TEST(inconsistent_views_are_refused)
{
    /* Hand-made encodings: a duplicate member, a leader past the end, a
     * shard member that is no member, a departed node still present. */
    struct {
        uint32_t ids[2];
        uint32_t leader;
        uint32_t departed; /* 0: none */
        uint32_t shard_member;
        const char *needle;
    } cases[] = {
        {{1, 1}, 0, 0, 1, "twice"},     {{1, 2}, 2, 0, 1, "leader rank"},
        {{1, 2}, 0, 0, 3, "no member"}, {{1, 2}, 0, 2, 1, "still a member"},
        {{1, 2}, 0, 0, 1, NULL},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        uint8_t buf[512];
        struct mutils_writer w;
        mutils_writer_init(&w, buf, sizeof(buf));
        mutils_put_u32(&w, 3);
        mutils_put_u32(&w, cases[c].leader);
        mutils_put_count(&w, 2, 10);
        for (int i = 0; i < 2; i++) {
            mutils_put_u32(&w, cases[c].ids[i]);
            mutils_put_string(&w, "10.0.0.1", 63);
            for (int k = 0; k < 4; k++)
                mutils_put_u16(&w, 1000);
        }
        mutils_put_count(&w, 0, 10); /* joined */
        mutils_put_count(&w, cases[c].departed ? 1 : 0, 10);
        if (cases[c].departed)
            mutils_put_u32(&w, cases[c].departed);
        mutils_put_present(&w, true);
        mutils_put_u32(&w, 1);     /* subgroups */
        mutils_put_u32(&w, 0);     /* type */
        mutils_put_bool(&w, true); /* provisioned */
        mutils_put_u32(&w, 1);     /* shards */
        mutils_put_u8(&w, 0);
        mutils_put_string(&w, "DEFAULT", 63);
        uint32_t sm[] = {cases[c].shard_member};
        bool flags[] = {true};
        mutils_put_array(&w, MUTILS_KIND_U32, sm, 1, 10);
        mutils_put_array(&w, MUTILS_KIND_BOOL, flags, 1, 10);
        ck_assert_int_eq(mutils_writer_error(&w), 0);
        struct derecho_view *d = NULL;
        struct derecho_error err;
        int rc = derecho_view_decode(buf, mutils_writer_len(&w), 2, &d, &err);
        if (!cases[c].needle) {
            ck_assert_msg(rc == 0, "control case: %s", err.msg);
            ck_assert_int_eq(derecho_view_my_rank(d), 1);
            derecho_view_destroy(d);
            continue;
        }
        ck_assert_msg(rc == -EBADMSG, "case %zu: %d", c, rc);
        ck_assert_msg(strstr(err.msg, cases[c].needle), "case %zu: %s", c,
                      err.msg);
    }
}
END_TEST

TCase *tc_view(void)
{
    TCase *tc = tcase_create("view");
    tcase_add_test(tc, views_follow_each_other);
    tcase_add_test(tc, encoding_round_trips);
    tcase_add_test(tc, every_truncation_and_corruption_is_caught);
    tcase_add_test(tc, inconsistent_views_are_refused);
    return tc;
}
