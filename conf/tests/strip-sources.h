/* Shared by the dump tests and the fuzz target: compares dumps apart from
 * where their values came from. */
#ifndef DERECHO_TEST_STRIP_SOURCES_H
#define DERECHO_TEST_STRIP_SOURCES_H

#include <stdbool.h>
#include <string.h>

/* Drops the "  ; source: ..." comments and "; source: ..." lines, in
 * place. */
static inline void strip_sources(char *text)
{
    char *out = text;
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        char *src = strstr(line, "  ; source: ");
        if (src && src < line + n)
            n = (size_t)(src - line);
        bool whole = strncmp(line, "; source: ", 10) == 0; /* own line */
        if (!whole) {
            memmove(out, line, n);
            out += n;
            if (nl)
                *out++ = '\n';
        }
        line = nl ? nl + 1 : line + strlen(line);
    }
    *out = '\0';
}

#endif
