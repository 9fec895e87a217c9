/* Table set-up: the record members publish, its keys, and the exchange
 * that makes every member hold the current attempt of every other.
 *
 * Every sst_create attempt draws a random nonce.  It publishes, through
 * the pool's bootstrap port, one record: table_id, schema hash, nonce, the
 * member list in rank order, my rank, my region, and the nonce of every
 * member's record I hold (0: none yet), under two keys:
 *   DESC  (from the member set and table_id);
 *   LOBBY (from the member set only), so that a member created with
 *         another table_id or member order is seen.
 * The record is published again whenever I learn a member's (new) nonce.
 * Nobody writes into a member's region before that member's record lists
 * my current nonce and carries the nonce of the record whose region I
 * hold: a record fetched from an attempt that failed since (its region
 * freed) is noticed and replaced, never written to. */
#include "sst-private.h"

#include <errno.h>
#include <mutils/mutils.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define KIND_DESC 1

/* A member pretending to set up another table over the same members for
 * this long (while ours never appears) is a mismatch. */
#define LOBBY_GRACE_US 500000

struct desc_rec {
    uint64_t table_id;
    uint64_t schema_hash;
    uint64_t nonce;
    uint32_t n;
    uint32_t rank;
    uint32_t members[SST_MAX_MEMBERS];
    struct fab_mr_desc desc;
    uint32_t fab_tag; /* libfab data tag for words to this member, or 0 */
    /* This attempt is over, refused because of the attempt with this
     * nonce (0: none). */
    uint64_t verdict;
    /* Nonce of each member's record this member holds (0: none). */
    uint64_t seen[SST_MAX_MEMBERS];
};

static void put_head(struct mutils_writer *w, uint8_t kind)
{
    mutils_put_u32(w, SST__BLOB_MAGIC);
    mutils_put_u8(w, SST__BLOB_VERSION);
    mutils_put_u8(w, kind);
}

static int get_head(struct mutils_reader *r, uint8_t kind)
{
    uint32_t magic = 0;
    uint8_t version = 0, k = 0;
    mutils_get_u32(r, &magic);
    mutils_get_u8(r, &version);
    mutils_get_u8(r, &k);
    if (mutils_reader_error(r, NULL) || magic != SST__BLOB_MAGIC ||
        version != SST__BLOB_VERSION || k != kind)
        return -EPROTO;
    return 0;
}

static int desc_encode(const struct desc_rec *b, uint8_t *buf, size_t cap,
                       size_t *len)
{
    struct mutils_writer w;
    mutils_writer_init(&w, buf, cap);
    put_head(&w, KIND_DESC);
    mutils_put_u64(&w, b->table_id);
    mutils_put_u64(&w, b->schema_hash);
    mutils_put_u64(&w, b->nonce);
    mutils_put_u64(&w, b->verdict);
    mutils_put_u32(&w, b->n);
    mutils_put_u32(&w, b->rank);
    for (uint32_t i = 0; i < b->n; i++)
        mutils_put_u32(&w, b->members[i]);
    uint8_t desc[FAB_MR_DESC_SIZE];
    fab_mr_desc_encode(&b->desc, desc);
    mutils_put_raw(&w, desc, sizeof(desc));
    mutils_put_u32(&w, b->fab_tag);
    for (uint32_t i = 0; i < b->n; i++)
        mutils_put_u64(&w, b->seen[i]);
    int rc = mutils_writer_error(&w);
    if (rc)
        return rc;
    *len = mutils_writer_len(&w);
    return 0;
}

static int desc_decode(const uint8_t *buf, size_t len, struct desc_rec *b)
{
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    if (get_head(&r, KIND_DESC))
        return -EPROTO;
    mutils_get_u64(&r, &b->table_id);
    mutils_get_u64(&r, &b->schema_hash);
    mutils_get_u64(&r, &b->nonce);
    mutils_get_u64(&r, &b->verdict);
    mutils_get_u32(&r, &b->n);
    mutils_get_u32(&r, &b->rank);
    if (mutils_reader_error(&r, NULL) || b->n == 0 || b->n > SST_MAX_MEMBERS)
        return -EBADMSG;
    for (uint32_t i = 0; i < b->n; i++)
        mutils_get_u32(&r, &b->members[i]);
    uint8_t desc[FAB_MR_DESC_SIZE];
    mutils_get_raw(&r, desc, sizeof(desc));
    mutils_get_u32(&r, &b->fab_tag);
    for (uint32_t i = 0; i < b->n; i++)
        mutils_get_u64(&r, &b->seen[i]);
    int rc = mutils_reader_finish(&r);
    if (rc)
        return rc;
    return fab_mr_desc_decode(desc, sizeof(desc), &b->desc);
}

/* ---- keys -------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint64_t mix(uint64_t h, uint64_t v, uint64_t salt)
{
    uint8_t buf[16];
    mutils_store_le64(buf, h);
    mutils_store_le64(buf + 8, v);
    return XXH64(buf, sizeof(buf), salt);
}

void sst__setup_keys(struct sst_table *t)
{
    /* The member *set* (sorted): members listing it in another order still
     * find each other's records and are told apart by the record. */
    uint32_t ids[SST_MAX_MEMBERS];
    for (uint32_t r = 0; r < t->n; r++)
        ids[r] = t->peers[r].node_id;
    qsort(ids, t->n, sizeof(ids[0]), cmp_u32);
    uint8_t buf[4 * SST_MAX_MEMBERS];
    for (uint32_t k = 0; k < t->n; k++)
        mutils_store_le32(buf + 4 * k, ids[k]);
    uint64_t set = XXH64(buf, 4 * (size_t)t->n, 0x5353545f736574ull);
    t->key_desc = mix(set, t->opts.table_id, 0x5353545f64657363ull);
    t->key_lobby = mix(set, 0, 0x5353545f6c6f6262ull);
    t->tag = (uint32_t)(t->key_desc >> 33) & 0x7fffffffu;
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
        nonce = mix((uint64_t)sst__now_us(), (uint64_t)(uintptr_t)t,
                    (uint64_t)getpid());
    t->nonce = nonce ? nonce : 1;
}

/* ---- publishing -------------------------------------------------------- */

static int publish_desc(struct sst_table *t, uint64_t verdict)
{
    struct desc_rec d = {.table_id = t->opts.table_id,
                         .schema_hash = t->schema_hash,
                         .nonce = t->nonce,
                         .n = t->n,
                         .rank = t->my_rank,
                         .fab_tag = t->fab_tag,
                         .verdict = verdict};
    for (uint32_t i = 0; i < t->n; i++) {
        d.members[i] = t->peers[i].node_id;
        d.seen[i] = t->peers[i].nonce;
    }
    fab_mr_get_desc(t->mr, &d.desc);
    uint8_t buf[FAB_BLOB_MAX];
    size_t len = 0;
    int rc = desc_encode(&d, buf, sizeof(buf), &len);
    if (rc == 0 && !verdict)
        rc = fab_pool_publish(t->pool, t->key_desc, buf, len);
    if (rc == 0)
        rc = fab_pool_publish(t->pool, t->key_lobby, buf, len);
    return rc;
}

int sst__setup_publish(struct sst_table *t)
{
    return publish_desc(t, 0);
}

void sst__setup_unpublish(struct sst_table *t, bool keep_desc)
{
    if (!keep_desc)
        fab_pool_unpublish(t->pool, t->key_desc);
    /* A lobby record with a verdict stays: the member refused tells the
     * other side at once (it names that side's attempt, so it misleads
     * no later one). */
    if (!t->lobby_verdict)
        fab_pool_unpublish(t->pool, t->key_lobby);
}

/* ---- exchange ---------------------------------------------------------- */

/* A member that failed during set-up: tolerated (suspected once the table
 * runs) or fatal. */
static int setup_failed(struct sst_table *t, struct sst__peer *p, int rc,
                        struct sst_error *err, const char *what)
{
    if (rc == -EPROTO || !t->opts.tolerate_failures) {
        if (err && err->code == 0)
            sst__set_error(err, rc, "rank %u (node %u): %s: %s", p->rank,
                           p->node_id, what, sst_strerror(rc));
        return rc;
    }
    sst__log(t, LOG_NOTICE,
             "table %llu: rank %u (node %u) failed during set-up (%s: %s)",
             (unsigned long long)t->opts.table_id, p->rank, p->node_id, what,
             sst_strerror(rc));
    p->setup_failure = rc < 0 ? rc : -EHOSTDOWN;
    return 0;
}

static int check_desc(struct sst_table *t, struct sst__peer *p,
                      const struct desc_rec *b, struct sst_error *err)
{
    bool same_members = b->n == t->n;
    for (uint32_t i = 0; same_members && i < t->n; i++)
        same_members = b->members[i] == t->peers[i].node_id;
    if (b->table_id != t->opts.table_id) {
        sst__set_error(err, -EPROTO,
                       "rank %u (node %u) sets up table %llu over these "
                       "members, this is table %llu",
                       p->rank, p->node_id, (unsigned long long)b->table_id,
                       (unsigned long long)t->opts.table_id);
        return -EPROTO;
    }
    if (!same_members || b->rank != p->rank) {
        sst__set_error(err, -EPROTO,
                       "rank %u (node %u): member list or rank differs "
                       "(it is rank %u of %u there)",
                       p->rank, p->node_id, b->rank, b->n);
        return -EPROTO;
    }
    if (b->schema_hash != t->schema_hash) {
        sst__set_error(err, -EPROTO,
                       "rank %u (node %u): row schema differs (hash "
                       "%016llx, mine %016llx)",
                       p->rank, p->node_id, (unsigned long long)b->schema_hash,
                       (unsigned long long)t->schema_hash);
        return -EPROTO;
    }
    if (b->desc.len < t->region_len) {
        sst__set_error(err, -EPROTO, "rank %u (node %u): region too small",
                       p->rank, p->node_id);
        return -EPROTO;
    }
    return 0;
}

/* The member's lobby record: another table_id or member order over the
 * same members is a mismatch once it has stood for LOBBY_GRACE_US. */
static int probe_lobby(struct sst_table *t, struct sst__peer *p,
                       uint64_t *seen_nonce, int64_t *seen_since,
                       struct sst_error *err)
{
    uint8_t buf[FAB_BLOB_MAX];
    size_t len = 0;
    struct fab_error ferr;
    if (fab_pool_fetch(t->pool, p->node_id, t->key_lobby, buf, sizeof(buf),
                       &len, 1, &ferr) != 0)
        return 0;
    struct desc_rec b;
    if (desc_decode(buf, len, &b) != 0)
        return 0;
    struct sst_error e = {0};
    if (check_desc(t, p, &b, &e) == 0 || b.nonce == 0) {
        *seen_nonce = 0;
        return 0;
    }
    if (b.verdict == t->nonce) {
        /* It saw this attempt and refused it. */
        if (err) {
            err->code = e.code;
            memcpy(err->msg, e.msg, sizeof(err->msg));
        }
        return -EPROTO;
    }
    if (b.verdict) {
        /* An attempt that is over (refused for another one). */
        *seen_nonce = 0;
        return 0;
    }
    int64_t now = sst__now_us();
    if (b.nonce != *seen_nonce) {
        *seen_nonce = b.nonce;
        *seen_since = now;
        return 0;
    }
    if (now - *seen_since < LOBBY_GRACE_US)
        return 0;
    /* Refused: say so in my lobby record, naming its attempt. */
    t->lobby_verdict = b.nonce;
    publish_desc(t, b.nonce);
    if (err) {
        err->code = e.code;
        memcpy(err->msg, e.msg, sizeof(err->msg));
    }
    return -EPROTO;
}

/* The exchange runs as libfab's rendezvous (fab_rendezvous) under the DESC
 * key; these are its callbacks. */
struct exchange {
    struct sst_table *t;
    struct sst_error *err;
    uint64_t lobby_nonce[SST_MAX_MEMBERS];
    int64_t lobby_since[SST_MAX_MEMBERS];
};

/* p's record: its region and nonce (a new nonce: a new attempt, whose
 * region replaces the one I held, and my record is published again to
 * list it), and whether it holds my current record (then p is done). */
static int on_record(void *ctx, size_t index, const void *buf, size_t len,
                     struct fab_error *ferr)
{
    (void)ferr;
    struct exchange *x = ctx;
    struct sst_table *t = x->t;
    struct sst__peer *p = &t->peers[index];
    struct desc_rec *b = malloc(sizeof(*b));
    if (!b)
        return -ENOMEM;
    if (desc_decode(buf, len, b) != 0) {
        free(b);
        sst__set_error(x->err, -EPROTO,
                       "rank %u (node %u): malformed set-up record", p->rank,
                       p->node_id);
        return -EPROTO;
    }
    int rc = check_desc(t, p, b, x->err);
    if (rc) {
        free(b);
        return rc;
    }
    rc = FAB_RENDEZVOUS_AGAIN;
    if (b->nonce != p->nonce) {
        p->remote = b->desc;
        p->fab_tag = b->fab_tag <= FAB_DATA_TAG_MAX ? b->fab_tag : 0;
        p->nonce = b->nonce;
        rc = publish_desc(t, 0);
        if (rc == 0)
            rc = FAB_RENDEZVOUS_CHANGED;
    }
    if (rc >= 0 && b->seen[t->my_rank] == t->nonce)
        rc = FAB_RENDEZVOUS_DONE;
    free(b);
    return rc;
}

static int on_waiting(void *ctx, size_t index, struct fab_error *ferr)
{
    (void)ferr;
    struct exchange *x = ctx;
    return probe_lobby(x->t, &x->t->peers[index], &x->lobby_nonce[index],
                       &x->lobby_since[index], x->err);
}

static int on_failed(void *ctx, size_t index, int rc,
                     const struct fab_error *why, struct fab_error *ferr)
{
    (void)ferr;
    struct exchange *x = ctx;
    struct sst__peer *p = &x->t->peers[index];
    if (rc == -EPROTO || !x->t->opts.tolerate_failures) {
        if (x->err && x->err->code == 0)
            sst__set_error(x->err, rc, "rank %u (%s)", p->rank, why->msg);
        return rc;
    }
    return setup_failed(x->t, p, rc, x->err, why->msg);
}

int sst__setup_exchange(struct sst_table *t, int64_t member_deadline,
                        struct sst_error *err)
{
    struct exchange *x = calloc(1, sizeof(*x));
    struct fab_member members[SST_MAX_MEMBERS];
    struct fab_conn *conns[SST_MAX_MEMBERS];
    bool skip[SST_MAX_MEMBERS];
    if (!x)
        return -ENOMEM;
    x->t = t;
    x->err = err;
    for (uint32_t r = 0; r < t->n; r++) {
        struct sst__peer *p = &t->peers[r];
        members[r] = (struct fab_member){p->node_id, p->host, p->port};
        conns[r] = p->conn;
        skip[r] = r == t->my_rank || atomic_load(&p->suspected);
    }
    static const struct fab_rendezvous_ops ops = {
        .check = on_record, .waiting = on_waiting, .failed = on_failed};
    int64_t left_ms = (member_deadline - sst__now_us()) / 1000;
    struct fab_error ferr;
    int rc =
        fab_rendezvous(t->user, members, t->n, skip, t->key_desc,
                       left_ms > 0 ? (int)left_ms : 1, &ops, x, conns, &ferr);
    for (uint32_t r = 0; r < t->n; r++)
        t->peers[r].conn = conns[r];
    if (rc && err && err->code == 0)
        sst__set_error(err, rc, "%s", ferr.msg[0] ? ferr.msg : "set-up");
    free(x);
    return rc;
}
