/* Bootstrap frame codec.  The only file that knows the byte layout
 * (docs/fab.md, "Bootstrap"), so that moving it onto libmutils' bounded
 * writer/reader is a change of this file alone.
 *
 * Frame: u32 length (LE) of the body, then the body, all little-endian:
 *   u32 magic, u16 version, u8 type, u8 endian, u8 word_size, u8 status,
 *   u8 field, u32 src_node, u32 dst_node, u16 port, u64 fingerprint,
 *   u64 token,
 *   u16 addr_len, addr_len bytes, u32 blob_len, blob_len bytes.
 * A body whose magic or version is not ours is decoded only that far, so
 * that the check can name the field instead of failing as malformed. */
#include "fab-private.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
};

static void put(struct wbuf *w, uint64_t v, size_t n)
{
    if (w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    for (size_t i = 0; i < n; i++)
        w->p[w->len++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(struct wbuf *w, const void *b, size_t n)
{
    if (w->cap - w->len < n) {
        w->overflow = true;
        return;
    }
    if (n)
        memcpy(w->p + w->len, b, n);
    w->len += n;
}

struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
};

static uint64_t get(struct rbuf *r, size_t n)
{
    if (r->len - r->pos < n) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->pos++] << (8 * i);
    return v;
}

static bool little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

void fab__frame_init(struct fab__frame *f, uint8_t type)
{
    memset(f, 0, sizeof(*f));
    f->magic = FAB__MAGIC;
    f->version = FAB_PROTOCOL_VERSION;
    f->type = type;
    f->endian = little_endian() ? 1 : 2;
    f->word_size = (uint8_t)sizeof(void *);
}

int fab__frame_encode(const struct fab__frame *f, uint8_t *buf, size_t cap)
{
    if (f->addr_len > FAB__ADDR_MAX || f->blob_len > FAB_BLOB_MAX)
        return -EINVAL;
    struct wbuf w = {.p = buf, .cap = cap};
    put(&w, 0, 4); /* length, patched below */
    put(&w, f->magic, 4);
    put(&w, f->version, 2);
    put(&w, f->type, 1);
    put(&w, f->endian, 1);
    put(&w, f->word_size, 1);
    put(&w, f->status, 1);
    put(&w, f->field, 1);
    put(&w, f->src_node, 4);
    put(&w, f->dst_node, 4);
    put(&w, f->port, 2);
    put(&w, f->fingerprint, 8);
    put(&w, f->token, 8);
    put(&w, f->addr_len, 2);
    put_bytes(&w, f->addr, f->addr_len);
    put(&w, f->blob_len, 4);
    put_bytes(&w, f->blob, f->blob_len);
    if (w.overflow)
        return -ENOSPC;
    uint32_t body = (uint32_t)(w.len - 4);
    for (int i = 0; i < 4; i++)
        buf[i] = (uint8_t)(body >> (8 * i));
    return (int)w.len;
}

int fab__frame_decode(const uint8_t *buf, size_t len, struct fab__frame *f)
{
    memset(f, 0, sizeof(*f));
    struct rbuf r = {.p = buf, .len = len};
    f->magic = (uint32_t)get(&r, 4);
    f->version = (uint16_t)get(&r, 2);
    if (r.bad)
        return -EBADMSG;
    if (f->magic != FAB__MAGIC || f->version != FAB_PROTOCOL_VERSION)
        return 0; /* foreign layout: let the check name the field */
    f->type = (uint8_t)get(&r, 1);
    f->endian = (uint8_t)get(&r, 1);
    f->word_size = (uint8_t)get(&r, 1);
    f->status = (uint8_t)get(&r, 1);
    f->field = (uint8_t)get(&r, 1);
    f->src_node = (uint32_t)get(&r, 4);
    f->dst_node = (uint32_t)get(&r, 4);
    f->port = (uint16_t)get(&r, 2);
    f->fingerprint = get(&r, 8);
    f->token = get(&r, 8);
    f->addr_len = (uint16_t)get(&r, 2);
    if (r.bad || f->addr_len > FAB__ADDR_MAX || r.len - r.pos < f->addr_len)
        return -EBADMSG;
    memcpy(f->addr, r.p + r.pos, f->addr_len);
    r.pos += f->addr_len;
    f->blob_len = (uint32_t)get(&r, 4);
    if (r.bad || f->blob_len > FAB_BLOB_MAX || r.len - r.pos < f->blob_len)
        return -EBADMSG;
    f->blob = f->blob_len ? r.p + r.pos : NULL;
    r.pos += f->blob_len;
    if (r.pos != r.len)
        return -EBADMSG; /* trailing bytes */
    if (f->type < FAB__MSG_HELLO || f->type > FAB__MSG_FETCH_REPLY)
        return -EBADMSG;
    return 0;
}

const char *fab__field_name(enum fab__field field)
{
    switch (field) {
    case FAB__F_NONE:
        return "none";
    case FAB__F_MAGIC:
        return "magic";
    case FAB__F_VERSION:
        return "protocol version";
    case FAB__F_ENDIAN:
        return "endianness";
    case FAB__F_WORDSIZE:
        return "word size";
    case FAB__F_NODE_ID:
        return "node id";
    case FAB__F_FINGERPRINT:
        return "fingerprint";
    case FAB__F_TYPE:
        return "frame type";
    }
    return "unknown";
}

enum fab__field fab__frame_check(const struct fab__frame *f,
                                 uint64_t fingerprint, char *msg, size_t cap)
{
    struct fab__frame me;
    fab__frame_init(&me, 0);
    enum fab__field bad = FAB__F_NONE;
    uint64_t mine = 0, theirs = 0;
    if (f->magic != me.magic) {
        bad = FAB__F_MAGIC, mine = me.magic, theirs = f->magic;
    } else if (f->version != me.version) {
        bad = FAB__F_VERSION, mine = me.version, theirs = f->version;
    } else if (f->endian != me.endian) {
        bad = FAB__F_ENDIAN, mine = me.endian, theirs = f->endian;
    } else if (f->word_size != me.word_size) {
        bad = FAB__F_WORDSIZE, mine = me.word_size, theirs = f->word_size;
    } else if (f->fingerprint != fingerprint) {
        bad = FAB__F_FINGERPRINT, mine = fingerprint, theirs = f->fingerprint;
    }
    if (bad != FAB__F_NONE && msg)
        snprintf(msg, cap, "%s differs (local 0x%llx, peer 0x%llx)",
                 fab__field_name(bad), (unsigned long long)mine,
                 (unsigned long long)theirs);
    return bad;
}
