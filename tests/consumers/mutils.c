/* Consumer check: libmutils used alone through its installed header and
 * pkg-config file.  Encodes a small struct, reads it back, compares. */
#include <mutils/mutils.h>

#include <stdio.h>
#include <string.h>

struct greeting {
    uint32_t id;
    struct mutils_str text;
    int16_t values[3];
};

static const struct mutils_type greeting_type = MUTILS_STRUCT_INIT(
    struct greeting, MUTILS_FIELD(struct greeting, id, &mutils_type_u32),
    MUTILS_FIELD(struct greeting, text, MUTILS_TYPE_STRING(32)),
    MUTILS_FIELD(struct greeting, values,
                 MUTILS_TYPE_FIXED(&mutils_type_i16, 3)));

int main(void)
{
    struct greeting in = {7, {"hello", 5}, {1, -2, 3}}, out;
    uint8_t buf[64];
    size_t len;
    uint64_t fp;
    int rc = mutils_encode(&greeting_type, &in, buf, sizeof buf, &len);
    if (rc) {
        fprintf(stderr, "encode: %s\n", mutils_strerror(rc));
        return 1;
    }
    struct mutils_reader r;
    mutils_reader_init(&r, buf, len);
    rc = mutils_read(&r, &greeting_type, &out, NULL);
    if (rc || mutils_reader_finish(&r) ||
        !mutils_equal(&greeting_type, &in, &out) ||
        strcmp(out.text.ptr, "hello") != 0) {
        fprintf(stderr, "read: %s\n", mutils_strerror(rc));
        return 1;
    }
    mutils_free(&greeting_type, &out, NULL);
    if (mutils_fingerprint(&greeting_type, &fp) || fp == 0)
        return 1;
    return 0;
}
