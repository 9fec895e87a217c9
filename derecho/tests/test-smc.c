/* Ordered multicast over SMC: groups of three members inside one process
 * (each with its own ports, fab pool, SST tables and delivery thread) over
 * tcp on loopback. */
#include "test-derecho.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LOG 4096

struct delivery {
    uint32_t subgroup, sender;
    uint64_t version;
    size_t size;
    uint32_t first_word;
    uint64_t hash; /* FNV-1a of the bytes */
};

static uint64_t fnv(const void *data, size_t size)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

struct member {
    struct conf *conf;
    struct derecho_group *g;
    uint32_t id;
    pthread_mutex_t lock;
    struct delivery log[MAX_LOG];
    atomic_int count;
    atomic_int max_members;
    atomic_int members_now;
    atomic_int hold; /* the upcall waits while set */
    atomic_int in_upcall;
};

static void on_view(void *ctx, const struct derecho_view *v)
{
    struct member *m = ctx;
    int n = (int)derecho_view_num_members(v);
    atomic_store(&m->members_now, n);
    if (n > atomic_load(&m->max_members))
        atomic_store(&m->max_members, n);
}

static void on_deliver(void *ctx, uint32_t subgroup, uint32_t shard,
                       uint32_t sender, uint64_t version, const void *data,
                       size_t size)
{
    (void)shard;
    struct member *m = ctx;
    atomic_store(&m->in_upcall, 1);
    while (atomic_load(&m->hold)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* the test holds this upcall on purpose */
    }
    pthread_mutex_lock(&m->lock);
    int i = atomic_load(&m->count);
    if (i < MAX_LOG) {
        uint32_t w = 0;
        memcpy(&w, data, size < 4 ? size : 4);
        m->log[i] = (struct delivery){subgroup, sender, version,
                                      size,     w,      fnv(data, size)};
        atomic_store(&m->count, i + 1);
    }
    pthread_mutex_unlock(&m->lock);
    atomic_store(&m->in_upcall, 0);
}

static uint16_t ports[6];

/* Set by a test before start(): the log line every member must write (at
 * LOG_INFO), and how many members wrote it. */
static const char *want_log = NULL;
static atomic_int saw_log;

static void check_log(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    if (want_log && strstr(msg, want_log))
        atomic_fetch_add(&saw_log, 1);
}

/* Suspicion timeout TD_SUSPECT_MS, as the vs_stress cases below: the
 * default 100 ms falsely suspected a member starved by CI's other tests,
 * and a view change then broke a case's assumptions. */
static void start(struct member *m, uint32_t id,
                  const struct derecho_layout_spec *spec, const char *extra)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "[DERECHO]\nlocal_id = %u\nlocal_ip = 127.0.0.1\n"
             "gms_port = %u\nsst_port = %u\ncontact_ip = 127.0.0.1\n"
             "contact_port = %u\nsst_poll_cq_timeout_ms = " TD_SUSPECT_MS "\n"
             "[SUBGROUP/DEFAULT]\nwindow_size = 4\n"
             "max_smc_payload_size = 256\n%s",
             id, ports[2 * id], ports[2 * id + 1], ports[0],
             extra ? extra : "");
    memset(m, 0, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    m->id = id;
    m->conf = td_conf(text);
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = on_view;
    o.ctx = m;
    o.on_deliver = on_deliver;
    o.deliver_ctx = m;
    o.join_timeout_ms = 20000;
    o.log_level = getenv("DERECHO_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERR;
    if (want_log) {
        o.log = check_log;
        o.log_level = LOG_INFO;
    }
    struct derecho_error err;
    int rc = derecho_group_create(m->conf, spec, &o, &m->g, &err);
    ck_assert_msg(rc == 0, "member %u: %s", id, err.msg);
}

static void stop(struct member *m)
{
    derecho_group_destroy(m->g);
    conf_destroy(m->conf);
    pthread_mutex_destroy(&m->lock);
}

static bool shrunk(void *arg);

/* Members leave one at a time, each once the others installed the view
 * without the previous one (a member leaving in the middle of a view
 * change makes the others wait for its table until the set-up timeout). */
static void stop_all(struct member *ms, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        stop(&ms[i]);
        for (int k = 0; k < i; k++) {
            int want = i;
            struct member *m = &ms[k];
            void *arg[2] = {m, &want};
            ck_assert_msg(th_wait_until(shrunk, arg, 20000),
                          "member %d never saw %d members", k, want);
        }
    }
}

struct count_arg {
    struct member *ms;
    int n;
    int want;
};

static bool all_counted(void *arg)
{
    struct count_arg *a = arg;
    for (int i = 0; i < a->n; i++)
        if (atomic_load(&a->ms[i].count) < a->want)
            return false;
    return true;
}

static bool shrunk(void *arg)
{
    void **a = arg;
    const struct member *m = a[0];
    return atomic_load(&m->members_now) == *(int *)a[1];
}

static bool all_see_three(void *arg)
{
    struct count_arg *a = arg;
    for (int i = 0; i < a->n; i++)
        if (atomic_load(&a->ms[i].max_members) < 3)
            return false;
    return true;
}

static struct derecho_layout_spec *entire_view(int mode)
{
    struct derecho_layout_spec *spec;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "T", NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_entire_view(spec, 0, mode, NULL),
                     0);
    return spec;
}

static void three_with(struct member *ms,
                       const struct derecho_layout_spec *spec,
                       const char *extra)
{
    ck_assert_int_eq(th_free_tcp_ports(ports, 6), 0);
    for (uint32_t i = 0; i < 3; i++)
        start(&ms[i], i, spec, extra);
    struct count_arg a = {ms, 3, 0};
    ck_assert_msg(th_wait_until(all_see_three, &a, 20000),
                  "three members never saw a view of 3");
}

static void three(struct member *ms, const struct derecho_layout_spec *spec)
{
    three_with(ms, spec, NULL);
}

static void send_word(struct member *m, uint32_t word, size_t size)
{
    uint8_t buf[256] = {0};
    memcpy(buf, &word, 4);
    int rc = derecho_send(m->g, 0, buf, size, 0);
    ck_assert_msg(rc == 0, "send: %s", derecho_strerror(rc));
}

/* Every member sends 40 messages from its own thread; every member
 * delivers the same 120 messages in the same order, each sender's in the
 * order sent, with versions (view << 32 | position) increasing. */
struct sender_arg {
    struct member *m;
    int n;
};

static void *sender_main(void *arg)
{
    struct sender_arg *s = arg;
    for (int i = 0; i < s->n; i++) {
        uint32_t word = s->m->id * 1000 + (uint32_t)i;
        if (i % 2) {
            send_word(s->m, word, 4 + (size_t)i * 5);
        } else {
            void *buf;
            ck_assert_int_eq(derecho_send_reserve(s->m->g, 0, 200, 0, &buf), 0);
            memcpy(buf, &word, 4);
            ck_assert_int_eq(derecho_send_commit(s->m->g, 0, 4 + (size_t)i), 0);
        }
    }
    return NULL;
}

START_TEST(ordered_three_senders_same_order)
{
    struct derecho_layout_spec *spec = entire_view(DERECHO_MODE_ORDERED);
    struct member ms[3];
    three(ms, spec);
    pthread_t t[3];
    struct sender_arg sa[3];
    for (int i = 0; i < 3; i++) {
        sa[i] = (struct sender_arg){&ms[i], 40};
        pthread_create(&t[i], NULL, sender_main, &sa[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    struct count_arg a = {ms, 3, 120};
    ck_assert_msg(th_wait_until(all_counted, &a, 20000),
                  "deliveries: %d %d %d of 120", atomic_load(&ms[0].count),
                  atomic_load(&ms[1].count), atomic_load(&ms[2].count));
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&ms[i].count), 120);
        uint32_t next[3] = {0, 0, 0};
        for (int k = 0; k < 120; k++) {
            const struct delivery *d = &ms[i].log[k], *d0 = &ms[0].log[k];
            ck_assert_uint_eq(d->version, d0->version);
            ck_assert_uint_eq(d->sender, d0->sender);
            ck_assert_uint_eq(d->size, d0->size);
            ck_assert_uint_eq(d->first_word, d0->first_word);
            if (k)
                ck_assert_uint_gt(d->version, ms[i].log[k - 1].version);
            ck_assert_uint_lt(d->sender, 3);
            ck_assert_uint_eq(d->first_word,
                              d->sender * 1000 + next[d->sender]);
            next[d->sender]++;
        }
    }
    stop_all(ms, 3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* Every member delivered the 400 nulls of nodes 1 and 2 (the last
 * round's come right after node 0's last message). */
static bool nulls_settled(void *arg)
{
    struct member *ms = arg;
    for (int i = 0; i < 3; i++) {
        struct derecho_shard_stats sh[1];
        struct derecho_group_stats st;
        derecho_group_stats_init(&st);
        st.shards = sh;
        st.max_shards = 1;
        if (derecho_group_stats(ms[i].g, &st) != 0 || st.num_shards != 1 ||
            sh[0].nulls_delivered < 400)
            return false;
    }
    return true;
}

/* Only member 0 sends, one message at a time, waiting for its own
 * delivery: the idle senders' null messages must come at once, so 200
 * round trips finish well within the bound (a fixed null delay of even
 * 50 ms would need 10 s). */
START_TEST(idle_senders_do_not_hold_back_delivery)
{
    struct derecho_layout_spec *spec = entire_view(DERECHO_MODE_ORDERED);
    struct member ms[3];
    three(ms, spec);
    int64_t t0 = th_now_ms();
    for (int i = 0; i < 200; i++) {
        send_word(&ms[0], (uint32_t)i, 8);
        struct count_arg a = {ms, 1, i + 1};
        ck_assert_msg(th_wait_until(all_counted, &a, 5000),
                      "message %d not delivered at its sender", i);
    }
    int64_t took = th_now_ms() - t0;
    ck_assert_msg(took < 8000, "200 round trips took %lld ms", (long long)took);
    struct count_arg a = {ms, 3, 200};
    ck_assert(th_wait_until(all_counted, &a, 5000));
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 200; k++) {
            ck_assert_uint_eq(ms[i].log[k].sender, 0);
            ck_assert_uint_eq(ms[i].log[k].first_word, (uint32_t)k);
        }
    /* The stats: 200 messages of node 0, and one null of each idle
     * sender per round (exactly: a null only for a round where another
     * sender has a message). */
    ck_assert(th_wait_until(nulls_settled, ms, 5000));
    for (int i = 0; i < 3; i++) {
        struct derecho_member_stats mem[4];
        struct derecho_shard_stats sh[2];
        struct derecho_group_stats st;
        derecho_group_stats_init(&st);
        st.members = mem;
        st.max_members = 4;
        st.shards = sh;
        st.max_shards = 2;
        ck_assert_int_eq(derecho_group_stats(ms[i].g, &st), 0);
        struct derecho_view *view;
        ck_assert_int_eq(derecho_group_get_view(ms[i].g, &view), 0);
        ck_assert_int_eq(st.view_id, derecho_view_id(view));
        derecho_view_destroy(view);
        ck_assert_uint_eq(st.num_members, 3);
        for (int k = 0; k < 3; k++) {
            ck_assert_int_eq(mem[k].suspected, 0);
            ck_assert_int_eq(mem[k].reason, 0);
        }
        ck_assert_uint_eq(st.num_shards, 1);
        ck_assert_uint_eq(sh[0].subgroup, 0);
        ck_assert_uint_eq(sh[0].shard, 0);
        ck_assert_uint_eq(sh[0].sent, i == 0 ? 200 : 0);
        ck_assert_uint_eq(sh[0].nulls_sent, i == 0 ? 0 : 200);
        ck_assert_uint_eq(sh[0].delivered, 200);
        ck_assert_uint_eq(sh[0].nulls_delivered, 400);
    }
    struct derecho_group_stats bad;
    derecho_group_stats_init(&bad);
    ck_assert_int_eq(derecho_group_stats(NULL, &bad), -EINVAL);
    ck_assert_int_eq(derecho_group_stats(ms[0].g, NULL), -EINVAL);
    bad.size = sizeof(bad) - 1;
    ck_assert_int_eq(derecho_group_stats(ms[0].g, &bad), -EINVAL);
    stop_all(ms, 3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* Unordered mode: each sender's messages in order, all of them, everywhere
 * (no total order is promised). */
START_TEST(unordered_delivers_on_receipt)
{
    struct derecho_layout_spec *spec = entire_view(DERECHO_MODE_UNORDERED);
    struct member ms[3];
    three(ms, spec);
    for (int i = 0; i < 20; i++)
        for (int s = 0; s < 3; s++)
            send_word(&ms[s], (uint32_t)s * 1000 + (uint32_t)i, 16);
    struct count_arg a = {ms, 3, 60};
    ck_assert(th_wait_until(all_counted, &a, 10000));
    for (int i = 0; i < 3; i++) {
        uint32_t next[3] = {0, 0, 0};
        for (int k = 0; k < 60; k++) {
            const struct delivery *d = &ms[i].log[k];
            ck_assert_uint_eq(d->first_word,
                              d->sender * 1000 + next[d->sender]);
            next[d->sender]++;
        }
    }
    stop_all(ms, 3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* Subgroup 0: every member, the first (rank order) the only sender;
 * subgroup 1: node 2 alone (not provisioned without it). */
static int two_subgroups(void *ctx, const uint32_t *members, size_t n,
                         const struct derecho_layout *prev,
                         struct derecho_layout_draft *draft)
{
    (void)ctx;
    (void)prev;
    bool senders[8] = {true};
    if (n > 8)
        return -ERANGE;
    int rc = derecho_layout_draft_set_shard(draft, 0, 0, members, senders, n);
    uint32_t two = 2;
    bool present = false;
    for (size_t i = 0; i < n; i++)
        present = present || members[i] == 2;
    if (rc == 0)
        rc = present
                 ? derecho_layout_draft_set_shard(draft, 1, 0, &two, NULL, 1)
                 : derecho_layout_draft_unprovisioned(draft, 1);
    return rc;
}

/* The send API's errors, and back-pressure: with a receiver's upcall held,
 * the window (4) fills and a non-blocking send says -EAGAIN; released,
 * everything is delivered. */
START_TEST(send_errors_and_full_window)
{
    struct derecho_layout_spec *spec;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "T", NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, NULL, NULL),
                     0);
    ck_assert_int_eq(derecho_layout_spec_add_subgroup(spec, 0, 1, NULL, NULL),
                     0);
    ck_assert_int_eq(
        derecho_layout_spec_set_allocator(spec, two_subgroups, NULL), 0);
    struct member ms[3];
    three(ms, spec);
    struct derecho_view *v1 = NULL;
    ck_assert_int_eq(derecho_group_get_view(ms[1].g, &v1), 0);
    ck_assert_int_eq(derecho_layout_shard_of(derecho_view_layout(v1), 0, 1), 0);
    derecho_view_destroy(v1);
    static uint8_t big[10241];
    void *buf;
    size_t max = 0;
    ck_assert_int_eq(derecho_send_max_size(ms[0].g, 0, &max), 0);
    ck_assert_uint_eq(max, 256);
    /* Over max_payload_size (its default 10240; RDMC above 256). */
    ck_assert_int_eq(derecho_send(ms[0].g, 0, big, 10241, 0), -EMSGSIZE);
    ck_assert_int_eq(derecho_send(ms[0].g, 7, big, 8, 0), -ERANGE);
    ck_assert_int_eq(derecho_send(ms[0].g, 1, big, 8, 0), -ENOENT);
    ck_assert_int_eq(derecho_send(ms[1].g, 0, big, 8, 0), -EPERM);
    ck_assert_int_eq(derecho_send(NULL, 0, big, 8, 0), -EINVAL);
    ck_assert_int_eq(derecho_send_commit(ms[0].g, 0, 8), -ENOENT);
    ck_assert_int_eq(derecho_send_cancel(ms[0].g, 0), -ENOENT);
    ck_assert_int_eq(derecho_send_reserve(ms[0].g, 0, 16, 0, &buf), 0);
    ck_assert_int_eq(derecho_send_reserve(ms[0].g, 0, 16, 0, &buf), -EBUSY);
    ck_assert_int_eq(derecho_send_commit(ms[0].g, 0, 17), -EINVAL);
    ck_assert_int_eq(derecho_send_cancel(ms[0].g, 0), 0);
    /* Node 2 alone in subgroup 1: its messages are its own. */
    ck_assert_int_eq(derecho_send(ms[2].g, 1, big, 8, 0), 0);
    /* Back-pressure. */
    atomic_store(&ms[1].hold, 1);
    int sent = 0, rc = 0;
    for (int i = 0; i < 50 && rc == 0; i++) {
        rc = derecho_send(ms[0].g, 0, big, 8, DERECHO_SEND_NONBLOCK);
        if (rc == 0)
            sent++;
    }
    ck_assert_int_eq(rc, -EAGAIN);
    ck_assert_int_le(sent, 4 + 1);
    atomic_store(&ms[1].hold, 0);
    ck_assert_int_eq(derecho_send(ms[0].g, 0, big, 8, 0), 0);
    sent++;
    struct count_arg a = {ms, 2, sent};
    ck_assert(th_wait_until(all_counted, &a, 10000));
    /* Node 2 delivers on its own thread: wait for it too (it also has its
     * own subgroup-1 message), then check nothing more came. */
    struct count_arg a2 = {ms + 2, 1, sent + 1};
    ck_assert(th_wait_until(all_counted, &a2, 10000));
    ck_assert_int_eq(atomic_load(&ms[2].count), sent + 1);
    stop_all(ms, 3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* ---- large messages: the RDMC path ----------------------------------------
 */

#define RDMC_CONF "max_payload_size = 65536\nblock_size = 16384\n"

/* The bytes of sender's i-th message of size bytes: its word first, then
 * a pattern of both. */
static void fill(uint8_t *buf, uint32_t word, size_t size)
{
    for (size_t b = 0; b < size; b++)
        buf[b] = (uint8_t)(word * 31 + b * 7);
    memcpy(buf, &word, size < 4 ? size : 4);
}

static const size_t rdmc_sizes[] = {8, 256, 257, 65536, 3000, 40000, 100};

struct big_arg {
    struct member *m;
    int n;
};

/* Sends n messages cycling through rdmc_sizes; odd ones by copy, even ones
 * reserved larger (an RDMC reservation) and committed at their size. */
static void *big_sender_main(void *arg)
{
    struct big_arg *s = arg;
    uint8_t *buf = malloc(65536);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < s->n; i++) {
        uint32_t word = s->m->id * 1000 + (uint32_t)i;
        size_t size = rdmc_sizes[(size_t)i % 7];
        fill(buf, word, size);
        if (i % 2) {
            int rc = derecho_send(s->m->g, 0, buf, size, 0);
            ck_assert_msg(rc == 0, "send %zu: %s", size, derecho_strerror(rc));
        } else {
            void *p;
            ck_assert_int_eq(derecho_send_reserve(s->m->g, 0, 65536, 0, &p), 0);
            memcpy(p, buf, size);
            ck_assert_int_eq(derecho_send_commit(s->m->g, 0, size), 0);
        }
    }
    free(buf);
    return NULL;
}

/* Messages above max_smc_payload_size (256) and up to max_payload_size
 * (64 KiB) go through RDMC, in the one order of every sender's sequence:
 * three senders mixing SMC and RDMC sizes (256 exactly and 257, 64 KiB,
 * reservations larger than what is committed) deliver the same messages
 * with the same bytes in the same order everywhere; 64 KiB + 1 is refused.
 * Fails without the RDMC path (sends over 256 bytes: -EMSGSIZE). */
START_TEST(rdmc_large_messages_in_one_order)
{
    struct derecho_layout_spec *spec = entire_view(DERECHO_MODE_ORDERED);
    struct member ms[3];
    /* Run 1: every pool limited to 4 bytes of completion data
     * ([RDMA] cq_data_limit, as verbs carries): SST and RDMC words take
     * their 4-byte layout, and each member says so in its log. */
    if (_i == 1)
        want_log = "4 bytes of completion data";
    three_with(ms, spec,
               _i == 1 ? RDMC_CONF "[RDMA]\ncq_data_limit = 4\n" : RDMC_CONF);
    ck_assert_int_eq(atomic_load(&saw_log), _i == 1 ? 3 : 0);
    size_t max = 0;
    ck_assert_int_eq(derecho_send_max_size(ms[0].g, 0, &max), 0);
    ck_assert_uint_eq(max, 256);
    ck_assert_int_eq(derecho_send_max_payload(ms[0].g, 0, &max), 0);
    ck_assert_uint_eq(max, 65536);
    uint8_t *big = calloc(1, 65537);
    void *p;
    ck_assert_int_eq(derecho_send(ms[0].g, 0, big, 65537, 0), -EMSGSIZE);
    ck_assert_int_eq(derecho_send_reserve(ms[0].g, 0, 65537, 0, &p), -EMSGSIZE);
    ck_assert_int_eq(derecho_send_reserve(ms[0].g, 0, 1000, 0, &p), 0);
    ck_assert_int_eq(derecho_send_commit(ms[0].g, 0, 1001), -EINVAL);
    ck_assert_int_eq(derecho_send_cancel(ms[0].g, 0), 0);
    free(big);
    enum { N = 42 };
    pthread_t t[3];
    struct big_arg sa[3];
    for (int i = 0; i < 3; i++) {
        sa[i] = (struct big_arg){&ms[i], N};
        pthread_create(&t[i], NULL, big_sender_main, &sa[i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    struct count_arg a = {ms, 3, 3 * N};
    ck_assert_msg(th_wait_until(all_counted, &a, 30000),
                  "deliveries: %d %d %d of %d", atomic_load(&ms[0].count),
                  atomic_load(&ms[1].count), atomic_load(&ms[2].count), 3 * N);
    uint8_t *want = malloc(65536);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&ms[i].count), 3 * N);
        uint32_t next[3] = {0, 0, 0};
        for (int k = 0; k < 3 * N; k++) {
            const struct delivery *d = &ms[i].log[k], *d0 = &ms[0].log[k];
            ck_assert_uint_eq(d->version, d0->version);
            ck_assert_uint_eq(d->sender, d0->sender);
            if (k)
                ck_assert_uint_gt(d->version, ms[i].log[k - 1].version);
            ck_assert_uint_lt(d->sender, 3);
            uint32_t n = next[d->sender]++;
            size_t size = rdmc_sizes[n % 7];
            fill(want, d->sender * 1000 + n, size);
            ck_assert_uint_eq(d->size, size);
            ck_assert_msg(d->hash == fnv(want, size),
                          "member %d: message %u of %u (%zu bytes) differs", i,
                          n, d->sender, size);
        }
    }
    free(want);
    stop_all(ms, 3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

/* Back-pressure over the RDMC ring: with a receiver's upcall held, large
 * non-blocking sends stop with -EAGAIN within the window (4); released,
 * everything is delivered.  Unordered mode delivers RDMC messages on
 * receipt, each sender's in order. */
START_TEST(rdmc_window_and_unordered)
{
    struct derecho_layout_spec *spec = entire_view(DERECHO_MODE_UNORDERED);
    struct member ms[3];
    three_with(ms, spec, RDMC_CONF);
    uint8_t *buf = malloc(65536);
    atomic_store(&ms[1].hold, 1);
    int sent = 0, rc = 0;
    for (int i = 0; i < 50 && rc == 0; i++) {
        fill(buf, (uint32_t)sent, 30000);
        rc = derecho_send(ms[0].g, 0, buf, 30000, DERECHO_SEND_NONBLOCK);
        if (rc == 0)
            sent++;
    }
    ck_assert_int_eq(rc, -EAGAIN);
    ck_assert_int_le(sent, 4 + 1);
    atomic_store(&ms[1].hold, 0);
    for (int i = 0; i < 10; i++) {
        fill(buf, (uint32_t)sent, 30000);
        ck_assert_int_eq(derecho_send(ms[0].g, 0, buf, 30000, 0), 0);
        sent++;
    }
    struct count_arg a = {ms, 3, sent};
    ck_assert(th_wait_until(all_counted, &a, 20000));
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < sent; k++) {
            fill(buf, (uint32_t)k, 30000);
            ck_assert_uint_eq(ms[i].log[k].first_word, (uint32_t)k);
            ck_assert(ms[i].log[k].hash == fnv(buf, 30000));
        }
    free(buf);
    stop_all(ms, 3);
    derecho_layout_spec_destroy(spec);
}
END_TEST

TCase *tc_smc(void)
{
    TCase *tc = tcase_create("smc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ordered_three_senders_same_order);
    tcase_add_test(tc, idle_senders_do_not_hold_back_delivery);
    tcase_add_test(tc, unordered_delivers_on_receipt);
    tcase_add_test(tc, send_errors_and_full_window);
    tcase_add_loop_test(tc, rdmc_large_messages_in_one_order, 0, 2);
    tcase_add_test(tc, rdmc_window_and_unordered);
    return tc;
}

/* ---- vs_stress processes and check_vs -------------------------------------
 * (suite derecho-vs: run by the test in applications/meson.build, which
 * passes the paths in VS_STRESS, CHECK_VS and PYTHON3). */

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    ck_assert_msg(v && *v, "%s is not set (run through meson test)", name);
    return v;
}

/* n vs_stress members started 0.3 s apart on free ports, each with its own
 * log in a temporary folder; then check_vs over the logs.  sig_member >= 0:
 * that member gets SIGTERM once it is admitted and must leave cleanly
 * (exit 128 + SIGTERM) while the others finish. */
static void run_vs_signal(int n, int messages, const char *sizes,
                          const char *senders, int sig_member, int sig,
                          int after_deliveries);

static void run_vs(int n, int messages, const char *sizes, const char *senders,
                   int sig_member)
{
    run_vs_signal(n, messages, sizes, senders, sig_member, SIGTERM, 0);
}

/* Lines of a log that start with prefix. */
static int count_lines(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int count = 0;
    while (f && fgets(line, sizeof(line), f))
        count += strncmp(line, prefix, strlen(prefix)) == 0;
    if (f)
        fclose(f);
    return count;
}

/* Set by a test before run_vs_signal: a second member killed (SIGKILL)
 * together with sig_member (-1: none), and the exit status expected of
 * the other members (0; 4 when they are left without a majority). */
static int also_killed = -1;
static int others_status = 0;
/* Set by a test: member hook_member is started with hook_env set to a file
 * in the test's folder (a test-only hook of libderecho, docs/derecho.md);
 * once sig_member got its signal and that file appears, hook_member gets
 * SIGKILL. */
static const char *hook_env = NULL;
/* Set by a test with hook_env: the test creates the hook file itself
 * right after sig_member's signal (arming a hook that fires at the next
 * table set-up) and does not kill hook_member, which must stop cleanly:
 * exit 3 (expelled) or 4 (partitioned). */
static bool hook_arm = false;
/* Every member's suspicion timeout is TD_SUSPECT_MS unless a test gives
 * its own (td_vs_member_args; vs_stress_configured_suspect_timeout checks
 * that the configured value is used). */
static int hook_member = -1;
/* A config override every member gets (NULL: none), and, after a SIGSTOP,
 * the ms from the signal until member 0's log showed the view without the
 * stopped member. */
static const char *extra_conf = NULL;
static int64_t stop_removed_ms = -1;
/* Set by a test before run_vs_signal: one more configuration override
 * for every member (NULL: none). */
static const char *vs_conf = NULL;
/* Set by a test: the members run vs_stress --unordered and the logs are
 * checked with check_vs --unordered. */
static bool vs_unordered = false;

/* Node ids of a comma-separated list, as a bit set (ids below 64). */
static uint64_t id_set(const char *list)
{
    uint64_t set = 0;
    while (*list >= '0' && *list <= '9') {
        char *end;
        unsigned long id = strtoul(list, &end, 10);
        if (id < 64)
            set |= UINT64_C(1) << id;
        list = *end == ',' ? end + 1 : end;
    }
    return set;
}

/* Does the last view line of a log list exactly members (e.g. "1,2"), in
 * any order?  Rank order is join order: a member started later may join
 * first on a loaded machine (a view "0,2,1"; without 0, "2,1"). */
static bool last_view_is(const char *path, const char *members)
{
    FILE *f = fopen(path, "r");
    char line[256], last[256] = "";
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "view ", 5) == 0)
            memcpy(last, line, sizeof(last));
    if (f)
        fclose(f);
    const char *list = strchr(last + 5, ' ');
    if (!list)
        return false;
    return id_set(list + 1) == id_set(members);
}

/* sig_member >= 0 gets sig once its log has a view line and at least
 * after_deliveries deliver lines.  SIGSTOP: it stays stopped until member
 * 0's log shows a view of the others (it was suspected and removed), then
 * gets SIGCONT and must stop as expelled (exit 3). */
static void run_vs_signal(int n, int messages, const char *sizes,
                          const char *senders, int sig_member, int sig,
                          int after_deliveries)
{
    const char *vs = need_env("VS_STRESS"), *check = need_env("CHECK_VS"),
               *py = need_env("PYTHON3");
    uint16_t port[16];
    ck_assert_int_eq(th_free_tcp_ports(port, 2 * n), 0);
    char dir[512];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    struct th_procs p;
    th_procs_init(&p);
    char args[8][2][128];
    char logs[8][600];
    struct td_vs_args ma[8];
    for (int i = 0; i < n; i++) {
        snprintf(args[i][0], 128, "%d", n);
        snprintf(args[i][1], 128, "%d", messages);
        snprintf(logs[i], sizeof(logs[i]), "%s/m%d.log", dir, i);
        const char *xargv[32];
        int na = 0;
        xargv[na++] = vs;
        td_vs_member_args(&ma[i], i, port, "127.0.0.1", "127.0.0.1", xargv,
                          &na);
        if (extra_conf)
            xargv[na++] = extra_conf;
        if (vs_conf)
            xargv[na++] = vs_conf;
        const char *const opts[] = {
            "--",  "--nodes",   args[i][0], "--messages", args[i][1], "--sizes",
            sizes, "--senders", senders,    "--log",      logs[i]};
        for (size_t a = 0; a < sizeof(opts) / sizeof(opts[0]); a++)
            xargv[na++] = opts[a];
        if (vs_unordered)
            xargv[na++] = "--unordered";
        xargv[na] = NULL;
        char hook_file[600];
        snprintf(hook_file, sizeof(hook_file), "%s/hook", dir);
        if (hook_env && i == hook_member)
            setenv(hook_env, hook_file, 1);
        ck_assert_int_ge(th_spawn_exec(&p, vs, xargv), 0);
        if (hook_env)
            unsetenv(hook_env);
        if (i + 1 < n)
            td_vs_spacing();
    }
    if (sig_member >= 0) {
        /* Once its log shows a view (it is in the group) and enough
         * deliveries. */
        int64_t deadline = th_now_ms() + 30000;
        bool in = false;
        while (!in && th_now_ms() < deadline) {
            in = count_lines(logs[sig_member], "view ") > 0 &&
                 count_lines(logs[sig_member], "deliver ") >= after_deliveries;
            if (!in) {
                struct timespec ts = {0, 5000000};
                nanosleep(&ts, NULL);
            }
        }
        ck_assert_msg(in, "member %d never got that far", sig_member);
        ck_assert_int_eq(th_signal(&p, sig_member, sig), 0);
        int64_t signalled = th_now_ms();
        if (also_killed >= 0)
            ck_assert_int_eq(th_signal(&p, also_killed, SIGKILL), 0);
        if (hook_env && hook_arm) {
            char hook_file[600];
            snprintf(hook_file, sizeof(hook_file), "%s/hook", dir);
            FILE *hf = fopen(hook_file, "w");
            ck_assert_ptr_nonnull(hf);
            fclose(hf);
        } else if (hook_env) {
            char hook_file[600];
            snprintf(hook_file, sizeof(hook_file), "%s/hook", dir);
            int64_t until = th_now_ms() + 30000;
            while (access(hook_file, F_OK) != 0 && th_now_ms() < until) {
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
            }
            ck_assert_msg(access(hook_file, F_OK) == 0,
                          "member %d never reached its hook", hook_member);
            ck_assert_int_eq(th_signal(&p, hook_member, SIGKILL), 0);
        }
        if (sig == SIGSTOP) {
            char others[64] = "";
            for (int i = 0; i < n; i++)
                if (i != sig_member)
                    snprintf(others + strlen(others),
                             sizeof(others) - strlen(others), "%s%d",
                             others[0] ? "," : "", i);
            deadline = th_now_ms() + 30000;
            bool removed = false;
            int watch = sig_member == 0 ? 1 : 0;
            while (!removed && th_now_ms() < deadline) {
                removed = last_view_is(logs[watch], others);
                if (!removed) {
                    struct timespec ts = {0, 5000000};
                    nanosleep(&ts, NULL);
                }
            }
            stop_removed_ms = th_now_ms() - signalled;
            ck_assert_int_eq(th_signal(&p, sig_member, SIGCONT), 0);
            ck_assert_msg(removed, "member %d stopped was not removed",
                          sig_member);
        }
    }
    ck_assert_int_eq(th_wait_all(&p, 120000), 0);
    for (int i = 0; i < n; i++) {
        if (hook_arm && i == hook_member) {
            ck_assert_msg(WIFEXITED(p.status[i]) &&
                              (WEXITSTATUS(p.status[i]) == 3 ||
                               WEXITSTATUS(p.status[i]) == 4),
                          "member %d silent during set-up: status %#x "
                          "(3 expelled or 4 partitioned)",
                          i, p.status[i]);
            continue;
        }
        if ((i == sig_member && sig == SIGKILL) || i == also_killed ||
            (hook_env && i == hook_member)) {
            ck_assert_msg(WIFSIGNALED(p.status[i]),
                          "member %d after SIGKILL: status %#x", i,
                          p.status[i]);
            continue;
        }
        if (i == sig_member && sig == SIGSTOP) {
            ck_assert_msg(WIFEXITED(p.status[i]) &&
                              WEXITSTATUS(p.status[i]) == 3,
                          "member %d stopped and resumed: status %#x "
                          "(3: expelled)",
                          i, p.status[i]);
            continue;
        }
        if (i == sig_member) {
            ck_assert_msg(
                WIFEXITED(p.status[i]) && WEXITSTATUS(p.status[i]) == 128 + sig,
                "member %d after signal %d: status %#x", i, sig, p.status[i]);
            continue;
        }
        ck_assert_msg(WIFEXITED(p.status[i]) &&
                          WEXITSTATUS(p.status[i]) == others_status,
                      "member %d: status %#x (expected exit %d)", i,
                      p.status[i], others_status);
    }
    struct th_procs c;
    th_procs_init(&c);
    const char *cargv[12] = {py, check};
    int k = 2;
    if (vs_unordered)
        cargv[k++] = "--unordered";
    for (int i = 0; i < n; i++)
        cargv[k++] = logs[i];
    cargv[k] = NULL;
    ck_assert_int_ge(th_spawn_exec(&c, py, cargv), 0);
    ck_assert_int_eq(th_wait_all(&c, 60000), 0);
    ck_assert_msg(th_exited_ok(&c, 0), "check_vs failed: status %#x",
                  c.status[0]);
    th_rmtree(dir);
}

START_TEST(vs_stress_three_all_senders)
{
    run_vs(3, 200, "100,3000,10000", "all", -1);
}
END_TEST

START_TEST(vs_stress_four_half_senders)
{
    run_vs(4, 150, "1,512,10240", "half", -1);
}
END_TEST

START_TEST(vs_stress_three_one_sender)
{
    run_vs(3, 200, "64,4096", "one", -1);
}
END_TEST

START_TEST(vs_stress_sigterm_leaves_cleanly)
{
    run_vs(3, 300, "100,1000", "one", 2);
}
END_TEST

/* A sender killed mid-stream (not the leader: leader takeover comes with
 * the next step): the survivors install a view without it, deliver the
 * same messages of the old view, send their own undelivered ones again
 * and finish. */
START_TEST(vs_stress_sender_killed_mid_stream)
{
    run_vs_signal(3, 400, "100,3000", "all", 2, SIGKILL, 60);
}
END_TEST

/* Unordered mode (delivery on receipt): a member killed mid-stream while
 * every member sends.  At the view's end some survivor may have delivered
 * a surviving sender's message another has not received: that sender
 * sends it again first in the next view, and those that delivered it
 * already skip it, so every survivor delivers every message of every
 * surviving sender exactly once (check_vs --unordered: once, same-set;
 * vs_stress finishes only with all of them). */
START_TEST(vs_stress_unordered_sender_killed)
{
    vs_unordered = true;
    run_vs_signal(4, 400, "100,3000", "all", 3, SIGKILL, 60);
}
END_TEST

/* Unordered, half of the members send: a receive-only member killed. */
START_TEST(vs_stress_unordered_receiver_killed)
{
    vs_unordered = true;
    run_vs_signal(4, 400, "100,3000", "half", 3, SIGKILL, 60);
}
END_TEST

/* A member stopped (SIGSTOP) past the suspicion timeout: the others
 * suspect it by its stalled heartbeat (its kernel still acknowledges TCP),
 * the leader installs a view without it and they finish; resumed, it
 * learns from the suspicion in its row that it was removed and stops
 * ("expelled", vs_stress exit 3) instead of going on. */
START_TEST(vs_stress_stopped_member_expelled)
{
    run_vs_signal(3, 3000, "100,1000", "all", 2, SIGSTOP, 60);
}
END_TEST

/* The configured suspicion timeout ([DERECHO] sst_poll_cq_timeout_ms) is
 * the one libsst uses: with 2000 ms a stopped member is removed no sooner
 * than 2 s after SIGSTOP (libsst's own default, 1000 ms, would remove it
 * after about 1 s), and well before 10 s.  Load can only delay suspicion,
 * so the lower bound is not timing-sensitive. */
START_TEST(vs_stress_configured_suspect_timeout)
{
    extra_conf = "--DERECHO/sst_poll_cq_timeout_ms=2000";
    stop_removed_ms = -1;
    run_vs_signal(3, 3000, "100,1000", "all", 2, SIGSTOP, 60);
    extra_conf = NULL;
    fprintf(stderr, "stopped member removed %lld ms after SIGSTOP\n",
            (long long)stop_removed_ms);
    ck_assert_msg(stop_removed_ms >= 1900 && stop_removed_ms < 10000,
                  "stopped member removed %lld ms after SIGSTOP "
                  "(configured suspicion timeout 2000 ms)",
                  (long long)stop_removed_ms);
}
END_TEST

/* kill -9 of the leader mid-stream: the lowest-ranked survivor takes
 * over over the SST (no reconnection: it proposes the old leader's
 * failure in its row, the others acknowledge, it commits), and the
 * survivors finish with the same deliveries. */
START_TEST(vs_stress_leader_killed)
{
    run_vs_signal(3, 1500, "100,3000", "all", 0, SIGKILL, 60);
}
END_TEST

/* Two failures at once (kill -9 of two non-leaders of five, mid-stream):
 * the three survivors keep a majority, install a view without both and
 * finish. */
START_TEST(vs_stress_two_killed_at_once)
{
    also_killed = 3;
    run_vs_signal(5, 300, "100,1000", "all", 4, SIGKILL, 60);
}
END_TEST

/* Partition safety (on by default): kill -9 of two of three leaves the
 * leader without a majority of its view: it stops as "partitioned"
 * (vs_stress exit 4) before delivering the view's edge, never installs a
 * view of itself alone, and check_vs holds over the three logs. */
START_TEST(vs_stress_minority_stops_partitioned)
{
    also_killed = 1;
    others_status = 4;
    run_vs_signal(3, 2000, "100,1000", "all", 2, SIGKILL, 60);
}
END_TEST

/* SIGSTOP of the LEADER past the suspicion timeout: the others suspect
 * it, the next rank takes over over the SST and they finish; resumed, the
 * old leader learns from the rows that it was removed and stops
 * "expelled" (exit 3), never "partitioned". */
START_TEST(vs_stress_stopped_leader_expelled)
{
    run_vs_signal(3, 3000, "100,1000", "all", 0, SIGSTOP, 60);
}
END_TEST

/* kill -9 of a shard leader during ragged-edge cleanup: of five, member 4
 * is killed; the shard leader (member 0, also the group's leader)
 * publishes the edge and, through the test-only DERECHO_TEST_EDGE_HOOK,
 * tells the test and waits 3 s before delivering: it is killed then.  The
 * survivors adopt the published edge (never recompute it), install the
 * view, remove member 0 in the next one and finish; check_vs holds. */
START_TEST(vs_stress_shard_leader_killed_in_cleanup)
{
    hook_env = "DERECHO_TEST_EDGE_HOOK";
    hook_member = 0;
    run_vs_signal(5, 1500, "100,1000", "all", 4, SIGKILL, 60);
}
END_TEST

/* The leader killed after proposing a change but before committing it
 * (test-only DERECHO_TEST_PROPOSE_HOOK: it holds its commit 3 s once
 * every member acknowledged): the next rank takes the proposal over,
 * adds the old leader's failure, commits, and the survivors finish. */
START_TEST(vs_stress_leader_killed_before_commit)
{
    hook_env = "DERECHO_TEST_PROPOSE_HOOK";
    hook_member = 0;
    run_vs_signal(5, 1500, "100,1000", "all", 4, SIGKILL, 60);
}
END_TEST

/* A member silent in the middle of a view's set-up (issue 15): of four,
 * member 3 is killed; member 2 (test-only SST_TEST_BARRIER_HOOK, armed
 * right after the kill) completes the next table's rendezvous, then stays
 * silent past the set-up timeout before its first barrier, connections
 * up.  The survivors suspect it at their first barrier (their tables are
 * created; before, every one failed with -ETIMEDOUT naming nobody and was
 * left in a view with no multicast and no membership protocol), remove it
 * in the next view and finish; member 2 stops cleanly (exit 3 or 4), not
 * stuck in a view; check_vs holds. */
START_TEST(vs_stress_silent_during_table_setup)
{
    hook_env = "SST_TEST_BARRIER_HOOK";
    hook_arm = true;
    hook_member = 2;
    run_vs_signal(4, 1500, "100,1000", "all", 3, SIGKILL, 60);
}
END_TEST

/* Large messages (RDMC above max_smc_payload_size, 10240 by default, up
 * to max_payload_size) mixed with SMC ones in every sender's sequence,
 * checked by check_vs: all, half and one senders. */
#define VS_RDMC "--SUBGROUP/DEFAULT/max_payload_size=262144"

START_TEST(vs_stress_rdmc_all_senders)
{
    vs_conf = VS_RDMC;
    run_vs(3, 150, "100,3000,200000", "all", -1);
}
END_TEST

START_TEST(vs_stress_rdmc_half_senders)
{
    vs_conf = VS_RDMC;
    run_vs(4, 120, "100,200000,3000", "half", -1);
}
END_TEST

/* One sender, sizes at the border: max_smc_payload_size exactly (SMC) and
 * one byte more (RDMC), max_payload_size exactly. */
START_TEST(vs_stress_rdmc_one_sender_border_sizes)
{
    vs_conf = VS_RDMC;
    run_vs(3, 150, "10240,10241,262144,1", "one", -1);
}
END_TEST

/* Only RDMC messages, every member sending, window 16 over a ring of 8
 * positions: a position is rewritten only after every member delivered
 * its message (without that check, check_vs sees different bytes). */
START_TEST(vs_stress_rdmc_ring_reuse)
{
    vs_conf = VS_RDMC;
    run_vs(3, 100, "150000,262144,20000", "all", -1);
}
END_TEST

/* kill -9 of a sender mid-stream while it sends RDMC messages: the view's
 * RDMC groups are wedged at the epoch end, the survivors deliver the same
 * edge, resend (through RDMC in fresh groups) what lies beyond it and
 * finish; check_vs holds. */
START_TEST(vs_stress_rdmc_sender_killed_mid_stream)
{
    vs_conf = VS_RDMC;
    run_vs_signal(3, 300, "100,200000,3000,150000", "all", 2, SIGKILL, 40);
}
END_TEST

/* The same with every member's pool limited to 4 bytes of completion
 * data ([RDMA] cq_data_limit = 4, as verbs carries): the RDMC path, its
 * wedge at the view's end and the SST all use their 4-byte words. */
START_TEST(vs_stress_rdmc_cq_data_4)
{
    vs_conf = VS_RDMC;
    extra_conf = "--RDMA/cq_data_limit=4";
    run_vs_signal(3, 300, "100,200000,3000,150000", "all", 2, SIGKILL, 40);
}
END_TEST

/* Unordered over RDMC as well: a member killed while every member sends
 * large messages; RDMC relays a message through members, so a survivor
 * downstream of the killed one can miss a message another survivor
 * delivered on receipt. */
START_TEST(vs_stress_unordered_rdmc_killed)
{
    vs_unordered = true;
    vs_conf = VS_RDMC;
    run_vs_signal(4, 300, "100,200000,3000,150000", "all", 3, SIGKILL, 40);
}
END_TEST

/* A member silent during a view's table set-up (a case of its own:
 * CK_RUN_CASE). */
TCase *tc_vs_setup(void)
{
    TCase *tc = tcase_create("vs_setup");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, vs_stress_silent_during_table_setup);
    return tc;
}

/* Unordered mode's view changes (a case of its own: CK_RUN_CASE). */
TCase *tc_vs_unordered(void)
{
    TCase *tc = tcase_create("vs_unordered");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, vs_stress_unordered_sender_killed);
    tcase_add_test(tc, vs_stress_unordered_receiver_killed);
    tcase_add_test(tc, vs_stress_unordered_rdmc_killed);
    return tc;
}

TCase *tc_vs(void)
{
    TCase *tc = tcase_create("vs_stress");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, vs_stress_three_all_senders);
    tcase_add_test(tc, vs_stress_four_half_senders);
    tcase_add_test(tc, vs_stress_three_one_sender);
    tcase_add_test(tc, vs_stress_sigterm_leaves_cleanly);
    tcase_add_test(tc, vs_stress_sender_killed_mid_stream);
    tcase_add_test(tc, vs_stress_stopped_member_expelled);
    tcase_add_test(tc, vs_stress_configured_suspect_timeout);
    tcase_add_test(tc, vs_stress_two_killed_at_once);
    tcase_add_test(tc, vs_stress_minority_stops_partitioned);
    tcase_add_test(tc, vs_stress_leader_killed);
    tcase_add_test(tc, vs_stress_stopped_leader_expelled);
    tcase_add_test(tc, vs_stress_shard_leader_killed_in_cleanup);
    tcase_add_test(tc, vs_stress_leader_killed_before_commit);
    tcase_add_test(tc, vs_stress_rdmc_all_senders);
    tcase_add_test(tc, vs_stress_rdmc_half_senders);
    tcase_add_test(tc, vs_stress_rdmc_one_sender_border_sizes);
    tcase_add_test(tc, vs_stress_rdmc_ring_reuse);
    tcase_add_test(tc, vs_stress_rdmc_sender_killed_mid_stream);
    tcase_add_test(tc, vs_stress_rdmc_cq_data_4);
    return tc;
}

/* The stress tier: longer runs, many times in a row. */
START_TEST(vs_stress_repeated)
{
    for (int i = 0; i < 10; i++) {
        run_vs(3, 1000, "1,100,3000,10240", "all", -1);
        run_vs(4, 500, "64,8000", "half", -1);
    }
}
END_TEST

/* The 1 MiB bandwidth run (messages through RDMC, every member a
 * sender) never stalls: bandwidth_test --spawn 3 finishes 100 times in a
 * row, each run bounded at 60 s (about 2 s on a loaded 2-core machine).
 * A member lost to a false suspicion ends the run at once (bench_collect
 * stops the others) and fails the case on its status, not as a stall. */
START_TEST(bandwidth_1mib_never_stalls)
{
    const char *bw = need_env("BANDWIDTH_TEST");
    char dir[512], cwd[1024];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    ck_assert_int_eq(chdir(dir), 0); /* its data_derecho_bw goes there */
    for (int run = 0; run < 100; run++) {
        struct th_procs p;
        th_procs_init(&p);
        const char *argv[] = {bw, "--SUBGROUP/DEFAULT/max_payload_size=1048576",
                              /* as every multi-process case: a false suspicion
                               * of a member waiting for a CPU is not a stall */
                              "--DERECHO/sst_poll_cq_timeout_ms=" TD_SUSPECT_MS,
                              "--", "--spawn", "3", "0", "100", "0", NULL};
        ck_assert_int_ge(th_spawn_exec(&p, bw, argv), 0);
        ck_assert_msg(th_wait_all(&p, 60000) == 0,
                      "run %d: bandwidth_test stalled (no end in 60 s)", run);
        ck_assert_msg(th_exited_ok(&p, 0), "run %d: status %#x", run,
                      p.status[0]);
    }
    ck_assert_int_eq(chdir(cwd), 0);
    th_rmtree(dir);
}
END_TEST

TCase *tc_vs_stress(void)
{
    TCase *tc = tcase_create("vs_stress_repeated");
    tcase_set_timeout(tc, 3000);
    tcase_add_test(tc, vs_stress_repeated);
    tcase_add_test(tc, bandwidth_1mib_never_stalls);
    return tc;
}
