/* Membership changes and faults with real vs_stress processes, every case
 * checked by tests/tools/check_vs (suite derecho-vs, and the stress tier
 * derecho-vs-stress; the test in applications/meson.build passes the paths
 * in VS_STRESS, CHECK_VS and PYTHON3):
 *  - a join during traffic, 8 joiners admitted in one view, an incompatible
 *    joiner refused, a layout provisioned only by joins, a sockets-provider
 *    smoke, the join timeout from the configuration, a partition between
 *    two network namespaces and a member cut off there while stopped
 *    (root and iproute2 only; skipped otherwise), a cut link between two
 *    members (test-only hook);
 *  - stress: 16 members on 2 cores, 130 seeded fault schedules (30 with
 *    RDMC-sized messages). */
#include "test-derecho.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VS_MAX 20 /* members of one run */

/* One run: members by node id (index in p = spawn order, kept in idx). */
struct vs_run {
    char dir[512];
    uint16_t port[2 * VS_MAX];
    struct th_procs p;
    int idx[VS_MAX]; /* node id -> index in p, -1 not started */
    char log[VS_MAX][600];
    char err[VS_MAX][600]; /* each member's stderr */
    char resume[600];      /* --resume-file of the run */
};

static const char *env_path(const char *name)
{
    const char *v = getenv(name);
    ck_assert_msg(v && *v, "%s is not set (run through meson test)", name);
    return v;
}

static void vs_init(struct vs_run *r)
{
    memset(r, 0, sizeof(*r));
    ck_assert_int_eq(th_free_tcp_ports(r->port, 2 * VS_MAX), 0);
    ck_assert_int_eq(th_tmpdir(r->dir, sizeof(r->dir)), 0);
    th_procs_init(&r->p);
    for (int i = 0; i < VS_MAX; i++) {
        r->idx[i] = -1;
        snprintf(r->log[i], sizeof(r->log[i]), "%s/m%d.log", r->dir, i);
        snprintf(r->err[i], sizeof(r->err[i]), "%s/m%d.err", r->dir, i);
    }
    snprintf(r->resume, sizeof(r->resume), "%s/resume", r->dir);
}

/* Splits words (space-separated) into argv at *k. */
static void add_words(char *words, const char **argv, int *k, int max)
{
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w;
         w = strtok_r(NULL, " ", &save)) {
        ck_assert_int_lt(*k, max - 1);
        argv[(*k)++] = w;
    }
}

/* Starts member id: in network namespace ns (NULL: this one), at ip with
 * the contact (member 0) at contact_ip, with conf overrides conf_extra and
 * vs_stress options opts (both space-separated; may be ""); its log is
 * log[id], its stderr err[id]. */
static void vs_start_at(struct vs_run *r, int id, const char *ns,
                        const char *ip, const char *contact_ip,
                        const char *conf_extra, const char *opts)
{
    ck_assert(id >= 0 && id < VS_MAX && r->idx[id] < 0);
    const char *vs = env_path("VS_STRESS");
    char script[800];
    struct td_vs_args a;
    char *extra = strdup(conf_extra), *o = strdup(opts);
    ck_assert(extra && o);
    /* The shell only redirects stderr, then becomes vs_stress (same pid:
     * signals reach it). */
    snprintf(script, sizeof(script), "exec \"$0\" \"$@\" 2>'%s'", r->err[id]);
    const char *argv[64];
    int k = 0;
    if (ns) {
        argv[k++] = "ip";
        argv[k++] = "netns";
        argv[k++] = "exec";
        argv[k++] = ns;
    }
    argv[k++] = "/bin/sh";
    argv[k++] = "-c";
    argv[k++] = script;
    argv[k++] = vs;
    /* Ports, addresses and TD_SUSPECT_MS unless conf_extra gives its own
     * suspicion timeout (a later override wins). */
    td_vs_member_args(&a, id, r->port, ip, contact_ip, argv, &k);
    add_words(extra, argv, &k, 64);
    argv[k++] = "--";
    add_words(o, argv, &k, 64);
    argv[k++] = "--log";
    argv[k++] = r->log[id];
    argv[k] = NULL;
    const char *path = "/bin/sh";
    if (ns)
        path = access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip";
    int i = th_spawn_exec(&r->p, path, argv);
    ck_assert_int_ge(i, 0);
    r->idx[id] = i;
    free(extra);
    free(o);
}

static void vs_start(struct vs_run *r, int id, const char *conf_extra,
                     const char *opts)
{
    vs_start_at(r, id, NULL, "127.0.0.1", "127.0.0.1", conf_extra, opts);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Lines of a file that start with prefix. */
static int lines_with(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int count = 0;
    while (f && fgets(line, sizeof(line), f))
        count += strncmp(line, prefix, strlen(prefix)) == 0;
    if (f)
        fclose(f);
    return count;
}

/* Does a line of the file contain every one of the words? */
static bool line_has(const char *path, const char *w1, const char *w2)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (!found && f && fgets(line, sizeof(line), f))
        found = strstr(line, w1) && (!w2 || strstr(line, w2));
    if (f)
        fclose(f);
    return found;
}

/* The k-th (0-based) view line of a log: its id and member count (a
 * member list in members when not NULL).  False when there is none. */
static bool view_line(const char *path, int k, long *id, int *count,
                      char *members, size_t len)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (!found && f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "view ", 5) != 0 || k-- > 0)
            continue;
        char *list = strchr(line + 5, ' ');
        if (!list)
            break;
        *id = strtol(line + 5, NULL, 10);
        list++;
        list[strcspn(list, "\n")] = 0;
        *count = 1;
        for (char *c = list; *c; c++)
            *count += *c == ',';
        if (members)
            snprintf(members, len, "%s", list);
        found = true;
    }
    if (f)
        fclose(f);
    return found;
}

/* Deliveries in a log whose view id is view. */
static int deliveries_in_view(const char *path, long view)
{
    FILE *f = fopen(path, "r");
    char line[256];
    int count = 0;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned sg, shard;
        long v;
        if (sscanf(line, "deliver %u %u %ld", &sg, &shard, &v) == 3 &&
            v == view)
            count++;
    }
    if (f)
        fclose(f);
    return count;
}

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
}

/* Exit status of member id (after vs_wait). */
static int vs_status(const struct vs_run *r, int id)
{
    return r->p.status[r->idx[id]];
}

static void vs_wait(struct vs_run *r, int timeout_ms)
{
    ck_assert_msg(th_wait_all(&r->p, timeout_ms) == 0,
                  "members still running after %d ms (killed)", timeout_ms);
}

static void dump_err(const struct vs_run *r, int id)
{
    FILE *e = fopen(r->err[id], "r");
    char line[512];
    while (e && fgets(line, sizeof(line), e))
        fprintf(stderr, "  member %d: %s", id, line);
    if (e)
        fclose(e);
}

/* Every member's stderr, for a failure message. */
static void dump_errs(const struct vs_run *r, int n)
{
    for (int id = 0; id < n; id++)
        dump_err(r, id);
}

static void expect_exit(const struct vs_run *r, int id, int code)
{
    int st = vs_status(r, id);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == code))
        dump_err(r, id);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == code,
                  "member %d: status %#x, expected exit %d (stderr in %s)", id,
                  st, code, r->err[id]);
}

/* check_vs over the logs of the members in ids (n of them; ids NULL: 0 ..
 * n - 1).  True when every property holds. */
static bool vs_check_ids(const struct vs_run *r, const int *ids, int n)
{
    const char *py = env_path("PYTHON3"), *check = env_path("CHECK_VS");
    struct th_procs c;
    th_procs_init(&c);
    const char *argv[VS_MAX + 4] = {py, check};
    int k = 2;
    for (int i = 0; i < n; i++)
        argv[k++] = r->log[ids ? ids[i] : i];
    argv[k] = NULL;
    ck_assert_int_ge(th_spawn_exec(&c, py, argv), 0);
    ck_assert_int_eq(th_wait_all(&c, 60000), 0);
    return th_exited_ok(&c, 0);
}

static void vs_check(const struct vs_run *r, int n)
{
    ck_assert_msg(vs_check_ids(r, NULL, n), "check_vs failed over %s", r->dir);
}

/* ---- a join during traffic ----------------------------------------------
 * Three members send 400 messages each and hold after 300 until the test
 * lets them go on; a fourth starts once member 0 delivered 100 (traffic
 * flowing), joins, sends its own 400.  The joiner's log starts with its
 * first view (4 members) and it delivers each earlier sender's last
 * message; every member finishes; check_vs over the four logs. */
START_TEST(vs_join_during_traffic)
{
    struct vs_run r;
    vs_init(&r);
    char opts[700];
    snprintf(opts, sizeof(opts),
             "--nodes 3 --messages 400 --sizes 100,3000 --senders all "
             "--pause-at 300 --resume-file %s",
             r.resume);
    for (int i = 0; i < 3; i++) {
        vs_start(&r, i, "", opts);
        if (i < 2)
            pause_ms(300);
    }
    ck_assert_msg(TH_WAIT_UNTIL(lines_with(r.log[0], "deliver ") >= 100, 30000),
                  "no traffic");
    vs_start(&r, 3, "",
             "--nodes 4 --messages 400 --sizes 100,3000 --senders all");
    long id = -1;
    int count = 0;
    ck_assert_msg(
        TH_WAIT_UNTIL(view_line(r.log[3], 0, &id, &count, NULL, 0), 30000),
        "the joiner was not admitted");
    touch(r.resume);
    vs_wait(&r, 120000);
    for (int i = 0; i < 4; i++)
        expect_exit(&r, i, 0);
    /* Its first line is its first view, of the four. */
    FILE *f = fopen(r.log[3], "r");
    char first[64] = "";
    ck_assert_ptr_nonnull(fgets(first, sizeof(first), f));
    fclose(f);
    ck_assert_msg(strncmp(first, "view ", 5) == 0, "joiner log starts: %s",
                  first);
    ck_assert_int_eq(count, 4);
    ck_assert_int_gt(id, 0);
    /* Members 0-2 delivered in the views before it; the joiner did not. */
    ck_assert_int_gt(deliveries_in_view(r.log[0], id - 1), 0);
    ck_assert_int_eq(deliveries_in_view(r.log[3], id - 1), 0);
    vs_check(&r, 4);
    th_rmtree(r.dir);
}
END_TEST

/* ---- 8 joiners at once --------------------------------------------------
 * The leader's join batching: requests read within BATCH_WINDOW_MS (50 ms)
 * of the first admitted one, while more connections are pending, are one
 * view change.  To make 8 joins arrive "together" deterministically the
 * leader (alone in view 0) is stopped while 8 vs_stress start; once the
 * kernel holds their 8 connections (ESTABLISHED on its gms_port) it
 * resumes and must admit all 8 in view 1 (9 members). */
static int established_on(uint16_t port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    char line[512];
    int count = 0;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned lport, st;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x", &lport, &st) == 2 &&
            lport == port && st == 1)
            count++;
    }
    if (f)
        fclose(f);
    return count;
}

START_TEST(vs_eight_joiners_one_view)
{
    struct vs_run r;
    vs_init(&r);
    const char *opts =
        "--nodes 9 --messages 60 --sizes 100,1000 --senders half";
    vs_start(&r, 0, "", opts);
    long id;
    int count;
    ck_assert(
        TH_WAIT_UNTIL(view_line(r.log[0], 0, &id, &count, NULL, 0), 30000));
    ck_assert_int_eq(th_signal(&r.p, r.idx[0], SIGSTOP), 0);
    for (int i = 1; i <= 8; i++)
        vs_start(&r, i, "", opts);
    bool all_in = TH_WAIT_UNTIL(established_on(r.port[0]) >= 8, 30000);
    ck_assert_int_eq(th_signal(&r.p, r.idx[0], SIGCONT), 0);
    ck_assert_msg(all_in, "only %d joiners connected",
                  established_on(r.port[0]));
    vs_wait(&r, 120000);
    for (int i = 0; i < 9; i++)
        expect_exit(&r, i, 0);
    char members[256];
    ck_assert(view_line(r.log[0], 1, &id, &count, members, sizeof(members)));
    ck_assert_msg(id == 1 && count == 9,
                  "view %ld has %d members (%s): the 8 joins were not one "
                  "view change",
                  id, count, members);
    vs_check(&r, 9);
    th_rmtree(r.dir);
}
END_TEST

/* ---- an incompatible joiner ---------------------------------------------
 * A vs_stress with --senders one declares another layout (max_senders is
 * part of the fingerprint): the leader refuses it, it exits 1 with a line
 * naming the layout fingerprint, and the group (held mid-traffic until the
 * refusal) never lists it and finishes. */
START_TEST(vs_incompatible_joiner_refused)
{
    struct vs_run r;
    vs_init(&r);
    char opts[700];
    snprintf(opts, sizeof(opts),
             "--nodes 3 --messages 300 --sizes 100,3000 --senders all "
             "--pause-at 100 --resume-file %s",
             r.resume);
    for (int i = 0; i < 3; i++) {
        vs_start(&r, i, "", opts);
        if (i < 2)
            pause_ms(300);
    }
    ck_assert(TH_WAIT_UNTIL(lines_with(r.log[0], "deliver ") >= 30, 30000));
    vs_start(&r, 3, "",
             "--nodes 4 --messages 300 --sizes 100,3000 --senders one");
    ck_assert_int_eq(th_wait_one(&r.p, r.idx[3], 30000), 0);
    touch(r.resume);
    vs_wait(&r, 120000);
    expect_exit(&r, 3, 1);
    ck_assert_msg(line_has(r.err[3], "refused", "layout fingerprint"),
                  "no refusal naming the field in %s", r.err[3]);
    for (int i = 0; i < 3; i++)
        expect_exit(&r, i, 0);
    ck_assert_int_eq(lines_with(r.log[3], ""), 0);
    for (int k = 0;; k++) {
        long id;
        int count;
        char members[256];
        if (!view_line(r.log[0], k, &id, &count, members, sizeof(members)))
            break;
        ck_assert_msg(count <= 3, "view %ld lists %s", id, members);
    }
    vs_check(&r, 3);
    th_rmtree(r.dir);
}
END_TEST

/* ---- a layout provisioned by joins --------------------------------------
 * --min-nodes 3: the one shard needs three members.  Each member starts
 * sending at its first view (--nodes 1); while the view has fewer than 3
 * members the subgroup is not provisioned and the first send waits in the
 * library; the third join provisions it and all traffic flows, in that
 * view only. */
START_TEST(vs_unprovisioned_until_joins)
{
    struct vs_run r;
    vs_init(&r);
    const char *opts = "--nodes 1 --min-nodes 3 --messages 200 --sizes "
                       "100,1000 --senders all";
    for (int i = 0; i < 3; i++) {
        vs_start(&r, i, "", opts);
        if (i < 2)
            pause_ms(300);
    }
    vs_wait(&r, 120000);
    for (int i = 0; i < 3; i++)
        expect_exit(&r, i, 0);
    ck_assert_msg(line_has(r.err[0], "not provisioned", NULL),
                  "member 0 did not wait for provisioning");
    long id;
    int count;
    long provisioned_view = -1;
    for (int k = 0; view_line(r.log[0], k, &id, &count, NULL, 0); k++) {
        if (count < 3)
            ck_assert_int_eq(deliveries_in_view(r.log[0], id), 0);
        else if (provisioned_view < 0)
            provisioned_view = id;
    }
    ck_assert_int_ge(provisioned_view, 2);
    ck_assert_int_eq(deliveries_in_view(r.log[0], provisioned_view), 600);
    vs_check(&r, 3);
    th_rmtree(r.dir);
}
END_TEST

/* ---- libfabric's sockets provider ---------------------------------------
 */
START_TEST(vs_sockets_provider_smoke)
{
    struct vs_run r;
    vs_init(&r);
    for (int i = 0; i < 3; i++) {
        vs_start(&r, i, "--RDMA/provider=sockets",
                 "--nodes 3 --messages 100 --sizes 100,3000 --senders all");
        if (i < 2)
            pause_ms(300);
    }
    vs_wait(&r, 120000);
    for (int i = 0; i < 3; i++)
        expect_exit(&r, i, 0);
    ck_assert_int_eq(lines_with(r.log[2], "deliver "), 300);
    vs_check(&r, 3);
    th_rmtree(r.dir);
}
END_TEST

/* ---- [DERECHO] join_timeout_ms ------------------------------------------
 * A joiner whose contact never answers gives up after the configured time
 * (1 s here; the default is 30 s) and exits 1 naming the timeout. */
START_TEST(vs_join_timeout_from_conf)
{
    struct vs_run r;
    vs_init(&r);
    /* Member 1's contact is port[0], where nothing listens. */
    int64_t t0 = th_now_ms();
    vs_start(&r, 1, "--DERECHO/join_timeout_ms=1000",
             "--nodes 2 --messages 1 --sizes 1");
    ck_assert_int_eq(th_wait_one(&r.p, r.idx[1], 20000), 0);
    int64_t took = th_now_ms() - t0;
    expect_exit(&r, 1, 1);
    ck_assert_msg(took >= 900 && took < 10000, "gave up after %" PRId64 " ms",
                  took);
    th_rmtree(r.dir);
}
END_TEST

/* ---- the leader dies with a joiner proposed ------------------------------
 * Members 0-2 hold their traffic; member 3 joins through member 2 (not
 * the leader: it redirects to 0).  Member 0 runs with the test-only hook
 * (docs/derecho.md): once every member acknowledged its proposal of 3's
 * join it creates a file and holds the commit; the test kills it then.
 * Member 1 takes the proposal over (3's join and 0's failure).  The
 * joiner finds its connection closed unanswered and starts again from its
 * contact: either the new leader admits it before committing (and tells
 * it that view), or the view committed without it (3 never sets up its
 * table, the next view removes it) and a later view admits it.  Either
 * way its first view is 1,2,3 with the same id and members everywhere
 * (check_vs over the four logs), and 1-3 finish. */
START_TEST(vs_leader_dies_with_joiner_proposed)
{
    struct vs_run r;
    vs_init(&r);
    char opts[700], hook[600], contact[64];
    snprintf(opts, sizeof(opts),
             "--nodes 3 --messages 300 --sizes 100,1000 --senders all "
             "--pause-at 100 --resume-file %s",
             r.resume);
    snprintf(hook, sizeof(hook), "%s/hook", r.dir);
    setenv("DERECHO_TEST_PROPOSE_HOOK", hook, 1);
    setenv("DERECHO_TEST_PROPOSE_HOOK_JOIN", "3", 1);
    vs_start(&r, 0, "", opts);
    unsetenv("DERECHO_TEST_PROPOSE_HOOK");
    unsetenv("DERECHO_TEST_PROPOSE_HOOK_JOIN");
    for (int i = 1; i < 3; i++) {
        pause_ms(300);
        vs_start(&r, i, "", opts);
    }
    ck_assert_msg(TH_WAIT_UNTIL(lines_with(r.log[0], "deliver ") >= 100, 30000),
                  "no traffic");
    snprintf(contact, sizeof(contact), "--DERECHO/contact_port=%u", r.port[2]);
    vs_start(&r, 3, contact,
             "--nodes 3 --messages 100 --sizes 100,1000 --senders all");
    bool hooked = TH_WAIT_UNTIL(access(hook, F_OK) == 0, 30000);
    ck_assert_int_eq(th_signal(&r.p, r.idx[0], SIGKILL), 0);
    if (!hooked)
        dump_errs(&r, 4);
    ck_assert_msg(hooked, "the leader never proposed the join of 3");
    long id;
    int count;
    char members[256];
    bool in =
        TH_WAIT_UNTIL(view_line(r.log[3], 0, &id, &count, NULL, 0), 30000);
    touch(r.resume);
    if (!in)
        dump_errs(&r, 4);
    ck_assert_msg(in, "the joiner was not admitted after its leader died");
    bool ended = th_wait_all(&r.p, 120000) == 0;
    if (!ended)
        dump_errs(&r, 4);
    ck_assert_msg(ended, "members still running after 120 s (killed)");
    for (int i = 1; i < 4; i++) {
        int st = vs_status(&r, i);
        if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            dump_errs(&r, 4);
        expect_exit(&r, i, 0);
    }
    ck_assert_msg(line_has(r.err[3], "closed my connection", NULL),
                  "the joiner did not start again (stderr %s)", r.err[3]);
    ck_assert(view_line(r.log[3], 0, &id, &count, members, sizeof(members)));
    /* 1 and 2 in the order they joined at the start (either, under load),
     * 3 last. */
    ck_assert_msg(count == 3 && (strcmp(members, "1,2,3") == 0 ||
                                 strcmp(members, "2,1,3") == 0),
                  "the joiner's first view %ld: %s", id, members);
    vs_check(&r, 4);
    th_rmtree(r.dir);
}
END_TEST

/* ---- a broken link between two members -----------------------------------
 * Members 0-2 send; once traffic flows, the test-only hook
 * DERECHO_TEST_BREAK_LINK (docs/derecho.md) makes member 1 fail its
 * connection to member 2: each of the two suspects the other (broken
 * connection), member 0 still reaches both.  Member 0 is stopped while
 * this happens (well under the 500 ms suspicion timeout), so that both
 * rows' suspicions are usually waiting for it when it runs again.  Rows 1
 * and 2 are then each suspected by the other live row, so member 0 takes
 * neither as news of a failure (a member on its way out suspects
 * everyone) except the lowest, row 1, as all rows with news are such
 * rows: it suspects 2 and installs 0,1.  When it reads one row before the
 * other reached it, it follows that one (0,2).  Either way exactly one of
 * the two is removed and stops (it learns 0's suspicion: expelled), the
 * other and 0 finish.  Taking the union of the rows (the first rule) made
 * 0 suspect both and stop partitioned; skipping rows on their way out
 * without the fallback left 0 suspecting nobody: no view change (both
 * failed 2 of 2 runs). */
START_TEST(vs_broken_link_removes_one_side)
{
    struct vs_run r;
    vs_init(&r);
    char opts[700], hook[600];
    snprintf(opts, sizeof(opts),
             "--nodes 3 --messages 300 --sizes 100,1000 --senders all "
             "--pause-at 100 --resume-file %s",
             r.resume);
    char cut[560];
    snprintf(cut, sizeof(cut), "%s/cut", r.dir);
    snprintf(hook, sizeof(hook), "%s:2", cut);
    for (int i = 0; i < 3; i++) {
        if (i == 1)
            setenv("DERECHO_TEST_BREAK_LINK", hook, 1);
        vs_start(&r, i, "", opts);
        unsetenv("DERECHO_TEST_BREAK_LINK");
        if (i < 2)
            pause_ms(300);
    }
    ck_assert_msg(TH_WAIT_UNTIL(lines_with(r.log[0], "deliver ") >= 100 &&
                                    lines_with(r.log[2], "deliver ") >= 100,
                                30000),
                  "no traffic");
    int views = lines_with(r.log[0], "view ");
    /* Member 0 is stopped while the link breaks (well under the 500 ms
     * suspicion timeout), so that both rows' suspicions have reached it
     * when it runs again: it must choose between them. */
    ck_assert_int_eq(th_signal(&r.p, r.idx[0], SIGSTOP), 0);
    touch(cut);
    bool both = TH_WAIT_UNTIL(line_has(r.err[1], "node 2 suspected", NULL) &&
                                  line_has(r.err[2], "node 1 suspected", NULL),
                              300);
    ck_assert_int_eq(th_signal(&r.p, r.idx[0], SIGCONT), 0);
    if (!both)
        fprintf(stderr, "vs_broken_link_removes_one_side: the two "
                        "suspicions took over 300 ms (member 0 resumed)\n");
    long id;
    int count;
    char members[256];
    bool changed = TH_WAIT_UNTIL(
        view_line(r.log[0], views, &id, &count, members, sizeof(members)),
        30000);
    touch(r.resume);
    if (!changed)
        dump_errs(&r, 3);
    ck_assert_msg(changed, "no view change after the link 1-2 broke");
    vs_wait(&r, 120000);
    ck_assert_msg(line_has(r.err[1], "DERECHO_TEST_BREAK_LINK", "node 2"),
                  "the hook did not run (stderr %s)", r.err[1]);
    bool keeps1 = strcmp(members, "0,1") == 0;
    if (!keeps1 && strcmp(members, "0,2") != 0)
        dump_errs(&r, 3);
    ck_assert_msg(keeps1 || strcmp(members, "0,2") == 0,
                  "member 0's view after the cut %ld: %s (expected 0,1 or "
                  "0,2)",
                  id, members);
    if (!keeps1)
        fprintf(stderr, "vs_broken_link_removes_one_side: member 0 read "
                        "row 2 first (view 0,2)\n");
    expect_exit(&r, 0, 0);
    expect_exit(&r, keeps1 ? 1 : 2, 0);
    expect_exit(&r, keeps1 ? 2 : 1, 3);
    vs_check(&r, 3);
    th_rmtree(r.dir);
}
END_TEST

/* A case of its own (CK_RUN_CASE=vs_join_leader_dies replays it). */
TCase *tc_vs_join_leader_dies(void)
{
    TCase *tc = tcase_create("vs_join_leader_dies");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, vs_leader_dies_with_joiner_proposed);
    return tc;
}

/* ---- a partition between two network namespaces -------------------------
 * Members 0 and 1 in namespace A, member 2 in B, joined by a veth pair.
 * Once traffic flows, iptables in B drops everything on the veth (tc
 * netem is not available here): member 2 (the minority) stops as
 * partitioned (exit 4) without delivering what the majority does not
 * (check_vs) and without installing a view after the cut (its last view
 * is still of the three); 0 and 1 install a view without it and finish. */
static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static int net_octet;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* Unchecked fixture (runs in the runner): names unique to this run, and
 * the namespaces removed whatever the test did. */
static void netns_setup(void)
{
    int pid = (int)getpid();
    snprintf(ns_a, sizeof(ns_a), "dtA%d", pid);
    snprintf(ns_b, sizeof(ns_b), "dtB%d", pid);
    snprintf(veth_a, sizeof(veth_a), "dta%d", pid % 100000);
    snprintf(veth_b, sizeof(veth_b), "dtb%d", pid % 100000);
    net_octet = 20 + pid % 200;
}

static void netns_teardown(void)
{
    if (geteuid() == 0)
        sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; "
           "ip link del %s 2>/dev/null; true",
           ns_a, ns_b, veth_a);
}

START_TEST(vs_partition_minority_stops)
{
    if (geteuid() != 0 || sh("ip netns list >/dev/null 2>&1") != 0 ||
        sh("iptables --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP vs_partition_minority_stops: needs root, "
                        "iproute2 (ip netns) and iptables\n");
        return;
    }
    char ip_a[32], ip_b[32];
    snprintf(ip_a, sizeof(ip_a), "10.231.%d.1", net_octet);
    snprintf(ip_b, sizeof(ip_b), "10.231.%d.2", net_octet);
    int rc =
        sh("ip netns add %s && ip netns add %s && "
           "ip link add %s type veth peer name %s && "
           "ip link set %s netns %s && ip link set %s netns %s && "
           "ip -n %s addr add %s/24 dev %s && "
           "ip -n %s addr add %s/24 dev %s && "
           "ip -n %s link set %s up && ip -n %s link set %s up && "
           "ip -n %s link set lo up && ip -n %s link set lo up",
           ns_a, ns_b, veth_a, veth_b, veth_a, ns_a, veth_b, ns_b, ns_a, ip_a,
           veth_a, ns_b, ip_b, veth_b, ns_a, veth_a, ns_b, veth_b, ns_a, ns_b);
    if (rc != 0) {
        fprintf(stderr, "SKIP vs_partition_minority_stops: cannot create "
                        "network namespaces and a veth pair here\n");
        return;
    }
    struct vs_run r;
    vs_init(&r);
    char opts[700];
    snprintf(opts, sizeof(opts),
             "--nodes 3 --messages 400 --sizes 100,1000 --senders all "
             "--pause-at 200 --resume-file %s",
             r.resume);
    vs_start_at(&r, 0, ns_a, ip_a, ip_a, "", opts);
    pause_ms(300);
    vs_start_at(&r, 1, ns_a, ip_a, ip_a, "", opts);
    pause_ms(300);
    vs_start_at(&r, 2, ns_b, ip_b, ip_a, "", opts);
    ck_assert_msg(TH_WAIT_UNTIL(lines_with(r.log[2], "deliver ") >= 100, 30000),
                  "no traffic across the namespaces");
    ck_assert_int_eq(sh("ip netns exec %s iptables -A INPUT -i %s -j DROP && "
                        "ip netns exec %s iptables -A OUTPUT -o %s -j DROP",
                        ns_b, veth_b, ns_b, veth_b),
                     0);
    touch(r.resume);
    vs_wait(&r, 120000);
    expect_exit(&r, 2, 4);
    expect_exit(&r, 0, 0);
    expect_exit(&r, 1, 0);
    ck_assert_msg(line_has(r.err[2], "partitioned", NULL),
                  "member 2 did not report the partition");
    /* The majority's last views do not list 2; the minority never
     * installed a view without 0 or 1. */
    long id;
    int count;
    char members[256];
    bool without_2 = false;
    for (int k = 0; view_line(r.log[0], k, &id, &count, members, 256); k++)
        without_2 |= strcmp(members, "0,1") == 0;
    ck_assert_msg(without_2, "members 0 and 1 never installed a view "
                             "without 2");
    int k = 0;
    while (view_line(r.log[2], k, &id, &count, members, 256))
        k++;
    ck_assert(k > 0 && view_line(r.log[2], k - 1, &id, &count, members, 256));
    ck_assert_msg(count == 3, "the minority's last view %ld: %s", id, members);
    vs_check(&r, 3);
    th_rmtree(r.dir);
}
END_TEST

/* ---- removed while stopped, and never told -------------------------------
 * Members 0 and 1 in namespace A, member 2 in B (as above); heartbeat 200
 * ms, suspicion timeout 600 ms.  Member 2 is stopped for 550 ms, and B
 * drops everything on the veth from then on: 0 and 1 suspect it by its
 * silent heartbeat and go on without it, and no row saying so can reach
 * it.  Resumed, 2 hears nobody, suspects both, has no majority, and no row
 * tells it it was removed: only its own stall can.  Its timer saw a stall
 * of 550 ms minus up to one tick (150 ms) = 400-550 ms, under the timeout;
 * the others see a member silent for its stall plus up to one heartbeat
 * period, which "stall + heartbeat_ms >= timeout" accounts for: it must
 * stop as expelled (exit 3), not partitioned (the rule "stall >= timeout"
 * said partitioned). */
static bool make_netns(char *ip_a, char *ip_b, size_t len)
{
    netns_teardown(); /* an earlier case's */
    snprintf(ip_a, len, "10.231.%d.1", net_octet);
    snprintf(ip_b, len, "10.231.%d.2", net_octet);
    return sh("ip netns add %s && ip netns add %s && "
              "ip link add %s type veth peer name %s && "
              "ip link set %s netns %s && ip link set %s netns %s && "
              "ip -n %s addr add %s/24 dev %s && "
              "ip -n %s addr add %s/24 dev %s && "
              "ip -n %s link set %s up && ip -n %s link set %s up && "
              "ip -n %s link set lo up && ip -n %s link set lo up",
              ns_a, ns_b, veth_a, veth_b, veth_a, ns_a, veth_b, ns_b, ns_a,
              ip_a, veth_a, ns_b, ip_b, veth_b, ns_a, veth_a, ns_b, veth_b,
              ns_a, ns_b) == 0;
}

START_TEST(vs_stall_plus_heartbeat_is_expelled)
{
    if (geteuid() != 0 || sh("ip netns list >/dev/null 2>&1") != 0 ||
        sh("iptables --version >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP vs_stall_plus_heartbeat_is_expelled: needs "
                        "root, iproute2 (ip netns) and iptables\n");
        return;
    }
    char ip_a[32], ip_b[32];
    if (!make_netns(ip_a, ip_b, sizeof(ip_a))) {
        fprintf(stderr, "SKIP vs_stall_plus_heartbeat_is_expelled: cannot "
                        "create network namespaces and a veth pair here\n");
        return;
    }
    struct vs_run r;
    vs_init(&r);
    char opts[700];
    snprintf(opts, sizeof(opts),
             "--nodes 3 --messages 300 --sizes 100,1000 --senders all "
             "--pause-at 100 --resume-file %s",
             r.resume);
    const char *conf =
        "--DERECHO/heartbeat_ms=200 --DERECHO/sst_poll_cq_timeout_ms=600";
    vs_start_at(&r, 0, ns_a, ip_a, ip_a, conf, opts);
    pause_ms(300);
    vs_start_at(&r, 1, ns_a, ip_a, ip_a, conf, opts);
    pause_ms(300);
    vs_start_at(&r, 2, ns_b, ip_b, ip_a, conf, opts);
    ck_assert_msg(TH_WAIT_UNTIL(lines_with(r.log[2], "deliver ") >= 100, 30000),
                  "no traffic across the namespaces");
    int views = lines_with(r.log[0], "view ");
    ck_assert_int_eq(th_signal(&r.p, r.idx[2], SIGSTOP), 0);
    int cut = sh("ip netns exec %s iptables -A INPUT -i %s -j DROP && "
                 "ip netns exec %s iptables -A OUTPUT -o %s -j DROP",
                 ns_b, veth_b, ns_b, veth_b);
    pause_ms(550);
    ck_assert_int_eq(th_signal(&r.p, r.idx[2], SIGCONT), 0);
    ck_assert_int_eq(cut, 0);
    long id;
    int count;
    char members[256];
    bool changed = TH_WAIT_UNTIL(
        view_line(r.log[0], views, &id, &count, members, sizeof(members)),
        30000);
    touch(r.resume);
    if (!changed)
        dump_errs(&r, 3);
    ck_assert_msg(changed, "no view change after member 2 was cut off");
    vs_wait(&r, 120000);
    ck_assert_msg(strcmp(members, "0,1") == 0,
                  "member 0's view after the cut %ld: %s (expected 0,1)", id,
                  members);
    expect_exit(&r, 0, 0);
    expect_exit(&r, 1, 0);
    bool told = line_has(r.err[2], "suspects me", NULL);
    if (told)
        dump_errs(&r, 3);
    ck_assert_msg(!told,
                  "a row told member 2 it was removed: the case did not "
                  "test its own stall (stderr %s)",
                  r.err[2]);
    expect_exit(&r, 2, 3);
    ck_assert_msg(
        line_has(r.err[2], "stalled past the suspicion timeout", NULL),
        "member 2 did not decide by its stall (stderr %s)", r.err[2]);
    vs_check(&r, 3);
    th_rmtree(r.dir);
    netns_teardown();
}
END_TEST

/* ---- a stalled RDMC relay (issue 15) ------------------------------------
 * One sender (member 0) of RDMC-sized messages over a chain schedule
 * (member 1 relays to member 2, or is the last receiver when it joined
 * after 2).  The suspicion timeout is a minute,
 * the RDMC stall timeout 2 s: member 1 stopped (its connections stay up)
 * is noticed only by librdmc, which names it at the member waiting for its
 * blocks; libderecho suspects it and the survivors install a view of
 * members 0 and 2 within seconds (before: the stall named no one, nothing
 * was suspected, sender 0's messages waited for the heartbeat minute).
 * Members 0 and 2 stay and finish; check_vs over every log. */
START_TEST(vs_rdmc_stalled_relay_removed)
{
    struct vs_run r;
    vs_init(&r);
    const char *conf = "--DERECHO/sst_poll_cq_timeout_ms=60000 "
                       "--DERECHO/rdmc_timeout_ms=2000 "
                       "--SUBGROUP/DEFAULT/max_payload_size=262144 "
                       "--SUBGROUP/DEFAULT/block_size=65536 "
                       "--SUBGROUP/DEFAULT/rdmc_send_algorithm=chain_send";
    /* One sender (member 0) of RDMC-sized messages only: a transfer is
     * almost always in flight (with every member sending mixed sizes the
     * senders were often held by their SMC windows instead). */
    const char *opts = "--nodes 3 --messages 600 --sizes 200000 --senders one";
    for (int i = 0; i < 3; i++) {
        vs_start(&r, i, conf, opts);
        if (i < 2)
            pause_ms(300);
    }
    ck_assert_msg(TH_WAIT_UNTIL(lines_with(r.log[0], "deliver ") >= 60, 60000),
                  "no traffic");
    int views = lines_with(r.log[0], "view "); /* the last: of three */
    ck_assert_int_ge(views, 1);
    /* A member stopped while no transfer waits for it (every started
     * message complete there, the sender held by its ring until member 1
     * delivers) stalls nothing: only the one-minute heartbeat would see
     * it.  So: stop it, and if no stall was reported within 10 s, let it
     * run until traffic moved on and stop it again (three attempts).  A
     * reported stall must end in the view without it. */
    long id = -1;
    int count = 0;
    char members[64] = "";
    bool removed = false, stalled = false;
    int64_t t0 = 0;
    for (int attempt = 0; attempt < 3 && !removed; attempt++) {
        int before = lines_with(r.log[0], "deliver ");
        ck_assert_int_eq(th_signal(&r.p, r.idx[1], SIGSTOP), 0);
        t0 = th_now_ms();
        /* the first view after the one of three */
        removed = TH_WAIT_UNTIL(
            view_line(r.log[0], views, &id, &count, members, sizeof(members)),
            10000);
        stalled = line_has(r.err[0], "stalled waiting for node", NULL) ||
                  line_has(r.err[2], "stalled waiting for node", NULL);
        if (removed || stalled)
            break;
        fprintf(stderr,
                "vs_rdmc_stalled_relay_removed: attempt %d: no transfer "
                "stalled (none in flight when member 1 stopped)\n",
                attempt);
        ck_assert_int_eq(th_signal(&r.p, r.idx[1], SIGCONT), 0);
        ck_assert_msg(
            TH_WAIT_UNTIL(lines_with(r.log[0], "deliver ") >= before + 20,
                          30000),
            "no traffic after member 1 resumed");
    }
    if (stalled && !removed)
        removed = TH_WAIT_UNTIL(
            view_line(r.log[0], views, &id, &count, members, sizeof(members)),
            10000);
    if (!removed) {
        for (int m = 0; m < 3; m += 2) { /* the survivors' stderr */
            fprintf(stderr, "---- member %d stderr:\n", m);
            FILE *f = fopen(r.err[m], "r");
            char line[512];
            while (f && fgets(line, sizeof(line), f))
                fputs(line, stderr);
            if (f)
                fclose(f);
        }
    }
    ck_assert_msg(removed,
                  stalled ? "a stall named a member, no new view within 20 s"
                          : "member 1 stopped three times, no stall");
    int64_t took = th_now_ms() - t0;
    fprintf(stderr,
            "vs_rdmc_stalled_relay_removed: view %ld {%s} %lld ms "
            "after SIGSTOP\n",
            id, members, (long long)took);
    ck_assert_msg(strcmp(members, "0,2") == 0, "the next view is {%s}",
                  members);
    ck_assert_msg(
        line_has(r.err[0], "RDMC transfer stalled waiting for node", NULL) ||
            line_has(r.err[2], "RDMC transfer stalled waiting for node", NULL),
        "no stall named a member (stderr in %s)", r.dir);
    ck_assert_int_eq(th_signal(&r.p, r.idx[1], SIGKILL), 0);
    vs_wait(&r, 120000);
    expect_exit(&r, 0, 0);
    expect_exit(&r, 2, 0);
    vs_check(&r, 3);
    th_rmtree(r.dir);
}
END_TEST

/* A case of its own (CK_RUN_CASE=vs_rdmc_stall replays it). */
TCase *tc_vs_rdmc_stall(void)
{
    TCase *tc = tcase_create("vs_rdmc_stall");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, vs_rdmc_stalled_relay_removed);
    return tc;
}

TCase *tc_vs_faults(void)
{
    TCase *tc = tcase_create("vs_faults");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, vs_join_during_traffic);
    tcase_add_test(tc, vs_eight_joiners_one_view);
    tcase_add_test(tc, vs_incompatible_joiner_refused);
    tcase_add_test(tc, vs_unprovisioned_until_joins);
    tcase_add_test(tc, vs_sockets_provider_smoke);
    tcase_add_test(tc, vs_join_timeout_from_conf);
    tcase_add_test(tc, vs_broken_link_removes_one_side);
    return tc;
}

TCase *tc_vs_partition(void)
{
    TCase *tc = tcase_create("vs_partition");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, netns_setup, netns_teardown);
    tcase_add_test(tc, vs_partition_minority_stops);
    tcase_add_test(tc, vs_stall_plus_heartbeat_is_expelled);
    return tc;
}

/* ---- stress tier ---------------------------------------------------------
 * 16 members on this machine's 2 cores: each sends, every one finishes
 * (all delivered from everyone), check_vs. */
START_TEST(vs_sixteen_members)
{
    const char *one = getenv("VS_SEED");
    if (one && *one)
        return; /* replaying one fault schedule only */
    struct vs_run r;
    vs_init(&r);
    for (int i = 0; i < 16; i++) {
        vs_start(&r, i, "",
                 "--nodes 16 --messages 100 --sizes 100,1000 --senders all");
        if (i < 15)
            pause_ms(300);
    }
    vs_wait(&r, 600000);
    for (int i = 0; i < 16; i++)
        expect_exit(&r, i, 0);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(lines_with(r.log[i], "deliver "), 1600);
    vs_check(&r, 16);
    th_rmtree(r.dir);
}
END_TEST

/* Seeded fault schedules over 5 members (at most 2 faults, so the
 * survivors always keep a majority): each fault hits a random member
 * (the leader, node 0, too when fault_leader() is 1: FAULT_LEADER, or the
 * environment's VS_FAULT_LEADER=0|1) at a random time after traffic
 * starts, with kill -9 or SIGSTOP for 50-2500 ms then SIGCONT.  A killed
 * member dies, a stopped one finishes (short stop) or stops as expelled
 * (exit 3), the others finish; check_vs over every log.  Seeds 1 ..
 * SCHEDULES send SMC-sized messages, SCHEDULES + 1 .. SCHEDULES +
 * RDMC_SCHEDULES mix in 200000-byte ones (over max_smc_payload_size: the
 * RDMC path, whose groups are set up at every view change).  The seed is
 * printed on failure, with every member's stderr; VS_SEED=k replays one. */
#define FAULT_LEADER 1
#define SCHEDULES 100
#define RDMC_SCHEDULES 30

static int fault_leader(void)
{
    const char *v = getenv("VS_FAULT_LEADER");
    return v && *v ? atoi(v) != 0 : FAULT_LEADER;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int landed; /* kills that hit a running member */
static int partitioned_not_expelled;

static void run_schedule(uint64_t seed)
{
    enum { N = 5 };
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    struct vs_run r;
    vs_init(&r);
    bool rdmc = seed > SCHEDULES;
    for (int i = 0; i < N; i++) {
        if (rdmc)
            vs_start(&r, i, "--SUBGROUP/DEFAULT/max_payload_size=262144",
                     "--nodes 5 --messages 2000 "
                     "--sizes 100,1000,5000,200000 --senders all");
        else
            vs_start(&r, i, "",
                     "--nodes 5 --messages 8000 --sizes 100,1000,5000 "
                     "--senders all");
        if (i < N - 1)
            pause_ms(300);
    }
    int faults = 1 + (int)(rng_next(&s) % 2);
    int victim[2] = {-1, -1}, kind[2] = {0, 0}; /* 0 kill, 1 stop */
    bool formed = TH_WAIT_UNTIL(lines_with(r.log[0], "view ") > 0 &&
                                    lines_with(r.log[N - 1], "view ") > 0,
                                30000);
    if (!formed)
        dump_errs(&r, N);
    ck_assert_msg(formed, "seed %" PRIu64 ": the group did not form", seed);
    for (int f = 0; f < faults; f++) {
        int first = fault_leader() ? 0 : 1;
        do
            victim[f] = first + (int)(rng_next(&s) % (uint64_t)(N - first));
        while (f == 1 && victim[1] == victim[0]);
        kind[f] = (int)(rng_next(&s) % 2);
        pause_ms((long)(rng_next(&s) % 800));
        int i = r.idx[victim[f]];
        if (kind[f] == 0) {
            ck_assert_int_eq(th_signal(&r.p, i, SIGKILL), 0);
            fprintf(stderr, "seed %" PRIu64 ": kill -9 of member %d\n", seed,
                    victim[f]);
        } else {
            ck_assert_int_eq(th_signal(&r.p, i, SIGSTOP), 0);
            long stop = 50 + (long)(rng_next(&s) % 2450);
            pause_ms(stop);
            th_signal(&r.p, i, SIGCONT);
            fprintf(stderr, "seed %" PRIu64 ": member %d stopped %ld ms\n",
                    seed, victim[f], stop);
        }
    }
    bool ended = th_wait_all(&r.p, 180000) == 0;
    if (!ended)
        dump_errs(&r, N);
    ck_assert_msg(ended, "seed %" PRIu64 ": members still running (killed)",
                  seed);
    int logs[N], nlogs = 0;
    for (int id = 0; id < N; id++) {
        int st = vs_status(&r, id);
        bool killed = (victim[0] == id && kind[0] == 0) ||
                      (victim[1] == id && kind[1] == 0);
        bool stopped = (victim[0] == id && kind[0] == 1) ||
                       (victim[1] == id && kind[1] == 1);
        if (killed) {
            /* Exit 0: it had finished before the signal came. */
            ck_assert_msg(WIFSIGNALED(st) ||
                              (WIFEXITED(st) && WEXITSTATUS(st) == 0),
                          "seed %" PRIu64 ": member %d: %#x", seed, id, st);
            landed += WIFSIGNALED(st);
        } else {
            /* A stopped member resumed after its removal must stop as
             * expelled (3): the others removed it, it is no minority. */
            if (stopped && WIFEXITED(st) && WEXITSTATUS(st) == 4) {
                partitioned_not_expelled++;
                fprintf(stderr,
                        "seed %" PRIu64 ": stopped member %d stopped as "
                        "partitioned (exit 4), not expelled; stderr:\n",
                        seed, id);
                FILE *e = fopen(r.err[id], "r");
                char line[512];
                while (e && fgets(line, sizeof(line), e))
                    fprintf(stderr, "  %s", line);
                if (e)
                    fclose(e);
            }
            bool ok = WIFEXITED(st) && (WEXITSTATUS(st) == 0 ||
                                        (stopped && WEXITSTATUS(st) == 3));
            if (!ok)
                dump_errs(&r, N);
            ck_assert_msg(ok,
                          "seed %" PRIu64 ": member %d (%s): status %#x "
                          "(stderr %s)",
                          seed, id, stopped ? "stopped" : "not hit", st,
                          r.err[id]);
        }
        logs[nlogs++] = id;
    }
    bool vs_ok = vs_check_ids(&r, logs, nlogs);
    if (!vs_ok)
        dump_errs(&r, N);
    ck_assert_msg(vs_ok, "seed %" PRIu64 ": check_vs failed over %s", seed,
                  r.dir);
    th_rmtree(r.dir);
}

START_TEST(vs_seeded_fault_schedules)
{
    const char *one = getenv("VS_SEED"); /* replay one schedule */
    if (one && *one) {
        run_schedule(strtoull(one, NULL, 10));
        return;
    }
    const char *from = getenv("VS_SEED_FIRST"); /* resume a long run */
    uint64_t first = from && *from ? strtoull(from, NULL, 10) : 1;
    for (uint64_t seed = first; seed <= SCHEDULES + RDMC_SCHEDULES; seed++) {
        fprintf(stderr, "vs_seeded_fault_schedules: seed %" PRIu64 "\n", seed);
        run_schedule(seed);
    }
    fprintf(stderr,
            "vs_seeded_fault_schedules: %d schedules, %d kills landed "
            "mid-run, %d resumed members stopped as partitioned instead of "
            "expelled\n",
            (int)(SCHEDULES + RDMC_SCHEDULES - first + 1), landed,
            partitioned_not_expelled);
}
END_TEST

TCase *tc_vs_faults_stress(void)
{
    TCase *tc = tcase_create("vs_faults_stress");
    tcase_set_timeout(tc, 3000);
    tcase_add_test(tc, vs_sixteen_members);
    tcase_add_test(tc, vs_seeded_fault_schedules);
    return tc;
}
