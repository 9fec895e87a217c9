/* Control frames and join messages, over loopback sockets. */
#include "test-derecho.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct derecho_join_request sample_request(uint32_t id, uint64_t fp)
{
    struct derecho_join_request req;
    memset(&req, 0, sizeof(req));
    req.member.node_id = id;
    snprintf(req.member.ip, sizeof(req.member.ip), "127.0.0.1");
    req.member.gms_port = 23580;
    req.member.sst_port = 37683;
    req.member.rdmc_port = 31675;
    req.member.external_port = 32645;
    req.fingerprint = fp;
    return req;
}

/* A raw header with the given fields. */
static void raw_header(uint8_t *h, uint32_t magic, uint16_t version,
                       uint8_t type, uint8_t endian, uint8_t word, uint8_t zero,
                       uint32_t body_len)
{
    struct mutils_writer w;
    mutils_writer_init(&w, h, DERECHO_CONTROL_HEADER_SIZE);
    mutils_put_u32(&w, magic);
    mutils_put_u16(&w, version);
    mutils_put_u8(&w, type);
    mutils_put_u8(&w, endian);
    mutils_put_u8(&w, word);
    mutils_put_u8(&w, zero);
    mutils_put_u32(&w, body_len);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
}

static uint8_t host_endian(void)
{
    const uint16_t probe = 1;
    return *(const uint8_t *)&probe ? 1 : 2;
}

START_TEST(header_fields_are_checked)
{
    const uint8_t e = host_endian(), ws = sizeof(void *);
    struct {
        uint32_t magic;
        uint16_t version;
        uint8_t type, endian, word, zero;
        uint32_t len;
        int rc, field;
    } cases[] = {
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION, 1, e, ws, 0, 10, 0,
         0},
        {0x12345678, DERECHO_PROTOCOL_VERSION, 1, e, ws, 0, 10, -EPROTO,
         DERECHO_FIELD_MAGIC},
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION + 1, 1, e, ws, 0, 10,
         -EPROTO, DERECHO_FIELD_VERSION},
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION, 1, (uint8_t)(3 - e),
         ws, 0, 10, -EPROTO, DERECHO_FIELD_ENDIAN},
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION, 1, e,
         (uint8_t)(ws == 8 ? 4 : 8), 0, 10, -EPROTO, DERECHO_FIELD_WORD_SIZE},
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION, 9, e, ws, 0, 10,
         -EBADMSG, 0},
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION, 1, e, ws, 1, 10,
         -EBADMSG, 0},
        {DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION, 1, e, ws, 0,
         DERECHO_MAX_FRAME + 1, -EBADMSG, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t h[DERECHO_CONTROL_HEADER_SIZE];
        raw_header(h, cases[i].magic, cases[i].version, cases[i].type,
                   cases[i].endian, cases[i].word, cases[i].zero, cases[i].len);
        struct derecho_control_header hdr;
        struct derecho_error err;
        int field = -1;
        int rc =
            derecho_control_header_decode(h, sizeof(h), &hdr, &field, &err);
        ck_assert_msg(rc == cases[i].rc, "case %zu: %d", i, rc);
        ck_assert_int_eq(field, cases[i].field);
        if (rc == -EPROTO) {
            ck_assert_int_eq(err.field, cases[i].field);
            ck_assert_ptr_nonnull(
                strstr(err.msg, derecho_compat_field_name(cases[i].field)));
        }
        for (size_t cut = 0; cut < sizeof(h); cut++)
            ck_assert_int_eq(
                derecho_control_header_decode(h, cut, &hdr, NULL, NULL),
                -EBADMSG);
    }
}
END_TEST

START_TEST(join_messages_round_trip)
{
    struct derecho_join_request req = sample_request(4, 0xabcdef), back;
    uint8_t buf[256];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof(buf));
    ck_assert_int_eq(derecho_join_request_encode(&req, &w), 0);
    size_t len = mutils_writer_len(&w);
    ck_assert_int_eq(derecho_join_request_decode(buf, len, &back), 0);
    ck_assert(memcmp(&req, &back, sizeof(req)) == 0);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(derecho_join_request_decode(buf, cut, &back),
                         -EBADMSG);
    ck_assert_int_eq(derecho_join_request_decode(buf, len + 1, &back),
                     -EBADMSG);

    struct derecho_join_answer ans, ans_back;
    memset(&ans, 0, sizeof(ans));
    ans.status = DERECHO_JOIN_REDIRECT;
    ans.leader_id = 2;
    snprintf(ans.leader_ip, sizeof(ans.leader_ip), "10.0.0.2");
    ans.leader_port = 23590;
    mutils_writer_init(&w, buf, sizeof(buf));
    ck_assert_int_eq(derecho_join_answer_encode(&ans, &w), 0);
    len = mutils_writer_len(&w);
    ck_assert_int_eq(derecho_join_answer_decode(buf, len, &ans_back), 0);
    ck_assert(memcmp(&ans, &ans_back, sizeof(ans)) == 0);
    for (size_t cut = 0; cut < len; cut++)
        ck_assert_int_eq(derecho_join_answer_decode(buf, cut, &ans_back),
                         -EBADMSG);
    /* A redirect without a port, an unknown status: malformed. */
    buf[0] = 7;
    ck_assert_int_eq(derecho_join_answer_decode(buf, len, &ans_back), -EBADMSG);
    ans.leader_port = 0;
    mutils_writer_init(&w, buf, sizeof(buf));
    ck_assert_int_eq(derecho_join_answer_encode(&ans, &w), 0);
    ck_assert_int_eq(
        derecho_join_answer_decode(buf, mutils_writer_len(&w), &ans_back),
        -EBADMSG);
    ans.status = 5;
    ck_assert_int_eq(derecho_join_answer_encode(&ans, &w), -EINVAL);
}
END_TEST

static bool node_3_is_live(void *ctx, uint32_t id)
{
    (void)ctx;
    return id == 3;
}

START_TEST(join_check_names_the_field)
{
    struct derecho_join_answer ans;
    struct derecho_join_request req = sample_request(4, 0x1111);
    ck_assert_int_eq(
        derecho_join_check(&req, 0x2222, 0, node_3_is_live, NULL, &ans), 0);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_REFUSED);
    ck_assert_int_eq(ans.field, DERECHO_FIELD_FINGERPRINT);
    ck_assert_uint_eq(ans.contact_value, 0x2222);
    ck_assert_uint_eq(ans.joiner_value, 0x1111);
    ck_assert_ptr_nonnull(strstr(ans.reason, "fingerprint"));
    req = sample_request(3, 0x2222);
    ck_assert_int_eq(
        derecho_join_check(&req, 0x2222, 0, node_3_is_live, NULL, &ans), 0);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_REFUSED);
    ck_assert_int_eq(ans.field, DERECHO_FIELD_NODE_ID);
    ck_assert_ptr_nonnull(strstr(ans.reason, "node id 3"));
    req = sample_request(4, 0x2222);
    ck_assert_int_eq(
        derecho_join_check(&req, 0x2222, 9, node_3_is_live, NULL, &ans), 0);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_ACCEPTED);
    ck_assert_uint_eq(ans.leader_id, 9);
    ck_assert_int_eq(derecho_join_check(NULL, 0, 0, NULL, NULL, &ans), -EINVAL);
}
END_TEST

/* ---- a contact on a loopback socket -------------------------------------- */

struct contact {
    int listen_fd;
    uint16_t port;
    uint64_t fingerprint;
    int recv_timeout_ms;
    /* results */
    int rc;
    struct derecho_error err;
    struct derecho_join_request req;
    pthread_t thread;
};

/* Serves one connection the way a leader will: read a request, answer
 * (a refusal naming the field for an incompatible header), close. */
static void *contact_main(void *arg)
{
    struct contact *c = arg;
    int fd = accept(c->listen_fd, NULL, NULL);
    if (fd < 0) {
        c->rc = -errno;
        return NULL;
    }
    int type;
    void *body;
    size_t len;
    c->rc = derecho_control_recv(fd, c->recv_timeout_ms, 4096, &type, &body,
                                 &len, &c->err);
    struct derecho_join_answer ans;
    memset(&ans, 0, sizeof(ans));
    bool answer = false;
    if (c->rc == 0 && type == DERECHO_CONTROL_JOIN_REQUEST) {
        c->rc = derecho_join_request_decode(body, len, &c->req);
        if (c->rc == 0) {
            derecho_join_check(&c->req, c->fingerprint, 0, node_3_is_live, NULL,
                               &ans);
            answer = true;
        }
    } else if (c->rc == -EPROTO && c->err.field != DERECHO_FIELD_MAGIC) {
        ans.status = DERECHO_JOIN_REFUSED;
        ans.field = c->err.field;
        snprintf(ans.reason, sizeof(ans.reason), "%s differs",
                 derecho_compat_field_name(c->err.field));
        answer = true;
    }
    free(body);
    if (answer) {
        uint8_t buf[512];
        struct mutils_writer w;
        mutils_writer_init(&w, buf, sizeof(buf));
        derecho_join_answer_encode(&ans, &w);
        derecho_control_send(fd, DERECHO_CONTROL_JOIN_ANSWER, buf,
                             mutils_writer_len(&w), 2000);
    }
    close(fd);
    return NULL;
}

static void contact_start(struct contact *c, uint64_t fp, int timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->fingerprint = fp;
    c->recv_timeout_ms = timeout_ms;
    ck_assert_int_eq(derecho_control_listen("127.0.0.1", 0, &c->listen_fd), 0);
    struct sockaddr_in sa;
    socklen_t l = sizeof(sa);
    ck_assert_int_eq(getsockname(c->listen_fd, (struct sockaddr *)&sa, &l), 0);
    c->port = ntohs(sa.sin_port);
    ck_assert_int_eq(pthread_create(&c->thread, NULL, contact_main, c), 0);
}

static void contact_join(struct contact *c)
{
    pthread_join(c->thread, NULL);
    close(c->listen_fd);
}

/* Joiner side: send a request, read the answer. */
static int ask(uint16_t port, const struct derecho_join_request *req,
               struct derecho_join_answer *ans)
{
    int fd;
    int rc = derecho_control_connect("127.0.0.1", port, 2000, &fd);
    if (rc)
        return rc;
    uint8_t buf[256];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof(buf));
    derecho_join_request_encode(req, &w);
    rc = derecho_control_send(fd, DERECHO_CONTROL_JOIN_REQUEST, buf,
                              mutils_writer_len(&w), 2000);
    int type = 0;
    void *body = NULL;
    size_t len = 0;
    if (rc == 0)
        rc = derecho_control_recv(fd, 5000, 4096, &type, &body, &len, NULL);
    if (rc == 0 && type != DERECHO_CONTROL_JOIN_ANSWER)
        rc = -EPROTO;
    if (rc == 0)
        rc = derecho_join_answer_decode(body, len, ans);
    free(body);
    close(fd);
    return rc;
}

START_TEST(join_over_loopback)
{
    struct contact c;
    struct derecho_join_answer ans;
    struct derecho_join_request req = sample_request(5, 0x77);
    contact_start(&c, 0x77, 5000);
    ck_assert_int_eq(ask(c.port, &req, &ans), 0);
    contact_join(&c);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_uint_eq(c.req.member.node_id, 5);
    ck_assert_str_eq(c.req.member.ip, "127.0.0.1");
    ck_assert_uint_eq(c.req.member.rdmc_port, 31675);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_ACCEPTED);

    /* An incompatible joiner is refused with the field named. */
    contact_start(&c, 0x78, 5000);
    ck_assert_int_eq(ask(c.port, &req, &ans), 0);
    contact_join(&c);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_REFUSED);
    ck_assert_int_eq(ans.field, DERECHO_FIELD_FINGERPRINT);
    ck_assert_uint_eq(ans.joiner_value, 0x77);
    ck_assert_uint_eq(ans.contact_value, 0x78);
}
END_TEST

/* Connects to the contact and writes raw bytes, optionally leaving the
 * connection open; returns the fd. */
static int send_raw(uint16_t port, const void *bytes, size_t len)
{
    int fd;
    ck_assert_int_eq(derecho_control_connect("127.0.0.1", port, 2000, &fd), 0);
    ck_assert_int_eq(send(fd, bytes, len, MSG_NOSIGNAL), (ssize_t)len);
    return fd;
}

START_TEST(hostile_bytes_are_refused)
{
    struct contact c;
    const uint8_t e = host_endian(), ws = sizeof(void *);
    uint8_t h[DERECHO_CONTROL_HEADER_SIZE + 8];

    /* Not our protocol at all: -EPROTO (magic), no answer. */
    contact_start(&c, 1, 2000);
    int fd = send_raw(c.port, "GET / HTTP/1.0\r\n\r\n", 18);
    contact_join(&c);
    close(fd);
    ck_assert_int_eq(c.rc, -EPROTO);
    ck_assert_int_eq(c.err.field, DERECHO_FIELD_MAGIC);

    /* Another protocol version: refused, and the answer names it. */
    contact_start(&c, 1, 2000);
    raw_header(h, DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION + 1,
               DERECHO_CONTROL_JOIN_REQUEST, e, ws, 0, 0);
    fd = send_raw(c.port, h, DERECHO_CONTROL_HEADER_SIZE);
    int type;
    void *body = NULL;
    size_t len;
    ck_assert_int_eq(
        derecho_control_recv(fd, 5000, 4096, &type, &body, &len, NULL), 0);
    struct derecho_join_answer ans;
    ck_assert_int_eq(derecho_join_answer_decode(body, len, &ans), 0);
    free(body);
    close(fd);
    contact_join(&c);
    ck_assert_int_eq(c.rc, -EPROTO);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_REFUSED);
    ck_assert_int_eq(ans.field, DERECHO_FIELD_VERSION);
    ck_assert_ptr_nonnull(strstr(ans.reason, "protocol version"));

    /* A body larger than the contact accepts. */
    contact_start(&c, 1, 2000);
    raw_header(h, DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION,
               DERECHO_CONTROL_JOIN_REQUEST, e, ws, 0, 1u << 20);
    fd = send_raw(c.port, h, DERECHO_CONTROL_HEADER_SIZE);
    contact_join(&c);
    close(fd);
    ck_assert_int_eq(c.rc, -EBADMSG);

    /* A header, then silence: the deadline ends it. */
    contact_start(&c, 1, 300);
    raw_header(h, DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION,
               DERECHO_CONTROL_JOIN_REQUEST, e, ws, 0, 100);
    int64_t t0 = th_now_ms();
    fd = send_raw(c.port, h, DERECHO_CONTROL_HEADER_SIZE + 4);
    contact_join(&c);
    ck_assert_int_eq(c.rc, -ETIMEDOUT);
    ck_assert_int_lt(th_now_ms() - t0, 3000);
    close(fd);

    /* A peer that closes mid-frame. */
    contact_start(&c, 1, 2000);
    fd = send_raw(c.port, h, DERECHO_CONTROL_HEADER_SIZE + 4);
    close(fd);
    contact_join(&c);
    ck_assert_int_eq(c.rc, -ECONNRESET);

    /* A well-framed request whose body is garbage. */
    contact_start(&c, 1, 2000);
    raw_header(h, DERECHO_CONTROL_MAGIC, DERECHO_PROTOCOL_VERSION,
               DERECHO_CONTROL_JOIN_REQUEST, e, ws, 0, 8);
    memset(h + DERECHO_CONTROL_HEADER_SIZE, 0xff, 8);
    fd = send_raw(c.port, h, sizeof(h));
    contact_join(&c);
    close(fd);
    ck_assert_int_eq(c.rc, -EBADMSG);
}
END_TEST

struct late_listener {
    uint16_t port;
    int fd;
};

static void *listen_late(void *arg)
{
    struct late_listener *ll = arg;
    /* The contact starts after the joiner: part of the scenario, not a
     * wait for a result. */
    poll(NULL, 0, 300);
    ll->fd = -1;
    if (derecho_control_listen("127.0.0.1", ll->port, &ll->fd) == 0) {
        int c = accept(ll->fd, NULL, NULL);
        if (c >= 0)
            close(c);
    }
    return NULL;
}

START_TEST(connect_retries_until_the_contact_listens)
{
    uint16_t ports[2];
    ck_assert_int_eq(th_free_tcp_ports(ports, 2), 0);
    struct late_listener ll = {.port = ports[0], .fd = -1};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, listen_late, &ll), 0);
    int fd = -1;
    ck_assert_int_eq(derecho_control_connect("127.0.0.1", ports[0], 10000, &fd),
                     0);
    close(fd);
    pthread_join(t, NULL);
    if (ll.fd >= 0)
        close(ll.fd);
    /* Nobody ever listens: a time-out, within its bound. */
    int64_t t0 = th_now_ms();
    ck_assert_int_eq(derecho_control_connect("127.0.0.1", ports[1], 300, &fd),
                     -ETIMEDOUT);
    ck_assert_int_lt(th_now_ms() - t0, 2000);
    ck_assert_int_eq(derecho_control_connect("not-an-ip", 1, 10, &fd), -EINVAL);
    ck_assert_int_eq(derecho_control_listen("999.1.1.1", 0, &fd), -EINVAL);
}
END_TEST

START_TEST(frames_carry_views)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    struct derecho_member m[] = {{.node_id = 1, .ip = "127.0.0.1"},
                                 {.node_id = 2, .ip = "127.0.0.1"}};
    struct derecho_view *v = NULL, *d = NULL;
    ck_assert_int_eq(derecho_view_create(0, m, 2, 0, NULL, NULL, 1, &v, NULL),
                     0);
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
    ck_assert_int_eq(derecho_view_encode(v, &w), 0);
    ck_assert_int_eq(derecho_control_send(sv[0], DERECHO_CONTROL_VIEW,
                                          mutils_writer_data(&w),
                                          mutils_writer_len(&w), 1000),
                     0);
    ck_assert_int_eq(derecho_control_send(sv[0], DERECHO_CONTROL_VIEW, NULL,
                                          DERECHO_MAX_FRAME + 1, 1000),
                     -EINVAL);
    int type;
    void *body;
    size_t len;
    ck_assert_int_eq(
        derecho_control_recv(sv[1], 1000, 1 << 20, &type, &body, &len, NULL),
        0);
    ck_assert_int_eq(type, DERECHO_CONTROL_VIEW);
    ck_assert_uint_eq(len, mutils_writer_len(&w));
    ck_assert_int_eq(derecho_view_decode(body, len, 2, &d, NULL), 0);
    ck_assert_int_eq(derecho_view_my_rank(d), 1);
    free(body);
    /* An empty body, then nothing: a time-out. */
    ck_assert_int_eq(
        derecho_control_send(sv[0], DERECHO_CONTROL_JOIN_REQUEST, NULL, 0, 10),
        0);
    ck_assert_int_eq(
        derecho_control_recv(sv[1], 1000, 1 << 20, &type, &body, &len, NULL),
        0);
    ck_assert_ptr_null(body);
    ck_assert_uint_eq(len, 0);
    ck_assert_int_eq(
        derecho_control_recv(sv[1], 50, 1 << 20, &type, &body, &len, NULL),
        -ETIMEDOUT);
    mutils_writer_fini(&w);
    derecho_view_destroy(v);
    derecho_view_destroy(d);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

TCase *tc_control(void)
{
    TCase *tc = tcase_create("control");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, header_fields_are_checked);
    tcase_add_test(tc, join_messages_round_trip);
    tcase_add_test(tc, join_check_names_the_field);
    tcase_add_test(tc, join_over_loopback);
    tcase_add_test(tc, hostile_bytes_are_refused);
    tcase_add_test(tc, connect_retries_until_the_contact_listens);
    tcase_add_test(tc, frames_carry_views);
    return tc;
}
