/* safetensors.c: safetensors reading (bounds-checked) and atomic writing, with F16/BF16/F64 conversion. */
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"


static const char *const k_dtype_names[] = {"F32", "F16", "BF16", "F64"};
static const size_t k_dtype_size[] = {4, 2, 2, 8};

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (!man) bits = sign;
        else { /* subnormal */
            float v = ldexpf((float)man, -24);
            return sign ? -v : v;
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
    uint32_t man = x & 0x7FFFFF;
    if (((x >> 23) & 0xFF) == 0xFF) return (uint16_t)(sign | 0x7C00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7C00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (man >> 13);
    uint32_t rem = man & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* round to nearest even; may carry into exp */
    return (uint16_t)h;
}

uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7F800000u) == 0x7F800000u && (x & 0x7FFFFF)) return (uint16_t)((x >> 16) | 0x40);
    x += 0x7FFF + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

size_t st_dtype_bytes(st_dtype dtype) { return k_dtype_size[dtype]; }

const char *st_dtype_word(st_dtype dtype) {
    static const char *const words[] = {"float32", "float16", "bfloat16", "float64"};
    return words[dtype];
}

static double f64_at(const unsigned char *p) {
    uint64_t b = 0;
    for (int k = 7; k >= 0; k--) b = b << 8 | p[k];
    double v;
    memcpy(&v, &b, 8);
    return v;
}

void st_to_f64(const st_tensor *t, double *out) {
    if (t->dtype == ST_F64) {
        for (size_t i = 0; i < t->numel; i++) out[i] = f64_at(t->data + i * 8);
        return;
    }
    float v;
    for (size_t i = 0; i < t->numel; i++) {
        const st_tensor one = {NULL, t->dtype, 0, {0}, 1, t->data + i * k_dtype_size[t->dtype], 0};
        st_to_f32(&one, &v);
        out[i] = v;
    }
}

void st_to_f32(const st_tensor *t, float *out) {
    for (size_t i = 0; i < t->numel; i++) {
        const unsigned char *p = t->data + i * k_dtype_size[t->dtype];
        if (t->dtype == ST_F64) {
            out[i] = (float)f64_at(p);
        } else if (t->dtype == ST_F32) {
            uint32_t b = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            memcpy(&out[i], &b, 4);
        } else {
            uint16_t h = (uint16_t)(p[0] | p[1] << 8);
            if (t->dtype == ST_F16) out[i] = f16_to_f32(h);
            else {
                uint32_t b = (uint32_t)h << 16;
                memcpy(&out[i], &b, 4);
            }
        }
    }
}

/* Header entry `name` -> f->t[f->n]. data_len: bytes after the header. */
static int parse_tensor(st_file *f, const char *name, json_t *v, size_t data_len, edm2_err *err) {
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"), *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(shape) || !json_is_array(offs) || json_array_size(offs) != 2)
        return err_set(err, "%s: tensor '%s': header entry needs dtype, shape and data_offsets [begin, end]", f->path, name);
    if (!*name) return err_set(err, "%s: a tensor with an empty name", f->path);
    st_tensor *t = &f->t[f->n];
    memset(t, 0, sizeof *t);
    int dtype = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(json_string_value(dt), k_dtype_names[i]) == 0) dtype = i;
    if (dtype < 0)
        return err_set(err, "%s: tensor '%s': dtype %.32s not supported (F32, F16, BF16, F64)", f->path, name,
                       json_string_value(dt));
    if (json_array_size(shape) > ST_MAX_DIMS)
        return err_set(err, "%s: tensor '%s': more than %d dimensions", f->path, name, ST_MAX_DIMS);
    t->dtype = (st_dtype)dtype;
    t->ndim = (int)json_array_size(shape);
    size_t numel = 1;
    int zero = 0, too_big = 0;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d;
        if (json_int_in(json_array_get(shape, (size_t)i), 0, (int64_t)1 << 48, &d))
            return err_set(err, "%s: tensor '%s': shape[%d] is not a non-negative integer", f->path, name, i);
        t->shape[i] = d;
        if (d == 0) zero = 1;
        else if (too_big || numel > data_len / (size_t)d) too_big = 1; /* more elements than the file has bytes */
        else numel *= (size_t)d;
    }
    if (too_big && !zero)
        return err_set(err, "%s: tensor '%s': its shape has more elements than the file has bytes", f->path, name);
    t->numel = zero ? 0 : numel;
    int64_t b, e;
    if (json_int_in(json_array_get(offs, 0), 0, INT64_MAX, &b) || json_int_in(json_array_get(offs, 1), 0, INT64_MAX, &e) ||
        e < b || (uint64_t)e > data_len)
        return err_set(err, "%s: tensor '%s': data_offsets outside the %zu data bytes (truncated file?)", f->path, name,
                       data_len);
    if ((size_t)(e - b) != t->numel * k_dtype_size[dtype])
        return err_set(err, "%s: tensor '%s': %lld data bytes for %zu elements of %s", f->path, name, (long long)(e - b),
                       t->numel, k_dtype_names[dtype]);
    t->name = strdup(name);
    if (!t->name) return err_set(err, "out of memory");
    t->begin = (size_t)b;
    t->data = f->buf + (f->size - data_len) + (size_t)b;
    f->n++;
    return 0;
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = *(st_tensor *const *)a, *y = *(st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The data regions must tile the data section: no overlaps, no holes (the safetensors format's rule). */
static int check_layout(st_file *f, size_t data_len, edm2_err *err) {
    st_tensor **order = malloc((f->n + 1) * sizeof *order);
    if (!order) return err_set(err, "out of memory");
    for (size_t i = 0; i < f->n; i++) order[i] = &f->t[i];
    qsort(order, f->n, sizeof *order, cmp_begin);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i < f->n && !rc; i++) {
        const st_tensor *t = order[i];
        if (t->begin != at)
            rc = err_set(err, "%s: tensor '%s' starts at data byte %zu, expected %zu (%s)", f->path, t->name, t->begin, at,
                         t->begin < at ? "overlaps another tensor" : "a hole in the data");
        at = t->begin + t->numel * k_dtype_size[t->dtype];
    }
    if (!rc && at != data_len)
        rc = err_set(err, "%s: %zu data bytes after the last tensor (not a safetensors file?)", f->path, data_len - at);
    free(order);
    return rc;
}

static int parse_metadata(st_file *f, json_t *v, edm2_err *err) {
    if (!json_is_object(v)) return err_set(err, "%s: __metadata__ is not an object", f->path);
    size_t n = json_object_size(v);
    f->meta_keys = calloc(n + 1, sizeof(char *));
    f->meta_vals = calloc(n + 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_vals) return err_set(err, "out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_string(val))
            return err_set(err, "%s: __metadata__ value of '%.64s' is not a string", f->path, key);
        f->meta_keys[f->nmeta] = strdup(key);
        f->meta_vals[f->nmeta] = strdup(json_string_value(val));
        if (!f->meta_keys[f->nmeta] || !f->meta_vals[f->nmeta]) return err_set(err, "out of memory");
        f->nmeta++;
    }
    return 0;
}

int st_parse(st_file *f, const char *name, const unsigned char *buf, size_t size, edm2_err *err) {
    memset(f, 0, sizeof *f);
    f->path = strdup(name);
    if (!f->path) return err_set(err, "out of memory");
    f->buf = (unsigned char *)buf;
    f->size = size;
    if (size < 8) return err_set(err, "%s: not a safetensors file (%zu bytes)", name, size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | buf[i];
    const int fits = hlen >= 2 && hlen <= ST_MAX_HEADER && hlen <= size - 8;
    /* Files people take for weights, when the start is no safetensors header (a header of 640 bytes begins
     * 0x80 0x02 too): a Python pickle (protocol 2+) and PyTorch's zip files. */
    if ((!fits || buf[8] != '{') && buf[0] == 0x80 && buf[1] >= 2 && buf[1] <= 5)
        return err_set(err, "%s: a Python pickle, not safetensors (a network pickle of the EDM2 reference converts with "
                            "scripts/convert_edm2_pkl.py)",
                       name);
    if ((!fits || buf[8] != '{') && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4)
        return err_set(err, "%s: a zip file (PyTorch's .pt/.pth?), not safetensors (the converters in scripts/ take them)",
                       name);
    if (!fits)
        return err_set(err, "%s: header length %llu does not fit the file (%zu bytes): truncated or not safetensors", name,
                       (unsigned long long)hlen, size);
    char why[256];
    json_t *root = json_parse_strict((const char *)buf + 8, (size_t)hlen, why, sizeof why);
    if (!root) return err_set(err, "%s: bad header JSON: %s", name, why);
    int rc = 0;
    if (!json_is_object(root)) rc = err_set(err, "%s: header is not a JSON object", name);
    size_t data_len = size - 8 - (size_t)hlen, ne = rc ? 0 : json_object_size(root);
    if (!rc && ne > ST_MAX_TENSORS) rc = err_set(err, "%s: %zu header entries (at most %d)", name, ne, ST_MAX_TENSORS);
    if (!rc && !(f->t = calloc(ne + 1, sizeof *f->t))) rc = err_set(err, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (rc) break;
        if (strcmp(key, "__metadata__") == 0) rc = parse_metadata(f, v, err);
        else if (!json_is_object(v)) rc = err_set(err, "%s: entry '%.200s' is not an object", name, key);
        else rc = parse_tensor(f, key, v, data_len, err);
    }
    json_decref(root);
    if (!rc) rc = check_layout(f, data_len, err);
    return rc;
}

int st_open(st_file *f, const char *path, edm2_err *err) {
    unsigned char *buf;
    size_t size;
    memset(f, 0, sizeof *f);
    if (map_file(path, &buf, &size, err)) return -1;
    int rc = st_parse(f, path, buf, size, err);
    f->mapped = 1;
    return rc;
}

void st_close(st_file *f) {
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    for (size_t i = 0; i < f->nmeta; i++) free(f->meta_keys[i]), free(f->meta_vals[i]);
    free(f->t);
    free(f->meta_keys);
    free(f->meta_vals);
    if (f->mapped) unmap_file(f->buf, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

static size_t out_numel(const st_out *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The first name that occurs twice, or NULL. */
static const char *duplicate_name(const st_out *ts, size_t n, int *nomem) {
    const char **names = malloc((n + 1) * sizeof *names);
    *nomem = !names;
    if (!names) return NULL;
    for (size_t i = 0; i < n; i++) names[i] = ts[i].name;
    qsort(names, n, sizeof *names, cmp_name);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(names[i - 1], names[i]) == 0) dup = names[i];
    free(names);
    return dup;
}

int st_write(const char *path, const st_out *ts, size_t n, const char *const *meta_keys, const char *const *meta_vals,
             size_t nmeta, edm2_err *err) {
    int nomem;
    const char *dup = duplicate_name(ts, n, &nomem);
    if (nomem) return err_set(err, "out of memory");
    if (dup) return err_set(err, "%s: tensor name '%s' given twice (a bug in the writer)", path, dup);
    /* Header into a memory stream, padded with spaces to a multiple of 8 bytes. */
    char *hdr = NULL;
    size_t hlen = 0;
    FILE *h = open_memstream(&hdr, &hlen);
    if (!h) return err_set(err, "out of memory");
    fputc('{', h);
    int first = 1;
    if (nmeta) {
        fputs("\"__metadata__\":{", h);
        for (size_t i = 0; i < nmeta; i++) {
            if (i) fputc(',', h);
            json_write_string(h, meta_keys[i]);
            fputc(':', h);
            json_write_string(h, meta_vals[i]);
        }
        fputc('}', h);
        first = 0;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = out_numel(&ts[i]) * k_dtype_size[ts[i].dtype];
        if (!first) fputc(',', h);
        first = 0;
        json_write_string(h, ts[i].name);
        fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", k_dtype_names[ts[i].dtype]);
        for (int d = 0; d < ts[i].ndim; d++) fprintf(h, "%s%lld", d ? "," : "", (long long)ts[i].shape[d]);
        fprintf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + bytes);
        off += bytes;
    }
    fputc('}', h);
    fclose(h);
    while (hlen % 8) {
        char *nh = realloc(hdr, hlen + 2);
        if (!nh) {
            free(hdr);
            return err_set(err, "out of memory");
        }
        hdr = nh;
        hdr[hlen++] = ' ';
        hdr[hlen] = 0;
    }
    atomic_file af;
    if (af_open(&af, path, err)) {
        free(hdr);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    fwrite(len8, 1, 8, af.f);
    fwrite(hdr, 1, hlen, af.f);
    free(hdr);
    unsigned char buf[8192];
    for (size_t i = 0; i < n; i++) {
        size_t ne = out_numel(&ts[i]), esz = k_dtype_size[ts[i].dtype], fill = 0;
        for (size_t j = 0; j < ne; j++) {
            if (ts[i].dtype == ST_F64) {
                uint64_t b;
                memcpy(&b, (const double *)ts[i].data + j, 8);
                for (int k = 0; k < 8; k++) buf[fill + k] = (unsigned char)(b >> (8 * k));
                fill += esz;
                if (fill + 8 > sizeof buf) fwrite(buf, 1, fill, af.f), fill = 0;
                continue;
            }
            float v = ((const float *)ts[i].data)[j];
            if (ts[i].dtype == ST_F32) {
                uint32_t b;
                memcpy(&b, &v, 4);
                for (int k = 0; k < 4; k++) buf[fill + k] = (unsigned char)(b >> (8 * k));
            } else {
                uint16_t b = ts[i].dtype == ST_F16 ? f32_to_f16(v) : f32_to_bf16(v);
                buf[fill] = (unsigned char)b, buf[fill + 1] = (unsigned char)(b >> 8);
            }
            fill += esz;
            if (fill + 4 > sizeof buf) fwrite(buf, 1, fill, af.f), fill = 0;
        }
        if (fill) fwrite(buf, 1, fill, af.f);
    }
    return af_commit(&af, err);
}
