/* A careless or hostile caller of the public API: every refused call
 * returns its documented error, crashes nothing, leaks nothing and leaves
 * the objects usable. */
#include "test-fab.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <fcntl.h>
#include <stddef.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <syslog.h>

static void silent_log(void *ctx, int level, const char *module,
                       const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    (void)msg;
}

static void silent_options(struct fab_options *o, uint32_t node_id)
{
    fab_options_init(o);
    o->node_id = node_id;
    o->log = silent_log;
}

/* The pool a refused fab_pool_create must not leave behind. */
static struct fab_pool *const SENTINEL = (struct fab_pool *)(uintptr_t)0x10;

/* th_check_options_sizes callbacks: options of node 7 with a given size;
 * a pool made from them has that node id, a refusal says why and leaves
 * no pool. */
static void fill_options(void *opts, size_t size, void *ctx)
{
    (void)ctx;
    silent_options(opts, 7);
    ((struct fab_options *)opts)->size = size;
}

static int try_options(void *opts, void *ctx)
{
    (void)ctx;
    struct fab_pool *p = SENTINEL;
    struct fab_error err;
    int rc = fab_pool_create(opts, &p, &err);
    if (rc == 0) {
        ck_assert_uint_eq(fab_pool_node_id(p), 7);
        fab_pool_destroy(p);
    } else {
        ck_assert_int_eq(err.code, rc);
        ck_assert_ptr_null(p);
    }
    return rc;
}

START_TEST(strerror_of_anything)
{
    const int codes[] = {INT_MIN, INT_MIN + 1, -1, 1,       EPROTO,
                         -99999,  99999,       0,  INT_MAX, -4095};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = fab_strerror(codes[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
    }
    /* a positive code reads as its negation */
    ck_assert_str_eq(fab_strerror(EPROTO), fab_strerror(-EPROTO));
    /* every errno has a text, the same for both signs, never "unknown" */
    for (int e = 1; e < 134; e++) {
        if (e == 41 || e == 58)
            continue; /* not errnos on Linux */
        ck_assert_str_eq(fab_strerror(e), fab_strerror(-e));
        ck_assert_msg(strcmp(fab_strerror(-e), "unknown error") != 0,
                      "errno %d has no text", e);
    }
    ck_assert_ptr_nonnull(strstr(fab_strerror(-EMFILE), "files"));
    ck_assert_ptr_nonnull(strstr(fab_strerror(EACCES), "authentication"));
    ck_assert_str_eq(fab_strerror(-99999), "unknown error");
    ck_assert_str_eq(fab_strerror(INT_MIN), "unknown error");
}
END_TEST

/* The default logger writes "fab: LEVEL: message" lines to stderr. */
START_TEST(default_log_line_names_level)
{
    char dir[256], path[512];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/stderr", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    close(fd);
    struct fab_options o;
    fab_options_init(&o);
    o.node_id = 3;
    struct fab_pool *p = NULL;
    ck_assert_int_eq(fab_pool_create(&o, &p, NULL), 0);
    struct fab_user *u;
    ck_assert_int_eq(fab_user_create(p, NULL, NULL, &u), 0);
    fab_pool_destroy(p); /* refused: a user is left (an error line) */
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fab_user_destroy(u);
    fab_pool_destroy(p);
    char buf[1024] = {0};
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    ck_assert_uint_gt(n, 0);
    ck_assert_msg(
        strncmp(buf, "fab: error: fab_pool_destroy with users left", 44) == 0,
        "got: %s", buf);
}
END_TEST

START_TEST(create_refuses_bad_options)
{
    struct fab_options o;
    struct fab_error err;
    struct fab_pool *p = SENTINEL;
    silent_options(&o, 1);
    ck_assert_int_eq(fab_pool_create(&o, NULL, &err), -EINVAL);
    /* NULL options: every default (node 0, tcp, 127.0.0.1, any port) */
    ck_assert_int_eq(fab_pool_create(NULL, &p, NULL), 0);
    ck_assert_uint_eq(fab_pool_node_id(p), 0);
    ck_assert_uint_gt(fab_pool_port(p), 0);
    fab_pool_destroy(p);
    p = SENTINEL;

    /* zeroed, or a size short of the first layout (cq_data_limit and
     * later fields were added after it); a struct from a newer header: the
     * fields we know are used, unless its extra bytes ask for something
     * this version cannot do */
    const size_t bad_sizes[] = {0, 1, sizeof(size_t), sizeof(o) / 2,
                                offsetof(struct fab_options, cq_data_limit) -
                                    1};
    const struct th_options_case sizes = {sizeof(struct fab_options),
                                          fill_options, try_options, NULL};
    th_check_options_sizes(&sizes, bad_sizes,
                           sizeof(bad_sizes) / sizeof(bad_sizes[0]));
    memset(&o, 0, sizeof(o));
    ck_assert_int_eq(fab_pool_create(&o, &p, NULL), -EINVAL);
    /* The first version's layout (up to log_level) is accepted: the later
     * fields take their defaults, whatever the bytes past it hold. */
    silent_options(&o, 1);
    o.size = offsetof(struct fab_options, auth_key);
    o.auth_key_len = 5; /* not read */
    o.bootstrap_max_conns = 1u << 30;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), 0);
    fab_pool_destroy(p);
    /* a size inside the later fields, and bad values of them */
    silent_options(&o, 1);
    o.size = offsetof(struct fab_options, bootstrap_timeout_ms);
    p = SENTINEL;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    ck_assert_ptr_null(p);
    static const uint8_t key[FAB_AUTH_KEY_MAX + 1];
    const struct {
        const void *key;
        size_t len;
    } bad_keys[] = {{NULL, 32},
                    {key, 1},
                    {key, FAB_AUTH_KEY_MIN - 1},
                    {key, FAB_AUTH_KEY_MAX + 1}};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        silent_options(&o, 1);
        o.auth_key = bad_keys[i].key;
        o.auth_key_len = bad_keys[i].len;
        p = SENTINEL;
        ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "auth_key"));
        ck_assert_ptr_null(p);
    }
    silent_options(&o, 1);
    o.bootstrap_timeout_ms = -1;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.bootstrap_max_conns = 65537;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.bootstrap_max_pending = 1u << 31;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    ck_assert_ptr_null(p);

    /* names that do not fit, or name nothing */
    char long_name[300];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    silent_options(&o, 1);
    o.provider = long_name;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.domain = long_name;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.listen_addr = long_name;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.provider = "no-such-provider";
    ck_assert_int_lt(fab_pool_create(&o, &p, &err), 0);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(err.msg, "no-such-provider"));
    const char *bad_addrs[] = {"300.1.2.3", "not-an-address", "1.2.3",
                               "::1",       "127.0.0.1:80",   " 127.0.0.1"};
    for (size_t i = 0; i < sizeof(bad_addrs) / sizeof(bad_addrs[0]); i++) {
        silent_options(&o, 1);
        o.listen_addr = bad_addrs[i];
        p = SENTINEL;
        ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
        ck_assert_ptr_null(p);
        ck_assert_ptr_nonnull(strstr(err.msg, bad_addrs[i]));
    }
    silent_options(&o, UINT32_MAX); /* reserved: "no node" */
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.cq_size = (1u << 20) + 1;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    o.cq_size = SIZE_MAX;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    silent_options(&o, 1);
    o.write_ordering = -1;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    ck_assert_ptr_null(p);

    /* the size field alone set: every default applies */
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.log = silent_log;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), 0);
    struct fab_pool_info info;
    fab_pool_get_info(p, &info);
    ck_assert_str_eq(info.provider, "tcp");
    fab_pool_destroy(p);
}
END_TEST

START_TEST(null_pool_and_arguments)
{
    ck_assert_uint_eq(fab_pool_port(NULL), 0);
    ck_assert_uint_eq(fab_pool_node_id(NULL), UINT32_MAX);
    struct fab_pool_info info;
    memset(&info, 0xff, sizeof(info));
    fab_pool_get_info(NULL, &info);
    ck_assert_uint_eq(info.cq_data_size, 0);
    struct fab_pool_stats st;
    memset(&st, 0xff, sizeof(st));
    fab_pool_get_stats(NULL, &st);
    ck_assert_uint_eq(st.connections, 0);
    ck_assert_int_eq(fab_pool_wait_fd(NULL), -EINVAL);
    ck_assert_int_eq(fab_pool_trywait(NULL), -EINVAL);
    ck_assert_int_eq(fab_pool_progress(NULL), -EINVAL);
    ck_assert_int_eq(fab_pool_progress_wait(NULL, 10, 10), -EINVAL);
    fab_pool_wake(NULL);
    ck_assert_int_eq(fab_pool_fail_peer(NULL, 2, -EHOSTDOWN), -EINVAL);
    ck_assert_int_eq(fab_pool_publish(NULL, 1, "a", 1), -EINVAL);
    ck_assert_int_eq(fab_pool_unpublish(NULL, 1), -EINVAL);
    size_t len = 0;
    char buf[8];
    ck_assert_int_eq(
        fab_pool_fetch(NULL, 2, 1, buf, sizeof(buf), &len, 10, NULL), -EINVAL);
    struct fab_user *u = (struct fab_user *)SENTINEL;
    ck_assert_int_eq(fab_user_create(NULL, NULL, NULL, &u), -EINVAL);
    fab_user_destroy(NULL);
    struct fab_conn *c = (struct fab_conn *)SENTINEL;
    struct fab_error err;
    ck_assert_int_eq(fab_borrow(NULL, 2, "127.0.0.1", 1, 10, &c, &err),
                     -EINVAL);
    ck_assert_ptr_null(c);
    fab_release(NULL, NULL);
    ck_assert_uint_eq(fab_conn_node_id(NULL), UINT32_MAX);
    ck_assert_int_eq(fab_conn_status(NULL), -EINVAL);
    ck_assert_uint_eq(fab_conn_outstanding(NULL), 0);
    static uint8_t region[64];
    struct fab_mr *mr = NULL;
    ck_assert_int_eq(fab_mr_register(NULL, region, 8, FAB_ACCESS_LOCAL, &mr),
                     -EINVAL);
    fab_mr_destroy(NULL);
    struct fab_mr_desc d = {1, 2, 3};
    fab_mr_get_desc(NULL, &d);
    ck_assert_uint_eq(d.len, 0);
    ck_assert_ptr_null(fab_mr_addr(NULL));
    ck_assert_uint_eq(fab_mr_len(NULL), 0);
    uint8_t enc[FAB_MR_DESC_SIZE];
    memset(enc, 0xff, sizeof(enc));
    fab_mr_desc_encode(NULL, enc);
    ck_assert_uint_eq(enc[0], 0);
    fab_mr_desc_encode(&d, NULL);
    ck_assert_int_eq(fab_mr_desc_decode(NULL, FAB_MR_DESC_SIZE, &d), -EBADMSG);
    ck_assert_int_eq(fab_mr_desc_decode(enc, FAB_MR_DESC_SIZE, NULL), -EBADMSG);
    struct fab_mr_rules rules = {.virt_addr = true};
    uint64_t addr = 0;
    ck_assert_int_eq(fab_mr_remote_addr(NULL, &d, 0, 0, &addr), -EINVAL);
    ck_assert_int_eq(fab_mr_remote_addr(&rules, NULL, 0, 0, &addr), -EINVAL);
    ck_assert_int_eq(fab_mr_remote_addr(&rules, &d, 0, 0, NULL), -EINVAL);
    /* a hand-made descriptor whose end wraps around */
    struct fab_mr_desc wrap = {.key = 1, .base = UINT64_MAX - 4, .len = 8};
    ck_assert_int_eq(fab_mr_remote_addr(&rules, &wrap, 0, 8, &addr), -ERANGE);
    ck_assert_int_eq(fab_mr_remote_addr(&rules, &wrap, 2, 3, &addr), -ERANGE);
    ck_assert_int_eq(fab_mr_remote_addr(&rules, &wrap, 0, 4, &addr), 0);
    ck_assert_uint_eq(addr, UINT64_MAX - 4);
    ck_assert_int_eq(fab_write(NULL, NULL, 0, 0, NULL, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(fab_writedata(NULL, NULL, 0, 0, NULL, 0, 1, 0, NULL),
                     -EINVAL);
    ck_assert_int_eq(fab_send(NULL, NULL, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(fab_send_flags(NULL, NULL, 0, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(fab_recv(NULL, NULL, 0, 0, NULL), -EINVAL);
}
END_TEST

START_TEST(pool_refuses_bad_calls_and_stays_usable)
{
    struct fab_pool *p = tf_pool(1, 0, NULL);
    ck_assert_ptr_nonnull(p);
    fab_pool_get_info(p, NULL);
    fab_pool_get_stats(p, NULL);
    ck_assert_int_eq(fab_pool_fail_peer(p, 2, 0), -EINVAL);
    ck_assert_int_eq(fab_pool_fail_peer(p, 2, 5), -EINVAL);
    ck_assert_int_eq(fab_pool_fail_peer(p, 2, -EHOSTDOWN), -ENOENT);
    ck_assert_int_eq(fab_pool_publish(p, 1, NULL, 3), -EINVAL);
    static uint8_t big[FAB_BLOB_MAX + 1];
    ck_assert_int_eq(fab_pool_publish(p, 1, big, sizeof(big)), -EINVAL);
    ck_assert_int_eq(fab_pool_publish(p, 1, NULL, 0), 0); /* empty blob */
    ck_assert_int_eq(fab_pool_unpublish(p, 1), 0);
    ck_assert_int_eq(fab_pool_unpublish(p, 1), -ENOENT);
    size_t len;
    char buf[8];
    ck_assert_int_eq(fab_pool_fetch(p, 2, 1, buf, sizeof(buf), NULL, 10, NULL),
                     -EINVAL);
    struct fab_error ferr = {.code = 12345};
    ck_assert_int_eq(fab_pool_fetch(p, 2, 1, NULL, 8, &len, 10, &ferr),
                     -EINVAL);
    ck_assert_int_eq(ferr.code, -EINVAL);
    ck_assert_int_eq(fab_pool_fetch(p, 9, 1, buf, sizeof(buf), &len, 10, &ferr),
                     -ENOENT);
    ck_assert_int_eq(ferr.code, -ENOENT);
    ck_assert_int_eq(fab_pool_fetch(p, 1, 1, buf, sizeof(buf), &len, 10, NULL),
                     -ENOENT); /* myself: not a borrowed peer */

    static uint8_t region[64];
    struct fab_mr *mr = (struct fab_mr *)SENTINEL;
    ck_assert_int_eq(fab_mr_register(p, NULL, 8, FAB_ACCESS_LOCAL, &mr),
                     -EINVAL);
    ck_assert_int_eq(fab_mr_register(p, region, 0, FAB_ACCESS_LOCAL, &mr),
                     -EINVAL);
    ck_assert_int_eq(fab_mr_register(p, region, 8, 0, &mr), -EINVAL);
    ck_assert_int_eq(fab_mr_register(p, (void *)(UINTPTR_MAX - 8), 64,
                                     FAB_ACCESS_LOCAL, &mr),
                     -EINVAL);
    ck_assert_int_eq(fab_mr_register(p, region, 8, FAB_ACCESS_LOCAL, NULL),
                     -EINVAL);

    struct fab_user *u = NULL;
    ck_assert_int_eq(fab_user_create(p, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(fab_user_create(p, NULL, NULL, &u), 0);
    struct fab_conn *c = (struct fab_conn *)SENTINEL;
    struct fab_error err;
    uint16_t port = fab_pool_port(p);
    ck_assert_int_eq(fab_borrow(u, 2, "127.0.0.1", port, 10, NULL, &err),
                     -EINVAL);
    ck_assert_int_eq(fab_borrow(u, 1, "127.0.0.1", port, 10, &c, &err),
                     -EINVAL); /* my own id */
    ck_assert_ptr_null(c);
    ck_assert_int_eq(fab_borrow(u, 2, NULL, port, 10, &c, &err), -EINVAL);
    ck_assert_int_eq(fab_borrow(u, 2, "", port, 10, &c, &err), -EINVAL);
    ck_assert_int_eq(fab_borrow(u, 2, "127.0.0.1", 0, 10, &c, &err), -EINVAL);
    char long_host[200];
    memset(long_host, 'h', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = 0;
    ck_assert_int_eq(fab_borrow(u, 2, long_host, port, 10, &c, &err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "too long"));
    /* our own port under another node id: the listener says who it is */
    ck_assert_int_eq(fab_borrow(u, 2, "127.0.0.1", port, 2000, &c, &err),
                     -EPROTO);
    ck_assert_ptr_null(c);
    /* nobody listens there */
    uint16_t free_port;
    ck_assert_int_eq(th_free_tcp_ports(&free_port, 1), 0);
    ck_assert_int_eq(fab_borrow(u, 3, "127.0.0.1", free_port, 2000, &c, &err),
                     -ECONNREFUSED);
    fab_release(u, NULL);
    fab_user_destroy(u);

    /* after all that, the pool still serves */
    ck_assert_int_eq(fab_pool_publish(p, 9, "ok", 2), 0);
    ck_assert_int_eq(fab_pool_progress(p), 0);
    ck_assert_int_eq(fab_pool_progress_wait(p, -5, 0), 0);
    struct fab_pool_stats st;
    fab_pool_get_stats(p, &st);
    ck_assert_uint_eq(st.live, 0);
    /* destroying the pool under a user is refused; in order it works */
    ck_assert_int_eq(fab_user_create(p, NULL, NULL, &u), 0);
    fab_pool_destroy(p);
    ck_assert_int_eq(fab_pool_publish(p, 10, "still", 5), 0);
    ck_assert_uint_eq(fab_pool_port(p), port);
    fab_user_destroy(u);
    fab_pool_destroy(p);
}
END_TEST

/* Two pools of this process connected: node 1 borrows node 2. */
struct pair {
    struct fab_pool *p1, *p2;
    struct fab_user *u1, *u2;
    struct fab_conn *c12;
};

static void pair_open(struct pair *pr, const struct fab_user_callbacks *cbs1,
                      void *ctx1)
{
    memset(pr, 0, sizeof(*pr));
    pr->p1 = tf_pool(1, 0, NULL);
    pr->p2 = tf_pool(2, 0, NULL);
    ck_assert_ptr_nonnull(pr->p1);
    ck_assert_ptr_nonnull(pr->p2);
    ck_assert_int_eq(fab_user_create(pr->p1, cbs1, ctx1, &pr->u1), 0);
    ck_assert_int_eq(fab_user_create(pr->p2, NULL, NULL, &pr->u2), 0);
    struct fab_error err;
    ck_assert_int_eq(fab_borrow(pr->u1, 2, "127.0.0.1", fab_pool_port(pr->p2),
                                5000, &pr->c12, &err),
                     0);
}

static void pair_close(struct pair *pr)
{
    fab_release(pr->u1, pr->c12);
    fab_user_destroy(pr->u1);
    fab_user_destroy(pr->u2);
    fab_pool_destroy(pr->p1);
    fab_pool_destroy(pr->p2);
}

static void mark_done(struct fab_op *op, int status)
{
    atomic_int *flag = op->ctx;
    atomic_store(flag, status == 0 ? 1 : status);
}

static bool progress_until_flag(struct fab_pool *pool, atomic_int *flag)
{
    return TH_WAIT_UNTIL(
        (fab_pool_progress_wait(pool, 100, 10), atomic_load(flag) != 0), 5000);
}

START_TEST(operations_refuse_bad_ranges_and_foreign_regions)
{
    struct pair pr;
    pair_open(&pr, NULL, NULL);
    static uint8_t src[256], dst[256], other[64];
    memset(src, 0x5a, sizeof(src));
    struct fab_mr *msrc, *mdst, *mforeign;
    ck_assert_int_eq(
        fab_mr_register(pr.p1, src, sizeof(src), FAB_ACCESS_LOCAL, &msrc), 0);
    ck_assert_int_eq(fab_mr_register(pr.p2, dst, sizeof(dst),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &mdst),
                     0);
    ck_assert_int_eq(fab_mr_register(pr.p2, other, sizeof(other),
                                     FAB_ACCESS_LOCAL, &mforeign),
                     0);
    struct fab_mr_desc d;
    fab_mr_get_desc(mdst, &d);
    struct fab_conn *c = pr.c12;
    ck_assert_uint_eq(fab_conn_node_id(c), 2);
    ck_assert_int_eq(fab_conn_status(c), 0);

    ck_assert_int_eq(fab_write(c, NULL, 0, 8, &d, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(fab_write(c, msrc, 0, 8, NULL, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(fab_write(c, msrc, 0, 8, &d, 0, 0x80, NULL), -EINVAL);
    ck_assert_int_eq(fab_write(c, msrc, 250, 8, &d, 0, 0, NULL), -ERANGE);
    ck_assert_int_eq(fab_write(c, msrc, SIZE_MAX, 2, &d, 0, 0, NULL), -ERANGE);
    ck_assert_int_eq(fab_write(c, msrc, 0, SIZE_MAX, &d, 0, 0, NULL), -ERANGE);
    ck_assert_int_eq(fab_write(c, msrc, 0, 8, &d, 252, 0, NULL), -ERANGE);
    ck_assert_int_eq(fab_write(c, msrc, 0, 8, &d, UINT64_MAX - 2, 0, NULL),
                     -ERANGE);
    /* a region of another pool (another domain) as the source */
    ck_assert_int_eq(fab_write(c, mforeign, 0, 8, &d, 0, 0, NULL), -EINVAL);
    ck_assert_int_eq(fab_writedata(c, mforeign, 0, 8, &d, 0, 1, 0, NULL),
                     -EINVAL);
    ck_assert_int_eq(fab_send(c, mforeign, 0, 8, NULL), -EINVAL);
    ck_assert_int_eq(fab_send(c, NULL, 0, 8, NULL), -EINVAL);
    ck_assert_int_eq(fab_send(c, msrc, 200, 100, NULL), -ERANGE);
    ck_assert_int_eq(fab_send_flags(c, msrc, 0, 8, FAB_WRITE_FENCE, NULL),
                     -EINVAL);
    ck_assert_int_eq(fab_recv(c, msrc, 0, 300, NULL), -ERANGE);
    ck_assert_uint_eq(fab_conn_outstanding(c), 0);

    /* the connection still works: the bytes land */
    struct tf_progress peer;
    tf_progress_start(&peer, pr.p2);
    atomic_int flag = 0;
    struct fab_op op = {.done = mark_done, .ctx = &flag};
    ck_assert_int_eq(
        fab_write(c, msrc, 0, 64, &d, 16, FAB_WRITE_DELIVERED, &op), 0);
    ck_assert(progress_until_flag(pr.p1, &flag));
    ck_assert_int_eq(atomic_load(&flag), 1);
    tf_progress_stop(&peer);
    ck_assert_int_eq(memcmp(dst + 16, src, 64), 0);

    /* a failed connection refuses at once, with its reason */
    ck_assert_int_eq(fab_pool_fail_peer(pr.p1, 2, -EHOSTDOWN), 0);
    ck_assert_int_eq(fab_conn_status(c), -EHOSTDOWN);
    ck_assert_int_eq(fab_write(c, msrc, 0, 8, &d, 0, 0, NULL), -EHOSTDOWN);
    ck_assert_int_eq(fab_send(c, msrc, 0, 8, NULL), -EHOSTDOWN);
    struct fab_conn *again = (struct fab_conn *)SENTINEL;
    ck_assert_int_eq(fab_borrow(pr.u1, 2, "127.0.0.1", fab_pool_port(pr.p2),
                                100, &again, NULL),
                     -EHOSTDOWN);
    ck_assert_ptr_null(again);
    /* a borrow of another user's connection is not ours to release */
    fab_release(pr.u2, c);
    ck_assert_int_eq(fab_conn_status(c), -EHOSTDOWN);

    fab_mr_destroy(msrc);
    fab_mr_destroy(mdst);
    fab_mr_destroy(mforeign);
    pair_close(&pr);
}
END_TEST

/* fab_pool_destroy from a callback is forbidden: it must be refused, not
 * free the pool under the running callback or join its own thread. */
struct destroyer {
    struct fab_pool *pool;
    atomic_int calls;
};

static void destroy_in_done(struct fab_op *op, int status)
{
    (void)status;
    struct destroyer *d = op->ctx;
    fab_pool_destroy(d->pool);
    atomic_fetch_add(&d->calls, 1);
}

static void destroy_on_failure(void *ctx, uint32_t node_id, int reason)
{
    (void)node_id;
    (void)reason;
    struct destroyer *d = ctx;
    fab_pool_destroy(d->pool);
    atomic_fetch_add(&d->calls, 1);
}

static bool one_call(void *arg)
{
    return atomic_load(&((struct destroyer *)arg)->calls) > 0;
}

START_TEST(destroy_from_callbacks_is_refused)
{
    struct destroyer dfail = {0}, ddone = {0};
    struct fab_user_callbacks cbs = {.on_failure = destroy_on_failure};
    struct pair pr;
    pair_open(&pr, &cbs, &dfail);
    dfail.pool = pr.p1;
    ddone.pool = pr.p1;
    /* op->done runs on this (progressing) thread */
    static uint8_t src[64], dst[64];
    struct fab_mr *msrc, *mdst;
    ck_assert_int_eq(
        fab_mr_register(pr.p1, src, sizeof(src), FAB_ACCESS_LOCAL, &msrc), 0);
    ck_assert_int_eq(fab_mr_register(pr.p2, dst, sizeof(dst),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &mdst),
                     0);
    struct fab_mr_desc d;
    fab_mr_get_desc(mdst, &d);
    struct fab_op op = {.done = destroy_in_done, .ctx = &ddone};
    ck_assert_int_eq(fab_write(pr.c12, msrc, 0, 8, &d, 0, 0, &op), 0);
    ck_assert(TH_WAIT_UNTIL(
        (fab_pool_progress_wait(pr.p1, 100, 10), one_call(&ddone)), 5000));
    /* on_failure runs on the pool's own thread */
    ck_assert_int_eq(fab_pool_fail_peer(pr.p1, 2, -EHOSTDOWN), 0);
    ck_assert(th_wait_until(one_call, &dfail, 5000));
    /* the pool survived both */
    ck_assert_uint_eq(fab_pool_node_id(pr.p1), 1);
    ck_assert_int_eq(fab_pool_publish(pr.p1, 3, "x", 1), 0);
    fab_mr_destroy(msrc);
    fab_mr_destroy(mdst);
    pair_close(&pr);
}
END_TEST

/* fab_borrow from on_failure (the pool thread) would wait for events only
 * that thread handles: refused at once instead of stalling it. */
struct borrower {
    struct fab_user *user;
    uint16_t port;
    atomic_int rc;
    atomic_bool called;
};

static void borrow_on_failure(void *ctx, uint32_t node_id, int reason)
{
    (void)node_id;
    (void)reason;
    struct borrower *b = ctx;
    struct fab_conn *c = NULL;
    int rc = fab_borrow(b->user, 3, "127.0.0.1", b->port, 2000, &c, NULL);
    if (rc == 0)
        fab_release(b->user, c);
    atomic_store(&b->rc, rc);
    atomic_store(&b->called, true);
}

static bool borrower_called(void *arg)
{
    return atomic_load(&((struct borrower *)arg)->called);
}

START_TEST(borrow_from_on_failure_is_refused)
{
    struct borrower b = {0};
    struct fab_user_callbacks cbs = {.on_failure = borrow_on_failure};
    struct pair pr;
    pair_open(&pr, &cbs, &b);
    struct fab_pool *p3 = tf_pool(3, 0, NULL);
    ck_assert_ptr_nonnull(p3);
    b.user = pr.u1;
    b.port = fab_pool_port(p3);
    ck_assert_int_eq(fab_pool_fail_peer(pr.p1, 2, -EHOSTDOWN), 0);
    ck_assert(th_wait_until(borrower_called, &b, 5000));
    ck_assert_int_eq(atomic_load(&b.rc), -EDEADLK);
    /* from an ordinary thread the same borrow works */
    struct fab_conn *c = NULL;
    ck_assert_int_eq(fab_borrow(pr.u1, 3, "127.0.0.1", b.port, 5000, &c, NULL),
                     0);
    fab_release(pr.u1, c);
    pair_close(&pr);
    fab_pool_destroy(p3);
}
END_TEST

/* on_failure runs with no library lock held: a caller lock held around
 * fab_user_destroy (of another user, from another thread) and also taken
 * inside on_failure does not deadlock.  (It did while on_failure ran under
 * the pool's cb_lock, which fab_user_destroy takes.) */
struct lock_taker {
    pthread_mutex_t mu;
    atomic_bool entered, done;
};

static void lock_on_failure(void *ctx, uint32_t node_id, int reason)
{
    (void)node_id;
    (void)reason;
    struct lock_taker *t = ctx;
    atomic_store(&t->entered, true);
    pthread_mutex_lock(&t->mu);
    pthread_mutex_unlock(&t->mu);
    atomic_store(&t->done, true);
}

struct destroy_job {
    struct fab_user *user;
    atomic_bool done;
};

static void *destroy_thread(void *arg)
{
    struct destroy_job *j = arg;
    fab_user_destroy(j->user);
    atomic_store(&j->done, true);
    return NULL;
}

START_TEST(caller_lock_taken_in_on_failure_does_not_deadlock)
{
    struct lock_taker t = {0};
    pthread_mutex_init(&t.mu, NULL);
    struct fab_user_callbacks cbs = {.on_failure = lock_on_failure};
    struct pair pr;
    pair_open(&pr, &cbs, &t);
    struct fab_user *other;
    ck_assert_int_eq(fab_user_create(pr.p1, NULL, NULL, &other), 0);

    pthread_mutex_lock(&t.mu);
    ck_assert_int_eq(fab_pool_fail_peer(pr.p1, 2, -EHOSTDOWN), 0);
    ck_assert(TH_WAIT_UNTIL(atomic_load(&t.entered), 5000));
    /* on_failure now waits for t.mu, which we hold around a libfab call */
    struct destroy_job j = {.user = other};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, destroy_thread, &j), 0);
    if (!TH_WAIT_UNTIL(atomic_load(&j.done), 5000)) {
        /* deadlocked: nothing can be cleaned up */
        fprintf(stderr, "fab_user_destroy blocked by a running on_failure\n");
        _exit(1);
    }
    pthread_join(th, NULL);
    pthread_mutex_unlock(&t.mu);
    ck_assert(TH_WAIT_UNTIL(atomic_load(&t.done), 5000));
    pair_close(&pr);
    pthread_mutex_destroy(&t.mu);
}
END_TEST

/* Issue 11's contract, the same cases as every library's contract test:
 * options sizes (short, zeroed, longer), NULL options and out, strerror of
 * every code both signs and of an unrelated errno, getters on NULL, a
 * callback that calls back into the library.  (libfab has no removable
 * handle a caller could hold stale: users, connections and regions are
 * the caller's until it gives them back.) */
struct again {
    struct fab_conn *conn;
    struct fab_mr *src;
    struct fab_mr_desc dst;
    struct fab_op second;
    atomic_int rc;
    atomic_int done;
};

static void count_done(struct fab_op *op, int status)
{
    struct again *a = op->ctx;
    (void)status;
    atomic_fetch_add(&a->done, 1);
}

static void write_again_in_done(struct fab_op *op, int status)
{
    struct again *a = op->ctx;
    (void)status;
    /* a completion may post on the same connection */
    a->second = (struct fab_op){.done = count_done, .ctx = a};
    atomic_store(&a->rc,
                 fab_write(a->conn, a->src, 8, 8, &a->dst, 8, 0, &a->second));
    atomic_fetch_add(&a->done, 1);
}

START_TEST(contract)
{
    /* strerror: both signs, every errno, an unrelated one is the
     * system's text */
    for (int e = 1; e < 134; e++) {
        ck_assert_str_eq(fab_strerror(e), fab_strerror(-e));
        if (strerrordesc_np(e))
            ck_assert_msg(strcmp(fab_strerror(e), "unknown error") != 0,
                          "errno %d", e);
    }
    ck_assert_str_eq(fab_strerror(EDOM), strerrordesc_np(EDOM));
    ck_assert_str_eq(fab_strerror(-EDOM), strerrordesc_np(EDOM));

    /* options: short and zeroed refused, NULL means defaults, a longer
     * struct accepted only with zero extra bytes */
    struct fab_error err;
    struct fab_pool *p = SENTINEL;
    struct fab_options o;
    silent_options(&o, 1);
    o.size = offsetof(struct fab_options, node_id);
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);
    ck_assert_ptr_null(p);
    memset(&o, 0, sizeof(o));
    p = SENTINEL;
    ck_assert_int_eq(fab_pool_create(&o, &p, &err), -EINVAL);
    ck_assert_ptr_null(p);
    struct {
        struct fab_options o;
        uint64_t newer[4];
    } big;
    memset(&big, 0, sizeof(big));
    silent_options(&big.o, 1);
    big.o.size = sizeof(big);
    ck_assert_int_eq(fab_pool_create(&big.o, &p, &err), 0);
    fab_pool_destroy(p);
    big.newer[3] = 1;
    p = SENTINEL;
    ck_assert_int_eq(fab_pool_create(&big.o, &p, &err), -EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_int_eq(fab_pool_create(NULL, &p, NULL), 0);
    fab_pool_destroy(p);
    /* NULL out */
    silent_options(&o, 1);
    ck_assert_int_eq(fab_pool_create(&o, NULL, &err), -EINVAL);
    ck_assert_int_eq(err.code, -EINVAL);

    /* getters on NULL: sentinels that are never valid values */
    ck_assert_uint_eq(fab_pool_port(NULL), 0);
    ck_assert_uint_eq(fab_pool_node_id(NULL), UINT32_MAX);
    ck_assert_uint_eq(fab_conn_node_id(NULL), UINT32_MAX);
    ck_assert_int_eq(fab_conn_status(NULL), -EINVAL);
    ck_assert_uint_eq(fab_conn_outstanding(NULL), 0);
    ck_assert_uint_eq(fab_user_tag(NULL), 0);
    ck_assert_uint_eq(fab_mr_len(NULL), 0);
    ck_assert_ptr_null(fab_mr_addr(NULL));
    ck_assert_int_eq(fab_pool_wait_fd(NULL), -EINVAL);

    /* a completion that calls back into the library */
    struct pair pr;
    pair_open(&pr, NULL, NULL);
    static uint8_t src[64], dst[64];
    static struct again a;
    memset(&a, 0, sizeof(a));
    atomic_store(&a.rc, 1);
    struct fab_mr *mdst;
    ck_assert_int_eq(
        fab_mr_register(pr.p1, src, sizeof(src), FAB_ACCESS_LOCAL, &a.src), 0);
    ck_assert_int_eq(fab_mr_register(pr.p2, dst, sizeof(dst),
                                     FAB_ACCESS_LOCAL | FAB_ACCESS_REMOTE_WRITE,
                                     &mdst),
                     0);
    fab_mr_get_desc(mdst, &a.dst);
    a.conn = pr.c12;
    struct fab_op op = {.done = write_again_in_done, .ctx = &a};
    ck_assert_int_eq(fab_write(pr.c12, a.src, 0, 8, &a.dst, 0, 0, &op), 0);
    ck_assert(TH_WAIT_UNTIL(
        (fab_pool_progress_wait(pr.p1, 100, 10), atomic_load(&a.done) == 2),
        5000));
    ck_assert_int_eq(atomic_load(&a.rc), 0);
    fab_mr_destroy(a.src);
    fab_mr_destroy(mdst);
    pair_close(&pr);
}
END_TEST

/* fab_rendezvous: two pools in this process meet (each borrows the other,
 * fetches its blob, the check compares); a member that never listens is
 * named when time runs out. */
struct meeting {
    struct fab_pool *pool;
    struct fab_user *user;
    struct fab_member members[3];
    size_t n;
    int timeout_ms;
    struct fab_conn *conns[3];
    struct fab_error err;
    int checks;
    int rc;
};

static int meet_check(void *ctx, size_t index, const void *blob, size_t len,
                      struct fab_error *err)
{
    struct meeting *m = ctx;
    (void)err;
    m->checks++;
    char want[16];
    snprintf(want, sizeof(want), "node %u", m->members[index].node_id);
    if (len != strlen(want) + 1 || memcmp(blob, want, len) != 0)
        return -EPROTO;
    return FAB_RENDEZVOUS_DONE;
}

static void *meet_thread(void *arg)
{
    struct meeting *m = arg;
    static const struct fab_rendezvous_ops ops = {.check = meet_check};
    m->rc = fab_rendezvous(m->user, m->members, m->n, NULL, 77, m->timeout_ms,
                           &ops, m, m->conns, &m->err);
    return NULL;
}

static size_t waited_for;

static int give_up(void *ctx, size_t index, struct fab_error *err)
{
    (void)ctx;
    waited_for = index;
    err->code = -ECANCELED;
    snprintf(err->msg, sizeof(err->msg), "given up on %zu", index);
    return -ECANCELED;
}

START_TEST(rendezvous_meets_and_names_the_missing_peer)
{
    struct meeting m[2];
    memset(m, 0, sizeof(m));
    for (int i = 0; i < 2; i++) {
        m[i].pool = tf_pool((uint32_t)i + 1, 0, NULL);
        ck_assert_ptr_nonnull(m[i].pool);
        ck_assert_int_eq(fab_user_create(m[i].pool, NULL, NULL, &m[i].user), 0);
        char blob[16];
        snprintf(blob, sizeof(blob), "node %d", i + 1);
        ck_assert_int_eq(
            fab_pool_publish(m[i].pool, 77, blob, strlen(blob) + 1), 0);
    }
    for (int i = 0; i < 2; i++) {
        m[i].n = 2;
        m[i].timeout_ms = 10000;
        for (int j = 0; j < 2; j++)
            m[i].members[j] = (struct fab_member){(uint32_t)j + 1, "127.0.0.1",
                                                  fab_pool_port(m[j].pool)};
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, meet_thread, &m[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(m[i].rc, 0);
        ck_assert_int_eq(m[i].checks, 1);
        ck_assert_ptr_null(m[i].conns[i]);
        ck_assert_ptr_nonnull(m[i].conns[1 - i]);
        fab_release(m[i].user, m[i].conns[1 - i]);
        m[i].conns[1 - i] = NULL;
    }
    /* node 3 listens nowhere (a port nobody has): refused until the
     * deadline, then named */
    m[0].n = 3;
    m[0].timeout_ms = 300;
    uint16_t nobody = 0;
    ck_assert_int_eq(th_free_tcp_ports(&nobody, 1), 0);
    m[0].members[2] = (struct fab_member){3, "127.0.0.1", nobody};
    m[0].checks = 0;
    meet_thread(&m[0]);
    ck_assert_int_eq(m[0].rc, -ETIMEDOUT);
    ck_assert_int_eq(m[0].err.code, -ETIMEDOUT);
    ck_assert_msg(strstr(m[0].err.msg, "node 3") != NULL, "%s", m[0].err.msg);
    if (m[0].conns[1])
        fab_release(m[0].user, m[0].conns[1]);
    m[0].conns[1] = NULL;
    /* A `waiting` callback hears of the refusals too (every slice) and
     * may end the rendezvous long before the deadline. */
    static const struct fab_rendezvous_ops quit = {.check = meet_check,
                                                   .waiting = give_up};
    m[0].timeout_ms = 20000;
    m[0].checks = 0;
    memset(&m[0].err, 0, sizeof(m[0].err));
    waited_for = SIZE_MAX;
    int64_t t0 = th_now_ms();
    int rc = fab_rendezvous(m[0].user, m[0].members, 3, NULL, 77, 20000, &quit,
                            &m[0], m[0].conns, &m[0].err);
    ck_assert_int_eq(rc, -ECANCELED);
    ck_assert_uint_eq(waited_for, 2);
    ck_assert_msg(th_now_ms() - t0 < 10000, "gave up after %lld ms",
                  (long long)(th_now_ms() - t0));
    if (m[0].conns[1])
        fab_release(m[0].user, m[0].conns[1]);
    /* bad arguments */
    static const struct fab_rendezvous_ops none = {0};
    ck_assert_int_eq(fab_rendezvous(m[0].user, m[0].members, 2, NULL, 77, 100,
                                    &none, NULL, m[0].conns, &m[0].err),
                     -EINVAL);
    ck_assert_int_eq(fab_rendezvous(NULL, m[0].members, 2, NULL, 77, 100, &none,
                                    NULL, m[0].conns, NULL),
                     -EINVAL);
    for (int i = 0; i < 2; i++) {
        fab_user_destroy(m[i].user);
        fab_pool_destroy(m[i].pool);
    }
}
END_TEST

Suite *fab_misuse_suite(void)
{

    Suite *s = suite_create("fab-misuse");
    TCase *tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, strerror_of_anything);
    tcase_add_test(tc, default_log_line_names_level);
    tcase_add_test(tc, create_refuses_bad_options);
    tcase_add_test(tc, null_pool_and_arguments);
    tcase_add_test(tc, pool_refuses_bad_calls_and_stays_usable);
    tcase_add_test(tc, operations_refuse_bad_ranges_and_foreign_regions);
    tcase_add_test(tc, destroy_from_callbacks_is_refused);
    tcase_add_test(tc, borrow_from_on_failure_is_refused);
    tcase_add_test(tc, caller_lock_taken_in_on_failure_does_not_deadlock);
    tcase_add_test(tc, contract);
    tcase_add_test(tc, rendezvous_meets_and_names_the_missing_peer);
    suite_add_tcase(s, tc);
    return s;
}
