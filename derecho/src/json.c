/* A small JSON parser for layout documents (RFC 8259): bounded nesting,
 * every error with its line and column, strings decoded to UTF-8 without
 * NUL.  Layouts are small and read once at start-up, so it builds a tree
 * and favours clear errors over speed. */
#include "derecho-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    const char *text;
    size_t len;
    size_t pos;
    int line;
    size_t line_start;
    struct derecho_error *err;
};

static int column(const struct parser *p)
{
    return (int)(p->pos - p->line_start) + 1;
}

static int syntax(struct parser *p, const char *what)
{
    return derecho__fail(p->err, -EBADMSG, "JSON line %d, column %d: %s",
                         p->line, column(p), what);
}

static void skip_space(struct parser *p)
{
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c == '\n') {
            p->line++;
            p->line_start = p->pos + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            return;
        }
        p->pos++;
    }
}

static bool literal(struct parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0)
        return false;
    p->pos += n;
    return true;
}

static int hex4(struct parser *p, unsigned *out)
{
    unsigned v = 0;
    if (p->len - p->pos < 4)
        return syntax(p, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = p->text[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return syntax(p, "bad \\u escape");
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *dst, unsigned cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        dst[0] = (char)(0xe0 | (cp >> 12));
        dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        dst[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    dst[0] = (char)(0xf0 | (cp >> 18));
    dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* At the opening quote.  The decoded string is never longer than its
 * source, so one allocation of the source length suffices. */
static int parse_string(struct parser *p, char **out, size_t *out_len)
{
    size_t start = ++p->pos;
    size_t end = start;
    while (end < p->len && p->text[end] != '"') {
        if (p->text[end] == '\\')
            end++;
        end++;
    }
    if (end >= p->len)
        return syntax(p, "unterminated string");
    char *s = malloc(end - start + 1);
    if (!s)
        return derecho__fail(p->err, -ENOMEM, "JSON: out of memory");
    size_t n = 0;
    int rc = 0;
    while (p->pos < end && rc == 0) {
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c < 0x20) {
            rc = syntax(p, "control character in string");
        } else if (c != '\\') {
            s[n++] = (char)c;
            p->pos++;
        } else {
            char e = p->text[++p->pos];
            p->pos++;
            unsigned cp;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                s[n++] = e;
                break;
            case 'b':
                s[n++] = '\b';
                break;
            case 'f':
                s[n++] = '\f';
                break;
            case 'n':
                s[n++] = '\n';
                break;
            case 'r':
                s[n++] = '\r';
                break;
            case 't':
                s[n++] = '\t';
                break;
            case 'u':
                rc = hex4(p, &cp);
                if (rc)
                    break;
                if (cp >= 0xd800 && cp < 0xdc00) {
                    unsigned lo;
                    if (end - p->pos < 6 || p->text[p->pos] != '\\' ||
                        p->text[p->pos + 1] != 'u') {
                        rc = syntax(p, "lone surrogate in \\u escape");
                        break;
                    }
                    p->pos += 2;
                    rc = hex4(p, &lo);
                    if (rc)
                        break;
                    if (lo < 0xdc00 || lo >= 0xe000) {
                        rc = syntax(p, "lone surrogate in \\u escape");
                        break;
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                } else if (cp >= 0xdc00 && cp < 0xe000) {
                    rc = syntax(p, "lone surrogate in \\u escape");
                    break;
                } else if (cp == 0) {
                    rc = syntax(p, "\\u0000 (NUL) in string");
                    break;
                }
                /* A \u escape is 6 source bytes for at most 3 decoded (or
                 * 12 for 4), so the string still fits. */
                n += put_utf8(s + n, cp);
                break;
            default:
                p->pos--;
                rc = syntax(p, "bad escape in string");
            }
        }
    }
    if (rc) {
        free(s);
        return rc;
    }
    p->pos = end + 1;
    s[n] = 0;
    *out = s;
    *out_len = n;
    return 0;
}

static int parse_number(struct parser *p, struct derecho__json *v)
{
    size_t start = p->pos;
    if (p->pos < p->len && p->text[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len || p->text[p->pos] < '0' || p->text[p->pos] > '9')
        return syntax(p, "bad number");
    if (p->text[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->len && p->text[p->pos] >= '0' &&
               p->text[p->pos] <= '9')
            p->pos++;
    if (p->pos < p->len && p->text[p->pos] == '.') {
        p->pos++;
        size_t digits = p->pos;
        while (p->pos < p->len && p->text[p->pos] >= '0' &&
               p->text[p->pos] <= '9')
            p->pos++;
        if (p->pos == digits)
            return syntax(p, "bad number");
    }
    if (p->pos < p->len && (p->text[p->pos] == 'e' || p->text[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len &&
            (p->text[p->pos] == '+' || p->text[p->pos] == '-'))
            p->pos++;
        size_t digits = p->pos;
        while (p->pos < p->len && p->text[p->pos] >= '0' &&
               p->text[p->pos] <= '9')
            p->pos++;
        if (p->pos == digits)
            return syntax(p, "bad number");
    }
    v->len = p->pos - start;
    v->text = malloc(v->len + 1);
    if (!v->text)
        return derecho__fail(p->err, -ENOMEM, "JSON: out of memory");
    memcpy(v->text, p->text + start, v->len);
    v->text[v->len] = 0;
    return 0;
}

static void json_fini(struct derecho__json *v)
{
    free(v->text);
    for (size_t i = 0; i < v->count; i++) {
        json_fini(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

static int parse_value(struct parser *p, struct derecho__json *v, int depth);

/* Appends a zeroed slot to an array or object under construction. */
static int grow(struct parser *p, struct derecho__json *v, size_t *cap)
{
    if (v->count < *cap)
        return 0;
    size_t ncap = *cap ? 2 * *cap : 4;
    struct derecho__json *items = realloc(v->items, ncap * sizeof(*items));
    if (!items)
        return derecho__fail(p->err, -ENOMEM, "JSON: out of memory");
    v->items = items;
    if (v->kind == DERECHO__JSON_OBJECT) {
        char **keys = realloc(v->keys, ncap * sizeof(*keys));
        if (!keys)
            return derecho__fail(p->err, -ENOMEM, "JSON: out of memory");
        v->keys = keys;
    }
    *cap = ncap;
    return 0;
}

static int parse_container(struct parser *p, struct derecho__json *v, int depth)
{
    bool object = p->text[p->pos] == '{';
    char close = object ? '}' : ']';
    v->kind = object ? DERECHO__JSON_OBJECT : DERECHO__JSON_ARRAY;
    if (depth >= DERECHO__JSON_MAX_DEPTH)
        return syntax(p, "nested too deeply");
    p->pos++;
    skip_space(p);
    if (p->pos < p->len && p->text[p->pos] == close) {
        p->pos++;
        return 0;
    }
    size_t cap = 0;
    for (;;) {
        int rc = grow(p, v, &cap);
        if (rc)
            return rc;
        char *key = NULL;
        skip_space(p);
        if (object) {
            size_t key_len;
            if (p->pos >= p->len || p->text[p->pos] != '"')
                return syntax(p, "expected a key string");
            int kline = p->line, kcol = column(p);
            rc = parse_string(p, &key, &key_len);
            if (rc)
                return rc;
            for (size_t i = 0; i < v->count; i++)
                if (strcmp(v->keys[i], key) == 0) {
                    free(key);
                    return derecho__fail(p->err, -EBADMSG,
                                         "JSON line %d, column %d: duplicate "
                                         "key",
                                         kline, kcol);
                }
            skip_space(p);
            if (p->pos >= p->len || p->text[p->pos] != ':') {
                free(key);
                return syntax(p, "expected ':'");
            }
            p->pos++;
            skip_space(p);
        }
        struct derecho__json *item = &v->items[v->count];
        memset(item, 0, sizeof(*item));
        if (object)
            v->keys[v->count] = key;
        v->count++; /* counted now, so that a failure below frees it */
        rc = parse_value(p, item, depth + 1);
        if (rc)
            return rc;
        skip_space(p);
        if (p->pos < p->len && p->text[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->text[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return syntax(p,
                      object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(struct parser *p, struct derecho__json *v, int depth)
{
    skip_space(p);
    v->line = p->line;
    v->column = column(p);
    if (p->pos >= p->len)
        return syntax(p, "unexpected end of document");
    char c = p->text[p->pos];
    switch (c) {
    case '{':
    case '[':
        return parse_container(p, v, depth);
    case '"':
        v->kind = DERECHO__JSON_STRING;
        return parse_string(p, &v->text, &v->len);
    case 't':
    case 'f':
    case 'n':
        if (literal(p, "true")) {
            v->kind = DERECHO__JSON_BOOL;
            v->boolean = true;
        } else if (literal(p, "false")) {
            v->kind = DERECHO__JSON_BOOL;
        } else if (literal(p, "null")) {
            v->kind = DERECHO__JSON_NULL;
        } else {
            return syntax(p, "unknown literal");
        }
        return 0;
    default:
        if (c != '-' && (c < '0' || c > '9'))
            return syntax(p, "unexpected character");
        v->kind = DERECHO__JSON_NUMBER;
        return parse_number(p, v);
    }
}

int derecho__json_parse(const char *text, size_t len,
                        struct derecho__json **out, struct derecho_error *err)
{
    *out = NULL;
    if (!text && len)
        return derecho__fail(err, -EINVAL, "JSON: NULL text");
    struct parser p = {.text = text, .len = len, .line = 1, .err = err};
    struct derecho__json *v = calloc(1, sizeof(*v));
    if (!v)
        return derecho__fail(err, -ENOMEM, "JSON: out of memory");
    int rc = parse_value(&p, v, 0);
    if (rc == 0) {
        skip_space(&p);
        if (p.pos != p.len)
            rc = syntax(&p, "unexpected text after the document");
    }
    if (rc) {
        derecho__json_free(v);
        return rc;
    }
    *out = v;
    return 0;
}

void derecho__json_free(struct derecho__json *v)
{
    if (!v)
        return;
    json_fini(v);
    free(v);
}

const struct derecho__json *derecho__json_get(const struct derecho__json *v,
                                              const char *key)
{
    if (!v || v->kind != DERECHO__JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->keys[i], key) == 0)
            return &v->items[i];
    return NULL;
}
