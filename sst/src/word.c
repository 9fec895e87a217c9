/* Word-atomic 64-bit values: a value and its check word. */
#include "sst-private.h"

#include <errno.h>

/* A bijective 64-bit mixer (the MurmurHash3 finaliser), shifted so that
 * check(0) == 0: a zeroed element reads as the value 0. */
static uint64_t mix(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ull;
    v ^= v >> 33;
    return v;
}

static uint64_t check_of(uint64_t v)
{
    return mix(v ^ 0x5353545f776f7264ull) ^ mix(0x5353545f776f7264ull);
}

void sst_word_store(void *elem, uint64_t value)
{
    if (!elem)
        return;
    uint64_t *w = elem;
    __atomic_store_n(&w[0], value, __ATOMIC_RELAXED);
    __atomic_store_n(&w[1], check_of(value), __ATOMIC_RELEASE);
}

int sst_word_load(const void *elem, uint64_t *value)
{
    if (!elem || !value)
        return -EINVAL;
    const uint64_t *w = elem;
    uint64_t c = __atomic_load_n(&w[1], __ATOMIC_ACQUIRE);
    uint64_t v = __atomic_load_n(&w[0], __ATOMIC_ACQUIRE);
    if (check_of(v) != c)
        return -EAGAIN;
    *value = v;
    return 0;
}
