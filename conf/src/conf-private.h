/* Internal declarations shared by the files of libconf. */
#ifndef DERECHO_CONF_PRIVATE_H
#define DERECHO_CONF_PRIVATE_H

#include "conf/conf.h"

#include <stdarg.h>

/* One value set by a file or the command line. */
struct conf__entry {
    char *section;
    char *key;
    char *value;
    enum conf_source source; /* FILE or COMMAND_LINE */
    char *file;              /* FILE: the file name; else NULL */
    int line;                /* FILE: its line */
    char *alias;             /* key as written when it was a deprecated name */
    char *arg;               /* COMMAND_LINE: the argument, for messages */
    uint64_t seq;            /* load order: a later load wins in a layer */
};

/* A growable array of entries, with a hash index on (section, key) so that
 * staging a file of n keys costs O(n), not O(n^2), whatever its size. */
struct conf__entries {
    struct conf__entry *v;
    size_t n, cap;
    size_t *slots; /* open addressing: entry index + 1, 0 = empty */
    size_t nslots; /* a power of two, at least 2 * n, or 0 */
};

struct conf {
    struct conf_options opts;
    struct conf__entries entries;
    uint64_t next_seq;
};

/* ---- schema.c ---- */

/* True when section is one of ours: the five fixed ones or SUBGROUP/NAME. */
bool conf__section_known(const char *section);
bool conf__is_profile(const char *section);

/* Checks text against opt's type and range.  Returns 0, -EINVAL or -ERANGE
 * and an explanation in msg. */
int conf__validate(const struct conf_option *opt, const char *text, char *msg,
                   size_t msglen);

/* Typed parsers of a whole value (no surrounding spaces allowed). */
int conf__parse_i64(const char *text, int64_t *out);
int conf__parse_u64(const char *text, uint64_t *out);
int conf__parse_size(const char *text, uint64_t *out);
int conf__parse_double(const char *text, double *out);
int conf__parse_bool(const char *text, bool *out);
int conf__parse_enum(const struct conf_option *opt, const char *text);
/* Splits a list; the caller frees *items. */
int conf__split_list(const char *text, char ***items, size_t *count);

/* ---- parse.c ---- */

/* Checks that s[0..len) is valid UTF-8. */
bool conf__utf8_valid(const char *s, size_t len);
bool conf__key_valid(const char *key);
bool conf__section_name_valid(const char *section);
/* Whether a value must be written in double quotes in the INI dialect:
 * after "key = " (blanks before the value), or when compact, right after
 * "key=" (where a leading '#' or ';' is no comment). */
bool conf__value_needs_quotes(const char *value, bool compact);
/* Whether a command-line value can be written back in a file (valid UTF-8,
 * no control characters, no '"' when it has to be quoted, "key=value" and
 * "[section]" within CONF_MAX_LINE); msg says why not. */
bool conf__value_writable(const char *section, const char *key,
                          const char *value, char *msg, size_t msglen);

/* Parses text into staged (which the caller owns); on error fills err. */
int conf__parse_ini(struct conf *c, const char *name, const char *text,
                    size_t len, struct conf__entries *staged,
                    struct conf_error *err);

/* ---- conf.c ---- */

/* err->code while a call fills err: msg was set by this call.  Replaced by
 * the returned code before the call returns (1 is never a return code). */
#define CONF__ERROR_FILLED 1

void conf__log(const struct conf *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conf__set_error(struct conf_error *err, const char *file, int line,
                     const char *section, const char *key, const char *arg,
                     const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Checks one (section, key, value) against the schema and adds it to staged:
 * handles unknown keys (warning or strict error), deprecated aliases,
 * obsolete keys and duplicates.  where is the entry's source information
 * (section, key, value, file, line, arg are copied). */
int conf__stage(struct conf *c, struct conf__entries *staged,
                const struct conf__entry *where, struct conf_error *err);

void conf__entries_free(struct conf__entries *e);

#endif
