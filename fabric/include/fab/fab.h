/* libfab: the transport endpoint layer shared by libsst and librdmc.
 *
 * One struct fab_pool owns a libfabric fabric + domain (provider and domain
 * name from struct fab_options), a TCP bootstrap listener on one port, a
 * passive endpoint, and at most one FI_EP_MSG connection per peer node id.
 * Users (an SST table, an RDMC group, ...) are struct fab_user objects that
 * borrow connections by node id (reference counted); a live peer is
 * bootstrapped once and never again while it stays connected, however many
 * users come and go.  A connection that breaks is reported once to every
 * user that holds it (struct fab_user_callbacks.on_failure) and every later
 * operation on it fails fast with -ECONNRESET (or the reason given to
 * fab_pool_fail_peer, e.g. -EHOSTDOWN).
 *
 * Data plane: registered memory (struct fab_mr), one-sided writes of a local
 * range into (peer, remote offset) of the peer's region (fab_write,
 * fab_writedata with remote completion data), two-sided fab_send/fab_recv.
 * Completions carry a caller-owned struct fab_op.
 *
 * Progress (read this): the tcp provider moves data only while the program
 * calls into it.  Every connection has its own completion queue; all of them
 * are driven by whichever thread calls fab_pool_progress() (or
 * fab_pool_progress_wait()).  Writes a peer makes into our memory land only
 * while some thread of ours drives progress.  The pool's own thread
 * ("fab-pool") serves the bootstrap listener and the connection-management
 * event queue (connects, FI_SHUTDOWN); it never reads completion queues.
 * It serves bootstrap sockets without blocking on any of them, so idle or
 * hostile connections to the port cannot delay connection events, failure
 * reports or other peers (docs/fab.md, "Bootstrap limits").
 *
 * Threading:
 *  - fab_pool_create/destroy: one thread; destroy after every user is gone.
 *  - fab_user_*, fab_borrow, fab_release, fab_mr_*, fab_pool_publish/
 *    unpublish/fetch, fab_pool_fail_peer: any thread (the pool has a mutex).
 *  - fab_write/fab_writedata/fab_send/fab_recv: any thread; operations on one
 *    connection posted by one thread are posted in that order.
 *  - fab_pool_progress*: any thread; concurrent callers are serialised (a
 *    caller that finds another thread progressing returns 0 at once).
 *  - struct fab_op.done and on_remote_data run on the thread that called
 *    fab_pool_progress*; on_failure runs on the pool's thread.  (The pool
 *    thread also drains connections that nobody borrows, so a dead peer is
 *    noticed; a completion racing with the first borrow of such a
 *    connection may therefore run on the pool's thread.)  Callbacks
 *    must not block and must not call fab_pool_progress*, fab_borrow,
 *    fab_user_destroy or fab_pool_destroy; they may post operations and call
 *    fab_release.
 *  - Callbacks run with no libfab lock held: a lock the caller holds
 *    around any libfab call may also be taken inside a callback.
 *    on_failure calls are made by the pool's thread alone, one at a time,
 *    in the order the failures were found; each user sees each failed
 *    connection once.  fab_user_destroy (from another thread) returns only
 *    when no on_failure of that user is running, and none starts after it
 *    began, so the user's ctx may be freed when it returns.
 *
 * Errors: 0 or a negative errno; libfabric's negative codes pass through.
 * fab_strerror() names both.  Where a number is not enough, struct fab_error
 * (optional) says what went wrong, e.g. which bootstrap field differs.
 */
#ifndef DERECHO_FAB_H
#define DERECHO_FAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FAB_EXPORT __attribute__((visibility("default")))

/* Bootstrap wire protocol version (docs/fab.md, "Bootstrap"). */
#define FAB_PROTOCOL_VERSION 1

struct fab_pool;
struct fab_user;
struct fab_conn;
struct fab_mr;

/* Optional detail for a failed call: code (= the return value) and a
 * human-readable message, e.g. "bootstrap: fingerprint differs (local
 * 0x1, peer 0x2)".  Always NUL-terminated. */
struct fab_error {
    int code;
    char msg[256];
};

typedef void (*fab_log_fn)(void *ctx, int level, const char *module,
                           const char *msg);

/* How FAB_WRITE_FENCE orders a write after earlier ones (docs/fab.md,
 * "Write ordering").  AUTO: free when the provider promises FI_ORDER_WAW,
 * else FI_FENCE when supported, else a completion wait.  FENCE and WAIT
 * force those mechanisms (FENCE needs FI_FENCE: -ENOTSUP at create), for
 * providers whose promise is in doubt and for tests. */
enum fab_write_ordering {
    FAB_ORDERING_AUTO = 0,
    FAB_ORDERING_FENCE = 1,
    FAB_ORDERING_WAIT = 2,
};

/* Options of a pool.  Initialise with fab_options_init(), then override. */
struct fab_options {
    size_t size;             /* sizeof(struct fab_options) */
    const char *provider;    /* "tcp" (default), "sockets", "verbs", ... */
    const char *domain;      /* "lo", "eth0", "mlx5_0"; NULL: provider's pick */
    uint32_t node_id;        /* my node id (unique in the system; not
                                UINT32_MAX, which means "none") */
    const char *listen_addr; /* IPv4 address to listen on; default
                                "127.0.0.1" */
    uint16_t port;           /* bootstrap port; 0 = any (fab_pool_port) */
    uint64_t fingerprint;    /* compatibility fingerprint supplied by the
                                layer above; peers must agree */
    int connect_timeout_ms;  /* default for fab_borrow (default 5000) */
    size_t cq_size;          /* completion queue entries per connection
                                (default 1024, at most 2^20) */
    size_t max_outstanding;  /* posted but uncompleted operations per
                                connection (default 512); beyond: -EAGAIN */
    int write_ordering;      /* enum fab_write_ordering (default AUTO) */
    fab_log_fn log;          /* NULL: stderr, "fab: LEVEL: message" with
                                LEVEL error, warning, info or debug */
    void *log_ctx;
    int log_level; /* syslog level, default LOG_WARNING */
    /* ---- added after the first version (a caller's smaller size leaves
     * them at their defaults; docs/fab.md, "Bootstrap limits" and
     * "Authentication") ---- */
    /* Shared group key: when auth_key_len > 0 every bootstrap exchange
     * (borrow, fetch) runs a challenge-response keyed with it (HMAC-SHA-256)
     * in both directions before the listener keeps any per-peer state; a
     * peer without the same key is refused with -EACCES.  The bytes are
     * copied at fab_pool_create (the caller may wipe its buffer then);
     * FAB_AUTH_KEY_MIN..FAB_AUTH_KEY_MAX bytes.  Default NULL/0: no
     * authentication, the wire stays as in the first version. */
    const void *auth_key;
    size_t auth_key_len;
    /* An accepted bootstrap connection must complete within this many ms
     * (default 2000; never more than connect_timeout_ms); then it is
     * closed. */
    int bootstrap_timeout_ms;
    /* Accepted bootstrap connections served at once (default 64, at most
     * 65536): one more closes the oldest, so idle sockets held open
     * cannot keep a peer out or grow memory. */
    uint32_t bootstrap_max_conns;
    /* HELLOs answered and awaiting their connection request (default 256,
     * at most 65536; at most 4 per node id): one more drops the oldest. */
    uint32_t bootstrap_max_pending;
    size_t cq_data_limit; /* use at most this many bytes of remote CQ data
                             (0, default: what the provider carries).  4
                             makes tcp behave as verbs, which carries 4:
                             fab_pool_get_info reports the smaller size and
                             fab_writedata refuses wider words.  Every pool
                             of a system must use the same value. */
};

/* Sizes a group key may have (fab_options.auth_key_len). */
#define FAB_AUTH_KEY_MIN 16
#define FAB_AUTH_KEY_MAX 1024

/* Fills defaults (see the fields).  opts->size must be set by the caller or
 * is set here. */
FAB_EXPORT void fab_options_init(struct fab_options *opts);

/* Reads a group key file (docs/fab.md, "Authentication"): its bytes, as
 * they are, into buf (cap bytes, caller-owned; FAB_AUTH_KEY_MAX is always
 * enough), *len = their number.  Make one with
 *     head -c 32 /dev/urandom > group.key && chmod 600 group.key
 * Errors (err, may be NULL, names the file and the reason): -EINVAL (NULL
 * argument, not a regular file, empty or shorter than FAB_AUTH_KEY_MIN),
 * -EFBIG (longer than FAB_AUTH_KEY_MAX), -ENOSPC (longer than cap), -EPERM
 * (others may read or write it: chmod o-rwx), open/read errors (-ENOENT,
 * -EACCES, -EIO, ...).  Nothing is logged; buf holds key bytes on success
 * only (wipe it after fab_pool_create).  Any thread. */
FAB_EXPORT int fab_auth_key_read(const char *path, void *buf, size_t cap,
                                 size_t *len, struct fab_error *err);

/* Describes an error code: ours (negative errno) or libfabric's, either
 * sign (fab_strerror(e) equals fab_strerror(-e)); every code libfab returns
 * has its own text (one table), libfabric's own codes go to fi_strerror,
 * any other errno gets the system's text, and only a number that is no
 * error code reads "unknown error".  Never NULL; thread-safe (never calls
 * strerror()). */
FAB_EXPORT const char *fab_strerror(int err);

/* ---- pool ------------------------------------------------------------- */

/* Opens fabric and domain for opts->provider/domain, starts the bootstrap
 * listener and the pool thread.  opts NULL means every default (node id 0,
 * tcp on 127.0.0.1, any port); opts is read during the call only.  *out is
 * owned by the caller (destroy with fab_pool_destroy); on failure it is
 * set to NULL.  Errors: -EINVAL bad options (out NULL; opts->size neither
 * this version's sizeof(struct fab_options) nor the first version's --
 * the fields up to log_level, the later ones then take their defaults --
 * nor larger with every extra byte zero, as a newer header's struct with
 * its newer fields at their defaults; auth_key_len outside
 * FAB_AUTH_KEY_MIN..FAB_AUTH_KEY_MAX or auth_key NULL with a length;
 * negative bootstrap_timeout_ms, bootstrap limits over 65536; provider longer
 * than 31 bytes, domain or listen_addr longer than 63; listen_addr not an
 * IPv4 address; unknown write_ordering; cq_size over 2^20; node_id
 * listener and the pool thread.  *out is owned by the caller (destroy with
 * fab_pool_destroy); on failure it is set to NULL.  Errors: -EINVAL bad
 * options (opts or out NULL; opts->size smaller than the first layout,
 * which ends with log_level -- a size between it and this version's is an
 * older caller: the missing fields take their defaults; a larger size from
 * a newer header is accepted and the fields it adds are ignored; provider
 * longer than 31 bytes, domain or listen_addr longer than 63; listen_addr not
 * an IPv4 address; unknown write_ordering; cq_size over 2^20; node_id
 * UINT32_MAX), -FI_ENODATA no matching provider/device (e.g. verbs without
 * an RDMA NIC, an unknown provider name), -EADDRINUSE, other libfabric
 * codes; err (may be NULL) gets a message. */
FAB_EXPORT int fab_pool_create(const struct fab_options *opts,
                               struct fab_pool **out, struct fab_error *err);

/* Closes every connection, stops and joins the pool thread, frees the pool.
 * NULL is a no-op.  Users (and the SST tables and RDMC groups they belong
 * to) must have been destroyed: with users left, or called from a callback
 * of the pool, it logs an error and does nothing (destroy them first, then
 * call it again). */
FAB_EXPORT void fab_pool_destroy(struct fab_pool *pool);

/* The bootstrap TCP port the pool listens on (0 for NULL) and the pool's
 * node id (UINT32_MAX for NULL). */
FAB_EXPORT uint16_t fab_pool_port(const struct fab_pool *pool);
FAB_EXPORT uint32_t fab_pool_node_id(const struct fab_pool *pool);

/* What the provider does, as the pool found it. */
struct fab_pool_info {
    char provider[32];
    char domain[64];
    uint64_t mr_mode;     /* FI_MR_* bits in force */
    uint64_t mode;        /* FI_* mode bits in force (FI_RX_CQ_DATA) */
    uint64_t msg_order;   /* tx msg_order (FI_ORDER_*) */
    size_t cq_data_size;  /* bytes of remote CQ data (fab_writedata) */
    size_t max_msg_size;  /* largest single write or send */
    bool ordered_writes;  /* two writes to one peer land in order
                             (FI_ORDER_WAW); else FAB_WRITE_FENCE works
                             by fence or by completion wait */
    bool fence;           /* provider supports FI_FENCE */
    bool manual_progress; /* data moves only while progressed; we treat
                             tcp as manual whatever fi_info says */
};
/* A NULL pool zeroes *info; a NULL info is ignored. */
FAB_EXPORT void fab_pool_get_info(const struct fab_pool *pool,
                                  struct fab_pool_info *info);

/* The longest write FAB_WRITE_INJECT accepts (the provider's inject size
 * with tcp; 0: none, a NULL pool, providers with their own progress
 * threads (sockets lost injected writes' completion data) or
 * FAB_ORDERING_WAIT).  Any thread. */
FAB_EXPORT size_t fab_pool_inject_size(const struct fab_pool *pool);

/* Counters, for tests and monitoring. */
struct fab_pool_stats {
    uint64_t bootstraps_out;     /* bootstrap exchanges we initiated, OK */
    uint64_t bootstraps_in;      /* bootstrap exchanges we accepted, OK
                                    (counted when the peer's connection
                                    request matches our answer) */
    uint64_t bootstraps_refused; /* incoming exchanges refused or dropped
                                    (bad frame, mismatch, authentication,
                                    timed out, closed as the oldest) */
    uint64_t connections;        /* connections established, total */
    uint64_t live;               /* connections live now */
    uint64_t failures;           /* connections that failed */
};
/* A NULL pool zeroes *stats; a NULL stats is ignored. */
FAB_EXPORT void fab_pool_get_stats(struct fab_pool *pool,
                                   struct fab_pool_stats *stats);

/* Drives the connections' completion queues in turn, from where the last
 * call stopped, until one had completions: reads them and dispatches them
 * (struct fab_op.done, on_remote_data), then returns, so the caller answers
 * them before the other connections are polled (the next call starts
 * after that connection: none waits behind a busy one).  A call that
 * returns 0 polled every connection once.  Returns the number of
 * completions handled (>= 0) or a negative errno.  Returns 0 at once when
 * another thread is progressing. */
FAB_EXPORT int fab_pool_progress(struct fab_pool *pool);

/* Spin, then sleep: calls fab_pool_progress repeatedly for up to spin_us
 * microseconds; returns as soon as something was handled.  Then, when it
 * is safe (fi_trywait), blocks on the pool's wait fd for up to timeout_ms
 * (< 0: no limit, 0: do not block), is woken by completions, incoming data
 * on any connection, or fab_pool_wake(), progresses once more and returns
 * the number handled (may be 0). */
FAB_EXPORT int fab_pool_progress_wait(struct fab_pool *pool, int spin_us,
                                      int timeout_ms);

/* An epoll fd that becomes readable when any connection's completion queue
 * may have work or fab_pool_wake() was called; for the owner thread's own
 * epoll set.  Before sleeping on it call fab_pool_trywait(); after waking
 * call fab_pool_progress().  Owned by the pool.  -EINVAL for NULL. */
FAB_EXPORT int fab_pool_wait_fd(const struct fab_pool *pool);

/* 0 when it is safe to sleep on fab_pool_wait_fd(), -EAGAIN when there is
 * work to progress first (fi_trywait over every completion queue). */
FAB_EXPORT int fab_pool_trywait(struct fab_pool *pool);

/* Wakes a thread sleeping in fab_pool_progress_wait (or on the wait fd).
 * Any thread, also from signal-free callbacks.  NULL: no-op. */
FAB_EXPORT void fab_pool_wake(struct fab_pool *pool);

/* Declares a peer failed for every user of the pool (e.g. an SST suspected
 * it): its connection is shut down, on_failure is reported once to each
 * user holding it, and later operations fail with `reason` (a negative
 * errno, e.g. -EHOSTDOWN).  -ENOENT if the pool has no connection to it. */
FAB_EXPORT int fab_pool_fail_peer(struct fab_pool *pool, uint32_t node_id,
                                  int reason);

/* Small blobs exchanged through the bootstrap port, outside the data path:
 * publish makes a copy of blob (<= FAB_BLOB_MAX bytes) available to peers
 * under key (replacing an older one); fetch asks node_id (which must be
 * borrowed) for its blob under key and retries until it is published or
 * timeout_ms passes (-ETIMEDOUT).  *len gets the blob size; -ENOSPC when
 * cap is too small; -EACCES when bootstrap authentication fails (as
 * fab_borrow); -EPROTO incompatible peer.  Used to exchange fab_mr_desc and
 * schema fingerprints at table/group set-up. */
#define FAB_BLOB_MAX 4096
FAB_EXPORT int fab_pool_publish(struct fab_pool *pool, uint64_t key,
                                const void *blob, size_t len);
FAB_EXPORT int fab_pool_unpublish(struct fab_pool *pool, uint64_t key);
FAB_EXPORT int fab_pool_fetch(struct fab_pool *pool, uint32_t node_id,
                              uint64_t key, void *buf, size_t cap, size_t *len,
                              int timeout_ms, struct fab_error *err);

/* ---- rendezvous ------------------------------------------------------- *
 * The set-up exchange of libsst and librdmc, written once: connect to every
 * peer (a refused bootstrap means its process is not listening yet: try
 * again), fetch every peer's blob under one key, hand it to the caller to
 * compare, and name the peer that is missing when time runs out.  The
 * caller publishes its own blob (fab_pool_publish) before, and may publish
 * it again from its callbacks. */

/* A member: its node id and where its pool's bootstrap listener is (used
 * only when the pool has no live connection to it yet).  libsst's
 * struct sst_member and librdmc's struct rdmc_member are this struct under
 * their old names. */
struct fab_member {
    uint32_t node_id;
    const char *host; /* IPv4 address or name; copied by fab_borrow */
    uint16_t port;
};

/* What a check makes of a peer's blob. */
#define FAB_RENDEZVOUS_DONE 0  /* this peer is done */
#define FAB_RENDEZVOUS_AGAIN 1 /* not yet the blob awaited: fetch again */
#define FAB_RENDEZVOUS_CHANGED                                                 \
    2 /* as AGAIN, and something changed (no                                   \
         pause before the next pass) */

/* The caller's part; every callback runs on the thread that called
 * fab_rendezvous, without any libfab lock held (it may publish, fetch,
 * borrow).  index is the peer's place in members[]. */
struct fab_rendezvous_ops {
    /* A peer's blob (len bytes, valid during the call): FAB_RENDEZVOUS_*
     * or a negative errno that ends the rendezvous (fill err).
     * Required. */
    int (*check)(void *ctx, size_t index, const void *blob, size_t len,
                 struct fab_error *err);
    /* No blob from the peer within FAB_RENDEZVOUS_SLICE_MS, or its
     * bootstrap refused every connection for that long (not listening
     * yet, or gone; then the peer is not borrowed): 0 to keep waiting, or
     * a negative errno that ends the rendezvous.  Called again every
     * FAB_RENDEZVOUS_SLICE_MS while it lasts.  May be NULL. */
    int (*waiting)(void *ctx, size_t index, struct fab_error *err);
    /* The peer failed with rc (why->msg names it and the step: connecting,
     * fetching, its connection failed, or -ETIMEDOUT at the deadline): 0
     * drops it (no more steps for it; the rendezvous goes on), a negative
     * errno ends the rendezvous.  NULL: every failure ends it, err = why. */
    int (*failed)(void *ctx, size_t index, int rc, const struct fab_error *why,
                  struct fab_error *err);
};

#define FAB_RENDEZVOUS_SLICE_MS 100

/* Runs the rendezvous of the caller's member with members[0..n) (n <=
 * 65536) over user's pool: every member whose node id is not the pool's
 * own and whose skip[i] is false (skip may be NULL) is borrowed into
 * conns[i] unless conns[i] already holds the caller's borrow (the caller
 * owns the borrows afterwards, also on failure: fab_release each non-NULL
 * entry; entries of skipped members are left as they were)
 * and its blob under key fetched until ops->check says DONE, within
 * timeout_ms (> 0) for all of them.  Between passes in which nothing
 * moved it pauses 100 us, doubling up to 2 ms.
 * Returns 0 when every peer is done or dropped; the first negative errno
 * of a callback or failure otherwise (err filled, naming the peer); -EINVAL
 * on bad arguments.  Any thread but a libfab callback (it blocks). */
FAB_EXPORT int fab_rendezvous(struct fab_user *user,
                              const struct fab_member *members, size_t n,
                              const bool *skip, uint64_t key, int timeout_ms,
                              const struct fab_rendezvous_ops *ops, void *ctx,
                              struct fab_conn **conns, struct fab_error *err);

/* ---- users and connections -------------------------------------------- */

struct fab_user_callbacks {
    /* The connection to node_id broke (reason -ECONNRESET, -ETIMEDOUT, or
     * the reason given to fab_pool_fail_peer).  Called once per user per
     * connection, on the pool's thread.  May be NULL.  A peer that dies
     * silently (kill -9, power loss) is noticed through the connection's
     * completion queue, which only progress reads: a user that borrows
     * connections but whose program never calls fab_pool_progress*() (and
     * posts nothing) may never hear of a dead peer; the pool thread reads
     * only connections nobody borrows (docs/fab.md, "Failures"). */
    void (*on_failure)(void *ctx, uint32_t node_id, int reason);
    /* A peer's fab_writedata landed: its data word.  Called on the
     * progressing thread.  A user that claimed a tag
     * (fab_user_claim_tag) gets the words carrying its tag, and only
     * those; every other user holding that connection gets every word
     * (users filter by their own encoding), however many there are.  May
     * be NULL. */
    void (*on_remote_data)(void *ctx, uint32_t node_id, uint64_t data);
};

/* ---- tagged completion data -------------------------------------------- *
 * A user may claim a data tag (fab_user_claim_tag).  A writer that knows
 * the tag a peer's user claimed puts it into the remote CQ data word with
 * fab_data_word(); the peer's pool then hands that word to that user only,
 * looked up in a table (O(1), however many users share the connection).
 * The word has FAB_DATA_PAYLOAD_BITS bits of the caller's own (the payload:
 * data & FAB_DATA_PAYLOAD_MAX), on every provider that carries at least 4
 * bytes of CQ data (verbs included).  Users without a tag keep getting
 * every word of every connection they hold, tagged or not.
 *
 * Layout (docs/fab.md): with 4 bytes of CQ data, tag << 20 | payload;
 * with 8, FAB_DATA_MARK << 32 | tag << 20 | payload (the mark keeps the
 * words of untagged users, which never set it, from reaching tagged ones). */
#define FAB_DATA_TAG_BITS 12u
#define FAB_DATA_TAG_MAX ((1u << FAB_DATA_TAG_BITS) - 1) /* tags 1..4095 */
#define FAB_DATA_PAYLOAD_BITS 20u
#define FAB_DATA_PAYLOAD_MAX ((1u << FAB_DATA_PAYLOAD_BITS) - 1)
#define FAB_DATA_MARK 0xFAB7A6E0u
#define FAB_DATA_TAG_ANY 0u /* fab_user_claim_tag: the pool picks one */

/* A borrower of connections.  cbs is copied; ctx is passed back.
 * Errors: -EINVAL, -ENOMEM. */
FAB_EXPORT int fab_user_create(struct fab_pool *pool,
                               const struct fab_user_callbacks *cbs, void *ctx,
                               struct fab_user **out);

/* Releases every connection the user still holds and frees it.  After it
 * returns no callback of this user runs.  Completions of operations still
 * in flight are not reported to this user's fab_ops any more once their
 * connection is closed; keep op memory until the user is destroyed.  NULL
 * is a no-op. */
FAB_EXPORT void fab_user_destroy(struct fab_user *user);

/* Claims a data tag for user: from then on the user's on_remote_data
 * gets exactly the words built with fab_data_word(pool, tag, ...) by any
 * peer, from any connection of the pool (node_id says which peer wrote),
 * and no other word.  want is a tag in 1..FAB_DATA_TAG_MAX (peers agree on
 * a value) or FAB_DATA_TAG_ANY (the pool picks a free one, not the one
 * freed last: tell the peers, e.g. in a published blob).  *tag (may be NULL)
 * gets it.  The tag is freed by fab_user_destroy.  Errors: -EINVAL (NULL
 * user, want over FAB_DATA_TAG_MAX), -EALREADY (the user has a tag),
 * -EBUSY (another user holds want), -ENOSPC (every tag is taken),
 * -ENOTSUP (the pool carries fewer than 4 bytes of CQ data).  Any thread,
 * not from a callback of the pool. */
FAB_EXPORT int fab_user_claim_tag(struct fab_user *user, uint32_t want,
                                  uint32_t *tag);

/* The tag the user claimed, 0 when none (or user NULL). */
FAB_EXPORT uint32_t fab_user_tag(const struct fab_user *user);

/* The remote CQ data word that carries payload (its low
 * FAB_DATA_PAYLOAD_BITS bits) to the user of a peer's pool that claimed
 * tag (1..FAB_DATA_TAG_MAX; other values give 0, a word no tagged user
 * gets).  Depends only on the pool's CQ data size: peers with the same
 * provider and cq_data_limit agree.  Pure, any thread. */
FAB_EXPORT uint64_t fab_data_word(const struct fab_pool *pool, uint32_t tag,
                                  uint32_t payload);

/* Borrows the connection to node_id, whose pool listens at host:port
 * (IPv4 dotted quad or name).  If the pool already has a live connection to
 * node_id it is returned at once (host/port unused); otherwise the pool
 * bootstraps and connects, within timeout_ms (<0: the pool's default).
 * Simultaneous borrows from both sides end in one connection (the one
 * initiated by the lower node id).  Borrowing twice counts twice.
 * *out is set to NULL on failure.  host NULL or "" means no address (fine
 * when the connection is live).  Errors: -EINVAL (user or out NULL,
 * node_id is the pool's own, no address or port 0 when one is needed, host
 * longer than 63 bytes or not resolvable), -ETIMEDOUT, -ECONNREFUSED,
 * -EDEADLK (called on the pool's thread, i.e. from on_failure, and the
 * connection is not live: setting it up needs that thread), -EPROTO
 * (incompatible peer: err->msg names the field), -EACCES (bootstrap
 * authentication refused, either way: the peer has another group key, or
 * none while we have one, or requires one we lack; err->msg says which),
 * -EHOSTDOWN (connection
 * to node_id failed and is still held by some user), libfabric codes. */
FAB_EXPORT int fab_borrow(struct fab_user *user, uint32_t node_id,
                          const char *host, uint16_t port, int timeout_ms,
                          struct fab_conn **out, struct fab_error *err);

/* Gives back one borrow.  A failed connection is closed when its last
 * borrow goes; a healthy one stays in the pool for the next user.  NULL
 * arguments, or a conn this user does not hold (any more), are ignored. */
FAB_EXPORT void fab_release(struct fab_user *user, struct fab_conn *conn);

/* UINT32_MAX for NULL. */
FAB_EXPORT uint32_t fab_conn_node_id(const struct fab_conn *conn);

/* 0 while healthy, else the failure reason (negative errno); -EINVAL for
 * NULL. */
FAB_EXPORT int fab_conn_status(const struct fab_conn *conn);

/* ---- memory regions and addressing ------------------------------------ */

/* What a peer needs to write into one of my regions.  Exchange it with
 * fab_mr_desc_encode/decode (a fixed little-endian layout). */
struct fab_mr_desc {
    uint64_t key;  /* remote protection key */
    uint64_t base; /* address of offset 0 as the provider wants it: the
                      virtual address under FI_MR_VIRT_ADDR, else 0 */
    uint64_t len;  /* bytes */
};
#define FAB_MR_DESC_SIZE 24
FAB_EXPORT void fab_mr_desc_encode(const struct fab_mr_desc *desc,
                                   uint8_t out[FAB_MR_DESC_SIZE]);
/* -EBADMSG if len != FAB_MR_DESC_SIZE or base + len overflows. */
FAB_EXPORT int fab_mr_desc_decode(const uint8_t *in, size_t len,
                                  struct fab_mr_desc *desc);

/* How a provider's MR modes translate into what we do (pure). */
struct fab_mr_rules {
    bool virt_addr;  /* remote address = base (virtual address) + offset;
                        otherwise the offset itself */
    bool prov_key;   /* provider picks keys (fi_mr_key after registering);
                        otherwise we pick unique requested keys */
    bool local_desc; /* local buffers need fi_mr_desc() in every op */
    bool allocated;  /* only allocated (backed) memory may be registered */
    bool rx_cq_data; /* remote CQ data consumes a posted receive: the pool
                        keeps receives posted for it and two-sided fab_recv
                        is not available (-ENOTSUP) */
};
/* From fi_info's domain_attr->mr_mode and mode.  FI_MR_BASIC means
 * VIRT_ADDR|ALLOCATED|PROV_KEY; FI_MR_SCALABLE means none.  -ENOTSUP for
 * FI_MR_RAW, FI_MR_ENDPOINT, FI_MR_MMU_NOTIFY, FI_MR_RMA_EVENT,
 * FI_MR_HMEM, FI_MR_COLLECTIVE (not requested by us). */
FAB_EXPORT int fab_mr_rules_from_modes(uint64_t mr_mode, uint64_t mode,
                                       struct fab_mr_rules *rules);

/* The desc.base a region at local virtual address addr publishes. */
FAB_EXPORT uint64_t fab_mr_rules_base(const struct fab_mr_rules *rules,
                                      const void *addr);

/* The address to hand to fi_write for bytes [offset, offset+len) of the
 * remote region desc.  -ERANGE when the range leaves the region (or
 * overflows), -EINVAL on NULL. */
FAB_EXPORT int fab_mr_remote_addr(const struct fab_mr_rules *rules,
                                  const struct fab_mr_desc *desc,
                                  uint64_t offset, uint64_t len,
                                  uint64_t *addr);

#define FAB_ACCESS_LOCAL 0x1u        /* source of writes/sends, recv target */
#define FAB_ACCESS_REMOTE_WRITE 0x2u /* peers may write into it */
#define FAB_ACCESS_REMOTE_READ 0x4u  /* peers may read it */

/* Registers the caller's buffer [buf, buf+len) with the pool's domain (valid
 * on every connection of the pool).  The buffer stays the caller's and must
 * outlive the region.  Errors: -EINVAL (NULL, len 0, a range that wraps,
 * access 0 or unknown bits), -ENOMEM, libfabric codes. */
FAB_EXPORT int fab_mr_register(struct fab_pool *pool, void *buf, size_t len,
                               unsigned access, struct fab_mr **out);
/* Deregisters.  Operations using it must have completed.  NULL: no-op. */
FAB_EXPORT void fab_mr_destroy(struct fab_mr *mr);
/* A NULL mr gives a zeroed desc, NULL and 0. */
FAB_EXPORT void fab_mr_get_desc(const struct fab_mr *mr,
                                struct fab_mr_desc *desc);
FAB_EXPORT void *fab_mr_addr(const struct fab_mr *mr);
FAB_EXPORT size_t fab_mr_len(const struct fab_mr *mr);

/* ---- operations ------------------------------------------------------- */

/* A caller-owned operation context.  Set done/ctx, pass it to one operation
 * and keep it alive and untouched until done runs (or the user is
 * destroyed).  The rest is filled by libfab before done runs. */
struct fab_op {
    void (*done)(struct fab_op *op, int status); /* may be NULL */
    void *ctx;
    uint32_t node_id; /* peer of the operation */
    int status;       /* 0 or negative errno (libfabric error decoded) */
    size_t len;       /* bytes received (fab_recv) */
    uint64_t data;    /* remote CQ data of a receive, if any */
    void *internal[2];
};

/* fab_write flag: this write must land after every earlier write to the
 * same peer (guard pattern: payload, then counter).  Free when the provider
 * orders writes (FI_ORDER_WAW); otherwise FI_FENCE, or waiting (driving
 * progress) until earlier writes on the connection completed. */
#define FAB_WRITE_FENCE 0x1u
/* fab_write/fab_writedata/fab_send flag: complete only once the bytes are
 * in the peer's memory (FI_DELIVERY_COMPLETE: the peer's provider
 * acknowledges, which needs the peer to progress).  Without it a
 * completion means the source buffer may be reused (transmit complete):
 * the bytes may still be on their way. */
#define FAB_WRITE_DELIVERED 0x2u
/* fab_write/fab_writedata flag: the provider copies the source bytes
 * before the call returns (FI_INJECT), so the buffer may be reused at once
 * and no completion is made: op must be NULL and FAB_WRITE_DELIVERED is
 * not allowed (-EINVAL), len at most fab_pool_inject_size (-EMSGSIZE).
 * The write is not counted by fab_conn_outstanding; a failure fails the
 * connection (on_failure).  For small pushes (a counter): the sender is
 * spared a completion, and on tcp a wake-up per write. */
#define FAB_WRITE_INJECT 0x4u

/* One-sided write of src[src_off, src_off+len) into the peer's region
 * dst at dst_off.  op may be NULL (no notification).  Returns 0 once
 * posted; the completion comes through progress.  Errors: -EINVAL (NULL
 * conn, src or dst, unknown flags, src registered with another pool),
 * -ERANGE (outside a region), -ECONNRESET/-EHOSTDOWN (connection failed,
 * at once), -EAGAIN (too many outstanding: progress and retry). */
FAB_EXPORT int fab_write(struct fab_conn *conn, const struct fab_mr *src,
                         size_t src_off, size_t len,
                         const struct fab_mr_desc *dst, uint64_t dst_off,
                         unsigned flags, struct fab_op *op);

/* Same, with remote completion data: the peer's progressing thread gets
 * on_remote_data(node_id = mine, data) after the bytes landed.  -ERANGE
 * when data does not fit the provider's cq_data_size. */
FAB_EXPORT int fab_writedata(struct fab_conn *conn, const struct fab_mr *src,
                             size_t src_off, size_t len,
                             const struct fab_mr_desc *dst, uint64_t dst_off,
                             uint64_t data, unsigned flags, struct fab_op *op);

/* Two-sided messages.  Receives on a connection match sends in posting
 * order, whoever posted them: users sharing a pool must agree on who posts
 * receives (or use separate pools).  fab_recv: -ENOTSUP under
 * FI_RX_CQ_DATA.  Other errors as fab_write.  fab_send_flags takes
 * FAB_WRITE_DELIVERED; fab_send is fab_send_flags with 0. */
FAB_EXPORT int fab_send(struct fab_conn *conn, const struct fab_mr *src,
                        size_t off, size_t len, struct fab_op *op);
FAB_EXPORT int fab_send_flags(struct fab_conn *conn, const struct fab_mr *src,
                              size_t off, size_t len, unsigned flags,
                              struct fab_op *op);
FAB_EXPORT int fab_recv(struct fab_conn *conn, const struct fab_mr *dst,
                        size_t off, size_t len, struct fab_op *op);

/* Operations posted on conn and not completed yet (0 for NULL).  Writes
 * posted without an op on a provider that orders writes and is progressed
 * by hand (tcp) ask for no local completion and are not counted. */
FAB_EXPORT size_t fab_conn_outstanding(const struct fab_conn *conn);

#ifdef __cplusplus
}
#endif

#endif
