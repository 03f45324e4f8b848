/* safetensors.h: reading and writing safetensors files (8-byte little-endian header length, JSON
 * header with dtype/shape/data_offsets per tensor and an optional __metadata__ string map, raw data).
 * F32, F16 and BF16 are converted to and from float32; F64 (statistics) to and from double. Every offset is checked against the file. */
#ifndef EDM2_HOST_SAFETENSORS_H
#define EDM2_HOST_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER (100u << 20) /* header bytes, as the format's reference implementation allows */
#define ST_MAX_TENSORS (1 << 20)   /* header entries */

typedef enum { ST_F32 = 0, ST_F16 = 1, ST_BF16 = 2, ST_F64 = 3 } st_dtype;

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    const unsigned char *data; /* into the file buffer */
    size_t begin;              /* data offset (bytes after the header) */
} st_tensor;

typedef struct st_file {
    char *path;
    unsigned char *buf; /* the file, memory-mapped read-only (or the caller's buffer, st_parse) */
    size_t size;
    int mapped;         /* buf is a mapping st_close unmaps */
    st_tensor *t;
    size_t n;
    char **meta_keys, **meta_vals;
    size_t nmeta;
} st_file;

/* Opens and validates a file: header JSON (no duplicate names), dtypes, shapes, and data regions that
 * tile the data exactly. On failure *f still needs st_close. */
int st_open(st_file *f, const char *path, edm2_err *err);
/* The same over a buffer the caller keeps alive until st_close; `name` is used in messages. */
int st_parse(st_file *f, const char *name, const unsigned char *buf, size_t size, edm2_err *err);
void st_close(st_file *f);
const st_tensor *st_find(const st_file *f, const char *name);
const char *st_meta(const st_file *f, const char *key);
/* Bytes per element of a dtype. */
size_t st_dtype_bytes(st_dtype dtype);
/* The dtype in words: "float32", "float16", "bfloat16", "float64". */
const char *st_dtype_word(st_dtype dtype);
/* Converts the tensor to float32 into out[numel]. */
void st_to_f32(const st_tensor *t, float *out);
/* Converts the tensor to double into out[numel] (exact for every dtype). */
void st_to_f64(const st_tensor *t, double *out);

/* A tensor to write: float32 data converted to `dtype` on the way out; for ST_F64, data points to doubles
 * written as they are. */
typedef struct st_out {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* float, or double for ST_F64 */
} st_out;

/* Writes atomically (temporary file + rename). meta: nmeta key/value pairs (may be 0). */
int st_write(const char *path, const st_out *ts, size_t n, const char *const *meta_keys,
             const char *const *meta_vals, size_t nmeta, edm2_err *err);

uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

#endif
