/* Consumer check: librdmc used alone through pkg-config derecho-rdmc. */
#include <rdmc/rdmc.h>

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static void count(void *ctx, struct rdmc_group *g, uint64_t index, void *data,
                  size_t size)
{
    (void)g;
    (void)index;
    (void)data;
    atomic_fetch_add((_Atomic size_t *)ctx, size);
}

int main(void)
{
    enum rdmc_algorithm alg;
    if (rdmc_algorithm_from_name("binomial_send", &alg) != 0)
        return 1;
    if (rdmc_schedule_steps(alg, 8, 10) != 10 + 3 - 1)
        return 2;
    struct rdmc_transfer send, recv;
    if (rdmc_schedule_step(alg, 8, 0, 10, 0, &send, &recv) != 0 ||
        send.peer == RDMC_NO_PEER || recv.peer != RDMC_NO_PEER)
        return 3;
    if (strlen(rdmc_strerror(-EMSGSIZE)) == 0)
        return 4;
    /* a one-member group delivers at once */
    struct fab_options fo;
    fab_options_init(&fo);
    fo.node_id = 1;
    struct fab_pool *pool = NULL;
    if (fab_pool_create(&fo, &pool, NULL) != 0)
        return 5;
    struct rdmc_member me = {1, "127.0.0.1", fab_pool_port(pool)};
    struct rdmc_options o;
    rdmc_options_init(&o);
    o.group_id = 7;
    _Atomic size_t got = 0;
    struct rdmc_callbacks cbs = {.complete = count};
    struct rdmc_group *g = NULL;
    int rc = rdmc_group_create(pool, &me, 1, &o, &cbs, &got, &g);
    static const char msg[] = "hello";
    if (rc == 0)
        rc = rdmc_send(g, msg, sizeof(msg), NULL);
    /* complete runs on the group's thread, never inside rdmc_send: wait
     * for it (at most 5 s) before destroying the group. */
    for (int i = 0; rc == 0 && i < 5000 && atomic_load(&got) == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    rdmc_group_destroy(g);
    fab_pool_destroy(pool);
    return rc == 0 && atomic_load(&got) == sizeof(msg) ? 0 : 6;
}
