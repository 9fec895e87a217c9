/* librdmc: reliable multicast of large messages relayed in blocks.
 *
 * A group is an ordered list of member node ids; rank 0 is the only sender.
 * A message is cut into block_size blocks and every member relays blocks to
 * others along a schedule (binomial pipeline, chain, sequential, tree), so
 * the sender's link is not the bottleneck.  Messages sent back to back are
 * pipelined (up to `window` in flight) and delivered in send order at every
 * receiver.
 *
 * Transport: libfab (<fab/fab.h>).  A group borrows one connection per peer
 * from a caller-owned struct fab_pool; many groups live over one pool at
 * once (a live peer is never bootstrapped again).  Blocks and control
 * messages are one-sided fab_writedata operations whose remote CQ data
 * carries the receiving group's libfab data tag (rdmc_data_encode below),
 * so the receiver's pool hands each word to its group alone, in 4 bytes of
 * CQ data (verbs) as in 8 (tcp), however many groups share a connection.  A
 * block
 * is written only after its receiver signalled that its destination buffer
 * is registered (a READY control message carrying the region's descriptor):
 * that is the flow control.
 *
 * Schedules are pure functions (rdmc_schedule_*), usable without a network.
 *
 * Threading:
 *  - rdmc_group_create/destroy: any thread, not from a callback.
 *  - rdmc_send, rdmc_group_*: any thread, also from callbacks of the group.
 *  - By default each group owns one thread ("rdmc-<group_id>") that drives
 *    the pool's progress (spinning for spin_us, then sleeping on the pool's
 *    wait fd) and checks timeouts.  With options.threading
 *    RDMC_THREAD_CALLER a group has no thread: the caller's thread drives
 *    it (one thread may serve every group) with rdmc_groups_poll.
 *  - Since libfab runs completion callbacks on whichever thread
 *    progresses, a group's callbacks may run on any progressing thread of
 *    the pool (this group's, another group's, a thread in
 *    rdmc_groups_poll) or on the pool's thread; never two callbacks of one
 *    group at once, and never inside rdmc_send.  Every callback
 *    (`incoming`, `incoming_mr`, `complete`, `failure`) runs with no
 *    librdmc lock held (collected, then made after unlocking), so they may
 *    call rdmc_send and the caller may hold its own lock around a librdmc
 *    call that the callbacks take too.  Callbacks must not block and must not
 * call rdmc_group_destroy (of their own group it is refused: logged, nothing
 *    happens) or rdmc_group_wedge (-EDEADLK).
 *
 * Errors: 0 or a negative errno; libfab's and libfabric's codes pass
 * through; rdmc_strerror() names them.
 */
#ifndef DERECHO_RDMC_H
#define DERECHO_RDMC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <fab/fab.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RDMC_EXPORT __attribute__((visibility("default")))

/* ---- schedules (pure) ------------------------------------------------- */

enum rdmc_algorithm {
    RDMC_BINOMIAL_SEND = 0,   /* binomial pipeline (default) */
    RDMC_CHAIN_SEND = 1,      /* rank i relays to rank i+1 */
    RDMC_SEQUENTIAL_SEND = 2, /* the sender sends everything to everyone */
    RDMC_TREE_SEND = 3,       /* binomial tree, whole message per edge */
};

/* "binomial_send", "chain_send", "sequential_send", "tree_send" (the names
 * of the configuration's rdmc_send_algorithm).  NULL for unknown values. */
RDMC_EXPORT const char *rdmc_algorithm_name(enum rdmc_algorithm alg);
/* Parses one of the names above.  -EINVAL when unknown or NULL. */
RDMC_EXPORT int rdmc_algorithm_from_name(const char *name,
                                         enum rdmc_algorithm *out);

#define RDMC_NO_PEER UINT32_MAX

/* One block moving in one step: to (send) or from (receive) rank `peer`;
 * peer == RDMC_NO_PEER when there is none in that step. */
struct rdmc_transfer {
    uint32_t peer;
    uint32_t block;
};

/* Number of steps the schedule takes for a group of n members and `blocks`
 * blocks (>= 1), 0 when n < 2 or an argument is out of range
 * (n > RDMC_MAX_MEMBERS, blocks > RDMC_MAX_BLOCKS).
 *  - binomial_send: blocks + log2(n) - 1 when n is a power of two; other n
 *    run the pipeline over the largest power of two 2^l < n with every
 *    hypercube step followed by a step in which the first n - 2^l vertices
 *    pass their newest block on to a twin: 2 * (blocks + l - 1) steps.
 *  - chain_send: blocks + n - 2.
 *  - sequential_send: (n - 1) * blocks.
 *  - tree_send: ceil(log2 n) * blocks. */
RDMC_EXPORT uint32_t rdmc_schedule_steps(enum rdmc_algorithm alg, uint32_t n,
                                         uint32_t blocks);

/* What rank `rank` of n does in step `step` (0-based, < rdmc_schedule_steps)
 * of a message of `blocks` blocks: the block it sends and to whom, the block
 * it receives and from whom.  Every member sends at most one and receives
 * at most one block per step; every receiver gets each block exactly once;
 * a member sends only blocks it received in an earlier step (rank 0 has
 * them all).  -EINVAL on a bad algorithm or arguments out of range. */
RDMC_EXPORT int rdmc_schedule_step(enum rdmc_algorithm alg, uint32_t n,
                                   uint32_t rank, uint32_t blocks,
                                   uint32_t step, struct rdmc_transfer *send,
                                   struct rdmc_transfer *recv);

#define RDMC_MAX_MEMBERS 1024u
#define RDMC_MAX_BLOCKS (1u << 20)

/* ---- wire format -------------------------------------------------------- */

/* Every write of a group carries a tagged data word (rdmc_data_encode
 * below).  The first version's 64-bit layout (rdmc_cq_encode):
 *   63..56 RDMC_CQ_MAGIC, 55..36 group id, 35..32 kind (enum rdmc_ctrl_kind
 *   or RDMC_KIND_BLOCK), 31..20 message index mod 4096, 19..0 block number.
 * Control messages are small records written into the receiver's control
 * region (slot per kind, message index mod window and sender rank). */
#define RDMC_CQ_MAGIC 0xC7u
#define RDMC_MAX_GROUP_ID ((1u << 20) - 1)

enum rdmc_ctrl_kind {
    RDMC_KIND_HEADER = 1, /* sender -> receiver: a message of `size` */
    RDMC_KIND_READY = 2,  /* receiver -> its sources: write here (`dest`) */
    RDMC_KIND_DONE = 3,   /* receiver -> sender: fully received */
    RDMC_KIND_BLOCK = 4,  /* CQ data only: a block landed */
};

#define RDMC_CTRL_VERSION 1
#define RDMC_CTRL_SIZE 48 /* bytes of one encoded control record */

/* A decoded control record. */
struct rdmc_ctrl {
    enum rdmc_ctrl_kind kind;
    uint32_t group_id;
    uint64_t index;          /* message index */
    uint64_t size;           /* HEADER: message size */
    struct fab_mr_desc dest; /* READY: receiver's destination region */
};

/* Encodes c into out (RDMC_CTRL_SIZE bytes, little endian). -EINVAL for a
 * kind that has no record or a group id over RDMC_MAX_GROUP_ID. */
RDMC_EXPORT int rdmc_ctrl_encode(const struct rdmc_ctrl *c,
                                 uint8_t out[RDMC_CTRL_SIZE]);
/* Decodes len bytes.  -EBADMSG when len != RDMC_CTRL_SIZE, the version or
 * kind is unknown, reserved bytes are not zero, a HEADER's size is 0, or a
 * READY's region is empty or overflows.  Reads nothing past in + len. */
RDMC_EXPORT int rdmc_ctrl_decode(const uint8_t *in, size_t len,
                                 struct rdmc_ctrl *c);

/* Data word payloads.  A group claims a libfab data tag
 * (fab_user_claim_tag) at every member and publishes it with its
 * parameters; a member writes fab_data_word(pool, receiver's tag, payload)
 * with a 20-bit payload (FAB_DATA_PAYLOAD_BITS), which fits the 4 bytes of
 * CQ data verbs carries:
 *   19..18 kind - 1 (enum rdmc_ctrl_kind), 17..12 message slot (index mod
 *   window), 11..0 block number mod 4096 (BLOCK; 0 otherwise).
 * A BLOCK word names a block by its residue: the receiver takes the first
 * block not yet received, in its schedule's order from that sender, with
 * that residue (a sender posts its blocks to one receiver in schedule
 * order).  The control record itself carries the message index. */
#define RDMC_DATA_SLOT_MAX 63u
#define RDMC_DATA_BLOCK_MOD 4096u
/* The payload; UINT32_MAX for a kind outside HEADER..BLOCK or a slot over
 * RDMC_DATA_SLOT_MAX.  block is taken mod RDMC_DATA_BLOCK_MOD. */
RDMC_EXPORT uint32_t rdmc_data_encode(unsigned kind, uint32_t slot,
                                      uint32_t block);
/* Splits a payload (bits over FAB_DATA_PAYLOAD_BITS are ignored). */
RDMC_EXPORT void rdmc_data_decode(uint32_t payload, unsigned *kind,
                                  uint32_t *slot, uint32_t *block_mod);

/* CQ data word helpers of the first version (pure): the 64-bit layout
 * above, which groups no longer put on the wire (they use tagged words,
 * rdmc_data_encode); kept for programs that call them. */
RDMC_EXPORT uint64_t rdmc_cq_encode(uint32_t group_id, unsigned kind,
                                    uint64_t index, uint32_t block);
/* Splits a data word.  Returns false when it is not librdmc's (magic). */
RDMC_EXPORT bool rdmc_cq_decode(uint64_t data, uint32_t *group_id,
                                unsigned *kind, uint32_t *index_mod,
                                uint32_t *block);

/* ---- groups ------------------------------------------------------------- */

struct rdmc_group;

typedef void (*rdmc_log_fn)(void *ctx, int level, const char *module,
                            const char *msg);

/* A member: libfab's struct fab_member (node_id, host, port: where its
 * pool's bootstrap listener is, used only when the pool has no live
 * connection to it yet; host is copied).  `struct rdmc_member` is that struct
 * under its old name (a macro: both names are the same type, so member
 * arrays pass between libfab, libsst and librdmc as they are). */
#define rdmc_member fab_member

struct rdmc_callbacks {
    /* A message of `size` bytes is arriving (receivers only).  Return a
     * buffer of at least size bytes that librdmc may write into until the
     * message's `complete` callback returns (librdmc registers it), or NULL
     * to let librdmc allocate one.  May be NULL (always librdmc's). */
    void *(*incoming)(void *ctx, struct rdmc_group *group, uint64_t index,
                      size_t size);
    /* Message `index` is complete here: at a receiver every byte landed in
     * data (the buffer from `incoming`, or librdmc's, valid until the
     * callback returns) and this member forwarded everything it had to; at
     * the sender every receiver has it and data is the buffer given to
     * rdmc_send.  Called in send order.  May be NULL. */
    void (*complete)(void *ctx, struct rdmc_group *group, uint64_t index,
                     void *data, size_t size);
    /* Member node_id failed (connection broke: reason from libfab, e.g.
     * -ECONNRESET) or a message made no progress within timeout_ms
     * (reason -ETIMEDOUT; node_id is the member this one was waiting for:
     * at a receiver missing blocks, the member that should send it the
     * first block it misses, in schedule order; at a receiver holding every
     * block, or at the sender, the target of its first unfinished send
     * (its READY or its taking of our writes is missing); at the sender
     * with everything sent, the receiver whose DONE is missing when exactly
     * one is; RDMC_NO_PEER when it waits for no one in particular, e.g. the
     * sender waiting for the DONE of several receivers; naming a member of
     * rank r > 0 takes r/2 timeouts more, at most 4, so that a relay that
     * itself waits for its predecessor reports first) or a peer sent
     * malformed traffic (reason -EBADMSG).  After the first failure the group
     * is failed: no further messages complete; destroy it and build a new one
     * with the survivors.  May be called more than once (once per failed
     * node).  May be NULL. */
    void (*failure)(void *ctx, struct rdmc_group *group, uint32_t node_id,
                    int reason);
};

/* Receiver: where message `index` of `size` bytes goes, in memory the
 * caller registered once (fab_mr_register on the group's pool with
 * FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE): set *mr and *offset and
 * return 0; librdmc writes [offset, offset + size) of it until the
 * message's `complete` returns (data then points there) and registers
 * nothing.  Return non-zero (or leave *mr NULL) for librdmc's own buffer.
 * A range outside the region fails the group with -ERANGE.  Called where
 * `incoming` would be, which it replaces. */
typedef int (*rdmc_incoming_mr_fn)(void *ctx, struct rdmc_group *group,
                                   uint64_t index, size_t size,
                                   struct fab_mr **mr, size_t *offset);

struct rdmc_options {
    size_t size;                   /* sizeof(struct rdmc_options) */
    uint32_t group_id;             /* same at every member; unique among the
                                      pool's live groups; <= 2^20 - 1 */
    enum rdmc_algorithm algorithm; /* default RDMC_BINOMIAL_SEND */
    size_t block_size;             /* default 1 MiB; every member agrees */
    size_t max_msg_size;           /* default 64 MiB; every member agrees */
    unsigned window;               /* messages in flight, 1..64 (default 4) */
    int create_timeout_ms; /* rendezvous with every member (default 10000) */
    int timeout_ms;        /* no progress on a message for this long fails
                              the group (default 10000; < 0: never; 0 is
                              refused with -EINVAL) */
    int spin_us;           /* progress spin before sleeping (default 50) */
    rdmc_log_fn log;       /* NULL: stderr */
    void *log_ctx;
    int log_level; /* syslog level, default LOG_WARNING */
    /* Fields below were added after the first layout; a caller whose size
     * ends before one gets its default. */
    rdmc_incoming_mr_fn incoming_mr; /* NULL (default): `incoming` */
    uint64_t epoch;     /* same at every member; with group_id the group's
                           identity: a group id reused with another epoch
                           never meets the old group's parameters (default
                           0: the first version's key) */
    unsigned threading; /* RDMC_THREAD_PER_GROUP (default) or
                           RDMC_THREAD_CALLER: no thread of its own; the
                           caller drives it with rdmc_groups_poll */
    size_t max_queued;  /* rdmc_send refuses (-EAGAIN) a message when
                           window + max_queued are sent and not complete;
                           0 (default): no bound (the caller's memory) */
    /* Create only: called on the creating thread each time the rendezvous
     * has waited FAB_RENDEZVOUS_SLICE_MS (100 ms) more for member
     * waiting_for's parameters (connected, not published yet).  Return 0
     * to keep waiting (until create_timeout_ms), or a negative errno to
     * give up now: the create fails with it, and *blame (set to
     * waiting_for before the call) is the node named in rdmc_error's
     * node_id (RDMC_NO_PEER: none).  Lets a caller that learns the set-up
     * cannot complete (e.g. its failure detector removed a member) stop
     * early, and name the member that failed rather than the one it was
     * waiting for.  Must not block or call into the group.  NULL
     * (default): wait until the deadline. */
    int (*create_wait)(void *ctx, uint32_t waiting_for, uint32_t *blame);
    void *create_wait_ctx;
};

#define RDMC_THREAD_PER_GROUP 0u
#define RDMC_THREAD_CALLER 1u

/* Optional detail of a failed create: code (= the return value), a
 * message, and the peer it concerns (the member whose connection or
 * parameters did not come in time, or differ), RDMC_NO_PEER if none. */
struct rdmc_error {
    int code;
    char msg[256];
    uint32_t node_id;
};

/* Fills defaults. */
RDMC_EXPORT void rdmc_options_init(struct rdmc_options *opts);

/* Describes an error code (ours, libfabric's or any errno, with the
 * system's text); a positive value names the same code as its negation.
 * Never NULL, also for unknown codes.  Thread-safe. */
RDMC_EXPORT const char *rdmc_strerror(int err);

/* Creates this process's side of a group: members[0] is the sender, my
 * node is fab_pool_node_id(pool) and must be among the members.  Borrows a
 * connection to every other member, publishes this member's parameters
 * (key RDMC_BLOB_KEY(group_id)) and waits until every member published
 * matching ones (algorithm, block size, maximum size, window, member list):
 * all members must call it within create_timeout_ms.  cbs is copied; ctx is
 * passed back.  *out is the caller's (rdmc_group_destroy); NULL on
 * failure.  opts NULL means every default (group id 0).  Errors: -EINVAL
 * (pool, members or out NULL; no members
 * or more than RDMC_MAX_MEMBERS; duplicates; a node id RDMC_NO_PEER; my
 * node not a member; another member without a host, with port 0 or a host
 * longer than 63 bytes; opts->size smaller than the first struct
 * rdmc_options, which ended with log_level -- 0 included; a size between it
 * and this version's is an older caller, whose missing fields take their
 * defaults; a larger size from a newer header is accepted while every
 * byte past this version's struct is zero, refused otherwise; unknown
 * algorithm; group id over RDMC_MAX_GROUP_ID; block_size or max_msg_size
 * 0; window not a power of two in 1..64; max_msg_size / block_size over
 * RDMC_MAX_BLOCKS; timeout_ms 0), -ENOTSUP (the pool carries fewer than 4 bytes
 * of CQ data), -ENOSPC (every libfab data tag of the pool is taken), -EPROTO (a
 * member's
 * parameters differ: the log says which; the member that sees it withdraws,
 * so the others may get -ETIMEDOUT), -ETIMEDOUT, libfab's codes. */
#define RDMC_BLOB_KEY(group_id) ((0x52444d43ull << 32) | (uint64_t)(group_id))
/* The key a group publishes under: RDMC_BLOB_KEY(group_id) for epoch 0,
 * else a hash of both (top byte 0x72). Pure. */
RDMC_EXPORT uint64_t rdmc_blob_key(uint32_t group_id, uint64_t epoch);
RDMC_EXPORT int rdmc_group_create(struct fab_pool *pool,
                                  const struct rdmc_member *members,
                                  size_t num_members,
                                  const struct rdmc_options *opts,
                                  const struct rdmc_callbacks *cbs, void *ctx,
                                  struct rdmc_group **out);

/* rdmc_group_create with an error detail: err (may be NULL) gets the
 * code, a message and, for -ETIMEDOUT, -EPROTO and connection errors, the
 * node id of the member it waited for or disagreed with. */
RDMC_EXPORT int
rdmc_group_create_ex(struct fab_pool *pool, const struct rdmc_member *members,
                     size_t num_members, const struct rdmc_options *opts,
                     const struct rdmc_callbacks *cbs, void *ctx,
                     struct rdmc_group **out, struct rdmc_error *err);

/* One group of a batch (rdmc_groups_create); pointers as in
 * rdmc_group_create, read during the call only. */
struct rdmc_group_spec {
    const struct rdmc_member *members;
    size_t num_members;
    const struct rdmc_options *opts;
    const struct rdmc_callbacks *cbs;
    void *ctx;
};

/* Creates count groups over one pool in one rendezvous (the groups of a
 * view): all are set up, connected and published before any waits for a
 * peer's parameters, so members may list the groups in any order, and the
 * whole batch takes one set-up time, not count.  All or nothing: out[i]
 * (count entries) get the groups, or all NULL on failure.  The deadline is
 * the largest create_timeout_ms of the batch.  Errors as
 * rdmc_group_create, and -EINVAL for a group id twice in the batch; err as
 * rdmc_group_create_ex. */
RDMC_EXPORT int rdmc_groups_create(struct fab_pool *pool,
                                   const struct rdmc_group_spec *specs,
                                   size_t count, struct rdmc_group **out,
                                   struct rdmc_error *err);

/* Stops the group's thread, sends CLOSE to every peer (see
 * rdmc_group_wedge) and waits until each live peer closed too (at most
 * 500 ms; at once when the group was wedged) and its operations in flight
 * completed, releases its connections and frees it.  Peers whose group
 * still runs see it fail with -ESHUTDOWN.  Messages not complete are
 * dropped without callbacks.  NULL is a no-op.  From a callback of the
 * group (forbidden) it logs an error and does nothing. */
RDMC_EXPORT void rdmc_group_destroy(struct rdmc_group *group);

/* Stops the group and waits until no peer can still write into its
 * memory (closing handshake: every member writes a CLOSE to each peer
 * after its last write, and a CLOSE fails a group still running at the
 * peer with -ESHUTDOWN, which then closes too).  No message completes
 * afterwards and no failure is reported for the wedge itself; rdmc_send
 * and rdmc_group_status return -ESHUTDOWN (or the failure reason if the
 * group had failed).  Returns 0 once every peer closed or its connection
 * broke, -ETIMEDOUT after timeout_ms (< 0: no limit; the log names the
 * peers that did not close), -EDEADLK from a callback of the group, -EINVAL
 * for NULL.  Destroying a wedged group then waits for nothing.  Any thread
 * but the group's callbacks; drives the pool's progress while it waits. */
RDMC_EXPORT int rdmc_group_wedge(struct rdmc_group *group, int timeout_ms);

/* Drives groups whose threading is RDMC_THREAD_CALLER (any group may be
 * passed): drives the progress of their pools once, waiting up to
 * timeout_ms on the first group's pool (0: do not wait; < 0: no limit)
 * for something to happen, then for each group retries what had to wait,
 * checks its timeout and makes its pending callbacks (complete, failure)
 * on this thread.  One thread can so serve every group of a pool (or of a
 * view) instead of one thread per group; call it in a loop.  Returns 0,
 * -EINVAL (groups NULL with n > 0, a NULL entry).  Not from a callback. */
RDMC_EXPORT int rdmc_groups_poll(struct rdmc_group *const *groups, size_t n,
                                 int timeout_ms);

/* Sender only: multicasts size bytes of buf (1..max_msg_size).  buf stays
 * the caller's and must stay valid and unchanged until the sender's
 * `complete` callback for this message.  Queues when `window` messages are
 * in flight.  *index (may be NULL) gets the message index (0, 1, ...).
 * Errors: -EINVAL (NULL, size 0), -EPERM (not rank 0), -EMSGSIZE (over
 * max_msg_size), the failure reason once the group failed (nothing is
 * queued then), -EAGAIN (options.max_queued reached: nothing queued),
 * -ENOMEM.  Never makes a callback itself: a message that completes at
 * once (a one-member group) is reported by the group's thread (or
 * rdmc_groups_poll). */
RDMC_EXPORT int rdmc_send(struct rdmc_group *group, const void *buf,
                          size_t size, uint64_t *index);

/* rdmc_send from memory the caller registered once (fab_mr_register on
 * the group's pool, FAB_ACCESS_LOCAL at least): multicasts bytes
 * [offset, offset + size) of mr, with no registration per message.  The
 * range stays the caller's, valid and unchanged until the sender's
 * `complete` (whose data points at it); mr must outlive the message.
 * Errors as rdmc_send, and -EINVAL for a NULL mr, -ERANGE for a range
 * outside it. */
RDMC_EXPORT int rdmc_send_mr(struct rdmc_group *group, struct fab_mr *mr,
                             size_t offset, size_t size, uint64_t *index);

/* The group's facts; on a NULL group the sentinels RDMC_NO_PEER (rank),
 * 0 (size) and UINT32_MAX (id, over RDMC_MAX_GROUP_ID), never valid. */
RDMC_EXPORT uint32_t rdmc_group_rank(const struct rdmc_group *group);
RDMC_EXPORT uint32_t rdmc_group_size(const struct rdmc_group *group);
RDMC_EXPORT uint32_t rdmc_group_id(const struct rdmc_group *group);
/* 0 while healthy, else the first failure reason; -EINVAL for NULL. */
RDMC_EXPORT int rdmc_group_status(struct rdmc_group *group);
/* Messages sent (sender) or started (receiver) and not yet complete (0 for
 * NULL). */
RDMC_EXPORT size_t rdmc_group_pending(struct rdmc_group *group);

#ifdef __cplusplus
}
#endif

#endif
