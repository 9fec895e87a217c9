/* Descriptors shared by the tests and the fuzz target: a view of a group,
 * a struct of arrays of structs with optional strings, maps, fixed arrays
 * and every primitive. */
#ifndef MUTILS_SAMPLE_TYPES_H
#define MUTILS_SAMPLE_TYPES_H

#include <mutils/mutils.h>

struct sample_member {
    uint32_t id;
    struct mutils_str *nickname; /* optional */
    bool alive;
    int8_t rank;
};

struct sample_shard {
    char name[16];
    struct mutils_array members; /* struct sample_member, at most 8 */
    struct mutils_array weights; /* double, at most 16 */
    int16_t fixed[3];
    struct mutils_bytes blob; /* at most 64 */
    float load;
    uint16_t port;
};

struct sample_view {
    int64_t vid;
    uint64_t leader;
    struct mutils_array shards; /* struct sample_shard, at most 4 */
    struct mutils_map attrs;    /* string(32) -> u64, at most 8 */
    uint8_t *epoch;             /* optional u8 */
    int32_t i32;
    double f64;
};

static const struct mutils_type sample_member_type = MUTILS_STRUCT_INIT(
    struct sample_member,
    MUTILS_FIELD(struct sample_member, id, &mutils_type_u32),
    MUTILS_FIELD(struct sample_member, nickname,
                 MUTILS_TYPE_OPTIONAL(MUTILS_TYPE_STRING(24))),
    MUTILS_FIELD(struct sample_member, alive, &mutils_type_bool),
    MUTILS_FIELD(struct sample_member, rank, &mutils_type_i8));

static const struct mutils_type sample_shard_type = MUTILS_STRUCT_INIT(
    struct sample_shard,
    MUTILS_FIELD(struct sample_shard, name, MUTILS_TYPE_STRBUF(16)),
    MUTILS_FIELD(struct sample_shard, members,
                 MUTILS_TYPE_ARRAY(&sample_member_type, 8)),
    MUTILS_FIELD(struct sample_shard, weights,
                 MUTILS_TYPE_ARRAY(&mutils_type_f64, 16)),
    MUTILS_FIELD(struct sample_shard, fixed,
                 MUTILS_TYPE_FIXED(&mutils_type_i16, 3)),
    MUTILS_FIELD(struct sample_shard, blob, MUTILS_TYPE_BYTES(64)),
    MUTILS_FIELD(struct sample_shard, load, &mutils_type_f32),
    MUTILS_FIELD(struct sample_shard, port, &mutils_type_u16));

static const struct mutils_type sample_view_type = MUTILS_STRUCT_INIT(
    struct sample_view, MUTILS_FIELD(struct sample_view, vid, &mutils_type_i64),
    MUTILS_FIELD(struct sample_view, leader, &mutils_type_u64),
    MUTILS_FIELD(struct sample_view, shards,
                 MUTILS_TYPE_ARRAY(&sample_shard_type, 4)),
    MUTILS_FIELD(struct sample_view, attrs,
                 MUTILS_TYPE_MAP(MUTILS_TYPE_STRING(32), &mutils_type_u64, 8)),
    MUTILS_FIELD(struct sample_view, epoch,
                 MUTILS_TYPE_OPTIONAL(&mutils_type_u8)),
    MUTILS_FIELD(struct sample_view, i32, &mutils_type_i32),
    MUTILS_FIELD(struct sample_view, f64, &mutils_type_f64));

/* An RPC argument list f(int64 id, string name, bytes blob). */
static const struct mutils_type sample_args_type =
    MUTILS_ARGS_INIT("sample_call", MUTILS_ARG("id", &mutils_type_i64),
                     MUTILS_ARG("name", MUTILS_TYPE_STRING(64)),
                     MUTILS_ARG("blob", MUTILS_TYPE_BYTES(256)));

/* A recursive list: each node holds an optional next node. */
struct sample_node {
    uint32_t value;
    struct sample_node *next;
};

static const struct mutils_type sample_node_type;
static const struct mutils_type sample_node_type = MUTILS_STRUCT_INIT(
    struct sample_node,
    MUTILS_FIELD(struct sample_node, value, &mutils_type_u32),
    MUTILS_FIELD(struct sample_node, next,
                 MUTILS_TYPE_OPTIONAL(&sample_node_type)));

#endif
