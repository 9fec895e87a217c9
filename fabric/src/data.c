/* Remote completion data: tags and the dispatch of data words to users.
 *
 * A word carrying a claimed tag goes to that tag's user through a table
 * (O(1)); untagged users (those that claimed none) get every word of the
 * connections they hold, as before tags existed.  Callbacks run without
 * pool->lock (they may post and release); users cannot vanish meanwhile
 * because fab_user_destroy takes progress_lock, which the caller holds. */
#include "fab-private.h"

#include <errno.h>

/* Untagged users called per pass over the user list: the rest are reached
 * by further passes, so there is no limit on their number. */
#define DATA_BATCH 32

size_t fab__cq_data_size(const struct fab_pool *pool)
{
    size_t sz = pool->info->domain_attr->cq_data_size;
    size_t limit = pool->opts.cq_data_limit;
    return limit && limit < sz ? limit : sz;
}

uint64_t fab_data_word(const struct fab_pool *pool, uint32_t tag,
                       uint32_t payload)
{
    if (!pool || tag == 0 || tag > FAB_DATA_TAG_MAX)
        return 0;
    uint64_t w = ((uint64_t)tag << FAB_DATA_PAYLOAD_BITS) |
                 (payload & FAB_DATA_PAYLOAD_MAX);
    if (fab__cq_data_size(pool) >= 8)
        w |= (uint64_t)FAB_DATA_MARK << 32;
    return w;
}

/* The tag a word carries, 0 when it carries none. */
static uint32_t tag_of(const struct fab_pool *pool, uint64_t w)
{
    size_t sz = fab__cq_data_size(pool);
    if (sz < 4)
        return 0;
    if (sz >= 8 ? (w >> 32) != FAB_DATA_MARK : (w >> 32) != 0)
        return 0;
    return (uint32_t)(w >> FAB_DATA_PAYLOAD_BITS) & FAB_DATA_TAG_MAX;
}

int fab_user_claim_tag(struct fab_user *user, uint32_t want, uint32_t *tag)
{
    if (!user || want > FAB_DATA_TAG_MAX)
        return -EINVAL;
    struct fab_pool *pool = user->pool;
    if (fab__cq_data_size(pool) < 4)
        return -ENOTSUP;
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    if (user->tag) {
        rc = -EALREADY;
    } else if (want != FAB_DATA_TAG_ANY) {
        if (atomic_load(&pool->tag_users[want]))
            rc = -EBUSY;
    } else {
        /* Next fit: a tag just freed is the last one reused, so a late
         * word for a destroyed user rarely meets its successor. */
        rc = -ENOSPC;
        for (uint32_t i = 0; i < FAB_DATA_TAG_MAX; i++) {
            uint32_t t = (pool->tag_next + i) % FAB_DATA_TAG_MAX + 1;
            if (!atomic_load(&pool->tag_users[t])) {
                want = t;
                pool->tag_next = t % FAB_DATA_TAG_MAX;
                rc = 0;
                break;
            }
        }
    }
    if (rc == 0) {
        user->tag = want;
        atomic_store_explicit(&pool->tag_users[want], user,
                              memory_order_release);
        if (user->cbs.on_remote_data)
            atomic_fetch_sub(&pool->untagged_data_users, 1);
        if (tag)
            *tag = want;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

uint32_t fab_user_tag(const struct fab_user *user)
{
    if (!user)
        return 0;
    pthread_mutex_lock(&user->pool->lock);
    uint32_t t = user->tag;
    pthread_mutex_unlock(&user->pool->lock);
    return t;
}

void fab__data_user_added(struct fab_pool *pool, struct fab_user *user)
{
    if (user->cbs.on_remote_data)
        atomic_fetch_add(&pool->untagged_data_users, 1);
}

void fab__data_user_removed(struct fab_pool *pool, struct fab_user *user)
{
    if (user->tag) {
        atomic_store_explicit(&pool->tag_users[user->tag], NULL,
                              memory_order_release);
        user->tag = 0;
    } else if (user->cbs.on_remote_data) {
        atomic_fetch_sub(&pool->untagged_data_users, 1);
    }
}

static bool holds(const struct fab_user *u, const struct fab_conn *conn)
{
    for (const struct fab_borrow_rec *r = u->borrows; r; r = r->next)
        if (r->conn == conn)
            return true;
    return false;
}

void fab__deliver_data(struct fab_pool *pool, struct fab_conn *conn,
                       uint64_t data)
{
    uint32_t tag = tag_of(pool, data);
    if (tag) {
        struct fab_user *u =
            atomic_load_explicit(&pool->tag_users[tag], memory_order_acquire);
        if (u && u->cbs.on_remote_data)
            u->cbs.on_remote_data(u->ctx, conn->node_id, data);
    }
    if (atomic_load_explicit(&pool->untagged_data_users,
                             memory_order_acquire) == 0)
        return;
    /* Every untagged holder, in batches: the list cannot lose members
     * while we hold progress_lock, so the cursor stays valid between
     * passes; users created meanwhile (at the head) are not called. */
    struct {
        void (*fn)(void *ctx, uint32_t node_id, uint64_t data);
        void *ctx;
    } calls[DATA_BATCH];
    pthread_mutex_lock(&pool->lock);
    struct fab_user *cursor = pool->users;
    while (cursor) {
        size_t n = 0;
        for (; cursor && n < DATA_BATCH; cursor = cursor->next) {
            if (!cursor->cbs.on_remote_data || cursor->tag ||
                !holds(cursor, conn))
                continue;
            calls[n].fn = cursor->cbs.on_remote_data;
            calls[n].ctx = cursor->ctx;
            n++;
        }
        pthread_mutex_unlock(&pool->lock);
        for (size_t i = 0; i < n; i++)
            calls[i].fn(calls[i].ctx, conn->node_id, data);
        pthread_mutex_lock(&pool->lock);
    }
    pthread_mutex_unlock(&pool->lock);
}
