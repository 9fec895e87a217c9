/* libsst: the Shared State Table.
 *
 * A table has one row per member (members in rank order).  Every member
 * keeps a full copy of the table in one registered memory region; it writes
 * only its own row (plain memory writes) and pushes byte ranges of that row
 * to the other members with one-sided writes (sst_put), which land in their
 * copies.  Readers read local memory.  A polling thread owned by the table
 * ("sst-poll") evaluates registered predicates and fires their triggers
 * and reports suspicions; a timer thread ("sst-poll-tmr") sends heartbeats
 * and detects failed members on a clock of its own, so a long trigger
 * neither silences this member nor hides a silent one.
 *
 * Row layout: the caller describes the row with named fields (element size
 * and count); sst_schema_layout() gives every field an aligned offset in the
 * row's user area.  Before the user area each row has a header that libsst
 * owns: a heartbeat counter, a barrier counter, a closing flag and the
 * `suspected` field (one byte per member).  Members compare a hash of the
 * schema (names, sizes, counts, offsets) at set-up: a mismatch fails
 * sst_create with -EPROTO.
 *
 * Ordering: puts from one thread to one member become visible at that
 * member in the order they were posted (FAB_WRITE_FENCE in libfab: free when
 * the provider orders writes, as tcp and sockets do).  The guard pattern
 * "put the payload, then put the counter that announces it" is therefore
 * safe; a reader that sees the new counter sees the payload.  Do not rely on
 * the order of bytes *within* one put.
 *
 * CPU: the polling thread spins for a bounded budget (spin_us) after the
 * last change (a trigger fired, a push from a peer or sst_notify), then
 * sleeps on the pool's completion-queue wait fd and the table's eventfd. Pushes
 * carry remote completion data (fab_writedata) so a sleeping member wakes when
 * a peer pushes.  An idle table costs heartbeats only (default every 20 ms).
 *
 * Failure detection: a member is suspected when its heartbeat has not
 * changed for suspect_timeout_ms, its connection broke, or sst_suspect()
 * says so.  A check that runs more than half the timeout late means this
 * process did not run (stopped, starved): the clocks are reset instead
 * (independent of heartbeat_ms).  The suspicion is written into my row's
 * suspected field and pushed to the member itself first (so that, stopped
 * and resumed, it learns it was removed: on_expelled), then the member's
 * connection is failed for every user of the pool (fab_pool_fail_peer),
 * its row is frozen (no longer read as new: no heartbeat checks, no pushes
 * to it, it no longer counts in sst_sync) and my row is pushed to the
 * others.  Never retracted.  on_suspect reports it on the polling
 * thread.  A member that knows it was removed (some row suspects it)
 * publishes no new suspicion: it records it locally only (row frozen,
 * connection failed, on_suspect, sst_suspects(t, me, rank)), and its
 * row's suspected field stays as it was, so that its breaking
 * connections do not make the others remove healthy members.
 *
 * Threading:
 *  - sst_create/sst_destroy: any thread, but not the table's own polling
 *    thread (not from a trigger) and never concurrently with other calls on
 *    the same table.
 *  - sst_put*, sst_sync, sst_notify, sst_predicate_add/remove, readers of
 *    rows and accessors: any thread, also from a trigger (sst_sync and
 *    sst_put_wait not from a trigger: -EDEADLK).
 *  - Predicates, triggers, on_suspect and on_expelled run on the table's
 *    polling thread, one at a time, predicates in registration order.  They
 *    should not block (a long one delays other triggers and callbacks, not
 *    heartbeats).
 *  - Several tables may share one fab pool (typically one table per view,
 *    plus RDMC groups): every table's thread drives the pool's progress
 *    when it runs; pushes are tagged per table so only the table concerned
 *    is woken.
 *  - Writes of one's own row by several threads are the caller's business
 *    (libsst never writes the user area).
 *
 * Errors: 0 or a negative errno; libfabric's codes pass through;
 * sst_strerror() names them.  No globals: everything lives in the table.
 */
#ifndef DERECHO_SST_H
#define DERECHO_SST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fab/fab.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SST_EXPORT __attribute__((visibility("default")))

/* Most members in one table. */
#define SST_MAX_MEMBERS 256
/* Most fields in one row schema. */
#define SST_MAX_FIELDS 256
/* Largest user area of a row (1 GiB; 0.1 capped it at 1 MiB).  The whole
 * table (members x rows) is one registration: a provider or a locked-memory
 * limit that cannot hold it fails sst_create with its error. */
#define SST_MAX_ROW_SIZE (1u << 30)

struct sst_table;
struct sst_pred;

/* Optional detail of a failed call. */
struct sst_error {
    int code;
    char msg[256];
};

typedef void (*sst_log_fn)(void *ctx, int level, const char *module,
                           const char *msg);

/* A member: libfab's struct fab_member (node_id, host, port: where its
 * pool's bootstrap listener is, used only when the pool has no live
 * connection to it yet; host is copied).  `struct sst_member` is that struct
 * under its old name (a macro: both names are the same type, so member
 * arrays pass between libfab, libsst and librdmc as they are). */
#define sst_member fab_member

/* A field of the row: elem_size bytes per element (1..4096), count elements
 * (>= 1).  Its alignment is elem_size rounded up to a power of two, at most
 * 8 (a field of 8-byte counters is 8-aligned).  name (<= 63 chars, unique)
 * is part of the schema hash. */
struct sst_field {
    const char *name;
    size_t elem_size;
    size_t count;
};

/* Called on the polling thread when a member is suspected (once per
 * member; not for members named in failed_ranks).  reason: -ETIMEDOUT
 * (heartbeat stalled), -ECONNRESET or the reason the pool reported for its
 * connection, or the reason given to sst_suspect.  Must not block.  The
 * same signature serves on_expelled (rank/node_id: who suspects me). */
typedef void (*sst_suspect_fn)(void *ctx, struct sst_table *table,
                               uint32_t rank, uint32_t node_id, int reason);

/* Options of a table.  Initialise with sst_options_init(), then override. */
struct sst_options {
    size_t size;            /* sizeof(struct sst_options) */
    uint64_t table_id;      /* names this table among the tables over the same
                               members in the pool (libderecho: the view id).
                               Two tables alive at once, or created one after
                               the other, need different ids.  Default 0. */
    int heartbeat_ms;       /* heartbeat period, default 20; must be shorter
                               than suspect_timeout_ms */
    int suspect_timeout_ms; /* heartbeat stall that suspects, default 1000 */
    int setup_timeout_ms;   /* connect + exchange + first sync in
                               sst_create, default 10000 */
    int close_timeout_ms;   /* sst_destroy waits this long for live members
                               to close their side, default 1000 */
    int spin_us;            /* spin budget after the last change; -1 (default):
                               100 us with manual-progress providers (tcp), 0
                               with auto-progress ones (sockets), whose own
                               threads need the CPU */
    sst_suspect_fn on_suspect; /* may be NULL */
    void *suspect_ctx;
    const char *thread_name; /* polling thread's name (<= 15 chars),
                                default "sst-poll"; copied */
    sst_log_fn log;          /* NULL: stderr */
    void *log_ctx;
    int log_level; /* syslog level, default LOG_WARNING */
    /* ---- added after 0.1 (a smaller opts->size leaves them at their
     * defaults) ---- */
    /* Called once, on the polling thread, when a member's row says it
     * suspects me: the others removed me (e.g. after this process was
     * stopped longer than their suspicion timeout).  rank/node_id: the
     * first member seen suspecting me; reason -EHOSTDOWN.  ctx is
     * suspect_ctx.  NULL: only sst_suspects(t, rank, my_rank) tells. */
    sst_suspect_fn on_expelled;
    /* Members known to have failed before the table exists (ranks, not
     * node ids): their rows are frozen from the start (suspected by me,
     * never contacted, not waited for, not reported through on_suspect).
     * Copied.  Default NULL/0. */
    const uint32_t *failed_ranks;
    size_t n_failed_ranks;
    /* A member whose connection fails or cannot be made during set-up
     * (refused, reset, suspected by the pool) is suspected (on_suspect,
     * after create returns) instead of failing the create, provided at
     * least one other member is live.  A member that is merely silent
     * still fails the create with -ETIMEDOUT.  Default false. */
    bool tolerate_failures;
    /* Initial contents of my row's user area (initial_row_len <=
     * sst_row_size; the rest stays zero).  Pushed before the first
     * barrier: when sst_create returns every live member sees it.
     * Copied.  Default NULL/0. */
    const void *initial_row;
    size_t initial_row_len;
    /* With tolerate_failures: a member that does not reach the first
     * barrier within setup_timeout_ms (silent: stopped, or its own
     * create failed while its connection stayed up) is suspected
     * (-ETIMEDOUT, on_suspect after create returns) instead of failing
     * the create, provided at least one other member is live.  Without
     * it, that create fails with -ETIMEDOUT and err names the rank and
     * node of the first member not reached.  Default false. */
    bool tolerate_silent;
};

/* Fills defaults (see the fields). */
SST_EXPORT void sst_options_init(struct sst_options *opts);

/* Describes an error code (ours, errno or libfabric's).  Never NULL. */
SST_EXPORT const char *sst_strerror(int err);

/* Computes the offsets of n fields in the user area of a row (offsets[i],
 * may be NULL) and the user area size (*user_size, may be NULL; a multiple
 * of 8).  Pure.  -EINVAL for a bad field (size 0 or > 4096, count 0, NULL,
 * empty, long or duplicate name), -ERANGE when the row would exceed
 * SST_MAX_ROW_SIZE. */
SST_EXPORT int sst_schema_layout(const struct sst_field *fields, size_t n,
                                 size_t *offsets, size_t *user_size);

/* The schema hash members compare (XXH64 of names, sizes, counts, offsets).
 * 0 on a bad schema. */
SST_EXPORT uint64_t sst_schema_hash(const struct sst_field *fields, size_t n);

/* Creates a table over n members (rank order; members[my_rank] is me and
 * must be the pool's node id) with the row schema fields[0..n_fields).
 * Registers the rows in one region of pool, borrows a connection to every
 * other member (connecting when the pool has none), exchanges region
 * descriptors and schema hashes, starts the polling thread and returns
 * after a first barrier (sst_sync) among all members.  Rows start zeroed
 * (or with opts->initial_row in mine), and on return every live member's
 * initial row is visible.  Each call is one attempt with its own identity
 * (a random nonce in its set-up records): retrying with the same table_id
 * after a failure is safe, and a member still holding the record of an
 * earlier attempt fetches the current one before writing.  Never returns
 * 0 with every other member suspected (those named in failed_ranks
 * aside).  members, fields and opts are copied; pool must outlive the
 * table.  opts may be NULL (defaults); *out is set to NULL on failure.
 * Errors: -EINVAL bad arguments (pool or members NULL, n 0 or over
 * SST_MAX_MEMBERS, my_rank >= n, members[my_rank] not the pool's node,
 * a node id listed twice or UINT32_MAX, a host longer than 63 bytes,
 * opts->size neither the 0.1 layout's size, the one before
 * tolerate_silent, nor at least this version's
 * sizeof (a larger size from a newer header is accepted when the bytes
 * past this version's struct are zero), heartbeat_ms or
 * suspect_timeout_ms <= 0, heartbeat_ms >= suspect_timeout_ms (the
 * message names both), failed_ranks out of range, mine or every other
 * member), -ERANGE initial_row longer than the row, the errors of
 * sst_schema_layout for the fields (-EINVAL, -ERANGE), -EPROTO a member's
 * schema, member list or order, or table_id differs (err names who; a
 * member setting up another table_id over the same members is noticed
 * after 500 ms, the other side then at once), -ETIMEDOUT a member did not
 * answer within setup_timeout_ms, -EHOSTDOWN every other member failed
 * during set-up, -ENOMEM, libfab's connection and registration errors. */
SST_EXPORT int sst_create(struct fab_pool *pool,
                          const struct sst_member *members, size_t n,
                          uint32_t my_rank, const struct sst_field *fields,
                          size_t n_fields, const struct sst_options *opts,
                          struct sst_table **out, struct sst_error *err);

/* Stops the polling thread, tells the live members this side is closing
 * and waits (up to close_timeout_ms) for theirs, so nobody writes into a
 * region that is gone; then releases connections (they stay pooled) and
 * frees everything.  Pointers into the rows become invalid.  NULL: no-op.
 * Called from the table's polling thread (a trigger or on_suspect, which
 * is forbidden) it logs an error and does nothing. */
SST_EXPORT void sst_destroy(struct sst_table *table);

/* ---- rows ------------------------------------------------------------- */

/* Never a valid rank: what rank getters return for a NULL table. */
#define SST_NO_RANK UINT32_MAX

/* Members in the table (0 for NULL). */
SST_EXPORT uint32_t sst_num_members(const struct sst_table *table);
/* My rank (SST_NO_RANK for NULL; 0.1 returned 0). */
SST_EXPORT uint32_t sst_my_rank(const struct sst_table *table);
/* Node id of a rank (UINT32_MAX when out of range). */
SST_EXPORT uint32_t sst_node_id(const struct sst_table *table, uint32_t rank);
/* Rank of a node id, or -ENOENT. */
SST_EXPORT int sst_rank_of(const struct sst_table *table, uint32_t node_id);

/* The user area of row rank (NULL when out of range).  Valid until
 * sst_destroy.  Write only your own row.  Peers' rows change under you
 * when pushes land: read counters with atomic (acquire) loads. */
SST_EXPORT void *sst_row(struct sst_table *table, uint32_t rank);
/* Size of the user area (sst_schema_layout's user_size). */
SST_EXPORT size_t sst_row_size(const struct sst_table *table);
/* Offset of field index i in the user area (SIZE_MAX when out of range). */
SST_EXPORT size_t sst_field_offset(const struct sst_table *table, size_t i);
/* Index of the field named name, or -ENOENT. */
SST_EXPORT int sst_field_index(const struct sst_table *table, const char *name);
/* Element elem of field i in row rank, or NULL when out of range. */
SST_EXPORT void *sst_field(struct sst_table *table, uint32_t rank, size_t i,
                           size_t elem);

/* Heartbeat counter of row rank as seen here (0 when out of range). */
SST_EXPORT uint64_t sst_heartbeat(const struct sst_table *table, uint32_t rank);
/* Does row by_rank's suspected field mark of_rank?  (by_rank = my rank:
 * my own suspicions.) */
SST_EXPORT bool sst_suspects(const struct sst_table *table, uint32_t by_rank,
                             uint32_t of_rank);
/* Members not suspected by me (me included). */
SST_EXPORT uint32_t sst_num_live(const struct sst_table *table);

/* ---- pushing ---------------------------------------------------------- */

/* Pushes bytes [offset, offset+len) of my row's user area to every live
 * member (sst_put) or to the ranks given (sst_put_to; my own rank and
 * suspected members are skipped).  Returns once the writes are posted;
 * they land in posting order (see "Ordering").  sst_put_to with ranks NULL
 * and n_ranks 0 pushes to every live member.  Errors: -EINVAL (table NULL,
 * ranks NULL with n_ranks > 0, a rank >= the member count), -ERANGE
 * (len 0, or outside the user area), -EAGAIN the provider stayed full for
 * a second. */
SST_EXPORT int sst_put(struct sst_table *table, size_t offset, size_t len);
SST_EXPORT int sst_put_to(struct sst_table *table, const uint32_t *ranks,
                          size_t n_ranks, size_t offset, size_t len);

/* sst_put_to that never blocks: when a member's connection, the table's
 * operation contexts or its staging ring have no room right now it
 * returns -EAGAIN at once instead of driving progress for up to a second
 * (sst_put).  For callers that must not wait, e.g. a trigger.  After
 * -EAGAIN the bytes may have been posted to some of the members: push the
 * same range again later (a push carries the row's current bytes).
 * Errors as sst_put_to. */
SST_EXPORT int sst_put_try(struct sst_table *table, const uint32_t *ranks,
                           size_t n_ranks, size_t offset, size_t len);

/* Same as sst_put_to (ranks NULL: every live member), then waits until
 * every write was delivered: the bytes are in the members' memory (libfab's
 * FAB_WRITE_DELIVERED, acknowledged by their providers), driving progress.
 * A member that fails meanwhile is skipped.  Errors as sst_put_to,
 * -ETIMEDOUT after timeout_ms (< 0: no limit), -EDEADLK from the polling
 * thread. */
SST_EXPORT int sst_put_wait(struct sst_table *table, const uint32_t *ranks,
                            size_t n_ranks, size_t offset, size_t len,
                            int timeout_ms);

/* Barrier among live members: returns when every member not suspected by
 * me has entered the same (or a later) sst_sync.  -ETIMEDOUT after
 * timeout_ms (< 0: no limit), -EDEADLK from the polling thread. */
SST_EXPORT int sst_sync(struct sst_table *table, int timeout_ms);

/* Barrier with a subset of the members: returns when every member of
 * ranks[0..n_ranks) not suspected by me (my own rank and repeats are
 * ignored; ranks NULL and n_ranks 0: every member) has entered its own
 * sst_sync_ranks with a set that includes me as many times as I did with
 * it.  Counted per pair of members, independent of sst_sync and of
 * barriers over other subsets.  Errors: -EINVAL (table NULL, ranks NULL
 * with n_ranks > 0, a rank >= the member count), -ETIMEDOUT after
 * timeout_ms (< 0: no limit), -EDEADLK from the polling thread, -ENOMEM,
 * sst_put's errors. */
SST_EXPORT int sst_sync_ranks(struct sst_table *table, const uint32_t *ranks,
                              size_t n_ranks, int timeout_ms);

/* Suspects member rank on behalf of the caller (a failure seen by RDMC,
 * the application, another member's row): exactly what a heartbeat
 * timeout does (its connection is failed for every user of the pool, its
 * row frozen, my row's suspected field pushed; not pushed once some row
 * suspects me, see above), and on_suspect reports it with reason (a
 * negative errno; >= 0 is reported as -EHOSTDOWN) on the polling
 * thread.  0 also when it was suspected already (nothing
 * changes) or has closed its table.  Any thread, also from a trigger;
 * not from libfab callbacks.  -EINVAL: table NULL, rank out of range or
 * my own. */
SST_EXPORT int sst_suspect(struct sst_table *table, uint32_t rank, int reason);

/* From now on this member publishes no new suspicion, as one that knows
 * it was removed (see above): each later suspicion (heartbeat, broken
 * connection, sst_suspect) is recorded here only (row frozen, connection
 * failed, on_suspect, sst_suspects(t, me, rank)), and my row's suspected
 * field stays as it was.  For a member that stopped taking part while
 * its table still runs (e.g. libderecho's "partitioned" stop): as its
 * connections break, its row must not make members that still read it
 * remove healthy ones.  Suspicions published before stay.  Never undone.
 * Any thread, also from a trigger.  NULL: no-op. */
SST_EXPORT void sst_quiet(struct sst_table *table);

/* Wakes the polling thread (e.g. after writing a local field another
 * thread's predicate watches).  Any thread; async-signal-safe. */
SST_EXPORT void sst_notify(struct sst_table *table);

/* ---- predicates ------------------------------------------------------- */

enum sst_pred_kind {
    SST_ONE_TIME = 0, /* removed after its trigger fired once */
    SST_RECURRENT = 1 /* fires every time the predicate holds */
};

/* Evaluated on the polling thread; true fires the trigger. */
typedef bool (*sst_pred_fn)(struct sst_table *table, void *ctx);
typedef void (*sst_trigger_fn)(struct sst_table *table, void *ctx);

/* Registers (pred, trigger) with ctx; evaluated after the ones already
 * registered.  *handle (may be NULL) identifies it for removal; for
 * SST_ONE_TIME it is invalid once the trigger has run.  Any thread, also
 * from a trigger (the new predicate is first evaluated in the next pass).
 * Errors: -EINVAL (table, pred or trigger NULL, unknown kind), -ENOMEM. */
SST_EXPORT int sst_predicate_add(struct sst_table *table, sst_pred_fn pred,
                                 sst_trigger_fn trigger, void *ctx,
                                 enum sst_pred_kind kind,
                                 struct sst_pred **handle);

/* Removes a predicate.  From another thread: when it returns, the predicate
 * and its trigger are not running and will not run again.  From the
 * polling thread (any trigger, its own included): it is not evaluated
 * again.  -EINVAL for NULL; -ENOENT when handle is not registered with
 * this table any more (removed already, a one-time predicate that fired)
 * or never was (another table's): nothing is touched then.  Handles
 * carry a generation (they are not pointers to dereference): a stale
 * handle is told apart from a later registration that reuses its slot,
 * and gets -ENOENT. */
SST_EXPORT int sst_predicate_remove(struct sst_table *table,
                                    struct sst_pred *handle);

/* ---- word-atomic values ------------------------------------------------
 *
 * A push lands in the member's memory as its provider writes it: the tcp
 * provider receives a remote write straight into the row in the pieces
 * the socket returns (libfabric prov/tcp, xnet_recv_msg_data: readv into
 * the target, or a copy out of its prefetch buffer), so a reader can see
 * an aligned 8-byte counter half old, half new when a TCP segment ends
 * inside it (other traffic on the connection, e.g. RDMC blocks, moves the
 * boundaries; measured: 703 torn reads in 979 M under bulk traffic).  libsst
 * does not copy pushes aside; instead, a value that must never be seen torn
 * lives in an element of SST_WORD_SIZE bytes (a field with elem_size
 * SST_WORD_SIZE) holding the value and a check word derived from it.
 * sst_word_load() accepts the pair only when they agree: a pair caught between
 * two pieces of a write (any mix of old and new bytes, with odds of 2^-64 for a
 * mix that passes) is refused with -EAGAIN, and a later load sees the whole
 * write.  A zeroed element reads as 0.  Push the whole element (both words) in
 * one put, and do not store it while another thread of this process puts it. */
#define SST_WORD_SIZE 16

/* Stores value into the element at elem (SST_WORD_SIZE bytes, 8-aligned,
 * in my own row).  NULL: no-op.  Any thread. */
SST_EXPORT void sst_word_store(void *elem, uint64_t value);

/* Reads the element at elem: 0 and *value, or -EAGAIN when it is being
 * written (read again later, e.g. in the next predicate pass), -EINVAL
 * for NULL.  Any thread. */
SST_EXPORT int sst_word_load(const void *elem, uint64_t *value);

/* ---- statistics ------------------------------------------------------- */

struct sst_stats {
    uint64_t puts;       /* writes posted (one per member per put) */
    uint64_t wakeups;    /* times the polling thread woke from sleep */
    uint64_t triggers;   /* triggers fired */
    uint64_t heartbeats; /* heartbeats sent */
    uint64_t suspicions; /* members suspected */
};
SST_EXPORT void sst_get_stats(struct sst_table *table, struct sst_stats *st);

/* The longest time, in ms, that this process did not run as the table's
 * timer thread saw it (a check that came that much later than planned:
 * the process was stopped, e.g. by SIGSTOP, or starved of CPU) since the
 * table was created; 0 for none or NULL.  A stall of suspect_timeout_ms
 * or more means the other members suspected this one meanwhile (its
 * heartbeat did not advance): the layer above can tell "I was removed"
 * from "the others failed" when it resumes to find every connection
 * failed.  Stalls shorter than half of suspect_timeout_ms are not
 * recorded.  Any thread. */
SST_EXPORT uint64_t sst_self_stall_ms(const struct sst_table *table);

#ifdef __cplusplus
}
#endif

#endif
