/* Layout fingerprints: equal for equal descriptions, different for every
 * kind of change, stable across builds and hosts. */
#include <mutils/mutils.h>

#include <errno.h>
#include <string.h>

#include "harness.h"
#include "sample-types.h"
#include "test-mutils.h"

static uint64_t fp(const struct mutils_type *t)
{
    uint64_t v = 0;
    ck_assert_int_eq(mutils_fingerprint(t, &v), 0);
    return v;
}

START_TEST(equal_descriptions_equal_fingerprints)
{
    /* two separately built but identical trees */
    const struct mutils_type *a = MUTILS_TYPE_STRUCT(
        struct sample_member,
        MUTILS_FIELD(struct sample_member, id, &mutils_type_u32),
        MUTILS_FIELD(struct sample_member, nickname,
                     MUTILS_TYPE_OPTIONAL(MUTILS_TYPE_STRING(24))),
        MUTILS_FIELD(struct sample_member, alive, &mutils_type_bool),
        MUTILS_FIELD(struct sample_member, rank, &mutils_type_i8));
    ck_assert_ptr_ne(a, &sample_member_type);
    ck_assert_uint_eq(fp(a), fp(&sample_member_type));
    ck_assert_uint_eq(fp(&sample_view_type), fp(&sample_view_type));
    ck_assert_uint_eq(fp(MUTILS_TYPE_ARRAY(&mutils_type_u8, 9)),
                      fp(MUTILS_TYPE_ARRAY(&mutils_type_u8, 9)));
}
END_TEST

/* The same value on every host and every build: the hash covers only
 * host-independent facts, encoded little-endian.  If this changes, the
 * wire compatibility of deployed groups changes with it. */
START_TEST(golden_fingerprints)
{
    ck_assert_uint_eq(fp(&sample_view_type), 0xf9395db2cb5f7c54ULL);
    ck_assert_uint_eq(fp(&mutils_type_u32), 0x798e9044dfa00c6cULL);
}
END_TEST

struct base {
    uint32_t a;
    struct mutils_str b;
    struct mutils_array c;
};

START_TEST(every_change_changes_the_fingerprint)
{
#define F(member, type) MUTILS_FIELD(struct base, member, type)
#define S(...) MUTILS_TYPE_STRUCT(struct base, __VA_ARGS__)
    const struct mutils_type *str16 = MUTILS_TYPE_STRING(16);
    const struct mutils_type *arr = MUTILS_TYPE_ARRAY(&mutils_type_i16, 4);
    const struct mutils_type *variants[] = {
        S(F(a, &mutils_type_u32), F(b, str16), F(c, arr)), /* base */
        S(F(a, &mutils_type_i32), F(b, str16), F(c, arr)),
        S(F(a, &mutils_type_f32), F(b, str16), F(c, arr)),
        S(F(a, &mutils_type_u64), F(b, str16), F(c, arr)),
        S(F(a, &mutils_type_u32), F(b, MUTILS_TYPE_STRING(17)), F(c, arr)),
        S(F(a, &mutils_type_u32), F(b, MUTILS_TYPE_BYTES(16)), F(c, arr)),
        S(F(a, &mutils_type_u32), F(b, MUTILS_TYPE_STRBUF(16)), F(c, arr)),
        S(F(a, &mutils_type_u32), F(b, str16),
          F(c, MUTILS_TYPE_ARRAY(&mutils_type_u16, 4))),
        S(F(a, &mutils_type_u32), F(b, str16),
          F(c, MUTILS_TYPE_ARRAY(&mutils_type_i16, 5))),
        S(F(a, &mutils_type_u32), F(b, str16),
          F(c, MUTILS_TYPE_FIXED(&mutils_type_i16, 4))),
        S(F(a, &mutils_type_u32), F(b, str16),
          F(c, MUTILS_TYPE_OPTIONAL(&mutils_type_i16))),
        S(F(a, &mutils_type_u32), F(b, str16),
          F(c, MUTILS_TYPE_MAP(&mutils_type_i16, &mutils_type_u8, 4))),
        S(F(a, &mutils_type_u32), F(b, str16),
          F(c, MUTILS_TYPE_MAP(&mutils_type_u8, &mutils_type_i16, 4))),
        S(F(b, str16), F(a, &mutils_type_u32), F(c, arr)), /* order */
        S(F(a, &mutils_type_u32), F(b, str16)),            /* dropped */
        S(F(a, &mutils_type_u32), F(b, str16), F(c, arr),
          F(c, arr)),                            /* added */
        MUTILS_TYPE_STRUCT(struct sample_member, /* struct name */
                           F(a, &mutils_type_u32), F(b, str16), F(c, arr)),
        MUTILS_TYPE_ARGS("base", MUTILS_ARG("a", &mutils_type_u32),
                         MUTILS_ARG("b", str16), MUTILS_ARG("c", arr)),
        MUTILS_TYPE_OPTIONAL(S(F(a, &mutils_type_u32), F(b, str16), F(c, arr))),
        &sample_node_type,
        &mutils_type_u32,
        &mutils_type_bool,
        &mutils_type_u8,
    };
#undef F
#undef S
    enum { N = sizeof variants / sizeof variants[0] };
    uint64_t fps[N];
    for (int i = 0; i < N; i++)
        fps[i] = fp(variants[i]);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            ck_assert_msg(fps[i] != fps[j], "variants %d and %d collide", i, j);

    /* a renamed field */
    static const struct mutils_field f1[] = {{"x", 0, &mutils_type_u8}};
    static const struct mutils_field f2[] = {{"y", 0, &mutils_type_u8}};
    struct mutils_type t1 = {.kind = MUTILS_KIND_STRUCT,
                             .name = "s",
                             .c_size = 1,
                             .fields = f1,
                             .num_fields = 1};
    struct mutils_type t2 = t1;
    t2.fields = f2;
    ck_assert_uint_ne(fp(&t1), fp(&t2));
    /* C offsets and sizes are not part of it (they differ across hosts) */
    struct mutils_type t3 = t1;
    t3.c_size = 8;
    ck_assert_uint_eq(fp(&t1), fp(&t3));
}
END_TEST

START_TEST(fingerprint_errors)
{
    uint64_t v;
    ck_assert_int_eq(
        mutils_fingerprint(&(const struct mutils_type){.kind = 77}, &v),
        -EINVAL);
    ck_assert_int_eq(mutils_fingerprint(MUTILS_TYPE_OPTIONAL(NULL), &v),
                     -EINVAL);
}
END_TEST

Suite *mutils_fingerprint_suite(void)
{
    Suite *s = suite_create("mutils-fingerprint");
    TCase *tc = tcase_create("fingerprint");
    tcase_add_test(tc, equal_descriptions_equal_fingerprints);
    tcase_add_test(tc, golden_fingerprints);
    tcase_add_test(tc, every_change_changes_the_fingerprint);
    tcase_add_test(tc, fingerprint_errors);
    suite_add_tcase(s, tc);
    return s;
}
