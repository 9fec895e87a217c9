/* Internal declarations of librdmc. */
#ifndef DERECHO_RDMC_PRIVATE_H
#define DERECHO_RDMC_PRIVATE_H

#include "rdmc/rdmc.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>

#define RDMC__DATA_INFLIGHT 32 /* block writes in flight per group */
#define RDMC__NKINDS 3         /* HEADER, READY, DONE control slots */
/* rdmc_group_destroy waits at most this long for every live peer's CLOSE
 * (it returns as soon as they all arrived). */
#define RDMC__FAILED_GRACE_MS 500
/* A CLOSE is a DONE data word with this block field (a DONE's is 0). */
#define RDMC__CLOSE_MARK 1u

struct rdmc_group;

/* The first struct rdmc_options ended with log_level. */
#define RDMC__OPTIONS_V1_SIZE offsetof(struct rdmc_options, incoming_mr)

/* Control records as groups write them: version 2, a READY carries the
 * offset in its region where the message goes (bytes 40..47).  The public
 * rdmc_ctrl_encode/decode keep version 1 (offset 0, bytes zero). */
#define RDMC__CTRL_VERSION 2
int rdmc__ctrl_encode(const struct rdmc_ctrl *c, uint64_t dest_off,
                      uint8_t out[RDMC_CTRL_SIZE]);
/* Accepts versions 1 and 2; *dest_off (may be NULL) gets the offset. */
int rdmc__ctrl_decode(const uint8_t *in, size_t len, struct rdmc_ctrl *c,
                      uint64_t *dest_off);

/* One posted write: a fab_op plus where it belongs. */
/* A completion or remote data word that libfab handed us on the thread
 * that holds the group's lock (libfab progresses inside our posts): kept
 * here and handled before that thread releases the lock. */
struct rdmc__deferred {
    struct rdmc__deferred *next;
    struct rdmc__op *op; /* a completion of op (status); NULL: a data word */
    int status;
    uint32_t node_id;
    uint64_t data;
};

struct rdmc__op {
    struct fab_op fop; /* first: the fab_op pointer is the op pointer */
    struct rdmc_group *g;
    uint32_t slot;
    bool data;
    bool close; /* a CLOSE: belongs to no message slot */
    struct rdmc__op *next_free;
    struct rdmc__deferred def_rec; /* its completion, when deferred */
};

struct rdmc__send {
    uint32_t target;
    uint32_t block;
};

/* A callback to make once the group's lock is released (complete or
 * failure), in order. */
struct rdmc__event {
    bool failure;
    bool incoming;  /* ask the application for slot's buffer */
    uint64_t index; /* complete */
    void *data;
    size_t size;
    uint32_t slot;
    uint32_t node; /* failure */
    int reason;
    struct rdmc__event *next;
};

/* One message in flight, in slot index % window. */
struct rdmc__msg {
    bool active;
    bool delivered;
    bool done_sent; /* receiver: DONE posted to the sender */
    uint64_t index;
    size_t size;
    uint32_t blocks;
    uint8_t *buf;
    bool own_buf;
    struct fab_mr *mr;
    bool own_mr;              /* registered by us for this message */
    size_t mr_off;            /* where the message starts in mr */
    uint64_t *dest_off;       /* per rank: READY's offset in its region */
    struct rdmc__send *sends; /* my sends in step order */
    uint32_t nsends, next_send, sends_done;
    uint8_t *have; /* receiver: per block */
    uint32_t nhave;
    uint32_t acks;        /* sender: DONE records received */
    uint32_t outstanding; /* posted writes of this message */
    int64_t last_activity_ms;
    /* per rank */
    uint8_t *is_source;       /* sends blocks to me: gets my READY */
    uint8_t *is_target;       /* I send blocks to it: need its READY */
    uint8_t *ctrl_sent;       /* HEADER (sender) or READY (receiver) posted */
    uint8_t *ready_got;       /* READY from that rank applied */
    uint8_t *pending_ready;   /* READY landed before the message started */
    uint8_t *acked;           /* sender: DONE from that rank */
    struct fab_mr_desc *dest; /* READY's region per rank */
    bool pending_header;      /* HEADER landed while the slot was busy */
    bool cb_pending;          /* its complete event is queued or running */
    bool awaiting_buf;     /* HEADER taken, the incoming event not yet done */
    struct rdmc__event ev; /* that event */
    /* Receiver: the blocks each source sends me, in schedule order:
     * rlist[roff[r] .. roff[r] + rcnt[r]); rcur[r] is the first of them
     * not received yet (BLOCK words name a block mod 4096). */
    uint32_t *rlist;
    uint32_t *roff, *rcnt, *rcur; /* per rank */
};

/* A message queued by rdmc_send. */
struct rdmc__queued {
    const void *buf;
    struct fab_mr *mr; /* rdmc_send_mr: the caller's region, else NULL */
    size_t mr_off;
    size_t size;
    uint64_t index;
    struct rdmc__queued *next;
};

struct rdmc_group {
    struct fab_pool *pool;
    struct rdmc_options opts;
    struct rdmc_callbacks cbs;
    void *ctx;
    uint32_t n, rank, window;
    bool inject_ctrl; /* control records go FAB_WRITE_INJECT */
    uint32_t *node_ids;
    struct fab_user *user;
    uint32_t tag;                  /* my libfab data tag */
    uint32_t *peer_tag;            /* per rank: the tag to write to it with */
    struct fab_conn **conns;       /* per rank; NULL for me */
    struct fab_mr_desc *peer_ctrl; /* per rank: its control region */
    size_t bytes_per_kind;
    uint8_t *ctrl_in, *ctrl_out;
    size_t ctrl_len;
    struct fab_mr *ctrl_in_mr, *ctrl_out_mr;
    struct rdmc__op *ops;
    size_t nops;
    struct rdmc__op *free_ops;
    uint32_t data_inflight;
    uint32_t ops_outstanding;
    struct rdmc__msg *slots;
    uint64_t next_deliver;
    uint64_t next_index; /* sender: next index rdmc_send hands out */
    uint64_t next_start; /* sender: next queued index to start */
    struct rdmc__queued *queue_head, *queue_tail;
    uint8_t *failed_reported; /* per rank */
    int status;
    bool open; /* create finished: may post */
    bool stopping;
    bool retry;
    int pump_depth;
    int64_t last_dump_ms;
    bool repump;
    bool published;
    /* Closing handshake (docs/rdmc.md, "Lifecycle"): per rank, CLOSE
     * posted to it / received from it. */
    uint8_t *close_sent, *close_got;
    bool closing; /* CLOSE goes to every peer (failed, wedged, destroyed) */
    bool wedged;
    /* Callbacks wait here, collected under the lock, and are made by
     * rdmc__dispatch with the lock released, one dispatcher at a time. */
    struct rdmc__event *ev_head, *ev_tail;
    bool dispatching;
    pthread_t cb_thread; /* the dispatcher, while dispatching */
    /* Not recursive.  libfab may complete our operations (and hand us
     * data words) on this thread while we post under it: those are
     * deferred (def_head) and handled before the lock is released.  No
     * user callback runs under it. */
    pthread_mutex_t lock;
    _Atomic(pthread_t) owner; /* the thread holding lock, while owned */
    atomic_bool owned;
    struct rdmc__deferred *def_head, *def_tail;
    bool def_oom; /* a data word was lost for memory: fail the group */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
};

void rdmc__log(struct rdmc_group *g, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
