/* Internal declarations shared inside libderecho. */
#ifndef DERECHO_DERECHO_PRIVATE_H
#define DERECHO_DERECHO_PRIVATE_H

#include <derecho/derecho.h>

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- clock ------------------------------------------------------------------
 * CLOCK_MONOTONIC, the one clock every timeout inside libderecho uses. */

static inline int64_t derecho__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int64_t derecho__now_ms(void)
{
    return derecho__now_ns() / 1000000;
}

/* Sets ts to ms milliseconds from now (for pthread_cond_timedwait on a
 * condition variable whose clock is CLOCK_MONOTONIC). */
static inline void derecho__deadline_in(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

/* ---- errors (error.c) ---------------------------------------------------- */

/* Sets err (may be NULL) to code and the formatted message; returns code so
 * that a failing path reads `return derecho__fail(err, -EINVAL, ...)`. */
int derecho__fail(struct derecho_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies at most cap - 1 bytes of src and terminates dst. */
void derecho__copy_str(char *dst, size_t cap, const char *src);

/* ---- specs (layout.c) ---------------------------------------------------- */

struct derecho__spec_shard {
    uint32_t min_nodes;
    uint32_t max_nodes;
    int mode;
    char profile[DERECHO_MAX_NAME + 1];
    uint32_t *reserved;
    size_t num_reserved;
    uint32_t *senders;
    size_t num_senders;
    uint32_t max_senders;
};

struct derecho__spec_subgroup {
    uint32_t type_index;
    bool entire_view;
    uint32_t num_shards;
    struct derecho__spec_shard *shards;
};

struct derecho_layout_spec {
    derecho_allocator_fn allocator; /* NULL: the default allocator */
    void *allocator_ctx;
    uint32_t num_types;
    char (*type_names)[DERECHO_MAX_NAME + 1];
    uint32_t num_subgroups;
    uint32_t cap_subgroups;
    struct derecho__spec_subgroup *subgroups;
};

/* Appends the subgroups of other (whose types must be those of spec) to
 * spec, taking ownership of their memory; other is left empty.  Used by
 * the JSON loader, which builds into a scratch spec first (all or
 * nothing).  Returns 0 or -ENOMEM (nothing moved). */
int derecho__spec_take_subgroups(struct derecho_layout_spec *spec,
                                 struct derecho_layout_spec *other);

/* Frees a spec's subgroups (not its type names); the spec stays usable. */
void derecho__spec_free_subgroups(struct derecho_layout_spec *spec);

/* ---- layouts (layout.c) -------------------------------------------------- */

struct derecho__shard {
    uint32_t *members;
    bool *is_sender;
    size_t num_members;
    uint32_t num_senders;
    int mode;
    char profile[DERECHO_MAX_NAME + 1];
};

struct derecho__subgroup {
    uint32_t type_index;
    bool provisioned;
    uint32_t num_shards;
    struct derecho__shard *shards;
};

struct derecho_layout {
    uint32_t num_subgroups;
    struct derecho__subgroup *subgroups;
};

/* An empty layout with num_subgroups zeroed subgroups, or NULL. */
struct derecho_layout *derecho__layout_alloc(uint32_t num_subgroups);

/* Appends l's encoding / reads one (members: the view's node ids, to check
 * shard members against).  Decoding returns -EBADMSG with err set. */
int derecho__layout_encode(const struct derecho_layout *l,
                           struct mutils_writer *w);
struct mutils_reader;
int derecho__layout_decode(struct mutils_reader *r, const uint32_t *members,
                           size_t num_members, struct derecho_layout **out,
                           struct derecho_error *err);

/* ---- JSON (json.c): a small bounded DOM parser ----------------------------
 */

enum derecho__json_kind {
    DERECHO__JSON_NULL,
    DERECHO__JSON_BOOL,
    DERECHO__JSON_NUMBER,
    DERECHO__JSON_STRING,
    DERECHO__JSON_ARRAY,
    DERECHO__JSON_OBJECT,
};

struct derecho__json {
    enum derecho__json_kind kind;
    int line, column; /* where the value starts, 1-based */
    bool boolean;
    char *text;   /* NUMBER: its literal; STRING: its decoded UTF-8 */
    size_t len;   /* bytes of text (a STRING never holds a NUL) */
    size_t count; /* ARRAY/OBJECT: items */
    struct derecho__json *items;
    char **keys; /* OBJECT: items[i] is the value of keys[i] */
};

#define DERECHO__JSON_MAX_DEPTH 16

/* Parses exactly one JSON value (surrounded by white space at most) from
 * [text, text + len).  -EBADMSG with err "line L, column C: ..." for bad
 * syntax, a duplicate key or nesting deeper than DERECHO__JSON_MAX_DEPTH;
 * -ENOMEM.  Free with derecho__json_free. */
int derecho__json_parse(const char *text, size_t len,
                        struct derecho__json **out, struct derecho_error *err);
void derecho__json_free(struct derecho__json *v);

/* The value of key in object v, or NULL. */
const struct derecho__json *derecho__json_get(const struct derecho__json *v,
                                              const char *key);

/* ---- SMC multicast (smc.c) ------------------------------------------------
 */

struct conf;
struct derecho__smc;
struct derecho__smc_view;

/* The process's fab pool (on sst_port) and the delivery thread.  o must
 * outlive the result.  Errors: those of fab_pool_create, the profiles'
 * keys, -ENOMEM. */
int derecho__smc_create(const struct conf *c,
                        const struct derecho_layout_spec *spec,
                        const struct derecho_member *me, uint64_t fingerprint,
                        const struct derecho_group_options *o,
                        struct derecho__smc **out, struct derecho_error *err);
/* Ends the current view if any, then joins the thread, frees the pool. */
void derecho__smc_destroy(struct derecho__smc *s);
/* Creates view's SST table (collective: every member calls it).  The
 * members named in failed[0..num_failed) (node ids; known failed in the
 * previous view) start suspected (libsst's failed_ranks). */
int derecho__smc_view_start(struct derecho__smc *s,
                            const struct derecho_view *view,
                            const uint32_t *failed, size_t num_failed,
                            struct derecho__smc_view **out);
/* The view's SST table (valid until the view ends). */
struct sst_table;
struct sst_table *derecho__smc_view_table(struct derecho__smc_view *view);
/* Makes a started view current: sends and deliveries begin. */
void derecho__smc_view_activate(struct derecho__smc *s,
                                struct derecho__smc_view *view);
/* Ends the current view: wedges, then the delivery thread delivers what
 * every member of next received (next NULL: leaving, nothing more), and
 * the table is destroyed. */
void derecho__smc_view_end(struct derecho__smc *s,
                           const struct derecho_view *next);
int derecho__smc_reserve(struct derecho__smc *s, uint32_t subgroup, size_t size,
                         int flags, void **buf);
int derecho__smc_commit(struct derecho__smc *s, uint32_t subgroup, size_t size);
int derecho__smc_cancel(struct derecho__smc *s, uint32_t subgroup);
/* largest: the largest message (RDMC's limit when above SMC's), else
 * max_smc_payload_size. */
int derecho__smc_max_payload(struct derecho__smc *s, uint32_t subgroup,
                             bool largest, size_t *size);

/* Events the multicast reports to the group, on the SST's polling thread
 * (must not block): a member of the current view suspected (node_id), or
 * a member suspects me (node_id: who; the multicast is stopped already).
 */
#define DERECHO__SMC_SUSPECT 1
#define DERECHO__SMC_EXPELLED 2
#define DERECHO__SMC_PARTITIONED 3 /* suspicions reached half the view */
typedef void (*derecho__smc_event_fn)(void *ctx, int kind, uint32_t node_id);
/* Sets the hook (before the group's thread starts; any thread). */
void derecho__smc_set_events(struct derecho__smc *s, derecho__smc_event_fn fn,
                             void *ctx);
/* Stopped (reason DERECHO_STOPPED_*; the first one stays): sends return
 * -ENOTCONN, no more deliveries (the view's end delivers nothing either).
 * Any thread, the polling thread included. */
void derecho__smc_stop(struct derecho__smc *s, int reason);
/* 0, or the reason it stopped (set by the multicast itself on expulsion
 * or partition). */
int derecho__smc_stopped(struct derecho__smc *s);
/* Partition safety on ([DERECHO] disable_partitioning_safety false)? */
bool derecho__smc_partition_safety(struct derecho__smc *s);
/* Does the current view's table suspect node_id (false between views)?
 * Any thread but the SST's polling thread. */
bool derecho__smc_suspects(struct derecho__smc *s, uint32_t node_id);
/* Did this process stall (stopped, starved) for a suspicion timeout or
 * more while in the current (or ending) view?  Then the others suspected
 * it: a resumed member that finds itself without a majority was removed
 * ("expelled"), the others did not fail.  Any thread but the SST's
 * polling thread. */
bool derecho__smc_self_stalled(struct derecho__smc *s);
/* This member stopped (partitioned or expelled): the current (and ending)
 * view's tables publish no new suspicion from now on (sst_quiet).  Any
 * thread but the SST's polling thread. */
void derecho__smc_quiet(struct derecho__smc *s);
/* Test-only hook (docs/derecho.md): with DERECHO_TEST_BREAK_LINK=path:node
 * in the environment, once path exists, this member's connection to node
 * is failed (fab_pool_fail_peer: both sides see it broken, as a cut link
 * between the two; every other link stays).  Once.  The group's thread,
 * every turn. */
void derecho__smc_test_break_link(struct derecho__smc *s);

/* Fills the suspicion fields of s->members (node ids already there, in
 * the rank order of view view_id) and the shard entries from the current
 * view, when its id is view_id (else num_shards = 0). */
void derecho__smc_stats(struct derecho__smc *s, int64_t view_id,
                        struct derecho_group_stats *out);

/* ---- SMC counters (smc_count.c) -------------------------------------------
 * The counters a member reads from another's row are word-atomic elements
 * (SST_WORD_SIZE bytes, sst_word_store/sst_word_load): one caught mid-write
 * is never taken for a value.  Pure functions, any thread. */

/* sst_word_load: 0 and *value, or -EAGAIN while the element is being
 * written. */
int derecho__smc_count_load(const void *elem, uint64_t *value);
/* A sender's nsent element against have (what I recorded as received from
 * it): true and *now (at most have + window) when it announces more; false
 * when it does not or is being written (then nothing is received yet). */
bool derecho__smc_receipt(const void *nsent_elem, uint64_t have,
                          uint32_t window, uint64_t *now);
/* True when the element holds a whole value above round (a recv or ndel
 * count past a message); false when not, or being written. */
bool derecho__smc_count_above(const void *elem, uint64_t round);

/* ---- membership over the SST (gms.c) --------------------------------------
 */

#define DERECHO__GMS_MAX_CHANGES 16
#define DERECHO__GMS_JOIN 1
#define DERECHO__GMS_FAIL 2
#define DERECHO__GMS_LEAVE 3

/* One proposed change, as it lies in the rows (fixed width). */
struct derecho__gms_change {
    uint32_t node_id;
    uint32_t kind;                /* DERECHO__GMS_* */
    struct derecho_member member; /* JOIN: the joiner */
};

struct sst_field;
struct derecho__gms;
typedef void (*derecho__gms_wake_fn)(void *ctx);

/* Appends the membership fields to a row schema (f[0..2), names[0..2)),
 * returns their count (2). */
size_t derecho__gms_fields(struct sst_field *f, char (*names)[32]);
/* Runs the protocol on t (a view's table with those fields) in an SST
 * trigger (safety: partition safety, no commit without a majority); wake(ctx)
 * is called once (polling thread, must not block) when a change is committed.
 * Errors: -EINVAL, -ENOMEM, libsst's. */
int derecho__gms_start(struct sst_table *t, uint32_t my_id, bool safety,
                       derecho__gms_wake_fn wake, void *ctx,
                       struct derecho__gms **out);
/* Frees it; only after its table is destroyed. */
void derecho__gms_free(struct derecho__gms *m);
/* The joiners admitted and waiting (copied; replaces the previous set);
 * the leader proposes them.  Any thread. */
void derecho__gms_propose_joins(struct derecho__gms *m,
                                const struct derecho_member *joiners, size_t n);
/* Asks to leave gracefully (the leader proposes it).  Any thread. */
void derecho__gms_leave(struct derecho__gms *m);
/* The committed changes (out: DERECHO__GMS_MAX_CHANGES of them), their
 * count, 0 while nothing is committed.  Any thread. */
size_t derecho__gms_committed(struct derecho__gms *m,
                              struct derecho__gms_change *out);
/* The node id of the current leader as I see it (UINT32_MAX before the
 * first evaluation). */
uint32_t derecho__gms_leader(struct derecho__gms *m);
/* True once a change is committed here and every member I do not suspect
 * holds that committed count in its row: any successor of mine then
 * installs the same view (a leader tells a joiner its view only then).
 * Any thread. */
bool derecho__gms_commit_held(struct derecho__gms *m);

/* ---- the RDMC path for large messages (rdmc_path.c) -----------------------
 * One object per view: the view's RDMC groups (one per sender of each
 * shard of mine that needs them) and their registered rings.  The caller
 * (smc.c) serialises every call but the callbacks' own (under its lock or
 * on the delivery thread, see each). */

struct fab_pool;
struct derecho__rdmc_view;

/* One shard of mine, in the order of the caller's shards (the index is
 * the `shard` argument below).  max_payload 0: no RDMC for this shard. */
struct derecho__rdmc_spec {
    uint32_t subgroup, shard;
    size_t max_payload; /* the profile's max_payload_size */
    uint32_t ring;      /* ring positions per sender */
    size_t block_size;
    int algorithm; /* enum rdmc_algorithm */
    int create_timeout_ms, timeout_ms;
};

struct derecho__rdmc_hooks {
    void (*wake)(void *ctx); /* from any thread; must not block */
    void *wake_ctx;
    void (*log)(void *ctx, int level, const char *module, const char *msg);
    void *log_ctx;
    int log_level;
    /* librdmc's create_wait (rdmc_options): called while the rendezvous
     * waits for a member; a negative errno gives up, naming *blame.  May
     * be NULL. */
    int (*create_wait)(void *ctx, uint32_t waiting_for, uint32_t *blame);
    void *create_wait_ctx;
};

/* Registers the rings and creates the view's groups in one rendezvous
 * (collective: every member of those shards calls it).  *out NULL and 0
 * when no shard needs RDMC.  On failure *failed_node names the member
 * waited for or disagreeing, or the one create_wait blamed (UINT32_MAX if
 * none).  Errors: librdmc's and
 * libfab's, -ERANGE (group ids over RDMC_MAX_GROUP_ID), -ENOMEM. */
int derecho__rdmc_view_create(struct fab_pool *pool,
                              const struct derecho_view *view,
                              const struct derecho__rdmc_spec *specs,
                              size_t num_specs,
                              const struct derecho__rdmc_hooks *hooks,
                              struct derecho__rdmc_view **out,
                              uint32_t *failed_node);
/* Wedges every group (no message completes afterwards, no peer writes
 * into the rings): the start of the view's epoch end.  NULL: no-op. */
void derecho__rdmc_view_wedge(struct derecho__rdmc_view *rv);
/* Destroys the groups, deregisters and frees the rings.  NULL: no-op. */
void derecho__rdmc_view_destroy(struct derecho__rdmc_view *rv);
/* The largest RDMC message of shard (0: none; rv may be NULL). */
size_t derecho__rdmc_max(const struct derecho__rdmc_view *rv, size_t shard);
/* Sender: true and *seq when my next ring position still holds a message
 * (SMC sequence *seq) that every shard member must have delivered before
 * it is reused. */
bool derecho__rdmc_reuse(const struct derecho__rdmc_view *rv, size_t shard,
                         uint64_t *seq);
/* Sender: where my next RDMC message goes (max bytes), NULL if I am no
 * sender of shard or it has no RDMC. */
void *derecho__rdmc_send_buf(struct derecho__rdmc_view *rv, size_t shard);
/* Sender: multicasts size bytes of the next ring position as the message
 * of SMC sequence seq; *index gets its RDMC index.  Errors: -EPERM,
 * -EMSGSIZE (0 or over max; nothing used), librdmc's (the group failed:
 * the position and index are the message's all the same). */
int derecho__rdmc_send(struct derecho__rdmc_view *rv, size_t shard, size_t size,
                       uint64_t seq, uint64_t *index);
/* How many RDMC messages of sender (index among the shard's senders)
 * completed here (sent, for my own; 0 when rv is NULL). */
uint64_t derecho__rdmc_done(struct derecho__rdmc_view *rv, size_t shard,
                            uint32_t sender);
/* The bytes of sender's RDMC message index (complete here), or NULL for
 * a size over max or no RDMC (rv NULL included). */
const void *derecho__rdmc_data(struct derecho__rdmc_view *rv, size_t shard,
                               uint32_t sender, uint64_t index, size_t size);
/* Calls fn for every failure the groups reported since the last call
 * (a peer's wedge is no failure).  Delivery thread. */
void derecho__rdmc_failures(struct derecho__rdmc_view *rv,
                            void (*fn)(void *ctx, uint32_t node_id, int reason),
                            void *ctx);

#endif
