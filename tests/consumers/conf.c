/* Links libconf alone through pkg-config derecho-conf (CI, "consumers"). */
#include <conf/conf.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    struct conf_options opts;
    conf_options_init(&opts);
    opts.no_env = true;
    struct conf *conf;
    if (conf_new(&opts, &conf, NULL) != 0)
        return 1;
    static const char text[] = "[DERECHO]\nlocal_id = 7\n";
    struct conf_error err;
    if (conf_load_buffer(conf, "consumer.cfg", text, strlen(text), &err) != 0)
        return 2;
    char a0[] = "consumer", a1[] = "--SUBGROUP/LARGE/window_size=4",
         a2[] = "rest";
    char *argv[] = {a0, a1, a2, NULL};
    int argc = 3;
    if (conf_parse_args(conf, &argc, argv, &err) != 0 || argc != 2)
        return 3;
    uint64_t id = 0, window = 0;
    if (conf_get_u64(conf, "DERECHO", "local_id", &id) != 0 || id != 7)
        return 4;
    if (conf_get_u64(conf, "SUBGROUP/LARGE", "window_size", &window) != 0 ||
        window != 4)
        return 5;
    conf_destroy(conf);
    return 0;
}
