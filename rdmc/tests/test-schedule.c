/* Schedules and wire format: pure functions, no network. */
#include "test-rdmc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const enum rdmc_algorithm all_algs[] = {
    RDMC_BINOMIAL_SEND, RDMC_CHAIN_SEND, RDMC_SEQUENTIAL_SEND, RDMC_TREE_SEND};

static uint32_t ilog2(uint32_t x)
{
    return 31u - (uint32_t)__builtin_clz(x);
}

/* Runs the whole schedule and checks every property; returns a message on
 * the first violation (NULL when all hold). */
static const char *verify(enum rdmc_algorithm alg, uint32_t n, uint32_t k,
                          char *why, size_t cap)
{
    uint32_t steps = rdmc_schedule_steps(alg, n, k);
    if (steps == 0)
        return "no steps";
    uint8_t *have = calloc((size_t)n * k, 1);
    uint8_t *got = calloc((size_t)n * k, 1);
    struct rdmc_transfer *snd = calloc(n, sizeof(*snd));
    struct rdmc_transfer *rcv = calloc(n, sizeof(*rcv));
    memset(have, 1, k); /* rank 0 holds every block */
    const char *err = NULL;
    for (uint32_t s = 0; s < steps && !err; s++) {
        for (uint32_t r = 0; r < n && !err; r++)
            if (rdmc_schedule_step(alg, n, r, k, s, &snd[r], &rcv[r]))
                err = "step failed";
        for (uint32_t r = 0; r < n && !err; r++) {
            struct rdmc_transfer t = snd[r];
            if (t.peer != RDMC_NO_PEER) {
                if (t.peer >= n || t.peer == r || t.block >= k)
                    err = "send out of range";
                else if (!have[(size_t)r * k + t.block])
                    err = "forwards a block it does not hold";
                else if (rcv[t.peer].peer != r || rcv[t.peer].block != t.block)
                    err = "send without the matching receive";
            }
            t = rcv[r];
            if (!err && t.peer != RDMC_NO_PEER) {
                if (r == 0)
                    err = "the sender receives";
                else if (t.peer >= n || t.block >= k)
                    err = "receive out of range";
                else if (snd[t.peer].peer != r || snd[t.peer].block != t.block)
                    err = "receive without the matching send";
                else if (got[(size_t)r * k + t.block])
                    err = "block received twice";
            }
            if (err)
                snprintf(why, cap, "%s: alg %d n %u k %u step %u rank %u", err,
                         alg, n, k, s, r);
        }
        /* one send and one receive per member per step is structural
         * (one struct each); apply receives after the step */
        for (uint32_t r = 1; r < n && !err; r++) {
            if (rcv[r].peer != RDMC_NO_PEER) {
                have[(size_t)r * k + rcv[r].block] = 1;
                got[(size_t)r * k + rcv[r].block] = 1;
            }
        }
    }
    for (size_t i = 0; i < (size_t)n * k && !err; i++)
        if (!have[i]) {
            snprintf(why, cap, "rank %zu misses block %zu: alg %d n %u k %u",
                     i / k, i % k, alg, n, k);
            err = why;
        }
    free(have);
    free(got);
    free(snd);
    free(rcv);
    return err ? why : NULL;
}

static void check_steps(enum rdmc_algorithm alg, uint32_t n, uint32_t k)
{
    uint32_t steps = rdmc_schedule_steps(alg, n, k);
    uint32_t l = ilog2(n);
    if (alg == RDMC_BINOMIAL_SEND) {
        if ((n & (n - 1)) == 0)
            ck_assert_uint_eq(steps, k + l - 1);
        else
            ck_assert_uint_le(steps, 2 * (k + l - 1));
    } else if (alg == RDMC_CHAIN_SEND) {
        ck_assert_uint_eq(steps, k + n - 2);
    } else if (alg == RDMC_SEQUENTIAL_SEND) {
        ck_assert_uint_eq(steps, (n - 1) * k);
    } else {
        ck_assert_uint_eq(steps, (l + ((n & (n - 1)) != 0)) * k);
    }
}

static void run_matrix(uint32_t n_max, const uint32_t *ks, size_t nks,
                       uint32_t seq_k_max)
{
    char why[256];
    for (size_t a = 0; a < 4; a++) {
        for (uint32_t n = 2; n <= n_max; n++) {
            for (size_t i = 0; i < nks; i++) {
                uint32_t k = ks[i];
                if (all_algs[a] == RDMC_SEQUENTIAL_SEND && k > seq_k_max)
                    continue;
                check_steps(all_algs[a], n, k);
                const char *err = verify(all_algs[a], n, k, why, sizeof(why));
                ck_assert_msg(err == NULL, "%s", err);
            }
        }
    }
}

START_TEST(test_schedules_sampled)
{
    uint32_t ks[60];
    size_t nks = 0;
    for (uint32_t k = 1; k <= 40; k++)
        ks[nks++] = k;
    static const uint32_t more[] = {63, 64, 65, 127, 128, 255, 500, 999, 1000};
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        ks[nks++] = more[i];
    run_matrix(64, ks, nks, 100);
}
END_TEST

START_TEST(test_schedules_full)
{
    /* every size 2..64 x every block count 1..1000, per algorithm (_i) */
    char why[256];
    enum rdmc_algorithm alg = all_algs[_i];
    /* sequential_send has (n - 1) * blocks steps: its full matrix would
     * take hours for nothing new, so it stops at 200 blocks */
    uint32_t k_max = alg == RDMC_SEQUENTIAL_SEND ? 200 : 1000;
    for (uint32_t n = 2; n <= 64; n++) {
        for (uint32_t k = 1; k <= k_max; k++) {
            check_steps(alg, n, k);
            const char *err = verify(alg, n, k, why, sizeof(why));
            ck_assert_msg(err == NULL, "%s", err);
        }
    }
}
END_TEST

START_TEST(test_schedule_bad_args)
{
    struct rdmc_transfer s, r;
    ck_assert_uint_eq(rdmc_schedule_steps(RDMC_BINOMIAL_SEND, 1, 5), 0);
    ck_assert_uint_eq(rdmc_schedule_steps(RDMC_BINOMIAL_SEND, 4, 0), 0);
    ck_assert_uint_eq(
        rdmc_schedule_steps(RDMC_CHAIN_SEND, 4, RDMC_MAX_BLOCKS + 1), 0);
    ck_assert_uint_eq(rdmc_schedule_steps((enum rdmc_algorithm)9, 4, 5), 0);
    ck_assert_int_eq(rdmc_schedule_step(RDMC_CHAIN_SEND, 4, 4, 5, 0, &s, &r),
                     -EINVAL);
    ck_assert_int_eq(rdmc_schedule_step(RDMC_CHAIN_SEND, 4, 1, 5, 7, &s, &r),
                     -EINVAL);
    ck_assert_int_eq(rdmc_schedule_step(RDMC_CHAIN_SEND, 4, 1, 5, 0, NULL, &r),
                     -EINVAL);
    enum rdmc_algorithm a;
    ck_assert_int_eq(rdmc_algorithm_from_name("tree_send", &a), 0);
    ck_assert_int_eq(a, RDMC_TREE_SEND);
    ck_assert_str_eq(rdmc_algorithm_name(RDMC_BINOMIAL_SEND), "binomial_send");
    ck_assert_int_eq(rdmc_algorithm_from_name("binomial", &a), -EINVAL);
    ck_assert_ptr_null(rdmc_algorithm_name((enum rdmc_algorithm)7));
}
END_TEST

START_TEST(test_ctrl_roundtrip)
{
    uint8_t buf[RDMC_CTRL_SIZE];
    struct rdmc_ctrl c = {.kind = RDMC_KIND_READY,
                          .group_id = 77,
                          .index = 123456789,
                          .dest = {.key = 5, .base = 0x1000, .len = 4096}};
    ck_assert_int_eq(rdmc_ctrl_encode(&c, buf), 0);
    struct rdmc_ctrl d;
    ck_assert_int_eq(rdmc_ctrl_decode(buf, sizeof(buf), &d), 0);
    ck_assert_int_eq(d.kind, RDMC_KIND_READY);
    ck_assert_uint_eq(d.group_id, 77);
    ck_assert_uint_eq(d.index, 123456789);
    ck_assert_uint_eq(d.dest.key, 5);
    ck_assert_uint_eq(d.dest.base, 0x1000);
    ck_assert_uint_eq(d.dest.len, 4096);
    c = (struct rdmc_ctrl){
        .kind = RDMC_KIND_HEADER, .group_id = 1, .index = 3, .size = 17};
    ck_assert_int_eq(rdmc_ctrl_encode(&c, buf), 0);
    ck_assert_int_eq(rdmc_ctrl_decode(buf, sizeof(buf), &d), 0);
    ck_assert_uint_eq(d.size, 17);
    c.kind = RDMC_KIND_BLOCK;
    ck_assert_int_eq(rdmc_ctrl_encode(&c, buf), -EINVAL);
    c.kind = RDMC_KIND_DONE;
    c.group_id = RDMC_MAX_GROUP_ID + 1;
    ck_assert_int_eq(rdmc_ctrl_encode(&c, buf), -EINVAL);
}
END_TEST

START_TEST(test_ctrl_malformed)
{
    uint8_t buf[RDMC_CTRL_SIZE];
    struct rdmc_ctrl c = {
        .kind = RDMC_KIND_HEADER, .group_id = 1, .index = 3, .size = 17};
    struct rdmc_ctrl d;
    ck_assert_int_eq(rdmc_ctrl_encode(&c, buf), 0);
    ck_assert_int_eq(rdmc_ctrl_decode(buf, sizeof(buf) - 1, &d), -EBADMSG);
    ck_assert_int_eq(rdmc_ctrl_decode(NULL, sizeof(buf), &d), -EBADMSG);
    uint8_t bad[RDMC_CTRL_SIZE];
    memcpy(bad, buf, sizeof(bad));
    bad[0] = 9; /* version */
    ck_assert_int_eq(rdmc_ctrl_decode(bad, sizeof(bad), &d), -EBADMSG);
    memcpy(bad, buf, sizeof(bad));
    bad[1] = 4; /* BLOCK has no record */
    ck_assert_int_eq(rdmc_ctrl_decode(bad, sizeof(bad), &d), -EBADMSG);
    memcpy(bad, buf, sizeof(bad));
    bad[45] = 1; /* reserved */
    ck_assert_int_eq(rdmc_ctrl_decode(bad, sizeof(bad), &d), -EBADMSG);
    memcpy(bad, buf, sizeof(bad));
    memset(bad + 16, 0, 8); /* size 0 */
    ck_assert_int_eq(rdmc_ctrl_decode(bad, sizeof(bad), &d), -EBADMSG);
    memcpy(bad, buf, sizeof(bad));
    bad[7] = 0xff; /* group id too large */
    ck_assert_int_eq(rdmc_ctrl_decode(bad, sizeof(bad), &d), -EBADMSG);
    c = (struct rdmc_ctrl){
        .kind = RDMC_KIND_READY,
        .group_id = 1,
        .index = 3,
        .dest = {.key = 1, .base = UINT64_MAX - 1, .len = 16}};
    ck_assert_int_eq(rdmc_ctrl_encode(&c, buf), 0);
    ck_assert_int_eq(rdmc_ctrl_decode(buf, sizeof(buf), &d), -EBADMSG);
}
END_TEST

START_TEST(test_cq_words)
{
    uint64_t w = rdmc_cq_encode(0xabcde, RDMC_KIND_BLOCK, 4097, 0x54321);
    uint32_t g, idx, blk;
    unsigned kind;
    ck_assert(rdmc_cq_decode(w, &g, &kind, &idx, &blk));
    ck_assert_uint_eq(g, 0xabcde);
    ck_assert_uint_eq(kind, RDMC_KIND_BLOCK);
    ck_assert_uint_eq(idx, 1);
    ck_assert_uint_eq(blk, 0x54321);
    ck_assert(!rdmc_cq_decode(0x1234, &g, &kind, &idx, &blk));
}
END_TEST

/* Tagged-word payloads fit libfab's 20 bits, for every kind and slot. */
START_TEST(test_data_payloads)
{
    for (unsigned kind = RDMC_KIND_HEADER; kind <= RDMC_KIND_BLOCK; kind++) {
        for (uint32_t slot = 0; slot <= RDMC_DATA_SLOT_MAX; slot++) {
            uint32_t p = rdmc_data_encode(kind, slot, 0x12345 + slot);
            ck_assert_uint_le(p, FAB_DATA_PAYLOAD_MAX);
            unsigned k;
            uint32_t sl, b;
            rdmc_data_decode(p, &k, &sl, &b);
            ck_assert_uint_eq(k, kind);
            ck_assert_uint_eq(sl, slot);
            ck_assert_uint_eq(b, (0x12345 + slot) % RDMC_DATA_BLOCK_MOD);
        }
    }
    ck_assert_uint_eq(rdmc_data_encode(0, 0, 0), UINT32_MAX);
    ck_assert_uint_eq(rdmc_data_encode(RDMC_KIND_BLOCK + 1, 0, 0), UINT32_MAX);
    ck_assert_uint_eq(
        rdmc_data_encode(RDMC_KIND_BLOCK, RDMC_DATA_SLOT_MAX + 1, 0),
        UINT32_MAX);
    rdmc_data_decode(0, NULL, NULL, NULL); /* NULL outputs are fine */
}
END_TEST

Suite *rdmc_unit_suite(void)
{
    Suite *s = suite_create("rdmc-unit");
    TCase *tc = tcase_create("schedule");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_schedules_sampled);
    tcase_add_test(tc, test_schedule_bad_args);
    suite_add_tcase(s, tc);
    tc = tcase_create("wire");
    tcase_add_test(tc, test_ctrl_roundtrip);
    tcase_add_test(tc, test_ctrl_malformed);
    tcase_add_test(tc, test_cq_words);
    tcase_add_test(tc, test_data_payloads);
    suite_add_tcase(s, tc);
    return s;
}

/* The full schedule matrix lives in the stress suite. */
void rdmc_add_full_schedules(Suite *s)
{
    TCase *tc = tcase_create("schedule-full");
    tcase_set_timeout(tc, 3600);
    tcase_add_loop_test(tc, test_schedules_full, 0, 4);
    suite_add_tcase(s, tc);
}
