/* vs_stress: one member of a group that multicasts messages of mixed sizes
 * and logs every view and delivery, for tests/tools/check_vs (issue 15).
 *
 *   vs_stress [--SECTION/key=value ...] -- --nodes N --messages M
 *             --sizes S1,S2,... --senders all|half|one --log FILE
 *             [--min-nodes K] [--pause-at I --resume-file PATH]
 *             [--unordered]
 *
 * The configuration follows the derecho-config rules (a file,
 * DERECHO_CONF_FILE, overrides before `--`).  The layout is one subgroup
 * (index 0) of one shard (index 0) holding every member; with --senders
 * half only the first max(1, N/2) members (rank order) send, with one only
 * the first.  The member waits for a view of N members (once installed:
 * a member may leave or fail right after), sends M messages
 * whose sizes cycle through the list (random bytes; even messages through
 * derecho_send_reserve/commit, odd ones through derecho_send), waits until
 * it delivered M messages of every sender still in its view, then leaves
 * and exits 0.  SIGINT/SIGTERM: leaves cleanly and exits 128 + signal.
 * Message i of node s holds bytes that depend on (s, i) only, so a member
 * that joined while others were sending (its deliveries start at its first
 * view) is done once it delivered each sender's last message (M - 1).
 * --min-nodes K: the shard needs K members (a layout option: every member
 * must give the same); while the view has fewer, the subgroup is not
 * provisioned and the member's first send waits in the library until joins
 * provision it.  --pause-at I --resume-file PATH: a sender stops after I
 * messages until PATH exists (a test holds traffic while it changes the
 * membership).  --unordered: the subgroup is in DERECHO_MODE_UNORDERED
 * (delivery on receipt, each sender's order, no total order across
 * senders: check the logs with check_vs --unordered).
 *
 * The log holds only these lines, each written with one write(2):
 *   view <view_id> <node,node,...>
 *   deliver <subgroup> <shard> <view_id> <sender_node> <seq> <size> <hash>
 * (seq: position in the view's order of the shard; hash: XXH3-64 of the
 * payload in hex).  Everything else goes to stderr.
 *
 * Exit: 0 done, 1 group error, 2 timed out, 3 expelled (the others removed
 * this member: e.g. it was stopped past the suspicion timeout; the
 * library's on_stopped with DERECHO_STOPPED_EXPELLED), 4 partitioned
 * (DERECHO_STOPPED_PARTITIONED), 64 usage, 128+N signal.
 * Every size must be at most the profile's max_payload_size (sizes above
 * max_smc_payload_size go through RDMC). */
#include "performance_tests/derecho-bench.h"

#include <conf/conf.h>
#include <derecho/derecho.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define MAX_SIZES 64
#define MAX_NODES 1024
#define VIEW_TIMEOUT_S 60 /* to see N members */
#define DELIVER_TIMEOUT_S 300

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

struct state {
    int log_fd;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t members_now;
    /* The largest view installed so far: a view of N members may be
     * followed by a smaller one (a member that left or failed at once)
     * before the main thread looks. */
    size_t members_max;
    bool provisioned; /* the current view's layout */
    uint64_t messages;
    const size_t *sizes;
    size_t num_sizes;
    uint64_t last_hash[MAX_NODES]; /* of each sender's message M - 1 */
    bool last_known[MAX_NODES], last_seen[MAX_NODES + 1];
    uint32_t senders[MAX_NODES]; /* senders of shard 0 in the current view */
    size_t num_senders;
    uint64_t delivered[MAX_NODES + 1]; /* per sender node id (capped) */
    bool log_failed;
    int stopped; /* DERECHO_STOPPED_* from on_stopped */
};

static void write_line(struct state *s, const char *line, size_t len)
{
    if (write(s->log_fd, line, len) != (ssize_t)len)
        s->log_failed = true;
}

static void on_view(void *ctx, const struct derecho_view *v)
{
    struct state *s = ctx;
    char line[16384];
    size_t n = derecho_view_num_members(v);
    int len =
        snprintf(line, sizeof(line), "view %" PRId64 " ", derecho_view_id(v));
    for (size_t i = 0; i < n && len < (int)sizeof(line) - 16; i++)
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%u",
                        i ? "," : "", derecho_view_member(v, i)->node_id);
    line[len++] = '\n';
    write_line(s, line, (size_t)len);
    struct derecho_shard_info sh;
    pthread_mutex_lock(&s->lock);
    s->members_now = n;
    if (n > s->members_max)
        s->members_max = n;
    s->provisioned = derecho_layout_provisioned(derecho_view_layout(v));
    s->num_senders = 0;
    if (derecho_layout_shard(derecho_view_layout(v), 0, 0, &sh) == 0)
        for (size_t i = 0; i < sh.num_members && i < MAX_NODES; i++)
            if (sh.is_sender[i])
                s->senders[s->num_senders++] = sh.members[i];
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed);

/* Is this sender's message M - 1 (same size and hash)?  Under s->lock. */
static bool is_last(struct state *s, uint32_t sender, size_t size,
                    uint64_t hash)
{
    if (s->messages == 0 || sender >= MAX_NODES)
        return false;
    size_t last_size = s->sizes[(s->messages - 1) % s->num_sizes];
    if (size != last_size)
        return false;
    if (!s->last_known[sender]) {
        uint8_t *buf = malloc(last_size ? last_size : 1);
        if (!buf)
            return false;
        fill_random(buf, last_size, sender * 1000003ull + s->messages - 1);
        s->last_hash[sender] = XXH3_64bits(buf, last_size);
        s->last_known[sender] = true;
        free(buf);
    }
    return s->last_hash[sender] == hash;
}

static void on_deliver(void *ctx, uint32_t subgroup, uint32_t shard,
                       uint32_t sender, uint64_t version, const void *data,
                       size_t size)
{
    struct state *s = ctx;
    char line[160];
    uint64_t hash = XXH3_64bits(data, size);
    int len = snprintf(line, sizeof(line),
                       "deliver %u %u %" PRIu64 " %u %" PRIu64
                       " %zu %016" PRIx64 "\n",
                       subgroup, shard, version >> 32, sender,
                       version & 0xffffffffu, size, hash);
    write_line(s, line, (size_t)len);
    pthread_mutex_lock(&s->lock);
    s->delivered[sender < MAX_NODES ? sender : MAX_NODES]++;
    if (is_last(s, sender, size, hash))
        s->last_seen[sender < MAX_NODES ? sender : MAX_NODES] = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vs_stress [--SECTION/key=value ...] -- --nodes N "
               "--messages M --sizes S1,S2,... --senders all|half|one "
               "--log FILE [--min-nodes K] [--pause-at I --resume-file "
               "PATH] [--unordered]\n");
}

static int parse_sizes(const char *text, size_t *sizes, size_t *n)
{
    *n = 0;
    const char *p = text;
    while (*p) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p || v > (1ull << 31) || *n == MAX_SIZES)
            return -1;
        sizes[(*n)++] = (size_t)v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        p = end;
    }
    return *n ? 0 : -1;
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void on_stopped(void *ctx, int reason)
{
    struct state *s = ctx;
    pthread_mutex_lock(&s->lock);
    s->stopped = reason;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    fprintf(stderr, "vs_stress: stopped: %s\n",
            reason == DERECHO_STOPPED_EXPELLED ? "expelled" : "partitioned");
}

/* Every sender of the view: m delivered, or its last message (a member
 * that joined late sees only the end of the earlier senders' streams). */
static bool all_delivered(struct state *s, uint64_t m)
{
    for (size_t i = 0; i < s->num_senders; i++) {
        uint32_t k = s->senders[i] < MAX_NODES ? s->senders[i] : MAX_NODES;
        if (s->delivered[k] < m && !s->last_seen[k])
            return false;
    }
    return true;
}

static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

/* Waits (10 ms polls) until path exists: false after VIEW_TIMEOUT_S or on
 * a stop signal. */
static bool wait_for_file(const char *path)
{
    for (int i = 0; i < VIEW_TIMEOUT_S * 100 && !stop_signal; i++) {
        if (access(path, F_OK) == 0)
            return true;
        struct timespec pause = {0, 10000000};
        nanosleep(&pause, NULL);
    }
    return access(path, F_OK) == 0;
}

int main(int argc, char **argv)
{
    /* The derecho programs' start (overrides before --, --help, the
     * config); vs_stress has no --spawn/--member. */
    struct bench_cmdline cl;
    int early = bench_startup("vs_stress", usage, false, &argc, argv, &cl);
    if (early == 64)
        usage(stderr);
    if (early >= 0)
        return early;
    free(cl.overrides);
    struct conf *c = cl.conf;
    if (cl.spawn || cl.member) {
        usage(stderr);
        conf_destroy(c);
        return 64;
    }
    static const struct option longopts[] = {
        {"nodes", required_argument, NULL, 'n'},
        {"messages", required_argument, NULL, 'm'},
        {"sizes", required_argument, NULL, 's'},
        {"senders", required_argument, NULL, 'S'},
        {"log", required_argument, NULL, 'l'},
        {"min-nodes", required_argument, NULL, 'k'},
        {"pause-at", required_argument, NULL, 'p'},
        {"resume-file", required_argument, NULL, 'r'},
        {"unordered", no_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    long nodes = 0, messages = -1, min_nodes = 1, pause_at = -1;
    const char *resume_file = NULL;
    size_t sizes[MAX_SIZES], num_sizes = 0;
    const char *senders = "all", *log_path = NULL;
    bool unordered = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'n':
            nodes = strtol(optarg, NULL, 10);
            break;
        case 'm':
            messages = strtol(optarg, NULL, 10);
            break;
        case 's':
            if (parse_sizes(optarg, sizes, &num_sizes) != 0) {
                fprintf(stderr, "vs_stress: bad --sizes %s\n", optarg);
                conf_destroy(c);
                return 64;
            }
            break;
        case 'S':
            senders = optarg;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'k':
            min_nodes = strtol(optarg, NULL, 10);
            break;
        case 'p':
            pause_at = strtol(optarg, NULL, 10);
            break;
        case 'r':
            resume_file = optarg;
            break;
        case 'u':
            unordered = true;
            break;
        case 'h':
            usage(stdout);
            conf_destroy(c);
            return 0;
        default:
            usage(stderr);
            conf_destroy(c);
            return 64;
        }
    }
    if (optind != argc || nodes < 1 || nodes > MAX_NODES || messages < 0 ||
        num_sizes == 0 || !log_path || min_nodes < 1 || min_nodes > MAX_NODES ||
        (pause_at >= 0) != (resume_file != NULL) ||
        (strcmp(senders, "all") && strcmp(senders, "half") &&
         strcmp(senders, "one"))) {
        usage(stderr);
        conf_destroy(c);
        return 64;
    }
    struct state st;
    memset(&st, 0, sizeof(st));
    pthread_mutex_init(&st.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st.cond, &ca);
    st.messages = (uint64_t)messages;
    st.sizes = sizes;
    st.num_sizes = num_sizes;
    st.log_fd = open(log_path,
                     O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (st.log_fd < 0) {
        fprintf(stderr, "vs_stress: %s: %s\n", log_path, strerror(errno));
        conf_destroy(c);
        return 64;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct derecho_layout_spec *spec = NULL;
    struct derecho_shard_policy p;
    derecho_shard_policy_init(&p);
    p.max_senders = strcmp(senders, "one") == 0 ? 1
                    : strcmp(senders, "half") == 0
                        ? (uint32_t)(nodes / 2 ? nodes / 2 : 1)
                        : 0;
    p.min_nodes = (uint32_t)min_nodes;
    if (unordered)
        p.mode = DERECHO_MODE_UNORDERED;
    uint32_t type;
    if (derecho_layout_spec_create(&spec) ||
        derecho_layout_spec_add_type(spec, "VsStress", &type) ||
        derecho_layout_spec_add_subgroup(spec, type, 1, &p, NULL)) {
        fprintf(stderr, "vs_stress: cannot build the layout\n");
        return 1;
    }
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = on_view;
    o.ctx = &st;
    o.on_deliver = on_deliver;
    o.deliver_ctx = &st;
    o.on_stopped = on_stopped;
    o.stopped_ctx = &st;
    o.log_level = getenv("VS_STRESS_VERBOSE") ? LOG_DEBUG : LOG_WARNING;
    struct derecho_group *g = NULL;
    struct derecho_error err;
    int status = 0;
    if (derecho_group_create(c, spec, &o, &g, &err) != 0) {
        fprintf(stderr, "vs_stress: %s\n", err.msg);
        status = 1;
        goto out;
    }
    uint64_t me = 0;
    conf_get_u64(c, "DERECHO", "local_id", &me);
    /* A view of N members. */
    struct timespec ts;
    deadline_after(&ts, VIEW_TIMEOUT_S * 1000);
    pthread_mutex_lock(&st.lock);
    for (;;) {
        if (st.members_max >= (size_t)nodes || stop_signal)
            break;
        struct timespec tick, now;
        deadline_after(&tick, 50);
        pthread_cond_timedwait(&st.cond, &st.lock, &tick);
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > ts.tv_sec)
            break;
    }
    bool sender = false;
    for (size_t i = 0; i < st.num_senders; i++)
        sender = sender || st.senders[i] == me;
    bool ready = st.members_max >= (size_t)nodes;
    bool provisioned = st.provisioned;
    pthread_mutex_unlock(&st.lock);
    if (!ready) {
        if (!stop_signal) {
            fprintf(stderr,
                    "vs_stress %" PRIu64 ": no view of %ld members "
                    "within %d s\n",
                    me, nodes, VIEW_TIMEOUT_S);
            status = 2;
        }
        goto leave;
    }
    /* Not provisioned (--min-nodes): the first send waits in the library
     * until joins provision the subgroup; then this member is a sender or
     * not (-EPERM: receive-only; -ENOENT: in no shard). */
    long first = 0;
    if (!provisioned) {
        fprintf(stderr,
                "vs_stress %" PRIu64 ": subgroup 0 is not provisioned: "
                "the first send waits\n",
                me);
        void *slot;
        int rc = derecho_send_reserve(g, 0, sizes[0], 0, &slot);
        if (rc == 0) {
            fill_random(slot, sizes[0], me * 1000003);
            rc = derecho_send_commit(g, 0, sizes[0]);
            sender = true;
            first = 1;
        } else if (rc == -EPERM || rc == -ENOENT) {
            sender = false;
            rc = 0;
        }
        if (rc) {
            fprintf(stderr, "vs_stress %" PRIu64 ": first send: %s\n", me,
                    derecho_strerror(rc));
            status = 1;
            goto leave;
        }
    }
    /* The view's multicast starts right after on_view: -EAGAIN until
     * then. */
    size_t max_size = 0;
    int mrc = -EAGAIN;
    for (int tries = 0; sender && mrc == -EAGAIN && tries < 1000; tries++) {
        mrc = derecho_send_max_payload(g, 0, &max_size);
        if (mrc == -EAGAIN) {
            struct timespec pause = {0, 10000000};
            nanosleep(&pause, NULL);
        }
    }
    if (sender && mrc != 0) {
        fprintf(stderr, "vs_stress: %s\n", derecho_strerror(mrc));
        status = 1;
        goto leave;
    }
    if (sender)
        for (size_t i = 0; i < num_sizes; i++)
            if (sizes[i] > max_size) {
                fprintf(stderr,
                        "vs_stress: size %zu is over max_payload_size "
                        "%zu\n",
                        sizes[i], max_size);
                status = 64;
                goto leave;
            }
    size_t largest = 1;
    for (size_t i = 0; i < num_sizes; i++)
        if (sizes[i] > largest)
            largest = sizes[i];
    uint8_t *buf = malloc(largest);
    if (!buf) {
        status = 1;
        goto leave;
    }
    for (long i = first; sender && i < messages && !stop_signal; i++) {
        size_t size = sizes[(size_t)i % num_sizes];
        int rc;
        if (i == pause_at && !wait_for_file(resume_file)) {
            fprintf(stderr,
                    "vs_stress %" PRIu64 ": %s did not appear within %d s\n",
                    me, resume_file, VIEW_TIMEOUT_S);
            status = 2;
            break;
        }
        if (i % 2 == 0) {
            void *slot;
            rc = derecho_send_reserve(g, 0, size, 0, &slot);
            if (rc == 0) {
                fill_random(slot, size, me * 1000003 + (uint64_t)i);
                rc = derecho_send_commit(g, 0, size);
            }
        } else {
            fill_random(buf, size, me * 1000003 + (uint64_t)i);
            rc = derecho_send(g, 0, buf, size, 0);
        }
        if (rc) {
            fprintf(stderr, "vs_stress %" PRIu64 ": send %ld: %s\n", me, i,
                    derecho_strerror(rc));
            status = 1;
            break;
        }
    }
    free(buf);
    if (status == 0) {
        deadline_after(&ts, DELIVER_TIMEOUT_S * 1000);
        pthread_mutex_lock(&st.lock);
        bool timed_out = false;
        while (!all_delivered(&st, (uint64_t)messages) && !stop_signal &&
               !timed_out && !st.stopped) {
            struct timespec tick;
            deadline_after(&tick, 50);
            pthread_cond_timedwait(&st.cond, &st.lock, &tick);
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            timed_out = now.tv_sec > ts.tv_sec;
        }
        pthread_mutex_unlock(&st.lock);
        if (timed_out) {
            fprintf(stderr,
                    "vs_stress %" PRIu64 ": not everything delivered within "
                    "%d s\n",
                    me, DELIVER_TIMEOUT_S);
            status = 2;
        }
    }
leave:
    if (g && derecho_group_stopped(g) > 0)
        status = derecho_group_stopped(g) == DERECHO_STOPPED_EXPELLED ? 3 : 4;
    derecho_group_destroy(g);
    if (st.log_failed) {
        fprintf(stderr, "vs_stress: writing %s failed\n", log_path);
        status = 1;
    }
    if (stop_signal)
        status = 128 + stop_signal;
out:
    close(st.log_fd);
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);
    return status;
}
