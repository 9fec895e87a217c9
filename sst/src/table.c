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
    pthread_mutex_destroy(&t->timer_lock);
    pthread_cond_destroy(&t->timer_cond);
    free(t->failed_copy);
    free(t->pred_slots);
    free(t->pred_gen);
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
                       rc == -ERANGE ? "row larger than SST_MAX_ROW_SIZE"
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
    /* Three layouts: 0.1's (up to log_level; the fields added since keep
     * their defaults), the one up to initial_row_len, and this one; a larger
     * size is a newer header's. Any other size is a mistake (a partial copy
     * could split a pointer). */
    if (opts && opts->size != SST__OPTIONS_V1_SIZE &&
        opts->size != SST__OPTIONS_V2_SIZE && opts->size < sizeof(*opts)) {
        sst__set_error(err, -EINVAL,
                       "options size %zu, expected %zu (sst_options_init)",
                       opts->size, sizeof(*opts));
        return -EINVAL;
    }
    if (opts && opts->size > sizeof(*opts)) {
        /* A newer caller's fields we do not know must be unset. */
        const unsigned char *extra = (const unsigned char *)opts;
        for (size_t i = sizeof(*opts); i < opts->size; i++) {
            if (extra[i]) {
                sst__set_error(err, -EINVAL,
                               "options size %zu: byte %zu (a field newer "
                               "than this library) is set",
                               opts->size, i);
                return -EINVAL;
            }
        }
    }
    if (opts && (opts->heartbeat_ms <= 0 || opts->suspect_timeout_ms <= 0)) {
        sst__set_error(err, -EINVAL,
                       "heartbeat_ms and suspect_timeout_ms must be > 0");
        return -EINVAL;
    }
    /* A member that heartbeats less often than the timeout would be
     * suspected between two of its heartbeats. */
    if (opts && opts->heartbeat_ms >= opts->suspect_timeout_ms) {
        sst__set_error(err, -EINVAL,
                       "heartbeat_ms (%d) must be shorter than "
                       "suspect_timeout_ms (%d)",
                       opts->heartbeat_ms, opts->suspect_timeout_ms);
        return -EINVAL;
    }
    return 0;
}

/* Options added after 0.1, checked once copied (size rule applied). */
static int check_new_options(const struct sst_table *t, struct sst_error *err)
{
    const struct sst_options *o = &t->opts;
    if ((o->n_failed_ranks && !o->failed_ranks) || o->n_failed_ranks >= t->n) {
        sst__set_error(err, -EINVAL,
                       "failed_ranks: NULL with n_failed_ranks %zu, or not "
                       "fewer than the %u members",
                       o->n_failed_ranks, t->n);
        return -EINVAL;
    }
    for (size_t i = 0; i < o->n_failed_ranks; i++) {
        if (o->failed_ranks[i] >= t->n || o->failed_ranks[i] == t->my_rank) {
            sst__set_error(err, -EINVAL,
                           "failed_ranks[%zu] = %u: out of range or my rank", i,
                           o->failed_ranks[i]);
            return -EINVAL;
        }
    }
    if ((o->initial_row_len && !o->initial_row) ||
        o->initial_row_len > t->user_size) {
        sst__set_error(err, -ERANGE,
                       "initial_row: %zu bytes for a row of %zu (or NULL)",
                       o->initial_row_len, t->user_size);
        return -ERANGE;
    }
    return 0;
}

/* Rows named in failed_ranks: suspected by me from the start, never
 * contacted, not reported. */
static void mark_given_failed(struct sst_table *t)
{
    for (size_t i = 0; i < t->opts.n_failed_ranks; i++) {
        struct sst__peer *p = &t->peers[t->opts.failed_ranks[i]];
        p->given_failed = true;
        atomic_store(&p->claimed, true);
        atomic_store(&p->suspected, true);
        sst__suspected(t, t->my_rank)[p->rank] = 1;
    }
}

static void stop_threads(struct sst_table *t)
{
    atomic_store(&t->stopping, true);
    if (t->timer_started) {
        pthread_mutex_lock(&t->timer_lock);
        pthread_cond_broadcast(&t->timer_cond);
        pthread_mutex_unlock(&t->timer_lock);
        pthread_join(t->timer, NULL);
        t->timer_started = false;
    }
    if (t->thread_started) {
        sst_notify(t);
        pthread_join(t->thread, NULL);
        t->thread_started = false;
    }
}

static int start_threads(struct sst_table *t)
{
    int rc = -pthread_create(&t->thread, NULL, sst__poll_main, t);
    if (rc)
        return rc;
    t->thread_started = true;
    rc = -pthread_create(&t->timer, NULL, sst__timer_main, t);
    if (rc)
        return rc;
    t->timer_started = true;
    return 0;
}

/* Members dropped during set-up become failures the polling thread turns
 * into suspicions (on_suspect).  -EHOSTDOWN when no member is left that
 * was expected live: a table of one is no table. */
static int hand_over_failures(struct sst_table *t, struct sst_error *err)
{
    uint32_t expected = 0, live = 0;
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        if (r == t->my_rank || p->given_failed)
            continue;
        expected++;
        if (p->setup_failure) {
            int zero = 0;
            atomic_compare_exchange_strong(&p->failure, &zero,
                                           p->setup_failure);
            atomic_store(&t->failure_pending, true);
        } else if (!atomic_load(&p->suspected) && !atomic_load(&p->failure)) {
            live++;
        }
    }
    if (expected && !live) {
        sst__set_error(err, -EHOSTDOWN,
                       "table %llu: every other member failed during set-up",
                       (unsigned long long)t->opts.table_id);
        return -EHOSTDOWN;
    }
    return 0;
}

static void copy_options(struct sst_table *t, const struct sst_options *opts)
{
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
}

/* Copies the caller's arrays the options point to (their memory is only
 * borrowed for the call). */
static int own_option_arrays(struct sst_table *t)
{
    if (t->opts.n_failed_ranks) {
        t->failed_copy = calloc(t->opts.n_failed_ranks, sizeof(uint32_t));
        if (!t->failed_copy)
            return -ENOMEM;
        memcpy(t->failed_copy, t->opts.failed_ranks,
               t->opts.n_failed_ranks * sizeof(uint32_t));
    }
    t->opts.failed_ranks = t->failed_copy;
    t->opts.initial_row = NULL; /* copied into the row at once */
    return 0;
}

static int alloc_region(struct sst_table *t, struct sst_error *err)
{
    /* n rows, 64-byte aligned, zeroed. */
    t->hdr_base = (SST__HDR_SUSPECTED + 2 * (size_t)t->n + 7) & ~(size_t)7;
    t->pair_off = t->hdr_base;
    t->hdr_size = t->pair_off + (size_t)t->n * sizeof(uint64_t);
    t->row_stride = (t->hdr_size + t->user_size + 63) & ~(size_t)63;
    if (t->row_stride > SIZE_MAX / t->n)
        return -ERANGE;
    t->region_len = t->row_stride * t->n;
    void *region = NULL;
    if (posix_memalign(&region, 4096, t->region_len))
        return -ENOMEM;
    t->region = region;
    memset(t->region, 0, t->region_len);
    int rc =
        fab_mr_register(t->pool, t->region, t->region_len,
                        FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE, &t->mr);
    if (rc) {
        sst__set_error(err, rc, "registering the table (%zu bytes): %s",
                       t->region_len, sst_strerror(rc));
        return rc;
    }
    rc = sst__staging_init(t);
    if (rc)
        sst__set_error(err, rc, "registering the staging ring: %s",
                       sst_strerror(rc));
    return rc;
}

static int init_wakeups(struct sst_table *t)
{
    t->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    t->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (t->evfd < 0 || t->epfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = t->evfd};
    struct epoll_event pev = {.events = EPOLLIN,
                              .data.fd = fab_pool_wait_fd(t->pool)};
    if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev) < 0 ||
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, fab_pool_wait_fd(t->pool), &pev) < 0)
        return -errno;
    struct fab_user_callbacks cbs = {.on_failure = sst__on_failure,
                                     .on_remote_data = sst__on_remote_data};
    return fab_user_create(t->pool, &cbs, t, &t->user);
}

static struct sst_table *table_alloc(void)
{
    struct sst_table *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->epfd = t->evfd = -1;
    atomic_store(&t->expelled_by, -1);
    pthread_mutex_init(&t->pred_lock, NULL);
    pthread_cond_init(&t->pred_cond, NULL);
    pthread_mutex_init(&t->sync_lock, NULL);
    pthread_mutex_init(&t->timer_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->sync_cond, &ca);
    pthread_cond_init(&t->timer_cond, &ca);
    pthread_condattr_destroy(&ca);
    return t;
}

/* sst_create, phase 2: allocate and register: the schema, the members,
 * the region and its staging, the wake-ups, a libfab data tag. */
static int table_prepare(struct sst_table *t, struct fab_pool *pool,
                         const struct sst_member *members, size_t n,
                         uint32_t my_rank, const struct sst_field *fields,
                         size_t n_fields, struct sst_error *err)
{
    int rc;
    t->pool = pool;
    t->n = (uint32_t)n;
    t->my_rank = my_rank;
    const void *initial_row = t->opts.initial_row;
    size_t initial_len = t->opts.initial_row_len;

    rc = copy_schema(t, fields, n_fields);
    if (rc) {
        sst__set_error(err, rc, "bad row schema");
        return rc;
    }
    rc = check_new_options(t, err);
    if (rc)
        return rc;
    rc = own_option_arrays(t);
    if (rc)
        return rc;
    rc = init_peers(t, members);
    if (rc)
        return rc;

    struct fab_pool_info info;
    fab_pool_get_info(pool, &info);
    t->use_data = info.cq_data_size >= 4;
    /* Pushes longer than this are cut (staging chunks, provider limit). */
    t->max_push = SST__MAX_PUSH;
    if (info.max_msg_size && info.max_msg_size < t->max_push)
        t->max_push = info.max_msg_size;
    /* Small pushes are copied by the provider at once: no staging
     * reference, no completion (and on tcp no wake-up) at the sender. */
    t->inject_max = fab_pool_inject_size(pool);
    t->spin_us = t->opts.spin_us >= 0   ? t->opts.spin_us
                 : info.manual_progress ? 100
                                        : 0;
    rc = alloc_region(t, err);
    if (rc)
        return rc;
    if (initial_len)
        memcpy(sst__row_base(t, my_rank) + t->hdr_size, initial_row,
               initial_len);
    mark_given_failed(t);
    rc = init_wakeups(t);
    if (rc)
        return rc;
    /* Our words come to us alone (and other users, e.g. RDMC groups, never
     * get ours); without a tag we get every word, as before. */
    if (t->use_data &&
        fab_user_claim_tag(t->user, FAB_DATA_TAG_ANY, &t->fab_tag) != 0)
        t->fab_tag = 0;

    return 0;
}

/* Phase 3: the rendezvous: publish my record, exchange records with
 * every member (libfab's fab_rendezvous), take over the failures met on
 * the way.  On failure my records are withdrawn (a refusal's stays, so
 * the other side learns it too). */
static int table_rendezvous(struct sst_table *t, int64_t member_deadline,
                            struct sst_error *err)
{
    /* Publish before connecting: peers fetch it while we fetch theirs. */
    sst__setup_keys(t);
    int rc = sst__setup_publish(t);
    if (rc)
        return rc;
    rc = sst__setup_exchange(t, member_deadline, err);
    if (rc == -EPROTO) {
        /* The record stays published: the other side learns it too. */
        sst__setup_unpublish(t, true);
        return rc;
    }
    if (rc == 0)
        rc = hand_over_failures(t, err);
    if (rc)
        sst__setup_unpublish(t, false);
    return rc;
}

/* Phase 4: start: the threads, my whole row pushed, the first barrier;
 * then the stall detector is armed.  On failure my records are
 * withdrawn. */
/* The first barrier timed out: the members that did not reach it are
 * named (err) or, with tolerate_silent, suspected. */
static int barrier_stragglers(struct sst_table *t, struct sst_error *err)
{
    uint64_t target = atomic_load_explicit(
        sst__hdr_u64(t, t->my_rank, SST__HDR_SYNC), memory_order_acquire);
    bool tolerate = t->opts.tolerate_failures && t->opts.tolerate_silent;
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        if (r == t->my_rank || atomic_load(&p->suspected) ||
            atomic_load(&p->closed))
            continue;
        if (atomic_load_explicit(sst__hdr_u64(t, r, SST__HDR_SYNC),
                                 memory_order_acquire) >= target)
            continue;
        if (!tolerate) {
            sst__set_error(err, -ETIMEDOUT,
                           "first barrier of table %llu: rank %u (node %u) "
                           "did not reach it within %d ms",
                           (unsigned long long)t->opts.table_id, r, p->node_id,
                           t->opts.setup_timeout_ms);
            return -ETIMEDOUT;
        }
        sst__log(t, LOG_NOTICE,
                 "table %llu: rank %u (node %u) did not reach the first "
                 "barrier: suspected",
                 (unsigned long long)t->opts.table_id, r, p->node_id);
        sst__suspect(t, r, -ETIMEDOUT);
    }
    return 0;
}

/* Test only (docs/sst.md): SST_TEST_BARRIER_HOOK=path makes a process
 * whose set-up finds `path` (it removes it) silent before its first
 * barrier for setup_timeout_ms + 2 s: connections up, no barrier, as a
 * member stopped (or stuck) in the middle of set-up. */
static void barrier_hook(struct sst_table *t)
{
    const char *path = getenv("SST_TEST_BARRIER_HOOK");
    if (!path || !*path || unlink(path) != 0)
        return;
    sst__log(t, LOG_WARNING,
             "table %llu: test hook: silent before the first barrier",
             (unsigned long long)t->opts.table_id);
    int64_t ms = (int64_t)t->opts.setup_timeout_ms + 2000;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int table_start(struct sst_table *t, int64_t deadline,
                       struct sst_error *err)
{
    uint32_t my_rank = t->my_rank;
    int rc = start_threads(t);
    if (rc)
        goto fail;

    barrier_hook(t);
    /* My whole row (the initial contents), then the barrier: pushes land
     * in order, so a member past the barrier sees every initial row. */
    rc = sst__push_ranks(t, NULL, 0, 0, t->hdr_size + t->user_size, true);
    int left = (int)((deadline - sst__now_us()) / 1000);
    if (rc == 0)
        rc = sst_sync(t, left > 0 ? left : 1);
    if (rc == -ETIMEDOUT)
        rc = barrier_stragglers(t, err);
    if (rc) {
        if (!err || err->code == 0) /* not named by barrier_stragglers */
            sst__set_error(err, rc, "first barrier of table %llu: %s",
                           (unsigned long long)t->opts.table_id,
                           sst_strerror(rc));
        goto fail;
    }
    /* A member that failed during the barrier: fine, unless none is left
     * (then the others are not running this table with us). */
    if (t->n > 1 && t->n - t->opts.n_failed_ranks > 1) {
        bool any = false;
        for (uint32_t r = 0; r < t->n && !any; r++)
            any = r != my_rank && !t->peers[r].given_failed &&
                  !atomic_load(&t->peers[r].suspected) &&
                  !atomic_load(&t->peers[r].failure);
        if (!any) {
            rc = -EHOSTDOWN;
            sst__set_error(err, rc,
                           "table %llu: every other member failed during "
                           "set-up",
                           (unsigned long long)t->opts.table_id);
            goto fail;
        }
    }
    /* Everyone fetched our record (they pushed to us after confirming)
     * and runs its heartbeat: arm the stall detector. */
    sst__setup_unpublish(t, false);
    atomic_store(&t->armed, true);
    sst__log(t, LOG_INFO, "table %llu: %u members, rank %u, row %zu bytes",
             (unsigned long long)t->opts.table_id, t->n, t->my_rank,
             t->row_stride);
    return 0;

fail:
    sst__setup_unpublish(t, false);
    return rc;
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
    struct sst_table *t = table_alloc();
    if (!t)
        return -ENOMEM;
    copy_options(t, opts);
    int64_t start = sst__now_us();
    int64_t deadline = start + (int64_t)t->opts.setup_timeout_ms * 1000;
    /* With tolerate_failures, members get 3/4 of the time; the rest is
     * the first barrier's among those that answered. */
    int64_t member_deadline =
        t->opts.tolerate_failures
            ? start + (int64_t)t->opts.setup_timeout_ms * 750
            : deadline;
    rc = table_prepare(t, pool, members, n, my_rank, fields, n_fields, err);
    if (rc == 0)
        rc = table_rendezvous(t, member_deadline, err);
    if (rc == 0)
        rc = table_start(t, deadline, err);
    if (rc)
        goto fail;
    *out = t;
    return 0;

fail:
    if (err && err->code == 0)
        sst__set_error(err, rc, "%s", sst_strerror(rc));
    stop_threads(t);
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
    stop_threads(t);
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
    return t ? t->my_rank : SST_NO_RANK;
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

uint64_t sst_self_stall_ms(const struct sst_table *t)
{
    if (!t)
        return 0;
    return (uint64_t)atomic_load_explicit(&t->st_self_stall_us,
                                          memory_order_relaxed) /
           1000;
}
