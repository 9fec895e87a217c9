/* Memory registration and remote addressing under the provider's MR modes. */
#include "fab-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int fab_mr_rules_from_modes(uint64_t mr_mode, uint64_t mode,
                            struct fab_mr_rules *rules)
{
    if (!rules)
        return -EINVAL;
    memset(rules, 0, sizeof(*rules));
    /* The two legacy values are enumerations, not bits. */
    if (mr_mode == FI_MR_BASIC) {
        mr_mode = FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY;
    } else if (mr_mode == FI_MR_SCALABLE) {
        mr_mode = 0;
    }
    const uint64_t unsupported = FI_MR_RAW | FI_MR_ENDPOINT | FI_MR_MMU_NOTIFY |
                                 FI_MR_RMA_EVENT | FI_MR_HMEM |
                                 FI_MR_COLLECTIVE;
    if (mr_mode & unsupported)
        return -ENOTSUP;
    rules->virt_addr = (mr_mode & FI_MR_VIRT_ADDR) != 0;
    rules->prov_key = (mr_mode & FI_MR_PROV_KEY) != 0;
    rules->local_desc = (mr_mode & FI_MR_LOCAL) != 0;
    rules->allocated = (mr_mode & FI_MR_ALLOCATED) != 0;
    rules->rx_cq_data = (mode & FI_RX_CQ_DATA) != 0;
    return 0;
}

uint64_t fab_mr_rules_base(const struct fab_mr_rules *rules, const void *addr)
{
    return rules && rules->virt_addr ? (uint64_t)(uintptr_t)addr : 0;
}

int fab_mr_remote_addr(const struct fab_mr_rules *rules,
                       const struct fab_mr_desc *desc, uint64_t offset,
                       uint64_t len, uint64_t *addr)
{
    if (!rules || !desc || !addr)
        return -EINVAL;
    if (offset > desc->len || len > desc->len - offset)
        return -ERANGE;
    if (!rules->virt_addr) {
        *addr = offset;
        return 0;
    }
    /* offset + len <= desc->len: the sum does not wrap. */
    if (desc->base > UINT64_MAX - (offset + len))
        return -ERANGE;
    *addr = desc->base + offset;
    return 0;
}

void fab_mr_desc_encode(const struct fab_mr_desc *desc,
                        uint8_t out[FAB_MR_DESC_SIZE])
{
    if (!out)
        return;
    if (!desc) {
        memset(out, 0, FAB_MR_DESC_SIZE);
        return;
    }
    mutils_store_le64(out, desc->key);
    mutils_store_le64(out + 8, desc->base);
    mutils_store_le64(out + 16, desc->len);
}

int fab_mr_desc_decode(const uint8_t *in, size_t len, struct fab_mr_desc *desc)
{
    if (!in || !desc || len != FAB_MR_DESC_SIZE)
        return -EBADMSG;
    const uint64_t v[3] = {mutils_load_le64(in), mutils_load_le64(in + 8),
                           mutils_load_le64(in + 16)};
    if (v[1] > UINT64_MAX - v[2])
        return -EBADMSG;
    desc->key = v[0];
    desc->base = v[1];
    desc->len = v[2];
    return 0;
}

int fab_mr_register(struct fab_pool *pool, void *buf, size_t len,
                    unsigned access, struct fab_mr **out)
{
    if (!pool || !buf || len == 0 || !out || access == 0 ||
        (access & ~(FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE |
                    FAB_ACCESS_REMOTE_READ)))
        return -EINVAL;
    if ((uintptr_t)buf + len < (uintptr_t)buf)
        return -EINVAL; /* the range wraps around the address space */
    struct fab_mr *mr = calloc(1, sizeof(*mr));
    if (!mr)
        return -ENOMEM;
    uint64_t fi_access = 0;
    if (access & FAB_ACCESS_LOCAL)
        fi_access |= FI_SEND | FI_RECV | FI_WRITE | FI_READ;
    if (access & FAB_ACCESS_REMOTE_WRITE)
        fi_access |= FI_REMOTE_WRITE;
    if (access & FAB_ACCESS_REMOTE_READ)
        fi_access |= FI_REMOTE_READ;
    uint64_t requested_key = 0;
    if (!pool->rules.prov_key) {
        pthread_mutex_lock(&pool->lock);
        requested_key = pool->next_key++;
        pthread_mutex_unlock(&pool->lock);
    }
    int rc = fi_mr_reg(pool->domain, buf, len, fi_access, 0, requested_key, 0,
                       &mr->mr, NULL);
    if (rc) {
        fab__log(pool, LOG_ERR, "fi_mr_reg(%zu bytes): %s", len,
                 fi_strerror(-rc));
        free(mr);
        return rc;
    }
    mr->pool = pool;
    mr->buf = buf;
    mr->len = len;
    mr->desc = pool->rules.local_desc ? fi_mr_desc(mr->mr) : NULL;
    mr->remote.key = pool->rules.prov_key ? fi_mr_key(mr->mr) : requested_key;
    mr->remote.base = fab_mr_rules_base(&pool->rules, buf);
    mr->remote.len = len;
    *out = mr;
    return 0;
}

void fab_mr_destroy(struct fab_mr *mr)
{
    if (!mr)
        return;
    fi_close(&mr->mr->fid);
    free(mr);
}

void fab_mr_get_desc(const struct fab_mr *mr, struct fab_mr_desc *desc)
{
    if (!desc)
        return;
    if (!mr) {
        memset(desc, 0, sizeof(*desc));
        return;
    }
    *desc = mr->remote;
}

void *fab_mr_addr(const struct fab_mr *mr)
{
    return mr ? mr->buf : NULL;
}

size_t fab_mr_len(const struct fab_mr *mr)
{
    return mr ? mr->len : 0;
}
