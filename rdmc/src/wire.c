/* Control records and CQ data words: the only file that knows the bytes. */
#include "rdmc-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <string.h>

/* Layout: 0 version, 1 kind, 2..3 zero, 4..7 group id, 8..15 index,
 * 16..23 size (HEADER) or dest.key (READY), 24..31 dest.base,
 * 32..39 dest.len, 40..47 zero (version 1) or, in a READY of version 2,
 * the offset in dest where the message goes (rdmc__ctrl_*). */
static int encode(const struct rdmc_ctrl *c, uint64_t dest_off, uint8_t *out)
{
    if (!c || !out || c->group_id > RDMC_MAX_GROUP_ID)
        return -EINVAL;
    if (c->kind != RDMC_KIND_HEADER && c->kind != RDMC_KIND_READY &&
        c->kind != RDMC_KIND_DONE)
        return -EINVAL;
    if (dest_off && c->kind != RDMC_KIND_READY)
        return -EINVAL;
    memset(out, 0, RDMC_CTRL_SIZE);
    out[0] = RDMC__CTRL_VERSION;
    out[1] = (uint8_t)c->kind;
    mutils_store_le32(out + 4, c->group_id);
    mutils_store_le64(out + 8, c->index);
    if (c->kind == RDMC_KIND_HEADER) {
        mutils_store_le64(out + 16, c->size);
    } else if (c->kind == RDMC_KIND_READY) {
        mutils_store_le64(out + 16, c->dest.key);
        mutils_store_le64(out + 24, c->dest.base);
        mutils_store_le64(out + 32, c->dest.len);
        mutils_store_le64(out + 40, dest_off);
    }
    return 0;
}

int rdmc_ctrl_encode(const struct rdmc_ctrl *c, uint8_t out[RDMC_CTRL_SIZE])
{
    int rc = encode(c, 0, out);
    if (rc == 0)
        out[0] = RDMC_CTRL_VERSION;
    return rc;
}

int rdmc__ctrl_encode(const struct rdmc_ctrl *c, uint64_t dest_off,
                      uint8_t out[RDMC_CTRL_SIZE])
{
    return encode(c, dest_off, out);
}

static bool all_zero(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

static int decode(const uint8_t *in, size_t len, struct rdmc_ctrl *c,
                  uint64_t *dest_off)
{
    if (!in || !c || len != RDMC_CTRL_SIZE)
        return -EBADMSG;
    bool v2 = dest_off && in[0] == RDMC__CTRL_VERSION;
    if ((in[0] != RDMC_CTRL_VERSION && !v2) || in[2] || in[3])
        return -EBADMSG;
    memset(c, 0, sizeof(*c));
    c->kind = (enum rdmc_ctrl_kind)in[1];
    c->group_id = mutils_load_le32(in + 4);
    c->index = mutils_load_le64(in + 8);
    if (c->group_id > RDMC_MAX_GROUP_ID)
        return -EBADMSG;
    if (dest_off)
        *dest_off = 0;
    if (!(v2 && c->kind == RDMC_KIND_READY) && !all_zero(in + 40, 8))
        return -EBADMSG;
    switch (c->kind) {
    case RDMC_KIND_HEADER:
        c->size = mutils_load_le64(in + 16);
        if (c->size == 0 || !all_zero(in + 24, 16))
            return -EBADMSG;
        return 0;
    case RDMC_KIND_READY:
        c->dest.key = mutils_load_le64(in + 16);
        c->dest.base = mutils_load_le64(in + 24);
        c->dest.len = mutils_load_le64(in + 32);
        if (c->dest.len == 0 || c->dest.base + c->dest.len < c->dest.base)
            return -EBADMSG;
        if (v2) {
            *dest_off = mutils_load_le64(in + 40);
            if (*dest_off >= c->dest.len)
                return -EBADMSG;
        }
        return 0;
    case RDMC_KIND_DONE:
        if (!all_zero(in + 16, 24))
            return -EBADMSG;
        return 0;
    default:
        return -EBADMSG;
    }
}

int rdmc_ctrl_decode(const uint8_t *in, size_t len, struct rdmc_ctrl *c)
{
    return decode(in, len, c, NULL);
}

int rdmc__ctrl_decode(const uint8_t *in, size_t len, struct rdmc_ctrl *c,
                      uint64_t *dest_off)
{
    uint64_t unused;
    return decode(in, len, c, dest_off ? dest_off : &unused);
}

uint64_t rdmc_cq_encode(uint32_t group_id, unsigned kind, uint64_t index,
                        uint32_t block)
{
    return ((uint64_t)RDMC_CQ_MAGIC << 56) |
           ((uint64_t)(group_id & RDMC_MAX_GROUP_ID) << 36) |
           ((uint64_t)(kind & 0xfu) << 32) | ((index & 0xfffu) << 20) |
           (block & 0xfffffu);
}

bool rdmc_cq_decode(uint64_t data, uint32_t *group_id, unsigned *kind,
                    uint32_t *index_mod, uint32_t *block)
{
    if ((data >> 56) != RDMC_CQ_MAGIC)
        return false;
    if (group_id)
        *group_id = (uint32_t)(data >> 36) & RDMC_MAX_GROUP_ID;
    if (kind)
        *kind = (unsigned)(data >> 32) & 0xfu;
    if (index_mod)
        *index_mod = (uint32_t)(data >> 20) & 0xfffu;
    if (block)
        *block = (uint32_t)data & 0xfffffu;
    return true;
}

uint32_t rdmc_data_encode(unsigned kind, uint32_t slot, uint32_t block)
{
    if (kind < RDMC_KIND_HEADER || kind > RDMC_KIND_BLOCK ||
        slot > RDMC_DATA_SLOT_MAX)
        return UINT32_MAX;
    return ((uint32_t)(kind - 1) << 18) | (slot << 12) |
           (block % RDMC_DATA_BLOCK_MOD);
}

void rdmc_data_decode(uint32_t payload, unsigned *kind, uint32_t *slot,
                      uint32_t *block_mod)
{
    if (kind)
        *kind = ((payload >> 18) & 0x3u) + 1;
    if (slot)
        *slot = (payload >> 12) & RDMC_DATA_SLOT_MAX;
    if (block_mod)
        *block_mod = payload % RDMC_DATA_BLOCK_MOD;
}
