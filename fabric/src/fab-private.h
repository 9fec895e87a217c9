/* Internal declarations of libfab. */
#ifndef DERECHO_FAB_PRIVATE_H
#define DERECHO_FAB_PRIVATE_H

#include "fab/fab.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <syslog.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_eq.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#define FAB__ADDR_MAX 128       /* fabric address bytes in a bootstrap frame */
#define FAB__MAGIC 0x44464142u  /* "DFAB" */
#define FAB__RX_DATA_CREDITS 64 /* receives kept posted under FI_RX_CQ_DATA */
#define FAB__CQ_SIZE_MAX (1u << 20) /* largest options.cq_size accepted */
#define FAB__NONCE_LEN 32           /* bytes of an authentication nonce */
#define FAB__MAC_LEN 32             /* HMAC-SHA-256 */
#define FAB__PENDING_PER_NODE 4     /* answered HELLOs kept per node id */
/* A borrow that finds an answered HELLO of its peer waits this long for
 * the peer's connection request before dialing itself (the two attempts
 * would otherwise cross); a spoofed HELLO costs a borrow no more.  With a
 * group key HELLOs cannot be spoofed: it waits up to connect_timeout_ms. */
#define FAB__PENDING_GRACE_MS 250
/* Size of the first version of struct fab_options: smaller is refused,
 * fields past it take their defaults. */
#define FAB__OPTIONS_V1_SIZE offsetof(struct fab_options, auth_key)

/* ---- bootstrap frames (wire.c; the only file that knows the encoding) -- */

enum fab__msg_type {
    FAB__MSG_HELLO = 1,           /* dialer -> acceptor */
    FAB__MSG_REPLY = 2,           /* acceptor -> dialer */
    FAB__MSG_FETCH = 3,           /* blob request */
    FAB__MSG_FETCH_REPLY = 4,     /* blob or not-found */
    FAB__MSG_CHALLENGE = 5,       /* dialer's nonce (authenticated pools) */
    FAB__MSG_CHALLENGE_REPLY = 6, /* acceptor's nonce + its MAC */
};

enum fab__status {
    FAB__ST_OK = 0,
    FAB__ST_MISMATCH = 1,  /* field says which */
    FAB__ST_DUPLICATE = 2, /* acceptor is dialing us and wins: wait */
    FAB__ST_BUSY = 3,      /* acceptor still holds a connection to us */
    FAB__ST_NOTFOUND = 4,  /* fetch: no blob under that key yet */
};

enum fab__field {
    FAB__F_NONE = 0,
    FAB__F_MAGIC,
    FAB__F_VERSION,
    FAB__F_ENDIAN,
    FAB__F_WORDSIZE,
    FAB__F_NODE_ID,
    FAB__F_FINGERPRINT,
    FAB__F_TYPE,
    FAB__F_AUTH, /* authentication refused (no key, other key) */
};

/* One decoded frame (any type; unused fields zero). */
struct fab__frame {
    uint32_t magic;
    uint16_t version;
    uint8_t type;
    uint8_t endian; /* 1 little, 2 big */
    uint8_t word_size;
    uint8_t status;
    uint8_t field;
    uint32_t src_node;
    uint32_t dst_node;
    uint16_t port; /* sender's bootstrap port */
    uint64_t fingerprint;
    uint64_t token; /* hello/reply: connection token; fetch: key */
    uint16_t addr_len;
    uint8_t addr[FAB__ADDR_MAX];
    uint32_t blob_len;
    const uint8_t *blob; /* points into the decode buffer */
};

/* Largest encoded frame, length prefix included. */
#define FAB__FRAME_MAX (64 + FAB__ADDR_MAX + FAB_BLOB_MAX)

/* Fills the identity fields of a frame for this machine. */
void fab__frame_init(struct fab__frame *f, uint8_t type);
/* Encodes f (with a 4-byte length prefix) into buf; returns bytes or
 * -ENOSPC. */
int fab__frame_encode(const struct fab__frame *f, uint8_t *buf, size_t cap);
/* Decodes one frame body (no length prefix).  -EBADMSG when malformed;
 * identity fields are not judged here (fab__frame_check). */
int fab__frame_decode(const uint8_t *buf, size_t len, struct fab__frame *f);
/* Compares identity fields with ours; returns the first differing field
 * (FAB__F_NONE when compatible) and writes a message. */
enum fab__field fab__frame_check(const struct fab__frame *f,
                                 uint64_t fingerprint, char *msg, size_t cap);
const char *fab__field_name(enum fab__field field);

/* ---- bootstrap server, pending HELLOs, authentication (boot.c) ------ */

/* A HELLO we answered OK whose connection request has not come yet.  It
 * holds no connection: only a request carrying (node_id, token) turns it
 * into one, so an unfinished (or spoofed) bootstrap displaces nothing. */
struct fab__pending {
    uint32_t node_id;
    uint16_t port; /* the dialer's bootstrap port */
    uint64_t token;
    int64_t created_ms;
    char host[64];
};

/* One accepted bootstrap socket, served by the pool thread as a
 * non-blocking state machine (read a frame, answer it, maybe read one
 * more after a challenge, close). */
struct fab__bs {
    struct fab__bs *prev, *next; /* pool->bs_head: newest first */
    int fd;
    bool sending;          /* flushing out[], else reading in[] */
    bool close_after_send; /* the answer is the last frame */
    bool challenged;       /* our challenge reply went out */
    bool dead;             /* closed; freed at the end of the loop turn */
    uint32_t peer_node;    /* the challenger's node id */
    int64_t deadline_ms;
    size_t in_len, out_len, out_off;
    char peer_ip[64];
    uint8_t nonce_d[FAB__NONCE_LEN], nonce_a[FAB__NONCE_LEN];
    uint8_t in[4 + FAB__FRAME_MAX];
    uint8_t out[FAB__FRAME_MAX];
};

/* ---- objects ----------------------------------------------------------- */

enum fab__conn_state {
    FAB__CONN_DIALING,    /* our borrow runs the bootstrap */
    FAB__CONN_ACCEPTING,  /* peer's bootstrap accepted; waiting CONNREQ */
    FAB__CONN_CONNECTING, /* endpoint exists; waiting FI_CONNECTED */
    FAB__CONN_LIVE,
    FAB__CONN_FAILED,
};

struct fab_conn {
    struct fab_pool *pool;
    uint32_t node_id;
    enum fab__conn_state state; /* pool->lock */
    _Atomic int status;         /* 0 or failure reason; read lock-free */
    bool reported;              /* failure fanned out (pool->lock) */
    bool waiting_incoming;      /* our dial lost: the peer dials us */
    bool in_progress_set;       /* in pool->progress_conns */
    int refs;                   /* borrows (pool->lock) */
    uint64_t token;             /* matches the peer's CONNREQ */
    int64_t deadline_ms;        /* ACCEPTING entries expire */
    int connect_err;            /* set when connecting failed */
    char host[64];              /* bootstrap address of the peer */
    uint16_t port;
    struct fid_ep *ep;
    struct fid_cq *cq;
    int cq_fd;
    _Atomic size_t outstanding;
    struct fab_op anon_op; /* context of counted operations without op */
    /* Context of writes posted without op and without a local completion
     * (FI_SELECTIVE_COMPLETION): only their errors come back. */
    struct fab_op silent_op;
    struct fab_op rx_data_ops[FAB__RX_DATA_CREDITS];
    struct fab_conn *next; /* pool->conns list */
};

struct fab_borrow_rec {
    struct fab_conn *conn;
    int count;
    bool reported;
    struct fab_borrow_rec *next;
};

struct fab_user {
    struct fab_pool *pool;
    struct fab_user_callbacks cbs;
    void *ctx;
    struct fab_borrow_rec *borrows; /* pool->lock */
    struct fab_user *next;
    uint32_t tag; /* claimed data tag, 0: none (pool->lock) */
    /* on_failure calls of this user collected and not yet finished
     * (pool->lock); fab_user_destroy waits until it is 0. */
    int in_cb;
    bool dying;          /* fab_user_destroy began: no new calls */
    bool free_when_idle; /* destroyed from its own callback: the pool
                          * thread frees it when in_cb reaches 0 */
};

struct fab_blob {
    uint64_t key;
    size_t len;
    struct fab_blob *next;
    uint8_t bytes[];
};

struct fab_mr {
    struct fab_pool *pool;
    struct fid_mr *mr;
    void *buf;
    size_t len;
    void *desc; /* fi_mr_desc under FI_MR_LOCAL, else NULL */
    struct fab_mr_desc remote;
};

struct fab_pool {
    struct fab_options opts;
    char listen_addr[64];
    char provider[32];
    char domain_name[64];
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_eq *eq;
    int eq_fd;
    struct fid_pep *pep;
    uint8_t pep_addr[FAB__ADDR_MAX];
    size_t pep_addr_len;
    struct fab_mr_rules rules;
    bool ordered_writes;
    bool fence;
    bool manual_progress;
    uint64_t next_key;

    int listen_fd; /* bootstrap TCP listener */
    uint16_t port;
    int wake_fd;      /* eventfd: wakes the pool thread */
    int epoll_fd;     /* pool thread: listener, EQ, wake_fd */
    int user_wait_fd; /* progress waiters: every CQ fd + user_wake_fd */
    int user_wake_fd; /* eventfd for fab_pool_wake */
    pthread_t thread;
    bool thread_started;
    _Atomic bool stopping;

    /* Lock order: progress_lock -> lock.  No lock is held while a user
     * callback runs; cb_cond (with lock) signals a user's in_cb drop. */
    pthread_cond_t cb_cond;
    pthread_mutex_t progress_lock; /* one progressing thread at a time */
    _Atomic(pthread_t) progress_owner;
    _Atomic bool progress_owned;
    pthread_mutex_t lock; /* everything else */
    pthread_cond_t cond;  /* connection state changes */
    struct fab_conn *conns;
    struct fab_user *users;
    struct fab_blob *blobs;
    /* Snapshot of conns with a CQ, read by the progressing thread under
     * progress_lock; changed under progress_lock + lock. */
    struct fab_conn **progress_conns;
    size_t n_progress, cap_progress;
    size_t progress_next; /* fab_pool_progress starts here (progress_lock) */
    _Atomic bool failure_pending;
    struct fab_pool_stats stats;

    /* Bootstrap server (pool thread only). */
    struct fab__bs *bs_head, *bs_tail, *bs_dead;
    uint32_t n_bs;
    int boot_timeout_ms;
    /* Answered HELLOs (pool->lock). */
    struct fab__pending *pending;
    uint32_t n_pending;
    /* Group key copy (auth_key_len 0: none). */
    uint8_t auth_key[FAB_AUTH_KEY_MAX];
    size_t auth_key_len;
    /* Tagged completion data (data.c): tag -> user.  Set under lock,
     * cleared under progress_lock + lock (fab_user_destroy), read by the
     * progressing thread (which holds progress_lock). */
    _Atomic(struct fab_user *) tag_users[FAB_DATA_TAG_MAX + 1];
    uint32_t tag_next;                  /* next-fit cursor (lock) */
    _Atomic size_t untagged_data_users; /* on_remote_data, no tag */
};

/* util.c */
void fab__log(const struct fab_pool *pool, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fab__set_error(struct fab_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int64_t fab__now_ms(void);
int64_t fab__now_us(void);
/* *ts = CLOCK_MONOTONIC time wait_ms from now (pthread_cond_timedwait on a
 * condition variable of that clock). */
void fab__abstime_after_ms(int64_t wait_ms, struct timespec *ts);
int fab__fi_err(ssize_t ret); /* libfabric ret -> our convention */

/* socket helpers (sock.c) */
int fab__sock_listen(const char *addr, uint16_t port, int *fd, uint16_t *bound);
int fab__sock_connect(const char *host, uint16_t port, int64_t deadline_ms,
                      int *fd);
int fab__sock_send_all(int fd, const void *buf, size_t len,
                       int64_t deadline_ms);
/* Reads one length-prefixed frame body into buf; returns its length. */
int fab__sock_recv_frame(int fd, uint8_t *buf, size_t cap, int64_t deadline_ms);
int fab__send_frame(int fd, const struct fab__frame *f, int64_t deadline_ms);

/* conn.c */
int fab__conn_open_ep(struct fab_pool *pool, struct fab_conn *conn,
                      struct fi_info *info);
void fab__conn_close(struct fab_pool *pool, struct fab_conn *conn);
void fab__conn_fail_locked(struct fab_pool *pool, struct fab_conn *conn,
                           int reason);
struct fab_conn *fab__conn_find(struct fab_pool *pool, uint32_t node_id);
void fab__conn_unlink_free(struct fab_pool *pool, struct fab_conn *conn);
void fab__progress_add(struct fab_pool *pool, struct fab_conn *conn);
void fab__progress_remove(struct fab_pool *pool, struct fab_conn *conn);

/* boot.c: the listener side (pool thread) */
void fab__boot_accept(struct fab_pool *pool);
void fab__boot_event(struct fab_pool *pool, struct fab__bs *s);
/* Closes sessions past their deadline, frees closed ones. */
void fab__boot_tick(struct fab_pool *pool, int64_t now_ms);
void fab__boot_free_all(struct fab_pool *pool);
/* Pending HELLOs (pool->lock held). */
int fab__pending_find(struct fab_pool *pool, uint32_t node_id, uint64_t token,
                      int64_t now_ms);
void fab__pending_drop_node(struct fab_pool *pool, uint32_t node_id);
void fab__pending_expire(struct fab_pool *pool, int64_t now_ms);
/* Until when a borrow of node_id that started at start_ms should wait for
 * an answered HELLO of that node to become a connection; 0: do not. */
int64_t fab__pending_grace(struct fab_pool *pool, uint32_t node_id,
                           int64_t start_ms, int64_t now_ms);
/* boot.c: the dialer side.  One request over a fresh TCP connection to
 * host:port (node peer), authenticated first when the pool has a key; req's
 * identity fields are filled here.  0: *rep holds the decoded answer (blob
 * pointing into rbuf) for the caller to judge; -EACCES (err set, one log
 * line) when authentication fails either way; else the socket or frame
 * error (err not set). */
int fab__boot_request(struct fab_pool *pool, const char *host, uint16_t port,
                      uint32_t peer, struct fab__frame *req, uint8_t *rbuf,
                      size_t rcap, struct fab__frame *rep, int64_t deadline_ms,
                      struct fab_error *err);

/* pool.c */
void fab__pool_kick(struct fab_pool *pool);
struct fab_conn *fab__conn_new_locked(struct fab_pool *pool, uint32_t node_id);
void fab__report_failures(struct fab_pool *pool);
void fab__handle_eq(struct fab_pool *pool);

/* data.c */
size_t fab__cq_data_size(const struct fab_pool *pool); /* in force */
void fab__data_user_added(struct fab_pool *pool, struct fab_user *user);
/* pool->lock and progress_lock held. */
void fab__data_user_removed(struct fab_pool *pool, struct fab_user *user);
/* A data word landed on conn (progress_lock held). */
void fab__deliver_data(struct fab_pool *pool, struct fab_conn *conn,
                       uint64_t data);

/* ops.c */
int fab__post_rx_data(struct fab_conn *conn, struct fab_op *op);
void fab__progress_idle(struct fab_pool *pool);

#endif
