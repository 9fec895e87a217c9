/* The view object: one installed membership, its layout, and its encoding
 * (how the leader announces a view to joiners and members). */
#include "derecho-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct derecho_view {
    uint32_t view_id;
    uint32_t leader_rank;
    int my_rank;
    size_t num_members;
    struct derecho_member *members;
    uint32_t *ids; /* members' node ids, rank order */
    size_t num_joined, num_departed;
    uint32_t *joined, *departed;
    struct derecho_layout *layout;
};

void derecho_view_destroy(struct derecho_view *v)
{
    if (!v)
        return;
    free(v->members);
    free(v->ids);
    free(v->joined);
    free(v->departed);
    derecho_layout_destroy(v->layout);
    free(v);
}

static bool has_id(const uint32_t *ids, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static bool valid_ip(const char *ip)
{
    size_t n = strnlen(ip, DERECHO_MAX_IP + 1);
    return n >= 1 && n <= DERECHO_MAX_IP;
}

/* Allocates v's member arrays for n members. */
static struct derecho_view *view_alloc(size_t n)
{
    struct derecho_view *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->members = calloc(n ? n : 1, sizeof(*v->members));
    v->ids = calloc(n ? n : 1, sizeof(*v->ids));
    if (!v->members || !v->ids) {
        derecho_view_destroy(v);
        return NULL;
    }
    v->num_members = n;
    v->my_rank = -1;
    return v;
}

static void set_my_rank(struct derecho_view *v, uint32_t my_node_id)
{
    v->my_rank = -1;
    for (size_t i = 0; my_node_id != DERECHO_NODE_NONE && i < v->num_members;
         i++)
        if (v->ids[i] == my_node_id)
            v->my_rank = (int)i;
}

int derecho_view_create(uint32_t view_id, const struct derecho_member *members,
                        size_t n, uint32_t leader_rank,
                        const struct derecho_view *prev,
                        const struct derecho_layout_spec *spec,
                        uint32_t my_node_id, struct derecho_view **out,
                        struct derecho_error *err)
{
    if (out)
        *out = NULL;
    if (!out || !members || n == 0)
        return derecho__fail(err, -EINVAL, "view: no members or NULL out");
    if (n > DERECHO_MAX_MEMBERS)
        return derecho__fail(err, -ERANGE, "view: %zu members (at most %d)", n,
                             DERECHO_MAX_MEMBERS);
    if (leader_rank >= n)
        return derecho__fail(err, -EINVAL, "view: leader rank %u of %zu",
                             leader_rank, n);
    if (prev && view_id <= prev->view_id)
        return derecho__fail(err, -EINVAL,
                             "view: id %u does not follow view %u", view_id,
                             prev->view_id);
    struct derecho_view *v = view_alloc(n);
    if (!v)
        return derecho__fail(err, -ENOMEM, "view: out of memory");
    v->view_id = view_id;
    v->leader_rank = leader_rank;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (members[i].node_id == DERECHO_NODE_NONE ||
            has_id(v->ids, i, members[i].node_id))
            rc = derecho__fail(err, -EINVAL,
                               "view: rank %zu: node id %u invalid or listed "
                               "twice",
                               i, members[i].node_id);
        else if (!valid_ip(members[i].ip))
            rc = derecho__fail(err, -EINVAL,
                               "view: rank %zu: address empty or too long", i);
        v->members[i] = members[i];
        v->ids[i] = members[i].node_id;
    }
    if (rc == 0 && prev) {
        v->joined = malloc(n * sizeof(*v->joined));
        v->departed = malloc((prev->num_members ? prev->num_members : 1) *
                             sizeof(*v->departed));
        if (!v->joined || !v->departed)
            rc = derecho__fail(err, -ENOMEM, "view: out of memory");
        for (size_t i = 0; rc == 0 && i < n; i++)
            if (!has_id(prev->ids, prev->num_members, v->ids[i]))
                v->joined[v->num_joined++] = v->ids[i];
        for (size_t i = 0; rc == 0 && i < prev->num_members; i++)
            if (!has_id(v->ids, n, prev->ids[i]))
                v->departed[v->num_departed++] = prev->ids[i];
    } else if (rc == 0) {
        /* View 0: everyone joined. */
        v->joined = malloc(n * sizeof(*v->joined));
        if (!v->joined)
            rc = derecho__fail(err, -ENOMEM, "view: out of memory");
        else
            memcpy(v->joined, v->ids, n * sizeof(*v->joined));
        v->num_joined = v->joined ? n : 0;
    }
    if (rc == 0 && spec)
        rc = derecho_layout_compute(spec, v->ids, n, prev ? prev->layout : NULL,
                                    &v->layout, err);
    if (rc) {
        derecho_view_destroy(v);
        return rc;
    }
    set_my_rank(v, my_node_id);
    *out = v;
    return 0;
}

int64_t derecho_view_id(const struct derecho_view *v)
{
    return v ? (int64_t)v->view_id : -1;
}

size_t derecho_view_num_members(const struct derecho_view *v)
{
    return v ? v->num_members : 0;
}

const struct derecho_member *derecho_view_member(const struct derecho_view *v,
                                                 size_t rank)
{
    return v && rank < v->num_members ? &v->members[rank] : NULL;
}

int derecho_view_rank_of(const struct derecho_view *v, uint32_t node_id)
{
    for (size_t i = 0; v && i < v->num_members; i++)
        if (v->ids[i] == node_id)
            return (int)i;
    return -1;
}

int derecho_view_leader_rank(const struct derecho_view *v)
{
    return v ? (int)v->leader_rank : -1;
}

int derecho_view_my_rank(const struct derecho_view *v)
{
    return v ? v->my_rank : -1;
}

const uint32_t *derecho_view_joined(const struct derecho_view *v, size_t *n)
{
    size_t count = v ? v->num_joined : 0;
    if (n)
        *n = count;
    return count ? v->joined : NULL;
}

const uint32_t *derecho_view_departed(const struct derecho_view *v, size_t *n)
{
    size_t count = v ? v->num_departed : 0;
    if (n)
        *n = count;
    return count ? v->departed : NULL;
}

const struct derecho_layout *derecho_view_layout(const struct derecho_view *v)
{
    return v ? v->layout : NULL;
}

/* ---- encoding --------------------------------------------------------------
 * u32 view id, u32 leader rank, u32 count of members, each: u32 node id,
 * string ip (<= 63 bytes), u16 gms, sst, rdmc and external ports; u32
 * count + u32 ids joined; the same for departed; presence byte, then the
 * layout: u32 subgroups, each u32 type, bool provisioned, u32 shards, each
 * u8 mode, string profile, u32 count + u32 member ids, u32 count + bool
 * sender flags.  My rank is not encoded: every reader finds its own. */

int derecho_view_encode(const struct derecho_view *v, struct mutils_writer *w)
{
    if (!v || !w)
        return -EINVAL;
    mutils_put_u32(w, v->view_id);
    mutils_put_u32(w, v->leader_rank);
    mutils_put_count(w, v->num_members, DERECHO_MAX_MEMBERS);
    for (size_t i = 0; i < v->num_members; i++) {
        const struct derecho_member *m = &v->members[i];
        mutils_put_u32(w, m->node_id);
        mutils_put_string(w, m->ip, DERECHO_MAX_IP);
        mutils_put_u16(w, m->gms_port);
        mutils_put_u16(w, m->sst_port);
        mutils_put_u16(w, m->rdmc_port);
        mutils_put_u16(w, m->external_port);
    }
    mutils_put_array(w, MUTILS_KIND_U32, v->joined, v->num_joined,
                     DERECHO_MAX_MEMBERS);
    mutils_put_array(w, MUTILS_KIND_U32, v->departed, v->num_departed,
                     DERECHO_MAX_MEMBERS);
    mutils_put_present(w, v->layout != NULL);
    if (v->layout)
        derecho__layout_encode(v->layout, w);
    return mutils_writer_error(w);
}

static int decode_ids(struct mutils_reader *r, uint32_t **ids, size_t *n,
                      const char *what, struct derecho_error *err)
{
    size_t count;
    /* Peek the count to size the copy; get_array re-reads it. */
    struct mutils_reader peek = *r;
    if (mutils_get_count(&peek, &count, DERECHO_MAX_MEMBERS) ||
        count * 4 > mutils_reader_remaining(&peek))
        return derecho__fail(err, -EBADMSG, "view: %s list malformed", what);
    *ids = malloc((count ? count : 1) * sizeof(**ids));
    if (!*ids)
        return derecho__fail(err, -ENOMEM, "view: out of memory");
    if (mutils_get_array(r, MUTILS_KIND_U32, *ids, count, n,
                         DERECHO_MAX_MEMBERS))
        return derecho__fail(err, -EBADMSG, "view: %s list malformed", what);
    return 0;
}

int derecho_view_decode(const void *buf, size_t len, uint32_t my_node_id,
                        struct derecho_view **out, struct derecho_error *err)
{
    if (out)
        *out = NULL;
    if (!out || (!buf && len))
        return derecho__fail(err, -EINVAL, "view: NULL argument");
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    uint32_t view_id = 0, leader_rank = 0;
    size_t n = 0;
    mutils_get_u32(&r, &view_id);
    mutils_get_u32(&r, &leader_rank);
    if (mutils_get_count(&r, &n, DERECHO_MAX_MEMBERS) || n == 0 ||
        n * 15 > mutils_reader_remaining(&r))
        return derecho__fail(err, -EBADMSG,
                             "view: truncated, or member count 0 or over %d",
                             DERECHO_MAX_MEMBERS);
    if (leader_rank >= n)
        return derecho__fail(err, -EBADMSG, "view: leader rank %u of %zu",
                             leader_rank, n);
    struct derecho_view *v = view_alloc(n);
    if (!v)
        return derecho__fail(err, -ENOMEM, "view: out of memory");
    v->view_id = view_id;
    v->leader_rank = leader_rank;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct derecho_member *m = &v->members[i];
        mutils_get_u32(&r, &m->node_id);
        mutils_get_string(&r, m->ip, sizeof(m->ip), NULL, DERECHO_MAX_IP);
        mutils_get_u16(&r, &m->gms_port);
        mutils_get_u16(&r, &m->sst_port);
        mutils_get_u16(&r, &m->rdmc_port);
        mutils_get_u16(&r, &m->external_port);
        if (mutils_reader_error(&r, NULL) || m->ip[0] == 0)
            rc = derecho__fail(err, -EBADMSG, "view: member %zu malformed", i);
        else if (m->node_id == DERECHO_NODE_NONE ||
                 has_id(v->ids, i, m->node_id))
            rc = derecho__fail(err, -EBADMSG,
                               "view: rank %zu: node id %u invalid or listed "
                               "twice",
                               i, m->node_id);
        v->ids[i] = m->node_id;
    }
    if (rc == 0)
        rc = decode_ids(&r, &v->joined, &v->num_joined, "joined", err);
    if (rc == 0)
        rc = decode_ids(&r, &v->departed, &v->num_departed, "departed", err);
    for (size_t i = 0; rc == 0 && i < v->num_joined; i++)
        if (!has_id(v->ids, n, v->joined[i]) ||
            has_id(v->joined, i, v->joined[i]))
            rc = derecho__fail(err, -EBADMSG,
                               "view: joined node %u is no member or listed "
                               "twice",
                               v->joined[i]);
    for (size_t i = 0; rc == 0 && i < v->num_departed; i++)
        if (has_id(v->ids, n, v->departed[i]) ||
            has_id(v->departed, i, v->departed[i]))
            rc = derecho__fail(err, -EBADMSG,
                               "view: departed node %u is still a member or "
                               "listed twice",
                               v->departed[i]);
    bool has_layout = false;
    if (rc == 0 && mutils_get_present(&r, &has_layout))
        rc = derecho__fail(err, -EBADMSG, "view: truncated before layout");
    if (rc == 0 && has_layout)
        rc = derecho__layout_decode(&r, v->ids, n, &v->layout, err);
    if (rc == 0 && mutils_reader_finish(&r))
        rc = derecho__fail(err, -EBADMSG, "view: %zu bytes after the end",
                           mutils_reader_remaining(&r));
    if (rc) {
        derecho_view_destroy(v);
        return rc;
    }
    set_my_rank(v, my_node_id);
    *out = v;
    return 0;
}
