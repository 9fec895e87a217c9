/* Export of a version range as bytes, and their bounded import.
 *
 * Format (little-endian, docs/persistent.md):
 *   header  32 bytes: magic u64, format u32, zero u32, count u64, zero u64
 *   entry   version u64, timestamp u64, size u32, zero u32, bytes, pad to 8
 *   trailer XXH3-64 of everything before it, u64
 */
#include "persistent-private.h"

#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#define EXP_MAGIC 0x3150584552455044ull /* "DPEREXP1" LE */
#define EXP_HEADER 32u
#define EXP_ENTRY 24u
#define EXP_TRAILER 8u

struct sizer {
    uint64_t bytes;
    uint64_t count;
};

static int size_entry(void *ctx, const struct persistent_entry *e)
{
    struct sizer *s = ctx;
    s->bytes += EXP_ENTRY + persistent__pad8(e->size);
    s->count++;
    return 0;
}

struct writer {
    uint8_t *p;
};

static int write_entry(void *ctx, const struct persistent_entry *e)
{
    struct writer *w = ctx;
    persistent__put64(w->p, (uint64_t)e->version);
    persistent__put64(w->p + 8, (uint64_t)e->timestamp_ns);
    persistent__put32(w->p + 16, (uint32_t)e->size);
    persistent__put32(w->p + 20, 0);
    if (e->size)
        memcpy(w->p + EXP_ENTRY, e->data, e->size);
    memset(w->p + EXP_ENTRY + e->size, 0, persistent__pad8(e->size) - e->size);
    w->p += EXP_ENTRY + persistent__pad8(e->size);
    return 0;
}

int persistent_log_export(const struct persistent_log *log,
                          int64_t from_version, int64_t to_version,
                          uint8_t **bytes, size_t *len)
{
    if (!log || !bytes || !len)
        return -EINVAL;
    *bytes = NULL;
    *len = 0;
    /* Size and copy under one read lock, so no trim comes between; entries
     * appended meanwhile lie beyond the range computed here. */
    struct persistent_log *l = (struct persistent_log *)log;
    int le = persistent__rdlock(l);
    if (le)
        return le;
    uint64_t n = atomic_load_explicit(&l->count, memory_order_acquire);
    int64_t a = from_version == INT64_MIN
                    ? -1
                    : persistent__find_le_version(l, n, from_version - 1);
    int64_t b = from_version <= to_version
                    ? persistent__find_le_version(l, n, to_version)
                    : a;
    if (b < a)
        b = a;
    if (b > a) {
        int e = persistent__visible(l, (uint64_t)b);
        if (e) {
            pthread_rwlock_unlock(&l->lock);
            return e;
        }
    }
    struct sizer s = {0, 0};
    for (int64_t p = a + 1; p <= b; p++) {
        struct persistent_entry ent;
        persistent__fill(l, (uint64_t)p, &ent);
        size_entry(&s, &ent);
    }
    uint64_t total = EXP_HEADER + s.bytes + EXP_TRAILER;
    uint8_t *buf = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (!buf) {
        pthread_rwlock_unlock(&l->lock);
        return -ENOMEM;
    }
    struct writer w = {buf + EXP_HEADER};
    for (int64_t p = a + 1; p <= b; p++) {
        struct persistent_entry ent;
        persistent__fill(l, (uint64_t)p, &ent);
        write_entry(&w, &ent);
    }
    pthread_rwlock_unlock(&l->lock);
    memset(buf, 0, EXP_HEADER);
    persistent__put64(buf, EXP_MAGIC);
    persistent__put32(buf + 8, PERSISTENT__EXPORT_FORMAT);
    persistent__put64(buf + 16, s.count);
    persistent__put64(buf + total - EXP_TRAILER,
                      XXH3_64bits(buf, total - EXP_TRAILER));
    *bytes = buf;
    *len = (size_t)total;
    return 0;
}

struct parsed {
    uint64_t count;
    int64_t first_version, last_version;
    int64_t first_ts;
};

/* Checks every byte of an export; never reads outside [bytes, bytes+len). */
static int parse(const uint8_t *bytes, size_t len, struct parsed *out)
{
    if (!bytes || len < EXP_HEADER + EXP_TRAILER)
        return -EBADMSG;
    if (persistent__get64(bytes) != EXP_MAGIC ||
        persistent__get32(bytes + 8) != PERSISTENT__EXPORT_FORMAT ||
        persistent__get32(bytes + 12) != 0 ||
        persistent__get64(bytes + 24) != 0)
        return -EBADMSG;
    if (persistent__get64(bytes + len - EXP_TRAILER) !=
        XXH3_64bits(bytes, len - EXP_TRAILER))
        return -EBADMSG;
    uint64_t count = persistent__get64(bytes + 16);
    size_t body_end = len - EXP_TRAILER;
    if (count > (body_end - EXP_HEADER) / EXP_ENTRY)
        return -EBADMSG;
    size_t pos = EXP_HEADER;
    int64_t last_v = -1, last_ts = INT64_MIN;
    out->first_version = PERSISTENT_INVALID_VERSION;
    out->first_ts = INT64_MIN;
    for (uint64_t i = 0; i < count; i++) {
        if (body_end - pos < EXP_ENTRY)
            return -EBADMSG;
        int64_t v = (int64_t)persistent__get64(bytes + pos);
        int64_t ts = (int64_t)persistent__get64(bytes + pos + 8);
        uint64_t size = persistent__get32(bytes + pos + 16);
        if (persistent__get32(bytes + pos + 20) != 0)
            return -EBADMSG;
        if (v < 0 || v <= last_v || ts < last_ts)
            return -EBADMSG;
        pos += EXP_ENTRY;
        if (body_end - pos < persistent__pad8(size))
            return -EBADMSG;
        pos += persistent__pad8(size);
        if (i == 0) {
            out->first_version = v;
            out->first_ts = ts;
        }
        last_v = v;
        last_ts = ts;
    }
    if (pos != body_end)
        return -EBADMSG;
    out->count = count;
    out->last_version = last_v;
    return 0;
}

int persistent_log_import(struct persistent_log *log, const uint8_t *bytes,
                          size_t len, uint64_t *imported)
{
    if (imported)
        *imported = 0;
    /* NULL with a length is a bad argument; (NULL, 0) is an empty buffer,
     * malformed like any other too short for a header. */
    if (!log || (!bytes && len > 0) || persistent__in_iteration(log))
        return -EINVAL;
    struct parsed p;
    int e = parse(bytes, len, &p);
    if (e)
        return e;
    if (p.count == 0)
        return 0;
    /* Above the last version ever appended (kept across a trim that
     * emptied the log), as append requires. */
    int64_t prev = log->last_ver;
    if (p.first_version <= prev || p.first_ts < log->last_ts)
        return -EINVAL;
    size_t pos = EXP_HEADER;
    for (uint64_t i = 0; i < p.count; i++) {
        int64_t v = (int64_t)persistent__get64(bytes + pos);
        int64_t ts = (int64_t)persistent__get64(bytes + pos + 8);
        uint32_t size = persistent__get32(bytes + pos + 16);
        pos += EXP_ENTRY;
        e = persistent_log_append(log, v, ts, bytes + pos, size);
        if (e) {
            if (i > 0)
                persistent_log_truncate(log, prev);
            return e;
        }
        pos += persistent__pad8(size);
    }
    if (imported)
        *imported = p.count;
    return 0;
}
