/* Group lifecycle with real processes on loopback: the contact rule, joins
 * (direct and redirected), leaves, and refused joiners. */
#include "test-derecho.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

struct seen {
    atomic_int max_members;
    atomic_int members_now;
    atomic_int bad_sequence;
    int64_t last_id;
};

static void on_view(void *ctx, const struct derecho_view *v)
{
    struct seen *s = ctx;
    int n = (int)derecho_view_num_members(v);
    /* Views go up by one from the first this process installs. */
    if (s->last_id >= 0 && derecho_view_id(v) != s->last_id + 1)
        atomic_store(&s->bad_sequence, 1);
    if (derecho_view_my_rank(v) < 0)
        atomic_store(&s->bad_sequence, 1);
    s->last_id = derecho_view_id(v);
    atomic_store(&s->members_now, n);
    if (n > atomic_load(&s->max_members))
        atomic_store(&s->max_members, n);
}

struct wait_arg {
    struct seen *s;
    int n;
    const char *file;
};

static bool reached(void *arg)
{
    struct wait_arg *w = arg;
    return atomic_load(&w->s->max_members) >= w->n;
}

static bool back_to(void *arg)
{
    struct wait_arg *w = arg;
    return atomic_load(&w->s->members_now) == w->n;
}

static bool file_exists(void *arg)
{
    struct wait_arg *w = arg;
    return access(w->file, F_OK) == 0;
}

/* member ID GMS_PORT CONTACT_PORT N TYPE MODE [FILE]
 * MODE: "leave" (exit once a view of N was installed), "shrink" (then wait
 * until the view is back to 1 member), "linger" (then wait for FILE),
 * "refused-fingerprint" / "refused-node-id" (the join must be refused for
 * that field).  Exit 0 when everything happened as expected. */
static int child_member(int argc, char **argv)
{
    if (argc < 7)
        return 100;
    char a_id[64], a_gms[64], a_contact[64], a_sst[64];
    snprintf(a_id, sizeof(a_id), "--DERECHO/local_id=%s", argv[1]);
    /* Every member's pool listens on its own sst_port (argv[8]). */
    snprintf(a_sst, sizeof(a_sst), "--DERECHO/sst_port=%s",
             argc > 8 ? argv[8] : "0");
    snprintf(a_gms, sizeof(a_gms), "--DERECHO/gms_port=%s", argv[2]);
    snprintf(a_contact, sizeof(a_contact), "--DERECHO/contact_port=%s",
             argv[3]);
    char a_name[] = "member";
    char *args[] = {a_name, a_id, a_gms, a_contact, a_sst, NULL};
    int nargs = 5;
    struct conf_options co;
    conf_options_init(&co);
    co.no_env = true;
    struct conf *c = NULL;
    if (conf_create(&c, &co) != 0 || conf_parse_args(c, &nargs, args, NULL))
        return 101;
    int n = atoi(argv[4]);
    const char *mode = argv[6];
    struct derecho_layout_spec *spec = NULL;
    if (derecho_layout_spec_create(&spec) ||
        derecho_layout_spec_add_type(spec, argv[5], NULL) ||
        derecho_layout_spec_add_entire_view(spec, 0, DERECHO_MODE_ORDERED,
                                            NULL))
        return 102;
    struct seen s = {.last_id = -1};
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = on_view;
    o.ctx = &s;
    o.join_timeout_ms = 20000;
    if (getenv("DERECHO_TEST_JOIN_TIMEOUT_MS"))
        o.join_timeout_ms = atoi(getenv("DERECHO_TEST_JOIN_TIMEOUT_MS"));
    o.log_level = getenv("DERECHO_TEST_VERBOSE") ? LOG_DEBUG : LOG_ERR;
    struct derecho_group *g = NULL;
    struct derecho_error err;
    int rc = derecho_group_create(c, spec, &o, &g, &err);
    int status = 0;
    if (strncmp(mode, "refused-", 8) == 0) {
        const char *field = strcmp(mode, "refused-fingerprint") == 0
                                ? "layout fingerprint"
                                : "node id";
        if (rc != -ECONNREFUSED || !strstr(err.msg, field)) {
            fprintf(stderr,
                    "member %s: expected a refusal naming %s, got %d "
                    "(%s)\n",
                    argv[1], field, rc, rc ? err.msg : "admitted");
            status = 1;
        }
        derecho_group_destroy(g);
        goto out;
    }
    if (rc) {
        fprintf(stderr, "member %s: %s\n", argv[1], err.msg);
        status = 2;
        goto out;
    }
    struct wait_arg w = {&s, n,
                         argc > 7 && strcmp(argv[7], "-") ? argv[7] : NULL};
    if (!th_wait_until(reached, &w, 30000)) {
        fprintf(stderr, "member %s: never saw %d members\n", argv[1], n);
        status = 3;
    } else if (strcmp(mode, "shrink") == 0) {
        w.n = 1;
        if (!th_wait_until(back_to, &w, 30000)) {
            fprintf(stderr, "member %s: the others never left\n", argv[1]);
            status = 4;
        }
    } else if (strcmp(mode, "linger") == 0 && w.file) {
        if (!th_wait_until(file_exists, &w, 60000))
            status = 5;
    }
    struct derecho_view *v = NULL;
    if (status == 0 &&
        (derecho_group_get_view(g, &v) != 0 || derecho_view_my_rank(v) < 0))
        status = 6;
    derecho_view_destroy(v);
    if (atomic_load(&s.bad_sequence)) {
        fprintf(stderr, "member %s: views out of sequence\n", argv[1]);
        status = 7;
    }
    derecho_group_destroy(g);
out:
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);
    return status;
}

static int spawn(struct th_procs *p, unsigned id, uint16_t gms,
                 uint16_t contact, int n, const char *type, const char *mode,
                 const char *file)
{
    char a[5][32];
    /* Free now, but gms (this member's, bound only once it runs) and
     * contact may be free now too: never the same port twice. */
    uint16_t sst;
    do
        ck_assert_int_eq(th_free_tcp_ports(&sst, 1), 0);
    while (sst == gms || sst == contact);
    snprintf(a[4], sizeof(a[4]), "%u", sst);
    snprintf(a[0], sizeof(a[0]), "%u", id);
    snprintf(a[1], sizeof(a[1]), "%u", gms);
    snprintf(a[2], sizeof(a[2]), "%u", contact);
    snprintf(a[3], sizeof(a[3]), "%d", n);
    const char *args[] = {a[0], a[1], a[2], a[3], type, mode, file ? file : "-",
                          a[4], NULL};
    int i = th_spawn_child(p, "member", args);
    ck_assert_int_ge(i, 0);
    return i;
}

/* derecho_group_stats names a suspected member and why: this process is
 * the leader, a child joins, then is stopped (SIGSTOP: its heartbeat
 * stalls while its connections stay open).  One of two suspected leaves
 * no majority: the leader stops as partitioned and keeps that view, whose
 * stats show the child suspected with -ETIMEDOUT. */
struct stats_arg {
    struct derecho_group *g;
    int64_t view_id;
    struct derecho_member_stats mem[2];
    size_t n;
};

static bool member_suspected(void *arg)
{
    struct stats_arg *a = arg;
    struct derecho_group_stats st;
    derecho_group_stats_init(&st);
    st.members = a->mem;
    st.max_members = 2;
    if (derecho_group_stats(a->g, &st) != 0)
        return false;
    a->view_id = st.view_id;
    a->n = st.num_members;
    return st.num_members == 2 && a->mem[1].suspected;
}

/* ... with its reason recorded: libsst marks the member suspected before
 * its on_suspect callback (which records why) has run, and a read in
 * between reports the reason as not known here (-EHOSTDOWN). */
static bool member_suspected_with_reason(void *arg)
{
    struct stats_arg *a = arg;
    return member_suspected(a) && a->mem[1].reason != -EHOSTDOWN;
}

START_TEST(stats_name_a_suspected_member)
{
    uint16_t port[3];
    ck_assert_int_eq(th_free_tcp_ports(port, 3), 0);
    char text[512];
    snprintf(text, sizeof(text),
             "[DERECHO]\nlocal_id = 0\nlocal_ip = 127.0.0.1\n"
             "gms_port = %u\nsst_port = %u\ncontact_ip = 127.0.0.1\n"
             "contact_port = %u\n",
             port[0], port[1], port[0]);
    struct conf *c = td_conf(text);
    struct derecho_layout_spec *spec = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Counter", NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_entire_view(
                         spec, 0, DERECHO_MODE_ORDERED, NULL),
                     0);
    struct seen s = {.last_id = -1};
    struct derecho_group_options o;
    derecho_group_options_init(&o);
    o.on_view = on_view;
    o.ctx = &s;
    o.log_level = LOG_CRIT;
    struct derecho_group *g = NULL;
    struct derecho_error err;
    ck_assert_msg(derecho_group_create(c, spec, &o, &g, &err) == 0, "%s",
                  err.msg);
    struct derecho_group_stats st;
    derecho_group_stats_init(&st);
    ck_assert_int_eq(derecho_group_stats(g, &st), 0);
    ck_assert_int_eq(st.view_id, 0);
    ck_assert_uint_eq(st.num_members, 1);
    struct th_procs p;
    th_procs_init(&p);
    int child = spawn(&p, 1, port[2], port[0], 2, "Counter", "linger",
                      "/nonexistent/never");
    struct wait_arg w = {&s, 2, NULL};
    ck_assert_msg(th_wait_until(reached, &w, 30000), "no view of 2");
    struct stats_arg a = {.g = g};
    ck_assert(!member_suspected(&a));
    ck_assert_int_eq(a.mem[1].reason, 0);
    ck_assert_int_eq(th_signal(&p, child, SIGSTOP), 0);
    ck_assert_msg(th_wait_until(member_suspected_with_reason, &a, 20000),
                  "the stopped member was never reported suspected "
                  "(reason %d)",
                  a.mem[1].reason);
    ck_assert_int_eq(a.mem[0].suspected, 0);
    ck_assert_int_eq(a.mem[1].reason, -ETIMEDOUT);
    ck_assert_int_eq(a.view_id, s.last_id);
    th_signal(&p, child, SIGKILL);
    th_wait_all(&p, 10000);
    derecho_group_destroy(g);
    derecho_layout_spec_destroy(spec);
    conf_destroy(c);
}
END_TEST

START_TEST(three_members_join_and_leave)
{
    uint16_t port[3];
    ck_assert_int_eq(th_free_tcp_ports(port, 3), 0);
    struct th_procs p;
    th_procs_init(&p);
    /* All at once: the joiners retry until their contacts listen; node 2
     * asks node 1, which redirects it to the leader. */
    spawn(&p, 0, port[0], port[0], 3, "Counter", "shrink", NULL);
    spawn(&p, 1, port[1], port[0], 3, "Counter", "leave", NULL);
    spawn(&p, 2, port[2], port[1], 3, "Counter", "leave", NULL);
    ck_assert_int_eq(th_wait_all(&p, 90000), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(th_exited_ok(&p, i), "member %d: status %#x", i,
                      p.status[i]);
}
END_TEST

START_TEST(incompatible_and_duplicate_joiners_are_refused)
{
    uint16_t port[3];
    ck_assert_int_eq(th_free_tcp_ports(port, 3), 0);
    char dir[512], done[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(done, sizeof(done), "%s/done", dir);
    struct th_procs p;
    th_procs_init(&p);
    int leader = spawn(&p, 0, port[0], port[0], 1, "Counter", "linger", done);
    int other =
        spawn(&p, 5, port[1], port[0], 1, "Other", "refused-fingerprint", NULL);
    int dup =
        spawn(&p, 0, port[2], port[0], 1, "Counter", "refused-node-id", NULL);
    ck_assert_int_eq(th_wait_one(&p, other, 60000), 0);
    ck_assert_int_eq(th_wait_one(&p, dup, 60000), 0);
    FILE *f = fopen(done, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(th_wait_all(&p, 60000), 0);
    ck_assert_msg(th_exited_ok(&p, other), "status %#x", p.status[other]);
    ck_assert_msg(th_exited_ok(&p, dup), "status %#x", p.status[dup]);
    ck_assert_msg(th_exited_ok(&p, leader), "status %#x", p.status[leader]);
}
END_TEST

START_TEST(hostile_bytes_leave_the_group_alone)
{
    /* A leader alone, garbage and a silent connection on its port, then a
     * real joiner that must still be admitted. */
    uint16_t port[2];
    ck_assert_int_eq(th_free_tcp_ports(port, 2), 0);
    struct th_procs p;
    th_procs_init(&p);
    spawn(&p, 0, port[0], port[0], 2, "Counter", "shrink", NULL);
    int fd = -1, silent = -1;
    ck_assert_int_eq(derecho_control_connect("127.0.0.1", port[0], 20000, &fd),
                     0);
    ck_assert_int_eq(
        send(fd, "\x44\x52\x43\x4fgarbage-and-more", 20, MSG_NOSIGNAL), 20);
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[0], 20000, &silent), 0);
    spawn(&p, 1, port[1], port[0], 2, "Counter", "leave", NULL);
    ck_assert_int_eq(th_wait_all(&p, 90000), 0);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(th_exited_ok(&p, i), "member %d: status %#x", i,
                      p.status[i]);
    close(fd);
    close(silent);
}
END_TEST

/* The test process as a raw joiner: one join request on fd. */
static void send_request(int fd, uint32_t id, uint16_t port, uint64_t fp)
{
    struct derecho_join_request req;
    memset(&req, 0, sizeof(req));
    req.member.node_id = id;
    snprintf(req.member.ip, sizeof(req.member.ip), "127.0.0.1");
    req.member.gms_port = port;
    req.member.sst_port = port;
    req.member.rdmc_port = port;
    req.member.external_port = port;
    req.fingerprint = fp;
    uint8_t buf[256];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof(buf));
    ck_assert_int_eq(derecho_join_request_encode(&req, &w), 0);
    ck_assert_int_eq(derecho_control_send(fd, DERECHO_CONTROL_JOIN_REQUEST, buf,
                                          mutils_writer_len(&w), 5000),
                     0);
}

static uint64_t counter_fingerprint(void)
{
    struct derecho_layout_spec *spec = NULL;
    ck_assert_int_eq(derecho_layout_spec_create(&spec), 0);
    ck_assert_int_eq(derecho_layout_spec_add_type(spec, "Counter", NULL), 0);
    ck_assert_int_eq(derecho_layout_spec_add_entire_view(
                         spec, 0, DERECHO_MODE_ORDERED, NULL),
                     0);
    uint64_t fp;
    ck_assert_int_eq(derecho_layout_spec_fingerprint(spec, &fp), 0);
    derecho_layout_spec_destroy(spec);
    return fp;
}

/* True once the process is stopped (state T in /proc/PID/stat): SIGSTOP
 * is delivered asynchronously, after kill() returns. */
static bool is_stopped(void *arg)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)*(pid_t *)arg);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' &&
           (close_paren[2] == 'T' || close_paren[2] == 't');
}

static void stop(struct th_procs *p, int i)
{
    ck_assert_int_eq(th_signal(p, i, SIGSTOP), 0);
    ck_assert_msg(th_wait_until(is_stopped, &p->pid[i], 10000),
                  "process %d did not stop", i);
}

START_TEST(joins_that_arrive_together_are_one_view_change)
{
    uint16_t port[1];
    ck_assert_int_eq(th_free_tcp_ports(port, 1), 0);
    struct th_procs p;
    th_procs_init(&p);
    int leader = spawn(&p, 0, port[0], port[0], 5, "Counter", "shrink", NULL);
    int probe = -1;
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[0], 20000, &probe), 0);
    close(probe);
    /* Four requests reach the leader's socket while it is stopped, so they
     * are all there when it runs again: one view change for all four. */
    stop(&p, leader);
    uint64_t fp = counter_fingerprint();
    int fd[4];
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(
            derecho_control_connect("127.0.0.1", port[0], 5000, &fd[i]), 0);
        send_request(fd[i], 10 + (uint32_t)i, 40000, fp);
    }
    ck_assert_int_eq(th_signal(&p, leader, SIGCONT), 0);
    for (int i = 0; i < 4; i++) {
        int type;
        void *body = NULL;
        size_t len;
        struct derecho_join_answer ans;
        ck_assert_int_eq(
            derecho_control_recv(fd[i], 10000, 4096, &type, &body, &len, NULL),
            0);
        ck_assert_int_eq(type, DERECHO_CONTROL_JOIN_ANSWER);
        ck_assert_int_eq(derecho_join_answer_decode(body, len, &ans), 0);
        free(body);
        ck_assert_int_eq(ans.status, DERECHO_JOIN_ACCEPTED);
        ck_assert_uint_eq(ans.leader_id, 0);
        ck_assert_int_eq(derecho_control_recv(fd[i], 10000, 1 << 20, &type,
                                              &body, &len, NULL),
                         0);
        ck_assert_int_eq(type, DERECHO_CONTROL_VIEW);
        struct derecho_view *v = NULL;
        ck_assert_int_eq(
            derecho_view_decode(body, len, 10 + (uint32_t)i, &v, NULL), 0);
        free(body);
        ck_assert_int_eq(derecho_view_id(v), 1);
        ck_assert_uint_eq(derecho_view_num_members(v), 5);
        size_t joined;
        derecho_view_joined(v, &joined);
        ck_assert_uint_eq(joined, 4);
        ck_assert_int_eq(derecho_view_my_rank(v), 1 + i);
        derecho_view_destroy(v);
    }
    for (int i = 0; i < 4; i++)
        close(fd[i]); /* they leave: the leader goes back to itself */
    ck_assert_int_eq(th_wait_all(&p, 60000), 0);
    ck_assert_msg(th_exited_ok(&p, leader), "status %#x", p.status[leader]);
}
END_TEST

/* Reads the answer and the first view on a raw joiner's connection. */
static struct derecho_view *admitted(int fd, uint32_t id)
{
    int type;
    void *body = NULL;
    size_t len;
    struct derecho_join_answer ans;
    ck_assert_int_eq(
        derecho_control_recv(fd, 10000, 4096, &type, &body, &len, NULL), 0);
    ck_assert_int_eq(type, DERECHO_CONTROL_JOIN_ANSWER);
    ck_assert_int_eq(derecho_join_answer_decode(body, len, &ans), 0);
    free(body);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_ACCEPTED);
    ck_assert_int_eq(
        derecho_control_recv(fd, 10000, 1 << 20, &type, &body, &len, NULL), 0);
    ck_assert_int_eq(type, DERECHO_CONTROL_VIEW);
    struct derecho_view *v = NULL;
    ck_assert_int_eq(derecho_view_decode(body, len, id, &v, NULL), 0);
    free(body);
    return v;
}

START_TEST(stalled_connections_do_not_delay_joins)
{
    uint16_t port[1];
    ck_assert_int_eq(th_free_tcp_ports(port, 1), 0);
    struct th_procs p;
    th_procs_init(&p);
    int leader = spawn(&p, 0, port[0], port[0], 2, "Counter", "shrink", NULL);
    int probe = -1;
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[0], 20000, &probe), 0);
    close(probe);
    /* While the leader is stopped: ten connections that send a header and
     * part of a body and then nothing, and a real join request after
     * them.  A leader that waited on each stalled frame in turn would
     * admit the joiner only after giving up on all ten (closing them);
     * ours admits it while they are still pending. */
    stop(&p, leader);
    uint8_t frame[DERECHO_CONTROL_HEADER_SIZE + 4];
    struct mutils_writer w;
    mutils_writer_init(&w, frame, sizeof(frame));
    mutils_put_u32(&w, DERECHO_CONTROL_MAGIC);
    mutils_put_u16(&w, DERECHO_PROTOCOL_VERSION);
    mutils_put_u8(&w, DERECHO_CONTROL_JOIN_REQUEST);
    const uint16_t endian_probe = 1;
    mutils_put_u8(&w, *(const uint8_t *)&endian_probe ? 1 : 2);
    mutils_put_u8(&w, (uint8_t)sizeof(void *));
    mutils_put_u8(&w, 0);
    mutils_put_u32(&w, 100);
    mutils_put_u32(&w, 0);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    int stalled[10], joiner;
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(
            derecho_control_connect("127.0.0.1", port[0], 5000, &stalled[i]),
            0);
        ck_assert_int_eq(send(stalled[i], frame, sizeof(frame), MSG_NOSIGNAL),
                         (ssize_t)sizeof(frame));
    }
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[0], 5000, &joiner), 0);
    send_request(joiner, 1, 40000, counter_fingerprint());
    ck_assert_int_eq(th_signal(&p, leader, SIGCONT), 0);
    struct derecho_view *v = admitted(joiner, 1);
    ck_assert_uint_eq(derecho_view_num_members(v), 2);
    derecho_view_destroy(v);
    for (int i = 0; i < 10; i++) {
        struct pollfd q = {.fd = stalled[i], .events = POLLIN};
        ck_assert_msg(poll(&q, 1, 0) == 0,
                      "stalled connection %d was closed before the join", i);
    }
    close(joiner); /* leaves: the leader goes back to itself */
    ck_assert_int_eq(th_wait_all(&p, 60000), 0);
    ck_assert_msg(th_exited_ok(&p, leader), "status %#x", p.status[leader]);
    for (int i = 0; i < 10; i++)
        close(stalled[i]);
}
END_TEST

START_TEST(a_member_redirects_without_waiting_on_stalled_peers)
{
    uint16_t port[2];
    ck_assert_int_eq(th_free_tcp_ports(port, 2), 0);
    char dir[512], done[600];
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(done, sizeof(done), "%s/done", dir);
    struct th_procs p;
    th_procs_init(&p);
    int leader = spawn(&p, 0, port[0], port[0], 2, "Counter", "shrink", NULL);
    int member = spawn(&p, 1, port[1], port[0], 2, "Counter", "linger", done);
    /* Member 1 listens before it joins; wait until it is in the group
     * (its joins are answered once it is), then stop it. */
    int probe = -1;
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[1], 20000, &probe), 0);
    send_request(probe, 7, 40000, counter_fingerprint());
    int type;
    void *body = NULL;
    size_t len;
    ck_assert_int_eq(
        derecho_control_recv(probe, 20000, 4096, &type, &body, &len, NULL), 0);
    free(body);
    close(probe);
    stop(&p, member);
    int stalled = -1, joiner = -1;
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[1], 5000, &stalled), 0);
    ck_assert_int_eq(send(stalled, "\x44\x52\x43\x4f\x01", 5, MSG_NOSIGNAL), 5);
    ck_assert_int_eq(
        derecho_control_connect("127.0.0.1", port[1], 5000, &joiner), 0);
    send_request(joiner, 9, 40000, counter_fingerprint());
    ck_assert_int_eq(th_signal(&p, member, SIGCONT), 0);
    struct derecho_join_answer ans;
    ck_assert_int_eq(
        derecho_control_recv(joiner, 10000, 4096, &type, &body, &len, NULL), 0);
    ck_assert_int_eq(type, DERECHO_CONTROL_JOIN_ANSWER);
    ck_assert_int_eq(derecho_join_answer_decode(body, len, &ans), 0);
    free(body);
    ck_assert_int_eq(ans.status, DERECHO_JOIN_REDIRECT);
    ck_assert_uint_eq(ans.leader_id, 0);
    ck_assert_uint_eq(ans.leader_port, port[0]);
    ck_assert_str_eq(ans.leader_ip, "127.0.0.1");
    struct pollfd q = {.fd = stalled, .events = POLLIN};
    ck_assert_int_eq(poll(&q, 1, 0), 0); /* still pending, not waited on */
    close(joiner);
    close(stalled);
    FILE *f = fopen(done, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(th_wait_all(&p, 60000), 0);
    ck_assert_msg(th_exited_ok(&p, leader), "status %#x", p.status[leader]);
    ck_assert_msg(th_exited_ok(&p, member), "status %#x", p.status[member]);
}
END_TEST

const struct th_child group_children[] = {{"member", child_member},
                                          {NULL, NULL}};

TCase *tc_group(void)
{
    TCase *tc = tcase_create("group");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, three_members_join_and_leave);
    tcase_add_test(tc, stats_name_a_suspected_member);
    tcase_add_test(tc, incompatible_and_duplicate_joiners_are_refused);
    tcase_add_test(tc, hostile_bytes_leave_the_group_alone);
    tcase_add_test(tc, joins_that_arrive_together_are_one_view_change);
    tcase_add_test(tc, stalled_connections_do_not_delay_joins);
    tcase_add_test(tc, a_member_redirects_without_waiting_on_stalled_peers);
    return tc;
}

/* The stress tier: every case 20 times in a row. */
TCase *tc_group_stress(void)
{
    TCase *tc = tcase_create("group-20x");
    tcase_set_timeout(tc, 180);
    tcase_add_loop_test(tc, three_members_join_and_leave, 0, 20);
    tcase_add_loop_test(tc, incompatible_and_duplicate_joiners_are_refused, 0,
                        20);
    tcase_add_loop_test(tc, hostile_bytes_leave_the_group_alone, 0, 20);
    tcase_add_loop_test(tc, joins_that_arrive_together_are_one_view_change, 0,
                        20);
    tcase_add_loop_test(tc, stalled_connections_do_not_delay_joins, 0, 20);
    tcase_add_loop_test(tc, a_member_redirects_without_waiting_on_stalled_peers,
                        0, 20);
    return tc;
}
