/* Consumer check: builds against the installed libpersistent through
 * pkg-config alone and uses a log end to end. */
#include <persistent/persistent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    char dir[] = "/tmp/persistent-consumer-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    struct persistent_options opts;
    persistent_options_init(&opts);
    opts.directory = dir;
    opts.max_data_size = 1 << 20;
    struct persistent_log *log = NULL;
    int rc = 1;
    if (persistent_log_open(&opts, "field", &log, NULL) != 0)
        goto out;
    int64_t v = persistent_version_make(1, 7);
    struct persistent_entry e;
    if (persistent_log_append(log, v, 1000, "state", 5) == 0 &&
        persistent_log_persist(log, v) == 0 &&
        persistent_log_latest_persisted(log) == v &&
        persistent_log_get_at_time(log, 2000, &e) == 0 && e.version == v &&
        e.size == 5 && memcmp(e.data, "state", 5) == 0 &&
        persistent_version_seq(v) == 7)
        rc = 0;
    persistent_log_close(log);
out:;
    char path[128];
    snprintf(path, sizeof(path), "%s/field.log", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/field.meta", dir);
    unlink(path);
    rmdir(dir);
    if (rc)
        fprintf(stderr, "consumer persistent: failed\n");
    return rc;
}
