/* The INI lexer of the Derecho configuration dialect (docs/conf.md).
 *
 * Our own rather than inih: inih stops a line at a NUL byte without saying
 * so, silently truncates (or splits) long lines depending on its build
 * options, has no notion of our double-quoted values, and treats inline
 * comments differently; we need each of those to be an error with a line
 * number, and the dialect to be exactly what conf_dump writes back. */
#include "conf-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

static bool is_comment(char ch)
{
    return ch == '#' || ch == ';';
}

bool conf__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char b = p[i];
        size_t n;
        uint32_t cp;
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xc2 && b <= 0xdf) {
            n = 1;
            cp = b & 0x1fu;
        } else if (b >= 0xe0 && b <= 0xef) {
            n = 2;
            cp = b & 0x0fu;
        } else if (b >= 0xf0 && b <= 0xf4) {
            n = 3;
            cp = b & 0x07u;
        } else {
            return false; /* continuation byte, overlong lead, > U+10FFFF */
        }
        if (len - i - 1 < n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false; /* overlong, out of range, surrogate */
        i += n + 1;
    }
    return true;
}

static bool name_char(char ch, bool slash)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.' ||
           (slash && ch == '/');
}

static bool name_valid(const char *s, bool slash)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!name_char(*s, slash))
            return false;
    return true;
}

bool conf__key_valid(const char *key)
{
    return name_valid(key, false);
}

bool conf__section_name_valid(const char *section)
{
    return name_valid(section, true);
}

bool conf__value_needs_quotes(const char *v, bool compact)
{
    size_t len = strlen(v);
    if (len == 0)
        return !compact; /* "key = " reads as empty too, but "" says so */
    if (is_blank(v[0]) || is_blank(v[len - 1]) || v[0] == '"' ||
        (!compact && is_comment(v[0])))
        return true;
    for (size_t i = 1; i < len; i++)
        if (is_comment(v[i]) && is_blank(v[i - 1]))
            return true;
    return false;
}

/* A control character other than tab cannot be part of a value. */
static bool has_control(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            return true;
    }
    return false;
}

bool conf__value_writable(const char *section, const char *key, const char *v,
                          char *msg, size_t msglen)
{
    size_t len = strlen(v);
    if (!conf__utf8_valid(v, len)) {
        snprintf(msg, msglen, "invalid UTF-8 in value");
        return false;
    }
    if (has_control(v, len)) {
        snprintf(msg, msglen, "control character in value");
        return false;
    }
    bool quotes = conf__value_needs_quotes(v, true);
    if (quotes && strchr(v, '"')) {
        snprintf(msg, msglen,
                 "value needs double quotes but contains '\"': it could not "
                 "be written in a config file");
        return false;
    }
    if (strlen(key) + 1 + len + (quotes ? 2 : 0) > CONF_MAX_LINE ||
        strlen(section) + 2 > CONF_MAX_LINE) {
        snprintf(msg, msglen,
                 "too long: a config file line holds at most %d bytes",
                 CONF_MAX_LINE);
        return false;
    }
    return true;
}

static char *trim(char *s)
{
    while (is_blank(*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && is_blank(e[-1]))
        *--e = '\0';
    return s;
}

/* After a closing ']' or '"': only blanks and an optional comment. */
static bool only_comment_left(const char *s)
{
    while (is_blank(*s))
        s++;
    return *s == '\0' || is_comment(*s);
}

/* Splits "value [comment]" (text after '=') in place: returns the value or
 * NULL with msg set. */
static char *parse_value(char *text, char *msg, size_t msglen)
{
    char *s = text;
    while (is_blank(*s))
        s++;
    if (*s == '"') {
        char *close = strchr(s + 1, '"');
        if (!close) {
            snprintf(msg, msglen, "missing closing '\"'");
            return NULL;
        }
        if (!only_comment_left(close + 1)) {
            snprintf(msg, msglen, "text after the closing '\"'");
            return NULL;
        }
        *close = '\0';
        return s + 1;
    }
    /* A comment starts at '#' or ';' after a blank: "key = ;x" is an empty
     * value and a comment, "key=;x" is the value ";x". */
    for (char *p = text; *p; p++) {
        if (is_comment(*p) && p > text && is_blank(p[-1])) {
            *p = '\0';
            break;
        }
    }
    return trim(s);
}

int conf__parse_ini(struct conf *c, const char *name, const char *text,
                    size_t len, struct conf__entries *staged,
                    struct conf_error *err)
{
    char line[CONF_MAX_LINE + 2];
    char section[CONF_MAX_LINE + 2] = "";
    char msg[512];
    size_t pos = 0;
    int lineno = 0;

    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3; /* UTF-8 byte order mark */
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && start[n - 1] == '\r')
            n--;
        if (n > CONF_MAX_LINE) {
            conf__set_error(err, name, lineno, NULL, NULL, NULL,
                            "line longer than %d bytes", CONF_MAX_LINE);
            return -EBADMSG;
        }
        if (memchr(start, '\0', n)) {
            conf__set_error(err, name, lineno, NULL, NULL, NULL,
                            "NUL byte in line");
            return -EBADMSG;
        }
        memcpy(line, start, n);
        line[n] = '\0';
        char *s = line;
        while (is_blank(*s))
            s++;
        if (*s == '\0' || is_comment(*s))
            continue;

        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || !only_comment_left(close + 1)) {
                conf__set_error(err, name, lineno, NULL, NULL, NULL,
                                "expected [SECTION]");
                return -EBADMSG;
            }
            *close = '\0';
            char *sec = trim(s + 1);
            if (!conf__section_name_valid(sec)) {
                conf__set_error(err, name, lineno, NULL, NULL, NULL,
                                "malformed section name");
                return -EBADMSG;
            }
            if (!conf__section_known(sec)) {
                conf__set_error(
                    err, name, lineno, sec, NULL, NULL,
                    "unknown section (expected DERECHO, RDMA, PERS, "
                    "LOGGER, LAYOUT or SUBGROUP/NAME)");
                return -EINVAL;
            }
            strcpy(section, sec);
            continue;
        }

        char *eq = strchr(s, '=');
        if (!eq) {
            conf__set_error(err, name, lineno, NULL, NULL, NULL,
                            "expected key = value");
            return -EBADMSG;
        }
        *eq = '\0';
        char *key = trim(s);
        if (!conf__key_valid(key)) {
            conf__set_error(err, name, lineno, section, NULL, NULL,
                            "malformed key (letters, digits, '_', '-', '.')");
            return -EBADMSG;
        }
        if (!section[0]) {
            conf__set_error(err, name, lineno, NULL, key, NULL,
                            "key outside of any [SECTION]");
            return -EBADMSG;
        }
        char *value = parse_value(eq + 1, msg, sizeof(msg));
        if (!value) {
            conf__set_error(err, name, lineno, section, key, NULL, "%s", msg);
            return -EBADMSG;
        }
        if (!conf__utf8_valid(value, strlen(value))) {
            conf__set_error(err, name, lineno, section, key, NULL,
                            "invalid UTF-8 in value");
            return -EBADMSG;
        }
        if (has_control(value, strlen(value))) {
            conf__set_error(err, name, lineno, section, key, NULL,
                            "control character in value");
            return -EBADMSG;
        }
        struct conf__entry where = {
            .section = section,
            .key = key,
            .value = value,
            .source = CONF_SOURCE_FILE,
            .file = (char *)name,
            .line = lineno,
        };
        int rc = conf__stage(c, staged, &where, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}
