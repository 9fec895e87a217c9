/* libderecho: groups, views, subgroups and shards (docs/derecho.md).
 *
 * What this version holds (membership changes over the SST, failures and
 * RDMC are not built yet; docs/derecho.md, "Not built yet"):
 *  1. Layout specs: the application declares its subgroup types in order,
 *     each with its subgroups and their shard policies (one subgroup over
 *     every member; k identical subgroups; even shards; flexible min/max
 *     nodes per shard; [SUBGROUP/NAME] profiles; reserved nodes; sender
 *     subsets; ordered or unordered delivery), in code or from the
 *     original's JSON layout ([LAYOUT] json_layout / json_layout_file).
 *  2. Layouts: a spec applied to a view's members (rank order) and the
 *     previous layout gives each subgroup's shards and their members.
 *  3. Views: id, members (node id, address, ports) in rank order, leader,
 *     joined/departed since the previous view, layout, my rank; encoded
 *     with libmutils.
 *  4. Control frames: the framed TCP messages of joins (request, answer
 *     with refusal reasons or a redirect) and view announcements, over
 *     plain sockets, for processes not yet in the connection pool.
 *  5. Groups, first steps: the contact rule, joins (batched, refused with
 *     a reason, redirected), leaves, views announced by the leader.
 *  6. Ordered multicast over SMC: one fab pool per process (sst_port),
 *     one SST table per view holding each member's ring of window_size
 *     slots per subgroup, round robin order with null messages sent at
 *     once, delivery when stable on one delivery thread per process,
 *     unordered mode, sender subsets; the reserve/commit and copy send
 *     API.  Messages above max_smc_payload_size, up to max_payload_size,
 *     go through RDMC (one group per sender per shard per view) in the
 *     same order; larger ones: -EMSGSIZE.
 *
 * Errors: 0 or a negative errno; derecho_strerror() names them.  Where a
 * number is not enough, struct derecho_error (optional everywhere) says
 * what and where.  A failed call changes nothing and leaves *out NULL.
 *
 * Misuse: a NULL object or output pointer gives -EINVAL; getters on NULL
 * return the sentinel named at each.
 *
 * Threading: specs, layouts and views are not locked.  Building a spec
 * needs exclusive access; a finished spec, a layout and a view are
 * read-only and may be read by any number of threads at once.  The
 * control functions block the calling thread up to their deadline and use
 * only the file descriptors given; any thread may call them.  A group owns
 * one thread ("derecho-gms") that serves its control socket and installs
 * views; derecho_group_get_view may be called from any thread,
 * derecho_group_destroy from any thread but that one.
 */
#ifndef DERECHO_DERECHO_H
#define DERECHO_DERECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct conf;
struct mutils_writer;

#define DERECHO_EXPORT __attribute__((visibility("default")))

/* Version of the control protocol (frames, join messages, view encoding). */
#define DERECHO_PROTOCOL_VERSION 1

/* "No node": a node id that is never valid (conf's local_id stays below). */
#define DERECHO_NODE_NONE UINT32_MAX

/* Bounds every decoder and builder enforces. */
#define DERECHO_MAX_MEMBERS 4096      /* members of a view */
#define DERECHO_MAX_TYPES 256         /* subgroup types of a spec */
#define DERECHO_MAX_SUBGROUPS 4096    /* subgroups of a spec, all types */
#define DERECHO_MAX_SHARDS 4096       /* shards of one subgroup */
#define DERECHO_MAX_NAME 63           /* bytes of a type or profile name */
#define DERECHO_MAX_IP 63             /* bytes of an address */
#define DERECHO_MAX_FRAME (16u << 20) /* bytes of a control frame body */

/* max_nodes of a shard policy: no upper limit. */
#define DERECHO_UNLIMITED UINT32_MAX

/* Optional detail of a failure: code (= the return value) and one line. */
struct derecho_error {
    int code;
    char msg[256];
    int field; /* for -EPROTO from the control calls: the differing
                  enum derecho_compat_field; else 0 */
};

/* A static description of any code this library returns (negative or
 * positive errno).  Never NULL.  Thread-safe. */
DERECHO_EXPORT const char *derecho_strerror(int err);

/* ======================================================================= */
/* Layout specs                                                            */
/* ======================================================================= */

/* Delivery mode of a shard: one total order (ORDERED), or delivery on
 * receipt without a total order (UNORDERED, the original's
 * Mode::UNORDERED, "Raw" in its JSON layouts). */
enum derecho_mode {
    DERECHO_MODE_ORDERED = 0,
    DERECHO_MODE_UNORDERED = 1,
};

/* How one shard is populated.  Initialise with
 * derecho_shard_policy_init(), then override. */
struct derecho_shard_policy {
    size_t size;         /* sizeof(struct derecho_shard_policy) */
    uint32_t min_nodes;  /* at least 1 (default 1) */
    uint32_t max_nodes;  /* >= min_nodes, or DERECHO_UNLIMITED (default) */
    int mode;            /* enum derecho_mode (default ORDERED) */
    const char *profile; /* [SUBGROUP/NAME] profile of its messages; NULL
                            means "DEFAULT"; copied */
    /* Node ids reserved for this shard (copied; may be NULL when 0): a
     * present reserved node is always put in this shard, whatever else it
     * is in (shards of different subgroups may share reserved nodes). */
    const uint32_t *reserved;
    size_t num_reserved;
    /* Sender subset: when num_senders > 0 only these node ids send in this
     * shard (copied), the others only receive. */
    const uint32_t *senders;
    size_t num_senders;
    /* When > 0, only the first max_senders members (shard order) of those
     * allowed above are senders; 0 means no such cap. */
    uint32_t max_senders;
};

/* Fills the defaults above and sets p->size.  NULL: nothing happens. */
DERECHO_EXPORT void derecho_shard_policy_init(struct derecho_shard_policy *p);

/* The application's declared subgroup types, in order, with their
 * subgroups and shard policies. */
struct derecho_layout_spec;

/* Creates an empty spec.  Returns 0, -EINVAL (out NULL) or -ENOMEM. */
DERECHO_EXPORT int derecho_layout_spec_create(struct derecho_layout_spec **out);

/* Frees a spec; NULL is a no-op.  Layouts computed from it stay valid. */
DERECHO_EXPORT void
derecho_layout_spec_destroy(struct derecho_layout_spec *spec);

/* Declares the next subgroup type (its index is the number of types
 * declared before it, stored in *type_index when not NULL).  name: 1 to
 * DERECHO_MAX_NAME bytes, unique in the spec; copied.  Errors: -EINVAL
 * (bad or duplicate name), -ENOSPC (DERECHO_MAX_TYPES reached), -ENOMEM. */
DERECHO_EXPORT int
derecho_layout_spec_add_type(struct derecho_layout_spec *spec, const char *name,
                             uint32_t *type_index);

/* Adds one subgroup of type type_index with num_shards shards, all with
 * the same policy (NULL: the defaults, i.e. one to unlimited nodes).
 * Subgroups are numbered across the whole spec in the order they are
 * added (the original's subgroup ids); *subgroup_index gets the number
 * (may be NULL).  Errors: -EINVAL (unknown type, num_shards 0, bad policy:
 * min_nodes 0, max_nodes < min_nodes, unknown mode, bad profile name,
 * a reserved node listed twice in the subgroup, a sender not reserved
 * when reserved nodes are given), -ENOSPC (limits), -ENOMEM. */
DERECHO_EXPORT int derecho_layout_spec_add_subgroup(
    struct derecho_layout_spec *spec, uint32_t type_index, uint32_t num_shards,
    const struct derecho_shard_policy *policy, uint32_t *subgroup_index);

/* Adds one subgroup whose shards have each their own policy
 * (policies[0 .. num_shards-1]).  Same errors. */
DERECHO_EXPORT int derecho_layout_spec_add_custom_subgroup(
    struct derecho_layout_spec *spec, uint32_t type_index,
    const struct derecho_shard_policy *policies, uint32_t num_shards,
    uint32_t *subgroup_index);

/* Adds one subgroup of one shard that holds every member of the view, in
 * rank order, whatever other subgroups hold (the original's
 * one_subgroup_entire_view, or its _raw variant with
 * DERECHO_MODE_UNORDERED).  Same errors. */
DERECHO_EXPORT int
derecho_layout_spec_add_entire_view(struct derecho_layout_spec *spec,
                                    uint32_t type_index, int mode,
                                    uint32_t *subgroup_index);

/* Adds k identical subgroups (the original's identical_subgroups_policy),
 * each of num_shards shards with policy; *first_subgroup gets the index of
 * the first (may be NULL).  Same errors. */
DERECHO_EXPORT int derecho_layout_spec_add_identical_subgroups(
    struct derecho_layout_spec *spec, uint32_t type_index, uint32_t k,
    uint32_t num_shards, const struct derecho_shard_policy *policy,
    uint32_t *first_subgroup);

/* Adds one subgroup from the profile [SUBGROUP/profile] of c, like the
 * original's flexible_even_shards(profile): num_shards, min_nodes and
 * max_nodes are read from the profile (each must be set there), every
 * shard is ORDERED and uses that profile.  Errors: -ENOENT (a key is not
 * set; err names it), -EINVAL/-ERANGE (bad value), and those above. */
DERECHO_EXPORT int derecho_layout_spec_add_profile_subgroup(
    struct derecho_layout_spec *spec, uint32_t type_index, const struct conf *c,
    const char *profile, uint32_t *subgroup_index, struct derecho_error *err);

/* Adds the subgroups of every declared type from a JSON layout in the
 * original's format: an array with one object per declared type, in
 * declaration order, each {"type_alias": NAME, "layout": [SUBGROUP...]},
 * each SUBGROUP an object of equally long arrays "min_nodes_by_shard",
 * "max_nodes_by_shard" (numbers or decimal strings),
 * "delivery_modes_by_shard" ("Ordered" or "Raw"), "profiles_by_shard"
 * (strings) and the optional "reserved_node_ids_by_shard" (an array per
 * shard of node ids, numbers or strings, a string starting with '*'
 * marking a sender).  type_alias must equal the declared type's name.
 * Unknown keys are errors.  The spec must have its types declared and no
 * subgroups yet.  All or nothing: on error the spec is unchanged.
 * Errors: -EBADMSG (not JSON, or nesting deeper than 16; err gives
 * line:column), -EINVAL (JSON of the wrong shape or values; err names
 * the entry and key), -ENOSPC, -ENOMEM. */
DERECHO_EXPORT int
derecho_layout_spec_load_json(struct derecho_layout_spec *spec,
                              const char *json, size_t len,
                              struct derecho_error *err);

/* Loads [LAYOUT] json_layout from c if it is set and not empty, else the
 * file named by [LAYOUT] json_layout_file.  -ENOENT when neither is set;
 * errors of reading the file (-ENOENT, -EACCES, -EFBIG over 16 MiB, ...),
 * and those of derecho_layout_spec_load_json. */
DERECHO_EXPORT int
derecho_layout_spec_load_conf(struct derecho_layout_spec *spec,
                              const struct conf *c, struct derecho_error *err);

/* Number of declared types and subgroups (0 for NULL). */
DERECHO_EXPORT uint32_t
derecho_layout_spec_num_types(const struct derecho_layout_spec *spec);
DERECHO_EXPORT uint32_t
derecho_layout_spec_num_subgroups(const struct derecho_layout_spec *spec);

/* A stable 64-bit fingerprint (XXH3) of everything the spec declares:
 * type names, subgroups, their shards' policies.  Processes of one group
 * must agree on it (the join request carries it).  Returns 0, -EINVAL. */
DERECHO_EXPORT int
derecho_layout_spec_fingerprint(const struct derecho_layout_spec *spec,
                                uint64_t *fingerprint);

/* ======================================================================= */
/* Layouts                                                                 */
/* ======================================================================= */

/* The subgroups and shards of one view: immutable once made. */
struct derecho_layout;

/* Maps members (node ids in rank order, distinct) to the spec's subgroups.
 * The allocator (docs/derecho.md, "Allocation"):
 *  - entire-view subgroups take every member, in rank order;
 *  - every other shard first keeps its members of prev (may be NULL) that
 *    are still present, in their order, and its present reserved nodes
 *    (a joining reserved node that would put it above max_nodes makes
 *    kept members it does not reserve leave it, the latest first);
 *  - subgroups then take, in declaration order, unassigned members in rank
 *    order up to each shard's min_nodes; a subgroup whose minimums cannot
 *    all be met is not provisioned (it keeps the members it kept, takes
 *    none, and later subgroups go on);
 *  - when every subgroup is provisioned, remaining unassigned members are
 *    dealt one at a time to the shards in declaration order, up to
 *    max_nodes (while one is not, they stay unassigned, free for it).
 * An inadequately provisioned view is not an error: the layout says so
 * (derecho_layout_provisioned).  Errors: -EINVAL (NULL spec/out, members
 * NULL with n > 0, a duplicate or DERECHO_NODE_NONE node id, prev from a
 * spec with other subgroups), -ERANGE (n over DERECHO_MAX_MEMBERS),
 * -ENOMEM. */
DERECHO_EXPORT int
derecho_layout_compute(const struct derecho_layout_spec *spec,
                       const uint32_t *members, size_t n,
                       const struct derecho_layout *prev,
                       struct derecho_layout **out, struct derecho_error *err);

/* An application allocator, in place of the default one (the original's
 * shard_view_generator_t).  A draft has the spec's subgroups and shards
 * (with their modes and profiles), every shard empty and every subgroup
 * provisioned; the function fills shards with
 * derecho_layout_draft_set_shard and marks subgroups it cannot provision
 * with derecho_layout_draft_unprovisioned.  members are the view's node
 * ids in rank order (n of them), prev the previous layout or NULL.  It
 * returns 0, or a negative errno that derecho_layout_compute returns.  It
 * runs on the thread that computes the layout, must not block, and must
 * not keep draft. */
struct derecho_layout_draft;
typedef int (*derecho_allocator_fn)(void *ctx, const uint32_t *members,
                                    size_t n, const struct derecho_layout *prev,
                                    struct derecho_layout_draft *draft);

/* Makes spec use fn (NULL: back to the default allocator).  The spec's
 * fingerprint does not cover the function: processes of a group must use
 * the same one.  Returns 0 or -EINVAL (spec NULL). */
DERECHO_EXPORT int
derecho_layout_spec_set_allocator(struct derecho_layout_spec *spec,
                                  derecho_allocator_fn fn, void *ctx);

/* Sets the members of (subgroup, shard) in a draft, in shard order (the
 * first is the shard leader); is_sender may be NULL (everyone sends).
 * Copied.  Errors: -EINVAL (NULL arguments with n > 0; a node that is not
 * in the view, listed twice, or already in another shard of the
 * subgroup), -ERANGE (no such subgroup or shard). */
DERECHO_EXPORT int derecho_layout_draft_set_shard(
    struct derecho_layout_draft *draft, uint32_t subgroup, uint32_t shard,
    const uint32_t *members, const bool *is_sender, size_t n);

/* Marks a subgroup of a draft as not provisioned.  -EINVAL, -ERANGE. */
DERECHO_EXPORT int
derecho_layout_draft_unprovisioned(struct derecho_layout_draft *draft,
                                   uint32_t subgroup);

/* Frees a layout; NULL is a no-op. */
DERECHO_EXPORT void derecho_layout_destroy(struct derecho_layout *layout);

/* True when every subgroup is provisioned (false for NULL). */
DERECHO_EXPORT bool derecho_layout_provisioned(const struct derecho_layout *l);

/* Number of subgroups (0 for NULL). */
DERECHO_EXPORT uint32_t
derecho_layout_num_subgroups(const struct derecho_layout *l);

/* One subgroup: its type, shard count and whether its minimums are met. */
struct derecho_subgroup_info {
    uint32_t type_index;
    uint32_t num_shards;
    bool provisioned;
};
/* Fills *info; -EINVAL (NULL), -ERANGE (no such subgroup). */
DERECHO_EXPORT int derecho_layout_subgroup(const struct derecho_layout *l,
                                           uint32_t subgroup,
                                           struct derecho_subgroup_info *info);

/* One shard.  members and is_sender point into the layout (valid while it
 * is), num_members entries each, members in shard order (the first is the
 * shard leader); profile is NUL-terminated inside the layout. */
struct derecho_shard_info {
    const uint32_t *members;
    const bool *is_sender;
    size_t num_members;
    uint32_t num_senders;
    int mode; /* enum derecho_mode */
    const char *profile;
};
/* Fills *info; -EINVAL (NULL), -ERANGE (no such subgroup or shard). */
DERECHO_EXPORT int derecho_layout_shard(const struct derecho_layout *l,
                                        uint32_t subgroup, uint32_t shard,
                                        struct derecho_shard_info *info);

/* The shard of subgroup that holds node_id (its number, >= 0), -ENOENT
 * when none does, -ERANGE for no such subgroup, -EINVAL for NULL.  A node
 * is in at most one shard of a subgroup. */
DERECHO_EXPORT int derecho_layout_shard_of(const struct derecho_layout *l,
                                           uint32_t subgroup, uint32_t node_id);

/* ======================================================================= */
/* Views                                                                   */
/* ======================================================================= */

/* A member as views list it. */
struct derecho_member {
    uint32_t node_id;
    char ip[DERECHO_MAX_IP + 1]; /* NUL-terminated IPv4 or IPv6 text */
    uint16_t gms_port;
    uint16_t sst_port;
    uint16_t rdmc_port;
    uint16_t external_port;
};

/* One installed membership: immutable once made. */
struct derecho_view;

/* Makes view view_id from members (rank order, copied) and the previous
 * view (NULL for view 0): joined = members not in prev, departed = prev's
 * members not here, the layout from spec (may be NULL: no subgroups) and
 * prev's layout.  leader_rank is normally 0 (the lowest rank).  my_node_id
 * names this process (DERECHO_NODE_NONE: an outsider; my rank is then -1).
 * Errors: -EINVAL (NULL out, members NULL with n > 0, n 0, duplicate or
 * NONE node ids, an ip without NUL or empty, leader_rank >= n,
 * view_id not above prev's), -ERANGE (n too large), -ENOMEM, and those of
 * derecho_layout_compute. */
DERECHO_EXPORT int
derecho_view_create(uint32_t view_id, const struct derecho_member *members,
                    size_t n, uint32_t leader_rank,
                    const struct derecho_view *prev,
                    const struct derecho_layout_spec *spec, uint32_t my_node_id,
                    struct derecho_view **out, struct derecho_error *err);

/* Frees a view and its layout; NULL is a no-op. */
DERECHO_EXPORT void derecho_view_destroy(struct derecho_view *v);

/* Getters.  Sentinels for NULL (and out-of-range arguments): -1, 0 or
 * NULL as said. */
DERECHO_EXPORT int64_t derecho_view_id(const struct derecho_view *v); /* -1 */
DERECHO_EXPORT size_t
derecho_view_num_members(const struct derecho_view *v); /* 0 */
/* The member at rank, or NULL; valid while the view is. */
DERECHO_EXPORT const struct derecho_member *
derecho_view_member(const struct derecho_view *v, size_t rank);
/* Rank of node_id, or -1 when it is not a member. */
DERECHO_EXPORT int derecho_view_rank_of(const struct derecho_view *v,
                                        uint32_t node_id);
DERECHO_EXPORT int
derecho_view_leader_rank(const struct derecho_view *v);                /* -1 */
DERECHO_EXPORT int derecho_view_my_rank(const struct derecho_view *v); /* -1 */
/* Node ids that joined / departed since the previous view (ascending
 * rank / previous rank order); *n gets the count (n may be NULL).  NULL
 * (and *n = 0) for none or a NULL view. */
DERECHO_EXPORT const uint32_t *derecho_view_joined(const struct derecho_view *v,
                                                   size_t *n);
DERECHO_EXPORT const uint32_t *
derecho_view_departed(const struct derecho_view *v, size_t *n);
/* The view's layout (NULL when made without a spec), valid while v is. */
DERECHO_EXPORT const struct derecho_layout *
derecho_view_layout(const struct derecho_view *v);

/* Appends v's encoding (libmutils wire format; docs/derecho.md) to w.
 * Returns 0 or the writer's error (-ENOSPC, -ENOMEM), -EINVAL for NULL. */
DERECHO_EXPORT int derecho_view_encode(const struct derecho_view *v,
                                       struct mutils_writer *w);

/* Decodes one view from exactly [buf, buf + len), as seen by my_node_id
 * (DERECHO_NODE_NONE: an outsider).  Everything is checked: counts within
 * the bounds, distinct node ids, ranks and shard members that exist,
 * strings without NUL.  Errors: -EBADMSG (malformed or inconsistent; err
 * says what), -EINVAL (NULL out, buf NULL with len > 0), -ENOMEM. */
DERECHO_EXPORT int derecho_view_decode(const void *buf, size_t len,
                                       uint32_t my_node_id,
                                       struct derecho_view **out,
                                       struct derecho_error *err);

/* ======================================================================= */
/* Control frames (joins, redirects, view announcements)                   */
/* ======================================================================= */

/* Every control message is one frame on a TCP stream:
 *   u32 magic "DRCO" (0x4f435244 little-endian), u16 protocol version,
 *   u8 type, u8 endianness (1 little, 2 big), u8 word size (sizeof(void*)),
 *   u8 zero, u32 body length (at most DERECHO_MAX_FRAME), body.
 * All integers little-endian (libmutils). */
#define DERECHO_CONTROL_MAGIC 0x4f435244u
#define DERECHO_CONTROL_HEADER_SIZE 14

enum derecho_control_type {
    DERECHO_CONTROL_JOIN_REQUEST = 1, /* joiner -> contact */
    DERECHO_CONTROL_JOIN_ANSWER = 2,  /* contact -> joiner */
    DERECHO_CONTROL_VIEW = 3,         /* leader -> joiner: an encoded view */
};

/* Which compatibility field made a peer refuse (or a frame be refused). */
enum derecho_compat_field {
    DERECHO_FIELD_NONE = 0,
    DERECHO_FIELD_MAGIC = 1,
    DERECHO_FIELD_VERSION = 2,
    DERECHO_FIELD_ENDIAN = 3,
    DERECHO_FIELD_WORD_SIZE = 4,
    DERECHO_FIELD_FINGERPRINT = 5,
    DERECHO_FIELD_NODE_ID = 6, /* a live member already has this id */
};

/* Name of a field ("magic", "protocol version", ...); never NULL. */
DERECHO_EXPORT const char *derecho_compat_field_name(int field);

/* A decoded frame header. */
struct derecho_control_header {
    uint32_t magic;
    uint16_t version;
    uint8_t type;
    uint8_t endian;
    uint8_t word_size;
    uint32_t body_len;
};

/* Decodes and checks a header from [buf, buf + len) (at least
 * DERECHO_CONTROL_HEADER_SIZE bytes).  -EBADMSG when short or the body
 * length exceeds DERECHO_MAX_FRAME or the type is unknown; -EPROTO when
 * magic, version, endianness or word size differ from ours (*field, when
 * not NULL, names it; err says both values).  *h is filled as far as it
 * was read in both cases. */
DERECHO_EXPORT int
derecho_control_header_decode(const void *buf, size_t len,
                              struct derecho_control_header *h, int *field,
                              struct derecho_error *err);

/* A join request. */
struct derecho_join_request {
    struct derecho_member member; /* the joiner: node id, address, ports */
    uint64_t fingerprint;         /* derecho_layout_spec_fingerprint() (or
                                     any fingerprint the application uses
                                     for its declared types) */
};

enum derecho_join_status {
    DERECHO_JOIN_ACCEPTED = 0,
    DERECHO_JOIN_REFUSED = 1,
    DERECHO_JOIN_REDIRECT = 2, /* ask the leader at leader_ip:leader_port */
};

/* A join answer. */
struct derecho_join_answer {
    int status;                         /* enum derecho_join_status */
    int field;                          /* REFUSED: enum derecho_compat_field */
    uint64_t contact_value;             /* REFUSED: the contact's value */
    uint64_t joiner_value;              /* REFUSED: the joiner's value */
    uint32_t leader_id;                 /* ACCEPTED/REDIRECT: the leader */
    char leader_ip[DERECHO_MAX_IP + 1]; /* REDIRECT */
    uint16_t leader_port;               /* REDIRECT: its gms port */
    char reason[128];                   /* REFUSED: one line, e.g.
                                           "layout fingerprint differs" */
};

/* Bodies of the three messages in the libmutils wire format; encoders
 * append to w (0 or the writer's error; -EINVAL for NULL or a string
 * without NUL), decoders read exactly [buf, buf + len) (-EBADMSG for
 * anything malformed: short, trailing bytes, strings too long or holding
 * NUL, an unknown status or field). */
DERECHO_EXPORT int
derecho_join_request_encode(const struct derecho_join_request *req,
                            struct mutils_writer *w);
DERECHO_EXPORT int
derecho_join_request_decode(const void *buf, size_t len,
                            struct derecho_join_request *req);
DERECHO_EXPORT int
derecho_join_answer_encode(const struct derecho_join_answer *ans,
                           struct mutils_writer *w);
DERECHO_EXPORT int derecho_join_answer_decode(const void *buf, size_t len,
                                              struct derecho_join_answer *ans);

/* The contact's check of a request against its own fingerprint: fills
 * *ans with ACCEPTED (leader_id = leader_id) or REFUSED naming the field
 * that differs (fingerprint first, then node id: is_live(ctx, id) true
 * means a live member already has that id; is_live may be NULL).  Returns
 * 0, or -EINVAL for NULL. */
DERECHO_EXPORT int
derecho_join_check(const struct derecho_join_request *req,
                   uint64_t my_fingerprint, uint32_t leader_id,
                   bool (*is_live)(void *ctx, uint32_t node_id), void *ctx,
                   struct derecho_join_answer *ans);

/* Opens a listening TCP socket on ip:port (SO_REUSEADDR, close-on-exec;
 * port 0: any, read it with getsockname).  Returns 0 and *fd, or -errno
 * (-EINVAL for a bad address). */
DERECHO_EXPORT int derecho_control_listen(const char *ip, uint16_t port,
                                          int *fd);

/* Connects to ip:port, retrying refused or unreachable attempts until
 * timeout_ms (a contact may start later).  Returns 0 and *fd (blocking,
 * close-on-exec), -ETIMEDOUT, or -errno. */
DERECHO_EXPORT int derecho_control_connect(const char *ip, uint16_t port,
                                           int timeout_ms, int *fd);

/* Sends one frame (type, body of len bytes) within timeout_ms.  Returns 0,
 * -ETIMEDOUT, -EMSGSIZE (len over DERECHO_MAX_FRAME), -EINVAL, -errno
 * (-EPIPE, -ECONNRESET).  Never raises SIGPIPE. */
DERECHO_EXPORT int derecho_control_send(int fd, int type, const void *body,
                                        size_t len, int timeout_ms);

/* Receives one frame within timeout_ms (one deadline for the header and
 * the body; a peer that trickles bytes cannot hold it longer).  Bodies
 * over max_len (at most DERECHO_MAX_FRAME) are refused.  On success *type
 * gets the type and *body a malloc'd copy of the body (free() it; NULL
 * when empty) and *len its length.  Errors: -ETIMEDOUT, -ECONNRESET (peer
 * closed, also mid-frame), -EBADMSG (bad header, body over max_len), -EPROTO
 * (incompatible header: err names the field and both values; *type still
 * gets the type), -ENOMEM, -errno.  After an error the stream's position
 * is lost: close it. */
DERECHO_EXPORT int derecho_control_recv(int fd, int timeout_ms, size_t max_len,
                                        int *type, void **body, size_t *len,
                                        struct derecho_error *err);

/* ======================================================================= */
/* Groups (first steps: the contact rule, joins, views over the control    */
/* channel; membership changes over the SST and multicast are not built)   */
/* ======================================================================= */

/* The log callback shape shared by every Derecho library: syslog level,
 * module "derecho", one line without a line break (valid until the
 * callback returns).  Must not block. */
typedef void (*derecho_log_fn)(void *ctx, int level, const char *module,
                               const char *msg);

/* A view was installed.  Runs on the group's thread ("derecho-gms"), or on
 * the thread of derecho_group_create for the first view, with no library
 * lock held; view is valid until it returns (copy what you keep, e.g. with
 * derecho_group_get_view).  May call derecho_group_get_view; must not call
 * derecho_group_destroy; must not block. */
typedef void (*derecho_view_fn)(void *ctx, const struct derecho_view *view);

/* Why a member stopped (derecho_group_stopped, on_stopped):
 * EXPELLED: the others removed me (I was suspected, e.g. stopped too
 * long); PARTITIONED: I would have installed a view without a majority of
 * the previous one (see derecho_group_create). */
#define DERECHO_STOPPED_EXPELLED 1
#define DERECHO_STOPPED_PARTITIONED 2

/* Called once when this member stops being one (reason DERECHO_STOPPED_*),
 * on the group's thread, with no lock held.  The process goes on; every
 * later send returns -ENOTCONN and no more views or deliveries come.
 * Call derecho_group_destroy (not from the callback) to free the group. */
typedef void (*derecho_stopped_fn)(void *ctx, int reason);

/* A message was delivered (docs/derecho.md, "Ordered multicast").  Runs
 * on the group's delivery thread ("derecho-dlv"), one message at a time,
 * in the shard's order (ordered mode) or on receipt (unordered mode).
 * sender: its node id; version = (view id << 32) | position of the
 * message in the view's order of the shard (null messages take positions
 * but are never delivered).  data points into the ring (valid until the
 * callback returns; size may be 0).  A slow callback holds back senders
 * (their windows fill), never heartbeats or view changes.  May send
 * (a blocking send to a shard whose window is full waits for deliveries
 * that only this thread makes: use DERECHO_SEND_NONBLOCK here); must not
 * call derecho_group_destroy. */
typedef void (*derecho_deliver_fn)(void *ctx, uint32_t subgroup, uint32_t shard,
                                   uint32_t sender, uint64_t version,
                                   const void *data, size_t size);

/* derecho_group_options.join_timeout_ms: take it from the configuration's
 * [DERECHO] join_timeout_ms (the default). */
#define DERECHO_JOIN_TIMEOUT_CONF (-1)

struct derecho_group_options {
    size_t size;             /* sizeof(struct derecho_group_options) */
    derecho_view_fn on_view; /* may be NULL */
    void *ctx;               /* passed to on_view */
    int join_timeout_ms;     /* how long a joiner retries its contact and
                                waits to be admitted, in ms (default
                                DERECHO_JOIN_TIMEOUT_CONF: [DERECHO]
                                join_timeout_ms, itself 30000 by default) */
    derecho_log_fn log;      /* NULL: stderr ("derecho: LEVEL: msg") */
    void *log_ctx;
    int log_level; /* syslog level, default LOG_WARNING */
    /* Added with the multicast (a struct from an older header ends here;
     * its size is accepted and these stay NULL). */
    derecho_deliver_fn on_deliver; /* may be NULL */
    void *deliver_ctx;
    /* Added with failure handling over the SST (a struct from an older
     * header ends before it; its size is accepted and these stay NULL). */
    derecho_stopped_fn on_stopped; /* may be NULL */
    void *stopped_ctx;
};

/* Fills the defaults above and sets o->size.  NULL: nothing happens. */
DERECHO_EXPORT void derecho_group_options_init(struct derecho_group_options *o);

struct derecho_group;

/* Starts this process's membership in the group described by c and spec.
 * From [DERECHO]: local_id, local_ip, gms_port, sst_port, rdmc_port,
 * external_port, contact_ip, contact_port.  The process whose (local_ip,
 * gms_port) equals (contact_ip, contact_port) starts the group as the
 * leader of view 0 (itself alone).  Every other process listens on its
 * gms_port, then asks its contact to join, retrying for up to
 * join_timeout_ms; a contact that is not the leader redirects it to the
 * leader.  The leader admits the joins that arrive together in one new
 * view, sent to every member; a member whose connection to the leader
 * closes (derecho_group_destroy, a crash) leaves in the next view.
 *
 * spec must stay valid and unchanged until derecho_group_destroy; its
 * fingerprint must equal the group's.  Returns 0 with *out once the first
 * view is installed (on_view has run for it), or: -ECONNREFUSED (the
 * leader refused: a different layout fingerprint or protocol, or a live
 * member has local_id; err says which field, and one line is logged),
 * -ETIMEDOUT (no contact admitted us in time), -EADDRINUSE (gms_port
 * taken), -EINVAL (bad arguments or options), -EPROTO, -ENOMEM, -errno.
 *
 * It also creates the process's fab pool on sst_port (-EADDRINUSE when
 * taken) and, at every installed view, the view's SST table with every
 * member (docs/derecho.md, "Ordered multicast over SMC"); rdmc_port is
 * read but not bound (one pool serves SST and, later, RDMC).
 *
 * Failures over the SST: a member suspected by libsst (heartbeat stalled
 * past 1 s, e.g. SIGSTOP, or its connection broken) wedges the view at
 * every member (no new sends; they wait for the next view), the
 * suspicion spreads to every member (the union of the rows' suspicion
 * columns), and the leader installs the next view without it.  A member
 * that learns the others suspect it (resumed after a stop) stops:
 * on_stopped(DERECHO_STOPPED_EXPELLED), sends return -ENOTCONN.
 * Partition safety (on unless [DERECHO] disable_partitioning_safety =
 * true): a member that suspects half of its view or more, or would end a
 * view whose failed members (suspected, not departed gracefully) are half
 * or more of those that did not leave gracefully, stops before delivering
 * that view's edge: on_stopped(DERECHO_STOPPED_PARTITIONED).  The library
 * never exits the process.
 *
 * A failed leader (its control connection closed, or suspected) is
 * replaced by the lowest-ranked member that is neither it nor suspected:
 * the others reconnect to that member's gms_port, and it installs the
 * next view once they did (at most 2 s).
 *
 * Not built yet: finishing a proposal the failed leader had only partly
 * announced, the ragged edge computed and published by the shard leader
 * (every survivor computes the same edge from the final counters after
 * the end-of-view barrier), RDMC. */
DERECHO_EXPORT int derecho_group_create(const struct conf *c,
                                        const struct derecho_layout_spec *spec,
                                        const struct derecho_group_options *o,
                                        struct derecho_group **out,
                                        struct derecho_error *err);

/* 0 while this process is a member of g, DERECHO_STOPPED_EXPELLED once
 * the others removed it (libsst told it that a member suspects it: e.g.
 * it was stopped past the suspicion timeout, then resumed; or the leader
 * announced a view without it), DERECHO_STOPPED_PARTITIONED once it was
 * left without a majority.  Non-zero as soon as sends return -ENOTCONN
 * (on_stopped may run a moment later).  -EINVAL for NULL.  Any thread. */
DERECHO_EXPORT int derecho_group_stopped(struct derecho_group *g);

/* Leaves the group: stops the group's thread, ends the current view's
 * multicast (undelivered messages are dropped here), closes its SST
 * table, the pool and the control connections (the leader then installs
 * a view without this member), joins the delivery thread and frees
 * everything.  No other thread may be in a send call of this group (or
 * enter one) meanwhile.  NULL is a no-op.  Must not be called from
 * on_view or on_deliver. */
DERECHO_EXPORT void derecho_group_destroy(struct derecho_group *g);

/* A copy of the current view in *out (destroy it with
 * derecho_view_destroy).  Any thread, on_view included.  Returns 0,
 * -EINVAL, -ENOMEM. */
DERECHO_EXPORT int derecho_group_get_view(struct derecho_group *g,
                                          struct derecho_view **out);

/* ---- statistics (derecho_group_stats) ---- */

/* One member of the current view, in rank order.  The suspicion is this
 * process's in that view; after the view's multicast ended with no next
 * view installed (e.g. stopped as partitioned) it is what it was at the
 * end. */
struct derecho_member_stats {
    uint32_t node_id;
    int suspected; /* 1: this process suspects it (the view is wedged) */
    int reason;    /* why, when known: a negative errno as libsst reports
                      it (-ETIMEDOUT: heartbeat stalled, -ECONNRESET and
                      the like: connection broken, -EHOSTDOWN: another
                      member suspected it); 0 when not suspected */
};

/* My shard of one subgroup in the current view, with counts since this
 * process created the group (they follow the subgroup across views;
 * shard is my shard in the current view). */
struct derecho_shard_stats {
    uint32_t subgroup, shard;
    uint64_t sent;            /* messages I committed (nulls not counted;
                                 one resent after a view change counts
                                 once) */
    uint64_t delivered;       /* messages delivered here (on_deliver) */
    uint64_t nulls_sent;      /* null messages I sent */
    uint64_t nulls_delivered; /* null messages that took a position in
                                 the order here (never given to
                                 on_deliver) */
};

/* Filled by derecho_group_stats.  The caller owns the arrays and sets
 * their capacity; the counts say how many entries exist (entries past a
 * capacity are not written).  Initialize with derecho_group_stats_init. */
struct derecho_group_stats {
    size_t size;     /* sizeof(struct derecho_group_stats) */
    int64_t view_id; /* out: the current view's id, -1 before the first */
    struct derecho_member_stats *members; /* in: array or NULL */
    size_t max_members;                   /* in: its capacity */
    size_t num_members;                   /* out: members of the view */
    struct derecho_shard_stats *shards;   /* in: array or NULL */
    size_t max_shards;                    /* in: its capacity */
    size_t num_shards; /* out: subgroups where I hold a shard in the
                          current view (0 between views), by subgroup */
};

/* Zeroes *s and sets s->size.  NULL: nothing happens. */
DERECHO_EXPORT void derecho_group_stats_init(struct derecho_group_stats *s);

/* Fills *s (see above) from the current view: one snapshot under the
 * library's locks (counts may move on right after).  s->size must cover
 * at least the fields above; a larger size is accepted when the extra
 * bytes are zero (-EINVAL otherwise).  Errors: -EINVAL (NULL g or s, bad
 * size).  Any thread, on_view and on_deliver included (it never blocks
 * on the network).  Cheap: no allocation. */
DERECHO_EXPORT int derecho_group_stats(struct derecho_group *g,
                                       struct derecho_group_stats *s);

/* ======================================================================= */
/* Sending (ordered multicast over SMC and RDMC; docs/derecho.md)          */
/* ======================================================================= */

/* flags of the send calls: return -EAGAIN instead of waiting. */
#define DERECHO_SEND_NONBLOCK 1

/* Reserves size bytes in place in my next outgoing slot of subgroup (in
 * my shard of it); *buf gets where to write them (valid until the commit
 * or cancel).  Fill them, then derecho_send_commit.  One reservation per
 * subgroup at a time in a process: another thread's reserve waits for
 * it.  Waits (or -EAGAIN with DERECHO_SEND_NONBLOCK) while the window is
 * full (window_size messages of mine not yet delivered by every shard
 * member), during a view change, and while the subgroup is not
 * provisioned.  Errors: -EINVAL (NULL), -ERANGE (no such subgroup),
 * -ENOENT (I am in no shard of subgroup), -EPERM (my shard lists me as
 * receive-only), -EMSGSIZE (size over the profile's max_payload_size, or
 * over max_smc_payload_size when that is larger; sizes between the two
 * are reserved in my registered RDMC ring and go through RDMC, whose
 * ring positions wait like the window), -EBUSY (this thread already
 * holds the reservation), -EAGAIN.  Any thread (blocking calls not from
 * on_deliver), but not during derecho_group_destroy. */
DERECHO_EXPORT int derecho_send_reserve(struct derecho_group *g,
                                        uint32_t subgroup, size_t size,
                                        int flags, void **buf);

/* Sends the reserved message with its first size bytes (at most the
 * reserved size).  From then on it is delivered to every shard member in
 * order (or, if the view changes first, up to the view's end; see
 * docs/derecho.md).  Errors: -EINVAL (size over the reservation),
 * -ENOENT (this thread holds no reservation of subgroup), -ERANGE, and
 * a push error (logged; the message was committed locally). */
DERECHO_EXPORT int derecho_send_commit(struct derecho_group *g,
                                       uint32_t subgroup, size_t size);

/* Drops this thread's reservation of subgroup (nothing is sent).
 * -ENOENT when there is none. */
DERECHO_EXPORT int derecho_send_cancel(struct derecho_group *g,
                                       uint32_t subgroup);

/* Copies size bytes from data into a slot and commits it: reserve + copy
 * + commit, with their errors. */
DERECHO_EXPORT int derecho_send(struct derecho_group *g, uint32_t subgroup,
                                const void *data, size_t size, int flags);

/* The largest message my shard of subgroup takes through SMC (its
 * profile's max_smc_payload_size).  -ERANGE, -ENOENT as above, -EAGAIN
 * between views or while not provisioned. */
DERECHO_EXPORT int derecho_send_max_size(struct derecho_group *g,
                                         uint32_t subgroup, size_t *size);

/* The largest message my shard of subgroup takes at all: its profile's
 * max_payload_size when that is above max_smc_payload_size (messages
 * between the two go through RDMC), else max_smc_payload_size.  Errors as
 * derecho_send_max_size. */
DERECHO_EXPORT int derecho_send_max_payload(struct derecho_group *g,
                                            uint32_t subgroup, size_t *size);

#ifdef __cplusplus
}
#endif

#endif
