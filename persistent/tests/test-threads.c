/* Threading: one writer, one persister, readers, all at once. */
#include "test-common.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SEED 5
#define MAXP 1500
#define N 20000

struct shared {
    struct persistent_log *log;
    atomic_bool done;
    atomic_int errors;
    atomic_llong persisted_seen;
    atomic_llong callbacks;
};

static void on_persisted(void *ctx, int64_t v)
{
    struct shared *s = ctx;
    /* The callback sees versions only grow. */
    if (v <= atomic_load(&s->persisted_seen))
        atomic_fetch_add(&s->errors, 1);
    atomic_store(&s->persisted_seen, v);
    atomic_fetch_add(&s->callbacks, 1);
}

static void *persister(void *arg)
{
    struct shared *s = arg;
    while (!atomic_load(&s->done)) {
        int64_t last = persistent_log_last_version(s->log);
        if (last >= 0 && persistent_log_persist(s->log, last) != 0)
            atomic_fetch_add(&s->errors, 1);
        if (persistent_log_latest_persisted(s->log) < last &&
            persistent_log_latest_persisted(s->log) >= 0 &&
            persistent_log_last_version(s->log) >= last)
            atomic_fetch_add(&s->errors, 1);
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct shared *s = arg;
    uint8_t *buf = malloc(MAXP);
    unsigned x = 99;
    while (!atomic_load(&s->done)) {
        struct persistent_entry e = {.version = 0};
        /* Copies are safe even across the writer's trims. */
        if (persistent_log_copy(s->log, -1, buf, MAXP, &e) == 0 &&
            !tc_payload_ok(SEED, &e, MAXP))
            atomic_fetch_add(&s->errors, 1);
        int64_t last = e.version;
        x = x * 1103515245 + 12345;
        int64_t back = (int64_t)(x % 50);
        if (last - back >= 1 &&
            persistent_log_get_at_version(s->log, last - back, &e) == 0 &&
            (e.version != last - back || e.timestamp_ns != e.version * 10))
            atomic_fetch_add(&s->errors, 1);
        if (persistent_log_get_at_time(s->log, (last - back) * 10 + 5, &e) ==
                0 &&
            e.version < last - back)
            atomic_fetch_add(&s->errors, 1);
    }
    free(buf);
    return NULL;
}

START_TEST(writer_persister_and_readers)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct shared s;
    memset(&s, 0, sizeof(s));
    atomic_store(&s.persisted_seen, -1);
    struct persistent_options opts;
    tc_options(&opts, dir);
    opts.on_persisted = on_persisted;
    opts.persisted_ctx = &s;
    ck_assert_int_eq(persistent_log_open(&opts, "mt", &s.log, NULL), 0);
    pthread_t p, r[2];
    ck_assert_int_eq(pthread_create(&p, NULL, persister, &s), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&r[i], NULL, reader, &s), 0);
    uint8_t *buf = malloc(MAXP);
    for (int64_t v = 1; v <= N; v++) {
        size_t size = tc_payload_size(SEED, v, MAXP);
        tc_payload(SEED, v, buf, size);
        ck_assert_int_eq(persistent_log_append(s.log, v, v * 10, buf, size), 0);
        if (v % 5000 == 0)
            ck_assert_int_eq(persistent_log_trim(s.log, v - 1000), 0);
    }
    free(buf);
    ck_assert_int_eq(persistent_log_persist(s.log, N), 0);
    atomic_store(&s.done, true);
    pthread_join(p, NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    ck_assert_int_eq(atomic_load(&s.errors), 0);
    ck_assert_int_eq(persistent_log_latest_persisted(s.log), N);
    ck_assert_int_eq(atomic_load(&s.persisted_seen), N);
    ck_assert_int_gt(atomic_load(&s.callbacks), 0);
    persistent_log_close(s.log);
}
END_TEST

/* Point lookups race trims and truncates (they run without lock and retry
 * under the read lock when one ran meanwhile): every answer must be one a
 * consistent log gives.  Versions v have timestamp 10v and index v - 1,
 * also after a truncate, as the writer appends the same versions again. */
struct race {
    struct persistent_log *log;
    atomic_bool done;
    atomic_int errors;
    atomic_llong last;
    atomic_llong hits;
};

static bool race_entry_ok(const struct persistent_entry *e)
{
    return e->version >= 1 && e->timestamp_ns == e->version * 10 &&
           e->index == e->version - 1 &&
           e->size == tc_payload_size(SEED, e->version, MAXP) && e->data;
}

static void *race_reader(void *arg)
{
    struct race *r = arg;
    unsigned x = 7;
    while (!atomic_load(&r->done)) {
        int64_t last = atomic_load(&r->last);
        if (last < 1)
            continue;
        x = x * 1103515245 + 12345;
        int64_t v = 1 + (int64_t)(x % (unsigned)last);
        struct persistent_entry e;
        int rc = persistent_log_get(r->log, v, &e);
        if (rc == 0 && (e.version != v || !race_entry_ok(&e)))
            atomic_fetch_add(&r->errors, 1);
        if (rc != 0 && rc != -ENOENT)
            atomic_fetch_add(&r->errors, 1);
        rc = persistent_log_get_at_time(r->log, v * 10 + 5, &e);
        if (rc == 0 && (e.version > v || !race_entry_ok(&e)))
            atomic_fetch_add(&r->errors, 1);
        if (rc != 0 && rc != -ENOENT)
            atomic_fetch_add(&r->errors, 1);
        rc = persistent_log_get_at_version(r->log, v, &e);
        if (rc == 0 && (e.version > v || !race_entry_ok(&e)))
            atomic_fetch_add(&r->errors, 1);
        if (rc == 0)
            atomic_fetch_add(&r->hits, 1);
    }
    return NULL;
}

START_TEST(lookups_race_trim_and_truncate)
{
    char dir[256];
    tc_tmpdir(dir, sizeof(dir));
    struct race r;
    memset(&r, 0, sizeof(r));
    r.log = tc_open(dir, "race");
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, race_reader, &r), 0);
    uint8_t *buf = malloc(MAXP);
    int64_t v = 1;
    for (int round = 0; round < 400; round++) {
        for (int i = 0; i < 10; i++, v++) {
            size_t size = tc_payload_size(SEED, v, MAXP);
            tc_payload(SEED, v, buf, size);
            ck_assert_int_eq(persistent_log_append(r.log, v, v * 10, buf, size),
                             0);
            atomic_store(&r.last, v);
        }
        if (round % 3 == 0) {
            ck_assert_int_eq(persistent_log_truncate(r.log, v - 4), 0);
            v -= 3;
        }
        ck_assert_int_eq(persistent_log_trim(r.log, v - 40), 0);
    }
    free(buf);
    atomic_store(&r.done, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(atomic_load(&r.errors), 0);
    ck_assert_int_gt(atomic_load(&r.hits), 0);
    persistent_log_close(r.log);
}
END_TEST

Suite *tc_threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, writer_persister_and_readers);
    tcase_add_test(tc, lookups_race_trim_and_truncate);
    suite_add_tcase(s, tc);
    return s;
}
