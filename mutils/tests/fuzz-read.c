/* Fuzz target: descriptor-driven reads of untrusted bytes.
 *
 * The first byte picks a descriptor (a nested view, an argument pack, a
 * recursive list, a shard); the rest is read with a copying read and a
 * zero-copy view read.  Both must agree; a successful read must re-encode
 * to exactly the bytes it consumed (the format is canonical); everything
 * allocated must be freed (the sanitizers check).  Built with libFuzzer
 * under clang when `fuzzing` is on, and replayed over the corpus as a
 * normal test otherwise. */
#include <mutils/mutils.h>

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "sample-types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer treats a trap as a finding. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            __builtin_trap();                                                  \
    } while (0)

static void check_canonical(const struct mutils_type *t, const void *value,
                            const uint8_t *data, size_t used)
{
    uint8_t *again = malloc(used ? used : 1);
    size_t len = 0;
    CHECK(again);
    CHECK(mutils_encode(t, value, again, used, &len) == 0);
    CHECK(len == used);
    CHECK(!used || memcmp(again, data, used) == 0);
    free(again);
}

static void fuzz_value(const struct mutils_type *t, const uint8_t *data,
                       size_t size)
{
    /* max_align_t storage big enough for any sample struct */
    union {
        max_align_t align;
        uint8_t bytes[256];
    } copy, view;
    struct mutils_reader r;
    CHECK(mutils_type_c_size(t) <= sizeof copy.bytes);

    mutils_reader_init(&r, data, size);
    int rc = mutils_read(&r, t, copy.bytes, NULL);
    size_t used = mutils_reader_offset(&r);
    if (rc) {
        size_t off = SIZE_MAX;
        CHECK(mutils_reader_error(&r, &off) == rc || rc == -ENOMEM);
        CHECK(rc != -EBADMSG || off <= size);
        CHECK(used == 0);
    }

    uint8_t block[512];
    struct mutils_arena arena;
    mutils_arena_init(&arena, block, sizeof block);
    mutils_reader_init(&r, data, size);
    int vrc =
        mutils_read_view(&r, t, view.bytes, mutils_arena_allocator(&arena));
    CHECK(vrc == rc);
    if (!rc) {
        CHECK(mutils_reader_offset(&r) == used);
        CHECK(mutils_equal(t, copy.bytes, view.bytes));
        check_canonical(t, copy.bytes, data, used);
        size_t n;
        CHECK(mutils_size(t, view.bytes, &n) == 0 && n == used);
        mutils_free(t, copy.bytes, NULL);
    }
    mutils_arena_fini(&arena);
}

static void fuzz_args(const uint8_t *data, size_t size)
{
    int64_t id;
    struct mutils_str name;
    struct mutils_bytes blob;
    void *const args[] = {&id, &name, &blob};
    struct mutils_reader r;
    mutils_reader_init(&r, data, size);
    if (mutils_args_read(&r, &sample_args_type, args, NULL))
        return;
    size_t used = mutils_reader_offset(&r);
    check_canonical(&sample_args_type, args, data, used);
    mutils_args_free(&sample_args_type, args, NULL);
}

/* The primitive reader API over the same bytes: never reads past the
 * end, and the offset never exceeds the length. */
static void fuzz_primitives(const uint8_t *data, size_t size)
{
    struct mutils_reader r;
    mutils_reader_init(&r, data, size);
    for (int i = 0; i < 64 && !mutils_reader_error(&r, NULL); i++) {
        uint8_t op;
        if (mutils_get_u8(&r, &op))
            break;
        const void *p;
        const char *s;
        size_t n;
        uint64_t u;
        bool b;
        char text[16];
        uint32_t arr[4];
        switch (op % 6) {
        case 0:
            mutils_get_u64(&r, &u);
            break;
        case 1:
            mutils_get_bool(&r, &b);
            break;
        case 2:
            mutils_get_bytes_view(&r, &p, &n, 64);
            break;
        case 3:
            mutils_get_string_view(&r, &s, &n, 64);
            break;
        case 4:
            if (mutils_get_string(&r, text, sizeof text, &n, 64) == 0)
                CHECK(strlen(text) == n);
            break;
        default:
            mutils_get_array(&r, MUTILS_KIND_U32, arr, 4, &n, 8);
            break;
        }
        CHECK(mutils_reader_offset(&r) <= size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    switch (sel % 6) {
    case 0:
        fuzz_value(&sample_view_type, data, size);
        break;
    case 1:
        fuzz_args(data, size);
        break;
    case 2:
        fuzz_value(&sample_node_type, data, size);
        break;
    case 3:
        fuzz_value(&sample_shard_type, data, size);
        break;
    case 4:
        fuzz_value(&sample_member_type, data, size);
        break;
    default:
        fuzz_primitives(data, size);
        break;
    }
    return 0;
}
