/* Table life cycle: set-up exchange, destroy handshake, accessors. */
#include "sst-private.h"

#include <errno.h>
#include <mutils/mutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- set-up blob ------------------------------------------------------- */

/* What a member publishes for a table: who it is, the schema hash and
 * member list it was created with, and its region descriptor. */
struct setup_blob {
    uint64_t table_id;
    uint64_t schema_hash;
    uint32_t n;
    uint32_t rank;
    uint32_t members[SST_MAX_MEMBERS];
    struct fab_mr_desc desc;
    uint32_t fab_tag; /* libfab data tag for words to this member, or 0 */
};

static int blob_encode(const struct setup_blob *b, uint8_t *buf, size_t cap,
                       size_t *len)
{
    struct mutils_writer w;
    mutils_writer_init(&w, buf, cap);
    mutils_put_u32(&w, SST__BLOB_MAGIC);
    mutils_put_u8(&w, SST__BLOB_VERSION);
    mutils_put_u64(&w, b->table_id);
    mutils_put_u64(&w, b->schema_hash);
    mutils_put_u32(&w, b->n);
    mutils_put_u32(&w, b->rank);
    for (uint32_t i = 0; i < b->n; i++)
        mutils_put_u32(&w, b->members[i]);
    uint8_t desc[FAB_MR_DESC_SIZE];
    fab_mr_desc_encode(&b->desc, desc);
    mutils_put_raw(&w, desc, sizeof(desc));
    mutils_put_u32(&w, b->fab_tag);
    int rc = mutils_writer_error(&w);
    if (rc)
        return rc;
    *len = mutils_writer_len(&w);
    return 0;
}

static int blob_decode(const uint8_t *buf, size_t len, struct setup_blob *b)
{
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    uint32_t magic = 0;
    uint8_t version = 0;
    mutils_get_u32(&r, &magic);
    mutils_get_u8(&r, &version);
    if (mutils_reader_error(&r, NULL) || magic != SST__BLOB_MAGIC ||
        version != SST__BLOB_VERSION)
        return -EPROTO;
    mutils_get_u64(&r, &b->table_id);
    mutils_get_u64(&r, &b->schema_hash);
    mutils_get_u32(&r, &b->n);
    mutils_get_u32(&r, &b->rank);
    if (mutils_reader_error(&r, NULL) || b->n == 0 || b->n > SST_MAX_MEMBERS)
        return -EBADMSG;
    for (uint32_t i = 0; i < b->n; i++)
        mutils_get_u32(&r, &b->members[i]);
    uint8_t desc[FAB_MR_DESC_SIZE];
    mutils_get_raw(&r, desc, sizeof(desc));
    mutils_get_u32(&r, &b->fab_tag);
    int rc = mutils_reader_finish(&r);
    if (rc)
        return rc;
    return fab_mr_desc_decode(desc, sizeof(desc), &b->desc);
}

/* The key a table publishes under: the same at every member of the table,
 * different for other tables over the same members. */
static uint64_t table_key(uint64_t table_id, const struct sst_member *m,
                          size_t n)
{
    uint8_t buf[8 + 4 * SST_MAX_MEMBERS];
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(table_id >> (8 * i));
    for (size_t k = 0; k < n; k++)
        for (int i = 0; i < 4; i++)
            buf[8 + 4 * k + i] = (uint8_t)(m[k].node_id >> (8 * i));
    return XXH64(buf, 8 + 4 * n, 0x5353545f6b6579ull);
}

/* ---- create ------------------------------------------------------------ */

static void table_free(struct sst_table *t)
{
    if (!t)
        return;
    fab_user_destroy(t->user);
    fab_mr_destroy(t->mr);
    if (t->staging.buf)
        sst__staging_fini(t);
    if (t->peers) {
        for (uint32_t r = 0; r < t->n; r++) {
            pthread_mutex_destroy(&t->peers[r].post_lock);
            pthread_mutex_destroy(&t->peers[r].ops_lock);
            free(t->peers[r].ops);
        }
    }
    sst__preds_free(t);
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->evfd >= 0)
        close(t->evfd);
    pthread_mutex_destroy(&t->pred_lock);
    pthread_cond_destroy(&t->pred_cond);
    pthread_mutex_destroy(&t->sync_lock);
    pthread_cond_destroy(&t->sync_cond);
    free(t->peers);
    free(t->fields);
    free(t->field_names);
    free(t->offsets);
    free(t->region);
    free(t);
}

/* Drives progress until every write we posted completed (their contexts
 * and staging chunks are ours) or the deadline passes; then frees the
 * table, or, when writes are still in flight, keeps the memory they may
 * still touch (not the threads or fds). */
static bool writes_done(struct sst__peer *p)
{
    /* Also on a failed connection: its flushed completions still call
     * our contexts, which must outlive them. */
    return !p->conn || atomic_load(&p->completed) >= atomic_load(&p->posted);
}

static bool all_writes_done(struct sst_table *t)
{
    for (uint32_t r = 0; r < t->n; r++)
        if (r != t->my_rank && t->peers && !writes_done(&t->peers[r]))
            return false;
    return true;
}

static void progress_step(struct sst_table *t)
{
    if (fab_pool_progress_wait(t->pool, 50, 1) == 0) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

static void release_table(struct sst_table *t, int64_t deadline)
{
    while (!all_writes_done(t) && sst__now_us() < deadline)
        progress_step(t);
    if (all_writes_done(t)) {
        table_free(t);
        return;
    }
    sst__log(t, LOG_ERR,
             "table %llu: writes still in flight; its memory is left "
             "allocated",
             (unsigned long long)t->opts.table_id);
    fab_user_destroy(t->user);
    t->user = NULL;
    if (t->epfd >= 0)
        close(t->epfd);
    if (t->evfd >= 0)
        close(t->evfd);
    t->epfd = t->evfd = -1;
    sst__preds_free(t);
}

static int copy_schema(struct sst_table *t, const struct sst_field *fields,
                       size_t n_fields)
{
    t->n_fields = n_fields;
    t->fields = calloc(n_fields, sizeof(*t->fields));
    t->field_names = calloc(n_fields, sizeof(*t->field_names));
    t->offsets = calloc(n_fields, sizeof(*t->offsets));
    if (!t->fields || !t->field_names || !t->offsets)
        return -ENOMEM;
    int rc = sst_schema_layout(fields, n_fields, t->offsets, &t->user_size);
    if (rc)
        return rc;
    for (size_t i = 0; i < n_fields; i++) {
        snprintf(t->field_names[i], sizeof(t->field_names[i]), "%s",
                 fields[i].name);
        t->fields[i] = fields[i];
        t->fields[i].name = t->field_names[i];
    }
    t->schema_hash = sst_schema_hash(fields, n_fields);
    return 0;
}

static int init_peers(struct sst_table *t, const struct sst_member *members)
{
    t->peers = calloc(t->n, sizeof(*t->peers));
    if (!t->peers)
        return -ENOMEM;
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        p->table = t;
        p->rank = r;
        p->node_id = members[r].node_id;
        snprintf(p->host, sizeof(p->host), "%s",
                 members[r].host ? members[r].host : "");
        p->port = members[r].port;
        pthread_mutex_init(&p->post_lock, NULL);
        pthread_mutex_init(&p->ops_lock, NULL);
        if (r == t->my_rank)
            continue;
        p->ops = calloc(SST__OPS_PER_PEER, sizeof(*p->ops));
        if (!p->ops)
            return -ENOMEM;
        for (int i = 0; i < SST__OPS_PER_PEER; i++) {
            p->ops[i].peer = p;
            p->ops[i].op.done = sst__op_done;
            p->ops[i].next_free = p->free_ops;
            p->free_ops = &p->ops[i];
        }
    }
    return 0;
}

static int check_args(struct fab_pool *pool, const struct sst_member *members,
                      size_t n, uint32_t my_rank,
                      const struct sst_field *fields, size_t n_fields,
                      const struct sst_options *opts, struct sst_error *err)
{
    if (!pool || !members || n == 0 || n > SST_MAX_MEMBERS || my_rank >= n) {
        sst__set_error(err, -EINVAL, "bad pool, member list or rank");
        return -EINVAL;
    }
    int rc = sst_schema_layout(fields, n_fields, NULL, NULL);
    if (rc) {
        sst__set_error(err, rc, "bad row schema: %s",
                       rc == -ERANGE ? "row larger than 1 MiB"
                                     : "NULL, no fields, or a bad field");
        return rc;
    }
    if (members[my_rank].node_id != fab_pool_node_id(pool)) {
        sst__set_error(
            err, -EINVAL, "members[%u] is node %u but the pool is node %u",
            my_rank, members[my_rank].node_id, fab_pool_node_id(pool));
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        /* The host is copied into a 64-byte entry: refuse what would be
         * cut short rather than dial a different name. */
        if (members[i].node_id == UINT32_MAX) {
            /* sst_node_id's "out of range" */
            sst__set_error(err, -EINVAL, "rank %zu: node id %u is reserved", i,
                           members[i].node_id);
            return -EINVAL;
        }
        if (members[i].host && strnlen(members[i].host, 64) >= 64) {
            sst__set_error(err, -EINVAL, "rank %zu: host name too long", i);
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (members[i].node_id == members[j].node_id) {
                sst__set_error(err, -EINVAL, "node %u listed twice",
                               members[i].node_id);
                return -EINVAL;
            }
        }
    }
    /* There is no older layout: a smaller size is a mistake (a partial
     * copy could split a pointer); a larger one is a newer header's. */
    if (opts && opts->size < sizeof(*opts)) {
        sst__set_error(err, -EINVAL,
                       "options size %zu, expected %zu (sst_options_init)",
                       opts->size, sizeof(*opts));
        return -EINVAL;
    }
    if (opts && (opts->heartbeat_ms <= 0 || opts->suspect_timeout_ms <= 0)) {
        sst__set_error(err, -EINVAL,
                       "heartbeat_ms and suspect_timeout_ms must be > 0");
        return -EINVAL;
    }
    return 0;
}

/* Borrow every member's connection and learn its region; checks that it
 * runs the same schema and member list. */
static int connect_members(struct sst_table *t,
                           const struct sst_member *members, int64_t deadline,
                           struct sst_error *err)
{
    for (uint32_t r = 0; r < t->n; r++) {
        if (r == t->my_rank)
            continue;
        struct sst__peer *p = &t->peers[r];
        struct fab_error ferr;
        int rc;
        for (;;) {
            int left = (int)((deadline - sst__now_us()) / 1000);
            if (left <= 0) {
                rc = -ETIMEDOUT;
                snprintf(ferr.msg, sizeof(ferr.msg), "set-up time is over");
                break;
            }
            rc = fab_borrow(t->user, p->node_id, p->host, p->port, left,
                            &p->conn, &ferr);
            /* The member's process may still be starting. */
            if (rc != -ECONNREFUSED)
                break;
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        if (rc) {
            sst__set_error(err, rc, "connecting to rank %u (node %u): %s", r,
                           p->node_id, ferr.msg);
            p->conn = NULL;
            return rc;
        }
    }
    for (uint32_t r = 0; r < t->n; r++) {
        if (r == t->my_rank)
            continue;
        struct sst__peer *p = &t->peers[r];
        uint8_t buf[FAB_BLOB_MAX];
        size_t len = 0;
        struct fab_error ferr;
        int left = (int)((deadline - sst__now_us()) / 1000);
        int rc = left > 0 ? fab_pool_fetch(t->pool, p->node_id, t->key, buf,
                                           sizeof(buf), &len, left, &ferr)
                          : -ETIMEDOUT;
        if (rc) {
            sst__set_error(err, rc,
                           "rank %u (node %u) did not publish table %llu: %s",
                           r, p->node_id, (unsigned long long)t->opts.table_id,
                           rc == -ETIMEDOUT ? "timed out" : ferr.msg);
            return rc;
        }
        struct setup_blob b;
        rc = blob_decode(buf, len, &b);
        if (rc) {
            sst__set_error(err, -EPROTO,
                           "rank %u (node %u): malformed set-up record", r,
                           p->node_id);
            return -EPROTO;
        }
        bool same_members = b.n == t->n;
        for (uint32_t i = 0; same_members && i < t->n; i++)
            same_members = b.members[i] == members[i].node_id;
        if (b.schema_hash != t->schema_hash) {
            sst__set_error(err, -EPROTO,
                           "rank %u (node %u): row schema differs (hash "
                           "%016llx, mine %016llx)",
                           r, p->node_id, (unsigned long long)b.schema_hash,
                           (unsigned long long)t->schema_hash);
            return -EPROTO;
        }
        if (!same_members || b.rank != r || b.table_id != t->opts.table_id) {
            sst__set_error(err, -EPROTO,
                           "rank %u (node %u): member list or rank differs", r,
                           p->node_id);
            return -EPROTO;
        }
        if (b.desc.len < t->region_len) {
            sst__set_error(err, -EPROTO, "rank %u: region too small", r);
            return -EPROTO;
        }
        p->remote = b.desc;
        p->fab_tag = b.fab_tag <= FAB_DATA_TAG_MAX ? b.fab_tag : 0;
    }
    return 0;
}

int sst_create(struct fab_pool *pool, const struct sst_member *members,
               size_t n, uint32_t my_rank, const struct sst_field *fields,
               size_t n_fields, const struct sst_options *opts,
               struct sst_table **out, struct sst_error *err)
{
    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    if (!out) {
        sst__set_error(err, -EINVAL, "no output");
        return -EINVAL;
    }
    *out = NULL;
    int rc = check_args(pool, members, n, my_rank, fields, n_fields, opts, err);
    if (rc)
        return rc;
    struct sst_table *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->epfd = t->evfd = -1;
    pthread_mutex_init(&t->pred_lock, NULL);
    pthread_cond_init(&t->pred_cond, NULL);
    pthread_mutex_init(&t->sync_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->sync_cond, &ca);
    pthread_condattr_destroy(&ca);
    sst_options_init(&t->opts);
    if (opts)
        memcpy(&t->opts, opts,
               opts->size < sizeof(t->opts) ? opts->size : sizeof(t->opts));
    t->opts.size = sizeof(t->opts);
    snprintf(t->thread_name, sizeof(t->thread_name), "%s",
             t->opts.thread_name && t->opts.thread_name[0] ? t->opts.thread_name
                                                           : "sst-poll");
    t->opts.thread_name = NULL;
    if (t->opts.setup_timeout_ms <= 0)
        t->opts.setup_timeout_ms = 10000;
    if (t->opts.close_timeout_ms < 0)
        t->opts.close_timeout_ms = 0;
    int64_t deadline = sst__now_us() + (int64_t)t->opts.setup_timeout_ms * 1000;
    t->pool = pool;
    t->n = (uint32_t)n;
    t->my_rank = my_rank;

    rc = copy_schema(t, fields, n_fields);
    if (rc) {
        sst__set_error(err, rc, "bad row schema");
        goto fail;
    }
    rc = init_peers(t, members);
    if (rc)
        goto fail;

    struct fab_pool_info info;
    fab_pool_get_info(pool, &info);
    t->use_data = info.cq_data_size >= 4;
    t->spin_us = t->opts.spin_us >= 0   ? t->opts.spin_us
                 : info.manual_progress ? 100
                                        : 0;
    t->key = table_key(t->opts.table_id, members, n);
    t->tag = (uint32_t)(t->key >> 33) & 0x7fffffffu;

    /* The region: n rows, 64-byte aligned, zeroed. */
    t->hdr_size = (SST__HDR_SUSPECTED + 2 * (size_t)t->n + 7) & ~(size_t)7;
    t->row_stride = (t->hdr_size + t->user_size + 63) & ~(size_t)63;
    t->region_len = t->row_stride * t->n;
    void *region = NULL;
    if (posix_memalign(&region, 4096, t->region_len)) {
        rc = -ENOMEM;
        goto fail;
    }
    t->region = region;
    memset(t->region, 0, t->region_len);
    rc = fab_mr_register(pool, t->region, t->region_len,
                         FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE, &t->mr);
    if (rc) {
        sst__set_error(err, rc, "registering the table: %s", sst_strerror(rc));
        goto fail;
    }

    rc = sst__staging_init(t);
    if (rc) {
        sst__set_error(err, rc, "registering the staging ring: %s",
                       sst_strerror(rc));
        goto fail;
    }

    t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->evfd < 0 || t->epfd < 0) {
        rc = -errno;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = t->evfd};
    struct epoll_event pev = {.events = EPOLLIN,
                              .data.fd = fab_pool_wait_fd(pool)};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) < 0 ||
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, fab_pool_wait_fd(pool), &pev) < 0) {
        rc = -errno;
        goto fail;
    }

    struct fab_user_callbacks cbs = {.on_failure = sst__on_failure,
                                     .on_remote_data = sst__on_remote_data};
    rc = fab_user_create(pool, &cbs, t, &t->user);
    if (rc)
        goto fail;
    /* Our words come to us alone (and other users, e.g. RDMC groups, never
     * get ours); without a tag we get every word, as before. */
    if (t->use_data &&
        fab_user_claim_tag(t->user, FAB_DATA_TAG_ANY, &t->fab_tag) != 0)
        t->fab_tag = 0;

    /* Publish before connecting: peers fetch it while we fetch theirs. */
    struct setup_blob blob = {.table_id = t->opts.table_id,
                              .schema_hash = t->schema_hash,
                              .n = t->n,
                              .rank = my_rank,
                              .fab_tag = t->fab_tag};
    for (uint32_t i = 0; i < t->n; i++)
        blob.members[i] = members[i].node_id;
    fab_mr_get_desc(t->mr, &blob.desc);
    uint8_t buf[FAB_BLOB_MAX];
    size_t blen = 0;
    rc = blob_encode(&blob, buf, sizeof(buf), &blen);
    if (rc == 0)
        rc = fab_pool_publish(pool, t->key, buf, blen);
    if (rc)
        goto fail;

    rc = connect_members(t, members, deadline, err);
    if (rc == -EPROTO)
        goto fail; /* stays published: the other side learns it too */
    if (rc)
        goto fail_published;

    rc = -pthread_create(&t->thread, NULL, sst__poll_main, t);
    if (rc)
        goto fail_published;
    t->thread_started = true;

    int left = (int)((deadline - sst__now_us()) / 1000);
    rc = sst_sync(t, left > 0 ? left : 1);
    if (rc) {
        sst__set_error(err, rc, "first barrier of table %llu: %s",
                       (unsigned long long)t->opts.table_id, sst_strerror(rc));
        goto fail_published;
    }
    /* Everyone fetched our descriptor (they pushed to us after fetching
     * everyone's) and runs its heartbeat: arm the stall detector. */
    fab_pool_unpublish(pool, t->key);
    int64_t now = sst__now_us();
    (void)now;
    atomic_store(&t->armed, true);
    sst__log(t, LOG_INFO, "table %llu: %u members, rank %u, row %zu bytes",
             (unsigned long long)t->opts.table_id, t->n, t->my_rank,
             t->row_stride);
    *out = t;
    return 0;

fail_published:
    fab_pool_unpublish(pool, t->key);
fail:
    if (err && err->code == 0)
        sst__set_error(err, rc, "%s", sst_strerror(rc));
    if (t->thread_started) {
        atomic_store(&t->stopping, true);
        sst_notify(t);
        pthread_join(t->thread, NULL);
        t->thread_started = false;
    }
    release_table(t, sst__now_us() + 2000000);
    return rc;
}

/* ---- destroy ----------------------------------------------------------- */

static bool peer_done(struct sst_table *t, struct sst__peer *p)
{
    if (!p->conn || atomic_load(&p->suspected) || atomic_load(&p->failure) ||
        fab_conn_status(p->conn))
        return true;
    /* It closed too, or it promised not to write to us again. */
    return atomic_load_explicit(sst__hdr_u64(t, p->rank, SST__HDR_CLOSING),
                                memory_order_acquire) != 0 ||
           sst__closed_seen(t, p->rank)[t->my_rank] != 0;
}

void sst_destroy(struct sst_table *t)
{
    if (!t)
        return;
    if (sst__on_poll_thread(t)) {
        /* From a trigger or on_suspect (forbidden): joining the polling
         * thread from itself and freeing the table under it is not an
         * option.  Refuse. */
        sst__log(t, LOG_ERR,
                 "sst_destroy called from the table's polling thread: "
                 "refused");
        return;
    }
    if (t->thread_started) {
        atomic_store(&t->stopping, true);
        sst_notify(t);
        pthread_join(t->thread, NULL);
        t->thread_started = false;
    }
    /* Closing handshake: a member may free its region once every live
     * member either closed too or acknowledged our closing flag; until
     * then we keep ours registered and drive progress so their last
     * writes land.  Our own writes must complete too: their contexts and
     * staging chunks are ours. */
    atomic_store_explicit(sst__hdr_u64(t, t->my_rank, SST__HDR_CLOSING), 1,
                          memory_order_release);
    sst__push_header(t, true);
    int64_t deadline = sst__now_us() + (int64_t)t->opts.close_timeout_ms * 1000;
    bool closed = false;
    for (;;) {
        closed = true;
        for (uint32_t r = 0; r < t->n && closed; r++)
            if (r != t->my_rank)
                closed = peer_done(t, &t->peers[r]);
        if ((closed && all_writes_done(t)) || sst__now_us() > deadline)
            break;
        progress_step(t);
    }
    if (!closed)
        sst__log(
            t, LOG_WARNING, "table %llu: members did not close within %d ms",
            (unsigned long long)t->opts.table_id, t->opts.close_timeout_ms);
    release_table(t,
                  sst__now_us() + (int64_t)t->opts.suspect_timeout_ms * 1000);
}

/* ---- accessors --------------------------------------------------------- */

uint32_t sst_num_members(const struct sst_table *t)
{
    return t ? t->n : 0;
}

uint32_t sst_my_rank(const struct sst_table *t)
{
    return t ? t->my_rank : 0;
}

uint32_t sst_node_id(const struct sst_table *t, uint32_t rank)
{
    if (!t || rank >= t->n)
        return UINT32_MAX;
    return t->peers[rank].node_id;
}

int sst_rank_of(const struct sst_table *t, uint32_t node_id)
{
    if (!t)
        return -EINVAL;
    for (uint32_t r = 0; r < t->n; r++)
        if (t->peers[r].node_id == node_id)
            return (int)r;
    return -ENOENT;
}

void *sst_row(struct sst_table *t, uint32_t rank)
{
    if (!t || rank >= t->n)
        return NULL;
    return sst__row_base(t, rank) + t->hdr_size;
}

size_t sst_row_size(const struct sst_table *t)
{
    return t ? t->user_size : 0;
}

size_t sst_field_offset(const struct sst_table *t, size_t i)
{
    if (!t || i >= t->n_fields)
        return SIZE_MAX;
    return t->offsets[i];
}

int sst_field_index(const struct sst_table *t, const char *name)
{
    if (!t || !name)
        return -EINVAL;
    for (size_t i = 0; i < t->n_fields; i++)
        if (strcmp(t->field_names[i], name) == 0)
            return (int)i;
    return -ENOENT;
}

void *sst_field(struct sst_table *t, uint32_t rank, size_t i, size_t elem)
{
    if (!t || rank >= t->n || i >= t->n_fields || elem >= t->fields[i].count)
        return NULL;
    return sst__row_base(t, rank) + t->hdr_size + t->offsets[i] +
           elem * t->fields[i].elem_size;
}

uint64_t sst_heartbeat(const struct sst_table *t, uint32_t rank)
{
    if (!t || rank >= t->n)
        return 0;
    return atomic_load_explicit(sst__hdr_u64(t, rank, SST__HDR_HEARTBEAT),
                                memory_order_acquire);
}

bool sst_suspects(const struct sst_table *t, uint32_t by_rank, uint32_t of_rank)
{
    if (!t || by_rank >= t->n || of_rank >= t->n)
        return false;
    if (by_rank == t->my_rank)
        return atomic_load(&t->peers[of_rank].suspected);
    return __atomic_load_n(&sst__suspected(t, by_rank)[of_rank],
                           __ATOMIC_ACQUIRE) != 0;
}

uint32_t sst_num_live(const struct sst_table *t)
{
    if (!t)
        return 0;
    uint32_t live = 0;
    for (uint32_t r = 0; r < t->n; r++)
        if (!atomic_load(&t->peers[r].suspected))
            live++;
    return live;
}

void sst_get_stats(struct sst_table *t, struct sst_stats *st)
{
    if (!t || !st)
        return;
    st->puts = atomic_load(&t->st_puts);
    st->wakeups = atomic_load(&t->st_wakeups);
    st->triggers = atomic_load(&t->st_triggers);
    st->heartbeats = atomic_load(&t->st_heartbeats);
    st->suspicions = atomic_load(&t->st_suspicions);
}
