/* Row schema: field offsets and the hash members compare. */
#include "sst-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <string.h>
#include <xxhash.h>

#define SST__MAX_ELEM 4096
#define SST__MAX_ROW ((size_t)SST_MAX_ROW_SIZE)

static size_t field_align(size_t elem_size)
{
    size_t a = 1;
    while (a < elem_size && a < 8)
        a <<= 1;
    return a;
}

int sst_schema_layout(const struct sst_field *fields, size_t n, size_t *offsets,
                      size_t *user_size)
{
    if (!fields || n == 0 || n > SST_MAX_FIELDS)
        return -EINVAL;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const struct sst_field *f = &fields[i];
        if (!f->name || !f->name[0] || strlen(f->name) > 63 ||
            f->elem_size == 0 || f->elem_size > SST__MAX_ELEM || f->count == 0)
            return -EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(fields[j].name, f->name) == 0)
                return -EINVAL;
        if (f->count > SST__MAX_ROW / f->elem_size)
            return -ERANGE;
        size_t a = field_align(f->elem_size);
        off = (off + a - 1) & ~(a - 1);
        if (offsets)
            offsets[i] = off;
        off += f->elem_size * f->count;
        if (off > SST__MAX_ROW)
            return -ERANGE;
    }
    off = (off + 7) & ~(size_t)7;
    if (user_size)
        *user_size = off;
    return 0;
}

uint64_t sst_schema_hash(const struct sst_field *fields, size_t n)
{
    size_t offsets[SST_MAX_FIELDS];
    size_t user_size;
    if (sst_schema_layout(fields, n, offsets, &user_size) != 0)
        return 0;
    XXH64_state_t *st = XXH64_createState();
    if (!st)
        return 0;
    XXH64_reset(st, 0x535354u);
    /* Little-endian fixed-width numbers, names with their length: equal
     * schemas hash equally on every machine. */
    for (size_t i = 0; i < n; i++) {
        uint8_t num[32];
        size_t len = strlen(fields[i].name);
        uint64_t vals[4] = {len, fields[i].elem_size, fields[i].count,
                            offsets[i]};
        for (int k = 0; k < 4; k++)
            mutils_store_le64(num + 8 * k, vals[k]);
        XXH64_update(st, num, sizeof(num));
        XXH64_update(st, fields[i].name, len);
    }
    uint64_t h = XXH64_digest(st);
    XXH64_freeState(st);
    return h ? h : 1;
}
