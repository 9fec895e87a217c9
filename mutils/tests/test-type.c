/* The descriptor engine: nested round trips, sizes, views, frees, errors
 * and the offsets they report, argument packs, descriptor checks. */
#include <mutils/mutils.h>

#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "sample-types.h"
#include "test-mutils.h"

/* A malloc-backed allocator that counts what is outstanding and can be
 * told to fail after n successful allocations. */
struct counting {
    long outstanding;
    long allocs;
    long fail_after; /* -1: never */
};

static void *counting_alloc(void *ctx, size_t size, size_t align)
{
    struct counting *c = ctx;
    (void)align;
    if (c->fail_after >= 0 && c->allocs >= c->fail_after)
        return NULL;
    c->allocs++;
    c->outstanding++;
    return malloc(size);
}

static void counting_free(void *ctx, void *p, size_t size)
{
    struct counting *c = ctx;
    (void)size;
    c->outstanding--;
    free(p);
}

/* A sample view with a bit of everything; static storage, caller-built. */
struct sample_fixture {
    struct mutils_str nick0, nick2;
    struct sample_member members[3];
    double weights[2];
    struct sample_shard shards[2];
    struct mutils_str keys[2];
    uint64_t values[2];
    uint8_t epoch;
    struct sample_view view;
};

static void sample_build(struct sample_fixture *f)
{
    memset(f, 0, sizeof *f);
    f->nick0 = (struct mutils_str){"alpha", 5};
    f->nick2 = (struct mutils_str){"", 0};
    f->members[0] = (struct sample_member){1, &f->nick0, true, -3};
    f->members[1] = (struct sample_member){2, NULL, false, 127};
    f->members[2] = (struct sample_member){UINT32_MAX, &f->nick2, true, -128};
    f->weights[0] = 0.25;
    f->weights[1] = -1e300;
    strcpy(f->shards[0].name, "shard-zero");
    f->shards[0].members = (struct mutils_array){f->members, 3};
    f->shards[0].weights = (struct mutils_array){f->weights, 2};
    f->shards[0].fixed[0] = -1;
    f->shards[0].fixed[2] = INT16_MAX;
    f->shards[0].blob = (struct mutils_bytes){"\x00\xff\x01", 3};
    f->shards[0].load = 0.5f;
    f->shards[0].port = 4242;
    strcpy(f->shards[1].name, "");
    f->keys[0] = (struct mutils_str){"k1", 2};
    f->keys[1] = (struct mutils_str){"longer-key", 10};
    f->values[0] = 7;
    f->values[1] = UINT64_MAX;
    f->epoch = 9;
    f->view.vid = -42;
    f->view.leader = 3;
    f->view.shards = (struct mutils_array){f->shards, 2};
    f->view.attrs = (struct mutils_map){f->keys, f->values, 2};
    f->view.epoch = &f->epoch;
    f->view.i32 = INT32_MIN;
    f->view.f64 = 2.5;
}

START_TEST(descriptors_are_valid)
{
    ck_assert_int_eq(mutils_type_check(&sample_member_type), 0);
    ck_assert_int_eq(mutils_type_check(&sample_shard_type), 0);
    ck_assert_int_eq(mutils_type_check(&sample_view_type), 0);
    ck_assert_int_eq(mutils_type_check(&sample_args_type), 0);
    ck_assert_int_eq(mutils_type_check(&sample_node_type), 0);
    ck_assert_int_eq(mutils_type_check(&mutils_type_f64), 0);
    ck_assert_uint_eq(mutils_type_c_size(&sample_view_type),
                      sizeof(struct sample_view));
    ck_assert_uint_eq(
        mutils_type_c_size(MUTILS_TYPE_FIXED(&mutils_type_u32, 5)), 20);
}
END_TEST

START_TEST(nested_round_trip_copy)
{
    static struct sample_fixture f;
    sample_build(&f);
    size_t size;
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &size), 0);

    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 0), 0);
    ck_assert_int_eq(mutils_put_u8(&w, 0xee), 0); /* start off 0 */
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 1 + size);

    struct counting cnt = {0, 0, -1};
    struct mutils_alloc a = {counting_alloc, counting_free, &cnt};
    struct mutils_reader r;
    mutils_reader_init(&r, mutils_writer_data(&w), mutils_writer_len(&w));
    uint8_t skip;
    ck_assert_int_eq(mutils_get_u8(&r, &skip), 0);
    struct sample_view out;
    ck_assert_int_eq(mutils_read(&r, &sample_view_type, &out, &a), 0);
    ck_assert_int_eq(mutils_reader_finish(&r), 0);
    ck_assert(mutils_equal(&sample_view_type, &f.view, &out));

    /* the copy is independent of the buffer and NUL-terminated */
    const struct sample_shard *s0 = out.shards.items;
    const struct sample_member *m = s0->members.items;
    ck_assert_str_eq(s0->name, "shard-zero");
    ck_assert_str_eq(m[0].nickname->ptr, "alpha");
    ck_assert_ptr_null(m[1].nickname);
    ck_assert_uint_eq(m[2].nickname->len, 0);
    ck_assert_str_eq(((const struct mutils_str *)out.attrs.keys)[1].ptr,
                     "longer-key");
    ck_assert_uint_eq(*out.epoch, 9);
    ck_assert(!mutils_equal(&sample_view_type, &f.view,
                            &(struct sample_view){.vid = -42}));

    /* re-encoding the copy gives the same bytes */
    uint8_t *again = malloc(size);
    size_t len;
    ck_assert_int_eq(mutils_encode(&sample_view_type, &out, again, size, &len),
                     0);
    ck_assert_uint_eq(len, size);
    ck_assert_mem_eq(again, (const uint8_t *)mutils_writer_data(&w) + 1, size);
    free(again);

    ck_assert_int_gt(cnt.outstanding, 0);
    mutils_free(&sample_view_type, &out, &a);
    ck_assert_int_eq(cnt.outstanding, 0);
    ck_assert_int_eq(out.vid, 0); /* zeroed */
    mutils_writer_fini(&w);
}
END_TEST

START_TEST(zero_copy_view_points_into_buffer)
{
    static struct sample_fixture f;
    sample_build(&f);
    static uint8_t buf[4096];
    size_t len;
    ck_assert_int_eq(
        mutils_encode(&sample_view_type, &f.view, buf, sizeof buf, &len), 0);

    struct counting cnt = {0, 0, -1};
    struct mutils_alloc a = {counting_alloc, counting_free, &cnt};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    struct sample_view out;
    ck_assert_int_eq(mutils_read_view(&r, &sample_view_type, &out, &a), 0);
    ck_assert(mutils_equal(&sample_view_type, &f.view, &out));
    const struct sample_shard *s0 = out.shards.items;
    const uint8_t *blob = s0->blob.ptr;
    ck_assert(blob > buf && blob + 3 <= buf + len);
    ck_assert_mem_eq(blob, "\x00\xff\x01", 3);
    const struct sample_member *m = s0->members.items;
    const uint8_t *nick = (const uint8_t *)m[0].nickname->ptr;
    ck_assert(nick > buf && nick < buf + len);
    ck_assert_uint_eq(nick[-4], 5); /* right after its length prefix */
    /* the key strings too */
    const struct mutils_str *k = out.attrs.keys;
    ck_assert((const uint8_t *)k[0].ptr > buf &&
              (const uint8_t *)k[0].ptr < buf + len);
    mutils_free_view(&sample_view_type, &out, &a, buf, len);
    ck_assert_int_eq(cnt.outstanding, 0);
}
END_TEST

START_TEST(view_of_primitive_array_aligned_or_copied)
{
    const struct mutils_type *t = MUTILS_TYPE_ARRAY(&mutils_type_u32, 100);
    uint32_t vals[5] = {1, 2, 3, 0xdeadbeef, 5};
    struct mutils_array in = {vals, 5};
    alignas(8) uint8_t buf[64];
    size_t len;
    /* at offset 0 the elements start at 4: aligned, so a view */
    ck_assert_int_eq(mutils_encode(t, &in, buf, sizeof buf, &len), 0);
    ck_assert_uint_eq(len, 24);
    struct mutils_reader r;
    struct mutils_array out;
    mutils_reader_init(&r, buf, len);
    ck_assert_int_eq(mutils_read_view(&r, t, &out, NULL), 0);
    ck_assert_ptr_eq(out.items, buf + 4);
    ck_assert(mutils_equal(t, &in, &out));
    mutils_free_view(t, &out, NULL, buf, len);
    /* at offset 1 they are misaligned: copied (and freed by free_view) */
    ck_assert_int_eq(mutils_encode(t, &in, buf + 1, sizeof buf - 1, &len), 0);
    mutils_reader_init(&r, buf + 1, len);
    ck_assert_int_eq(mutils_read_view(&r, t, &out, NULL), 0);
    ck_assert(out.items < (void *)buf || out.items > (void *)(buf + 64));
    ck_assert(mutils_equal(t, &in, &out));
    mutils_free_view(t, &out, NULL, buf + 1, len);
}
END_TEST

START_TEST(arena_read_and_reset)
{
    static struct sample_fixture f;
    sample_build(&f);
    uint8_t buf[2048];
    size_t len;
    ck_assert_int_eq(
        mutils_encode(&sample_view_type, &f.view, buf, sizeof buf, &len), 0);
    alignas(max_align_t) uint8_t block[64];
    struct mutils_arena arena;
    mutils_arena_init(&arena, block, sizeof block);
    for (int i = 0; i < 50; i++) {
        struct mutils_reader r;
        struct sample_view out;
        mutils_reader_init(&r, buf, len);
        ck_assert_int_eq(mutils_read(&r, &sample_view_type, &out,
                                     mutils_arena_allocator(&arena)),
                         0);
        ck_assert(mutils_equal(&sample_view_type, &f.view, &out));
        if (i % 7 == 0)
            mutils_arena_reset(&arena);
    }
    void *p = mutils_arena_alloc(&arena, 3, 1);
    double *d = mutils_arena_alloc(&arena, sizeof(double), alignof(double));
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)d % alignof(double), 0);
    ck_assert_ptr_null(mutils_arena_alloc(&arena, 8, 3)); /* not a power */
    void *big = mutils_arena_alloc(&arena, 1 << 20, 0);
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 1 << 20);
    mutils_arena_fini(&arena);
}
END_TEST

START_TEST(args_pack_round_trip)
{
    int64_t id = -77;
    struct mutils_str name = {"put", 3};
    struct mutils_bytes blob = {"\1\2\3\4", 4};
    const void *args[] = {&id, &name, &blob};
    size_t size;
    ck_assert_int_eq(mutils_args_size(&sample_args_type, args, &size), 0);
    ck_assert_uint_eq(size, 8 + 4 + 3 + 4 + 4);
    uint8_t buf[64];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_args_write(&w, &sample_args_type, args), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), size);
    /* the same bytes as writing the arguments one by one */
    uint8_t manual[64];
    struct mutils_writer m;
    mutils_writer_init(&m, manual, sizeof manual);
    mutils_put_i64(&m, id);
    mutils_put_string(&m, "put", 64);
    mutils_put_bytes(&m, "\1\2\3\4", 4, 256);
    ck_assert_uint_eq(mutils_writer_len(&m), size);
    ck_assert_mem_eq(buf, manual, size);

    int64_t id2;
    struct mutils_str name2;
    struct mutils_bytes blob2;
    void *const out[] = {&id2, &name2, &blob2};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, size);
    ck_assert_int_eq(mutils_args_read(&r, &sample_args_type, out, NULL), 0);
    ck_assert(id2 == -77);
    ck_assert_str_eq(name2.ptr, "put");
    ck_assert_mem_eq(blob2.ptr, "\1\2\3\4", 4);
    ck_assert(mutils_equal(&sample_args_type, args, out));
    mutils_args_free(&sample_args_type, out, NULL);
    ck_assert_ptr_null(name2.ptr);

    mutils_reader_init(&r, buf, size);
    ck_assert_int_eq(mutils_args_read_view(&r, &sample_args_type, out, NULL),
                     0);
    ck_assert_ptr_eq(name2.ptr, (const char *)buf + 12);
    ck_assert_ptr_eq(blob2.ptr, buf + 19);

    /* a truncated call zeroes every argument */
    mutils_reader_init(&r, buf, size - 1);
    ck_assert_int_eq(mutils_args_read(&r, &sample_args_type, out, NULL),
                     -EBADMSG);
    ck_assert(id2 == 0 && name2.ptr == NULL && blob2.ptr == NULL);
    size_t off;
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 15); /* the blob's length prefix */
}
END_TEST

START_TEST(write_errors_leave_nothing)
{
    static struct sample_fixture f;
    sample_build(&f);
    size_t size;
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &size), 0);
    uint8_t *buf = malloc(size);
    memset(buf, 0x5a, size);
    struct mutils_writer w;
    /* every capacity short of the size: -ENOSPC, length unchanged, never a
     * byte past the capacity */
    for (size_t cap = 0; cap < size; cap++) {
        mutils_writer_init(&w, buf, cap);
        ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), -ENOSPC);
        ck_assert_uint_eq(mutils_writer_len(&w), 0);
        ck_assert_int_eq(mutils_writer_error(&w), -ENOSPC);
        ck_assert_uint_eq(buf[size - 1], 0x5a);
    }
    /* a writer that already holds data keeps it */
    mutils_writer_init(&w, buf, size);
    ck_assert_int_eq(mutils_put_u8(&w, 0xab), 0);
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), -ENOSPC);
    ck_assert_uint_eq(mutils_writer_len(&w), 1);
    ck_assert_uint_eq(buf[0], 0xab);
    size_t len = 99;
    ck_assert_int_eq(
        mutils_encode(&sample_view_type, &f.view, buf, size - 1, &len),
        -ENOSPC);
    ck_assert_uint_eq(len, 99);

    /* a length over its max: -ERANGE, not sticky */
    mutils_writer_init(&w, buf, size);
    f.nick0.len = 25;
    f.nick0.ptr = "0123456789012345678901234";
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), -ERANGE);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    f.nick0 = (struct mutils_str){"a\0b", 3};
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), -EINVAL);
    f.nick0 = (struct mutils_str){"ok", 2};
    f.shards[0].members.count = 9;
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &len), -ERANGE);
    f.shards[0].members.count = 3;
    memset(f.shards[0].name, 'x', 16); /* no NUL inside the STRBUF */
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &len), -EINVAL);
    strcpy(f.shards[0].name, "n");
    uint8_t badbool = 2;
    memcpy(&f.members[0].alive, &badbool, 1);
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &len), -EINVAL);
    f.members[0].alive = true;
    f.view.attrs.count = 9;
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &len), -ERANGE);
    f.view.attrs.count = 2;
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), 0);
    free(buf);
}
END_TEST

/* Encodes the sample view, then patches bytes to make it malformed. */
static size_t sample_encoded(uint8_t *buf, size_t cap)
{
    static struct sample_fixture f;
    sample_build(&f);
    size_t len;
    ck_assert_int_eq(mutils_encode(&sample_view_type, &f.view, buf, cap, &len),
                     0);
    return len;
}

static int read_sample_at(const uint8_t *buf, size_t len, size_t *off,
                          struct counting *cnt)
{
    struct mutils_alloc a = {counting_alloc, counting_free, cnt};
    struct mutils_reader r;
    struct sample_view out;
    memset(&out, 0x77, sizeof out);
    mutils_reader_init(&r, buf, len);
    int rc = mutils_read(&r, &sample_view_type, &out, &a);
    if (rc) {
        /* nothing partial left behind */
        static const struct sample_view zero;
        ck_assert_mem_eq(&out, &zero, sizeof out);
        ck_assert_int_eq(cnt->outstanding, 0);
        ck_assert_uint_eq(mutils_reader_offset(&r), 0);
        mutils_reader_error(&r, off);
    } else {
        mutils_free(&sample_view_type, &out, &a);
    }
    return rc;
}

START_TEST(read_errors_report_offsets)
{
    uint8_t buf[1024];
    size_t len = sample_encoded(buf, sizeof buf);
    struct counting cnt = {0, 0, -1};
    size_t off = 0;
    /* layout: vid 0..7, leader 8..15, shards count 16..19, shard 0 name
     * prefix 20..23 + "shard-zero" 24..33, members count 34..37, member 0:
     * id 38..41, nickname tag 42, len 43..46, "alpha" 47..51, alive 52 */
    ck_assert_uint_eq(buf[42], 1);
    ck_assert_uint_eq(buf[52], 1);

    uint8_t bad[1024];
    memcpy(bad, buf, len);
    bad[52] = 2; /* invalid bool */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 52);

    memcpy(bad, buf, len);
    bad[42] = 3; /* invalid optional tag */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 42);

    memcpy(bad, buf, len);
    bad[16] = 5; /* more shards than the max of 4 */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 16);

    memcpy(bad, buf, len);
    bad[34] = 200; /* more members than bytes could hold */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 34);

    memcpy(bad, buf, len);
    bad[49] = 0; /* NUL inside the nickname */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 43);

    memcpy(bad, buf, len);
    bad[20] = 16; /* STRBUF name longer than 15 */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 20);

    memcpy(bad, buf, len);
    bad[46] = 0x80; /* nickname length past the end (and the max) */
    ck_assert_int_eq(read_sample_at(bad, len, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, 43);

    /* truncation in the last field */
    ck_assert_int_eq(read_sample_at(buf, len - 1, &off, &cnt), -EBADMSG);
    ck_assert_uint_eq(off, len - 8);
    ck_assert_int_eq(read_sample_at(buf, len, &off, &cnt), 0);
    ck_assert_int_eq(cnt.outstanding, 0);
}
END_TEST

START_TEST(every_truncation_of_nested_is_rejected)
{
    uint8_t buf[1024];
    size_t len = sample_encoded(buf, sizeof buf);
    struct counting cnt = {0, 0, -1};
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        size_t off = SIZE_MAX;
        ck_assert_int_eq(read_sample_at(copy, cut, &off, &cnt), -EBADMSG);
        ck_assert_uint_le(off, cut);
        free(copy);
    }
}
END_TEST

START_TEST(allocation_failure_frees_everything)
{
    uint8_t buf[1024];
    size_t len = sample_encoded(buf, sizeof buf);
    struct counting probe = {0, 0, -1};
    size_t off;
    ck_assert_int_eq(read_sample_at(buf, len, &off, &probe), 0);
    ck_assert_int_gt(probe.allocs, 5);
    for (long n = 0; n < probe.allocs; n++) {
        struct counting cnt = {0, 0, n};
        ck_assert_int_eq(read_sample_at(buf, len, &off, &cnt), -ENOMEM);
        ck_assert_int_eq(cnt.outstanding, 0);
    }
}
END_TEST

START_TEST(nesting_limit)
{
    /* a list of 40 nodes is deeper than MUTILS_MAX_DEPTH */
    struct sample_node nodes[40];
    for (int i = 0; i < 40; i++) {
        nodes[i].value = (uint32_t)i;
        nodes[i].next = i + 1 < 40 ? &nodes[i + 1] : NULL;
    }
    size_t size;
    ck_assert_int_eq(mutils_size(&sample_node_type, &nodes[0], &size), -ELOOP);
    uint8_t buf[512];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof buf);
    ck_assert_int_eq(mutils_write(&w, &sample_node_type, &nodes[0]), -ELOOP);
    ck_assert_uint_eq(mutils_writer_len(&w), 0);
    /* 10 nodes are fine and round-trip */
    nodes[9].next = NULL;
    ck_assert_int_eq(mutils_write(&w, &sample_node_type, &nodes[0]), 0);
    struct mutils_reader r;
    struct sample_node out;
    mutils_reader_init(&r, buf, mutils_writer_len(&w));
    ck_assert_int_eq(mutils_read(&r, &sample_node_type, &out, NULL), 0);
    ck_assert(mutils_equal(&sample_node_type, &nodes[0], &out));
    mutils_free(&sample_node_type, &out, NULL);
    /* a hand-made encoding 40 deep is refused on read */
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        memset(buf + n, 0, 4);
        n += 4;
        buf[n++] = i + 1 < 40;
    }
    mutils_reader_init(&r, buf, n);
    ck_assert_int_eq(mutils_read(&r, &sample_node_type, &out, NULL), -EBADMSG);
    size_t off;
    mutils_reader_error(&r, &off);
    ck_assert_uint_gt(off, 0);
    ck_assert_uint_lt(off, n);
}
END_TEST

START_TEST(growable_write_grows_exactly)
{
    static struct sample_fixture f;
    sample_build(&f);
    size_t size;
    ck_assert_int_eq(mutils_size(&sample_view_type, &f.view, &size), 0);
    uint8_t *ref = malloc(size);
    size_t len;
    ck_assert_int_eq(mutils_encode(&sample_view_type, &f.view, ref, size, &len),
                     0);
    /* from a small buffer that already holds a byte: the first pass runs
     * out of room, the writer grows and the second pass fits */
    struct mutils_writer w;
    ck_assert_int_eq(mutils_writer_init_growable(&w, 8), 0);
    ck_assert_int_eq(mutils_put_u8(&w, 0x42), 0);
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), 0);
    ck_assert_uint_eq(mutils_writer_len(&w), 1 + size);
    ck_assert_mem_eq((const uint8_t *)mutils_writer_data(&w) + 1, ref, size);
    ck_assert_uint_eq(*(const uint8_t *)mutils_writer_data(&w), 0x42);
    /* a length error on a growable writer is still a length error */
    f.view.shards.count = 5;
    ck_assert_int_eq(mutils_write(&w, &sample_view_type, &f.view), -ERANGE);
    ck_assert_uint_eq(mutils_writer_len(&w), 1 + size);
    ck_assert_int_eq(mutils_writer_error(&w), 0);
    /* and on a fixed writer too small for it, length beats space */
    uint8_t tiny[4];
    ck_assert_int_eq(
        mutils_encode(&sample_view_type, &f.view, tiny, sizeof tiny, &len),
        -ERANGE);
    f.view.shards.count = 2;
    ck_assert_int_eq(mutils_encode(&sample_view_type, &f.view, NULL, 0, &len),
                     -ENOSPC);
    mutils_writer_fini(&w);
    free(ref);

    /* zero-byte values and reservations on an empty writer */
    struct mutils_writer z;
    void *slot = (void *)1;
    mutils_writer_init(&z, NULL, 0);
    ck_assert_int_eq(mutils_writer_reserve(&z, 0, &slot), 0);
    ck_assert_ptr_null(slot);
    const struct mutils_type *none = MUTILS_TYPE_FIXED(&mutils_type_u32, 0);
    uint32_t nothing[1] = {0};
    ck_assert_int_eq(mutils_write(&z, none, nothing), 0);
    ck_assert_uint_eq(mutils_writer_len(&z), 0);
    ck_assert_int_eq(mutils_encode(none, nothing, NULL, 0, &len), 0);
    ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(map_errors_report_offsets)
{
    const struct mutils_type *t =
        MUTILS_TYPE_MAP(MUTILS_TYPE_STRING(8), &mutils_type_u16, 3);
    struct mutils_str keys[2] = {{"a", 1}, {"bc", 2}};
    uint16_t values[2] = {1, 2};
    struct mutils_map in = {keys, values, 2}, out;
    uint8_t buf[64];
    size_t len, off;
    ck_assert_int_eq(mutils_encode(t, &in, buf, sizeof buf, &len), 0);
    /* 4 count + (4 + 1 + 2) + (4 + 2 + 2) */
    ck_assert_uint_eq(len, 19);
    struct counting cnt = {0, 0, -1};
    struct mutils_alloc a = {counting_alloc, counting_free, &cnt};
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    ck_assert_int_eq(mutils_read(&r, t, &out, &a), 0);
    ck_assert(mutils_equal(t, &in, &out));
    mutils_free(t, &out, &a);
    ck_assert_int_eq(cnt.outstanding, 0);
    /* the second value cut short: error at its offset, all freed */
    mutils_reader_init(&r, buf, len - 1);
    ck_assert_int_eq(mutils_read(&r, t, &out, &a), -EBADMSG);
    ck_assert_int_eq(mutils_reader_error(&r, &off), -EBADMSG);
    ck_assert_uint_eq(off, 17);
    ck_assert_int_eq(cnt.outstanding, 0);
    ck_assert_ptr_null(out.keys);
    /* a key longer than its max */
    buf[11] = 9;
    mutils_reader_init(&r, buf, len);
    ck_assert_int_eq(mutils_read(&r, t, &out, &a), -EBADMSG);
    mutils_reader_error(&r, &off);
    ck_assert_uint_eq(off, 11);
    ck_assert_int_eq(cnt.outstanding, 0);
    /* more pairs than the max */
    buf[0] = 4;
    mutils_reader_init(&r, buf, len);
    ck_assert_int_eq(mutils_read(&r, t, &out, &a), -EBADMSG);
    mutils_reader_error(&r, &off);
    ck_assert_uint_eq(off, 0);
    /* writing more pairs than the max */
    in.count = 4;
    ck_assert_int_eq(mutils_encode(t, &in, buf, sizeof buf, &len), -ERANGE);
}
END_TEST

struct all_prims {
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    bool b;
    float f32;
    double f64;
    bool flags[3];
    struct mutils_array bits; /* bool, at most 4 */
    char label[4];            /* STRBUF: at most 3 bytes */
};

static const struct mutils_type all_prims_type = MUTILS_STRUCT_INIT(
    struct all_prims, MUTILS_FIELD(struct all_prims, u8, &mutils_type_u8),
    MUTILS_FIELD(struct all_prims, u16, &mutils_type_u16),
    MUTILS_FIELD(struct all_prims, u32, &mutils_type_u32),
    MUTILS_FIELD(struct all_prims, u64, &mutils_type_u64),
    MUTILS_FIELD(struct all_prims, i8, &mutils_type_i8),
    MUTILS_FIELD(struct all_prims, i16, &mutils_type_i16),
    MUTILS_FIELD(struct all_prims, i32, &mutils_type_i32),
    MUTILS_FIELD(struct all_prims, i64, &mutils_type_i64),
    MUTILS_FIELD(struct all_prims, b, &mutils_type_bool),
    MUTILS_FIELD(struct all_prims, f32, &mutils_type_f32),
    MUTILS_FIELD(struct all_prims, f64, &mutils_type_f64),
    MUTILS_FIELD(struct all_prims, flags,
                 MUTILS_TYPE_FIXED(&mutils_type_bool, 3)),
    MUTILS_FIELD(struct all_prims, bits,
                 MUTILS_TYPE_ARRAY(&mutils_type_bool, 4)),
    MUTILS_FIELD(struct all_prims, label, MUTILS_TYPE_STRBUF(4)));

START_TEST(descriptor_primitives_at_limits)
{
    bool bits[4] = {true, false, false, true};
    struct all_prims lo = {0,         0,         0,         0,     INT8_MIN,
                           INT16_MIN, INT32_MIN, INT64_MIN, false, -0.0f,
                           -1e308,    {0},       {bits, 0}, ""};
    struct all_prims hi = {
        UINT8_MAX, UINT16_MAX,          UINT32_MAX, UINT64_MAX, INT8_MAX,
        INT16_MAX, INT32_MAX,           INT64_MAX,  true,       3.4e38f,
        1e308,     {true, false, true}, {bits, 4},  "abc"};
    const struct all_prims *cases[] = {&lo, &hi};
    for (int i = 0; i < 2; i++) {
        uint8_t buf[128];
        size_t len, size;
        ck_assert_int_eq(mutils_size(&all_prims_type, cases[i], &size), 0);
        ck_assert_int_eq(
            mutils_encode(&all_prims_type, cases[i], buf, sizeof buf, &len), 0);
        ck_assert_uint_eq(len, size);
        /* 15 + 15 + 1+4+8 + 3 + (4 + count) + (4 + strlen) */
        ck_assert_uint_eq(len,
                          54 + cases[i]->bits.count + strlen(cases[i]->label));
        struct all_prims out;
        struct mutils_reader r;
        mutils_reader_init(&r, buf, len);
        ck_assert_int_eq(mutils_read_view(&r, &all_prims_type, &out, NULL), 0);
        ck_assert(mutils_equal(&all_prims_type, cases[i], &out));
        ck_assert_str_eq(out.label, cases[i]->label);
        /* a view of bools points into the buffer (bytes 0/1 are bools) */
        if (out.bits.count)
            ck_assert_ptr_eq(out.bits.items, buf + 50);
        mutils_free_view(&all_prims_type, &out, NULL, buf, len);
        /* an invalid byte in the fixed bool array, then in the array */
        size_t off;
        for (size_t at = 43; at < 46; at++) {
            uint8_t saved = buf[at];
            buf[at] = 2;
            mutils_reader_init(&r, buf, len);
            ck_assert_int_eq(mutils_read(&r, &all_prims_type, &out, NULL),
                             -EBADMSG);
            mutils_reader_error(&r, &off);
            ck_assert_uint_eq(off, at);
            buf[at] = saved;
        }
        if (cases[i]->bits.count) {
            buf[50 + 3] = 9;
            mutils_reader_init(&r, buf, len);
            ck_assert_int_eq(mutils_read(&r, &all_prims_type, &out, NULL),
                             -EBADMSG);
            mutils_reader_error(&r, &off);
            ck_assert_uint_eq(off, 53);
        }
    }
    /* a STRBUF with no room for the NUL cannot be written */
    memcpy(hi.label, "abcd", 4);
    size_t size;
    ck_assert_int_eq(mutils_size(&all_prims_type, &hi, &size), -EINVAL);
}
END_TEST

struct bad_struct {
    uint32_t a;
};

/* A struct containing itself without indirection: it can never end. */
static const struct mutils_type self_type;
static const struct mutils_field self_fields[] = {{"again", 0, &self_type}};
static const struct mutils_type self_type = {.kind = MUTILS_KIND_STRUCT,
                                             .c_size = 8,
                                             .fields = self_fields,
                                             .num_fields = 1};

START_TEST(type_check_rejects_bad_descriptors)
{
    ck_assert_int_eq(mutils_type_check(MUTILS_TYPE_ARRAY(NULL, 3)), -EINVAL);
    ck_assert_int_eq(mutils_type_check(MUTILS_TYPE_STRBUF(0)), -EINVAL);
    ck_assert_int_eq(
        mutils_type_check(MUTILS_TYPE_STRING((size_t)MUTILS_MAX_LEN + 1)),
        -EINVAL);
    ck_assert_int_eq(mutils_type_check(&(const struct mutils_type){.kind = 99}),
                     -EINVAL);
    static const struct mutils_field past_end[] = {{"a", 2, &mutils_type_u32}};
    const struct mutils_type outside = {.kind = MUTILS_KIND_STRUCT,
                                        .c_size = sizeof(struct bad_struct),
                                        .fields = past_end,
                                        .num_fields = 1};
    ck_assert_int_eq(mutils_type_check(&outside), -EINVAL);
    ck_assert_int_eq(mutils_type_check(MUTILS_TYPE_OPTIONAL(&sample_args_type)),
                     -EINVAL);
    /* a struct containing itself without indirection can never end */
    ck_assert_int_eq(mutils_type_check(&self_type), -ELOOP);
    /* too deep without any cycle */
    struct mutils_type chain[40];
    for (int i = 0; i < 40; i++)
        chain[i] = (struct mutils_type){.kind = MUTILS_KIND_OPTIONAL,
                                        .elem = i + 1 < 40 ? &chain[i + 1]
                                                           : &mutils_type_u8};
    ck_assert_int_eq(mutils_type_check(&chain[0]), -ELOOP);
    uint64_t fp;
    ck_assert_int_eq(mutils_fingerprint(&chain[0], &fp), -ELOOP);
    ck_assert_int_eq(mutils_type_check(&chain[20]), 0);
}
END_TEST

Suite *mutils_type_suite(void)
{
    Suite *s = suite_create("mutils-type");
    TCase *tc = tcase_create("type");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, descriptors_are_valid);
    tcase_add_test(tc, descriptor_primitives_at_limits);
    tcase_add_test(tc, nested_round_trip_copy);
    tcase_add_test(tc, zero_copy_view_points_into_buffer);
    tcase_add_test(tc, view_of_primitive_array_aligned_or_copied);
    tcase_add_test(tc, arena_read_and_reset);
    tcase_add_test(tc, args_pack_round_trip);
    tcase_add_test(tc, write_errors_leave_nothing);
    tcase_add_test(tc, growable_write_grows_exactly);
    tcase_add_test(tc, map_errors_report_offsets);
    tcase_add_test(tc, read_errors_report_offsets);
    tcase_add_test(tc, every_truncation_of_nested_is_rejected);
    tcase_add_test(tc, allocation_failure_frees_everything);
    tcase_add_test(tc, nesting_limit);
    tcase_add_test(tc, type_check_rejects_bad_descriptors);
    suite_add_tcase(s, tc);
    return s;
}
