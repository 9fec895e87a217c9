/* Fuzz target: control frame headers and join message bodies.  The first
 * byte picks the decoder; what decodes must re-encode to the same bytes. */
#include <derecho/derecho.h>
#include <mutils/mutils.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_or_abort(struct mutils_writer *w, const uint8_t *data,
                          size_t size)
{
    if (mutils_writer_len(w) != size ||
        memcmp(mutils_writer_data(w), data, size) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0] % 3;
    data++;
    size--;
    uint8_t buf[512];
    struct mutils_writer w;
    mutils_writer_init(&w, buf, sizeof(buf));
    if (which == 0) {
        struct derecho_control_header h;
        int field;
        struct derecho_error err;
        derecho_control_header_decode(data, size, &h, &field, &err);
    } else if (which == 1) {
        struct derecho_join_request req;
        if (derecho_join_request_decode(data, size, &req) == 0) {
            if (derecho_join_request_encode(&req, &w) != 0)
                abort();
            same_or_abort(&w, data, size);
        }
    } else {
        struct derecho_join_answer ans;
        if (derecho_join_answer_decode(data, size, &ans) == 0) {
            if (derecho_join_answer_encode(&ans, &w) != 0)
                abort();
            same_or_abort(&w, data, size);
        }
    }
    return 0;
}
