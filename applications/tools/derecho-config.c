/* derecho-config: check, query and dump a Derecho configuration.
 *
 *   derecho-config [--file F] [--strict] [overrides...]
 *                  [--get SECTION/key | --dump | --check | --schema]
 *
 * Output contract (docs/conf.md, "derecho-config"): --get prints the typed
 * value on one line (lists one item a line), --dump the effective
 * configuration as INI with a "; source:" comment per key; errors and
 * warnings go to stderr as "FILE:LINE: SECTION/key: message" or
 * "command line: ARG: message".  Exit codes: 0 ok (warnings allowed),
 * 2 configuration error, 64 usage error. */
#include <conf/conf.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_CONFIG = 2, EXIT_USAGE = 64 };

enum action { ACTION_CHECK, ACTION_GET, ACTION_DUMP, ACTION_SCHEMA };

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--file F] [--strict] [--SECTION/key=value ...]\n"
            "          [--get SECTION/key | --dump | --check | --schema]\n"
            "\n"
            "  --file F       read F (default: $DERECHO_CONF_FILE, else\n"
            "                 ./derecho.cfg when it exists)\n"
            "  --strict       warnings (unknown, deprecated or obsolete "
            "keys) are errors\n"
            "  --get S/key    print the effective value of key in section "
            "S\n"
            "  --dump         print the effective configuration as INI\n"
            "  --check        validate only (the default)\n"
            "  --schema       print the table of known options (Markdown)\n"
            "  --SECTION/key=value, --SECTION/key value\n"
            "                 override a value; `--` ends the overrides\n"
            "\n"
            "Exit status: 0 ok, 2 configuration error, 64 usage error.\n",
            prog);
}

static void print_log(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    fprintf(stderr, "%s\n", msg);
}

static void discard_log(void *ctx, int level, const char *module,
                        const char *msg)
{
    (void)ctx;
    (void)level;
    (void)module;
    (void)msg;
}

/* Output that did not reach stdout (a full disk, a closed pipe) is a
 * failure, not a silent success. */
static int flush_stdout(const char *prog, int status)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror(prog);
        return EXIT_CONFIG;
    }
    return status;
}

static int config_error(const struct conf_error *err)
{
    char line[2048];
    conf_error_format(err, line, sizeof(line));
    fprintf(stderr, "%s\n", line);
    return EXIT_CONFIG;
}

/* Takes the overrides out of a copy of argv; returns an exit status or -1
 * on success with the leftovers in *args (argv[0] first). */
static int take_overrides(struct conf *c, int argc, char **argv, int *nargs,
                          char ***args)
{
    char **copy = calloc((size_t)argc + 1, sizeof(*copy));
    if (!copy) {
        fprintf(stderr, "derecho-config: out of memory\n");
        return EXIT_CONFIG;
    }
    memcpy(copy, argv, (size_t)argc * sizeof(*copy));
    int n = argc;
    struct conf_error err;
    if (conf_parse_args(c, &n, copy, &err) != 0) {
        free(copy);
        return config_error(&err);
    }
    *nargs = n;
    *args = copy;
    return -1;
}

static void print_table_cell(const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            putchar('\\');
        putchar(*s);
    }
}

/* The option table of docs/conf.md, generated from the schema. */
static void print_schema(void)
{
    puts("| Section | Key | Type | Default | Allowed | Description |");
    puts("|---|---|---|---|---|---|");
    for (size_t i = 0; i < conf_schema_count(); i++) {
        const struct conf_option *o = conf_schema_get(i);
        if (o->flags & CONF_OPT_PROFILE_ONLY)
            printf("| SUBGROUP/* | `%s` | ", o->key);
        else
            printf("| %s%s | `%s` | ", o->section,
                   (o->flags & CONF_OPT_PROFILE) ? ", SUBGROUP/*" : "", o->key);
        if (o->type == CONF_TYPE_LIST)
            printf("list of %s", conf_type_name(o->list_item_type));
        else
            printf("%s", conf_type_name(o->type));
        fputs(" | ", stdout);
        if (!o->default_value)
            fputs("-", stdout);
        else if (!o->default_value[0])
            fputs("(empty)", stdout);
        else
            printf("`%s`", o->default_value);
        fputs(" | ", stdout);
        bool ranged =
            o->type == CONF_TYPE_UINT || o->type == CONF_TYPE_SIZE ||
            (o->type == CONF_TYPE_LIST && o->list_item_type == CONF_TYPE_UINT);
        if ((o->flags & (CONF_OPT_DEPRECATED | CONF_OPT_OBSOLETE)) == 0) {
            if (ranged)
                printf("%" PRIu64 " .. %" PRIu64, o->min_u, o->max_u);
            else if (o->type == CONF_TYPE_INT)
                printf("%" PRId64 " .. %" PRId64, o->min_i, o->max_i);
            for (int k = 0; o->type == CONF_TYPE_ENUM && o->enum_values[k]; k++)
                printf("%s`%s`", k ? ", " : "", o->enum_values[k]);
        }
        fputs(" | ", stdout);
        print_table_cell(o->description);
        puts(" |");
    }
}

/* Prints the typed value of SECTION/key (key after the last '/'). */
static int get_value(struct conf *c, const char *spec)
{
    char section[512];
    const char *slash = strrchr(spec, '/');
    size_t n = (size_t)(slash - spec);
    if (n >= sizeof(section)) {
        fprintf(stderr, "command line: %s: section name too long\n", spec);
        return EXIT_CONFIG;
    }
    memcpy(section, spec, n);
    section[n] = '\0';
    const char *key = slash + 1;
    const struct conf_option *o = conf_schema_find(section, key);
    if (o && o->alias_of)
        o = conf_schema_find(section, o->alias_of);
    enum conf_type type = o ? o->type : CONF_TYPE_STRING;
    int rc = 0;
    switch (type) {
    case CONF_TYPE_BOOL: {
        bool b;
        if ((rc = conf_get_bool(c, section, key, &b)) == 0)
            puts(b ? "true" : "false");
        break;
    }
    case CONF_TYPE_UINT:
    case CONF_TYPE_SIZE: {
        uint64_t v;
        if ((rc = conf_get_u64(c, section, key, &v)) == 0)
            printf("%" PRIu64 "\n", v);
        break;
    }
    case CONF_TYPE_INT: {
        int64_t v;
        if ((rc = conf_get_i64(c, section, key, &v)) == 0)
            printf("%" PRId64 "\n", v);
        break;
    }
    case CONF_TYPE_DOUBLE: {
        double v;
        if ((rc = conf_get_double(c, section, key, &v)) == 0)
            printf("%.17g\n", v);
        break;
    }
    case CONF_TYPE_ENUM: {
        const char *name;
        if ((rc = conf_get_enum(c, section, key, NULL, &name)) == 0)
            puts(name);
        break;
    }
    case CONF_TYPE_LIST: {
        char **items;
        size_t count;
        if ((rc = conf_get_list(c, section, key, &items, &count)) == 0) {
            for (size_t i = 0; i < count; i++)
                puts(items[i]);
            free(items);
        }
        break;
    }
    case CONF_TYPE_STRING: {
        const char *s;
        if ((rc = conf_get_string(c, section, key, &s)) == 0)
            puts(s);
        break;
    }
    }
    if (rc == 0)
        return 0;
    fprintf(stderr, "command line: %s: %s\n", spec,
            rc == -ENOENT ? "no such option" : conf_strerror(rc));
    return EXIT_CONFIG;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"strict", no_argument, NULL, 's'},
        {"get", required_argument, NULL, 'g'},
        {"dump", no_argument, NULL, 'd'},
        {"check", no_argument, NULL, 'c'},
        {"schema", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = "derecho-config";
    struct conf_options opts;
    conf_options_init(&opts);
    opts.log = discard_log;
    struct conf *c;
    if (conf_new(&opts, &c, NULL) != 0)
        return EXIT_CONFIG;

    /* First pass: take the overrides out so that getopt only sees our own
     * options (they are applied again below, once --strict is known). */
    int nargs;
    char **args;
    int status = take_overrides(c, argc, argv, &nargs, &args);
    conf_destroy(c);
    if (status >= 0)
        return status;

    const char *file = NULL, *get = NULL;
    bool strict = false;
    int actions = 0;
    enum action action = ACTION_CHECK;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(nargs, args, "+:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            file = optarg;
            break;
        case 's':
            strict = true;
            break;
        case 'g':
            get = optarg;
            action = ACTION_GET;
            actions++;
            break;
        case 'd':
            action = ACTION_DUMP;
            actions++;
            break;
        case 'c':
            action = ACTION_CHECK;
            actions++;
            break;
        case 'S':
            action = ACTION_SCHEMA;
            actions++;
            break;
        case 'h':
            usage(stdout, prog);
            free(args);
            return flush_stdout(prog, 0);
        case ':':
            fprintf(stderr, "%s: missing argument: %s\n", prog,
                    args[optind - 1]);
            usage(stderr, prog);
            free(args);
            return EXIT_USAGE;
        default:
            /* A long option is the element just passed; a short one may sit
             * inside a cluster ("-xy") that getopt has not passed yet. */
            if (strncmp(args[optind - 1], "--", 2) == 0 || !optopt)
                fprintf(stderr, "%s: unknown option: %s\n", prog,
                        args[optind - 1]);
            else
                fprintf(stderr, "%s: unknown option: -%c\n", prog, optopt);
            usage(stderr, prog);
            free(args);
            return EXIT_USAGE;
        }
    }
    if (optind < nargs || actions > 1 || (get && !strchr(get, '/'))) {
        if (optind < nargs)
            fprintf(stderr, "%s: unexpected argument: %s\n", prog,
                    args[optind]);
        else if (actions > 1)
            fprintf(stderr,
                    "%s: give one of --get, --dump, --check, "
                    "--schema\n",
                    prog);
        else
            fprintf(stderr, "%s: --get needs SECTION/key\n", prog);
        usage(stderr, prog);
        free(args);
        return EXIT_USAGE;
    }
    free(args);
    if (action == ACTION_SCHEMA) {
        print_schema();
        return flush_stdout(prog, 0);
    }

    /* Second pass, for real: overrides, then the file. */
    opts.log = print_log;
    opts.strict = strict;
    if (conf_new(&opts, &c, NULL) != 0)
        return EXIT_CONFIG;
    struct conf_error err;
    status = take_overrides(c, argc, argv, &nargs, &args);
    if (status < 0) {
        free(args);
        int rc =
            file ? conf_load_file(c, file, &err) : conf_load_default(c, &err);
        status = rc != 0 ? config_error(&err) : 0;
    }
    if (status == 0 && action == ACTION_GET) {
        status = get_value(c, get);
    } else if (status == 0 && action == ACTION_DUMP) {
        char *text;
        if (conf_dump(c, &text, NULL) != 0) {
            fprintf(stderr, "%s: out of memory\n", prog);
            status = EXIT_CONFIG;
        } else {
            fputs(text, stdout);
            free(text);
        }
    }
    conf_destroy(c);
    return flush_stdout(prog, status);
}
