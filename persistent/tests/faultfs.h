/* Fault injection for the libpersistent tests: this file's definitions of
 * pwrite, pwritev, write, fdatasync, fsync and ftruncate are linked into the
 * test executable, so they interpose on libc's for libpersistent too (the
 * executable comes first in symbol lookup); each calls the real one (dlsym
 * RTLD_NEXT) unless it is armed to fail.  Only calls on files whose path
 * contains the armed substring count, so the harness's own I/O is never hit.
 */
#ifndef PERSISTENT_TEST_FAULTFS_H
#define PERSISTENT_TEST_FAULTFS_H

#include <stdbool.h>

enum {
    FF_PWRITE = 1,
    FF_PWRITEV = 2,
    FF_WRITE = 4,
    FF_FDATASYNC = 8,
    FF_FSYNC = 16,
    FF_FTRUNCATE = 32,
    FF_WRITES = FF_PWRITE | FF_PWRITEV | FF_WRITE,
    FF_SYNCS = FF_FDATASYNC | FF_FSYNC,
    FF_ALL = 63,
};

/* From now on, calls of the kinds in ops on files whose path contains
 * path_part are counted; the call numbered `nth` (0 = the first) and, when
 * sticky, every later one fail with err (a failing write writes nothing).
 * nth < 0 counts without failing. */
void ff_arm(const char *path_part, unsigned ops, long nth, bool sticky,
            int err);
/* Stops counting and failing. */
void ff_disarm(void);
/* Matching calls counted since ff_arm, and how many were failed. */
long ff_calls(void);
long ff_failed(void);

/* Remembers the size of the file whose path contains path_part at its last
 * successful fdatasync/fsync (what a power loss would keep of an
 * append-only file); -1 before the first. */
void ff_track(const char *path_part);
long long ff_synced_size(void);
/* From now on each tracked sync also writes {FF_REPORT_SYNCED, size} (two
 * int64_t) to fd, before the sync returns (-1: stop). */
#define FF_REPORT_SYNCED 2
void ff_report_to(int fd);

#endif
