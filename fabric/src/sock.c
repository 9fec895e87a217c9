/* Plain TCP sockets for the bootstrap exchange: every call has a deadline. */
#include "fab-private.h"

#include <mutils/mutils.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fab__sock_listen(const char *addr, uint16_t port, int *fd, uint16_t *bound)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
        return -EINVAL;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0)
        return -errno;
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        listen(s, 128) < 0) {
        int e = -errno;
        close(s);
        return e;
    }
    socklen_t sl = sizeof(sin);
    getsockname(s, (struct sockaddr *)&sin, &sl);
    *bound = ntohs(sin.sin_port);
    *fd = s;
    return 0;
}

static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - fab__now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(left > 1000000 ? 1000000 : left));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

int fab__sock_connect(const char *host, uint16_t port, int64_t deadline_ms,
                      int *fd)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    char service[8];
    snprintf(service, sizeof(service), "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return -EINVAL;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        int e = -errno;
        freeaddrinfo(res);
        return e;
    }
    int rc = connect(s, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS) {
        int e = -errno;
        close(s);
        return e;
    }
    if (rc < 0) {
        int w = wait_fd(s, POLLOUT, deadline_ms);
        if (w < 0) {
            close(s);
            return w;
        }
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr) {
            close(s);
            return -soerr;
        }
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    *fd = s;
    return 0;
}

int fab__sock_send_all(int fd, const void *buf, size_t len, int64_t deadline_ms)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_fd(fd, POLLOUT, deadline_ms);
            if (w < 0)
                return w;
            continue;
        }
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *buf, size_t len, int64_t deadline_ms)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -ECONNRESET; /* peer closed: a truncated frame */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(fd, POLLIN, deadline_ms);
            if (w < 0)
                return w;
            continue;
        }
        return -errno;
    }
    return 0;
}

int fab__sock_recv_frame(int fd, uint8_t *buf, size_t cap, int64_t deadline_ms)
{
    uint8_t hdr[4];
    int rc = recv_all(fd, hdr, sizeof(hdr), deadline_ms);
    if (rc < 0)
        return rc;
    uint32_t len = mutils_load_le32(hdr);
    if (len == 0 || len > cap)
        return -EBADMSG;
    rc = recv_all(fd, buf, len, deadline_ms);
    if (rc < 0)
        return rc;
    return (int)len;
}

int fab__send_frame(int fd, const struct fab__frame *f, int64_t deadline_ms)
{
    uint8_t buf[FAB__FRAME_MAX];
    int n = fab__frame_encode(f, buf, sizeof(buf));
    if (n < 0)
        return n;
    return fab__sock_send_all(fd, buf, (size_t)n, deadline_ms);
}
