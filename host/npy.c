/* npy.c: the .npy reader (npy.h). The header dict is parsed strictly: exactly the keys descr, fortran_order
 * and shape, each once; a quoted dtype string, True or False, a tuple of non-negative integers. */
#include "npy.h"

#include <stdio.h>
#include <string.h>

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* Skips spaces, then consumes `ch` if it comes next. */
static int take(cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "...") into out[len]. */
static int quoted(cursor *c, char *out, size_t len) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
    const char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= len) return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int word(cursor *c, const char *w) {
    skip_space(c);
    const size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return 0;
    c->p += n;
    return 1;
}

/* (d0, d1, ...) with an optional trailing comma; () is a scalar. */
static int shape_tuple(cursor *c, npy_array *a) {
    if (!take(c, '(')) return -1;
    a->ndim = 0;
    while (!take(c, ')')) {
        if (a->ndim == NPY_MAX_DIMS) return -1;
        skip_space(c);
        int64_t v = 0;
        const char *start = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return -1;
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p == start) return -1;
        a->shape[a->ndim++] = v;
        if (!take(c, ',') && (skip_space(c), c->p >= c->end || *c->p != ')')) return -1;
    }
    return 0;
}

static int dtype_of(const char *descr, st_dtype *t) {
    if (!strcmp(descr, "<f4")) *t = ST_F32;
    else if (!strcmp(descr, "<f2")) *t = ST_F16;
    else if (!strcmp(descr, "<f8")) *t = ST_F64;
    else return -1;
    return 0;
}

int npy_parse(const unsigned char *buf, size_t size, const char *name, npy_array *a, edm2_err *err) {
    memset(a, 0, sizeof *a);
    if (size < 10 || memcmp(buf, "\x93NUMPY", 6))
        return err_set(err, "%s: not a .npy array (no \\x93NUMPY magic)", name);
    const int major = buf[6];
    if (major < 1 || major > 3) return err_set(err, "%s: .npy version %d.%d (1.0 to 3.0 are read)", name, major, buf[7]);
    const size_t pre = major == 1 ? 10 : 12;
    if (size < pre) return err_set(err, "%s: the .npy header is cut short", name);
    const size_t hlen = major == 1 ? (size_t)(buf[8] | buf[9] << 8)
                                   : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    if (hlen > size - pre) return err_set(err, "%s: the .npy header (%zu bytes) is longer than the file", name, hlen);
    cursor c = {(const char *)buf + pre, (const char *)buf + pre + hlen};
    char key[32], descr[32] = "";
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0, bad = !take(&c, '{');
    while (!bad && !take(&c, '}')) {
        if (quoted(&c, key, sizeof key) || !take(&c, ':')) {
            bad = 1;
        } else if (!strcmp(key, "descr") && !have_descr) {
            have_descr = 1, bad = quoted(&c, descr, sizeof descr);
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            have_order = 1;
            if (word(&c, "True")) fortran = 1;
            else bad = !word(&c, "False");
        } else if (!strcmp(key, "shape") && !have_shape) {
            have_shape = 1, bad = shape_tuple(&c, a);
        } else {
            bad = 1;
        }
        if (!bad && !take(&c, ',') && (skip_space(&c), c.p >= c.end || *c.p != '}')) bad = 1;
    }
    if (bad || !have_descr || !have_order || !have_shape)
        return err_set(err, "%s: a .npy header that is not {'descr': ..., 'fortran_order': ..., 'shape': (...)}", name);
    if (dtype_of(descr, &a->dtype))
        return err_set(err, "%s: .npy dtype '%s' (expected little-endian floats: '<f4', '<f2' or '<f8')", name, descr);
    if (fortran && a->ndim > 1) return err_set(err, "%s: a .npy array in Fortran order (expected C order)", name);
    size_t numel = 1;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] != 0 && numel > SIZE_MAX / 8 / (size_t)a->shape[i])
            return err_set(err, "%s: .npy shape too large", name);
        numel *= (size_t)a->shape[i];
    }
    const size_t bytes = numel * st_dtype_bytes(a->dtype), at = pre + hlen;
    if (size - at != bytes)
        return err_set(err, "%s: .npy data of %zu bytes, its header announces %zu", name, size - at, bytes);
    a->numel = numel;
    a->data = buf + at;
    return 0;
}
