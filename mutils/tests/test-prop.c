/* Property tests: random descriptors and random values (seeded) round-trip
 * exactly through copy and view reads, size equals bytes written, a
 * re-encoding is byte-identical, and every truncation is rejected without
 * leaks.  MUTILS_PROP_ITERS sets the number of descriptors (the stress
 * suite runs many more); a failure names the seed to replay with
 * MUTILS_PROP_SEED. */
#include <mutils/mutils.h>

#include <errno.h>
#include <stdio.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "test-mutils.h"

struct rng {
    uint64_t s;
};

static uint64_t next(struct rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static size_t below(struct rng *r, size_t n)
{
    return n ? (size_t)(next(r) % n) : 0;
}

/* Every descriptor node made for one iteration, freed together. */
struct pool {
    void *items[512];
    int count;
};

static void *pool_alloc(struct pool *p, size_t size)
{
    ck_assert_int_lt(p->count, 512);
    void *m = calloc(1, size);
    ck_assert_ptr_nonnull(m);
    p->items[p->count++] = m;
    return m;
}

static void pool_free(struct pool *p)
{
    while (p->count)
        free(p->items[--p->count]);
}

static size_t align_of(const struct mutils_type *t)
{
    switch (t->kind) {
    case MUTILS_KIND_STRING:
        return alignof(struct mutils_str);
    case MUTILS_KIND_BYTES:
        return alignof(struct mutils_bytes);
    case MUTILS_KIND_STRBUF:
        return 1;
    case MUTILS_KIND_ARRAY:
        return alignof(struct mutils_array);
    case MUTILS_KIND_FIXED:
        return align_of(t->elem);
    case MUTILS_KIND_OPTIONAL:
        return alignof(void *);
    case MUTILS_KIND_MAP:
        return alignof(struct mutils_map);
    case MUTILS_KIND_STRUCT:
        return t->c_align;
    default:
        return mutils_kind_size(t->kind);
    }
}

static const struct mutils_type *gen_type(struct rng *r, struct pool *p,
                                          int depth)
{
    struct mutils_type *t = pool_alloc(p, sizeof *t);
    int kinds = depth >= 4 ? MUTILS_KIND_STRBUF : MUTILS_KIND_STRUCT;
    t->kind = (enum mutils_kind)(1 + below(r, (size_t)kinds));
    switch (t->kind) {
    case MUTILS_KIND_STRING:
    case MUTILS_KIND_BYTES:
        t->max = below(r, 20);
        break;
    case MUTILS_KIND_STRBUF:
        t->max = 1 + below(r, 12);
        break;
    case MUTILS_KIND_ARRAY:
        t->max = below(r, 6);
        t->elem = gen_type(r, p, depth + 1);
        break;
    case MUTILS_KIND_FIXED:
        t->max = below(r, 4);
        t->elem = gen_type(r, p, depth + 1);
        break;
    case MUTILS_KIND_OPTIONAL:
        t->elem = gen_type(r, p, depth + 1);
        break;
    case MUTILS_KIND_MAP:
        t->max = below(r, 5);
        t->elem = gen_type(r, p, depth + 1);
        t->value = gen_type(r, p, depth + 1);
        break;
    case MUTILS_KIND_STRUCT: {
        size_t n = 1 + below(r, 5);
        struct mutils_field *f = pool_alloc(p, n * sizeof *f);
        size_t off = 0, al = 1;
        for (size_t i = 0; i < n; i++) {
            f[i].name = "f";
            f[i].type = gen_type(r, p, depth + 1);
            size_t a = align_of(f[i].type);
            off = (off + a - 1) / a * a;
            f[i].offset = off;
            off += mutils_type_c_size(f[i].type);
            if (a > al)
                al = a;
        }
        t->name = "rand";
        t->fields = f;
        t->num_fields = n;
        t->c_align = al;
        t->c_size = off ? (off + al - 1) / al * al : al;
        break;
    }
    default:
        break;
    }
    return t;
}

/* Fills v with a random value of t; allocations are malloc'd so that
 * mutils_free(t, v, NULL) releases them. */
static void gen_value(struct rng *r, const struct mutils_type *t, void *v)
{
    switch (t->kind) {
    case MUTILS_KIND_BOOL:
        *(bool *)v = next(r) & 1;
        return;
    case MUTILS_KIND_STRING: {
        size_t len = below(r, t->max + 1);
        char *s = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            s[i] = (char)(1 + below(r, 255));
        s[len] = 0;
        *(struct mutils_str *)v = (struct mutils_str){s, len};
        return;
    }
    case MUTILS_KIND_BYTES: {
        size_t len = below(r, t->max + 1);
        uint8_t *b = len ? malloc(len) : NULL;
        for (size_t i = 0; i < len; i++)
            b[i] = (uint8_t)next(r);
        *(struct mutils_bytes *)v = (struct mutils_bytes){b, len};
        return;
    }
    case MUTILS_KIND_STRBUF: {
        size_t len = below(r, t->max);
        char *s = v;
        memset(s, 0, t->max);
        for (size_t i = 0; i < len; i++)
            s[i] = (char)(1 + below(r, 255));
        return;
    }
    case MUTILS_KIND_ARRAY: {
        size_t n = below(r, t->max + 1);
        size_t cs = mutils_type_c_size(t->elem);
        char *items = n ? calloc(n, cs) : NULL;
        for (size_t i = 0; i < n; i++)
            gen_value(r, t->elem, items + i * cs);
        *(struct mutils_array *)v = (struct mutils_array){items, n};
        return;
    }
    case MUTILS_KIND_FIXED: {
        size_t cs = mutils_type_c_size(t->elem);
        for (size_t i = 0; i < t->max; i++)
            gen_value(r, t->elem, (char *)v + i * cs);
        return;
    }
    case MUTILS_KIND_OPTIONAL: {
        void *e = NULL;
        if (next(r) & 1) {
            e = calloc(1, mutils_type_c_size(t->elem) + 1);
            gen_value(r, t->elem, e);
        }
        *(void **)v = e;
        return;
    }
    case MUTILS_KIND_MAP: {
        size_t n = below(r, t->max + 1);
        size_t ks = mutils_type_c_size(t->elem);
        size_t vs = mutils_type_c_size(t->value);
        char *keys = n ? calloc(n, ks) : NULL;
        char *values = n ? calloc(n, vs) : NULL;
        for (size_t i = 0; i < n; i++) {
            gen_value(r, t->elem, keys + i * ks);
            gen_value(r, t->value, values + i * vs);
        }
        *(struct mutils_map *)v = (struct mutils_map){keys, values, n};
        return;
    }
    case MUTILS_KIND_STRUCT:
        for (size_t i = 0; i < t->num_fields; i++)
            gen_value(r, t->fields[i].type, (char *)v + t->fields[i].offset);
        return;
    default: {
        uint64_t bits = next(r);
        memcpy(v, &bits, mutils_kind_size(t->kind));
        return;
    }
    }
}

static void dump(const struct mutils_type *t, int ind)
{
    fprintf(stderr, "%*skind %d max %zu csize %zu\n", ind, "", t->kind, t->max,
            mutils_type_c_size(t));
    if (t->elem)
        dump(t->elem, ind + 2);
    if (t->value)
        dump(t->value, ind + 2);
    for (size_t i = 0; i < t->num_fields; i++)
        dump(t->fields[i].type, ind + 2);
}

static int env_int(const char *name, int def)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : def;
}

static void check_one(uint64_t seed)
{
    struct rng r = {seed};
    struct pool p = {.count = 0};
    const struct mutils_type *t = gen_type(&r, &p, 0);
    ck_assert_msg(mutils_type_check(t) == 0, "seed %llu: bad descriptor",
                  (unsigned long long)seed);
    size_t cs = mutils_type_c_size(t);
    void *val = calloc(1, cs + 1);
    void *out = calloc(1, cs + 1);
    for (int round = 0; round < 3; round++) {
        memset(val, 0, cs + 1);
        gen_value(&r, t, val);
        size_t size;
        ck_assert_msg(mutils_size(t, val, &size) == 0, "seed %llu",
                      (unsigned long long)seed);
        struct mutils_writer w;
        ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
        ck_assert_int_eq(mutils_write(&w, t, val), 0);
        ck_assert_msg(mutils_writer_len(&w) == size, "seed %llu: size",
                      (unsigned long long)seed);
        size_t len;
        uint8_t *enc = mutils_writer_steal(&w, &len);

        struct mutils_reader rd;
        mutils_reader_init(&rd, enc, len);
        int rc = mutils_read(&rd, t, out, NULL);
        size_t off = 0;
        mutils_reader_error(&rd, &off);
        if (rc) {
            dump(t, 0);
            for (size_t i = 0; i < len; i++)
                fprintf(stderr, "%02x ", enc[i]);
        }
        ck_assert_msg(rc == 0, "seed %llu: read: %d at %zu of %zu",
                      (unsigned long long)seed, rc, off, len);
        ck_assert_int_eq(mutils_reader_finish(&rd), 0);
        ck_assert_msg(mutils_equal(t, val, out), "seed %llu: round trip",
                      (unsigned long long)seed);
        uint8_t *again = malloc(len + 1);
        size_t len2;
        ck_assert_int_eq(mutils_encode(t, out, again, len, &len2), 0);
        ck_assert_uint_eq(len2, len);
        ck_assert_msg(!len || memcmp(again, enc, len) == 0,
                      "seed %llu: re-encoding differs",
                      (unsigned long long)seed);
        free(again);
        mutils_free(t, out, NULL);

        mutils_reader_init(&rd, enc, len);
        ck_assert_int_eq(mutils_read_view(&rd, t, out, NULL), 0);
        ck_assert_msg(mutils_equal(t, val, out), "seed %llu: view",
                      (unsigned long long)seed);
        mutils_free_view(t, out, NULL, enc, len);

        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, enc, cut);
            mutils_reader_init(&rd, copy, cut);
            ck_assert_msg(mutils_read(&rd, t, out, NULL) == -EBADMSG,
                          "seed %llu: truncation at %zu accepted",
                          (unsigned long long)seed, cut);
            mutils_reader_init(&rd, copy, cut);
            ck_assert_int_eq(mutils_read_view(&rd, t, out, NULL), -EBADMSG);
            free(copy);
        }
        free(enc);
        mutils_free(t, val, NULL);
    }
    free(val);
    free(out);
    pool_free(&p);
}

START_TEST(random_descriptors_round_trip)
{
    int iters = env_int("MUTILS_PROP_ITERS", 400);
    uint64_t base = (uint64_t)env_int("MUTILS_PROP_SEED", 0x5eed);
    for (int i = 0; i < iters; i++)
        check_one(base + (uint64_t)i);
}
END_TEST

/* Random bytes against a random descriptor: reads either succeed and
 * re-encode to exactly the bytes consumed, or fail cleanly. */
START_TEST(random_bytes_never_crash)
{
    int iters = env_int("MUTILS_PROP_ITERS", 400);
    for (int i = 0; i < iters; i++) {
        uint64_t seed = 0xbad0000 + (uint64_t)i;
        struct rng r = {seed};
        struct pool p = {.count = 0};
        const struct mutils_type *t = gen_type(&r, &p, 0);
        size_t cs = mutils_type_c_size(t);
        void *out = calloc(1, cs + 1);
        for (int k = 0; k < 20; k++) {
            uint8_t buf[64];
            size_t len = below(&r, sizeof buf + 1);
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)(next(&r) % 4 ? next(&r) % 3 : next(&r));
            struct mutils_reader rd;
            mutils_reader_init(&rd, buf, len);
            int rc = mutils_read(&rd, t, out, NULL);
            if (rc) {
                ck_assert_int_eq(rc, -EBADMSG);
                continue;
            }
            size_t used = mutils_reader_offset(&rd), n;
            uint8_t again[64];
            ck_assert_int_eq(mutils_encode(t, out, again, sizeof again, &n), 0);
            ck_assert_msg(n == used && (!n || !memcmp(again, buf, n)),
                          "seed %llu: not canonical", (unsigned long long)seed);
            mutils_free(t, out, NULL);
        }
        free(out);
        pool_free(&p);
    }
}
END_TEST

Suite *mutils_prop_suite(void)
{
    Suite *s = suite_create("mutils-prop");
    TCase *tc = tcase_create("prop");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, random_descriptors_round_trip);
    tcase_add_test(tc, random_bytes_never_crash);
    suite_add_tcase(s, tc);
    return s;
}
