/* schema.c: value type checks and closest-name suggestions (Levenshtein distance). */
#include "schema.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *type_name(edm2_config_type t) {
    switch (t) {
    case EDM2_CFG_BOOL: return "a boolean (true/false)";
    case EDM2_CFG_INT: return "an integer";
    case EDM2_CFG_FLOAT: return "a number";
    case EDM2_CFG_STRING: return "text";
    case EDM2_CFG_INT_LIST: return "comma-separated integers";
    case EDM2_CFG_FLOAT_LIST: return "comma-separated numbers";
    }
    return "?";
}

static const char *skip_ws(const char *s) {
    while (isspace((unsigned char)*s)) s++;
    return s;
}

static int parse_int(const char *s, const char **end) {
    char *e;
    errno = 0;
    (void)strtoll(s, &e, 10);
    if (e == s || errno) return -1;
    *end = e;
    return 0;
}

static int parse_float(const char *s, const char **end) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno || !isfinite(v)) return -1;
    *end = e;
    return 0;
}

static int check_list(const char *s, int (*parse)(const char *, const char **)) {
    s = skip_ws(s);
    if (!*s) return 0; /* empty list */
    for (;;) {
        const char *end;
        if (parse(skip_ws(s), &end)) return -1;
        s = skip_ws(end);
        if (!*s) return 0;
        if (*s != ',') return -1;
        s++;
    }
}

int value_check(edm2_config_type t, const char *s) {
    const char *end;
    switch (t) {
    case EDM2_CFG_BOOL: {
        static const char *const ok[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
        for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
            if (strcasecmp(s, ok[i]) == 0) return 0;
        return -1;
    }
    case EDM2_CFG_INT: return (parse_int(skip_ws(s), &end) || *skip_ws(end)) ? -1 : 0;
    case EDM2_CFG_FLOAT: return (parse_float(skip_ws(s), &end) || *skip_ws(end)) ? -1 : 0;
    case EDM2_CFG_STRING: return 0;
    case EDM2_CFG_INT_LIST: return check_list(s, parse_int);
    case EDM2_CFG_FLOAT_LIST: return check_list(s, parse_float);
    }
    return -1;
}

static size_t edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 64 || nb > 64) return (size_t)-1;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= nb; j++) prev[j] = j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t sub = prev[j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (nb + 1) * sizeof *cur);
    }
    return prev[nb];
}

const char *closest_name(const char *word, const char *const *cands, size_t n) {
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        if (d < best_d) best_d = d, best = cands[i];
    }
    size_t len = strlen(word);
    size_t limit = len < 6 ? 2 : len / 3 + 1;
    if (best && best_d <= limit) return best;
    /* A prefix ("model" for "model_channels") is plausible too. */
    for (size_t i = 0; i < n && len >= 3; i++)
        if (strncmp(cands[i], word, len) == 0) return cands[i];
    return NULL;
}

const edm2_config_key *schema_find(const edm2_config_key *keys, size_t n, const char *key) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i].name, key) == 0) return &keys[i];
    return NULL;
}
