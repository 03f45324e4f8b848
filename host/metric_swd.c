/* metric_swd.c: the sliced Wasserstein distance on Laplacian-pyramid patches (metric_swd.h). */
#include "metric_swd.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "edm2/edm2_philox.h"

#define STREAM_PATCH 0x5357445041ull /* "SWDPA" + level: patch positions */
#define STREAM_DIR 0x5357444449ull   /* "SWDDI" + repeat: projection directions */

void swd_default_params(swd_params *p) {
    p->patch = 7, p->patches = 128, p->min_res = 16, p->dirs = 128, p->repeats = 4, p->seed = 0;
}

int swd_levels(int R, int min_res) {
    int levels = 0;
    for (int r = R; r >= min_res && levels < SWD_MAX_LEVELS; r /= 2) {
        levels++;
        if (r % 2) break;
    }
    return levels;
}

/* Mirrored index (scipy.ndimage mode 'mirror': d c b | a b c d | c b a). */
static int mirror(int i, int n) {
    if (n == 1) return 0;
    while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

static const float k_binomial[5] = {1.0f / 16, 4.0f / 16, 6.0f / 16, 4.0f / 16, 1.0f / 16};

/* dst[n/2, n/2] = the binomial blur of src[n, n] at even positions. */
static void pyr_down(float *dst, const float *src, int n, float *tmp) {
    const int h = n / 2;
    for (int y = 0; y < n; y++) /* rows: blur horizontally at even x */
        for (int x = 0; x < h; x++) {
            float s = 0;
            for (int k = -2; k <= 2; k++) s += k_binomial[k + 2] * src[y * n + mirror(2 * x + k, n)];
            tmp[y * h + x] = s;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < h; x++) {
            float s = 0;
            for (int k = -2; k <= 2; k++) s += k_binomial[k + 2] * tmp[mirror(2 * y + k, n) * h + x];
            dst[y * h + x] = s;
        }
}

/* dst[2m, 2m] -= the upsampling of src[m, m]: zeros between the samples, then the binomial blur times 4. */
static void pyr_up_sub(float *dst, const float *src, int m, float *tmp) {
    const int n = 2 * m;
    for (int y = 0; y < m; y++) /* horizontal: only even columns of the zero-filled row are non-zero */
        for (int x = 0; x < n; x++) {
            float s = 0;
            for (int k = -2; k <= 2; k++) {
                const int xi = mirror(x + k, n);
                if (xi % 2 == 0) s += 2 * k_binomial[k + 2] * src[y * m + xi / 2];
            }
            tmp[y * n + x] = s;
        }
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++) {
            float s = 0;
            for (int k = -2; k <= 2; k++) {
                const int yi = mirror(y + k, n);
                if (yi % 2 == 0) s += 2 * k_binomial[k + 2] * tmp[(yi / 2) * n + x];
            }
            dst[y * n + x] -= s;
        }
}

void swd_pyramid(const float *img, int R, int levels, float **lev) {
    float *tmp = malloc((size_t)R * R * sizeof *tmp);
    if (!tmp) return;
    memcpy(lev[0], img, (size_t)R * R * sizeof *img);
    for (int l = 1; l < levels; l++) pyr_down(lev[l], lev[l - 1], R >> (l - 1), tmp);
    for (int l = 0; l + 1 < levels; l++) pyr_up_sub(lev[l], lev[l + 1], R >> (l + 1), tmp);
    free(tmp);
}

int swd_set_init(swd_set *s, const swd_params *p, int C, int R, edm2_err *err) {
    memset(s, 0, sizeof *s);
    if (p->patch < 1 || p->patch % 2 == 0 || p->patches < 1 || p->dirs < 1 || p->repeats < 1)
        return err_set(err, "SWD: patch must be odd and patches, dirs, repeats >= 1");
    if (p->min_res <= p->patch) return err_set(err, "SWD: min_res = %d must exceed the patch size %d", p->min_res, p->patch);
    s->levels = swd_levels(R, p->min_res);
    if (!s->levels) return err_set(err, "SWD: %dx%d images are smaller than min_res = %d", R, R, p->min_res);
    s->C = C, s->R = R, s->dim = C * p->patch * p->patch;
    return 0;
}

int swd_set_reserve(swd_set *s, size_t extra, edm2_err *err) {
    const size_t need = s->count + extra;
    if (need <= s->cap) return 0;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < need) cap *= 2;
    for (int l = 0; l < s->levels; l++) {
        float *d = realloc(s->desc[l], cap * (size_t)s->dim * sizeof *d);
        if (!d) return err_set(err, "SWD: out of memory for %zu descriptors", cap);
        s->desc[l] = d;
    }
    s->cap = cap;
    return 0;
}

int swd_set_add(swd_set *s, const swd_params *p, const float *x, int n, uint64_t first, edm2_err *err) {
    if (swd_set_reserve(s, (size_t)n * p->patches, err)) return -1;
    const int R = s->R, C = s->C, H = p->patch / 2;
    float *buf = malloc((size_t)C * R * R * 2 * sizeof *buf), *lev[SWD_MAX_LEVELS * 64];
    if (!buf || C > 64) {
        free(buf);
        return err_set(err, "SWD: out of memory");
    }
    for (int i = 0; i < n; i++) {
        /* Per channel, the levels packed one after another (sizes R^2, R^2/4, ...). */
        for (int c = 0; c < C; c++) {
            float *at = buf + (size_t)c * R * R * 2;
            for (int l = 0; l < s->levels; l++) {
                lev[c * SWD_MAX_LEVELS + l] = at;
                at += (size_t)(R >> l) * (R >> l);
            }
            swd_pyramid(x + ((size_t)i * C + c) * R * R, R, s->levels, lev + c * SWD_MAX_LEVELS);
        }
        const uint64_t index = first + (uint64_t)i;
        for (int l = 0; l < s->levels; l++) {
            const int S = R >> l;
            for (int j = 0; j < p->patches; j++) {
                const uint64_t k = (index * (uint64_t)p->patches + (uint64_t)j) * 2;
                const int px = H + (int)edm2_philox_below(p->seed, STREAM_PATCH + (uint64_t)l, k, (uint32_t)(S - 2 * H));
                const int py = H + (int)edm2_philox_below(p->seed, STREAM_PATCH + (uint64_t)l, k + 1, (uint32_t)(S - 2 * H));
                float *d = s->desc[l] + (s->count + (size_t)i * p->patches + (size_t)j) * s->dim;
                for (int c = 0; c < C; c++) {
                    const float *src = lev[c * SWD_MAX_LEVELS + l];
                    for (int dy = -H; dy <= H; dy++)
                        for (int dx = -H; dx <= H; dx++) *d++ = src[(py + dy) * S + px + dx];
                }
            }
        }
    }
    free(buf);
    s->count += (size_t)n * p->patches;
    return 0;
}

void swd_set_finalize(swd_set *s) {
    const int per = s->dim / s->C; /* values per channel in a descriptor */
    for (int l = 0; l < s->levels; l++)
        for (int c = 0; c < s->C; c++) {
            double sum = 0, sq = 0;
            for (size_t i = 0; i < s->count; i++)
                for (int k = 0; k < per; k++) {
                    const double v = s->desc[l][i * s->dim + (size_t)c * per + k];
                    sum += v, sq += v * v;
                }
            const double cnt = (double)s->count * per, mean = sum / cnt, var = sq / cnt - mean * mean;
            const double inv = var > 0 ? 1.0 / sqrt(var) : 1.0;
            for (size_t i = 0; i < s->count; i++)
                for (int k = 0; k < per; k++) {
                    float *v = &s->desc[l][i * s->dim + (size_t)c * per + k];
                    *v = (float)((*v - mean) * inv);
                }
        }
}

void swd_set_free(swd_set *s) {
    for (int l = 0; l < SWD_MAX_LEVELS; l++) free(s->desc[l]);
    memset(s, 0, sizeof *s);
}

/* Doubles in ascending order: an LSD radix sort (a byte a pass, the passes' counts taken in one read) of
 * their order-preserving 64-bit keys (sign bit flipped for positive values, every bit for negative ones): the
 * array that a comparison sort gives (ties are equal values; -0 comes before +0, which no distance below can
 * tell apart) without a call per comparison. key and tmp: n each; count: RADIX_PASSES * RADIX_BINS. */
#define RADIX_BITS 8
#define RADIX_BINS (1 << RADIX_BITS)
#define RADIX_PASSES ((64 + RADIX_BITS - 1) / RADIX_BITS)
static void sort_doubles(double *v, uint64_t *key, uint64_t *tmp, size_t *count, size_t n) {
    memset(count, 0, RADIX_PASSES * RADIX_BINS * sizeof *count);
    for (size_t i = 0; i < n; i++) {
        uint64_t b;
        memcpy(&b, &v[i], sizeof b);
        b = b >> 63 ? ~b : b | (1ull << 63);
        key[i] = b;
        for (int d = 0; d < RADIX_PASSES; d++) count[d * RADIX_BINS + ((b >> (RADIX_BITS * d)) & (RADIX_BINS - 1))]++;
    }
    for (int d = 0; d < RADIX_PASSES; d++) {
        const int shift = RADIX_BITS * d;
        size_t *c = count + d * RADIX_BINS;
        if (n && c[(key[0] >> shift) & (RADIX_BINS - 1)] == n) continue; /* every key has this digit */
        size_t at = 0;
        for (int k = 0; k < RADIX_BINS; k++) {
            const size_t m = c[k];
            c[k] = at, at += m;
        }
        for (size_t i = 0; i < n; i++) tmp[c[(key[i] >> shift) & (RADIX_BINS - 1)]++] = key[i];
        uint64_t *t = key;
        key = tmp, tmp = t;
    }
    for (size_t i = 0; i < n; i++) {
        const uint64_t b = key[i] >> 63 ? key[i] & ~(1ull << 63) : ~key[i];
        memcpy(&v[i], &b, sizeof b);
    }
}

/* Directions projected together, in one pass over the descriptors (each projection still summed over the
 * dimensions in order, so the same bits as one at a time); fewer where the projections would take more than
 * SWD_BUDGET bytes for all threads. */
#define SWD_BLOCK 8
#define SWD_BUDGET ((size_t)512 << 20)

double swd_distance(const float *A, size_t na, const float *B, size_t nb, int dim, const swd_params *p) {
    const size_t n = na < nb ? na : nb;
    const int ndirs = p->dirs * p->repeats;
    if (n == 0 || ndirs <= 0) return -1;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    int block = SWD_BLOCK;
    while (block > 1 && (size_t)block * 2 * n * sizeof(double) * (size_t)threads > SWD_BUDGET) block /= 2;
    const int nblocks = (ndirs + block - 1) / block;
    double *dist = malloc((size_t)ndirs * sizeof *dist); /* per direction, summed in order at the end */
    if (!dist) return -1;
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(| : failed)
    for (int bi = 0; bi < nblocks; bi++) {
        const int t0 = bi * block, m = ndirs - t0 < block ? ndirs - t0 : block;
        /* dir[k * SWD_BLOCK + j]: direction t0 + j; pa, pb [block][n]: the projections of A and B */
        double *dir = calloc((size_t)dim * SWD_BLOCK, sizeof *dir), *pa = malloc((size_t)block * n * sizeof *pa),
               *pb = malloc((size_t)block * n * sizeof *pb);
        uint64_t *key = malloc(n * sizeof *key), *tmp = malloc(n * sizeof *tmp);
        size_t *count = malloc(RADIX_PASSES * RADIX_BINS * sizeof *count);
        if (!dir || !pa || !pb || !key || !tmp || !count) {
            failed = 1;
        } else {
            for (int j = 0; j < m; j++) {
                const int t = t0 + j, r = t / p->dirs, jd = t % p->dirs;
                double norm = 0;
                for (int k = 0; k < dim; k++) {
                    const double g = edm2_philox_normal(p->seed, STREAM_DIR + (uint64_t)r, (uint64_t)jd * dim + k);
                    dir[(size_t)k * SWD_BLOCK + j] = g, norm += g * g;
                }
                norm = sqrt(norm);
                for (int k = 0; k < dim; k++) dir[(size_t)k * SWD_BLOCK + j] /= norm;
            }
            for (size_t i = 0; i < n; i++) { /* SWD_BLOCK lanes (those past m zero), in registers */
                const float *a = A + i * dim, *b = B + i * dim;
                double u[SWD_BLOCK] = {0}, v[SWD_BLOCK] = {0};
                for (int k = 0; k < dim; k++) {
                    const double *dk = dir + (size_t)k * SWD_BLOCK, ak = a[k], bk = b[k];
                    for (int j = 0; j < SWD_BLOCK; j++) u[j] += ak * dk[j], v[j] += bk * dk[j];
                }
                for (int j = 0; j < m; j++) pa[(size_t)j * n + i] = u[j], pb[(size_t)j * n + i] = v[j];
            }
            for (int j = 0; j < m; j++) {
                double *x = pa + (size_t)j * n, *y = pb + (size_t)j * n, d = 0;
                sort_doubles(x, key, tmp, count, n);
                sort_doubles(y, key, tmp, count, n);
                for (size_t i = 0; i < n; i++) d += fabs(x[i] - y[i]);
                dist[t0 + j] = d / (double)n;
            }
        }
        free(dir), free(pa), free(pb), free(key), free(tmp), free(count);
    }
    double total = 0;
    for (int t = 0; t < ndirs && !failed; t++) total += dist[t];
    free(dist);
    return failed ? -1 : total / ndirs;
}

int swd_compare(const swd_set *a, const swd_set *b, const swd_params *p, double *per_level, double *mean,
                edm2_err *err) {
    if (a->levels != b->levels || a->dim != b->dim)
        return err_set(err, "SWD: the sets have other shapes (%d levels of %d values against %d of %d)", a->levels,
                       a->dim, b->levels, b->dim);
    if (!a->count || !b->count)
        return err_set(err, "SWD: an empty set of descriptors (%zu against %zu)", a->count, b->count);
    *mean = 0;
    for (int l = 0; l < a->levels; l++) {
        double d = swd_distance(a->desc[l], a->count, b->desc[l], b->count, a->dim, p);
        if (d < 0) return err_set(err, "SWD: out of memory");
        per_level[l] = 1e3 * d;
        *mean += per_level[l] / a->levels;
    }
    return 0;
}
