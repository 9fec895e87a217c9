/* Fuzz target: view decoding; what decodes must re-encode to the same
 * bytes. */
#include <derecho/derecho.h>
#include <mutils/mutils.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct derecho_view *v = NULL;
    if (derecho_view_decode(data, size, 1, &v, NULL) != 0)
        return 0;
    struct mutils_writer w;
    if (mutils_writer_init_growable(&w, size) == 0) {
        if (derecho_view_encode(v, &w) == 0 &&
            (mutils_writer_len(&w) != size ||
             memcmp(mutils_writer_data(&w), data, size) != 0))
            abort(); /* a decoded view must encode to the same bytes */
        mutils_writer_fini(&w);
    }
    derecho_view_destroy(v);
    return 0;
}
