/* json.c: recursive-descent JSON parser with a depth limit, and string escaping. */
#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t len, pos;
    char *why;
    size_t why_len;
} parser;

static int fail(parser *p, const char *what) {
    snprintf(p->why, p->why_len, "%s at byte %zu", what, p->pos);
    return -1;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int parse_value(parser *p, json_value *v, int depth);

static int hex4(parser *p, unsigned *out) {
    if (p->pos + 4 > p->len) return fail(p, "truncated \\u escape");
    unsigned u = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        u <<= 4;
        if (c >= '0' && c <= '9') u |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') u |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') u |= (unsigned)(c - 'A' + 10);
        else return fail(p, "bad \\u escape");
    }
    *out = u;
    return 0;
}

static int parse_string(parser *p, char **out) {
    if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a string");
    p->pos++;
    size_t cap = 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return fail(p, "out of memory");
    for (;;) {
        if (p->pos >= p->len) {
            free(buf);
            return fail(p, "unterminated string");
        }
        unsigned char c = (unsigned char)p->s[p->pos++];
        unsigned cp;
        if (c == '"') break;
        if (c < 0x20) {
            free(buf);
            return fail(p, "control character in string");
        }
        if (c == '\\') {
            if (p->pos >= p->len) {
                free(buf);
                return fail(p, "truncated escape");
            }
            char e = p->s[p->pos++];
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(p, &cp)) {
                    free(buf);
                    return -1;
                }
                break;
            default: free(buf); return fail(p, "bad escape");
            }
        } else {
            cp = c; /* raw byte (UTF-8 passes through) */
        }
        if (n + 4 >= cap) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return fail(p, "out of memory");
            }
            buf = nb;
        }
        if (cp < 0x80 || c != '\\') buf[n++] = (char)cp;
        else if (cp < 0x800) buf[n++] = (char)(0xC0 | (cp >> 6)), buf[n++] = (char)(0x80 | (cp & 0x3F));
        else buf[n++] = (char)(0xE0 | (cp >> 12)), buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
             buf[n++] = (char)(0x80 | (cp & 0x3F));
    }
    buf[n] = 0;
    *out = buf;
    return 0;
}

static int push_item(parser *p, json_value *v, char *key) {
    json_value *items = realloc(v->items, (v->n + 1) * sizeof *items);
    if (!items) return fail(p, "out of memory");
    v->items = items;
    memset(&items[v->n], 0, sizeof *items);
    if (v->type == JSON_OBJECT) {
        char **keys = realloc(v->keys, (v->n + 1) * sizeof *keys);
        if (!keys) return fail(p, "out of memory");
        v->keys = keys;
        keys[v->n] = key;
    }
    v->n++;
    return 0;
}

static int parse_container(parser *p, json_value *v, int depth, char close) {
    p->pos++; /* [ or { */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (v->type == JSON_OBJECT) {
            if (parse_string(p, &key)) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') {
                free(key);
                return fail(p, "expected ':'");
            }
            p->pos++;
        }
        if (push_item(p, v, key)) {
            free(key);
            return -1;
        }
        if (parse_value(p, &v->items[v->n - 1], depth + 1)) return -1;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated container");
        char c = p->s[p->pos++];
        if (c == close) return 0;
        if (c != ',') return fail(p, "expected ',' or end of container");
    }
}

static int parse_value(parser *p, json_value *v, int depth) {
    if (depth > MAX_DEPTH) return fail(p, "nesting too deep");
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of input");
    char c = p->s[p->pos];
    if (c == '{') {
        v->type = JSON_OBJECT;
        return parse_container(p, v, depth, '}');
    }
    if (c == '[') {
        v->type = JSON_ARRAY;
        return parse_container(p, v, depth, ']');
    }
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(p, &v->string);
    }
    static const struct { const char *word; json_type type; double value; } words[] = {
        {"true", JSON_BOOL, 1}, {"false", JSON_BOOL, 0}, {"null", JSON_NULL, 0}};
    for (size_t i = 0; i < 3; i++) {
        size_t wl = strlen(words[i].word);
        if (p->len - p->pos >= wl && memcmp(p->s + p->pos, words[i].word, wl) == 0) {
            v->type = words[i].type;
            v->number = words[i].value;
            p->pos += wl;
            return 0;
        }
    }
    if (c == '-' || isdigit((unsigned char)c)) {
        char tmp[64];
        size_t n = 0;
        while (p->pos + n < p->len && n < sizeof tmp - 1 && strchr("+-0123456789.eE", p->s[p->pos + n])) {
            tmp[n] = p->s[p->pos + n];
            n++;
        }
        tmp[n] = 0;
        char *end;
        errno = 0;
        v->number = strtod(tmp, &end);
        if (end != tmp + n || n == 0) return fail(p, "bad number");
        v->type = JSON_NUMBER;
        p->pos += n;
        return 0;
    }
    return fail(p, "unexpected character");
}

int json_parse(const char *text, size_t len, json_value *out, char *why, size_t why_len) {
    parser p = {text, len, 0, why, why_len};
    memset(out, 0, sizeof *out);
    if (parse_value(&p, out, 0)) {
        json_free(out);
        return -1;
    }
    skip_ws(&p);
    if (p.pos != len) {
        json_free(out);
        return fail(&p, "trailing characters");
    }
    return 0;
}

void json_free(json_value *v) {
    if (!v) return;
    for (size_t i = 0; i < v->n; i++) {
        json_free(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    memset(v, 0, sizeof *v);
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
    return NULL;
}

void json_write_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
