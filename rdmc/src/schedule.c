/* Block schedules: pure functions of (algorithm, n, rank, blocks, step). */
#include "rdmc-private.h"

#include <errno.h>
#include <string.h>

static const char *const alg_names[] = {
    [RDMC_BINOMIAL_SEND] = "binomial_send",
    [RDMC_CHAIN_SEND] = "chain_send",
    [RDMC_SEQUENTIAL_SEND] = "sequential_send",
    [RDMC_TREE_SEND] = "tree_send",
};

const char *rdmc_algorithm_name(enum rdmc_algorithm alg)
{
    if ((unsigned)alg >= sizeof(alg_names) / sizeof(alg_names[0]))
        return NULL;
    return alg_names[alg];
}

int rdmc_algorithm_from_name(const char *name, enum rdmc_algorithm *out)
{
    if (!name || !out)
        return -EINVAL;
    for (unsigned i = 0; i < sizeof(alg_names) / sizeof(alg_names[0]); i++) {
        if (strcmp(name, alg_names[i]) == 0) {
            *out = (enum rdmc_algorithm)i;
            return 0;
        }
    }
    return -EINVAL;
}

/* floor(log2 x), x >= 1 */
static uint32_t floor_log2(uint32_t x)
{
    return 31u - (uint32_t)__builtin_clz(x);
}

static uint32_t ceil_log2(uint32_t x)
{
    return x <= 1 ? 0 : floor_log2(x - 1) + 1;
}

uint32_t rdmc_schedule_steps(enum rdmc_algorithm alg, uint32_t n,
                             uint32_t blocks)
{
    if (n < 2 || n > RDMC_MAX_MEMBERS || blocks < 1 || blocks > RDMC_MAX_BLOCKS)
        return 0;
    switch (alg) {
    case RDMC_BINOMIAL_SEND: {
        uint32_t l = floor_log2(n);
        uint32_t steps = blocks + l - 1;
        return (n & (n - 1)) == 0 ? steps : 2 * steps;
    }
    case RDMC_CHAIN_SEND:
        return blocks + n - 2;
    case RDMC_SEQUENTIAL_SEND:
        return (n - 1) * blocks;
    case RDMC_TREE_SEND:
        return ceil_log2(n) * blocks;
    }
    return 0;
}

/* ---- binomial pipeline over a hypercube of m = 2^l vertices ------------
 *
 * In hypercube step t every vertex exchanges with its neighbour across
 * dimension d = t mod l.  Rotating a vertex label right by d (so that
 * dimension d becomes bit 0) gives its role w in that step; the block a
 * vertex receives depends only on w and t: the vertex with w = 1 gets the
 * sender's newest block t, a vertex with w odd > 1 gets block
 * t - (l - 1 - ctz(w >> 1)), one with w even gets block t - l; blocks past
 * the last are clamped to the last one (the tail of the pipeline), negative
 * ones mean "nothing yet".  The exhaustive tests check that this delivers
 * every block exactly once, only from a neighbour that already holds it,
 * in blocks + l - 1 steps. */
static uint32_t hc_recv_block(uint32_t l, uint32_t v, uint32_t blocks,
                              uint32_t t, bool *has)
{
    *has = false;
    if (v == 0)
        return 0;
    uint32_t mask = (1u << l) - 1;
    uint32_t d = t % l;
    uint32_t w = ((v >> d) | (v << (l - d))) & mask;
    uint32_t lag;
    if (w == 1)
        lag = 0;
    else if ((w & 1) == 0)
        lag = l;
    else
        lag = l - 1 - (uint32_t)__builtin_ctz(w >> 1);
    if (t < lag)
        return 0;
    uint32_t b = t - lag;
    *has = true;
    return b < blocks ? b : blocks - 1;
}

static void hc_step(uint32_t l, uint32_t v, uint32_t blocks, uint32_t t,
                    struct rdmc_transfer *send, struct rdmc_transfer *recv)
{
    uint32_t partner = v ^ (1u << (t % l));
    bool has;
    uint32_t b = hc_recv_block(l, v, blocks, t, &has);
    if (has)
        *recv = (struct rdmc_transfer){partner, b};
    b = hc_recv_block(l, partner, blocks, t, &has);
    if (has)
        *send = (struct rdmc_transfer){partner, b};
}

static void binomial_step(uint32_t n, uint32_t rank, uint32_t blocks,
                          uint32_t step, struct rdmc_transfer *send,
                          struct rdmc_transfer *recv)
{
    uint32_t l = floor_log2(n);
    uint32_t m = 1u << l;
    if (m == n) {
        hc_step(l, rank, blocks, step, send, recv);
        return;
    }
    /* Twins: rank m + j mirrors vertex j + 1.  Even steps are hypercube
     * steps among ranks < m; in the odd step after it, each vertex with a
     * twin hands it the block it just received. */
    uint32_t h = step / 2;
    uint32_t extra = n - m;
    if (step % 2 == 0) {
        if (rank < m)
            hc_step(l, rank, blocks, h, send, recv);
        return;
    }
    bool has;
    if (rank >= 1 && rank <= extra) {
        uint32_t b = hc_recv_block(l, rank, blocks, h, &has);
        if (has)
            *send = (struct rdmc_transfer){m + rank - 1, b};
    } else if (rank >= m) {
        uint32_t v = rank - m + 1;
        uint32_t b = hc_recv_block(l, v, blocks, h, &has);
        if (has)
            *recv = (struct rdmc_transfer){v, b};
    }
}

int rdmc_schedule_step(enum rdmc_algorithm alg, uint32_t n, uint32_t rank,
                       uint32_t blocks, uint32_t step,
                       struct rdmc_transfer *send, struct rdmc_transfer *recv)
{
    uint32_t steps = rdmc_schedule_steps(alg, n, blocks);
    if (!send || !recv || steps == 0 || rank >= n || step >= steps)
        return -EINVAL;
    *send = (struct rdmc_transfer){RDMC_NO_PEER, 0};
    *recv = (struct rdmc_transfer){RDMC_NO_PEER, 0};
    switch (alg) {
    case RDMC_BINOMIAL_SEND:
        binomial_step(n, rank, blocks, step, send, recv);
        break;
    case RDMC_CHAIN_SEND:
        /* rank i gets block b in step b + i - 1 and passes it on in b + i */
        if (rank >= 1 && step + 1 >= rank && step + 1 - rank < blocks)
            *recv = (struct rdmc_transfer){rank - 1, step + 1 - rank};
        if (rank + 1 < n && step >= rank && step - rank < blocks)
            *send = (struct rdmc_transfer){rank + 1, step - rank};
        break;
    case RDMC_SEQUENTIAL_SEND: {
        uint32_t target = step / blocks + 1, b = step % blocks;
        if (rank == 0)
            *send = (struct rdmc_transfer){target, b};
        else if (rank == target)
            *recv = (struct rdmc_transfer){0, b};
        break;
    }
    case RDMC_TREE_SEND: {
        /* round j: ranks < 2^j send the whole message to rank + 2^j */
        uint32_t round = step / blocks, b = step % blocks;
        uint32_t span = 1u << round;
        if (rank < span && rank + span < n)
            *send = (struct rdmc_transfer){rank + span, b};
        else if (rank >= span && rank < 2 * span)
            *recv = (struct rdmc_transfer){rank - span, b};
        break;
    }
    default:
        return -EINVAL;
    }
    return 0;
}
