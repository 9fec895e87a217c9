/* Control frames over TCP: joins, redirects and view announcements to
 * processes that are not (yet) in the connection pool.  libderecho owns
 * this channel (docs/derecho.md, "Control channel"): libfab's bootstrap
 * serves its pool's RDMA connections only, while a joiner must be
 * answered, refused or redirected before it has any.  The frames carry the
 * same compatibility fields as libfab's bootstrap (magic, protocol
 * version, endianness, word size; the fingerprint travels in the join
 * request), every read is bounded and has one deadline. */
#include "derecho-private.h"

#include <mutils/mutils.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint8_t my_endian(void)
{
    const uint16_t probe = 1;
    return *(const uint8_t *)&probe ? 1 : 2;
}

const char *derecho_compat_field_name(int field)
{
    switch (field) {
    case DERECHO_FIELD_NONE:
        return "none";
    case DERECHO_FIELD_MAGIC:
        return "magic";
    case DERECHO_FIELD_VERSION:
        return "protocol version";
    case DERECHO_FIELD_ENDIAN:
        return "endianness";
    case DERECHO_FIELD_WORD_SIZE:
        return "word size";
    case DERECHO_FIELD_FINGERPRINT:
        return "layout fingerprint";
    case DERECHO_FIELD_NODE_ID:
        return "node id";
    default:
        return "unknown field";
    }
}

static bool known_type(uint8_t type)
{
    return type >= DERECHO_CONTROL_JOIN_REQUEST && type <= DERECHO_CONTROL_VIEW;
}

int derecho_control_header_decode(const void *buf, size_t len,
                                  struct derecho_control_header *h, int *field,
                                  struct derecho_error *err)
{
    if (field)
        *field = DERECHO_FIELD_NONE;
    if (!h || (!buf && len))
        return derecho__fail(err, -EINVAL, "control: NULL argument");
    memset(h, 0, sizeof(*h));
    if (len < DERECHO_CONTROL_HEADER_SIZE)
        return derecho__fail(err, -EBADMSG,
                             "control: short header (%zu "
                             "bytes)",
                             len);
    struct mutils_reader r;
    uint8_t zero = 0;
    mutils_reader_init(&r, buf, DERECHO_CONTROL_HEADER_SIZE);
    mutils_get_u32(&r, &h->magic);
    mutils_get_u16(&r, &h->version);
    mutils_get_u8(&r, &h->type);
    mutils_get_u8(&r, &h->endian);
    mutils_get_u8(&r, &h->word_size);
    mutils_get_u8(&r, &zero);
    mutils_get_u32(&r, &h->body_len);
    int bad = DERECHO_FIELD_NONE;
    uint64_t mine = 0, theirs = 0;
    if (h->magic != DERECHO_CONTROL_MAGIC)
        bad = DERECHO_FIELD_MAGIC, mine = DERECHO_CONTROL_MAGIC,
        theirs = h->magic;
    else if (h->version != DERECHO_PROTOCOL_VERSION)
        bad = DERECHO_FIELD_VERSION, mine = DERECHO_PROTOCOL_VERSION,
        theirs = h->version;
    else if (h->endian != my_endian())
        bad = DERECHO_FIELD_ENDIAN, mine = my_endian(), theirs = h->endian;
    else if (h->word_size != sizeof(void *))
        bad = DERECHO_FIELD_WORD_SIZE, mine = sizeof(void *),
        theirs = h->word_size;
    if (bad) {
        if (field)
            *field = bad;
        int rc =
            derecho__fail(err, -EPROTO,
                          "control: %s differs (ours %#llx, peer's "
                          "%#llx)",
                          derecho_compat_field_name(bad),
                          (unsigned long long)mine, (unsigned long long)theirs);
        if (err)
            err->field = bad;
        return rc;
    }
    if (zero != 0 || !known_type(h->type))
        return derecho__fail(err, -EBADMSG,
                             "control: unknown frame type %u or flags %u",
                             h->type, zero);
    if (h->body_len > DERECHO_MAX_FRAME)
        return derecho__fail(err, -EBADMSG,
                             "control: body of %u bytes (at most %u)",
                             h->body_len, DERECHO_MAX_FRAME);
    return 0;
}

/* ---- message bodies --------------------------------------------------------
 */

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, 0, cap) != NULL;
}

int derecho_join_request_encode(const struct derecho_join_request *req,
                                struct mutils_writer *w)
{
    if (!req || !w || !terminated(req->member.ip, sizeof(req->member.ip)))
        return -EINVAL;
    mutils_put_u32(w, req->member.node_id);
    mutils_put_string(w, req->member.ip, DERECHO_MAX_IP);
    mutils_put_u16(w, req->member.gms_port);
    mutils_put_u16(w, req->member.sst_port);
    mutils_put_u16(w, req->member.rdmc_port);
    mutils_put_u16(w, req->member.external_port);
    mutils_put_u64(w, req->fingerprint);
    return mutils_writer_error(w);
}

int derecho_join_request_decode(const void *buf, size_t len,
                                struct derecho_join_request *req)
{
    if (!req || (!buf && len))
        return -EINVAL;
    struct derecho_join_request tmp;
    memset(&tmp, 0, sizeof(tmp));
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    mutils_get_u32(&r, &tmp.member.node_id);
    mutils_get_string(&r, tmp.member.ip, sizeof(tmp.member.ip), NULL,
                      DERECHO_MAX_IP);
    mutils_get_u16(&r, &tmp.member.gms_port);
    mutils_get_u16(&r, &tmp.member.sst_port);
    mutils_get_u16(&r, &tmp.member.rdmc_port);
    mutils_get_u16(&r, &tmp.member.external_port);
    mutils_get_u64(&r, &tmp.fingerprint);
    if (mutils_reader_finish(&r) || tmp.member.ip[0] == 0 ||
        tmp.member.node_id == DERECHO_NODE_NONE)
        return -EBADMSG;
    *req = tmp;
    return 0;
}

int derecho_join_answer_encode(const struct derecho_join_answer *ans,
                               struct mutils_writer *w)
{
    if (!ans || !w || !terminated(ans->leader_ip, sizeof(ans->leader_ip)) ||
        !terminated(ans->reason, sizeof(ans->reason)) || ans->status < 0 ||
        ans->status > DERECHO_JOIN_REDIRECT || ans->field < 0 ||
        ans->field > DERECHO_FIELD_NODE_ID)
        return -EINVAL;
    mutils_put_u8(w, (uint8_t)ans->status);
    mutils_put_u8(w, (uint8_t)ans->field);
    mutils_put_u64(w, ans->contact_value);
    mutils_put_u64(w, ans->joiner_value);
    mutils_put_u32(w, ans->leader_id);
    mutils_put_string(w, ans->leader_ip, DERECHO_MAX_IP);
    mutils_put_u16(w, ans->leader_port);
    mutils_put_string(w, ans->reason, sizeof(ans->reason) - 1);
    return mutils_writer_error(w);
}

int derecho_join_answer_decode(const void *buf, size_t len,
                               struct derecho_join_answer *ans)
{
    if (!ans || (!buf && len))
        return -EINVAL;
    struct derecho_join_answer tmp;
    memset(&tmp, 0, sizeof(tmp));
    struct mutils_reader r;
    uint8_t status = 0, field = 0;
    mutils_reader_init(&r, buf, len);
    mutils_get_u8(&r, &status);
    mutils_get_u8(&r, &field);
    mutils_get_u64(&r, &tmp.contact_value);
    mutils_get_u64(&r, &tmp.joiner_value);
    mutils_get_u32(&r, &tmp.leader_id);
    mutils_get_string(&r, tmp.leader_ip, sizeof(tmp.leader_ip), NULL,
                      DERECHO_MAX_IP);
    mutils_get_u16(&r, &tmp.leader_port);
    mutils_get_string(&r, tmp.reason, sizeof(tmp.reason), NULL,
                      sizeof(tmp.reason) - 1);
    if (mutils_reader_finish(&r) || status > DERECHO_JOIN_REDIRECT ||
        field > DERECHO_FIELD_NODE_ID)
        return -EBADMSG;
    /* A redirect must say where to. */
    if (status == DERECHO_JOIN_REDIRECT &&
        (tmp.leader_ip[0] == 0 || tmp.leader_port == 0))
        return -EBADMSG;
    tmp.status = status;
    tmp.field = field;
    *ans = tmp;
    return 0;
}

int derecho_join_check(const struct derecho_join_request *req,
                       uint64_t my_fingerprint, uint32_t leader_id,
                       bool (*is_live)(void *ctx, uint32_t node_id), void *ctx,
                       struct derecho_join_answer *ans)
{
    if (!req || !ans)
        return -EINVAL;
    memset(ans, 0, sizeof(*ans));
    if (req->fingerprint != my_fingerprint) {
        ans->status = DERECHO_JOIN_REFUSED;
        ans->field = DERECHO_FIELD_FINGERPRINT;
        ans->contact_value = my_fingerprint;
        ans->joiner_value = req->fingerprint;
        snprintf(ans->reason, sizeof(ans->reason),
                 "layout fingerprint differs (group %#llx, joiner %#llx)",
                 (unsigned long long)my_fingerprint,
                 (unsigned long long)req->fingerprint);
    } else if (is_live && is_live(ctx, req->member.node_id)) {
        ans->status = DERECHO_JOIN_REFUSED;
        ans->field = DERECHO_FIELD_NODE_ID;
        ans->contact_value = req->member.node_id;
        ans->joiner_value = req->member.node_id;
        snprintf(ans->reason, sizeof(ans->reason),
                 "node id %u is already a live member", req->member.node_id);
    } else {
        ans->status = DERECHO_JOIN_ACCEPTED;
        ans->leader_id = leader_id;
    }
    return 0;
}

/* ---- sockets ----------------------------------------------------------------
 */

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - derecho__now_ms();
    return left < 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

static int to_sockaddr(const char *ip, uint16_t port,
                       struct sockaddr_storage *sa, socklen_t *salen)
{
    memset(sa, 0, sizeof(*sa));
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
    if (ip && inet_pton(AF_INET, ip, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *salen = sizeof(*in4);
        return 0;
    }
    if (ip && inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *salen = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}

int derecho_control_listen(const char *ip, uint16_t port, int *fd)
{
    if (!fd)
        return -EINVAL;
    *fd = -1;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (to_sockaddr(ip, port, &sa, &salen))
        return -EINVAL;
    int s = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&sa, salen) != 0 || listen(s, 64) != 0) {
        int rc = -errno;
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

/* One non-blocking connect attempt, waited for up to the deadline. */
static int connect_once(const struct sockaddr_storage *sa, socklen_t salen,
                        int64_t deadline, int *fd)
{
    int s =
        socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    int rc = 0;
    if (connect(s, (const struct sockaddr *)sa, salen) != 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
        } else {
            struct pollfd p = {.fd = s, .events = POLLOUT};
            int n = poll(&p, 1, remaining_ms(deadline));
            int soerr = 0;
            socklen_t l = sizeof(soerr);
            if (n == 0)
                rc = -ETIMEDOUT;
            else if (n < 0)
                rc = -errno;
            else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &l) != 0)
                rc = -errno;
            else
                rc = -soerr;
        }
    }
    if (rc == 0) {
        int flags = fcntl(s, F_GETFL);
        if (flags < 0 || fcntl(s, F_SETFL, flags & ~O_NONBLOCK) != 0)
            rc = -errno;
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (rc) {
        close(s);
        return rc;
    }
    *fd = s;
    return 0;
}

int derecho_control_connect(const char *ip, uint16_t port, int timeout_ms,
                            int *fd)
{
    if (!fd || timeout_ms < 0)
        return -EINVAL;
    *fd = -1;
    struct sockaddr_storage sa;
    socklen_t salen;
    if (to_sockaddr(ip, port, &sa, &salen) || port == 0)
        return -EINVAL;
    int64_t deadline = derecho__now_ms() + timeout_ms;
    int backoff_ms = 10;
    for (;;) {
        int rc = connect_once(&sa, salen, deadline, fd);
        if (rc == 0)
            return 0;
        /* The contact may not be listening yet (started later, or
         * restarting on the same port): retry those until the deadline. */
        if (rc != -ECONNREFUSED && rc != -ENETUNREACH && rc != -EHOSTUNREACH &&
            rc != -ECONNRESET && rc != -ETIMEDOUT && rc != -EAGAIN)
            return rc;
        int left = remaining_ms(deadline);
        if (left == 0)
            return -ETIMEDOUT;
        poll(NULL, 0, backoff_ms < left ? backoff_ms : left);
        if (backoff_ms < 200)
            backoff_ms *= 2;
    }
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

int derecho_control_send(int fd, int type, const void *body, size_t len,
                         int timeout_ms)
{
    if (fd < 0 || timeout_ms < 0 || (!body && len) ||
        type < DERECHO_CONTROL_JOIN_REQUEST || type > DERECHO_CONTROL_VIEW)
        return -EINVAL;
    if (len > DERECHO_MAX_FRAME)
        return -EMSGSIZE;
    uint8_t header[DERECHO_CONTROL_HEADER_SIZE];
    struct mutils_writer w;
    mutils_writer_init(&w, header, sizeof(header));
    mutils_put_u32(&w, DERECHO_CONTROL_MAGIC);
    mutils_put_u16(&w, DERECHO_PROTOCOL_VERSION);
    mutils_put_u8(&w, (uint8_t)type);
    mutils_put_u8(&w, my_endian());
    mutils_put_u8(&w, (uint8_t)sizeof(void *));
    mutils_put_u8(&w, 0);
    mutils_put_u32(&w, (uint32_t)len);
    int64_t deadline = derecho__now_ms() + timeout_ms;
    size_t total = sizeof(header) + len, done = 0;
    while (done < total) {
        struct iovec iov[2];
        int n = 0;
        if (done < sizeof(header)) {
            iov[n].iov_base = header + done;
            iov[n++].iov_len = sizeof(header) - done;
            if (len) {
                iov[n].iov_base = (void *)(uintptr_t)body;
                iov[n++].iov_len = len;
            }
        } else {
            iov[n].iov_base =
                (uint8_t *)(uintptr_t)body + (done - sizeof(header));
            iov[n++].iov_len = total - done;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) {
            done += (size_t)sent;
            continue;
        }
        if (sent < 0 && errno == EINTR)
            continue;
        if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

/* Reads exactly n bytes before the deadline. */
static int read_exact(int fd, void *buf, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, (uint8_t *)buf + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

int derecho_control_recv(int fd, int timeout_ms, size_t max_len, int *type,
                         void **body, size_t *len, struct derecho_error *err)
{
    if (fd < 0 || timeout_ms < 0 || !type || !body || !len)
        return derecho__fail(err, -EINVAL, "control: bad argument");
    *body = NULL;
    *len = 0;
    *type = 0;
    int64_t deadline = derecho__now_ms() + timeout_ms;
    uint8_t header[DERECHO_CONTROL_HEADER_SIZE];
    int rc = read_exact(fd, header, sizeof(header), deadline);
    if (rc)
        return derecho__fail(err, rc, "control: reading a header: %s",
                             derecho_strerror(rc));
    struct derecho_control_header h;
    rc = derecho_control_header_decode(header, sizeof(header), &h, NULL, err);
    *type = h.type;
    if (rc)
        return rc;
    if (h.body_len > max_len || h.body_len > DERECHO_MAX_FRAME)
        return derecho__fail(err, -EBADMSG,
                             "control: body of %u bytes (at most %zu here)",
                             h.body_len, max_len);
    uint8_t *b = NULL;
    if (h.body_len) {
        b = malloc(h.body_len);
        if (!b)
            return derecho__fail(err, -ENOMEM, "control: out of memory");
        rc = read_exact(fd, b, h.body_len, deadline);
        if (rc) {
            free(b);
            return derecho__fail(err, rc, "control: reading a body: %s",
                                 derecho_strerror(rc));
        }
    }
    *body = b;
    *len = h.body_len;
    return 0;
}
