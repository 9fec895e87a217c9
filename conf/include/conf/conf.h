/* libconf: the Derecho configuration (INI file + command-line overrides).
 *
 * A struct conf holds the effective configuration of one process, built from
 * three layers, later ones winning whatever order they are loaded in:
 *   1. built-in defaults, from the schema (conf_schema_*);
 *   2. configuration files in the Derecho INI dialect (docs/conf.md);
 *   3. command-line overrides `--SECTION/key=value` / `--SECTION/key value`.
 * Within the file layer, a file loaded later wins over one loaded earlier.
 *
 * Lookups in a `SUBGROUP/NAME` profile fall back to `SUBGROUP/DEFAULT`, then
 * to the legacy `[DERECHO]` key of the same name, then to the default.
 *
 * Errors: functions that can fail return 0 or a negative errno and, when the
 * caller passes a struct conf_error, fill it with where and why.  A failed
 * load leaves the object as it was.  Nothing is printed except through the
 * log callback of struct conf_options; there is no global state, so any
 * number of struct conf may coexist.
 *
 * Misuse: a NULL struct conf, name, path, section, key or output pointer
 * (other than those documented as optional) makes a call fail with -EINVAL
 * and change nothing; the loading calls also say so in err.  The getters
 * return no value on error (their output is untouched), so a NULL struct
 * conf needs no sentinel; the schema lookups return NULL.
 *
 * Threading: a struct conf is not locked.  Loading calls (conf_load_*,
 * conf_parse_args) need exclusive access; getters and conf_dump may run
 * concurrently from several threads once loading is done.  The log callback
 * runs on the thread that called the loading function; it may call the
 * getters, conf_dump and even loading calls on the same struct conf, but
 * must not destroy it.
 */
#ifndef DERECHO_CONF_H
#define DERECHO_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONF_EXPORT __attribute__((visibility("default")))

/* Marks the calls kept for compatibility whose shape breaks the API
 * contract (docs/api.md).  Define DERECHO_WARN_DEPRECATED before the
 * include to get a compiler warning where they are used; by default they
 * compile silently, so that -Werror builds of existing programs still
 * build. */
#ifdef DERECHO_WARN_DEPRECATED
#define CONF_DEPRECATED __attribute__((deprecated))
#else
#define CONF_DEPRECATED
#endif

/* Longest accepted line of a configuration file, in bytes (without the
 * line break).  Longer lines are an error (-EBADMSG). */
#define CONF_MAX_LINE 4096

/* Environment variable naming the configuration file when no explicit path
 * is given. */
#define CONF_FILE_ENV "DERECHO_CONF_FILE"
/* File read from the working directory when neither an explicit path nor
 * CONF_FILE_ENV is given; its absence is not an error. */
#define CONF_DEFAULT_FILE "derecho.cfg"

/* ---- schema ------------------------------------------------------------ */

enum conf_type {
    CONF_TYPE_STRING, /* any UTF-8 text */
    CONF_TYPE_INT,    /* signed 64-bit decimal */
    CONF_TYPE_UINT,   /* unsigned 64-bit decimal */
    CONF_TYPE_DOUBLE, /* strtod syntax, finite */
    CONF_TYPE_BOOL,   /* true/false/yes/no/on/off/1/0 (any case) */
    CONF_TYPE_SIZE,   /* unsigned bytes, optional K/M/G (powers of 1024) */
    CONF_TYPE_ENUM,   /* one of conf_option.enum_values */
    CONF_TYPE_LIST,   /* comma-separated items of type list_item_type */
};

/* Flags of a schema entry. */
#define CONF_OPT_PROFILE 0x1u    /* also valid in [SUBGROUP/NAME] profiles */
#define CONF_OPT_DEPRECATED 0x2u /* old name of conf_option.alias_of */
#define CONF_OPT_OBSOLETE 0x4u   /* accepted with a warning, ignored */
/* Valid only in [SUBGROUP/NAME] profiles, with no [DERECHO] key behind it
 * (num_shards, min_nodes, max_nodes): the entry's section is
 * "SUBGROUP/DEFAULT" and it has no default, so a getter finds a value only
 * when the profile or [SUBGROUP/DEFAULT] sets one (else -ENOENT). */
#define CONF_OPT_PROFILE_ONLY 0x8u

/* One known option.  Entries live in a constant table inside the library and
 * stay valid for the life of the process. */
struct conf_option {
    const char *section; /* "DERECHO", "RDMA", "PERS", "LOGGER", "LAYOUT";
                            "SUBGROUP/DEFAULT" for CONF_OPT_PROFILE_ONLY */
    const char *key;
    enum conf_type type;
    /* The default as text, parsed like a file value; NULL for deprecated or
     * obsolete entries, which have no value of their own, and for
     * CONF_OPT_PROFILE_ONLY entries, which must be set where used. */
    const char *default_value;
    /* Allowed range (inclusive) for INT, UINT, SIZE and for the items of a
     * LIST of UINT; ignored for other types. */
    int64_t min_i, max_i;
    uint64_t min_u, max_u;
    /* NULL-terminated allowed names for ENUM. */
    const char *const *enum_values;
    enum conf_type list_item_type; /* for LIST: STRING or UINT */
    unsigned flags;                /* CONF_OPT_* */
    const char *alias_of;          /* for CONF_OPT_DEPRECATED: new key */
    const char *description;       /* one line */
};

/* Rules checked when a load completes (file, buffer or command line),
 * else the load fails with -EINVAL and changes nothing:
 * DERECHO/sst_poll_cq_timeout_ms (the suspicion timeout) must be at least
 * CONF_MIN_SUSPECT_HEARTBEATS times DERECHO/heartbeat_ms, and
 * RDMA/cq_data_limit must be 0, 4 or 8. */
#define CONF_MIN_SUSPECT_HEARTBEATS 3

/* Number of entries of the schema table (deprecated and obsolete included).
 * Thread-safe. */
CONF_EXPORT size_t conf_schema_count(void);

/* Entry i of the schema table, or NULL (the sentinel) when
 * i >= conf_schema_count(). */
CONF_EXPORT const struct conf_option *conf_schema_get(size_t i);

/* The entry for key in section, or NULL when unknown.  section may be a
 * profile "SUBGROUP/NAME", which finds the DERECHO entries flagged
 * CONF_OPT_PROFILE and the entries flagged CONF_OPT_PROFILE_ONLY. */
CONF_EXPORT const struct conf_option *conf_schema_find(const char *section,
                                                       const char *key);

/* Returns the name of a type ("string", "unsigned integer", ...); "unknown"
 * for a value that is no enum conf_type.  Never NULL. */
CONF_EXPORT const char *conf_type_name(enum conf_type type);

/* ---- options and errors -------------------------------------------------- */

/* Where a value came from. */
enum conf_source {
    CONF_SOURCE_DEFAULT = 0,
    CONF_SOURCE_FILE = 1,
    CONF_SOURCE_COMMAND_LINE = 2,
};

/* The log callback shape shared by every Derecho library.  level is a
 * syslog level (LOG_ERR .. LOG_DEBUG), module is "conf", msg is one line
 * without a line break, formatted like conf_error_format() output
 * ("FILE:LINE: SECTION/key: message" or "command line: ARG: message").
 * The strings are valid until the callback returns.  Must not block. */
typedef void (*conf_log_fn)(void *ctx, int level, const char *module,
                            const char *msg);

/* Options of conf_new and conf_startup.  Size rule (docs/api.md): size must
 * be sizeof a released layout of this struct -- the first one ends before
 * `file`, the second before `no_env` -- or larger, when every byte past
 * this library's struct is zero (a newer header whose new fields are left
 * at their defaults); anything else is -EINVAL.  Fields a shorter layout
 * lacks keep their defaults.  A NULL options pointer means all defaults. */
struct conf_options {
    size_t size;      /* sizeof(struct conf_options), set by _init */
    conf_log_fn log;  /* NULL: stderr */
    void *log_ctx;    /* passed to log */
    int log_level;    /* messages above this syslog level are dropped;
                         default LOG_WARNING */
    bool strict;      /* unknown keys, deprecated and obsolete keys are
                         errors instead of warnings */
    const char *file; /* conf_open only: explicit file (NULL: the
                         CONF_FILE_ENV / CONF_DEFAULT_FILE rule); only
                         read during the call */
    bool no_env;      /* conf_open, conf_load_default: ignore
                         CONF_FILE_ENV */
};

/* Fills opts with the defaults (stderr logging at LOG_WARNING, not strict,
 * no explicit file).  opts NULL: nothing happens. */
CONF_EXPORT void conf_options_init(struct conf_options *opts);

/* Detail of a failure: every field is empty ("" or 0) when it does not
 * apply.  Strings are NUL-terminated, truncated when too long.  code and
 * msg lead, the same two first fields as every Derecho library's error
 * struct; a call that fails sets code to the negative errno it returns
 * (and always sets msg), a call that succeeds leaves err as it was. */
struct conf_error {
    int code;          /* the negative errno returned, or 0 */
    char msg[512];     /* what was wrong / what was expected */
    char file[512];    /* file name, or "" (command line, no file) */
    int line;          /* 1-based line in file, 0 if none */
    int other_line;    /* for a duplicate key: the line that set it first */
    char section[256]; /* section, e.g. "DERECHO" or "SUBGROUP/LARGE" */
    char key[256];     /* key, e.g. "local_id" */
    char arg[512];     /* the command-line argument at fault, or "" */
};

/* Formats err as one line: "FILE:LINE: SECTION/key: msg",
 * "command line: ARG: msg", with the parts that do not apply left out.
 * Writes at most len bytes (NUL included); returns the snprintf result
 * (buf may be NULL when len is 0, to measure), or -EINVAL when err is NULL
 * or buf is NULL with len > 0.  A field without its NUL is read only up to
 * the end of its array; buf may be one of err's own fields. */
CONF_EXPORT int conf_error_format(const struct conf_error *err, char *buf,
                                  size_t len);

/* A static description of a return code of this library, given negative
 * (as returned) or positive: conf_strerror(e) and conf_strerror(-e) are the
 * same text.  Any other errno gets the system's text; a number that is no
 * errno gets "unknown error".  Never NULL.  Thread-safe. */
CONF_EXPORT const char *conf_strerror(int err);

/* ---- lifecycle and loading ---------------------------------------------- */

struct conf;

/* Creates a configuration holding only the defaults.  opts may be NULL
 * (defaults); it is copied (opts->file is not used here).  Returns 0 and
 * *out; on failure *out is NULL (when out is not NULL) and err (optional)
 * says why: -EINVAL (out NULL, or opts->size breaks the size rule of
 * struct conf_options), -ENOMEM. */
CONF_EXPORT int conf_new(const struct conf_options *opts, struct conf **out,
                         struct conf_error *err);

/* Deprecated (out-parameter first): conf_new(opts, out, NULL).  Kept with
 * its old behaviour, except that opts->size now follows the size rule. */
CONF_EXPORT CONF_DEPRECATED int conf_create(struct conf **out,
                                            const struct conf_options *opts);

/* Frees c and every string it returned.  conf_destroy(NULL) is a no-op. */
CONF_EXPORT void conf_destroy(struct conf *c);

/* Loads the file at path into the file layer.  Errors: -ENOENT, -EACCES,
 * -EISDIR, -EFBIG (over 16 MiB) and other errno values of open/read;
 * -EBADMSG (syntax, NUL byte, long line, invalid UTF-8), -EINVAL (value of
 * the wrong type, unknown section, strict-mode unknown key), -ERANGE (out
 * of range), -EEXIST (duplicate key; err->other_line is the first line).
 * On error nothing is changed. */
CONF_EXPORT int conf_load_file(struct conf *c, const char *path,
                               struct conf_error *err);

/* Like conf_load_file, from memory: name (not NULL) is used in messages
 * and sources (copied); text is len bytes and may contain anything, NUL
 * included (text may be NULL when len is 0). */
CONF_EXPORT int conf_load_buffer(struct conf *c, const char *name,
                                 const char *text, size_t len,
                                 struct conf_error *err);

/* Loads the default file: $DERECHO_CONF_FILE if set and non-empty (must
 * exist), else ./derecho.cfg if it exists (else nothing, returns 0).
 * Same errors as conf_load_file. */
CONF_EXPORT int conf_load_default(struct conf *c, struct conf_error *err);

/* Consumes the overrides `--SECTION/key=value` and `--SECTION/key value`
 * from argv (argv[0] is skipped).  A bare `--` ends them and is removed;
 * every argument after it, and every argument before it that is not an
 * override, is kept in order: on success argv[0..*argc-1] are argv[0] and
 * those arguments, argv[*argc] = NULL.  The key is what follows the last
 * '/' (`--SUBGROUP/LARGE/window_size=8`).  In the two-argument form the
 * value is never "--" nor another override (`--DERECHO/a --DERECHO/b=1` is
 * a missing value for a, not a = "--DERECHO/b=1").  Errors (argv and c
 * unchanged): -EINVAL (override without a value, unknown section, bad
 * value, strict unknown key; also a NULL c or argc, a negative *argc, a
 * NULL argv with *argc > 0, or a NULL argv[i] for 0 < i < *argc), -ERANGE;
 * err->arg names the argument.  argv[*argc] is written only when arguments
 * were taken out: with none, argv (as main()'s, terminated at argv[argc])
 * is left exactly as it was. */
CONF_EXPORT int conf_parse_args(struct conf *c, int *argc, char **argv,
                                struct conf_error *err);

/* The usual start-up: conf_new, then the file (opts->file if set and
 * opts->size covers it, else conf_load_default), then conf_parse_args when
 * argc and argv are not NULL.  On error *out is NULL (when out is not NULL),
 * argv is unchanged and err says why; -EINVAL when out is NULL. */
CONF_EXPORT int conf_startup(const struct conf_options *opts, int *argc,
                             char **argv, struct conf **out,
                             struct conf_error *err);

/* Deprecated (out-parameter first): conf_startup(opts, argc, argv, out,
 * err). */
CONF_EXPORT CONF_DEPRECATED int conf_open(struct conf **out,
                                          const struct conf_options *opts,
                                          int *argc, char **argv,
                                          struct conf_error *err);

/* ---- getters ------------------------------------------------------------ */
/* section is "DERECHO", "RDMA", ..., or "SUBGROUP/NAME" (with fallback).
 * Getters parse the effective text of the value; schema keys have been
 * checked when they were loaded.  Errors: -ENOENT (no such key set and no
 * default), -EINVAL (value not of the requested type; or c, section, key or
 * out NULL; or a range with min > max), -ERANGE (outside the schema's
 * range, or the range given).  Outputs are untouched on error. */

/* *out stays valid until the next loading call on c or conf_destroy. */
CONF_EXPORT int conf_get_string(const struct conf *c, const char *section,
                                const char *key, const char **out);
CONF_EXPORT int conf_get_i64(const struct conf *c, const char *section,
                             const char *key, int64_t *out);
CONF_EXPORT int conf_get_u64(const struct conf *c, const char *section,
                             const char *key, uint64_t *out);
/* The same with an extra range [min, max] checked on top of the schema's. */
CONF_EXPORT int conf_get_i64_range(const struct conf *c, const char *section,
                                   const char *key, int64_t min, int64_t max,
                                   int64_t *out);
CONF_EXPORT int conf_get_u64_range(const struct conf *c, const char *section,
                                   const char *key, uint64_t min, uint64_t max,
                                   uint64_t *out);
CONF_EXPORT int conf_get_double(const struct conf *c, const char *section,
                                const char *key, double *out);
CONF_EXPORT int conf_get_bool(const struct conf *c, const char *section,
                              const char *key, bool *out);
/* Byte size: decimal with optional K, M or G suffix (1024, 1024^2, 1024^3;
 * lowercase accepted). */
CONF_EXPORT int conf_get_size(const struct conf *c, const char *section,
                              const char *key, uint64_t *out);
/* Enumeration: *index into the schema entry's enum_values, and *name (may
 * be NULL) pointing into the schema.  -EINVAL when the key is no enum. */
CONF_EXPORT int conf_get_enum(const struct conf *c, const char *section,
                              const char *key, int *index, const char **name);
/* Comma-separated list, items trimmed of spaces.  *items is a NULL-
 * terminated array allocated in one block: the caller frees it with free().
 * An empty value is a list of 0 items; an empty item ("a,,b") is -EINVAL. */
CONF_EXPORT int conf_get_list(const struct conf *c, const char *section,
                              const char *key, char ***items, size_t *count);

/* Where the effective value of key comes from; *file (may be NULL) is the
 * file name for CONF_SOURCE_FILE (else NULL), valid like conf_get_string's
 * result, *line its line (else 0).  Same lookup and errors as the getters. */
CONF_EXPORT int conf_get_source(const struct conf *c, const char *section,
                                const char *key, enum conf_source *source,
                                const char **file, int *line);

/* ---- dump -----------------------------------------------------------------
 */

/* The effective configuration as INI text that conf_load_buffer reads back
 * to the same values: every schema key of each section (deprecated and
 * obsolete ones left out), the unknown keys that were set, then each
 * SUBGROUP profile with the keys set in it.  Each key line ends with a
 * comment "; source: default", "; source: FILE:LINE" or
 * "; source: command line" (on the next line when the key line would
 * otherwise pass CONF_MAX_LINE).  *out is NUL-terminated, allocated:
 * free() it; *len (len may be NULL) is its length.
 * Returns 0, -ENOMEM or -EINVAL (c or out NULL). */
CONF_EXPORT int conf_dump(const struct conf *c, char **out, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
