/* The SMC counter decisions (src/smc_count.c) with counters caught
 * mid-write: the receiver's receipt of a sender's nsent, and "has every
 * member received / delivered past this round", must never act on a
 * counter torn between its old and its new value.  On libfabric's tcp
 * provider such a read happens (a push lands in the pieces the socket
 * returns; libsst measured 703 torn 8-byte counters in 979 M reads), so
 * the elements here are built byte by byte as a reader could see them. */
#include "test-derecho.h"

#include "derecho-private.h"

#include <sst/sst.h>

#include <errno.h>
#include <string.h>

/* An element holding value (a whole write). */
static void whole(uint8_t elem[SST_WORD_SIZE], uint64_t value)
{
    memset(elem, 0, SST_WORD_SIZE);
    sst_word_store(elem, value);
}

START_TEST(whole_counters_are_read)
{
    _Alignas(16) uint8_t e[SST_WORD_SIZE];
    whole(e, 0);
    uint64_t now = 99;
    ck_assert(!derecho__smc_receipt(e, 0, 16, &now));
    ck_assert(!derecho__smc_count_above(e, 0));
    whole(e, 256);
    ck_assert(derecho__smc_receipt(e, 250, 16, &now));
    ck_assert_uint_eq(now, 256);
    ck_assert(!derecho__smc_receipt(e, 256, 16, &now));
    /* A peer cannot be more than a window ahead of what I received. */
    ck_assert(derecho__smc_receipt(e, 100, 16, &now));
    ck_assert_uint_eq(now, 116);
    ck_assert(derecho__smc_count_above(e, 255));
    ck_assert(!derecho__smc_count_above(e, 256));
    uint64_t v = 0;
    ck_assert_int_eq(derecho__smc_count_load(e, &v), 0);
    ck_assert_uint_eq(v, 256);
}
END_TEST

/* Every mix of the old element (255) and the new one (256), byte by byte,
 * over the 16 bytes: whatever the order the bytes landed in.  With the
 * plain 8-byte counter of before, the mix "low byte old, the rest new"
 * reads 511: a receiver that had received 255 would have taken 16 more
 * messages (the window's clamp) as arrived while only one was sent, and
 * "received by all past round 300" would have been true. */
START_TEST(torn_counters_are_refused)
{
    _Alignas(16) uint8_t oldw[SST_WORD_SIZE], neww[SST_WORD_SIZE];
    whole(oldw, 255);
    whole(neww, 256);
    unsigned accepted_wrong = 0, refused = 0;
    for (uint32_t mask = 0; mask < (1u << SST_WORD_SIZE); mask++) {
        _Alignas(16) uint8_t e[SST_WORD_SIZE];
        for (int b = 0; b < SST_WORD_SIZE; b++)
            e[b] = (mask >> b) & 1 ? neww[b] : oldw[b];
        uint64_t v = 0;
        int rc = derecho__smc_count_load(e, &v);
        if (rc == -EAGAIN) {
            refused++;
            uint64_t now = 0;
            ck_assert(!derecho__smc_receipt(e, 255, 16, &now));
            ck_assert(!derecho__smc_count_above(e, 255));
            continue;
        }
        ck_assert_int_eq(rc, 0);
        if (v != 255 && v != 256)
            accepted_wrong++;
        uint64_t now = 0;
        if (derecho__smc_receipt(e, 255, 16, &now))
            ck_assert_uint_eq(now, 256);
        ck_assert(!derecho__smc_count_above(e, 256));
    }
    ck_assert_uint_eq(accepted_wrong, 0);
    ck_assert_uint_gt(refused, 0);
    /* The mix the plain counter read as 511. */
    _Alignas(16) uint8_t e[SST_WORD_SIZE];
    memcpy(e, neww, sizeof(e));
    e[0] = oldw[0];
    uint64_t plain;
    memcpy(&plain, e, sizeof(plain));
    ck_assert_uint_eq(plain, 511);
    uint64_t now = 0;
    ck_assert(!derecho__smc_receipt(e, 255, 16, &now));
    ck_assert(!derecho__smc_count_above(e, 300));
}
END_TEST

/* Larger jumps (a push carries many messages' worth): random values,
 * every prefix and suffix tear, never accepted as a third value. */
START_TEST(torn_jumps_are_refused)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 2000; round++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t a = x >> 20, b = a + 1 + (x & 0xffff);
        _Alignas(16) uint8_t oldw[SST_WORD_SIZE], neww[SST_WORD_SIZE];
        whole(oldw, a);
        whole(neww, b);
        for (int cut = 1; cut < SST_WORD_SIZE; cut++) {
            for (int dir = 0; dir < 2; dir++) {
                _Alignas(16) uint8_t e[SST_WORD_SIZE];
                for (int i = 0; i < SST_WORD_SIZE; i++)
                    e[i] = (i < cut) == (dir == 0) ? neww[i] : oldw[i];
                uint64_t v;
                int rc = derecho__smc_count_load(e, &v);
                ck_assert(rc == -EAGAIN || (rc == 0 && (v == a || v == b)));
                ck_assert(!derecho__smc_count_above(e, b));
            }
        }
    }
}
END_TEST

TCase *tc_smc_count(void)
{
    TCase *tc = tcase_create("smc_count");
    tcase_add_test(tc, whole_counters_are_read);
    tcase_add_test(tc, torn_counters_are_refused);
    tcase_add_test(tc, torn_jumps_are_refused);
    return tc;
}
