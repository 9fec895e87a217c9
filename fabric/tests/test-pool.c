/* Two or more pools in one process: connections, data, hostile peers. */
#include "test-fab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

struct counters {
    atomic_int failures;
    atomic_int last_reason;
    atomic_uint_fast64_t last_data;
    atomic_int data_calls;
};

static void on_failure(void *ctx, uint32_t node_id, int reason)
{
    (void)node_id;
    struct counters *c = ctx;
    atomic_store(&c->last_reason, reason);
    atomic_fetch_add(&c->failures, 1);
}

static void on_data(void *ctx, uint32_t node_id, uint64_t data)
{
    (void)node_id;
    struct counters *c = ctx;
    atomic_store(&c->last_data, data);
    atomic_fetch_add(&c->data_calls, 1);
}

static const struct fab_user_callbacks cbs = {on_failure, on_data};

static void op_done(struct fab_op *op, int status)
{
    atomic_int *flag = op->ctx;
    atomic_store(flag, status == 0 ? 1 : status);
}

/* Pumps pool a's progress on this thread until *flag != 0 or timeout. */
static bool pump_until(struct fab_pool *a, atomic_int *flag, int timeout_ms)
{
    return TH_WAIT_UNTIL(
        (fab_pool_progress_wait(a, 20, 5), atomic_load(flag) != 0), timeout_ms);
}

START_TEST(borrow_write_writedata_send_recv)
{
    struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    struct counters ca = {0}, cb = {0};
    struct fab_user *ua, *ub;
    ck_assert_int_eq(fab_user_create(a, &cbs, &ca, &ua), 0);
    ck_assert_int_eq(fab_user_create(b, &cbs, &cb, &ub), 0);
    struct fab_conn *ab = NULL, *ba = NULL;
    struct fab_error err;
    ck_assert_msg(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 5000, &ab, &err) == 0,
        "%s", err.msg);
    ck_assert_uint_eq(fab_conn_node_id(ab), 2);
    ck_assert_int_eq(fab_conn_status(ab), 0);
    /* b has it too, without dialing: borrowing needs no address. */
    ck_assert_int_eq(fab_borrow(ub, 1, NULL, 0, 5000, &ba, &err), 0);

    static uint8_t src[4096], dst[4096], rbuf[128];
    struct fab_mr *msrc, *mdst, *mr;
    ck_assert_int_eq(
        fab_mr_register(a, src, sizeof(src), FAB_ACCESS_LOCAL, &msrc), 0);
    ck_assert_int_eq(fab_mr_register(b, dst, sizeof(dst),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &mdst),
                     0);
    ck_assert_int_eq(
        fab_mr_register(b, rbuf, sizeof(rbuf), FAB_ACCESS_LOCAL, &mr), 0);
    /* Exchange the region through the bootstrap port. */
    struct fab_mr_desc d;
    fab_mr_get_desc(mdst, &d);
    uint8_t enc[FAB_MR_DESC_SIZE];
    fab_mr_desc_encode(&d, enc);
    ck_assert_int_eq(fab_pool_publish(b, 42, enc, sizeof(enc)), 0);
    uint8_t got[64];
    size_t len = 0;
    ck_assert_msg(
        fab_pool_fetch(a, 2, 42, got, sizeof(got), &len, 2000, &err) == 0, "%s",
        err.msg);
    struct fab_mr_desc rd;
    ck_assert_int_eq(fab_mr_desc_decode(got, len, &rd), 0);

    struct tf_progress pb;
    tf_progress_start(&pb, b);
    for (int i = 0; i < 4096; i++)
        src[i] = (uint8_t)(i * 7);
    atomic_int flag = 0;
    struct fab_op op = {.done = op_done, .ctx = &flag};
    ck_assert_int_eq(fab_write(ab, msrc, 0, 4096, &rd, 0, 0, &op), 0);
    ck_assert(pump_until(a, &flag, 5000));
    ck_assert_int_eq(flag, 1);
    ck_assert_uint_eq(op.node_id, 2);
    /* Remote completion data says the bytes are there. */
    atomic_store(&flag, 0);
    ck_assert_int_eq(
        fab_writedata(ab, msrc, 8, 8, &rd, 100, 0xabcdef, FAB_WRITE_FENCE, &op),
        0);
    ck_assert(pump_until(a, &flag, 5000));
    ck_assert(TH_WAIT_UNTIL(atomic_load(&cb.data_calls) != 0, 5000));
    ck_assert_int_eq(atomic_load(&cb.data_calls), 1);
    ck_assert_uint_eq(atomic_load(&cb.last_data), 0xabcdef);
    ck_assert_int_eq(memcmp(dst, src, 100), 0);
    ck_assert_int_eq(memcmp(dst + 100, src + 8, 8), 0);
    /* Injected: the bytes are copied before the call returns (the source
     * may change at once), no completion, not outstanding. */
    size_t inj = fab_pool_inject_size(a);
    ck_assert_uint_ge(inj, 8);
    ck_assert_int_eq(
        fab_writedata(ab, msrc, 0, 8, &rd, 200, 1, FAB_WRITE_INJECT, &op),
        -EINVAL);
    ck_assert_int_eq(fab_writedata(ab, msrc, 0, 8, &rd, 200, 1,
                                   FAB_WRITE_INJECT | FAB_WRITE_DELIVERED,
                                   NULL),
                     -EINVAL);
    ck_assert_int_eq(
        fab_write(ab, msrc, 0, inj + 1, &rd, 0, FAB_WRITE_INJECT, NULL),
        -EMSGSIZE);
    ck_assert_int_eq(fab_pool_inject_size(NULL), 0);
    size_t before = fab_conn_outstanding(ab);
    memcpy(src + 16, "INJECTED", 8);
    ck_assert_int_eq(fab_writedata(ab, msrc, 16, 8, &rd, 200, 0x1234,
                                   FAB_WRITE_FENCE | FAB_WRITE_INJECT, NULL),
                     0);
    memcpy(src + 16, "CHANGED!", 8);
    ck_assert_uint_eq(fab_conn_outstanding(ab), before);
    ck_assert(TH_WAIT_UNTIL(
        (fab_pool_progress(a), atomic_load(&cb.data_calls) == 2), 5000));
    ck_assert_uint_eq(atomic_load(&cb.last_data), 0x1234);
    ck_assert_int_eq(memcmp(dst + 200, "INJECTED", 8), 0);
    /* Out of range: refused before anything is posted. */
    ck_assert_int_eq(fab_write(ab, msrc, 0, 16, &rd, 4090, 0, NULL), -ERANGE);
    ck_assert_int_eq(fab_write(ab, msrc, 4090, 16, &rd, 0, 0, NULL), -ERANGE);
    tf_progress_stop(&pb);

    /* Two-sided: b posts a receive, a sends. */
    atomic_int rflag = 0;
    struct fab_op rop = {.done = op_done, .ctx = &rflag};
    ck_assert_int_eq(fab_recv(ba, mr, 0, sizeof(rbuf), &rop), 0);
    tf_progress_start(&pb, b);
    atomic_store(&flag, 0);
    ck_assert_int_eq(fab_send(ab, msrc, 0, 64, &op), 0);
    ck_assert(pump_until(a, &flag, 5000));
    ck_assert(TH_WAIT_UNTIL(atomic_load(&rflag) != 0, 5000));
    ck_assert_int_eq(rflag, 1);
    ck_assert_uint_eq(rop.len, 64);
    ck_assert_uint_eq(rop.node_id, 1);
    ck_assert_int_eq(memcmp(rbuf, src, 64), 0);
    tf_progress_stop(&pb);

    struct fab_pool_stats st;
    fab_pool_get_stats(a, &st);
    ck_assert_uint_eq(st.bootstraps_out, 1);
    ck_assert_uint_eq(st.connections, 1);
    fab_release(ua, ab);
    fab_release(ub, ba);
    fab_user_destroy(ua);
    fab_user_destroy(ub);
    fab_mr_destroy(msrc);
    fab_mr_destroy(mdst);
    fab_mr_destroy(mr);
    ck_assert_int_eq(atomic_load(&ca.failures), 0);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

START_TEST(fingerprint_mismatch_is_eproto_naming_field)
{
    struct fab_pool *a = tf_pool(1, 0, NULL);
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = 2;
    o.fingerprint = 0x999;
    o.log_level = -1;
    struct fab_pool *b = NULL;
    ck_assert_int_eq(fab_pool_create(&o, &b, NULL), 0);
    struct fab_user *ua;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    struct fab_conn *c = NULL;
    struct fab_error err;
    ck_assert_int_eq(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 3000, &c, &err),
        -EPROTO);
    ck_assert_int_eq(err.code, -EPROTO);
    ck_assert_msg(strstr(err.msg, "fingerprint") != NULL, "%s", err.msg);
    /* Wrong node id at that address. */
    ck_assert_int_eq(
        fab_borrow(ua, 3, "127.0.0.1", fab_pool_port(b), 3000, &c, &err),
        -EPROTO);
    ck_assert_ptr_null(c);
    fab_user_destroy(ua);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

START_TEST(closed_port_is_refused_quickly)
{
    uint16_t port;
    ck_assert_int_eq(th_free_tcp_ports(&port, 1), 0);
    struct fab_pool *a = tf_pool(1, 0, NULL);
    struct fab_user *ua;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    struct fab_conn *c = NULL;
    struct fab_error err;
    int64_t t0 = th_now_ms();
    ck_assert_int_eq(fab_borrow(ua, 2, "127.0.0.1", port, 3000, &c, &err),
                     -ECONNREFUSED);
    ck_assert_int_lt(th_now_ms() - t0, 1000);
    ck_assert_ptr_nonnull(strstr(err.msg, "127.0.0.1"));
    /* A second try behaves the same (the failed entry does not stick). */
    ck_assert_int_eq(fab_borrow(ua, 2, "127.0.0.1", port, 3000, &c, &err),
                     -ECONNREFUSED);
    fab_user_destroy(ua);
    fab_pool_destroy(a);
}
END_TEST

/* Large one-sided writes (RDMC blocks): 8 MiB in 1 MiB writes, all in
 * flight, each completion counted; FAB_WRITE_DELIVERED completions mean
 * the bytes are in the peer's memory, so it is checked right away. */
static void count_done(struct fab_op *op, int status)
{
    atomic_int *n = op->ctx;
    atomic_fetch_add(n, status == 0 ? 1 : 1000);
}

static bool count_reaches(atomic_int *n, int want, struct fab_pool *a)
{
    TH_WAIT_UNTIL((fab_pool_progress_wait(a, 50, 10), atomic_load(n) >= want),
                  20000);
    return atomic_load(n) == want;
}

START_TEST(large_writes_land_whole)
{
    enum { SIZE = 8 << 20, CHUNK = 1 << 20 };
    struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
    struct fab_user *ua;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    struct fab_conn *c;
    ck_assert_int_eq(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 5000, &c, NULL), 0);
    uint8_t *src = malloc(SIZE), *dst = calloc(1, SIZE);
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(dst);
    for (size_t i = 0; i < SIZE; i++)
        src[i] = (uint8_t)(i * 2654435761u >> 13);
    struct fab_mr *ms, *md;
    ck_assert_int_eq(fab_mr_register(a, src, SIZE, FAB_ACCESS_LOCAL, &ms), 0);
    ck_assert_int_eq(
        fab_mr_register(b, dst, SIZE, FAB_ACCESS_REMOTE_WRITE, &md), 0);
    struct fab_mr_desc d;
    fab_mr_get_desc(md, &d);
    struct tf_progress pb;
    tf_progress_start(&pb, b);
    atomic_int done = 0;
    struct fab_op ops[SIZE / CHUNK];
    for (int i = 0; i < SIZE / CHUNK; i++) {
        ops[i] = (struct fab_op){.done = count_done, .ctx = &done};
        ck_assert_int_eq(fab_write(c, ms, (size_t)i * CHUNK, CHUNK, &d,
                                   (uint64_t)i * CHUNK, FAB_WRITE_DELIVERED,
                                   &ops[i]),
                         0);
    }
    ck_assert(count_reaches(&done, SIZE / CHUNK, a));
    tf_progress_stop(&pb);
    ck_assert_int_eq(memcmp(src, dst, SIZE), 0);
    fab_mr_destroy(ms);
    fab_mr_destroy(md);
    free(src);
    free(dst);
    fab_user_destroy(ua);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

/* ---- hostile bootstrap: frames made by hand from docs/fab.md --------- */

static size_t put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return (size_t)n;
}

/* A HELLO frame (with length prefix); returns its size. */
static size_t make_hello(uint8_t *buf, uint32_t magic, uint16_t version,
                         uint32_t src, uint32_t dst, uint64_t fp)
{
    size_t n = 4;
    n += put_le(buf + n, magic, 4);
    n += put_le(buf + n, version, 2);
    n += put_le(buf + n, 1, 1); /* HELLO */
    n += put_le(buf + n, 1, 1); /* little-endian */
    n += put_le(buf + n, sizeof(void *), 1);
    n += put_le(buf + n, 0, 1); /* status */
    n += put_le(buf + n, 0, 1); /* field */
    n += put_le(buf + n, src, 4);
    n += put_le(buf + n, dst, 4);
    n += put_le(buf + n, 1, 2); /* port */
    n += put_le(buf + n, fp, 8);
    n += put_le(buf + n, 77, 8); /* token */
    n += put_le(buf + n, 0, 4);  /* addr: empty */
    n += put_le(buf + n, 0, 4);  /* blob: empty */
    put_le(buf, n - 4, 4);
    return n;
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Sends bytes, then reads what comes back until the server closes;
 * returns the number of bytes read (or -1 on timeout). */
static ssize_t exchange(uint16_t port, const void *buf, size_t len,
                        bool close_write, uint8_t *reply, size_t cap)
{
    int fd = raw_connect(port);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
    if (close_write)
        shutdown(fd, SHUT_WR);
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, reply + got, cap - got, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            break; /* closed (with unread bytes: a reset) */
        if (n < 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
        if (got == cap)
            break;
    }
    close(fd);
    return (ssize_t)got;
}

static void assert_still_serves(struct fab_pool *a)
{
    struct fab_pool *b = tf_pool(2, 0, NULL);
    struct fab_user *ub;
    ck_assert_int_eq(fab_user_create(b, NULL, NULL, &ub), 0);
    struct fab_conn *c;
    struct fab_error err;
    ck_assert_msg(
        fab_borrow(ub, 1, "127.0.0.1", fab_pool_port(a), 5000, &c, &err) == 0,
        "%s", err.msg);
    fab_user_destroy(ub);
    fab_pool_destroy(b);
}

START_TEST(hostile_bootstrap_frames)
{
    struct fab_pool *a = tf_pool(1, 0, NULL);
    ck_assert_ptr_nonnull(a);
    uint16_t port = fab_pool_port(a);
    uint8_t frame[256], reply[512];
    ssize_t n;

    /* Garbage with a plausible length prefix: its first bytes are no magic,
     * so the answer is a MISMATCH naming the magic (field 1). */
    uint8_t garbage[64];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (uint8_t)(i * 131 + 7);
    put_le(garbage, 60, 4);
    n = exchange(port, garbage, sizeof(garbage), false, reply, sizeof(reply));
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[13], 1);
    ck_assert_uint_eq(reply[14], 1);
    /* Shorter than magic + version: closed without a reply. */
    put_le(garbage, 3, 4);
    n = exchange(port, garbage, 7, false, reply, sizeof(reply));
    ck_assert_int_eq(n, 0);
    /* An absurd length prefix. */
    put_le(garbage, 0x7fffffff, 4);
    n = exchange(port, garbage, 8, false, reply, sizeof(reply));
    ck_assert_int_eq(n, 0);
    /* Wrong magic: a reply that says MISMATCH, field magic (1). */
    size_t len = make_hello(frame, 0xdeadbeef, 1, 9, 1, 0x5eed);
    n = exchange(port, frame, len, false, reply, sizeof(reply));
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[13], 1);
    ck_assert_uint_eq(reply[14], 1);
    /* Wrong version: field 2. */
    len = make_hello(frame, 0x44464142, 99, 9, 1, 0x5eed);
    n = exchange(port, frame, len, false, reply, sizeof(reply));
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[13], 1);
    ck_assert_uint_eq(reply[14], 2);
    /* Wrong fingerprint: field 6. */
    len = make_hello(frame, 0x44464142, 1, 9, 1, 0x1234);
    n = exchange(port, frame, len, false, reply, sizeof(reply));
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[14], 6);
    /* Truncated frames: every prefix of a valid one, then EOF. */
    len = make_hello(frame, 0x44464142, 1, 9, 1, 0x5eed);
    for (size_t cut = 1; cut < len; cut += 5) {
        n = exchange(port, frame, cut, true, reply, sizeof(reply));
        ck_assert_int_eq(n, 0);
    }
    /* A valid length but a body with an inner length past the end. */
    uint8_t bad[256];
    memcpy(bad, frame, len);
    put_le(bad + len - 8, 1000, 4); /* addr length 1000 */
    n = exchange(port, bad, len, false, reply, sizeof(reply));
    ck_assert_int_eq(n, 0);
    /* Trailing bytes after a valid body. */
    memcpy(bad, frame, len);
    bad[len] = 0;
    put_le(bad, len - 4 + 1, 4);
    n = exchange(port, bad, len + 1, false, reply, sizeof(reply));
    ck_assert_int_eq(n, 0);

    struct fab_pool_stats st;
    fab_pool_get_stats(a, &st);
    ck_assert_uint_ge(st.bootstraps_refused, 7);
    ck_assert_uint_eq(st.connections, 0);
    assert_still_serves(a);
    fab_pool_destroy(a);
}
END_TEST

START_TEST(silent_client_does_not_block_listener_forever)
{
    struct fab_pool *a = tf_pool(1, 0, NULL);
    int fd = raw_connect(fab_pool_port(a));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(send(fd, "\x10\x00", 2, 0), 2); /* then silence */
    int64_t t0 = th_now_ms();
    assert_still_serves(a);
    ck_assert_int_lt(th_now_ms() - t0, 4500);
    close(fd);
    fab_pool_destroy(a);
}
END_TEST

/* ---- simultaneous connects -------------------------------------------- */

struct sim_arg {
    struct fab_user *user;
    uint32_t peer;
    uint16_t port;
    pthread_barrier_t *barrier;
    int rc;
    struct fab_conn *conn;
};

static void *sim_borrow(void *arg)
{
    struct sim_arg *s = arg;
    pthread_barrier_wait(s->barrier);
    struct fab_error err;
    s->rc = fab_borrow(s->user, s->peer, "127.0.0.1", s->port, 5000, &s->conn,
                       &err);
    if (s->rc)
        fprintf(stderr, "sim borrow: %s\n", err.msg);
    return NULL;
}

START_TEST(simultaneous_connects_make_one_connection)
{
    for (int round = 0; round < 10; round++) {
        struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
        struct fab_user *ua, *ub;
        ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
        ck_assert_int_eq(fab_user_create(b, NULL, NULL, &ub), 0);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 2);
        struct sim_arg sa = {ua, 2, fab_pool_port(b), &bar, 0, NULL};
        struct sim_arg sb = {ub, 1, fab_pool_port(a), &bar, 0, NULL};
        pthread_t ta, tb;
        pthread_create(&ta, NULL, sim_borrow, &sa);
        pthread_create(&tb, NULL, sim_borrow, &sb);
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        pthread_barrier_destroy(&bar);
        ck_assert_int_eq(sa.rc, 0);
        ck_assert_int_eq(sb.rc, 0);
        struct fab_pool_stats x, y;
        fab_pool_get_stats(a, &x);
        fab_pool_get_stats(b, &y);
        ck_assert_uint_eq(x.connections, 1);
        ck_assert_uint_eq(y.connections, 1);
        ck_assert_uint_eq(x.live, 1);
        ck_assert_uint_eq(x.bootstraps_in + y.bootstraps_in, 1);
        fab_user_destroy(ua);
        fab_user_destroy(ub);
        fab_pool_destroy(a);
        fab_pool_destroy(b);
    }
}
END_TEST

/* ---- many users, many rounds, one bootstrap --------------------------- */

START_TEST(users_come_and_go_without_rebootstrap)
{
    enum { PEERS = 2, USERS = 6, ROUNDS = 100 };
    struct fab_pool *me = tf_pool(1, 0, NULL);
    struct fab_pool *peer[PEERS];
    for (int p = 0; p < PEERS; p++) {
        peer[p] = tf_pool(2 + (uint32_t)p, 0, NULL);
        ck_assert_ptr_nonnull(peer[p]);
    }
    for (int round = 0; round < ROUNDS; round++) {
        /* 3 "tables" and 3 "RDMC groups" borrow both peers at once. */
        struct fab_user *u[USERS];
        struct fab_conn *c[USERS][PEERS];
        for (int i = 0; i < USERS; i++) {
            ck_assert_int_eq(fab_user_create(me, NULL, NULL, &u[i]), 0);
            for (int p = 0; p < PEERS; p++) {
                struct fab_error err;
                ck_assert_msg(fab_borrow(u[i], 2 + (uint32_t)p, "127.0.0.1",
                                         fab_pool_port(peer[p]), 5000, &c[i][p],
                                         &err) == 0,
                              "%s", err.msg);
            }
        }
        for (int i = 1; i < USERS; i++)
            for (int p = 0; p < PEERS; p++)
                ck_assert_ptr_eq(c[i][p], c[0][p]);
        /* Half release explicitly, half by destroying the user. */
        for (int i = 0; i < USERS; i++) {
            if (i % 2)
                for (int p = 0; p < PEERS; p++)
                    fab_release(u[i], c[i][p]);
            fab_user_destroy(u[i]);
        }
    }
    struct fab_pool_stats st;
    fab_pool_get_stats(me, &st);
    ck_assert_uint_eq(st.bootstraps_out, PEERS);
    ck_assert_uint_eq(st.connections, PEERS);
    ck_assert_uint_eq(st.live, PEERS);
    ck_assert_uint_eq(st.failures, 0);
    for (int p = 0; p < PEERS; p++) {
        fab_pool_get_stats(peer[p], &st);
        ck_assert_uint_eq(st.bootstraps_in, 1);
        fab_pool_destroy(peer[p]);
    }
    fab_pool_destroy(me);
}
END_TEST

/* ---- failure fan-out -------------------------------------------------- */

static bool failures_reach(void *arg)
{
    struct counters *c = arg;
    return atomic_load(&c->failures) >= 1;
}

START_TEST(fail_peer_reported_once_to_each_user)
{
    struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
    struct counters c1 = {0}, c2 = {0}, cpeer = {0};
    struct fab_user *u1, *u2, *ub;
    ck_assert_int_eq(fab_user_create(a, &cbs, &c1, &u1), 0);
    ck_assert_int_eq(fab_user_create(a, &cbs, &c2, &u2), 0);
    ck_assert_int_eq(fab_user_create(b, &cbs, &cpeer, &ub), 0);
    struct fab_conn *x, *y, *z;
    struct tf_progress pb;
    tf_progress_start(&pb, b); /* b must progress to notice the shutdown */
    ck_assert_int_eq(
        fab_borrow(u1, 2, "127.0.0.1", fab_pool_port(b), 5000, &x, NULL), 0);
    ck_assert_int_eq(fab_borrow(u2, 2, NULL, 0, 5000, &y, NULL), 0);
    ck_assert_int_eq(fab_borrow(u2, 2, NULL, 0, 5000, &y, NULL), 0);
    ck_assert_int_eq(fab_borrow(ub, 1, NULL, 0, 5000, &z, NULL), 0);
    ck_assert_int_eq(fab_pool_fail_peer(a, 2, -EHOSTDOWN), 0);
    ck_assert(th_wait_until(failures_reach, &c1, 5000));
    ck_assert(th_wait_until(failures_reach, &c2, 5000));
    ck_assert_int_eq(atomic_load(&c1.last_reason), -EHOSTDOWN);
    /* The peer sees its side break too. */
    ck_assert(th_wait_until(failures_reach, &cpeer, 5000));
    ck_assert_int_eq(atomic_load(&cpeer.last_reason), -ECONNRESET);
    tf_progress_stop(&pb);
    static uint8_t buf[64];
    struct fab_mr *mr;
    ck_assert_int_eq(
        fab_mr_register(a, buf, sizeof(buf), FAB_ACCESS_LOCAL, &mr), 0);
    struct fab_mr_desc d = {1, 0, 64};
    int64_t t0 = th_now_ms();
    ck_assert_int_eq(fab_write(x, mr, 0, 8, &d, 0, 0, NULL), -EHOSTDOWN);
    ck_assert_int_eq(fab_send(y, mr, 0, 8, NULL), -EHOSTDOWN);
    ck_assert_int_lt(th_now_ms() - t0, 100);
    ck_assert_int_eq(
        fab_borrow(u1, 2, "127.0.0.1", fab_pool_port(b), 1000, &x, NULL),
        -EHOSTDOWN);
    usleep(300 * 1000); /* give a duplicate report time to show up */
    ck_assert_int_eq(atomic_load(&c1.failures), 1);
    ck_assert_int_eq(atomic_load(&c2.failures), 1);
    ck_assert_int_eq(fab_pool_fail_peer(a, 7, -EHOSTDOWN), -ENOENT);
    fab_mr_destroy(mr);
    fab_user_destroy(u1);
    fab_user_destroy(u2);
    fab_user_destroy(ub);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

/* A peer restarts under the same node id while we keep an idle pooled
 * connection to its old incarnation: the pool notices the old one is gone
 * (nobody else progresses it) and the new incarnation gets in. */
START_TEST(restarted_peer_reconnects_over_idle_pooled_connection)
{
    struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
    struct fab_user *ua;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    struct fab_conn *c;
    ck_assert_int_eq(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 5000, &c, NULL), 0);
    fab_release(ua, c); /* pooled, idle */
    fab_pool_destroy(b);
    struct fab_pool *b2 = tf_pool(2, 0, NULL);
    struct fab_user *ub;
    ck_assert_int_eq(fab_user_create(b2, NULL, NULL, &ub), 0);
    struct fab_error err;
    ck_assert_msg(
        fab_borrow(ub, 1, "127.0.0.1", fab_pool_port(a), 5000, &c, &err) == 0,
        "%s", err.msg);
    ck_assert_int_eq(fab_borrow(ua, 2, NULL, 0, 5000, &c, &err), 0);
    ck_assert_int_eq(fab_conn_status(c), 0);
    struct fab_pool_stats st;
    fab_pool_get_stats(a, &st);
    ck_assert_uint_eq(st.connections, 2);
    ck_assert_uint_eq(st.live, 1);
    fab_user_destroy(ua);
    fab_user_destroy(ub);
    fab_pool_destroy(a);
    fab_pool_destroy(b2);
}
END_TEST

/* ---- no leaks of fds or threads --------------------------------------- */

static void one_lifecycle(void)
{
    struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
    struct fab_user *ua;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    struct fab_conn *c;
    ck_assert_int_eq(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 5000, &c, NULL), 0);
    static uint8_t buf[64];
    struct fab_mr *mr;
    ck_assert_int_eq(
        fab_mr_register(a, buf, sizeof(buf), FAB_ACCESS_LOCAL, &mr), 0);
    fab_pool_progress_wait(a, 10, 1);
    fab_mr_destroy(mr);
    fab_user_destroy(ua);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}

struct leak_baseline {
    int fds, threads;
};

/* libfabric's own helper threads may still be exiting: wait for it. */
static bool back_to_baseline(void *arg)
{
    const struct leak_baseline *b = arg;
    return th_count_fds() <= b->fds && th_count_threads() <= b->threads;
}

START_TEST(no_fd_or_thread_leak_after_destroy)
{
    one_lifecycle(); /* warm-up: libfabric's process-wide state */
    struct leak_baseline base = {th_count_fds(), th_count_threads()};
    for (int i = 0; i < 5; i++)
        one_lifecycle();
    ck_assert_msg(th_wait_until(back_to_baseline, &base, 3000),
                  "fds %d -> %d, threads %d -> %d", base.fds, th_count_fds(),
                  base.threads, th_count_threads());
}
END_TEST

/* ---- sleeping: idle costs ~nothing, wake works ------------------------ */

static void *wake_later(void *arg)
{
    usleep(100 * 1000);
    fab_pool_wake(arg);
    return NULL;
}

START_TEST(progress_wait_sleeps_and_wakes)
{
    struct fab_pool *a = tf_pool(1, 0, NULL), *b = tf_pool(2, 0, NULL);
    struct fab_user *ua;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    struct fab_conn *c;
    ck_assert_int_eq(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 5000, &c, NULL), 0);
    /* Idle: 500 ms of waiting cost well under 5% of a core. */
    struct rusage r0, r1;
    getrusage(RUSAGE_THREAD, &r0);
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < 500)
        fab_pool_progress_wait(a, 100, 100);
    getrusage(RUSAGE_THREAD, &r1);
    long us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) * 1000000L +
              (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) +
              (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1000000L +
              (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec);
    ck_assert_msg(us < 25000, "idle wait used %ld us of CPU in 500 ms", us);
    /* fab_pool_wake ends a long wait early. */
    pthread_t t;
    pthread_create(&t, NULL, wake_later, a);
    t0 = th_now_ms();
    fab_pool_progress_wait(a, 0, 5000);
    ck_assert_int_lt(th_now_ms() - t0, 2500);
    pthread_join(t, NULL);
    fab_user_destroy(ua);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

Suite *fab_pool_suite(void)
{
    Suite *s = suite_create("fab-pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, borrow_write_writedata_send_recv);
    tcase_add_test(tc, large_writes_land_whole);
    tcase_add_test(tc, fingerprint_mismatch_is_eproto_naming_field);
    tcase_add_test(tc, closed_port_is_refused_quickly);
    tcase_add_test(tc, hostile_bootstrap_frames);
    tcase_add_test(tc, silent_client_does_not_block_listener_forever);
    tcase_add_test(tc, simultaneous_connects_make_one_connection);
    tcase_add_test(tc, users_come_and_go_without_rebootstrap);
    tcase_add_test(tc, fail_peer_reported_once_to_each_user);
    tcase_add_test(tc, restarted_peer_reconnects_over_idle_pooled_connection);
    tcase_add_test(tc, no_fd_or_thread_leak_after_destroy);
    tcase_add_test(tc, progress_wait_sleeps_and_wakes);
    suite_add_tcase(s, tc);
    return s;
}
