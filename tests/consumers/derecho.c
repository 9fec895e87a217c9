/* Consumer check: libderecho through its installed header and pkg-config.
 * A spec of one type, a view of three members, its encoding decoded back. */
#include <derecho/derecho.h>
#include <mutils/mutils.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    struct derecho_layout_spec *spec = NULL;
    if (derecho_layout_spec_create(&spec) != 0 ||
        derecho_layout_spec_add_type(spec, "Counter", NULL) != 0 ||
        derecho_layout_spec_add_entire_view(spec, 0, DERECHO_MODE_ORDERED,
                                            NULL) != 0)
        return 1;
    struct derecho_member m[3];
    memset(m, 0, sizeof(m));
    for (int i = 0; i < 3; i++) {
        m[i].node_id = (uint32_t)i;
        snprintf(m[i].ip, sizeof(m[i].ip), "127.0.0.1");
        m[i].gms_port = (uint16_t)(23580 + i);
    }
    struct derecho_view *v = NULL, *d = NULL;
    struct derecho_error err;
    if (derecho_view_create(0, m, 3, 0, NULL, spec, 1, &v, &err) != 0) {
        fprintf(stderr, "derecho_view_create: %s\n", err.msg);
        return 2;
    }
    struct mutils_writer w;
    if (mutils_writer_init_growable(&w, 0) != 0 ||
        derecho_view_encode(v, &w) != 0 ||
        derecho_view_decode(mutils_writer_data(&w), mutils_writer_len(&w), 2,
                            &d, &err) != 0)
        return 3;
    int rc = derecho_view_my_rank(d) == 2 &&
                     derecho_layout_shard_of(derecho_view_layout(d), 0, 0) == 0
                 ? 0
                 : 4;
    mutils_writer_fini(&w);
    derecho_view_destroy(d);
    derecho_view_destroy(v);
    derecho_layout_spec_destroy(spec);
    return rc;
}
