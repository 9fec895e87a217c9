/* libpersistent: crash-safe versioned logs.
 *
 * A log holds the versions of one persistent field: entries of
 * (version, timestamp_ns, bytes), appended with strictly increasing versions
 * and non-decreasing timestamps.  Every entry also has an index: 0 for the
 * first entry ever appended, growing by one per entry; trimming the head
 * does not renumber the entries that remain.  Readers look entries up by
 * exact version, by "the entry in force at version v", by index (negative
 * counts from the end) or by time, and iterate over ranges.
 *
 * Durability: persistent_log_persist() returns once every entry appended so
 * far is on stable storage (fdatasync).  Entries carry XXH3 checksums; on
 * open a torn tail (an interrupted append) is dropped and a damaged file is
 * reported with -EBADMSG, the file and the offset (docs/persistent.md says
 * which case is which).
 *
 * Timestamps: replicas must append the same (version, timestamp) pairs;
 * stamp each version deterministically, e.g. ts(v) = max(ts(v-1), the
 * sender's timestamp in the message) (docs/persistent.md).
 *
 * Writes: appends are gathered in a 1 MiB stage in memory and written to
 * the file in large writes: when the stage fills, at persist, at trim,
 * truncate and close, or when a reader asks for a record still staged
 * (that lookup then writes the stage out first).  Disk blocks are reserved
 * ahead (fallocate), so a full disk fails the append, not a later write.
 *
 * Threading: one thread (the "writer") calls append, trim, truncate,
 * import and close; one other thread may call persist concurrently with the
 * writer (persist may also be called by the writer itself); any thread may
 * call the lookup, iteration, copy and export functions concurrently with
 * all of these.  The persisted callback runs on the thread that called
 * persist (or truncate, which can lower it without a callback).
 *
 * Views: lookups return a view into the log's mapping of the file
 * (struct persistent_entry.data).  A view stays valid until the next trim,
 * truncate or close of that log, whichever thread does it; copy the bytes
 * (persistent_log_copy) to keep them longer.  A thread other than the
 * writer may read a view only while it knows no trim, truncate or close
 * runs (a truncate cuts the file: reading a cut page raises SIGBUS); the
 * safe reads from any thread are persistent_log_copy, export and the
 * entries passed to a foreach callback (all under the read lock).
 *
 * Errors: functions return 0 or a negative errno; persistent_strerror()
 * names it.  After a failed sync (fdatasync/fsync) of either file, or a
 * failed write of NAME.meta, the log no longer knows what is durable: it
 * refuses append, persist, trim, truncate and import with -EIO from then
 * on (lookups still answer what is in the file); close and reopen it.  A
 * truncate whose sync failed has cut the index with the file, so no
 * lookup reaches past the file's end.
 */
#ifndef DERECHO_PERSISTENT_H
#define DERECHO_PERSISTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PERSISTENT_EXPORT __attribute__((visibility("default")))

/* The "no version" value (an empty log's last version, for instance).
 * The version getters also return it for a NULL log or registry. */
#define PERSISTENT_INVALID_VERSION ((int64_t)-1)
/* persistent_log_first_index/last_index of a NULL (or closed) log: never
 * a valid index (an empty fresh log's last index is -1). */
#define PERSISTENT_INVALID_INDEX INT64_MIN
/* persistent_log_count/data_size of a NULL (or closed) log: never a valid
 * count or size (0 is one). */
#define PERSISTENT_NO_COUNT UINT64_MAX
#define PERSISTENT_NO_SIZE UINT64_MAX

/* ---- versions ----------------------------------------------------------- */

/* Encodes (view id, sequence number in that view) into one version: the
 * view id in the high 32 bits, the sequence number in the low 32 bits.
 * Versions of non-negative view ids and sequence numbers order as the pairs
 * do.  Pure function, any thread. */
PERSISTENT_EXPORT int64_t persistent_version_make(int32_t view_id, int32_t seq);
/* The view id of a version made by persistent_version_make(). */
PERSISTENT_EXPORT int32_t persistent_version_view(int64_t version);
/* The sequence number of a version made by persistent_version_make(). */
PERSISTENT_EXPORT int32_t persistent_version_seq(int64_t version);

/* ---- options ------------------------------------------------------------ */

/* Log callback (same shape in every library of the project): level is a
 * syslog level (LOG_ERR .. LOG_DEBUG), module is "persistent", msg is valid
 * until the callback returns.  Must not block or call back into the log. */
typedef void (*persistent_log_fn)(void *ctx, int level, const char *module,
                                  const char *msg);

/* Called when the log's latest persisted version advances, on the thread
 * that called persist, with the new value.  Must not block and must not call
 * persist, trim, truncate or close on the same log: such calls from it are
 * refused (persist, trim, truncate return -EINVAL unless they have nothing
 * to do; close does nothing, logs an error and the log stays open).
 * Lookups and append are fine. */
typedef void (*persistent_persisted_fn)(void *ctx, int64_t version);

struct persistent_options {
    /* sizeof(struct persistent_options), set by _init.  A smaller size (an
     * older, shorter struct, at least through max_data_size) is accepted,
     * the fields it lacks keep their defaults; a larger size (a newer
     * struct, at most 4096 bytes) is accepted when the bytes beyond this
     * library's struct are zero, else -EINVAL; one cutting a field in two
     * is -EINVAL.  NULL options mean all defaults. */
    size_t size;
    /* Folder of the log files (created, one level, when missing).  For
     * Persistent fields: PERS/file_path; for Volatile fields a tmpfs
     * (PERS/ramdisk_path): same backend, another place.  Default ".persist".
     * Copied at open. */
    const char *directory;
    /* Discard any existing log of this name on open.  Default false. */
    bool reset;
    /* Most live entries (after trims) the log holds; appends beyond fail
     * with -ENOSPC.  1 .. 2^32 (4294967296: open refuses more with -EINVAL
     * and an err.msg naming the limit), default 1048576.  Rounded up to a
     * power of two. */
    uint64_t max_log_entry;
    /* Most live bytes of entries (headers included: 48 bytes an entry plus
     * padding to 8, plus at most 1/16 more when the record is padded to a
     * page end) the log holds; appends beyond fail with -ENOSPC.  The
     * address-space window the log maps grows with it up to this.  4096 ..
     * 2^46.  Default 64 GiB. */
    uint64_t max_data_size;
    /* Log messages: default stderr at LOG_WARNING and above. */
    persistent_log_fn log;
    void *log_ctx;
    int log_level; /* messages above this syslog level are dropped */
    /* Optional: called when the persisted version advances. */
    persistent_persisted_fn on_persisted;
    void *persisted_ctx;
};

/* Fills *opts with the defaults above (and opts->size). */
PERSISTENT_EXPORT void persistent_options_init(struct persistent_options *opts);

/* Why an open failed (the project's error shape: code and message first):
 * code is the error returned (a negative errno; 0 after success), msg says
 * why in words, and for -EBADMSG (damaged file) and I/O errors file is the
 * file's path and offset the byte offset of the damage. */
struct persistent_error {
    int code;
    char msg[256];
    char file[512];
    uint64_t offset;
};

/* The name and meaning of an error code, negative or positive (the same
 * text for both), e.g. "EBADMSG: damaged log file or malformed bytes"; for
 * an errno this library does not return, the system's name and text
 * ("EMFILE: Too many open files"), "unknown error N" for a number that is
 * no errno.  Any thread: the texts are constant, except that last kind,
 * which lives in a buffer of the calling thread until its next call. */
PERSISTENT_EXPORT const char *persistent_strerror(int err);

/* ---- logs -----------------------------------------------------------------
 */

struct persistent_log;

/* Opens (creating it when absent) the log called name (letters, digits,
 * '.', '_', '-'; at most 200 bytes; not starting with '.') in
 * opts->directory.  The log uses two files there: NAME.log (entries) and
 * NAME.meta; both hold the trim point and write generation (written
 * atomically), and must agree.  On open a torn tail is dropped (logged at
 * LOG_WARNING) and the file is made durable again; a file that is damaged
 * or an older copy of itself gives a correct prefix of what was persisted
 * or -EBADMSG (docs/persistent.md), never stale entries.
 * opts may be NULL (defaults); it is copied.  err may be NULL.
 * Returns 0 and *out, or (with *out = NULL when out is not NULL):
 * -EINVAL (out or name NULL, bad name or options, or a log holding more
 * than max_log_entry / max_data_size allow: reopen with larger limits),
 * -EBADMSG (damaged file: err says which file and offset), -ENOMEM, or an
 * errno of the file system (-ENOTDIR when the directory is a file,
 * -ENOENT when its parent is missing, -EACCES, -ENOSPC, -EIO, ...).  Two
 * opens of the same log at once (in one process or two) are refused with
 * -EBUSY (a lock on NAME.log), also with reset, which then deletes
 * nothing. */
PERSISTENT_EXPORT int persistent_log_open(const struct persistent_options *opts,
                                          const char *name,
                                          struct persistent_log **out,
                                          struct persistent_error *err);

/* Closes the log: writes staged entries to the file (without syncing),
 * gives back reserved blocks, records the durable point in both files (so a
 * later open can tell corruption from a torn tail) and frees it.  Does not
 * persist: entries appended since the last persist may or may not survive
 * a crash.  Every view becomes invalid.  NULL is a no-op.  Writer thread;
 * waits for a persist or lookup running on another thread (lock-free point
 * lookups included).  A lookup called on another thread while close runs
 * gets -EINVAL (or, for the functions returning a value, the empty log's
 * value) and touches nothing; one called after close returned is a use
 * after free.  Called from the
 * persisted callback or from a foreach callback (forbidden) it does
 * nothing: the log stays open and must be closed later. */
PERSISTENT_EXPORT void persistent_log_close(struct persistent_log *log);

/* Appends an entry.  version must be >= 0 and greater than the last
 * version appended, timestamp_ns not smaller than the last timestamp:
 * -EINVAL otherwise (a trim that empties the log does not lower them; a
 * truncate lowers them to its cut) (also for a NULL log, or NULL data with size
 * > 0).  data (size bytes, may be NULL when size is 0) is copied.  -ENOSPC when
 * max_log_entry or max_data_size would be exceeded or the disk is full (blocks
 * are reserved here), -EFBIG beyond the process's file size limit
 * (RLIMIT_FSIZE), or the file system's error when the stage had to be written
 * out (-EIO, ...): the log is then unchanged and stays usable.  Not durable
 * until persist.  Writer thread. */
PERSISTENT_EXPORT int persistent_log_append(struct persistent_log *log,
                                            int64_t version,
                                            int64_t timestamp_ns,
                                            const void *data, size_t size);

/* Makes every entry appended so far durable (the stage is written, then one
 * fdatasync of NAME.log;
 * the file's checksummed entries are the metadata a reopen needs, so no
 * other file is synced).  up_to_version says what the caller needs: when
 * it is already persisted the call returns at once; any other value
 * (negative, or beyond the last version) persists everything appended.  On
 * success the latest persisted version is the last version appended
 * before the call, and the persisted callback runs if it advanced.  Returns
 * 0, -EIO (or another errno of fdatasync), -EINVAL (NULL log, or called
 * from the persisted callback) or -EDEADLK (called from a foreach callback
 * of this log, whose read lock a trim, truncate or close on another thread
 * may be waiting for while holding what persist needs).  Any one thread at
 * a time (see Threading). */
PERSISTENT_EXPORT int persistent_log_persist(struct persistent_log *log,
                                             int64_t up_to_version);

/* The latest version known durable, PERSISTENT_INVALID_VERSION when none.
 * After open: the last entry found (open makes them durable).  Any thread. */
PERSISTENT_EXPORT int64_t
persistent_log_latest_persisted(const struct persistent_log *log);

/* Drops every entry with a version lower than version (trim_index: with
 * an index lower than index) and gives their disk space back to the file
 * system (hole punching; where the file system cannot, the space stays
 * allocated and a LOG_NOTICE says so).  Trimming beyond the last entry
 * empties the log; indexes keep counting.  The new head is recorded
 * atomically in both files before space is released; a trim past the
 * persisted point first makes the entries durable (fdatasync).  Invalidates
 * views. Any version or index is accepted: one at or below the first entry's
 * (negative indexes included: trim_index does not count from the end)
 * trims nothing.  Returns 0, an errno of the file system, or -EINVAL (NULL
 * log, or called from the persisted callback or a foreach callback).
 * Writer thread. */
PERSISTENT_EXPORT int persistent_log_trim(struct persistent_log *log,
                                          int64_t version);
PERSISTENT_EXPORT int persistent_log_trim_index(struct persistent_log *log,
                                                int64_t index);

/* Drops every entry with a version greater than version (the ragged-edge
 * cleanup of a view change, or a restart's trim to the agreed log); the
 * cut is durable on return.  A version below the first entry's (any
 * negative one) empties the log.  The latest persisted version drops with
 * it, and so does the last version (the next append must be above
 * version; on a log that trims emptied, a version below its last lowers
 * that).  Invalidates views.  Returns 0, an errno of the file system, or
 * -EINVAL (NULL log, or called from the persisted callback or a foreach
 * callback).  Writer thread (waits for a persist in progress). */
PERSISTENT_EXPORT int persistent_log_truncate(struct persistent_log *log,
                                              int64_t version);

/* ---- lookups ---------------------------------------------------------- */

/* One entry.  data points into the log's mapping (a view: see the top of
 * this header) or, from persistent_log_copy, into the caller's buffer. */
struct persistent_entry {
    int64_t version;
    int64_t timestamp_ns;
    int64_t index;
    const void *data;
    size_t size;
};

/* All lookups that return an entry may have to write the stage out first
 * (see Writes above): they then fail with that write's error (-EIO, or
 * -ENOSPC on a file system without fallocate) in the rare case it fails.
 * Every lookup returns -EINVAL for a NULL log or out, and accepts any
 * version, time or index (none matching: -ENOENT).
 *
 * The entry with exactly this version.  0, or -ENOENT.  Any thread. */
PERSISTENT_EXPORT int persistent_log_get(const struct persistent_log *log,
                                         int64_t version,
                                         struct persistent_entry *out);

/* The entry in force at version: the one with the greatest version <=
 * version.  0, or -ENOENT (none, or that entry was trimmed).  Any thread. */
PERSISTENT_EXPORT int
persistent_log_get_at_version(const struct persistent_log *log, int64_t version,
                              struct persistent_entry *out);

/* The entry at index (absolute, see the top), or counted from the end when
 * negative (-1 is the last entry).  0, or -ENOENT (trimmed, beyond the end
 * or empty log).  Any thread. */
PERSISTENT_EXPORT int persistent_log_get_index(const struct persistent_log *log,
                                               int64_t index,
                                               struct persistent_entry *out);

/* The temporal query: the latest entry with timestamp_ns <= t; among
 * entries with equal timestamps, the highest version.  0, or -ENOENT.
 * Any thread. */
PERSISTENT_EXPORT int
persistent_log_get_at_time(const struct persistent_log *log, int64_t t,
                           struct persistent_entry *out);

/* Copies the data of the entry at index (as persistent_log_get_index, so
 * negative counts from the end) into buf (cap bytes) and fills *out with
 * out->data = buf.  The copy is taken under the log's read lock, so it is
 * consistent even while the writer trims.  -ENOBUFS when cap is too small
 * (out->size then says how much is needed, out->data is NULL), -ENOENT,
 * -EINVAL (log or out NULL, or buf NULL with cap > 0).  Any thread. */
PERSISTENT_EXPORT int persistent_log_copy(const struct persistent_log *log,
                                          int64_t index, void *buf, size_t cap,
                                          struct persistent_entry *out);

/* Counts and bounds.  Empty log: count 0, first/last version
 * PERSISTENT_INVALID_VERSION, first index = the next index to be used and
 * last index = first index - 1.  A NULL (or closed) log: count
 * PERSISTENT_NO_COUNT, versions PERSISTENT_INVALID_VERSION, indices
 * PERSISTENT_INVALID_INDEX.  Any thread. */
PERSISTENT_EXPORT uint64_t
persistent_log_count(const struct persistent_log *log);
PERSISTENT_EXPORT int64_t
persistent_log_first_version(const struct persistent_log *log);
PERSISTENT_EXPORT int64_t
persistent_log_last_version(const struct persistent_log *log);
PERSISTENT_EXPORT int64_t
persistent_log_first_index(const struct persistent_log *log);
PERSISTENT_EXPORT int64_t
persistent_log_last_index(const struct persistent_log *log);
/* The version the next append must exceed: the last version appended,
 * also when trims emptied the log since (after a reopen: the last entry
 * found, or the last entry trimmed when none is left), lowered only by
 * truncate.  PERSISTENT_INVALID_VERSION when there never was one.  Writer
 * thread (or any thread while the writer does not append). */
PERSISTENT_EXPORT int64_t
persistent_log_last_appended(const struct persistent_log *log);

/* Live bytes of entries in the file (what max_data_size bounds);
 * PERSISTENT_NO_SIZE for a NULL (or closed) log.  Any thread. */
PERSISTENT_EXPORT uint64_t
persistent_log_data_size(const struct persistent_log *log);

/* Called for each entry of an iteration; return 0 to go on, anything else
 * stops the iteration and becomes its return value.  The entry is a view.
 * Runs under the log's read lock: it must not trim, truncate, import or
 * close this log (lookups are fine); such calls from it are refused
 * (-EINVAL unless they have nothing to do; close does nothing and logs an
 * error) rather than waiting for that lock. */
typedef int (*persistent_entry_fn)(void *ctx,
                                   const struct persistent_entry *entry);

/* Calls fn for each entry with first_index <= index <= last_index
 * (negative values count from the end, as in get_index), in order.
 * Indexes outside the log are clipped.  Returns 0 or fn's non-zero value,
 * -EINVAL for a NULL log or fn.  Any thread. */
PERSISTENT_EXPORT int
persistent_log_foreach_index(const struct persistent_log *log,
                             int64_t first_index, int64_t last_index,
                             persistent_entry_fn fn, void *ctx);

/* Calls fn for each entry with from_version <= version <= to_version, in
 * order (from_version > to_version: none).  Returns 0 or fn's non-zero
 * value, -EINVAL for a NULL log or fn.  Any thread. */
PERSISTENT_EXPORT int
persistent_log_foreach_version(const struct persistent_log *log,
                               int64_t from_version, int64_t to_version,
                               persistent_entry_fn fn, void *ctx);

/* ---- export / import ------------------------------------------------------
 */

/* Serialises the entries with from_version <= version <= to_version into a
 * new buffer (*bytes, *len; release it with free()).  An empty range
 * (from_version > to_version included) gives a valid export of no
 * entries.  The format (docs/persistent.md) is little-endian, checksummed
 * (XXH3) and independent of the file format.  Returns 0, -ENOMEM or
 * -EINVAL (log, bytes or len NULL: *bytes and *len untouched).  Any
 * thread. */
PERSISTENT_EXPORT int persistent_log_export(const struct persistent_log *log,
                                            int64_t from_version,
                                            int64_t to_version, uint8_t **bytes,
                                            size_t *len);

/* Appends the entries of an export (len bytes at bytes) to log.  The whole
 * buffer is checked first (bounded parser): -EBADMSG for anything malformed
 * (bad magic, lengths, checksum, versions out of order), -EINVAL when its
 * first version is not above the log's last version or its first timestamp
 * below the log's last timestamp, or for a NULL log, bytes NULL with len >
 * 0 (NULL with len 0 is an empty, hence malformed, buffer), or a call from
 * a foreach callback.  Append errors (-ENOSPC, ...) undo the entries
 * already imported, so the log is as before on any error.  *imported (may
 * be NULL) receives the number of entries added (0 on any error).  Writer
 * thread. */
PERSISTENT_EXPORT int persistent_log_import(struct persistent_log *log,
                                            const uint8_t *bytes, size_t len,
                                            uint64_t *imported);

/* ---- registry ------------------------------------------------------------ */

/* How a field of a replicated object takes part in versions. */
struct persistent_field_ops {
    /* True when the field changed since the last version was made. */
    bool (*changed)(void *ctx);
    /* Writes the field's current state into buf (cap bytes; buf may be
     * NULL when cap is 0) and its size into *size.  Returns 0, or -ENOBUFS
     * when cap is too small (with *size set to the size needed: the
     * registry grows its buffer and calls again, up to 4 times), or another
     * negative errno to fail make_version.  Not trusted: 0 with *size > cap,
     * -ENOBUFS without asking for more, or a positive return fail
     * make_version with -EINVAL; asking for more than the log can hold
     * (max_data_size, 4 GiB) fails it with -ENOSPC. */
    int (*serialize)(void *ctx, void *buf, size_t cap, size_t *size);
};

/* Groups the logs of one replicated object. */
struct persistent_registry;

/* Creates an empty registry.  Returns 0 and *out, or -ENOMEM. */
PERSISTENT_EXPORT int
persistent_registry_create(struct persistent_registry **out);

/* Destroys the registry; the logs stay open (the caller owns them).  NULL is
 * a no-op. */
PERSISTENT_EXPORT void
persistent_registry_destroy(struct persistent_registry *reg);

/* Adds a field: its log (borrowed: it must outlive the registry) and its
 * ops (copied) with ctx.  Fields are added before the first version is
 * made.  Returns 0, -EINVAL (NULL argument or callback, log already added,
 * or versions already made) or -ENOMEM.  Writer thread. */
PERSISTENT_EXPORT int
persistent_registry_add(struct persistent_registry *reg,
                        struct persistent_log *log,
                        const struct persistent_field_ops *ops, void *ctx);

/* Makes version v at time ts: appends the serialised state of every field
 * whose changed() says so.  v must be >= 0 and above the last version made
 * (the highest last version of the fields when none was made yet):
 * -EINVAL.
 * When one field fails, the fields already appended are truncated back and
 * the error is returned.  Writer thread. */
PERSISTENT_EXPORT int
persistent_registry_make_version(struct persistent_registry *reg, int64_t v,
                                 int64_t ts);

/* Persists every field through v (v beyond the last version made counts as
 * the last version made).  A field with no entry in (its last persisted
 * version, v] counts as persisted through v.  Returns 0 or the first error
 * of a field's persist (the others are still attempted).  One thread at a
 * time. */
PERSISTENT_EXPORT int
persistent_registry_persist(struct persistent_registry *reg, int64_t v);

/* Truncates every field after v (persistent_log_truncate).  Returns 0 or
 * the first error (the others are still attempted).  Writer thread. */
PERSISTENT_EXPORT int
persistent_registry_truncate(struct persistent_registry *reg, int64_t v);

/* The object's persistence frontier: the minimum over its fields of the
 * version each is known durable through (PERSISTENT_INVALID_VERSION when a
 * field has nothing durable yet or there are no fields).  Any thread. */
PERSISTENT_EXPORT int64_t
persistent_registry_frontier(const struct persistent_registry *reg);

/* The last version made (or found in the fields' logs), or
 * PERSISTENT_INVALID_VERSION.  Any thread. */
PERSISTENT_EXPORT int64_t
persistent_registry_latest_version(const struct persistent_registry *reg);

#ifdef __cplusplus
}
#endif

#endif
