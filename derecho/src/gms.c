/* Membership changes over the SST of the current view (the Derecho paper,
 * TOCS 2019, section 4; DESIGN.md "Control plane and semantics").
 *
 * Every row of a view's table carries (fields "gms.list" and "gms.cnt"):
 *   list   up to DERECHO__GMS_MAX_CHANGES proposed changes: node id, kind
 *          (join, failure, graceful leave) and, for a joiner, its
 *          addresses and ports (fixed width);
 *   cnt    word-atomic elements: num_changes, num_committed, whose list
 *          it is (leader node id + 1), leaving (I asked to leave), then
 *          ack ((leader node id + 1) << 32 | num_acked), pushed last.
 * The leader (lowest rank I do not suspect) appends changes: failures
 * from suspicion, graceful leaves from the leaving flag, joins handed to
 * it by the group's thread (admitted over TCP).  Every other member copies
 * its leader's list into its own row and acknowledges it.  Once every
 * member the leader does not suspect acknowledged its whole list, the
 * leader raises num_committed, which members copy.  A member whose row
 * holds num_committed > 0 is "locked": it never takes another count in
 * this view, and the group's thread ends the view and computes the next
 * one from the committed prefix (the same everywhere).
 *
 * A new leader (its predecessor suspected) takes the longest list of any
 * row it does not suspect, adds its own departures, and commits once
 * every survivor acknowledged.  A survivor that already holds a committed
 * count keeps it: the new leader adopts it from that survivor's row
 * before committing anything else (a survivor's count is pushed before
 * its ack), so no two members install different views.  Changes proposed
 * after a commit wait for the next view (failed members stay suspected
 * there: they are passed as failed ranks to its table).
 *
 * Everything here runs in an SST trigger on the table's polling thread
 * and never blocks (sst_put_try; a push that finds no room is retried on
 * the next evaluation).  The group's thread only hands joins over, reads
 * the committed changes and does the blocking work of the view change. */
#include "derecho-private.h"

#include <sst/sst.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { C_NUM, C_COMMITTED, C_OWNER, C_LEAVING, C_ACK, C_WORDS };

#define LIST_BYTES                                                             \
    (DERECHO__GMS_MAX_CHANGES * sizeof(struct derecho__gms_change))

struct derecho__gms {
    struct sst_table *t;
    uint32_t me, my_id, n;
    size_t off_list, off_cnt;
    derecho__gms_wake_fn wake;
    void *wake_ctx;
    struct sst_pred *pred;
    pthread_mutex_t lock; /* joins */
    struct derecho_member joins[DERECHO__GMS_MAX_CHANGES];
    size_t num_joins;
    atomic_uint joins_gen; /* bumped by every hand-over */
    atomic_bool leave;
    /* Polling thread only. */
    uint32_t led_by;       /* node id + 1 of the leader I last followed/was */
    bool dirty;            /* my row changed but a push found no room */
    uint64_t seen_sum;     /* needed()'s last look */
    int64_t hold_until_ms; /* test hook: commit no sooner */
    bool safety;           /* partition safety */
    const char *hook_path;
    uint32_t hook_join; /* node id + 1: the hook waits for this join */
    bool hook_done;
    /* Set by the trigger, read by the group's thread. */
    atomic_uint committed;
    atomic_uint leader_id;
};

static struct derecho__gms_change *list_of(struct derecho__gms *m, uint32_t r)
{
    return (struct derecho__gms_change *)(void *)((uint8_t *)sst_row(m->t, r) +
                                                  m->off_list);
}

static uint8_t *cnt_of(struct derecho__gms *m, uint32_t r, int i)
{
    return (uint8_t *)sst_row(m->t, r) + m->off_cnt + (size_t)i * SST_WORD_SIZE;
}

static uint64_t get(struct derecho__gms *m, uint32_t r, int i)
{
    uint64_t v = 0;
    /* A count being written reads as its old value next time: 0 now is
     * "not yet", which every caller treats as no progress. */
    if (derecho__smc_count_load(cnt_of(m, r, i), &v) != 0)
        return 0;
    return v;
}

static void set(struct derecho__gms *m, int i, uint64_t v)
{
    sst_word_store(cnt_of(m, m->me, i), v);
}

/* Pushes my list and counts, then (a later put: it lands after them) my
 * ack word. */
static void push(struct derecho__gms *m)
{
    int rc = sst_put_try(m->t, NULL, 0, m->off_list, LIST_BYTES);
    if (rc == 0)
        rc = sst_put_try(m->t, NULL, 0, m->off_cnt,
                         (size_t)C_ACK * SST_WORD_SIZE);
    if (rc == 0)
        rc = sst_put_try(m->t, NULL, 0, m->off_cnt + C_ACK * SST_WORD_SIZE,
                         SST_WORD_SIZE);
    m->dirty = rc != 0;
}

size_t derecho__gms_fields(struct sst_field *f, char (*names)[32])
{
    snprintf(names[0], 32, "gms.list");
    f[0] = (struct sst_field){names[0], 8, (LIST_BYTES + 7) / 8};
    snprintf(names[1], 32, "gms.cnt");
    f[1] = (struct sst_field){names[1], SST_WORD_SIZE, C_WORDS};
    return 2;
}

static bool in_list(const struct derecho__gms_change *l, uint64_t n,
                    uint32_t node_id)
{
    for (uint64_t i = 0; i < n; i++)
        if (l[i].node_id == node_id)
            return true;
    return false;
}

static void append(struct derecho__gms *m, uint32_t kind,
                   const struct derecho_member *who, uint32_t node_id,
                   uint64_t *n)
{
    if (*n >= DERECHO__GMS_MAX_CHANGES)
        return; /* the rest waits for the next view */
    struct derecho__gms_change c;
    memset(&c, 0, sizeof(c));
    c.node_id = node_id;
    c.kind = kind;
    if (who)
        c.member = *who;
    memcpy(&list_of(m, m->me)[*n], &c, sizeof(c));
    (*n)++;
}

/* The largest committed count in a row I do not suspect (0: none), its
 * row's prefix copied into my list (n grows to cover it). */
static uint64_t adopt_committed(struct derecho__gms *m, uint64_t *n)
{
    uint64_t best = 0;
    uint32_t from = m->me;
    for (uint32_t r = 0; r < m->n; r++) {
        if (r == m->me || sst_suspects(m->t, m->me, r))
            continue;
        uint64_t rc = get(m, r, C_COMMITTED);
        if (rc > best && rc <= get(m, r, C_NUM) &&
            rc <= DERECHO__GMS_MAX_CHANGES) {
            best = rc;
            from = r;
        }
    }
    if (best == 0)
        return 0;
    memcpy(list_of(m, m->me), list_of(m, from),
           best * sizeof(struct derecho__gms_change));
    if (*n < best)
        *n = best;
    return best;
}

/* The leader's turn. */
static void lead(struct derecho__gms *m)
{
    uint32_t me = m->me;
    uint64_t n = get(m, me, C_NUM), committed = get(m, me, C_COMMITTED);
    bool changed = false;
    if (m->led_by != m->my_id + 1) {
        /* Taking over (or leading from the start): the longest list of
         * any row I do not suspect, and any committed count there. */
        for (uint32_t r = 0; r < m->n; r++) {
            if (r == me || sst_suspects(m->t, me, r))
                continue;
            uint64_t rn = get(m, r, C_NUM);
            if (rn > n && rn <= DERECHO__GMS_MAX_CHANGES) {
                memcpy(list_of(m, me), list_of(m, r),
                       rn * sizeof(struct derecho__gms_change));
                n = rn;
            }
        }
        m->led_by = m->my_id + 1;
        atomic_store(&m->leader_id, m->my_id);
        changed = true;
    }
    if (committed == 0) {
        /* A survivor that holds a commit of my predecessor's: that count
         * and that row's prefix are the next view, whatever I proposed
         * since (its count may arrive after I took over, its list longer
         * than mine: its prefix is also a prefix of every list I could
         * have copied, as the commit needed every live member's ack). */
        uint64_t c = adopt_committed(m, &n);
        if (c) {
            committed = c;
            set(m, C_NUM, n);
            set(m, C_OWNER, m->my_id + 1);
            set(m, C_ACK, ((uint64_t)(m->my_id + 1) << 32) | n);
            set(m, C_COMMITTED, committed);
            changed = true;
        }
    }
    if (committed == 0) {
        for (uint32_t r = 0; r < m->n; r++) {
            uint32_t id = sst_node_id(m->t, r);
            if (r != me && sst_suspects(m->t, me, r) &&
                !in_list(list_of(m, me), n, id))
                append(m, DERECHO__GMS_FAIL, NULL, id, &n), changed = true;
            else if ((r == me ? atomic_load(&m->leave)
                              : get(m, r, C_LEAVING) != 0) &&
                     !sst_suspects(m->t, me, r) &&
                     !in_list(list_of(m, me), n, id))
                append(m, DERECHO__GMS_LEAVE, NULL, id, &n), changed = true;
        }
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->num_joins; i++)
            if (!in_list(list_of(m, me), n, m->joins[i].node_id))
                append(m, DERECHO__GMS_JOIN, &m->joins[i], m->joins[i].node_id,
                       &n),
                    changed = true;
        pthread_mutex_unlock(&m->lock);
    }
    if (changed) {
        set(m, C_NUM, n);
        set(m, C_OWNER, m->my_id + 1);
        set(m, C_ACK, ((uint64_t)(m->my_id + 1) << 32) | n);
        bool failure = false;
        for (uint64_t i = 0; i < n; i++) {
            const struct derecho__gms_change *c = &list_of(m, me)[i];
            failure |= m->hook_join ? c->kind == DERECHO__GMS_JOIN &&
                                          c->node_id + 1 == m->hook_join
                                    : c->kind == DERECHO__GMS_FAIL;
        }
        if (m->hook_path && !m->hook_done && failure && committed == 0) {
            /* Test hook (DERECHO_TEST_PROPOSE_HOOK): the proposal is out,
             * the commit waits; the test kills me meanwhile. */
            m->hold_until_ms = derecho__now_ms() + 3000;
        }
    }
    if (committed == 0 && n > 0) {
        /* Commit once every member I do not suspect acknowledged all of
         * my list; a survivor that holds a commit of my predecessor
         * gives me that count instead. */
        bool all = true;
        for (uint32_t r = 0; r < m->n; r++) {
            if (r == me || sst_suspects(m->t, me, r))
                continue;
            if (get(m, r, C_ACK) != (((uint64_t)(m->my_id + 1) << 32) | n))
                all = false;
        }
        /* Never without a majority of the view (partition safety: a
         * minority, e.g. a resumed member that finds its connections
         * failed, learns it was removed or stops instead). */
        uint32_t live = sst_num_live(m->t);
        if (all && (2 * live > m->n || !m->safety)) {
            if (m->hold_until_ms) {
                if (!m->hook_done) {
                    m->hook_done = true;
                    FILE *f = fopen(m->hook_path, "w");
                    if (f)
                        fclose(f);
                }
                if (derecho__now_ms() < m->hold_until_ms)
                    goto out;
            }
            committed = n;
        }
        if (committed) {
            set(m, C_COMMITTED, committed);
            changed = true;
        }
    }
out:
    if (changed || m->dirty)
        push(m);
    if (committed)
        atomic_store(&m->committed, (unsigned)committed);
}

/* A member's turn: copy my leader's list, acknowledge it. */
static void follow(struct derecho__gms *m, uint32_t leader)
{
    uint32_t me = m->me, lid = sst_node_id(m->t, leader);
    atomic_store(&m->leader_id, lid);
    bool changed = false;
    if (get(m, leader, C_OWNER) == lid + 1) {
        uint64_t ln = get(m, leader, C_NUM);
        uint64_t lc = get(m, leader, C_COMMITTED);
        uint64_t n = get(m, me, C_NUM), committed = get(m, me, C_COMMITTED);
        if (ln <= DERECHO__GMS_MAX_CHANGES && ln >= committed &&
            (ln != n || m->led_by != lid + 1)) {
            memcpy(list_of(m, me), list_of(m, leader),
                   ln * sizeof(struct derecho__gms_change));
            set(m, C_NUM, ln);
            set(m, C_OWNER, lid + 1);
            set(m, C_ACK, ((uint64_t)(lid + 1) << 32) | ln);
            m->led_by = lid + 1;
            changed = true;
        }
        if (committed == 0 && lc > 0 && lc <= get(m, me, C_NUM) &&
            m->led_by == lid + 1) {
            set(m, C_COMMITTED, lc);
            changed = true;
        }
    }
    uint64_t want = atomic_load(&m->leave) ? 1 : 0;
    if (get(m, me, C_LEAVING) != want) {
        set(m, C_LEAVING, want);
        changed = true;
    }
    if (changed || m->dirty)
        push(m);
    uint64_t committed = get(m, me, C_COMMITTED);
    if (committed)
        atomic_store(&m->committed, (unsigned)committed);
}

/* Something for step() to look at: a count word of a row changed, a
 * suspicion, a join handed over, a leave asked, a push to retry or a held
 * commit due.  Cheap (n rows x C_WORDS words); a trigger that fired on
 * every evaluation would keep the polling thread spinning (it spins
 * after every change) and starve the heartbeats of a loaded machine. */
static bool needed(struct sst_table *t, void *ctx)
{
    struct derecho__gms *m = ctx;
    uint64_t sum = atomic_load(&m->joins_gen) * 7919u +
                   (atomic_load(&m->leave) ? 104729u : 0) + sst_num_live(t);
    for (uint32_t r = 0; r < m->n; r++) {
        const uint64_t *w = (const uint64_t *)(const void *)cnt_of(m, r, 0);
        for (size_t i = 0; i < C_WORDS * (SST_WORD_SIZE / 8); i++)
            sum += __atomic_load_n(w + i, __ATOMIC_RELAXED) * (2 * i + 1) *
                   (r + 1);
    }
    bool due = m->dirty || (m->hold_until_ms && !atomic_load(&m->committed));
    if (sum == m->seen_sum && !due)
        return false;
    m->seen_sum = sum;
    return true;
}

static void step(struct sst_table *t, void *ctx)
{
    (void)t;
    struct derecho__gms *m = ctx;
    bool was = atomic_load(&m->committed) != 0;
    uint32_t leader = m->me;
    for (uint32_t r = 0; r < m->n; r++)
        if (r == m->me || !sst_suspects(m->t, m->me, r)) {
            leader = r;
            break;
        }
    if (leader == m->me)
        lead(m);
    else
        follow(m, leader);
    if (!was && atomic_load(&m->committed) && m->wake)
        m->wake(m->wake_ctx);
}

int derecho__gms_start(struct sst_table *t, uint32_t my_id, bool safety,
                       derecho__gms_wake_fn wake, void *ctx,
                       struct derecho__gms **out)
{
    *out = NULL;
    int li = sst_field_index(t, "gms.list"), ci = sst_field_index(t, "gms.cnt");
    if (li < 0 || ci < 0)
        return -EINVAL;
    struct derecho__gms *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->t = t;
    m->me = sst_my_rank(t);
    m->my_id = my_id;
    m->n = sst_num_members(t);
    m->off_list = sst_field_offset(t, (size_t)li);
    m->off_cnt = sst_field_offset(t, (size_t)ci);
    m->wake = wake;
    m->safety = safety;
    m->wake_ctx = ctx;
    uint32_t leader = m->me;
    for (uint32_t r = 0; r < m->n; r++)
        if (r == m->me || !sst_suspects(t, m->me, r)) {
            leader = r;
            break;
        }
    atomic_init(&m->leader_id, sst_node_id(t, leader));
    /* Test-only (documented in docs/derecho.md): a leader that proposed
     * a failure creates this file once every member acknowledged it and
     * holds its commit for 3 s (a test kills it meanwhile). */
    const char *hook = getenv("DERECHO_TEST_PROPOSE_HOOK");
    m->hook_path = hook && *hook ? hook : NULL;
    /* ... or, with DERECHO_TEST_PROPOSE_HOOK_JOIN=<node id>, a proposal
     * holding that node's join (instead of a failure). */
    const char *hj = getenv("DERECHO_TEST_PROPOSE_HOOK_JOIN");
    if (m->hook_path && hj && *hj)
        m->hook_join = (uint32_t)strtoul(hj, NULL, 10) + 1;
    pthread_mutex_init(&m->lock, NULL);
    int rc = sst_predicate_add(t, needed, step, m, SST_RECURRENT, &m->pred);
    if (rc) {
        pthread_mutex_destroy(&m->lock);
        free(m);
        return rc;
    }
    sst_notify(t);
    *out = m;
    return 0;
}

void derecho__gms_free(struct derecho__gms *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void derecho__gms_propose_joins(struct derecho__gms *m,
                                const struct derecho_member *joiners, size_t n)
{
    pthread_mutex_lock(&m->lock);
    m->num_joins = 0;
    for (size_t i = 0; i < n && i < DERECHO__GMS_MAX_CHANGES; i++)
        m->joins[m->num_joins++] = joiners[i];
    atomic_fetch_add(&m->joins_gen, 1);
    pthread_mutex_unlock(&m->lock);
    sst_notify(m->t);
}

void derecho__gms_leave(struct derecho__gms *m)
{
    atomic_store(&m->leave, true);
    sst_notify(m->t);
}

size_t derecho__gms_committed(struct derecho__gms *m,
                              struct derecho__gms_change *out)
{
    unsigned k = atomic_load(&m->committed);
    if (k)
        memcpy(out, list_of(m, m->me), k * sizeof(*out));
    return k;
}

uint32_t derecho__gms_leader(struct derecho__gms *m)
{
    if (!m)
        return UINT32_MAX;
    return atomic_load(&m->leader_id);
}

bool derecho__gms_commit_held(struct derecho__gms *m)
{
    unsigned k = atomic_load(&m->committed);
    if (!k)
        return false;
    for (uint32_t r = 0; r < m->n; r++)
        if (r != m->me && !sst_suspects(m->t, m->me, r) &&
            get(m, r, C_COMMITTED) != k)
            return false;
    return true;
}
