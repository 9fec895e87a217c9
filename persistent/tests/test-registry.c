/* The registry: versions across fields and the persistence frontier. */
#include "test-common.h"

#include <errno.h>
#include <string.h>

struct field {
    int64_t value;
    bool changed;
    int fail; /* serialize returns this when non-zero */
};

static bool field_changed(void *ctx)
{
    return ((struct field *)ctx)->changed;
}

static int field_serialize(void *ctx, void *buf, size_t cap, size_t *size)
{
    struct field *f = ctx;
    *size = sizeof(f->value);
    if (f->fail)
        return f->fail;
    if (cap < sizeof(f->value))
        return -ENOBUFS;
    memcpy(buf, &f->value, sizeof(f->value));
    f->changed = false;
    return 0;
}

static const struct persistent_field_ops ops = {field_changed, field_serialize};

START_TEST(frontier_with_rarely_changing_fields)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *busy = tc_open(dir, "busy");
    struct persistent_log *rare = tc_open(dir, "rare");
    struct persistent_registry *reg = NULL;
    ck_assert_int_eq(persistent_registry_create(&reg), 0);
    struct field fb = {0, false, 0}, fr = {0, false, 0};
    ck_assert_int_eq(persistent_registry_add(reg, busy, &ops, &fb), 0);
    ck_assert_int_eq(persistent_registry_add(reg, rare, &ops, &fr), 0);
    ck_assert_int_eq(persistent_registry_add(reg, rare, &ops, &fr), -EINVAL);
    ck_assert_int_eq(persistent_registry_frontier(reg), -1);

    /* v1 changes both, v2..v10 only busy. */
    for (int64_t v = 1; v <= 10; v++) {
        fb.value = v;
        fb.changed = true;
        if (v == 1) {
            fr.value = 100;
            fr.changed = true;
        }
        ck_assert_int_eq(persistent_registry_make_version(reg, v, v), 0);
    }
    ck_assert_int_eq(persistent_registry_make_version(reg, 10, 10), -EINVAL);
    ck_assert_uint_eq(persistent_log_count(busy), 10);
    ck_assert_uint_eq(persistent_log_count(rare), 1);
    ck_assert_int_eq(persistent_registry_latest_version(reg), 10);
    ck_assert_int_eq(persistent_registry_frontier(reg), -1);

    ck_assert_int_eq(persistent_registry_persist(reg, 6), 0);
    /* The rare field has no entry after 1: persisted through 6 as well;
     * busy persisted everything appended (10). */
    ck_assert_int_eq(persistent_registry_frontier(reg), 6);
    ck_assert_int_eq(persistent_registry_persist(reg, 10), 0);
    ck_assert_int_eq(persistent_registry_frontier(reg), 10);
    ck_assert_int_eq(persistent_registry_persist(reg, 50), 0);
    ck_assert_int_eq(persistent_registry_frontier(reg), 10);

    /* The state at version 7: busy's entry in force at 7, rare's at 7. */
    struct persistent_entry e;
    int64_t val;
    ck_assert_int_eq(persistent_log_get_at_version(busy, 7, &e), 0);
    memcpy(&val, e.data, sizeof(val));
    ck_assert_int_eq(val, 7);
    ck_assert_int_eq(persistent_log_get_at_version(rare, 7, &e), 0);
    memcpy(&val, e.data, sizeof(val));
    ck_assert_int_eq(val, 100);

    /* Truncate back to 8 (a ragged edge): both logs and the frontier. */
    ck_assert_int_eq(persistent_registry_truncate(reg, 8), 0);
    ck_assert_int_eq(persistent_log_last_version(busy), 8);
    ck_assert_int_eq(persistent_registry_frontier(reg), 8);
    ck_assert_int_eq(persistent_registry_latest_version(reg), 8);
    fb.changed = true;
    fb.value = 9;
    ck_assert_int_eq(persistent_registry_make_version(reg, 9, 9), 0);
    ck_assert_int_eq(persistent_registry_frontier(reg), 8);
    persistent_registry_destroy(reg);
    persistent_log_close(busy);
    persistent_log_close(rare);

    /* After a restart the fields' logs say what is durable. */
    busy = tc_open(dir, "busy");
    rare = tc_open(dir, "rare");
    ck_assert_int_eq(persistent_registry_create(&reg), 0);
    ck_assert_int_eq(persistent_registry_add(reg, busy, &ops, &fb), 0);
    ck_assert_int_eq(persistent_registry_add(reg, rare, &ops, &fr), 0);
    ck_assert_int_eq(persistent_registry_latest_version(reg), 9);
    ck_assert_int_eq(persistent_registry_frontier(reg), 1);
    fr.changed = true;
    ck_assert_int_eq(persistent_registry_make_version(reg, 12, 12), 0);
    ck_assert_int_eq(persistent_registry_persist(reg, 12), 0);
    ck_assert_int_eq(persistent_registry_frontier(reg), 12);
    persistent_registry_destroy(reg);
    persistent_log_close(busy);
    persistent_log_close(rare);
}
END_TEST

START_TEST(failed_version_is_undone)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct persistent_log *a = tc_open(dir, "a");
    struct persistent_log *b = tc_open(dir, "b");
    struct persistent_registry *reg = NULL;
    ck_assert_int_eq(persistent_registry_create(&reg), 0);
    struct field fa = {1, true, 0}, fbad = {2, true, 0};
    ck_assert_int_eq(persistent_registry_add(reg, a, &ops, &fa), 0);
    ck_assert_int_eq(persistent_registry_add(reg, b, &ops, &fbad), 0);
    ck_assert_int_eq(persistent_registry_make_version(reg, 1, 1), 0);
    fa.changed = true;
    fbad.changed = true;
    fbad.fail = -EIO;
    ck_assert_int_eq(persistent_registry_make_version(reg, 2, 2), -EIO);
    ck_assert_int_eq(persistent_log_last_version(a), 1);
    ck_assert_int_eq(persistent_log_last_version(b), 1);
    ck_assert_int_eq(persistent_registry_latest_version(reg), 1);
    fbad.fail = 0;
    ck_assert_int_eq(persistent_registry_make_version(reg, 2, 2), 0);
    ck_assert_int_eq(persistent_log_last_version(b), 2);
    /* No fields once versions exist. */
    struct persistent_log *c = tc_open(dir, "c");
    ck_assert_int_eq(persistent_registry_add(reg, c, &ops, &fa), -EINVAL);
    persistent_log_close(c);
    persistent_registry_destroy(reg);
    persistent_registry_destroy(NULL);
    persistent_log_close(a);
    persistent_log_close(b);
}
END_TEST

Suite *tc_registry_suite(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, frontier_with_rarely_changing_fields);
    tcase_add_test(tc, failed_version_is_undone);
    suite_add_tcase(s, tc);
    return s;
}
