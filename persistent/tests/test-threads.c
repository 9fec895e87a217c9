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

Suite *tc_threads_suite(void)
{
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, writer_persister_and_readers);
    suite_add_tcase(s, tc);
    return s;
}
