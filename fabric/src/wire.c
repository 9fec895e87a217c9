/* Bootstrap frame codec, on libmutils' bounded writer and reader.  The
 * only file that knows the byte layout (docs/fab.md, "Bootstrap").
 *
 * Frame: u32 length of the body, then the body, in libmutils' wire format
 * (little-endian, no padding):
 *   u32 magic, u16 version, u8 type, u8 endian, u8 word_size, u8 status,
 *   u8 field, u32 src_node, u32 dst_node, u16 port, u64 fingerprint,
 *   u64 token, bytes addr (u32 length <= 128, then the bytes),
 *   bytes blob (u32 length <= FAB_BLOB_MAX, then the bytes).
 * A body whose magic or version is not ours is decoded only that far, so
 * that the check can name the field instead of failing as malformed. */
#include "fab-private.h"

#include <mutils/mutils.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    struct mutils_writer w;
    mutils_writer_init(&w, buf, cap);
    mutils_put_u32(&w, 0); /* length, patched below */
    mutils_put_u32(&w, f->magic);
    mutils_put_u16(&w, f->version);
    mutils_put_u8(&w, f->type);
    mutils_put_u8(&w, f->endian);
    mutils_put_u8(&w, f->word_size);
    mutils_put_u8(&w, f->status);
    mutils_put_u8(&w, f->field);
    mutils_put_u32(&w, f->src_node);
    mutils_put_u32(&w, f->dst_node);
    mutils_put_u16(&w, f->port);
    mutils_put_u64(&w, f->fingerprint);
    mutils_put_u64(&w, f->token);
    mutils_put_bytes(&w, f->addr, f->addr_len, FAB__ADDR_MAX);
    mutils_put_bytes(&w, f->blob, f->blob_len, FAB_BLOB_MAX);
    int rc = mutils_writer_error(&w);
    if (rc)
        return rc == -ENOSPC ? -ENOSPC : -EINVAL;
    size_t len = mutils_writer_len(&w);
    struct mutils_writer hdr;
    mutils_writer_init(&hdr, buf, 4);
    mutils_put_u32(&hdr, (uint32_t)(len - 4));
    return (int)len;
}

int fab__frame_decode(const uint8_t *buf, size_t len, struct fab__frame *f)
{
    memset(f, 0, sizeof(*f));
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    mutils_get_u32(&r, &f->magic);
    mutils_get_u16(&r, &f->version);
    if (mutils_reader_error(&r, NULL))
        return -EBADMSG;
    if (f->magic != FAB__MAGIC || f->version != FAB_PROTOCOL_VERSION)
        return 0; /* foreign layout: let the check name the field */
    mutils_get_u8(&r, &f->type);
    mutils_get_u8(&r, &f->endian);
    mutils_get_u8(&r, &f->word_size);
    mutils_get_u8(&r, &f->status);
    mutils_get_u8(&r, &f->field);
    mutils_get_u32(&r, &f->src_node);
    mutils_get_u32(&r, &f->dst_node);
    mutils_get_u16(&r, &f->port);
    mutils_get_u64(&r, &f->fingerprint);
    mutils_get_u64(&r, &f->token);
    size_t addr_len = 0, blob_len = 0;
    mutils_get_bytes(&r, f->addr, sizeof(f->addr), &addr_len, FAB__ADDR_MAX);
    const void *blob = NULL;
    mutils_get_bytes_view(&r, &blob, &blob_len, FAB_BLOB_MAX);
    if (mutils_reader_finish(&r))
        return -EBADMSG; /* short, oversized lengths, or trailing bytes */
    f->addr_len = (uint16_t)addr_len;
    f->blob_len = (uint32_t)blob_len;
    f->blob = blob_len ? blob : NULL;
    if (f->type < FAB__MSG_HELLO || f->type > FAB__MSG_CHALLENGE_REPLY)
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
    case FAB__F_AUTH:
        return "authentication";
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
