/* plan_file.c: reading and writing EDM2_CUDNN_PLANS's records (plan_file.h). */
#define _POSIX_C_SOURCE 200809L
#include "plan_file.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEP " ; "
#define MAX_FILE_BYTES ((size_t)4 << 20)
static const char *const k_kind[3] = {"forward", "backward-data", "backward-filter"};
const char *plan_kind_name(int k) { return k_kind[k]; }

/* The whole file into a NUL-terminated buffer (*out, the caller frees it): 1; 0 when there is no file; -1
 * with why. */
static int slurp(const char *path, char **out, char *why, size_t whylen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(why, whylen, "%s: cannot read it (%s)", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 == cap) {
            char *b = cap >= MAX_FILE_BYTES ? NULL : realloc(buf, 2 * cap);
            if (!b) {
                free(buf), buf = NULL;
                break;
            }
            buf = b, cap *= 2;
        }
        const size_t got = fread(buf + len, 1, cap - 1 - len, f);
        len += got;
        if (got == 0) break;
    }
    const int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(why, whylen, "%s: %s", path,
                 bad ? "read error" : "larger than 4 MiB, or out of memory (a plan file holds a line per shape)");
        return -1;
    }
    buf[len] = 0;
    *out = buf;
    return 1;
}

/* Whether line s (no newline) is a comment or blank. */
static int is_comment(const char *s) {
    s += strspn(s, " \t\r");
    return *s == 0 || *s == '#';
}

/* Part k (1..3) of a record: "NAME algo A math M ws BYTES [graph ENGINE ws BYTES]". 0 or -1. */
static int parse_kind(const char *s, int k, plan_kind_rec *r) {
    char name[32];
    int used = 0;
    r->engine = -1, r->graph_ws = 0;
    if (sscanf(s, "%31s algo %d math %d ws %" SCNu64 "%n", name, &r->algo, &r->math, &r->ws, &used) != 4 ||
        strcmp(name, k_kind[k - 1]) || r->algo < 0 || r->math < 0 || r->math > 3)
        return -1;
    s += used;
    if (strspn(s, " ") == strlen(s)) return 0;
    used = 0;
    if (sscanf(s, " graph %" SCNd64 " ws %" SCNu64 "%n", &r->engine, &r->graph_ws, &used) != 2 || r->engine < 0)
        return -1;
    return strspn(s + used, " ") == strlen(s + used) ? 0 : -1;
}

/* Record line s (NUL-terminated, no newline; modified) into *r: 0, or -1 with "what was expected" in why. */
static int parse_line(char *s, plan_rec *r, char *why, size_t whylen) {
    char *part[5];
    int n = 0;
    for (char *p = s;;) { /* the fifth part keeps any further separator */
        part[n++] = p;
        char *sep = n < 5 ? strstr(p, SEP) : NULL;
        if (!sep) break;
        *sep = 0, p = sep + strlen(SEP);
    }
    if (n != 5 || strstr(part[4], SEP)) {
        snprintf(why, whylen, "expected 5 parts (KEY ; forward ... ; backward-data ... ; backward-filter ... ; wgrad "
                 "gemm|cudnn), found %s", n < 5 ? "fewer" : "more");
        return -1;
    }
    const size_t kl = strlen(part[0]);
    if (kl == 0 || kl >= PLAN_KEY_MAX || part[0][0] == ' ' || part[0][kl - 1] == ' ') {
        snprintf(why, whylen, "expected a key of 1 to %d characters, no spaces at its ends, before the first \" ; \"",
                 PLAN_KEY_MAX - 1);
        return -1;
    }
    memcpy(r->key, part[0], kl + 1);
    for (int k = 1; k <= 3; k++)
        if (parse_kind(part[k], k, &r->kind[k - 1])) {
            snprintf(why, whylen, "part %d (\"%.40s\"): expected \"%s algo A math M ws BYTES [graph ENGINE ws BYTES]\"",
                     k + 1, part[k], k_kind[k - 1]);
            return -1;
        }
    char tail[2];
    char word[8];
    if (sscanf(part[4], "wgrad %7s %1s", word, tail) != 1 || (strcmp(word, "gemm") && strcmp(word, "cudnn"))) {
        snprintf(why, whylen, "part 5 (\"%.40s\"): expected \"wgrad gemm\" or \"wgrad cudnn\"", part[4]);
        return -1;
    }
    r->wgrad_gemm = !strcmp(word, "gemm");
    return 0;
}

/* Walks the lines of buf: for each record line, fn(arg, start of line, its length, its number, record);
 * a nonzero return stops the walk and is returned. A malformed line: -1 with "PATH:LINE: ..." in why. */
typedef int (*line_fn)(void *arg, const char *line, size_t len, int lineno, const plan_rec *r);
static int walk(const char *path, const char *buf, line_fn fn, void *arg, char *why, size_t whylen) {
    int lineno = 0;
    for (const char *s = buf; *s;) {
        const char *nl = strchr(s, '\n');
        const size_t len = nl ? (size_t)(nl - s) : strlen(s);
        lineno++;
        char line[1024];
        if (len >= sizeof line) {
            snprintf(why, whylen, "%s:%d: expected a line of at most %zu characters", path, lineno, sizeof line - 1);
            return -1;
        }
        memcpy(line, s, len), line[len] = 0;
        if (len && line[len - 1] == '\r') line[len - 1] = 0;
        if (!is_comment(line)) {
            plan_rec r;
            char what[400];
            if (parse_line(line, &r, what, sizeof what)) {
                snprintf(why, whylen, "%s:%d: %s", path, lineno, what);
                return -1;
            }
            const int rc = fn(arg, s, len, lineno, &r);
            if (rc) return rc;
        }
        s += len + (nl != NULL);
    }
    return 0;
}

static int none(void *arg, const char *line, size_t len, int lineno, const plan_rec *r) {
    (void)arg, (void)line, (void)len, (void)lineno, (void)r;
    return 0;
}

int plan_file_check(const char *path, char *why, size_t whylen) {
    char *buf;
    const int got = slurp(path, &buf, why, whylen);
    if (got <= 0) return got;
    const int rc = walk(path, buf, none, NULL, why, whylen);
    free(buf);
    return rc < 0 ? -1 : 0;
}

/* The first record of a key: its record, line number, and place in the buffer. */
typedef struct found {
    const char *key;
    plan_rec r;
    int line;
    const char *at;
    size_t len;
} found;

static int match(void *arg, const char *line, size_t len, int lineno, const plan_rec *r) {
    found *f = arg;
    if (strcmp(r->key, f->key)) return 0;
    f->r = *r, f->line = lineno, f->at = line, f->len = len;
    return 1;
}

int plan_file_find(const char *path, const char *key, plan_rec *r, int *line, char *why, size_t whylen) {
    char *buf;
    const int got = slurp(path, &buf, why, whylen);
    if (got <= 0) return got;
    found f = {.key = key};
    const int rc = walk(path, buf, match, &f, why, whylen);
    free(buf);
    if (rc == 1) *r = f.r, *line = f.line;
    return rc;
}

/* s[n] (holding len characters, or cut at n) with fmt appended where it fits; the new length, as snprintf. */
static int append(char *s, size_t n, int len, const char *fmt, ...) {
    const size_t at = (size_t)len < n ? (size_t)len : n;
    va_list ap;
    va_start(ap, fmt);
    len += vsnprintf(s + at, n - at, fmt, ap);
    va_end(ap);
    return len;
}

int plan_rec_format(const plan_rec *r, char *s, size_t n) {
    int len = append(s, n, 0, "%s", r->key);
    for (int k = 0; k < 3; k++) {
        const plan_kind_rec *q = &r->kind[k];
        len = append(s, n, len, SEP "%s algo %d math %d ws %" PRIu64, k_kind[k], q->algo, q->math, q->ws);
        if (q->engine >= 0) len = append(s, n, len, " graph %" PRId64 " ws %" PRIu64, q->engine, q->graph_ws);
    }
    return append(s, n, len, SEP "wgrad %s", r->wgrad_gemm ? "gemm" : "cudnn");
}

int plan_file_put(const char *path, const plan_rec *r, char *why, size_t whylen) {
    char *buf;
    const int got = slurp(path, &buf, why, whylen);
    if (got < 0) return -1;
    found f = {.key = r->key};
    if (got && walk(path, buf, match, &f, why, whylen) < 0) {
        free(buf);
        return -1;
    }
    char line[1024];
    if (plan_rec_format(r, line, sizeof line) >= (int)sizeof line) {
        free(buf);
        snprintf(why, whylen, "%s: a plan's line would be longer than %zu characters", path, sizeof line - 1);
        return -1;
    }
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        free(buf);
        snprintf(why, whylen, "%.200s...: path too long", path);
        return -1;
    }
    FILE *o = fopen(tmp, "wb");
    int ok = o != NULL;
    if (ok && !got)
        ok = fputs("# edm2 cuDNN plans (EDM2_CUDNN_PLANS): a line per bf16/fp16 3x3 convolution, as chosen by timing;\n"
                   "# a run that finds its key here takes the line's choices instead of timing again.\n"
                   "# KEY ; forward algo A math M ws BYTES [graph ENGINE ws BYTES] ; backward-data ... ; "
                   "backward-filter ... ; wgrad gemm|cudnn\n", o) >= 0;
    if (ok && got) { /* the old lines, the key's own replaced */
        const size_t all = strlen(buf);
        const size_t head = f.at ? (size_t)(f.at - buf) : all;
        ok = fwrite(buf, 1, head, o) == head;
        if (ok && !f.at && all && buf[all - 1] != '\n') ok = fputc('\n', o) != EOF;
        if (ok && f.at) {
            ok = fprintf(o, "%s", line) >= 0;
            const size_t rest = all - head - f.len;
            ok = ok && fwrite(f.at + f.len, 1, rest, o) == rest;
        }
    }
    if (ok && !f.at) ok = fprintf(o, "%s\n", line) >= 0;
    if (o && fclose(o)) ok = 0;
    free(buf);
    if (!ok || rename(tmp, path)) {
        snprintf(why, whylen, "%s: cannot write it (%s)", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}
