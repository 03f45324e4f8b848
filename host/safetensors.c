/* safetensors.c: safetensors reading (bounds-checked) and atomic writing, with F16/BF16 conversion. */
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "json.h"

#define MAX_HEADER (100u << 20)

static const char *const k_dtype_names[] = {"F32", "F16", "BF16"};
static const size_t k_dtype_size[] = {4, 2, 2};

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

void st_to_f32(const st_tensor *t, float *out) {
    for (size_t i = 0; i < t->numel; i++) {
        const unsigned char *p = t->data + i * k_dtype_size[t->dtype];
        if (t->dtype == ST_F32) {
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

static int parse_tensor(st_file *f, const char *name, const json_value *v, size_t data_len, edm2_err *err) {
    const json_value *dt = json_get(v, "dtype"), *shape = json_get(v, "shape"), *offs = json_get(v, "data_offsets");
    if (!dt || dt->type != JSON_STRING || !shape || shape->type != JSON_ARRAY || !offs || offs->type != JSON_ARRAY ||
        offs->n != 2)
        return err_set(err, "%s: tensor '%s': header entry needs dtype, shape and data_offsets [begin, end]", f->path, name);
    st_tensor *t = &f->t[f->n];
    memset(t, 0, sizeof *t);
    int dtype = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(dt->string, k_dtype_names[i]) == 0) dtype = i;
    if (dtype < 0) return err_set(err, "%s: tensor '%s': dtype %s not supported (F32, F16, BF16)", f->path, name, dt->string);
    if (shape->n > ST_MAX_DIMS) return err_set(err, "%s: tensor '%s': more than %d dimensions", f->path, name, ST_MAX_DIMS);
    t->dtype = (st_dtype)dtype;
    t->ndim = (int)shape->n;
    t->numel = 1;
    for (size_t i = 0; i < shape->n; i++) {
        const json_value *d = &shape->items[i];
        if (d->type != JSON_NUMBER || d->number < 0 || d->number > 1e15 || d->number != floor(d->number))
            return err_set(err, "%s: tensor '%s': bad shape", f->path, name);
        t->shape[i] = (int64_t)d->number;
        if (t->shape[i] && t->numel > (SIZE_MAX / 8) / (size_t)t->shape[i])
            return err_set(err, "%s: tensor '%s': shape too large", f->path, name);
        t->numel *= (size_t)t->shape[i];
    }
    double b = offs->items[0].number, e = offs->items[1].number;
    if (offs->items[0].type != JSON_NUMBER || offs->items[1].type != JSON_NUMBER || b < 0 || e < b ||
        e > (double)data_len || b != floor(b) || e != floor(e))
        return err_set(err, "%s: tensor '%s': data_offsets [%.0f, %.0f] outside the %zu data bytes (truncated file?)",
                       f->path, name, b, e, data_len);
    if ((size_t)(e - b) != t->numel * k_dtype_size[dtype])
        return err_set(err, "%s: tensor '%s': %zu data bytes for %zu elements of %s", f->path, name, (size_t)(e - b),
                       t->numel, dt->string);
    t->name = strdup(name);
    if (!t->name) return err_set(err, "out of memory");
    t->data = f->buf + 8 + (f->size - 8 - data_len) + (size_t)b;
    f->n++;
    return 0;
}

int st_open(st_file *f, const char *path, edm2_err *err) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return err_set(err, "out of memory");
    if (map_file(path, &f->buf, &f->size, err)) return -1;
    if (f->size < 8) return err_set(err, "%s: not a safetensors file (%zu bytes)", path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->buf[i];
    if (hlen > MAX_HEADER || hlen > f->size - 8)
        return err_set(err, "%s: header length %llu exceeds the file (%zu bytes): truncated or not safetensors", path,
                       (unsigned long long)hlen, f->size);
    json_value root;
    char why[256];
    if (json_parse((const char *)f->buf + 8, (size_t)hlen, &root, why, sizeof why))
        return err_set(err, "%s: bad header JSON: %s", path, why);
    int rc = 0;
    if (root.type != JSON_OBJECT) rc = err_set(err, "%s: header is not a JSON object", path);
    size_t data_len = f->size - 8 - (size_t)hlen;
    if (!rc) f->t = calloc(root.n + 1, sizeof *f->t);
    if (!rc && !f->t) rc = err_set(err, "out of memory");
    for (size_t i = 0; !rc && i < root.n; i++) {
        const char *key = root.keys[i];
        const json_value *v = &root.items[i];
        if (strcmp(key, "__metadata__") == 0) {
            if (v->type != JSON_OBJECT) {
                rc = err_set(err, "%s: __metadata__ is not an object", path);
                break;
            }
            f->meta_keys = calloc(v->n + 1, sizeof(char *));
            f->meta_vals = calloc(v->n + 1, sizeof(char *));
            if (!f->meta_keys || !f->meta_vals) rc = err_set(err, "out of memory");
            for (size_t j = 0; !rc && j < v->n; j++) {
                if (v->items[j].type != JSON_STRING) {
                    rc = err_set(err, "%s: __metadata__ value of '%s' is not a string", path, v->keys[j]);
                    break;
                }
                f->meta_keys[f->nmeta] = strdup(v->keys[j]);
                f->meta_vals[f->nmeta] = strdup(v->items[j].string);
                f->nmeta++;
            }
            continue;
        }
        if (v->type != JSON_OBJECT) rc = err_set(err, "%s: entry '%s' is not an object", path, key);
        else rc = parse_tensor(f, key, v, data_len, err);
    }
    json_free(&root);
    return rc;
}

void st_close(st_file *f) {
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    for (size_t i = 0; i < f->nmeta; i++) free(f->meta_keys[i]), free(f->meta_vals[i]);
    free(f->t);
    free(f->meta_keys);
    free(f->meta_vals);
    unmap_file(f->buf, f->size);
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

int st_write(const char *path, const st_out *ts, size_t n, const char *const *meta_keys, const char *const *meta_vals,
             size_t nmeta, edm2_err *err) {
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
            float v = ts[i].data[j];
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
