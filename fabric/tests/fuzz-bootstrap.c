/* Fuzz target: bytes from the network.  The first input byte chooses the
 * parser: even -> the rest is sent to a live pool's bootstrap listener as
 * one connection (then EOF), and the listener must keep serving (bit 1
 * set: a pool with a group key, which answers challenges); odd -> the rest
 * goes through fab_mr_desc_decode. */
#include <fab/fab.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct fab_pool *fuzz_pool(bool keyed)
{
    static struct fab_pool *pools[2]; /* per fuzzing process */
    static const char key[] = "fuzzing group key, 32 bytes long";
    if (!pools[keyed]) {
        struct fab_options o;
        fab_options_init(&o);
        o.node_id = 1;
        o.fingerprint = 0x5eed;
        o.log_level = -1;
        o.connect_timeout_ms = 500;
        if (keyed) {
            o.auth_key = key;
            o.auth_key_len = 32;
        }
        if (fab_pool_create(&o, &pools[keyed], NULL) != 0)
            abort();
    }
    return pools[keyed];
}

static void send_to_listener(uint16_t port, const uint8_t *data, size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        abort();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        abort(); /* the listener died: a finding */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (size)
        (void)!send(fd, data, size, MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
    uint8_t buf[8192];
    while (recv(fd, buf, sizeof(buf), 0) > 0)
        ;
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        struct fab_mr_desc d;
        if (fab_mr_desc_decode(data + 1, size - 1, &d) == 0 &&
            d.base > UINT64_MAX - d.len)
            abort();
        return 0;
    }
    struct fab_pool *pool = fuzz_pool((data[0] & 2) != 0);
    send_to_listener(fab_pool_port(pool), data + 1, size - 1);
    return 0;
}
