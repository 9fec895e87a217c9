/* Pure functions and single-pool behaviour. */
#include "test-fab.h"

#include <errno.h>
#include <rdma/fabric.h>
#include <rdma/fi_errno.h>
#include <string.h>

START_TEST(options_defaults)
{
    struct fab_options o;
    memset(&o, 0xab, sizeof(o));
    fab_options_init(&o);
    ck_assert_uint_eq(o.size, sizeof(o));
    ck_assert_str_eq(o.provider, "tcp");
    ck_assert_ptr_null(o.domain);
    ck_assert_str_eq(o.listen_addr, "127.0.0.1");
    ck_assert_int_gt(o.connect_timeout_ms, 0);
    ck_assert_uint_gt(o.cq_size, 0);
    ck_assert_ptr_null(o.log);
}
END_TEST

START_TEST(strerror_names_ours_and_libfabric)
{
    ck_assert_ptr_nonnull(strstr(fab_strerror(-EPROTO), "incompatible"));
    ck_assert_ptr_nonnull(strstr(fab_strerror(-ECONNRESET), "broken"));
    ck_assert_ptr_nonnull(strstr(fab_strerror(-EHOSTDOWN), "failed"));
    ck_assert_ptr_nonnull(fab_strerror(-FI_ENODATA));
    ck_assert_ptr_nonnull(fab_strerror(-FI_EOTHER));
    ck_assert_str_eq(fab_strerror(0), "success");
}
END_TEST

/* Every combination of the MR mode bits we accept, with and without
 * FI_RX_CQ_DATA: the rules and the addressing follow the bits. */
START_TEST(mr_rules_synthetic_combinations)
{
    const uint64_t bits[] = {FI_MR_LOCAL, FI_MR_VIRT_ADDR, FI_MR_ALLOCATED,
                             FI_MR_PROV_KEY};
    static char region[256];
    for (unsigned m = 0; m < 16; m++) {
        for (int rx = 0; rx < 2; rx++) {
            uint64_t mr_mode = 0;
            for (int b = 0; b < 4; b++)
                if (m & (1u << b))
                    mr_mode |= bits[b];
            if (mr_mode == FI_MR_BASIC || mr_mode == FI_MR_SCALABLE)
                continue; /* legacy enumerations, tested below */
            struct fab_mr_rules r;
            ck_assert_int_eq(
                fab_mr_rules_from_modes(mr_mode, rx ? FI_RX_CQ_DATA : 0, &r),
                0);
            ck_assert(r.local_desc == !!(mr_mode & FI_MR_LOCAL));
            ck_assert(r.virt_addr == !!(mr_mode & FI_MR_VIRT_ADDR));
            ck_assert(r.allocated == !!(mr_mode & FI_MR_ALLOCATED));
            ck_assert(r.prov_key == !!(mr_mode & FI_MR_PROV_KEY));
            ck_assert(r.rx_cq_data == (rx == 1));

            struct fab_mr_desc d = {
                .key = 7, .base = fab_mr_rules_base(&r, region), .len = 256};
            ck_assert_uint_eq(d.base,
                              r.virt_addr ? (uint64_t)(uintptr_t)region : 0);
            uint64_t addr = 0;
            ck_assert_int_eq(fab_mr_remote_addr(&r, &d, 16, 8, &addr), 0);
            ck_assert_uint_eq(
                addr, r.virt_addr ? (uint64_t)(uintptr_t)region + 16 : 16);
            ck_assert_int_eq(fab_mr_remote_addr(&r, &d, 0, 256, &addr), 0);
            ck_assert_int_eq(fab_mr_remote_addr(&r, &d, 256, 0, &addr), 0);
            ck_assert_int_eq(fab_mr_remote_addr(&r, &d, 250, 7, &addr),
                             -ERANGE);
            ck_assert_int_eq(fab_mr_remote_addr(&r, &d, 257, 0, &addr),
                             -ERANGE);
            ck_assert_int_eq(fab_mr_remote_addr(&r, &d, UINT64_MAX, 2, &addr),
                             -ERANGE);
        }
    }
}
END_TEST

START_TEST(mr_rules_legacy_and_unsupported)
{
    struct fab_mr_rules r;
    ck_assert_int_eq(fab_mr_rules_from_modes(FI_MR_BASIC, 0, &r), 0);
    ck_assert(r.virt_addr && r.prov_key && r.allocated && !r.local_desc);
    ck_assert_int_eq(fab_mr_rules_from_modes(FI_MR_SCALABLE, 0, &r), 0);
    ck_assert(!r.virt_addr && !r.prov_key && !r.allocated && !r.local_desc);
    ck_assert_int_eq(fab_mr_rules_from_modes(0, 0, &r), 0);
    ck_assert(!r.virt_addr && !r.prov_key);
    ck_assert_int_eq(fab_mr_rules_from_modes(FI_MR_ENDPOINT, 0, &r), -ENOTSUP);
    ck_assert_int_eq(
        fab_mr_rules_from_modes(FI_MR_RAW | FI_MR_VIRT_ADDR, 0, &r), -ENOTSUP);
    ck_assert_int_eq(fab_mr_rules_from_modes(0, 0, NULL), -EINVAL);
    /* A huge virtual base near the top of the address space overflows. */
    ck_assert_int_eq(fab_mr_rules_from_modes(FI_MR_VIRT_ADDR, 0, &r), 0);
    struct fab_mr_desc d = {.key = 1, .base = UINT64_MAX - 4, .len = 4};
    uint64_t addr;
    ck_assert_int_eq(fab_mr_remote_addr(&r, &d, 0, 4, &addr), 0);
    ck_assert_uint_eq(addr, UINT64_MAX - 4);
}
END_TEST

START_TEST(mr_desc_roundtrip_and_bounds)
{
    struct fab_mr_desc d = {0x1122334455667788ull, 0x7f00deadbeef0000ull, 4096};
    uint8_t buf[FAB_MR_DESC_SIZE];
    fab_mr_desc_encode(&d, buf);
    ck_assert_uint_eq(buf[0], 0x88); /* little-endian */
    struct fab_mr_desc e;
    ck_assert_int_eq(fab_mr_desc_decode(buf, sizeof(buf), &e), 0);
    ck_assert_uint_eq(e.key, d.key);
    ck_assert_uint_eq(e.base, d.base);
    ck_assert_uint_eq(e.len, d.len);
    ck_assert_int_eq(fab_mr_desc_decode(buf, sizeof(buf) - 1, &e), -EBADMSG);
    struct fab_mr_desc bad = {1, UINT64_MAX, 2};
    fab_mr_desc_encode(&bad, buf);
    ck_assert_int_eq(fab_mr_desc_decode(buf, sizeof(buf), &e), -EBADMSG);
}
END_TEST

START_TEST(pool_tcp_opens_and_reports)
{
    struct fab_pool *p = tf_pool(1, 0, "tcp");
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_gt(fab_pool_port(p), 0);
    ck_assert_uint_eq(fab_pool_node_id(p), 1);
    struct fab_pool_info info;
    fab_pool_get_info(p, &info);
    ck_assert_str_eq(info.provider, "tcp");
    ck_assert(info.manual_progress);
    ck_assert_uint_ge(info.cq_data_size, 4);
    ck_assert_uint_ge(info.max_msg_size, 1u << 20);
    ck_assert_int_ge(fab_pool_wait_fd(p), 0);
    ck_assert_int_eq(fab_pool_trywait(p), 0);
    fab_pool_destroy(p);
    fab_pool_destroy(NULL);
}
END_TEST

START_TEST(pool_verbs_fails_cleanly_without_device)
{
    struct fab_options o;
    fab_options_init(&o);
    o.provider = "verbs";
    o.node_id = 1;
    o.log_level = -1; /* silence */
    struct fab_pool *p = NULL;
    struct fab_error err;
    int rc = fab_pool_create(&o, &p, &err);
    if (rc == 0) {
        /* A machine with an RDMA device: nothing to test here. */
        fab_pool_destroy(p);
        return;
    }
    ck_assert_int_lt(rc, 0);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(err.code, rc);
    ck_assert_ptr_nonnull(strstr(err.msg, "verbs"));
}
END_TEST

START_TEST(pool_rejects_bad_options)
{
    struct fab_pool *p = NULL;
    struct fab_error err;
    ck_assert_int_eq(fab_pool_create(NULL, NULL, &err), -EINVAL);
    struct fab_options o;
    fab_options_init(&o);
    o.listen_addr = "not-an-address";
    o.log_level = -1;
    ck_assert_int_lt(fab_pool_create(&o, &p, &err), 0);
    ck_assert_ptr_null(p);
    /* A port in use. */
    struct fab_pool *a = tf_pool(1, 0, NULL);
    ck_assert_ptr_nonnull(a);
    fab_options_init(&o);
    o.port = fab_pool_port(a);
    o.log_level = -1;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EADDRINUSE);
    fab_pool_destroy(a);
}
END_TEST

START_TEST(write_ordering_override)
{
    struct fab_pool *p = tf_pool_ordering(1, 0, "tcp", FAB_ORDERING_WAIT);
    ck_assert_ptr_nonnull(p);
    struct fab_pool_info info;
    fab_pool_get_info(p, &info);
    ck_assert(!info.ordered_writes);
    ck_assert(!info.fence);
    ck_assert(info.msg_order != 0); /* what the provider said, unchanged */
    fab_pool_destroy(p);
    p = tf_pool_ordering(1, 0, "tcp", FAB_ORDERING_AUTO);
    fab_pool_get_info(p, &info);
    ck_assert(info.ordered_writes); /* tcp promises FI_ORDER_WAW */
    fab_pool_destroy(p);
    struct fab_options o;
    fab_options_init(&o);
    o.log_level = -1;
    o.write_ordering = 7;
    struct fab_error err;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    o.write_ordering = FAB_ORDERING_FENCE;
    int rc = fab_pool_create(&o, &p, &err);
    if (rc == 0) { /* a tcp with FI_FENCE */
        fab_pool_get_info(p, &info);
        ck_assert(info.fence && !info.ordered_writes);
        fab_pool_destroy(p);
    } else {
        ck_assert_int_eq(rc, -ENOTSUP);
        ck_assert_ptr_nonnull(strstr(err.msg, "FI_FENCE"));
    }
}
END_TEST

START_TEST(mr_register_prov_key_and_bounds)
{
    struct fab_pool *p = tf_pool(1, 0, NULL);
    ck_assert_ptr_nonnull(p);
    static uint8_t a[4096], b[64];
    struct fab_mr *ma = NULL, *mb = NULL;
    ck_assert_int_eq(fab_mr_register(p, a, sizeof(a),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &ma),
                     0);
    ck_assert_int_eq(fab_mr_register(p, b, sizeof(b), FAB_ACCESS_LOCAL, &mb),
                     0);
    struct fab_mr_desc da, db;
    fab_mr_get_desc(ma, &da);
    fab_mr_get_desc(mb, &db);
    ck_assert_uint_ne(da.key, db.key);
    ck_assert_uint_eq(da.len, sizeof(a));
    ck_assert_ptr_eq(fab_mr_addr(ma), a);
    ck_assert_uint_eq(fab_mr_len(mb), sizeof(b));
    ck_assert_int_eq(fab_mr_register(p, a, 0, FAB_ACCESS_LOCAL, &mb), -EINVAL);
    ck_assert_int_eq(fab_mr_register(p, a, 8, 0x100, &mb), -EINVAL);
    fab_mr_destroy(ma);
    fab_mr_destroy(mb);
    fab_mr_destroy(NULL);
    fab_pool_destroy(p);
}
END_TEST

START_TEST(publish_replace_unpublish)
{
    struct fab_pool *p = tf_pool(1, 0, NULL);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(fab_pool_publish(p, 5, "abc", 3), 0);
    ck_assert_int_eq(fab_pool_publish(p, 5, "de", 2), 0);
    ck_assert_int_eq(fab_pool_unpublish(p, 5), 0);
    ck_assert_int_eq(fab_pool_unpublish(p, 5), -ENOENT);
    static uint8_t big[FAB_BLOB_MAX + 1];
    ck_assert_int_eq(fab_pool_publish(p, 6, big, sizeof(big)), -EINVAL);
    size_t len;
    char buf[8];
    struct fab_error err;
    ck_assert_int_eq(fab_pool_fetch(p, 9, 5, buf, sizeof(buf), &len, 10, &err),
                     -ENOENT);
    fab_pool_destroy(p);
}
END_TEST

Suite *fab_unit_suite(void)
{
    Suite *s = suite_create("fab-unit");
    TCase *tc = tcase_create("unit");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, options_defaults);
    tcase_add_test(tc, strerror_names_ours_and_libfabric);
    tcase_add_test(tc, mr_rules_synthetic_combinations);
    tcase_add_test(tc, mr_rules_legacy_and_unsupported);
    tcase_add_test(tc, mr_desc_roundtrip_and_bounds);
    tcase_add_test(tc, pool_tcp_opens_and_reports);
    tcase_add_test(tc, pool_verbs_fails_cleanly_without_device);
    tcase_add_test(tc, pool_rejects_bad_options);
    tcase_add_test(tc, write_ordering_override);
    tcase_add_test(tc, mr_register_prov_key_and_bounds);
    tcase_add_test(tc, publish_replace_unpublish);
    suite_add_tcase(s, tc);
    return s;
}
