/* A hostile network and a careless operator (issue 14): spoofed and
 * flooding HELLOs, the authenticated bootstrap (right, wrong and missing
 * keys, peers that send garbage or nothing), key files. */
#include "test-fab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define FP 0x5eedull

static const uint8_t key1[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t key2[32] = "fedcba9876543210fedcba9876543210";

static void quiet(void *ctx, int level, const char *module, const char *msg)
{
    atomic_int *lines = ctx;
    if (lines)
        atomic_fetch_add(lines, 1);
    if (getenv("FAB_TEST_VERBOSE"))
        fprintf(stderr, "[%d] %s: %d: %s\n", (int)getpid(), module, level, msg);
}

/* A tcp pool on 127.0.0.1; key NULL: none.  lines (may be NULL) counts
 * log lines at LOG_WARNING or worse. */
static struct fab_pool *pool_key(uint32_t node, const uint8_t *key, size_t len,
                                 atomic_int *lines)
{
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = node;
    o.fingerprint = FP;
    o.connect_timeout_ms = 5000;
    o.log = quiet;
    o.log_ctx = lines;
    o.log_level = getenv("FAB_TEST_VERBOSE") ? LOG_DEBUG : LOG_WARNING;
    o.auth_key = key;
    o.auth_key_len = key ? len : 0;
    struct fab_pool *p = NULL;
    struct fab_error err;
    if (fab_pool_create(&o, &p, &err))
        fprintf(stderr, "pool %u: %s\n", node, err.msg);
    return p;
}

static size_t put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return (size_t)n;
}

/* A frame as docs/fab.md spells it (length prefix included). */
static size_t make_frame(uint8_t *buf, uint8_t type, uint32_t src, uint32_t dst,
                         uint64_t token, const uint8_t *blob, uint32_t blob_len)
{
    size_t n = 4;
    n += put_le(buf + n, 0x44464142, 4);
    n += put_le(buf + n, 1, 2);
    n += put_le(buf + n, type, 1);
    n += put_le(buf + n, 1, 1); /* little-endian */
    n += put_le(buf + n, sizeof(void *), 1);
    n += put_le(buf + n, 0, 1);
    n += put_le(buf + n, 0, 1);
    n += put_le(buf + n, src, 4);
    n += put_le(buf + n, dst, 4);
    n += put_le(buf + n, 9999, 2);
    n += put_le(buf + n, FP, 8);
    n += put_le(buf + n, token, 8);
    n += put_le(buf + n, 0, 4); /* addr */
    n += put_le(buf + n, blob_len, 4);
    if (blob_len)
        memcpy(buf + n, blob, blob_len);
    n += blob_len;
    put_le(buf, n - 4, 4);
    return n;
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

/* Sends a frame and reads the answer until the server closes; returns the
 * bytes read (reply[13] = status, reply[14] = field). */
static ssize_t send_frame(uint16_t port, const uint8_t *frame, size_t len,
                          uint8_t *reply, size_t cap)
{
    int fd = raw_connect(port);
    if (fd < 0)
        return -1;
    if (send(fd, frame, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, reply + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap)
            break;
    }
    close(fd);
    return (ssize_t)got;
}

static int64_t borrow_ms(struct fab_pool *from, uint32_t node,
                         struct fab_pool *to, int timeout_ms, int *rc,
                         struct fab_error *err)
{
    struct fab_user *u;
    ck_assert_int_eq(fab_user_create(from, NULL, NULL, &u), 0);
    struct fab_conn *c = NULL;
    int64_t t0 = th_now_ms();
    *rc = fab_borrow(u, node, "127.0.0.1", fab_pool_port(to), timeout_ms, &c,
                     err);
    int64_t dt = th_now_ms() - t0;
    fab_user_destroy(u);
    return dt;
}

/* ---- spoofed HELLOs ---------------------------------------------------- */

/* One HELLO claiming node 7 (never followed by a connection request) must
 * not keep the real node 7 out, whichever side then dials. */
START_TEST(spoofed_hello_does_not_keep_the_real_node_out)
{
    struct fab_pool *a = pool_key(1, NULL, 0, NULL);
    struct fab_pool *b = pool_key(7, NULL, 0, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    uint8_t frame[256], reply[512];
    size_t len = make_frame(frame, 1, 7, 1, 1234, NULL, 0);
    ck_assert_int_gt(
        send_frame(fab_pool_port(a), frame, len, reply, sizeof(reply)), 14);
    ck_assert_uint_eq(reply[13], 0); /* answered OK, as any HELLO */
    int rc;
    struct fab_error err;
    /* The real node 7 dials in. */
    int64_t dt = borrow_ms(b, 1, a, 3000, &rc, &err);
    ck_assert_msg(rc == 0, "real node 7 kept out: %s", err.msg);
    fprintf(stderr,
            "borrow by the real node 7 after a spoofed HELLO: %lld "
            "ms\n",
            (long long)dt);
    ck_assert_int_lt(dt, 2000);
    fab_pool_destroy(b);

    /* Again with node 8, and now the victim dials the real node itself
     * (a spoofer repeating its HELLO meanwhile). */
    b = pool_key(8, NULL, 0, NULL);
    ck_assert_ptr_nonnull(b);
    len = make_frame(frame, 1, 8, 1, 999, NULL, 0);
    ck_assert_int_gt(
        send_frame(fab_pool_port(a), frame, len, reply, sizeof(reply)), 14);
    ck_assert_uint_eq(reply[13], 0);
    dt = borrow_ms(a, 8, b, 3000, &rc, &err);
    ck_assert_msg(rc == 0, "borrow of node 8 blocked: %s", err.msg);
    fprintf(stderr, "borrow of node 8 after a spoofed HELLO: %lld ms\n",
            (long long)dt);
    ck_assert_int_lt(dt, 2000);
    struct fab_pool_stats st;
    fab_pool_get_stats(a, &st);
    ck_assert_uint_eq(st.bootstraps_in + st.bootstraps_out, 2);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* HELLOs with distinct node ids, as fast as one connection at a time
 * goes: the victim's memory stays bounded and a real peer still gets
 * in. */
START_TEST(hello_flood_keeps_memory_bounded)
{
    struct fab_pool *a = pool_key(1, NULL, 0, NULL);
    ck_assert_ptr_nonnull(a);
    uint16_t port = fab_pool_port(a);
    uint8_t frame[256], reply[512];
    const uint32_t n = 6000;
    long rss0 = rss_kb();
    int64_t t0 = th_now_ms();
    uint32_t ok = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len = make_frame(frame, 1, 1000 + i, 1, i, NULL, 0);
        if (send_frame(port, frame, len, reply, sizeof(reply)) > 14 &&
            reply[13] == 0)
            ok++;
    }
    long rss1 = rss_kb();
    fprintf(stderr,
            "HELLO flood: %u HELLOs (%u answered) in %lld ms, RSS %ld -> "
            "%ld KiB\n",
            n, ok, (long long)(th_now_ms() - t0), rss0, rss1);
    ck_assert_uint_ge(ok, n / 2);
    /* Unbounded, each cost a connection entry of ~5 KiB (30 MiB here).
     * AddressSanitizer keeps freed blocks in quarantine (up to 256 MiB), so
     * there RSS measures the quarantine, not us. */
#ifndef __SANITIZE_ADDRESS__
    ck_assert_int_lt(rss1 - rss0, 8 * 1024);
#endif
    struct fab_pool *b = pool_key(2, NULL, 0, NULL);
    int rc;
    struct fab_error err;
    borrow_ms(b, 1, a, 3000, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

/* ---- authentication ---------------------------------------------------- */

START_TEST(same_key_connects_and_fetches)
{
    struct fab_pool *a = pool_key(1, key1, 32, NULL);
    struct fab_pool *b = pool_key(2, key1, 32, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    struct fab_user *ua, *ub;
    ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
    ck_assert_int_eq(fab_user_create(b, NULL, NULL, &ub), 0);
    struct fab_conn *c;
    struct fab_error err;
    ck_assert_msg(
        fab_borrow(ua, 2, "127.0.0.1", fab_pool_port(b), 5000, &c, &err) == 0,
        "%s", err.msg);
    ck_assert_int_eq(fab_borrow(ub, 1, NULL, 0, 5000, &c, &err), 0);
    ck_assert_int_eq(fab_pool_publish(b, 42, "hello", 5), 0);
    char buf[16];
    size_t len = 0;
    ck_assert_msg(
        fab_pool_fetch(a, 2, 42, buf, sizeof(buf), &len, 2000, &err) == 0, "%s",
        err.msg);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(buf, "hello", 5);
    struct fab_pool_stats st;
    fab_pool_get_stats(b, &st);
    ck_assert_uint_eq(st.bootstraps_in, 1);
    ck_assert_uint_eq(st.bootstraps_refused, 0);
    fab_user_destroy(ua);
    fab_user_destroy(ub);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}
END_TEST

struct sim {
    struct fab_user *user;
    uint32_t peer;
    uint16_t port;
    pthread_barrier_t *barrier;
    int rc;
};

static void *sim_borrow(void *arg)
{
    struct sim *s = arg;
    struct fab_conn *c;
    struct fab_error err;
    pthread_barrier_wait(s->barrier);
    s->rc = fab_borrow(s->user, s->peer, "127.0.0.1", s->port, 5000, &c, &err);
    if (s->rc)
        fprintf(stderr, "keyed simultaneous borrow: %s\n", err.msg);
    return NULL;
}

/* Both sides borrow each other at once, with a key: one connection. */
START_TEST(keyed_simultaneous_connects_make_one_connection)
{
    for (int round = 0; round < 10; round++) {
        struct fab_pool *a = pool_key(1, key1, 32, NULL);
        struct fab_pool *b = pool_key(2, key1, 32, NULL);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        struct fab_user *ua, *ub;
        ck_assert_int_eq(fab_user_create(a, NULL, NULL, &ua), 0);
        ck_assert_int_eq(fab_user_create(b, NULL, NULL, &ub), 0);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, 2);
        struct sim sa = {ua, 2, fab_pool_port(b), &bar, 0};
        struct sim sb = {ub, 1, fab_pool_port(a), &bar, 0};
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
        ck_assert_uint_eq(x.bootstraps_in + y.bootstraps_in, 1);
        fab_user_destroy(ua);
        fab_user_destroy(ub);
        fab_pool_destroy(a);
        fab_pool_destroy(b);
    }
}
END_TEST

/* Both directions refused with -EACCES, quickly, with a log line on the
 * dialer, and nothing kept by the listener. */
static void refused_both_ways(const uint8_t *ka, const uint8_t *kb)
{
    atomic_int la = 0, lb = 0;
    struct fab_pool *a = pool_key(1, ka, 32, &la);
    struct fab_pool *b = pool_key(2, kb, 32, &lb);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    int rc;
    struct fab_error err;
    int64_t dt = borrow_ms(a, 2, b, 3000, &rc, &err);
    ck_assert_int_eq(rc, -EACCES);
    ck_assert_int_eq(err.code, -EACCES);
    ck_assert_ptr_nonnull(strstr(err.msg, "node 2"));
    ck_assert_int_lt(dt, 1000);
    int64_t dt2 = borrow_ms(b, 1, a, 3000, &rc, &err);
    ck_assert_int_eq(rc, -EACCES);
    ck_assert_int_lt(dt2, 1000);
    fprintf(stderr, "%s: -EACCES in %lld ms and %lld ms\n",
            ka ? "another key" : "no key against a key", (long long)dt,
            (long long)dt2);
    ck_assert_int_ge(atomic_load(&la), 1);
    ck_assert_int_ge(atomic_load(&lb), 1);
    struct fab_pool_stats sa, sb;
    fab_pool_get_stats(a, &sa);
    fab_pool_get_stats(b, &sb);
    ck_assert_uint_eq(sa.connections + sb.connections, 0);
    ck_assert_uint_eq(sa.bootstraps_in + sb.bootstraps_in, 0);
    fab_pool_destroy(a);
    fab_pool_destroy(b);
}

START_TEST(wrong_key_is_eacces_both_ways)
{
    refused_both_ways(key1, key2);
}
END_TEST

START_TEST(no_key_against_key_is_eacces_both_ways)
{
    refused_both_ways(NULL, key1);
}
END_TEST

/* A peer without the key: plain HELLOs (even claiming a real node id),
 * garbage, a challenge followed by a forged answer, or silence.  Each is
 * refused or times out without keeping anything, and a keyed peer
 * connects promptly meanwhile. */
START_TEST(hostile_peers_cost_a_keyed_listener_nothing)
{
    struct fab_pool *a = pool_key(1, key1, 32, NULL);
    ck_assert_ptr_nonnull(a);
    uint16_t port = fab_pool_port(a);
    uint8_t frame[256], reply[512];
    /* Silent sockets held open during the whole test. */
    int silent[8];
    for (int i = 0; i < 8; i++)
        ck_assert_int_ge(silent[i] = raw_connect(port), 0);
    /* A plain HELLO claiming node 2: refused, field "authentication". */
    size_t len = make_frame(frame, 1, 2, 1, 5, NULL, 0);
    ck_assert_int_gt(send_frame(port, frame, len, reply, sizeof(reply)), 14);
    ck_assert_uint_eq(reply[13], 1); /* MISMATCH */
    ck_assert_uint_eq(reply[14], 8); /* authentication */
    /* A FETCH without the key: refused the same way, no blob leaks. */
    ck_assert_int_eq(fab_pool_publish(a, 7, "secret", 6), 0);
    len = make_frame(frame, 3, 2, 1, 7, NULL, 0);
    ssize_t n = send_frame(port, frame, len, reply, sizeof(reply));
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[14], 8);
    ck_assert_ptr_null(memmem(reply, (size_t)n, "secret", 6));
    /* A HELLO carrying a made-up MAC, without a challenge. */
    uint8_t junk[32];
    memset(junk, 0xab, sizeof(junk));
    len = make_frame(frame, 1, 2, 1, 5, junk, 32);
    ck_assert_int_gt(send_frame(port, frame, len, reply, sizeof(reply)), 14);
    ck_assert_uint_eq(reply[14], 8);
    /* A challenge, then a HELLO with a forged MAC. */
    int fd = raw_connect(port);
    ck_assert_int_ge(fd, 0);
    len = make_frame(frame, 5, 2, 1, 0, junk, 32);
    ck_assert_int_eq(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    n = recv(fd, reply, sizeof(reply), 0);
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[10], 6); /* CHALLENGE_REPLY */
    ck_assert_uint_eq(reply[13], 0);
    len = make_frame(frame, 1, 2, 1, 5, junk, 32);
    ck_assert_int_eq(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    n = recv(fd, reply, sizeof(reply), 0);
    ck_assert_int_gt(n, 14);
    ck_assert_uint_eq(reply[13], 1);
    ck_assert_uint_eq(reply[14], 8);
    close(fd);
    /* A challenge, then garbage. */
    fd = raw_connect(port);
    ck_assert_int_ge(fd, 0);
    len = make_frame(frame, 5, 2, 1, 0, junk, 32);
    ck_assert_int_eq(send(fd, frame, len, MSG_NOSIGNAL), (ssize_t)len);
    ck_assert_int_gt(recv(fd, reply, sizeof(reply), 0), 14);
    ck_assert_int_eq(send(fd, junk, sizeof(junk), MSG_NOSIGNAL), 32);
    close(fd);
    /* The real node 2, with the key, gets in promptly. */
    struct fab_pool *b = pool_key(2, key1, 32, NULL);
    int rc;
    struct fab_error err;
    int64_t dt = borrow_ms(b, 1, a, 3000, &rc, &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
    fprintf(stderr, "keyed borrow with hostile peers around: %lld ms\n",
            (long long)dt);
    ck_assert_int_lt(dt, 1000);
    struct fab_pool_stats st;
    fab_pool_get_stats(a, &st);
    ck_assert_uint_eq(st.bootstraps_in, 1);
    ck_assert_uint_ge(st.bootstraps_refused, 4);
    for (int i = 0; i < 8; i++)
        close(silent[i]);
    fab_pool_destroy(b);
    fab_pool_destroy(a);
}
END_TEST

/* ---- key files --------------------------------------------------------- */

static void write_file(const char *path, const void *bytes, size_t len,
                       mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, bytes, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
}

START_TEST(key_file_read_refuses_bad_files)
{
    char dir[256], path[512];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/group.key", dir);
    static uint8_t big[FAB_AUTH_KEY_MAX + 1];
    uint8_t buf[FAB_AUTH_KEY_MAX];
    size_t len = 99;
    struct fab_error err;

    write_file(path, key1, 32, 0600);
    ck_assert_int_eq(fab_auth_key_read(path, buf, sizeof(buf), &len, &err), 0);
    ck_assert_uint_eq(len, 32);
    ck_assert_mem_eq(buf, key1, 32);
    /* Group-readable is allowed (a group of operators). */
    write_file(path, key1, 32, 0640);
    ck_assert_int_eq(fab_auth_key_read(path, buf, sizeof(buf), &len, &err), 0);

    const struct {
        size_t size;
        mode_t mode;
        size_t cap;
        int rc;
    } bad[] = {
        {0, 0600, sizeof(buf), -EINVAL},  /* empty */
        {15, 0600, sizeof(buf), -EINVAL}, /* too short */
        {32, 0604, sizeof(buf), -EPERM},  /* others may read */
        {32, 0602, sizeof(buf), -EPERM},  /* others may write */
        {sizeof(big), 0600, sizeof(big), -EFBIG}, {64, 0600, 32, -ENOSPC},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, big, bad[i].size, bad[i].mode);
        len = 99;
        ck_assert_int_eq(fab_auth_key_read(path, buf, bad[i].cap, &len, &err),
                         bad[i].rc);
        ck_assert_int_eq(err.code, bad[i].rc);
        ck_assert_ptr_nonnull(strstr(err.msg, "group.key"));
        ck_assert_uint_eq(len, 0);
    }
    snprintf(path, sizeof(path), "%s/missing.key", dir);
    ck_assert_int_eq(fab_auth_key_read(path, buf, sizeof(buf), &len, &err),
                     -ENOENT);
    ck_assert_int_eq(fab_auth_key_read(dir, buf, sizeof(buf), &len, &err),
                     -EINVAL);
    ck_assert_int_eq(fab_auth_key_read(NULL, buf, sizeof(buf), &len, NULL),
                     -EINVAL);
    ck_assert_int_eq(fab_auth_key_read(path, NULL, 0, &len, NULL), -EINVAL);
}
END_TEST

Suite *fab_harden_suite(void)
{
    Suite *s = suite_create("fab-harden");
    TCase *tc = tcase_create("harden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, spoofed_hello_does_not_keep_the_real_node_out);
    tcase_add_test(tc, hello_flood_keeps_memory_bounded);
    tcase_add_test(tc, same_key_connects_and_fetches);
    tcase_add_test(tc, keyed_simultaneous_connects_make_one_connection);
    tcase_add_test(tc, wrong_key_is_eacces_both_ways);
    tcase_add_test(tc, no_key_against_key_is_eacces_both_ways);
    tcase_add_test(tc, hostile_peers_cost_a_keyed_listener_nothing);
    tcase_add_test(tc, key_file_read_refuses_bad_files);
    suite_add_tcase(s, tc);
    return s;
}
