/* Fuzz target: JSON layouts (derecho_layout_spec_load_json), then the
 * allocator over what loaded. */
#include <derecho/derecho.h>

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct derecho_layout_spec *spec = NULL;
    if (derecho_layout_spec_create(&spec) != 0)
        return 0;
    derecho_layout_spec_add_type(spec, "Meta", NULL);
    derecho_layout_spec_add_type(spec, "Store", NULL);
    struct derecho_error err;
    if (derecho_layout_spec_load_json(spec, (const char *)data, size, &err) ==
        0) {
        static const uint32_t members[] = {1, 2, 3, 4, 5, 6, 7, 8};
        struct derecho_layout *l1 = NULL, *l2 = NULL;
        if (derecho_layout_compute(spec, members, 5, NULL, &l1, NULL) == 0 &&
            derecho_layout_compute(spec, members + 2, 6, l1, &l2, NULL) == 0) {
            /* Every member of a subgroup is in one shard of it at most. */
            for (uint32_t g = 0; g < derecho_layout_num_subgroups(l2); g++)
                for (int m = 3; m <= 8; m++)
                    (void)derecho_layout_shard_of(l2, g, (uint32_t)m);
        }
        derecho_layout_destroy(l1);
        derecho_layout_destroy(l2);
        uint64_t fp;
        derecho_layout_spec_fingerprint(spec, &fp);
    }
    derecho_layout_spec_destroy(spec);
    return 0;
}
