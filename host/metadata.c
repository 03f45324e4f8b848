/* metadata.c: typed, range-checked reads of safetensors metadata, tolerant of other tools' spellings. */
#include "metadata.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "schema.h"

int meta_is_unset(const char *v) {
    while (*v == ' ') v++;
    return !*v || !strcasecmp(v, "none") || !strcasecmp(v, "null");
}

/* "[1, 2, 3]" or "(16, 8)" -> "1, 2, 3" / "16, 8" in buf; other values unchanged. */
static const char *strip_brackets(const char *v, char *buf, size_t len) {
    while (*v == ' ') v++;
    size_t n = strlen(v);
    while (n && v[n - 1] == ' ') n--;
    if (n >= 2 && n - 2 < len && ((v[0] == '[' && v[n - 1] == ']') || (v[0] == '(' && v[n - 1] == ')'))) {
        memcpy(buf, v + 1, n - 2);
        buf[n - 2] = 0;
        /* A one-element Python tuple is written "(16,)". */
        size_t m = strlen(buf);
        while (m && buf[m - 1] == ' ') buf[--m] = 0;
        if (m && buf[m - 1] == ',') buf[m - 1] = 0;
        return buf;
    }
    return v;
}

int meta_section(const st_file *f, const edm2_plugin_desc *d, const char *alias_prefix, cfg *out, const char *section,
                 edm2_err *err) {
    for (uint32_t k = 0; k < d->key_count; k++) {
        const char *name = d->keys[k].name, *v = st_meta(f, name);
        char alias[160], buf[1024];
        if (!v && alias_prefix) {
            snprintf(alias, sizeof alias, "%s%s", alias_prefix, name);
            v = st_meta(f, alias);
        }
        if (!v || meta_is_unset(v)) continue; /* the plugin's default */
        edm2_config_type t = d->keys[k].type;
        if (t == EDM2_CFG_INT_LIST || t == EDM2_CFG_FLOAT_LIST) v = strip_brackets(v, buf, sizeof buf);
        if (value_check(t, v))
            return err_set(err, "%s: metadata %s = '%.200s': expected %s", f->path, name, v, type_name(t));
        if (cfg_put(out, section, name, v)) return err_set(err, "out of memory");
    }
    return 0;
}

int meta_int(const st_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out, edm2_err *err) {
    const char *v = st_meta(f, key);
    if (!v) return err_set(err, "%s: no metadata '%s'", f->path, key);
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno || x < lo || x > hi)
        return err_set(err, "%s: metadata %s = '%.100s': expected an integer in %lld..%lld", f->path, key, v, (long long)lo,
                       (long long)hi);
    *out = x;
    return 0;
}

int meta_number(const st_file *f, const char *key, double lo, double hi, double *out, edm2_err *err) {
    const char *v = st_meta(f, key);
    if (!v) return err_set(err, "%s: no metadata '%s'", f->path, key);
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < lo || x > hi)
        return err_set(err, "%s: metadata %s = '%.100s': expected a number in [%g, %g]", f->path, key, v, lo, hi);
    *out = x;
    return 0;
}
