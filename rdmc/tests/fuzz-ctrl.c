/* Fuzz target: control records and CQ data words from a peer. */
#include <rdmc/rdmc.h>

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rdmc_ctrl c;
    if (rdmc_ctrl_decode(data, size, &c) == 0) {
        uint8_t again[RDMC_CTRL_SIZE];
        /* whatever decodes must encode back to the same bytes */
        if (rdmc_ctrl_encode(&c, again) != 0 ||
            memcmp(again, data, RDMC_CTRL_SIZE) != 0)
            __builtin_trap();
    }
    if (size >= 8) {
        uint64_t w;
        memcpy(&w, data, 8);
        uint32_t g, idx, blk;
        unsigned kind;
        if (rdmc_cq_decode(w, &g, &kind, &idx, &blk) &&
            rdmc_cq_encode(g, kind, idx, blk) != w)
            __builtin_trap();
    }
    return 0;
}
