/* Bump arena: a caller block first, then malloc'd blocks of growing size. */
#include "mutils-private.h"

#include <stdalign.h>
#include <stdlib.h>

/* Header of a malloc'd block; the usable bytes follow it. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;
    max_align_t pad[]; /* keeps what follows maximally aligned */
};

/* Size of the first malloc'd block; each next one is twice the last. */
#define ARENA_FIRST_CHUNK 4096

static void *arena_alloc_cb(void *ctx, size_t size, size_t align)
{
    return mutils_arena_alloc(ctx, size, align);
}

void mutils_arena_init(struct mutils_arena *a, void *buf, size_t cap)
{
    if (!a)
        return;
    a->allocator.alloc = arena_alloc_cb;
    a->allocator.free = NULL;
    a->allocator.ctx = a;
    a->first = buf;
    a->first_cap = buf ? cap : 0;
    a->block = a->first;
    a->block_cap = a->first_cap;
    a->used = 0;
    a->chunks = NULL;
    a->chunk_size = ARENA_FIRST_CHUNK;
}

void mutils_arena_fini(struct mutils_arena *a)
{
    if (!a)
        return;
    struct arena_chunk *c = a->chunks;
    while (c) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->chunks = NULL;
    a->block = a->first;
    a->block_cap = a->first_cap;
    a->used = 0;
    /* Start over with small blocks: an arena reset once per message would
     * otherwise double its next block each time, up to impossible sizes. */
    a->chunk_size = ARENA_FIRST_CHUNK;
}

void mutils_arena_reset(struct mutils_arena *a)
{
    mutils_arena_fini(a);
}

void *mutils_arena_alloc(struct mutils_arena *a, size_t size, size_t align)
{
    if (!a || size > MUTILS_MAX_ALLOC)
        return NULL;
    if (!align)
        align = alignof(max_align_t);
    if (align & (align - 1) || align > alignof(max_align_t))
        return NULL;
    uintptr_t base = (uintptr_t)a->block;
    uintptr_t at = (base + a->used + align - 1) & ~(uintptr_t)(align - 1);
    size_t off = at - base;
    if (a->block && off <= a->block_cap && a->block_cap - off >= size) {
        a->used = off + size;
        return a->block + off;
    }
    /* A new block: at least twice the last one, and big enough. */
    size_t cap = a->chunk_size;
    while (cap < size)
        cap = cap > MUTILS_MAX_ALLOC / 2 ? size : cap * 2;
    struct arena_chunk *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = a->chunks;
    c->cap = cap;
    a->chunks = c;
    if (a->chunk_size <= MUTILS_MAX_ALLOC / 2)
        a->chunk_size *= 2;
    a->block = (uint8_t *)(c + 1);
    a->block_cap = cap;
    a->used = size;
    return a->block;
}

const struct mutils_alloc *mutils_arena_allocator(struct mutils_arena *a)
{
    return a ? &a->allocator : NULL;
}
