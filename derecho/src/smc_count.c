/* The SMC counters' reads: decisions on word-atomic counter elements.
 *
 * Every counter a member reads from another member's row (a sender's
 * nsent, a member's recv[j] and ndel[j]) is an element of SST_WORD_SIZE
 * bytes written with sst_word_store and read with sst_word_load: on
 * libfabric's tcp provider a push lands in the pieces the socket returns,
 * so a plain 8-byte counter can be read half old, half new (libsst
 * measured 703 torn reads in 979 M under traffic; docs/sst.md "Word
 * atomicity").  A torn counter that reads too high would make a member
 * deliver a message that has not arrived.  An element caught mid-write is
 * refused here and the decision taken as if it still held its old value
 * (counters only grow, so "not yet" is always safe); the delivery thread
 * is woken again when the write completes (the bytes change again). */
#include "derecho-private.h"

#include <sst/sst.h>

#include <errno.h>

int derecho__smc_count_load(const void *elem, uint64_t *value)
{
    return sst_word_load(elem, value);
}

bool derecho__smc_receipt(const void *nsent_elem, uint64_t have,
                          uint32_t window, uint64_t *now)
{
    uint64_t ns;
    if (sst_word_load(nsent_elem, &ns) != 0 || ns <= have)
        return false;
    if (ns - have > window)
        ns = have + window; /* a peer cannot be further ahead */
    *now = ns;
    return true;
}

bool derecho__smc_count_above(const void *elem, uint64_t round)
{
    uint64_t c;
    return sst_word_load(elem, &c) == 0 && c > round;
}
