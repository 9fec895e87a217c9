/* Log files: open and recovery, append, persist, trim, truncate, close.
 *
 * The format and the recovery rules are in docs/persistent.md; in short:
 * NAME.log is a 64-byte header then 8-aligned records, each with its own
 * XXH3 checksums and the offset up to which the file was known durable when
 * it was written ("synced_end").  NAME.meta (replaced atomically by rename)
 * holds the trim point and a durable offset written at trim, truncate and
 * close.  persist is one fdatasync of NAME.log: the records themselves are
 * what a reopen needs.
 */
#include "persistent-private.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static const uint8_t zero_pad[PERSISTENT__PAGE];

static uint64_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (uint64_t)ps : 4096u;
}

static uint64_t page_down(uint64_t v)
{
    return v & ~(page_size() - 1);
}

static uint64_t page_up(uint64_t v)
{
    return (v + page_size() - 1) & ~(page_size() - 1);
}

static void set_error(struct persistent_error *err, const char *file,
                      uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_error(struct persistent_error *err, const char *file,
                      uint64_t offset, const char *fmt, ...)
{
    if (!err)
        return;
    snprintf(err->file, sizeof(err->file), "%s", file ? file : "");
    err->offset = offset;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

static bool valid_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 200 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static char *join(const char *dir, const char *name, const char *suffix)
{
    size_t n = strlen(dir) + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s%s", dir, name, suffix);
    return p;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len, off_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            return -EBADMSG; /* short file */
        p += r;
        len -= (size_t)r;
        off += r;
    }
    return 0;
}

/* ---- metadata ----------------------------------------------------------- */

/* One slot: the same 128 bytes in both files (docs/persistent.md). */
struct meta {
    uint64_t seq; /* the slot with the higher valid seq is current */
    uint64_t nonce;
    uint64_t start_off;
    int64_t start_index;
    uint64_t durable;
    uint64_t gen;      /* write generation, bumped by truncate */
    uint64_t gen_off;  /* records from here on carry gen */
    int64_t floor_ver; /* the last entry trimmed: later versions are above */
    int64_t floor_ts;
};

static void encode_meta(uint8_t b[PERSISTENT__META_SIZE], uint64_t magic,
                        const struct meta *m)
{
    memset(b, 0, PERSISTENT__META_SIZE);
    persistent__put64(b + 0, magic);
    persistent__put32(b + 8, PERSISTENT__FORMAT);
    persistent__put32(b + 12, PERSISTENT__META_SIZE);
    persistent__put64(b + 16, m->nonce);
    persistent__put64(b + 24, m->start_off);
    persistent__put64(b + 32, (uint64_t)m->start_index);
    persistent__put64(b + 40, m->durable);
    persistent__put64(b + 48, m->seq);
    persistent__put64(b + 56, m->gen);
    persistent__put64(b + 64, m->gen_off);
    persistent__put64(b + 72, (uint64_t)m->floor_ver);
    persistent__put64(b + 80, (uint64_t)m->floor_ts);
    persistent__put64(b + PERSISTENT__META_SIZE - 8,
                      XXH3_64bits(b, PERSISTENT__META_SIZE - 8));
}

static int decode_meta(const uint8_t b[PERSISTENT__META_SIZE], uint64_t magic,
                       struct meta *m)
{
    if (persistent__get64(b) != magic ||
        persistent__get32(b + 8) != PERSISTENT__FORMAT ||
        persistent__get32(b + 12) != PERSISTENT__META_SIZE ||
        persistent__get64(b + PERSISTENT__META_SIZE - 8) !=
            XXH3_64bits(b, PERSISTENT__META_SIZE - 8))
        return -EBADMSG;
    for (size_t i = 88; i < PERSISTENT__META_SIZE - 8; i++) {
        if (b[i] != 0)
            return -EBADMSG;
    }
    m->nonce = persistent__get64(b + 16);
    m->start_off = persistent__get64(b + 24);
    m->start_index = (int64_t)persistent__get64(b + 32);
    m->durable = persistent__get64(b + 40);
    m->seq = persistent__get64(b + 48);
    m->gen = persistent__get64(b + 56);
    m->gen_off = persistent__get64(b + 64);
    m->floor_ver = (int64_t)persistent__get64(b + 72);
    m->floor_ts = (int64_t)persistent__get64(b + 80);
    /* Indexes count on from start_index by at most 2^32 live entries and
     * grow by one per append: a start index near INT64_MAX cannot come from
     * a real log, and counting on from it would overflow. */
    if (m->start_off < PERSISTENT__FILE_HEADER ||
        m->start_off % PERSISTENT__ALIGN || m->start_index < 0 ||
        m->start_index > PERSISTENT__MAX_START_INDEX ||
        m->durable < PERSISTENT__FILE_HEADER ||
        m->durable > PERSISTENT__SYNCED_MASK ||
        m->gen_off < PERSISTENT__FILE_HEADER ||
        m->gen_off % PERSISTENT__ALIGN || m->floor_ver < -1)
        return -EBADMSG;
    return 0;
}

/* Creates path with the bytes atomically: a temporary file, fsync, rename,
 * fsync of the directory.  After a crash the file is absent or complete. */
static int create_file(int dir_fd, const char *path, const void *bytes,
                       size_t len)
{
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, n, "%s.tmp", path);
    int err = 0;
    /* Whatever a crash (or anyone) left under the temporary name goes: a
     * FIFO there would block the open, a symlink redirect the write. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = -errno;
        goto out;
    }
    err = write_all(fd, bytes, len, 0);
    if (!err && fsync(fd) != 0)
        err = -errno;
    close(fd);
    if (!err && rename(tmp, path) != 0)
        err = -errno;
    if (!err && fsync(dir_fd) != 0)
        err = -errno;
    if (err)
        unlink(tmp);
out:
    free(tmp);
    return err;
}

/* The slots as they stand in memory, with a new seq. */
static struct meta current_meta(const struct persistent_log *log)
{
    struct meta m = {log->meta_seq + 1, log->nonce,        log->start_off,
                     log->head_index,   log->meta_durable, log->gen,
                     log->gen_off,      log->floor_ver,    log->floor_ts};
    return m;
}

/* Records m in both files: the older slot of NAME.log (its first two
 * pages), fdatasync, then the older slot of NAME.meta, fdatasync.  So
 * NAME.log is never behind NAME.meta: after a crash the two agree or
 * NAME.log is one step ahead, and any other difference is a stale or
 * damaged file (open refuses).  Each slot is written over the older one
 * (separate pages), so a torn write leaves the newer one.  No space is
 * allocated, so trimming works on a full disk.  On failure the log is
 * broken (what is durable is unknown). */
static int write_meta(struct persistent_log *log, const struct meta *m)
{
    uint8_t b[PERSISTENT__META_SIZE];
    off_t at = (off_t)(m->seq % 2) * PERSISTENT__META_SLOT;
    encode_meta(b, PERSISTENT__FILE_MAGIC, m);
    const char *path = log->data_path;
    int err = write_all(log->fd, b, sizeof(b), at);
    if (!err && fdatasync(log->fd) != 0)
        err = -errno;
    if (!err) {
        path = log->meta_path;
        encode_meta(b, PERSISTENT__META_MAGIC, m);
        int fd = open(log->meta_path, O_WRONLY | O_CLOEXEC);
        err = fd < 0 ? -errno : 0;
        if (!err)
            err = write_all(fd, b, sizeof(b), at);
        if (!err && fdatasync(fd) != 0)
            err = -errno;
        if (fd >= 0)
            close(fd);
    }
    if (err) {
        atomic_store(&log->broken, true);
        persistent__log(log, LOG_ERR, "%s: cannot write: %s", path,
                        persistent_strerror(err));
        return err;
    }
    log->meta_seq = m->seq;
    log->meta_durable = m->durable;
    log->gen = m->gen;
    log->gen_off = m->gen_off;
    log->floor_ver = m->floor_ver;
    log->floor_ts = m->floor_ts;
    return 0;
}

/* Two slots (seq 0 and 1, the same content) in a buffer of two pages. */
static void encode_slots(uint8_t *b, uint64_t magic, const struct meta *m)
{
    memset(b, 0, PERSISTENT__FILE_HEADER);
    struct meta s = *m;
    for (int i = 0; i < 2; i++) {
        s.seq = (uint64_t)i;
        encode_meta(b + (size_t)i * PERSISTENT__META_SLOT, magic, &s);
    }
}

/* Creates NAME.meta then NAME.log (through NAME.log.tmp and rename), so
 * NAME.log exists only complete and always with its NAME.meta. */
static int create_files(struct persistent_log *log)
{
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce)) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        nonce = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^
                (uint64_t)getpid();
    }
    log->nonce = nonce;
    uint8_t *b = malloc(PERSISTENT__FILE_HEADER);
    if (!b)
        return -ENOMEM;
    struct meta m = {1,
                     nonce,
                     PERSISTENT__FILE_HEADER,
                     0,
                     PERSISTENT__FILE_HEADER,
                     0,
                     PERSISTENT__FILE_HEADER,
                     -1,
                     INT64_MIN};
    encode_slots(b, PERSISTENT__META_MAGIC, &m);
    int err =
        create_file(log->dir_fd, log->meta_path, b, PERSISTENT__FILE_HEADER);
    if (!err) {
        encode_slots(b, PERSISTENT__FILE_MAGIC, &m);
        err = create_file(log->dir_fd, log->data_path, b,
                          PERSISTENT__FILE_HEADER);
    }
    free(b);
    return err;
}

/* ---- recovery ------------------------------------------------------------ */

struct rec {
    uint32_t len;
    int64_t version;
    int64_t ts;
    uint64_t synced;
    uint32_t gen16; /* low 16 bits of the write generation */
    uint64_t size;  /* whole record, padded */
};

/* The end of what recovery may read: the file's end or the mapping
 * window's, whichever comes first. */
static uint64_t readable_end(const struct persistent_log *log,
                             uint64_t file_size)
{
    uint64_t window_end = log->map_base_off + log->map_size;
    return file_size < window_end ? file_size : window_end;
}

enum rec_check {
    REC_BAD,    /* not a record: damage or a torn tail */
    REC_OK,     /* a complete record, every byte checked */
    REC_BEYOND, /* a valid header, but the record ends beyond the window */
};

/* Checks the record at file offset pos of a file of file_size bytes,
 * through the log's mapping window.  Bounded: never reads past the file's
 * end nor past the window (a log reopened with a smaller max_data_size, or
 * a hostile file, may reach far beyond it). */
static enum rec_check check_record(const struct persistent_log *log,
                                   uint64_t pos, uint64_t file_size,
                                   struct rec *r)
{
    uint64_t end = readable_end(log, file_size);
    if (pos < log->map_base_off || pos > end ||
        end - pos < PERSISTENT__REC_HEADER)
        return REC_BAD;
    const uint8_t *h = log->map + (pos - log->map_base_off);
    if (persistent__get32(h + PERSISTENT__R_MAGIC) != PERSISTENT__REC_MAGIC)
        return REC_BAD;
    if (persistent__get64(h + PERSISTENT__R_HDRHASH) !=
        XXH3_64bits(h, PERSISTENT__R_HDRHASH))
        return REC_BAD;
    r->len = persistent__get32(h + PERSISTENT__R_LEN);
    r->version = (int64_t)persistent__get64(h + PERSISTENT__R_VERSION);
    r->ts = (int64_t)persistent__get64(h + PERSISTENT__R_TS);
    uint64_t sw = persistent__get64(h + PERSISTENT__R_SYNCED);
    r->synced = sw & PERSISTENT__SYNCED_MASK;
    r->gen16 = (uint32_t)(sw >> PERSISTENT__SYNCED_BITS);
    r->size = persistent__rec_size(pos, r->len);
    if (r->size > file_size - pos)
        return REC_BAD;
    if (r->size > end - pos)
        return REC_BEYOND;
    /* The padding (to 8 bytes, then to the page end) is zero, so every
     * byte of the record is checked. */
    for (uint64_t i = PERSISTENT__REC_HEADER + r->len; i < r->size; i++) {
        if (h[i] != 0)
            return REC_BAD;
    }
    if (persistent__get64(h + PERSISTENT__R_DATAHASH) !=
        XXH3_64bits(h + PERSISTENT__REC_HEADER, r->len))
        return REC_BAD;
    return REC_OK;
}

static int map_window(struct persistent_log *log, uint64_t base_off)
{
    int flags = MAP_SHARED | (log->map ? MAP_FIXED : 0);
    void *p = mmap(log->map, log->map_size, PROT_READ, flags, log->fd,
                   (off_t)base_off);
    if (p == MAP_FAILED)
        return -errno;
    PERSISTENT__STORE(log->map, (uint8_t *)p);
    PERSISTENT__STORE(log->map_base_off, base_off);
    return 0;
}

/* Unmaps the windows a growth left behind (views into them die: trim,
 * truncate and close only). */
static void drop_old_maps(struct persistent_log *log)
{
    for (size_t i = 0; i < log->n_old_maps; i++)
        munmap(log->old_maps[i].p, log->old_maps[i].len);
    free(log->old_maps);
    log->old_maps = NULL;
    log->n_old_maps = 0;
}

/* Makes the window at least need bytes long (need <= window_max): a new,
 * larger mapping at the same file offset (doubling), the old one kept for
 * the views into it.  Writer thread; the caller publishes the entries that
 * need it (count, release) after this. */
static int grow_window(struct persistent_log *log, uint64_t need)
{
    size_t len = log->map_size;
    while (len < need)
        len *= 2;
    len = (size_t)page_up(len);
    if (len > log->window_max)
        len = log->window_max;
    struct persistent__old_map *om =
        realloc(log->old_maps, (log->n_old_maps + 1) * sizeof(*om));
    if (!om)
        return -ENOMEM;
    log->old_maps = om;
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, log->fd,
                   (off_t)log->map_base_off);
    if (p == MAP_FAILED)
        return -errno;
    om[log->n_old_maps++] =
        (struct persistent__old_map){log->map, log->map_size};
    log->map_size = len;
    PERSISTENT__STORE(log->map, (uint8_t *)p);
    return 0;
}

#define HUGE_PAGE (2u << 20)

/* The index ring: anonymous, reserved lazily, aligned to a huge page so
 * that transparent huge pages can back all of it (lookups jump around the
 * index; huge pages spare most TLB misses). */
static struct persistent__ent *map_index(uint64_t cap, void **raw,
                                         size_t *raw_len)
{
    size_t len = cap * sizeof(struct persistent__ent) + HUGE_PAGE;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    *raw = p;
    *raw_len = len;
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    madvise((void *)a, cap * sizeof(struct persistent__ent), MADV_HUGEPAGE);
    return (struct persistent__ent *)a;
}

/* Scans the records from the trim point, fills the index, and decides what
 * a bad record means: inside what is known durable (NAME.meta's durable
 * offset, or a later valid record's synced_end) it is damage (-EBADMSG);
 * beyond, it is a torn tail, cut off. */
static int recover(struct persistent_log *log, const struct meta *m,
                   uint64_t file_size, struct persistent_error *err)
{
    uint64_t pos = m->start_off; /* <= file_size: checked before mapping */
    int64_t last_v = -1, last_ts = INT64_MIN;
    struct rec r;
    uint32_t gen16 = (uint32_t)(m->gen & 0xffff);
    while (pos < file_size) {
        enum rec_check c = check_record(log, pos, file_size, &r);
        /* From gen_off on, a record of another write generation was cut by
         * a truncate (a crash came before the file was), or the file is an
         * older copy: either way not an entry of this history. */
        if (c == REC_BAD || (pos >= m->gen_off && r.gen16 != gen16))
            break;
        if (r.version <= last_v || r.ts < last_ts || r.version < 0) {
            set_error(err, log->data_path, pos,
                      "entry out of order (version %lld after %lld)",
                      (long long)r.version, (long long)last_v);
            return -EBADMSG;
        }
        if (c == REC_BEYOND || log->count >= log->cap ||
            pos + r.size - m->start_off > log->opts.max_data_size) {
            set_error(err, log->data_path, pos,
                      "log holds more than max_log_entry/max_data_size");
            return -EINVAL;
        }
        uint64_t slot = log->count & log->mask;
        log->ent[slot].ver = r.version;
        log->ent[slot].ts = r.ts;
        log->ent[slot].off = pos;
        log->ent[slot].len = r.len;
        log->count++;
        last_v = r.version;
        last_ts = r.ts;
        pos += r.size;
    }
    if (pos < file_size) {
        /* Whether the bad record is damage or a torn tail depends on every
         * record after it: when the file reaches beyond the window (the log
         * was written with a larger max_data_size), that cannot be told. */
        if (readable_end(log, file_size) < file_size) {
            set_error(err, log->data_path, pos,
                      "the file reaches beyond max_data_size (%llu bytes "
                      "after offset %llu): reopen with larger limits",
                      (unsigned long long)(file_size - m->start_off),
                      (unsigned long long)m->start_off);
            return -EINVAL;
        }
        uint64_t durable = m->durable;
        for (uint64_t p = pos + PERSISTENT__ALIGN;
             p + PERSISTENT__REC_HEADER <= file_size; p += PERSISTENT__ALIGN) {
            if (check_record(log, p, file_size, &r) == REC_OK &&
                (p < m->gen_off || r.gen16 == gen16) && r.synced > durable)
                durable = r.synced;
        }
        if (pos < durable) {
            set_error(err, log->data_path, pos,
                      "damaged entry at offset %llu inside the durable part "
                      "(durable up to %llu)",
                      (unsigned long long)pos, (unsigned long long)durable);
            return -EBADMSG;
        }
        persistent__log(log, LOG_WARNING,
                        "%s: dropping a torn tail of %llu bytes at offset %llu",
                        log->data_path, (unsigned long long)(file_size - pos),
                        (unsigned long long)pos);
        if (ftruncate(log->fd, (off_t)pos) != 0) {
            int e = -errno;
            set_error(err, log->data_path, pos, "cannot cut the torn tail");
            return e;
        }
    } else if (pos < m->durable) {
        set_error(err, log->data_path, pos,
                  "file ends at %llu, but %llu bytes were durable",
                  (unsigned long long)pos, (unsigned long long)m->durable);
        return -EBADMSG;
    }
    /* Entries a killed process left in the page cache become durable now,
     * so what open reports as persisted is. */
    if (fsync(log->fd) != 0) {
        int e = -errno;
        set_error(err, log->data_path, 0, "fsync failed");
        return e;
    }
    atomic_store(&log->end_off, pos);
    atomic_store(&log->flushed_end, pos);
    log->reserved_end = pos;
    atomic_store(&log->synced_end, pos);
    atomic_store(&log->persisted, last_v);
    /* Versions stay increasing across trims, and reopens: the slots keep
     * the last version trimmed. */
    log->last_ver = last_v > m->floor_ver ? last_v : m->floor_ver;
    log->last_ts = last_ts > m->floor_ts ? last_ts : m->floor_ts;
    return 0;
}

/* Decodes the two slots of one file (buf: its first two pages): the valid
 * one with the higher seq in *m; valid[i] says which were.  Returns the
 * number of valid slots. */
static int pick_slot(const uint8_t *buf, uint64_t magic, uint64_t nonce,
                     bool check_nonce, struct meta *m, bool valid[2])
{
    struct meta cand[2];
    int n = 0, cur = -1;
    for (int i = 0; i < 2; i++) {
        valid[i] = decode_meta(buf + (size_t)i * PERSISTENT__META_SLOT, magic,
                               &cand[i]) == 0 &&
                   cand[i].seq % 2 == (uint64_t)i &&
                   (!check_nonce || cand[i].nonce == nonce);
        if (valid[i]) {
            n++;
            if (cur < 0 || cand[i].seq > cand[cur].seq)
                cur = i;
        }
    }
    if (cur >= 0)
        *m = cand[cur];
    return n;
}

/* The decoder of encode_slots: buf holds the len bytes read from the start
 * of a file (NAME.log with PERSISTENT__FILE_MAGIC, NAME.meta with
 * PERSISTENT__META_MAGIC and, when check_nonce, NAME.log's nonce).  The
 * newest valid slot goes to *m, valid[i] says which slots were.  Returns
 * the number of valid slots (0: neither), or -EBADMSG, with err naming
 * path, when the file is of another on-disk format or shorter than a
 * header. */
static int decode_slots(const uint8_t *buf, size_t len, uint64_t magic,
                        uint64_t nonce, bool check_nonce, struct meta *m,
                        bool valid[2], const char *path,
                        struct persistent_error *err)
{
    if (len >= 12 && persistent__get64(buf) == magic &&
        persistent__get32(buf + 8) != PERSISTENT__FORMAT) {
        set_error(err, path, 8,
                  "on-disk format %u; this library reads format %u only",
                  persistent__get32(buf + 8), PERSISTENT__FORMAT);
        return -EBADMSG;
    }
    if (len < PERSISTENT__FILE_HEADER) {
        set_error(err, path, 0, "bad file header (%zu bytes)", len);
        return -EBADMSG;
    }
    return pick_slot(buf, magic, nonce, check_nonce, m, valid);
}

static bool same_meta(const struct meta *a, const struct meta *b)
{
    return a->nonce == b->nonce && a->start_off == b->start_off &&
           a->start_index == b->start_index && a->durable == b->durable &&
           a->gen == b->gen && a->gen_off == b->gen_off &&
           a->floor_ver == b->floor_ver && a->floor_ts == b->floor_ts;
}

/* Reads NAME.meta and decides, with NAME.log's slots (lm: the newest valid
 * one, lvalid: which were valid), what the log's state is.  NAME.log's slots
 * are written first, so the two files agree (same seq, same fields) or NAME.log
 * is one seq ahead (a crash between the two writes, or a NAME.meta one update
 * old): NAME.log's newest slot is then the state.  NAME.meta one seq ahead is
 * accepted only when NAME.log's slot of that seq is damaged (it was
 * written and synced before NAME.meta's was).  Anything else means one
 * file is an older copy or damaged: -EBADMSG naming both. */
static int read_meta(struct persistent_log *log, struct meta lm,
                     const bool lvalid[2], struct meta *m,
                     struct persistent_error *err)
{
    /* O_NONBLOCK: a FIFO in its place must not block the open (it is
     * refused below, as anything but a regular file is). */
    int fd = open(log->meta_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        set_error(err, log->meta_path, 0, "cannot open the metadata: %s",
                  persistent_strerror(e));
        return e == -ENOENT ? -EBADMSG : e;
    }
    struct stat st;
    int e = fstat(fd, &st) != 0 ? -errno : 0;
    uint8_t *buf = calloc(1, PERSISTENT__FILE_HEADER);
    if (!e && !buf)
        e = -ENOMEM;
    if (!e && (!S_ISREG(st.st_mode) || st.st_size != PERSISTENT__FILE_HEADER))
        e = -EBADMSG;
    if (!e)
        e = read_all(fd, buf, PERSISTENT__FILE_HEADER, 0);
    close(fd);
    if (e) {
        free(buf);
        set_error(err, log->meta_path, 0, "cannot read the metadata: %s",
                  persistent_strerror(e));
        return e;
    }
    struct meta mm;
    bool mvalid[2];
    int nm = decode_slots(buf, PERSISTENT__FILE_HEADER, PERSISTENT__META_MAGIC,
                          lm.nonce, true, &mm, mvalid, log->meta_path, err);
    free(buf);
    if (nm < 0)
        return nm;
    if (nm == 0) {
        set_error(err, log->meta_path, 0, "no valid metadata slot (for %s)",
                  log->data_path);
        return -EBADMSG;
    }
    if (mm.seq == lm.seq && same_meta(&mm, &lm)) {
        *m = lm;
    } else if (lm.seq == mm.seq + 1) {
        persistent__log(log, LOG_WARNING,
                        "%s is one update behind %s (an interrupted trim, "
                        "truncate or close): using %s",
                        log->meta_path, log->data_path, log->data_path);
        *m = lm;
    } else if (mm.seq == lm.seq + 1 && !lvalid[mm.seq % 2]) {
        persistent__log(log, LOG_WARNING,
                        "%s: the newest header slot is damaged: using %s",
                        log->data_path, log->meta_path);
        *m = mm;
    } else {
        set_error(err, log->data_path, (lm.seq % 2) * PERSISTENT__META_SLOT,
                  "%s (write generation %llu) and %s (write generation "
                  "%llu) disagree: one of them is an older copy or damaged",
                  log->data_path, (unsigned long long)lm.seq, log->meta_path,
                  (unsigned long long)mm.seq);
        return -EBADMSG;
    }
    log->meta_seq = lm.seq > mm.seq ? lm.seq : mm.seq;
    log->meta_durable = m->durable;
    log->gen = m->gen;
    log->gen_off = m->gen_off;
    log->floor_ver = m->floor_ver;
    log->floor_ts = m->floor_ts;
    return 0;
}

/* ---- open / close -------------------------------------------------------- */

/* Closed logs' memory, reused by the next open (type-stable: see the
 * struct). */
static pthread_mutex_t free_lock = PTHREAD_MUTEX_INITIALIZER;
static struct persistent_log *free_logs;

static struct persistent_log *alloc_log(void)
{
    pthread_mutex_lock(&free_lock);
    struct persistent_log *log = free_logs;
    if (log)
        free_logs = log->next_free;
    pthread_mutex_unlock(&free_lock);
    if (log) {
        size_t from = offsetof(struct persistent_log, seq);
        memset((char *)log + from, 0, sizeof(*log) - from);
        return log;
    }
    log = calloc(1, sizeof(*log));
    if (!log)
        return NULL;
    pthread_rwlock_init(&log->lock, NULL);
    /* Error-checking mutexes: a callback that calls back into the log on
     * the thread holding one (forbidden, but easy to do by mistake) gets
     * EDEADLK instead of a hang; persistent__lock turns it into -EINVAL. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&log->persist_lock, &attr);
    pthread_mutex_init(&log->stage_lock, &attr);
    pthread_mutexattr_destroy(&attr);
    return log;
}

/* Releases what the log holds (the log is closed: open false, and no
 * lock-free reader uses it). */
static void release_log(struct persistent_log *log)
{
    if (log->map)
        munmap(log->map, log->map_size);
    drop_old_maps(log);
    if (log->ent_raw)
        munmap(log->ent_raw, log->ent_raw_len);
    if (log->fd >= 0)
        close(log->fd);
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    free(log->stage);
    free(log->dir);
    free(log->name);
    free(log->data_path);
    free(log->meta_path);
}

/* The memory goes to the free list for the next open. */
static void recycle_log(struct persistent_log *log)
{
    pthread_mutex_lock(&free_lock);
    log->next_free = free_logs;
    free_logs = log;
    pthread_mutex_unlock(&free_lock);
}

static void free_log(struct persistent_log *log)
{
    release_log(log);
    recycle_log(log);
}

static int open_files(struct persistent_log *log, struct persistent_error *err)
{
    const char *dir = log->dir;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int e = -errno;
        set_error(err, dir, 0, "cannot create the directory: %s",
                  persistent_strerror(e));
        return e;
    }
    log->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (log->dir_fd < 0) {
        int e = -errno;
        set_error(err, dir, 0, "cannot open the directory: %s",
                  persistent_strerror(e));
        return e;
    }
    if (log->opts.reset) {
        /* The lock first: a reset must not delete the files of a log that
         * is open (here or in another process), which would go on writing
         * to an unlinked file. */
        int old = open(log->data_path, O_RDWR | O_CLOEXEC);
        if (old >= 0 && flock(old, LOCK_EX | LOCK_NB) != 0) {
            int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
            close(old);
            set_error(err, log->data_path, 0, "log is open elsewhere");
            return e;
        }
        char *tmp = join(dir, log->name, ".log.tmp");
        char *mtmp = join(dir, log->name, ".meta.tmp");
        if (!tmp || !mtmp) {
            free(tmp);
            free(mtmp);
            if (old >= 0)
                close(old);
            return -ENOMEM;
        }
        unlink(log->data_path);
        unlink(log->meta_path);
        unlink(tmp);
        unlink(mtmp);
        free(tmp);
        free(mtmp);
        fsync(log->dir_fd);
        if (old >= 0)
            close(old); /* held until the old files are gone */
    }
    log->fd = open(log->data_path, O_RDWR | O_CLOEXEC);
    if (log->fd < 0 && errno == ENOENT) {
        /* NAME.meta is written before NAME.log appears (by rename), so a
         * lone NAME.meta is a creation that did not finish. */
        if (access(log->meta_path, F_OK) == 0)
            persistent__log(log, LOG_WARNING,
                            "%s: metadata without a log file (an interrupted "
                            "creation?): starting an empty log",
                            log->meta_path);
        int e = create_files(log);
        if (e) {
            set_error(err, log->data_path, 0, "cannot create the log: %s",
                      persistent_strerror(e));
            return e;
        }
        log->fd = open(log->data_path, O_RDWR | O_CLOEXEC);
    }
    if (log->fd < 0) {
        int e = -errno;
        set_error(err, log->data_path, 0, "cannot open: %s",
                  persistent_strerror(e));
        return e;
    }
    struct stat st;
    if (fstat(log->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_error(err, log->data_path, 0, "not a regular file");
        return -EBADMSG;
    }
    if (flock(log->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno == EWOULDBLOCK ? -EBUSY : -errno;
        set_error(err, log->data_path, 0, "log is open elsewhere");
        return e;
    }
    return 0;
}

/* persistent_log_open, phase 1 (validate): the name and the options
 * (NULL: every default) checked and copied into *opts, defaults for the
 * fields the caller's layout lacks. */
static int open_validate(const struct persistent_options *user_opts,
                         const char *name, struct persistent_log **out,
                         struct persistent_options *opts,
                         struct persistent_error *err)
{
    if (!out || !valid_name(name)) {
        set_error(err, name, 0, "invalid log name");
        return -EINVAL;
    }
    persistent_options_init(opts);
    if (user_opts) {
        /* The size of the caller's struct (docs/api.md's rule): an older,
         * shorter one (at least through max_data_size, the first release's
         * fields) is fine, the fields it lacks keep their defaults; a
         * newer, larger one is fine when the bytes this library does not
         * know are zero (fields left at their "unset" value).  A size
         * that cuts a field in two, or above 4096 bytes, is not one any
         * version had. */
        size_t n = user_opts->size;
        if (n < offsetof(struct persistent_options, log) ||
            n > PERSISTENT__MAX_OPTIONS_SIZE ||
            n % _Alignof(struct persistent_options) != 0) {
            set_error(err, name, 0,
                      "options size %zu is not one of a "
                      "struct persistent_options (this library's: %zu)",
                      n, sizeof(*opts));
            return -EINVAL;
        }
        if (n > sizeof(*opts)) {
            const uint8_t *extra = (const uint8_t *)user_opts + sizeof(*opts);
            for (size_t i = 0; i < n - sizeof(*opts); i++) {
                if (extra[i] != 0) {
                    set_error(err, name, 0,
                              "options size %zu: byte %zu is not zero, and "
                              "this library's struct persistent_options "
                              "ends at %zu",
                              n, sizeof(*opts) + i, sizeof(*opts));
                    return -EINVAL;
                }
            }
            n = sizeof(*opts);
        }
        memcpy(opts, user_opts, n);
        opts->size = sizeof(*opts);
    }
    if (!opts->directory || !opts->directory[0] || opts->max_log_entry == 0 ||
        opts->max_log_entry > (1ull << 32) || opts->max_data_size < 4096 ||
        opts->max_data_size > (1ull << 46)) {
        if (opts->max_log_entry > (1ull << 32))
            set_error(err, opts->directory, 0,
                      "max_log_entry %llu is above this library's limit "
                      "2^32 (4294967296)",
                      (unsigned long long)opts->max_log_entry);
        else if (opts->max_data_size > (1ull << 46))
            set_error(err, opts->directory, 0,
                      "max_data_size %llu is above this library's limit "
                      "2^46 (64 TiB)",
                      (unsigned long long)opts->max_data_size);
        else
            set_error(err, opts->directory, 0, "invalid options");
        return -EINVAL;
    }
    return 0;
}

/* Phase 2 (allocate): the log's memory, names, paths, index and staging
 * buffer; no file is touched. */
static int open_alloc(const struct persistent_options *opts, const char *name,
                      struct persistent_log **out)
{
    persistent__readers_init();
    struct persistent_log *log = alloc_log();
    if (!log)
        return -ENOMEM;
    log->fd = -1;
    log->dir_fd = -1;
    log->opts = *opts;
    log->dir = strdup(opts->directory);
    log->name = strdup(name);
    log->opts.directory = log->dir;
    log->data_path = log->dir ? join(log->dir, name, ".log") : NULL;
    log->meta_path = log->dir ? join(log->dir, name, ".meta") : NULL;
    uint64_t cap = 1;
    while (cap < opts->max_log_entry)
        cap <<= 1;
    log->cap = cap;
    log->mask = cap - 1;
    log->ent = map_index(cap, &log->ent_raw, &log->ent_raw_len);
    log->stage = malloc(PERSISTENT__STAGE_SIZE);
    if (!log->name || !log->data_path || !log->meta_path || !log->ent ||
        !log->stage) {
        free_log(log);
        return -ENOMEM;
    }
    atomic_store(&log->persisted, PERSISTENT_INVALID_VERSION);
    *out = log;
    return 0;
}

/* Phase 4 (decode the header): NAME.log's first two pages (its two slots,
 * or an older format's header naming its format at the same place)
 * decoded, then NAME.meta read and reconciled with them into *m. */
static int open_header(struct persistent_log *log, struct meta *m,
                       struct persistent_error *err)
{
    uint8_t *hdr = calloc(1, PERSISTENT__FILE_HEADER);
    if (!hdr)
        return -ENOMEM;
    struct stat st;
    int e = fstat(log->fd, &st) != 0 ? -errno : 0;
    size_t hlen = !e && (uint64_t)st.st_size < PERSISTENT__FILE_HEADER
                      ? (size_t)st.st_size
                      : PERSISTENT__FILE_HEADER;
    if (!e)
        e = read_all(log->fd, hdr, hlen, 0);
    if (e) {
        set_error(err, log->data_path, 0, "cannot read: %s",
                  persistent_strerror(e));
        free(hdr);
        return e;
    }
    struct meta lm;
    bool lvalid[2];
    int n = decode_slots(hdr, hlen, PERSISTENT__FILE_MAGIC, 0, false, &lm,
                         lvalid, log->data_path, err);
    free(hdr);
    if (n < 0)
        return n;
    if (n == 0) {
        set_error(err, log->data_path, 0, "bad file header (both slots)");
        return -EBADMSG;
    }
    log->nonce = lm.nonce;
    return read_meta(log, lm, lvalid, m, err);
}

/* Phase 5 (map): the file's size checked against the header, the window
 * mapped over what the file holds, the log's position set from *m.
 * *file_size: the file's size, for recovery. */
static int open_map(struct persistent_log *log, const struct meta *m,
                    uint64_t *file_size, struct persistent_error *err)
{
    struct stat st;
    if (fstat(log->fd, &st) != 0)
        return -errno;
    if (m->start_off > (uint64_t)st.st_size) {
        set_error(err, log->data_path, (uint64_t)st.st_size,
                  "file ends at %llu before its first entry at %llu",
                  (unsigned long long)st.st_size,
                  (unsigned long long)m->start_off);
        return -EBADMSG;
    }
    /* The window covers what the file holds (at least 1 MiB) and grows
     * with the log, up to what max_data_size needs. */
    log->window_max = page_up(log->opts.max_data_size) + 2 * page_size();
    uint64_t have = (uint64_t)st.st_size - page_down(m->start_off);
    uint64_t first = PERSISTENT__MIN_WINDOW;
    while (first < have && first < log->window_max)
        first *= 2;
    log->map_size = first < log->window_max ? first : log->window_max;
    int e = map_window(log, page_down(m->start_off));
    if (e) {
        set_error(err, log->data_path, 0, "cannot map: %s",
                  persistent_strerror(e));
        return e;
    }
    log->head = 0;
    log->head_index = m->start_index;
    log->last_ver = PERSISTENT_INVALID_VERSION;
    log->last_ts = INT64_MIN;
    log->start_off = m->start_off;
    log->punched_upto = page_down(m->start_off);
    *file_size = (uint64_t)st.st_size;
    return 0;
}

/* Phase 7 (start): the log is published open. */
static void open_start(struct persistent_log *log)
{
    /* The directory was needed for creation and reset only: one file
     * descriptor per open log (NAME.meta is opened when written). */
    close(log->dir_fd);
    log->dir_fd = -1;
    atomic_store_explicit(&log->open, true, memory_order_release);
}

/* validate, allocate, open the files (3), decode the header, map, recover
 * (6: the entries after the header's durable point checked), start. */
static int open_log(const struct persistent_options *user_opts,
                    const char *name, struct persistent_log **out,
                    struct persistent_error *err)
{
    struct persistent_options opts;
    int e = open_validate(user_opts, name, out, &opts, err);
    if (e)
        return e;
    struct persistent_log *log;
    e = open_alloc(&opts, name, &log);
    if (e)
        return e;
    struct meta m = {0};
    uint64_t file_size = 0;
    e = open_files(log, err);
    if (!e)
        e = open_header(log, &m, err);
    if (!e)
        e = open_map(log, &m, &file_size, err);
    if (!e)
        e = recover(log, &m, file_size, err);
    if (e) {
        free_log(log);
        return e;
    }
    open_start(log);
    *out = log;
    return 0;
}

int persistent_log_open(const struct persistent_options *user_opts,
                        const char *name, struct persistent_log **out,
                        struct persistent_error *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
    if (out)
        *out = NULL;
    int e = open_log(user_opts, name, out, err);
    if (e && err) {
        err->code = e;
        if (!err->msg[0])
            snprintf(err->msg, sizeof(err->msg), "%s", persistent_strerror(e));
    }
    return e;
}

static void refuse_close(struct persistent_log *log, const char *why)
{
    /* The flag keeps a log callback that closes the log in turn from
     * recursing. */
    if (!atomic_exchange(&log->refusing_close, true)) {
        persistent__log(log, LOG_ERR,
                        "%s: close %s (forbidden): the log stays open",
                        log->data_path, why);
        atomic_store(&log->refusing_close, false);
    }
}

void persistent_log_close(struct persistent_log *log)
{
    if (!log)
        return;
    /* Closing from a callback (the persisted callback, a foreach one) is
     * forbidden; freeing the log under the caller that runs the callback
     * would be a use after free, so such a close is refused (and logged)
     * and the log stays open.  A persist or a lookup running on another
     * thread is waited for. */
    if (persistent__in_iteration(log)) {
        refuse_close(log, "from a foreach callback");
        return;
    }
    if (persistent__lock(&log->persist_lock) != 0) {
        refuse_close(log, "from the persisted callback");
        return;
    }
    pthread_rwlock_wrlock(&log->lock);
    /* Unpersisted entries reach the page cache as they would have without
     * the stage; the blocks reserved beyond the end are given back. */
    if (persistent__flush(log) == 0)
        (void)ftruncate(log->fd, (off_t)atomic_load(&log->end_off));
    /* The durable point goes into both files' slots (so a later open can
     * tell damage from a torn tail); a broken log claims nothing. */
    uint64_t synced = atomic_load(&log->synced_end);
    if (synced != log->meta_durable && !atomic_load(&log->broken)) {
        struct meta m = current_meta(log);
        m.durable = synced;
        write_meta(log, &m);
    }
    /* Point lookups running without lock: they are waited for before
     * anything is released.  Later ones (and lookups that waited for the
     * read lock) see the log closed and touch nothing else. */
    persistent__change_begin(log);
    atomic_store(&log->open, false);
    persistent__wait_readers(log);
    release_log(log);
    pthread_rwlock_unlock(&log->lock);
    pthread_mutex_unlock(&log->persist_lock);
    recycle_log(log);
}

/* ---- append / persist ------------------------------------------------------
 */

/* Makes sure the file can take bytes up to `need`: blocks are reserved
 * with fallocate(KEEP_SIZE) a chunk ahead, so that a full disk shows up
 * here, in append, rather than when staged bytes are written out (and the
 * file size limit, RLIMIT_FSIZE, is checked the same way).  Writer thread. */
static int reserve(struct persistent_log *log, uint64_t need)
{
    if (need <= log->reserved_end)
        return 0;
    struct rlimit rl;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        need > rl.rlim_cur)
        return -EFBIG;
    if (log->no_fallocate) {
        log->reserved_end = need;
        return 0;
    }
    uint64_t from = log->reserved_end;
    /* Ahead by as much as the log holds (16 KiB .. 4 MiB): a small log
     * takes little disk, a large one reserves in large steps. */
    uint64_t ahead = need - log->start_off;
    if (ahead < PERSISTENT__RESERVE_MIN)
        ahead = PERSISTENT__RESERVE_MIN;
    if (ahead > PERSISTENT__RESERVE_CHUNK)
        ahead = PERSISTENT__RESERVE_CHUNK;
    uint64_t chunk = page_up(need) + page_up(ahead);
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        chunk > rl.rlim_cur)
        chunk = rl.rlim_cur;
    if (fallocate(log->fd, FALLOC_FL_KEEP_SIZE, (off_t)from,
                  (off_t)(chunk - from)) == 0) {
        log->reserved_end = chunk;
        return 0;
    }
    int e = -errno;
    if (e == -EOPNOTSUPP) {
        /* Then a full disk shows up when staged bytes are written. */
        log->no_fallocate = true;
        log->reserved_end = need;
        return 0;
    }
    if (e != -ENOSPC)
        return e;
    /* Nearly full: reserve just what this entry needs. */
    if (fallocate(log->fd, FALLOC_FL_KEEP_SIZE, (off_t)from,
                  (off_t)(page_up(need) - from)) != 0)
        return -errno;
    log->reserved_end = page_up(need);
    return 0;
}

/* Writes the staged bytes at flushed_end.  Caller holds stage_lock.  On
 * error the stage is kept (a partial write is rewritten next time; on a
 * reopen it would read as a torn tail). */
int persistent__flush_locked(struct persistent_log *log)
{
    if (log->stage_len == 0)
        return 0;
    uint64_t pos =
        atomic_load_explicit(&log->flushed_end, memory_order_relaxed);
    int e = write_all(log->fd, log->stage, log->stage_len, (off_t)pos);
    if (e) {
        persistent__log(log, LOG_ERR, "%s: cannot write %zu bytes at %llu: %s",
                        log->data_path, log->stage_len, (unsigned long long)pos,
                        persistent_strerror(e));
        return e;
    }
    atomic_store_explicit(&log->flushed_end, pos + log->stage_len,
                          memory_order_release);
    log->stage_len = 0;
    return 0;
}

int persistent__flush(struct persistent_log *log)
{
    int e = persistent__lock(&log->stage_lock);
    if (e)
        return e;
    e = persistent__flush_locked(log);
    pthread_mutex_unlock(&log->stage_lock);
    return e;
}

/* Asks the kernel to start writing [from, to) to the disk now, without
 * waiting: while the writer composes the next megabytes, the disk already
 * works on these, and the next persist's fdatasync has less left to do
 * (with 64 KiB entries persisted every 100, 0.83x -> 0.97x of the plain
 * write+fdatasync baseline).  Only a hint: durability still comes from
 * fdatasync, which also reports any write-back error. */
static void start_writeback(struct persistent_log *log, uint64_t from,
                            uint64_t to)
{
    if (to > from)
        (void)sync_file_range(log->fd, (off_t)from, (off_t)(to - from),
                              SYNC_FILE_RANGE_WRITE);
}

/* Writes one record straight to the file (records larger than the stage).
 * Caller holds stage_lock with an empty stage. */
static int write_direct(struct persistent_log *log, const uint8_t *h,
                        const void *data, size_t size, uint64_t end)
{
    struct iovec iov[3] = {
        {(void *)(uintptr_t)h, PERSISTENT__REC_HEADER},
        {(void *)(uintptr_t)data, size},
        {(void *)(uintptr_t)zero_pad,
         persistent__rec_size(end, size) - PERSISTENT__REC_HEADER - size},
    };
    int niov = 3, first = 0;
    uint64_t pos = end, left = persistent__rec_size(end, size);
    while (left > 0) {
        ssize_t w = pwritev(log->fd, iov + first, niov - first, (off_t)pos);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        pos += (uint64_t)w;
        left -= (uint64_t)w;
        size_t done = (size_t)w;
        while (first < niov && done >= iov[first].iov_len) {
            done -= iov[first].iov_len;
            first++;
        }
        if (first < niov) {
            iov[first].iov_base = (uint8_t *)iov[first].iov_base + done;
            iov[first].iov_len -= done;
        }
    }
    atomic_store_explicit(&log->flushed_end, pos, memory_order_release);
    return 0;
}

int persistent_log_append(struct persistent_log *log, int64_t version,
                          int64_t timestamp_ns, const void *data, size_t size)
{
    if (!log || version < 0 || (size > 0 && !data))
        return -EINVAL;
    if (log->broken)
        return -EIO;
    uint64_t n = atomic_load_explicit(&log->count, memory_order_relaxed);
    /* Against the last version ever appended, not the last live entry: a
     * trim that empties the log does not lower it (else a smaller version
     * could follow a persisted one and persist would skip it). */
    if (version <= log->last_ver || timestamp_ns < log->last_ts)
        return -EINVAL;
    if (size > PERSISTENT__MAX_ENTRY)
        return -ENOSPC;
    uint64_t end = atomic_load_explicit(&log->end_off, memory_order_relaxed);
    uint64_t rec = persistent__rec_size(end, size);
    if (n >= log->cap || end + rec - log->start_off > log->opts.max_data_size ||
        end + rec - log->map_base_off > log->window_max)
        return -ENOSPC;
    if (end + rec - log->map_base_off > log->map_size) {
        int ge = grow_window(log, end + rec - log->map_base_off);
        if (ge)
            return ge;
    }
    int e = reserve(log, end + rec);
    if (e)
        return e;

    uint8_t h[PERSISTENT__REC_HEADER];
    persistent__put32(h + PERSISTENT__R_MAGIC, PERSISTENT__REC_MAGIC);
    persistent__put32(h + PERSISTENT__R_LEN, (uint32_t)size);
    persistent__put64(h + PERSISTENT__R_VERSION, (uint64_t)version);
    persistent__put64(h + PERSISTENT__R_TS, (uint64_t)timestamp_ns);
    persistent__put64(h + PERSISTENT__R_SYNCED,
                      atomic_load(&log->synced_end) |
                          ((log->gen & 0xffff) << PERSISTENT__SYNCED_BITS));
    persistent__put64(h + PERSISTENT__R_DATAHASH,
                      XXH3_64bits(size ? data : h, size));
    persistent__put64(h + PERSISTENT__R_HDRHASH,
                      XXH3_64bits(h, PERSISTENT__R_HDRHASH));

    /* Records are gathered in the stage and written out in large writes
     * (when it fills, at persist, or when a reader needs them): the page
     * cache takes a few big writes far better than one per entry. */
    e = persistent__lock(&log->stage_lock);
    if (e)
        return e;
    if (log->stage_len + rec > PERSISTENT__STAGE_SIZE) {
        uint64_t from =
            atomic_load_explicit(&log->flushed_end, memory_order_relaxed);
        e = persistent__flush_locked(log);
        if (!e)
            start_writeback(log, from, end);
    }
    if (!e && rec > PERSISTENT__STAGE_SIZE) {
        e = write_direct(log, h, data, size, end);
        if (!e)
            start_writeback(log, end, end + rec);
        if (e && ftruncate(log->fd, (off_t)end) != 0)
            persistent__log(log, LOG_ERR, "%s: cannot undo a partial append",
                            log->data_path);
        if (e)
            log->reserved_end = end; /* the cut dropped the reservation */
    } else if (!e) {
        uint8_t *p = log->stage + log->stage_len;
        memcpy(p, h, PERSISTENT__REC_HEADER);
        if (size)
            memcpy(p + PERSISTENT__REC_HEADER, data, size);
        memset(p + PERSISTENT__REC_HEADER + size, 0,
               rec - PERSISTENT__REC_HEADER - size);
        log->stage_len += rec;
    }
    if (!e) {
        /* Relaxed atomics: a lock-free lookup with an older head (a trim
         * ran meanwhile) may read this slot, and throws the answer away. */
        uint64_t slot = persistent__slot(log, n);
        PERSISTENT__STORE(log->ent[slot].ver, version);
        PERSISTENT__STORE(log->ent[slot].ts, timestamp_ns);
        PERSISTENT__STORE(log->ent[slot].off, end);
        PERSISTENT__STORE(log->ent[slot].len, (uint32_t)size);
        log->last_ver = version;
        log->last_ts = timestamp_ns;
        atomic_store_explicit(&log->end_off, end + rec, memory_order_release);
        atomic_store_explicit(&log->count, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&log->stage_lock);
    return e;
}

int persistent_log_persist(struct persistent_log *log, int64_t up_to_version)
{
    if (!log)
        return -EINVAL;
    int64_t done = atomic_load_explicit(&log->persisted, memory_order_acquire);
    if (up_to_version >= 0 && up_to_version <= done && done >= 0)
        return 0;
    /* A foreach callback of this log holds its read lock: waiting for the
     * persist mutex there deadlocks against a trim, truncate or close that
     * holds the mutex and waits for the write lock. */
    if (persistent__in_iteration(log))
        return -EDEADLK;
    int e = persistent__lock(&log->persist_lock);
    if (e)
        return e; /* from the persisted callback */
    uint64_t n = atomic_load_explicit(&log->count, memory_order_acquire);
    if (log->broken) {
        e = -EIO;
        goto out;
    }
    if (n == 0)
        goto out;
    uint64_t slot = persistent__slot(log, n - 1);
    int64_t v = log->ent[slot].ver;
    uint64_t end = persistent__ent_end(&log->ent[slot]);
    if (v <= atomic_load(&log->persisted))
        goto out;
    e = persistent__flush(log);
    if (e)
        goto out;
    if (fdatasync(log->fd) != 0) {
        e = -errno;
        /* After a failed fdatasync the kernel may have dropped the dirty
         * pages: later syncs could "succeed" without the data, so the log
         * refuses to claim durability from now on. */
        log->broken = true;
        persistent__log(log, LOG_ERR, "%s: fdatasync failed: %s",
                        log->data_path, persistent_strerror(e));
        goto out;
    }
    if (end > atomic_load(&log->synced_end))
        atomic_store(&log->synced_end, end);
    atomic_store_explicit(&log->persisted, v, memory_order_release);
    if (log->opts.on_persisted)
        log->opts.on_persisted(log->opts.persisted_ctx, v);
out:
    pthread_mutex_unlock(&log->persist_lock);
    return e;
}

int64_t persistent_log_latest_persisted(const struct persistent_log *log)
{
    if (!log)
        return PERSISTENT_INVALID_VERSION;
    return atomic_load_explicit(&((struct persistent_log *)log)->persisted,
                                memory_order_acquire);
}

/* ---- trim / truncate
 * --------------------------------------------------------- */

/* Drops the first k entries (caller checked 0 < k <= count). */
static int trim_entries(struct persistent_log *log, uint64_t k)
{
    if (persistent__in_iteration(log))
        return -EINVAL; /* from a foreach callback */
    int e = persistent__lock(&log->persist_lock);
    if (e)
        return e; /* from the persisted callback */
    pthread_rwlock_wrlock(&log->lock);
    persistent__change_begin(log);
    if (atomic_load(&log->broken)) {
        e = -EIO;
        goto out;
    }
    /* Staged records go to the file first: offsets below are file ones. */
    e = persistent__flush(log);
    if (e)
        goto out;
    uint64_t n = atomic_load(&log->count);
    uint64_t new_start = k < n ? log->ent[persistent__slot(log, k)].off
                               : atomic_load(&log->end_off);
    int64_t new_index = log->head_index + (int64_t)k;
    /* The slots must never point past what is durable in NAME.log (a power
     * loss would leave start_off beyond the file's end): trimming past the
     * persisted point syncs the records first. */
    if (new_start > atomic_load(&log->synced_end)) {
        if (fdatasync(log->fd) != 0) {
            e = -errno;
            atomic_store(&log->broken, true);
            persistent__log(log, LOG_ERR, "%s: fdatasync failed: %s",
                            log->data_path, persistent_strerror(e));
            goto out;
        }
        atomic_store(&log->synced_end, atomic_load(&log->flushed_end));
    }
    struct meta m = current_meta(log);
    m.start_off = new_start;
    m.start_index = new_index;
    m.floor_ver = log->ent[persistent__slot(log, k - 1)].ver;
    m.floor_ts = log->ent[persistent__slot(log, k - 1)].ts;
    m.durable = atomic_load(&log->synced_end);
    e = write_meta(log, &m);
    if (e)
        goto out;
    PERSISTENT__STORE(log->head, (log->head + k) & log->mask);
    atomic_store(&log->count, n - k);
    PERSISTENT__STORE(log->head_index, new_index);
    log->start_off = new_start;

    /* Give the space back: whole pages only, the page holding the new first
     * record stays (punching would zero part of it). */
    uint64_t lo = page_up(log->punched_upto > PERSISTENT__FILE_HEADER
                              ? log->punched_upto
                              : PERSISTENT__FILE_HEADER);
    uint64_t hi = page_down(new_start);
    if (hi > lo) {
        if (fallocate(log->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)lo, (off_t)(hi - lo)) == 0) {
            log->punched_upto = hi;
        } else if (!log->punch_warned) {
            log->punch_warned = true;
            persistent__log(
                log, LOG_NOTICE,
                "%s: the file system cannot punch holes (%s): trimmed "
                "space is not given back",
                log->data_path, persistent_strerror(errno));
        }
    }
    /* Slide the window so the live part fits it again; the windows a
     * growth left behind go (views died with this trim). */
    drop_old_maps(log);
    if (page_down(new_start) != log->map_base_off) {
        int me = map_window(log, page_down(new_start));
        if (me) {
            log->broken = true;
            persistent__log(log, LOG_ERR, "%s: cannot remap: %s",
                            log->data_path, persistent_strerror(me));
            e = me;
        }
    }
out:
    persistent__change_end(log);
    pthread_rwlock_unlock(&log->lock);
    pthread_mutex_unlock(&log->persist_lock);
    return e;
}

int persistent_log_trim(struct persistent_log *log, int64_t version)
{
    if (!log)
        return -EINVAL;
    uint64_t n = atomic_load(&log->count);
    if (n == 0)
        return 0;
    /* Entries with a version lower than version: the position of the last
     * one <= version - 1, plus one. */
    int64_t p = version == INT64_MIN
                    ? -1
                    : persistent__find_le_version(log, n, version - 1);
    if (p < 0)
        return 0;
    return trim_entries(log, (uint64_t)p + 1);
}

int persistent_log_trim_index(struct persistent_log *log, int64_t index)
{
    if (!log)
        return -EINVAL;
    uint64_t n = atomic_load(&log->count);
    if (index <= log->head_index || n == 0)
        return 0;
    uint64_t k = (uint64_t)(index - log->head_index);
    return trim_entries(log, k < n ? k : n);
}

int persistent_log_truncate(struct persistent_log *log, int64_t version)
{
    if (!log || persistent__in_iteration(log))
        return -EINVAL; /* persistent__in_iteration: from a foreach callback */
    int e = persistent__lock(&log->persist_lock);
    if (e)
        return e; /* from the persisted callback */
    pthread_rwlock_wrlock(&log->lock);
    persistent__change_begin(log);
    uint64_t n = atomic_load(&log->count);
    int64_t p = persistent__find_le_version(log, n, version);
    uint64_t keep = (uint64_t)(p + 1);
    if (keep >= n) {
        /* Nothing to cut; a log that trims emptied keeps its last version
         * (the next append must be above it) until a truncate below it. */
        if (n == 0 && version < log->last_ver) {
            int64_t v = version < 0 ? -1 : version;
            log->last_ver = v;
            if (atomic_load(&log->persisted) > v)
                atomic_store(&log->persisted, v);
        }
        goto out;
    }
    if (atomic_load(&log->broken)) {
        e = -EIO;
        goto out;
    }
    e = persistent__flush(log);
    if (e)
        goto out;
    uint64_t new_end = log->start_off;
    if (keep > 0) {
        uint64_t s = persistent__slot(log, keep - 1);
        new_end = persistent__ent_end(&log->ent[s]);
    }
    /* First a new write generation in both files' slots: records from
     * new_end on must carry it, so the cut records (still in the file
     * should a crash come before ftruncate) read as a torn tail, and an
     * older copy of NAME.log is told apart.  The slots also stop claiming
     * the cut part durable. */
    int64_t last = keep > 0 ? log->ent[persistent__slot(log, keep - 1)].ver
                            : (version < 0 ? -1 : version);
    int64_t last_ts =
        keep > 0 ? log->ent[persistent__slot(log, keep - 1)].ts : INT64_MIN;
    struct meta m = current_meta(log);
    m.gen = log->gen + 1;
    m.gen_off = new_end;
    uint64_t synced = atomic_load(&log->synced_end);
    m.durable = synced < new_end ? synced : new_end;
    if (m.floor_ver > last) {
        m.floor_ver = last;
        m.floor_ts = INT64_MIN;
    }
    e = write_meta(log, &m);
    if (e)
        goto out;
    if (ftruncate(log->fd, (off_t)new_end) != 0) {
        /* The file is as before, but its slots name the new generation:
         * appending after the old records would make them unreadable. */
        e = -errno;
        atomic_store(&log->broken, true);
        persistent__log(log, LOG_ERR, "%s: cannot truncate: %s", log->data_path,
                        persistent_strerror(e));
        goto out;
    }
    /* The file is cut now, synced or not: the index follows it, so that
     * no lookup returns (or faults on) a record beyond the end.  A failed
     * sync leaves the cut's durability unknown: the log refuses writes. */
    if (fsync(log->fd) != 0) {
        e = -errno;
        atomic_store(&log->broken, true);
        persistent__log(log, LOG_ERR, "%s: cannot sync a truncate: %s",
                        log->data_path, persistent_strerror(e));
    }
    atomic_store(&log->count, keep);
    atomic_store(&log->end_off, new_end);
    atomic_store(&log->flushed_end, new_end);
    log->reserved_end = new_end; /* ftruncate dropped the reservation */
    if (atomic_load(&log->synced_end) > new_end)
        atomic_store(&log->synced_end, new_end);
    int64_t kept = keep > 0 ? last : PERSISTENT_INVALID_VERSION;
    if (atomic_load(&log->persisted) > kept)
        atomic_store(&log->persisted, kept);
    /* Cut to nothing: the next version must be above the cut (entries
     * trimmed before had lower versions still). */
    log->last_ver = last;
    log->last_ts = last_ts;
out:
    persistent__change_end(log);
    pthread_rwlock_unlock(&log->lock);
    pthread_mutex_unlock(&log->persist_lock);
    return e;
}
