/* json.c: strict jansson parsing with one-line reasons, integral reads, string escaping. */
#include "json.h"

#include <math.h>

json_t *json_parse_strict(const char *text, size_t len, char *why, size_t why_len) {
    json_error_t e;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
    if (!v) snprintf(why, why_len, "%s (line %d, column %d)", e.text, e.line, e.column);
    return v;
}

int json_int_in(const json_t *v, int64_t lo, int64_t hi, int64_t *out) {
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < lo || i > hi) return -1;
        *out = (int64_t)i;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= (double)lo && d <= (double)hi) || d != floor(d) || fabs(d) > 9.0e18) return -1;
        *out = (int64_t)d;
        return 0;
    }
    return -1;
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
