/* Consumer check: libfab used alone through pkg-config derecho-fab. */
#include <fab/fab.h>

#include <errno.h>
#include <string.h>

int main(void)
{
    struct fab_mr_rules rules;
    if (fab_mr_rules_from_modes(0, 0, &rules) != 0 || rules.virt_addr)
        return 1;
    struct fab_mr_desc desc = {.key = 1, .base = 0, .len = 64};
    uint64_t addr = 0;
    if (fab_mr_remote_addr(&rules, &desc, 8, 8, &addr) != 0 || addr != 8)
        return 2;
    if (strlen(fab_strerror(-EPROTO)) == 0)
        return 3;
    struct fab_options opts;
    fab_options_init(&opts);
    opts.node_id = 1;
    opts.log_level = -1;
    struct fab_pool *pool = NULL;
    if (fab_pool_create(&opts, &pool, NULL) != 0)
        return 4; /* tcp on loopback is always there */
    int ok = fab_pool_port(pool) != 0;
    fab_pool_destroy(pool);
    return ok ? 0 : 5;
}
