/* config.c: INI loading (inih) with extends chains, overrides and provenance. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"

#define MAX_EXTENDS_DEPTH 16
#define MAX_ENTRIES 4096 /* keys in one file (and in all files together); lookups are linear */

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

char *path_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

char *path_join(const char *dir, const char *rel) {
    if (rel[0] == '/' || !dir || !*dir || strcmp(dir, ".") == 0) return xstrdup(rel);
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

void path_basename(const char *path, char *out, size_t len) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') start--;
    snprintf(out, len, "%.*s", (int)(n - start), path + start);
}

int split_list(char *s, char **items, int max) {
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(s, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t') tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t')) *--end = 0;
        if (*tok) items[n++] = tok;
    }
    return n;
}

static cfg_entry *find_mut(cfg *c, const char *section, const char *key) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].section, section) == 0 && strcmp(c->v[i].key, key) == 0) return &c->v[i];
    return NULL;
}

const cfg_entry *cfg_get(const cfg *c, const char *section, const char *key) {
    return find_mut((cfg *)c, section, key);
}

const char *cfg_value(const cfg *c, const char *section, const char *key, const char *fallback) {
    const cfg_entry *e = cfg_get(c, section, key);
    return e ? e->value : fallback;
}

int cfg_has_section(const cfg *c, const char *section) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].section, section) == 0) return 1;
    return 0;
}

/* Adds or replaces section.key; the entry takes copies of the strings. */
static int put(cfg *c, const char *section, const char *key, const char *value, const char *file, int line) {
    cfg_entry *e = find_mut(c, section, key);
    if (!e) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 32;
            cfg_entry *v = realloc(c->v, cap * sizeof *v);
            if (!v) return -1;
            c->v = v;
            c->cap = cap;
        }
        e = &c->v[c->n++];
        e->section = xstrdup(section);
        e->key = xstrdup(key);
    } else {
        free(e->value);
        free(e->file);
    }
    e->value = xstrdup(value);
    e->file = xstrdup(file);
    e->line = line;
    return (e->section && e->key && e->value && e->file) ? 0 : -1;
}

int cfg_put(cfg *c, const char *section, const char *key, const char *value) {
    return put(c, section, key, value, "<program>", 0);
}

int cfg_replace_value(cfg *c, const char *section, const char *key, const char *value) {
    cfg_entry *e = find_mut(c, section, key);
    char *v = e ? xstrdup(value) : NULL;
    if (!v) return -1;
    free(e->value);
    e->value = v;
    return 0;
}

int cfg_copy(cfg *dst, const cfg *src) {
    memset(dst, 0, sizeof *dst);
    dst->path = src->path ? xstrdup(src->path) : NULL;
    int rc = src->path && !dst->path ? -1 : 0;
    for (size_t i = 0; i < src->n && !rc; i++) {
        const cfg_entry *e = &src->v[i];
        rc = put(dst, e->section, e->key, e->value, e->file, e->line);
    }
    if (rc) cfg_free(dst);
    return rc;
}

const cfg_entry *cfg_about(const cfg *c, const char *section, const char *msg) {
    char sec[128], key[128];
    if (!section) {
        if (*msg != '[') return NULL;
        const size_t n = strcspn(++msg, "]");
        if (!n || n >= sizeof sec || strncmp(msg + n, "] ", 2)) return NULL;
        snprintf(sec, sizeof sec, "%.*s", (int)n, msg);
        msg += n + 2;
        section = sec;
    }
    size_t n = 0;
    while (n < sizeof key - 1 && (isalnum((unsigned char)msg[n]) || msg[n] == '_')) key[n] = msg[n], n++;
    key[n] = 0;
    return n && (msg[n] == ':' || !strncmp(msg + n, " = ", 3)) ? cfg_get(c, section, key) : NULL;
}

/* 1 when `value` is s or one trimmed item of the comma-separated list s. */
static int has_item(const char *s, const char *value) {
    const size_t n = strlen(value);
    if (!n) return 0;
    for (const char *p = s;; p++) {
        while (*p == ' ' || *p == '\t') p++;
        const char *end = p + strcspn(p, ",");
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
        if ((size_t)(last - p) == n && !strncmp(p, value, n)) return 1;
        if (!*end) return 0;
        p = end;
    }
}

const cfg_entry *cfg_with_value(const cfg *c, const char *section, const char *value) {
    const cfg_entry *any = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const cfg_entry *e = &c->v[i];
        if (!has_item(e->value, value)) continue;
        if (section && !strcmp(e->section, section)) return e;
        if (!any) any = e;
    }
    return any;
}

int cfg_same_value(const char *a, const char *b) {
    if (!strcmp(a, b)) return 1;
    for (;;) {
        char *ea, *eb;
        const double x = strtod(a, &ea), y = strtod(b, &eb);
        if (ea == a || eb == b || x != y) return 0;
        while (*ea == ' ') ea++;
        while (*eb == ' ') eb++;
        if (!*ea || !*eb) return !*ea && !*eb;
        if (*ea != ',' || *eb != ',') return 0;
        a = ea + 1, b = eb + 1;
    }
}

int cfg_write(const cfg *c, const char *path, const char *comment, edm2_err *err) {
    atomic_file af;
    if (af_open(&af, path, err)) return -1;
    fprintf(af.f, "; %s\n", comment);
    for (size_t i = 0; i < c->n; i++) {
        int first = 1; /* the first entry of its section: print the section with all its keys */
        for (size_t k = 0; k < i && first; k++) first = strcmp(c->v[k].section, c->v[i].section) != 0;
        if (!first || !*c->v[i].section) continue;
        fprintf(af.f, "\n[%s]\n", c->v[i].section);
        for (size_t k = i; k < c->n; k++)
            if (!strcmp(c->v[k].section, c->v[i].section)) fprintf(af.f, "%s = %s\n", c->v[k].key, c->v[k].value);
    }
    return af_commit(&af, err);
}

int cfg_foreign(const char *path) {
    FILE *f = fopen(path, "r");
    char line[512] = "";
    if (!f) return 0;
    const int ours = fgets(line, sizeof line, f) && line[0] == ';' && strstr(line, "written by edm2host");
    fclose(f);
    return !ours;
}

cfg_place cfg_where(const cfg_entry *e) {
    cfg_place p;
    if (e->line > 0) snprintf(p.s, sizeof p.s, "%s:%d", e->file, e->line);
    else if (strcmp(e->file, CFG_COMMAND_LINE) == 0) snprintf(p.s, sizeof p.s, "--set %s.%s", e->section, e->key);
    else snprintf(p.s, sizeof p.s, "%s", e->file);
    return p;
}

/* Removes every key of `section` when its current plugin differs from `plugin`. */
static void drop_if_other_plugin(cfg *c, const char *section, const char *plugin) {
    const cfg_entry *cur = cfg_get(c, section, "plugin");
    if (!cur || strcmp(cur->value, plugin) == 0) return;
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->v[i].section, section) == 0) {
            free(c->v[i].section), free(c->v[i].key), free(c->v[i].value), free(c->v[i].file);
            continue;
        }
        c->v[w++] = c->v[i];
    }
    c->n = w;
}

/* ---- Reading one file ---- */

typedef struct file_reader {
    FILE *f;
    int line;     /* lines handed to inih so far */
    int too_long; /* first line longer than inih's buffer, or 0 */
} file_reader;

/* inih calls this once per line: counting calls gives exact line numbers for the handler. */
static char *read_line(char *str, int num, void *stream) {
    file_reader *r = stream;
    if (!fgets(str, num, r->f)) return NULL;
    r->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        int ch;
        while ((ch = fgetc(r->f)) != EOF && ch != '\n') {
        }
        if (!r->too_long) r->too_long = r->line;
    }
    return str;
}

typedef struct parse_state {
    cfg *own;        /* entries of this file only */
    file_reader *reader;
    const char *file;
    edm2_err *err;
    int failed;
} parse_state;

static int on_value(void *user, const char *section, const char *key, const char *value) {
    parse_state *st = user;
    if (st->failed) return 0;
    int line = st->reader->line;
    if (st->own->n >= MAX_ENTRIES) {
        st->failed = 1;
        err_set(st->err, "%s:%d: more than %d keys in one config file", st->file, line, MAX_ENTRIES);
        return 0;
    }
    const cfg_entry *prev = cfg_get(st->own, section, key);
    if (prev) {
        st->failed = 1;
        err_set(st->err, "%s:%d: [%s] %s is set twice (first on line %d)", st->file, line, section, key, prev->line);
        return 0;
    }
    if (put(st->own, section, key, value, st->file, line)) {
        st->failed = 1;
        err_set(st->err, "%s:%d: out of memory", st->file, line);
        return 0;
    }
    return 1;
}

static int load_rec(cfg *c, const char *path, int depth, const char *from, int from_line, edm2_err *err) {
    if (depth > MAX_EXTENDS_DEPTH)
        return err_set(err, "%s:%d: extends chain deeper than %d files (a cycle?)", from, from_line, MAX_EXTENDS_DEPTH);
    const int folder = is_folder(path);
    FILE *f = folder ? NULL : fopen(path, "r");
    if (!f) {
        const char *why = folder ? "a folder, not a config file" : strerror(errno);
        if (from) return err_set(err, "%s:%d: extends: cannot open '%s' (%s)", from, from_line, path, why);
        if (folder) return err_set(err, "%s: %s", path, why);
        return err_set(err, "%s: cannot open config file (%s)", path, why);
    }
    cfg own = {0};
    file_reader reader = {f, 0, 0};
    parse_state st = {&own, &reader, path, err, 0};
    int rc = ini_parse_stream(read_line, &reader, on_value, &st);
    fclose(f);
    if (st.failed) goto fail;
    if (reader.too_long) {
        err_set(err, "%s:%d: line too long (at most %d characters)", path, reader.too_long, INI_MAX_LINE - 2);
        goto fail;
    }
    if (rc > 0) {
        err_set(err, "%s:%d: malformed line: expected '[section]', 'key = value' or a comment", path, rc);
        goto fail;
    }
    if (rc < 0) {
        err_set(err, "%s: cannot read config file", path);
        goto fail;
    }
    /* Keys before the first section: only `extends`. */
    for (size_t i = 0; i < own.n; i++) {
        cfg_entry *e = &own.v[i];
        if (e->section[0]) continue;
        if (strcmp(e->key, "extends") != 0) {
            err_set(err, "%s:%d: key '%s' outside any section (only 'extends' may come before the first [section])", path,
                    e->line, e->key);
            goto fail;
        }
        char *dir = path_dirname(path);
        char *base = dir ? path_join(dir, e->value) : NULL;
        free(dir);
        if (!base) {
            err_set(err, "%s: out of memory", path);
            goto fail;
        }
        int brc = load_rec(c, base, depth + 1, path, e->line, err);
        free(base);
        if (brc) goto fail;
    }
    /* A file that names another plugin for a section starts that section afresh: the keys inherited
     * from its base belonged to the other plugin. */
    for (size_t i = 0; i < own.n; i++) {
        cfg_entry *e = &own.v[i];
        if (e->section[0] && strcmp(e->key, "plugin") == 0) drop_if_other_plugin(c, e->section, e->value);
    }
    if (c->n + own.n > MAX_ENTRIES) {
        err_set(err, "%s: more than %d keys in this config and the files it extends", path, MAX_ENTRIES);
        goto fail;
    }
    for (size_t i = 0; i < own.n; i++) {
        cfg_entry *e = &own.v[i];
        if (!e->section[0]) continue;
        if (put(c, e->section, e->key, e->value, e->file, e->line)) {
            err_set(err, "%s: out of memory", path);
            goto fail;
        }
    }
    cfg_free(&own);
    return 0;
fail:
    cfg_free(&own);
    return -1;
}

int cfg_load(cfg *c, const char *path, edm2_err *err) {
    free(c->path);
    c->path = xstrdup(path);
    return load_rec(c, path, 0, NULL, 0, err);
}

int cfg_set(cfg *c, const char *assignment, edm2_err *err) {
    const char *eq = strchr(assignment, '=');
    const char *dot = strchr(assignment, '.');
    if (!eq || !dot || dot > eq || dot == assignment || eq == dot + 1)
        return err_set(err, "--set '%s': expected section.key=value", assignment);
    char section[128], key[128];
    size_t ns = (size_t)(dot - assignment), nk = (size_t)(eq - dot - 1);
    if (ns >= sizeof section || nk >= sizeof key) return err_set(err, "--set '%s': name too long", assignment);
    memcpy(section, assignment, ns);
    section[ns] = 0;
    memcpy(key, dot + 1, nk);
    key[nk] = 0;
    const char *value = eq + 1;
    while (*value == ' ') value++;
    if (strcmp(key, "plugin") == 0) drop_if_other_plugin(c, section, value);
    if (put(c, section, key, value, CFG_COMMAND_LINE, 0)) return err_set(err, "out of memory");
    return 0;
}

void cfg_free(cfg *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].section);
        free(c->v[i].key);
        free(c->v[i].value);
        free(c->v[i].file);
    }
    free(c->v);
    free(c->path);
    memset(c, 0, sizeof *c);
}
