/* libFuzzer target for the configuration parser.  Besides "never crash",
 * it checks the dump contract: whatever loads, its dump loads again and
 * dumps to the same text (sources aside). */
#include <conf/conf.h>

#include "strip-sources.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    (void)msg;
}

static struct conf *make(void)
{
    struct conf_options opts;
    conf_options_init(&opts);
    opts.log = quiet;
    opts.no_env = true;
    struct conf *c = NULL;
    if (conf_new(&opts, &c, NULL) != 0)
        abort();
    return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conf *c = make();
    struct conf_error err;
    if (conf_load_buffer(c, "fuzz", (const char *)data, size, &err) == 0) {
        char *first, *second;
        if (conf_dump(c, &first, NULL) != 0)
            abort();
        struct conf *d = make();
        if (conf_load_buffer(d, "dump", first, strlen(first), &err) != 0) {
            fprintf(stderr, "dump does not load: %d: %s\n%s\n", err.line,
                    err.msg, first);
            abort();
        }
        if (conf_dump(d, &second, NULL) != 0)
            abort();
        strip_sources(first);
        strip_sources(second);
        if (strcmp(first, second) != 0) {
            fprintf(stderr, "dump changed:\n%s\n---\n%s\n", first, second);
            abort();
        }
        free(first);
        free(second);
        conf_destroy(d);
    } else {
        char line[1200];
        conf_error_format(&err, line, sizeof(line));
    }
    conf_destroy(c);
    return 0;
}
