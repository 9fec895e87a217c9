/* Tests of the test harness itself. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static bool path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- children used by the tests -------------------------------------- */

static int child_exit_with(int argc, char **argv)
{
    return argc > 1 ? atoi(argv[1]) : 99;
}

static int child_hang(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    while (true)
        pause();
    return 0;
}

/* Makes a temporary directory, writes its path into argv[1], exits. */
static int child_make_tmpdir(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    char dir[256];
    if (th_tmpdir(dir, sizeof(dir)) != 0)
        return 3;
    FILE *f = fopen(argv[1], "w");
    if (!f)
        return 4;
    fprintf(f, "%s", dir);
    fclose(f);
    return 0;
}

static const struct th_child children[] = {
    {"exit_with", child_exit_with},
    {"hang", child_hang},
    {"make_tmpdir", child_make_tmpdir},
    {NULL, NULL},
};

/* ---- waiting ----------------------------------------------------------- */

static bool counter_reaches_five(void *arg)
{
    int *n = arg;
    return ++*n >= 5;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

START_TEST(wait_until_returns_when_condition_holds)
{
    int n = 0;
    ck_assert(th_wait_until(counter_reaches_five, &n, 5000));
    ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(wait_until_gives_up_at_deadline)
{
    int64_t t0 = th_now_ms();
    ck_assert(!th_wait_until(never, NULL, 100));
    int64_t spent = th_now_ms() - t0;
    ck_assert_int_ge(spent, 100);
    ck_assert_int_lt(spent, 2000);
}
END_TEST

START_TEST(wait_until_macro_reevaluates_its_expression)
{
    int n = 0;
    ck_assert(TH_WAIT_UNTIL(++n >= 5, 5000));
    ck_assert_int_eq(n, 5);
}
END_TEST

START_TEST(wait_until_macro_gives_up_at_deadline)
{
    int calls = 0;
    int64_t t0 = th_now_ms();
    ck_assert(!TH_WAIT_UNTIL((calls++, false), 100));
    int64_t spent = th_now_ms() - t0;
    ck_assert_int_ge(spent, 100);
    ck_assert_int_lt(spent, 2000);
    ck_assert_int_gt(calls, 2); /* polled, and once more at the deadline */
}
END_TEST

/* ---- temporary directories -------------------------------------------- */

START_TEST(tmpdir_is_fresh_and_removable)
{
    char a[256], b[256];
    ck_assert_int_eq(th_tmpdir(a, sizeof(a)), 0);
    ck_assert_int_eq(th_tmpdir(b, sizeof(b)), 0);
    ck_assert_str_ne(a, b);
    char file[300];
    snprintf(file, sizeof(file), "%s/sub", a);
    ck_assert_int_eq(mkdir(file, 0700), 0);
    snprintf(file, sizeof(file), "%s/sub/f", a);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(th_rmtree(a), 0);
    ck_assert(!path_exists(a));
    ck_assert_int_eq(th_rmtree(a), 0); /* missing is fine */
}
END_TEST

START_TEST(tmpdir_rejects_small_buffer)
{
    char tiny[8];
    ck_assert_int_eq(th_tmpdir(tiny, sizeof(tiny)), -ENAMETOOLONG);
}
END_TEST

START_TEST(tmpdir_removed_when_creator_exits)
{
    char dir[256], report[300], made[256] = {0};
    ck_assert_int_eq(th_tmpdir(dir, sizeof(dir)), 0);
    snprintf(report, sizeof(report), "%s/report", dir);
    struct th_procs p;
    th_procs_init(&p);
    const char *args[] = {report, NULL};
    ck_assert_int_ge(th_spawn_child(&p, "make_tmpdir", args), 0);
    ck_assert_int_eq(th_wait_all(&p, 10000), 0);
    ck_assert(th_exited_ok(&p, 0));
    FILE *f = fopen(report, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(made, sizeof(made), f));
    fclose(f);
    ck_assert_int_gt(strlen(made), 0);
    ck_assert_msg(!path_exists(made), "%s survived its creator", made);
}
END_TEST

/* ---- processes --------------------------------------------------------- */

START_TEST(spawn_collects_exit_statuses)
{
    struct th_procs p;
    th_procs_init(&p);
    for (int i = 0; i < 4; i++) {
        char code[8];
        snprintf(code, sizeof(code), "%d", i);
        const char *args[] = {code, NULL};
        ck_assert_int_eq(th_spawn_child(&p, "exit_with", args), i);
    }
    ck_assert_int_eq(th_wait_all(&p, 10000), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert(p.reaped[i]);
        ck_assert(WIFEXITED(p.status[i]));
        ck_assert_int_eq(WEXITSTATUS(p.status[i]), i);
    }
    ck_assert(th_exited_ok(&p, 0));
    ck_assert(!th_exited_ok(&p, 1));
}
END_TEST

START_TEST(wait_all_kills_leftovers_on_timeout)
{
    struct th_procs p;
    th_procs_init(&p);
    const char *zero[] = {"0", NULL};
    ck_assert_int_ge(th_spawn_child(&p, "exit_with", zero), 0);
    ck_assert_int_ge(th_spawn_child(&p, "hang", NULL), 0);
    int64_t t0 = th_now_ms();
    ck_assert_int_eq(th_wait_all(&p, 300), -ETIMEDOUT);
    ck_assert_int_lt(th_now_ms() - t0, 5000);
    ck_assert(th_exited_ok(&p, 0));
    ck_assert(p.reaped[1]);
    ck_assert(WIFSIGNALED(p.status[1]));
    ck_assert_int_eq(WTERMSIG(p.status[1]), SIGKILL);
    ck_assert_int_eq(kill(p.pid[1], 0), -1); /* really gone */
}
END_TEST

START_TEST(signal_and_wait_one)
{
    struct th_procs p;
    th_procs_init(&p);
    ck_assert_int_eq(th_spawn_child(&p, "hang", NULL), 0);
    ck_assert_int_eq(th_wait_one(&p, 0, 50), -ETIMEDOUT);
    ck_assert_int_eq(th_signal(&p, 0, SIGTERM), 0);
    ck_assert_int_eq(th_wait_one(&p, 0, 10000), 0);
    ck_assert(WIFSIGNALED(p.status[0]));
    ck_assert_int_eq(th_signal(&p, 0, SIGTERM), -ESRCH);
    ck_assert_int_eq(th_signal(&p, 5, SIGTERM), -EINVAL);
}
END_TEST

START_TEST(unknown_child_fails)
{
    struct th_procs p;
    th_procs_init(&p);
    ck_assert_int_ge(th_spawn_child(&p, "no-such-child", NULL), 0);
    ck_assert_int_eq(th_wait_all(&p, 10000), 0);
    ck_assert(!th_exited_ok(&p, 0));
}
END_TEST

/* ---- ports ------------------------------------------------------------- */

START_TEST(free_ports_are_distinct_and_bindable)
{
    uint16_t ports[16];
    ck_assert_int_eq(th_free_tcp_ports(ports, 16), 0);
    int lo = 32768, hi = 60999;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        ck_assert_int_eq(fscanf(f, "%d %d", &lo, &hi), 2);
        fclose(f);
    }
    for (int i = 0; i < 16; i++) {
        ck_assert_int_gt(ports[i], 0);
        /* Never in the ephemeral range, where connect() takes its ports. */
        if (lo - 20000 >= 1000)
            ck_assert_int_lt(ports[i], lo);
        for (int j = 0; j < i; j++)
            ck_assert_int_ne(ports[i], ports[j]);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(ports[0]),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    ck_assert_int_eq(th_free_tcp_ports(ports, 0), -EINVAL);
}
END_TEST

static Suite *harness_suite(void)
{
    Suite *s = suite_create("harness");
    TCase *tc = tcase_create("wait");
    tcase_add_test(tc, wait_until_returns_when_condition_holds);
    tcase_add_test(tc, wait_until_gives_up_at_deadline);
    tcase_add_test(tc, wait_until_macro_reevaluates_its_expression);
    tcase_add_test(tc, wait_until_macro_gives_up_at_deadline);
    suite_add_tcase(s, tc);
    tc = tcase_create("tmpdir");
    tcase_add_test(tc, tmpdir_is_fresh_and_removable);
    tcase_add_test(tc, tmpdir_rejects_small_buffer);
    tcase_add_test(tc, tmpdir_removed_when_creator_exits);
    suite_add_tcase(s, tc);
    tc = tcase_create("procs");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, spawn_collects_exit_statuses);
    tcase_add_test(tc, wait_all_kills_leftovers_on_timeout);
    tcase_add_test(tc, signal_and_wait_one);
    tcase_add_test(tc, unknown_child_fails);
    suite_add_tcase(s, tc);
    tc = tcase_create("ports");
    tcase_add_test(tc, free_ports_are_distinct_and_bindable);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    Suite *(*const suites[])(void) = {harness_suite, NULL};
    return th_main(argc, argv, suites, children);
}
