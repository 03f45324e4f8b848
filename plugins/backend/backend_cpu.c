/* backend_cpu.c: the CPU backend plugin "cpu": host memory, OpenMP vector operations, Philox random
 * numbers. Reductions use a fixed chunking so their result does not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "edm2/edm2.h"

#define ALIGN 256
#define CHUNK 4096 /* elements per partial sum of a reduction */

struct edm2_backend {
    const edm2_host *host;
    int threads;
    char name[64];
    size_t current, peak;
};

/* The threads to use now: the host may lower its count while other work competes for the cores. */
static int nthreads(const edm2_backend *b) {
    int t = b->host ? b->host->threads : b->threads;
    return t < 1 ? 1 : t > b->threads ? b->threads : t;
}

static edm2_status cpu_create(const edm2_host *host, const edm2_config *cfg, edm2_backend **out) {
    (void)cfg;
    edm2_backend *b = calloc(1, sizeof *b);
    if (!b) return EDM2_ERR_NOMEM;
    b->host = host;
    b->threads = host && host->threads > 0 ? host->threads : 1;
    snprintf(b->name, sizeof b->name, "CPU (%d thread%s)", b->threads, b->threads == 1 ? "" : "s");
    *out = b;
    return EDM2_OK;
}

static void cpu_destroy(edm2_backend *b) { free(b); }
static const char *cpu_device_name(edm2_backend *b) { return b->name; }

/* Each block carries its size in a header of ALIGN bytes, for memory_stats. */
static edm2_status cpu_alloc(edm2_backend *b, size_t bytes, void **out) {
    size_t total = ALIGN + ((bytes + ALIGN - 1) / ALIGN) * ALIGN;
    unsigned char *p = aligned_alloc(ALIGN, total);
    if (!p) return edm2_logf(b->host, EDM2_LOG_ERROR, "cpu", EDM2_ERR_NOMEM, "cannot allocate %zu bytes", bytes);
    memset(p, 0, total);
    memcpy(p, &bytes, sizeof bytes);
    b->current += bytes;
    if (b->current > b->peak) b->peak = b->current;
    *out = p + ALIGN;
    return EDM2_OK;
}

static void cpu_free(edm2_backend *b, void *ptr) {
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr - ALIGN;
    size_t bytes;
    memcpy(&bytes, p, sizeof bytes);
    b->current -= bytes;
    free(p);
}

static edm2_status cpu_memcpy(edm2_backend *b, void *dst, const void *src, size_t bytes) {
    (void)b;
    if (bytes) memmove(dst, src, bytes);
    return EDM2_OK;
}

static edm2_status cpu_synchronize(edm2_backend *b) {
    (void)b;
    return EDM2_OK;
}

static void cpu_memory_stats(edm2_backend *b, size_t *current, size_t *peak) {
    if (current) *current = b->current;
    if (peak) *peak = b->peak;
}

static edm2_status cpu_fill(edm2_backend *b, float *x, float v, size_t n) {
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] = v;
    return EDM2_OK;
}

static edm2_status cpu_scale(edm2_backend *b, float *x, float a, size_t n) {
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] *= a;
    return EDM2_OK;
}

static edm2_status cpu_axpby(edm2_backend *b, float *y, float a, const float *x, float beta, size_t n) {
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] = a * x[i] + beta * y[i];
    return EDM2_OK;
}

static edm2_status cpu_lerp(edm2_backend *b, float *y, const float *x, float t, size_t n) {
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += t * (x[i] - y[i]);
    return EDM2_OK;
}

/* sum over i of x[i] * (y ? y[i] : 1), chunked for a thread-count-independent result. */
static double reduce(edm2_backend *b, const float *x, const float *y, size_t n) {
    size_t nchunks = (n + CHUNK - 1) / CHUNK;
    double stack[64], *part = nchunks <= 64 ? stack : malloc(nchunks * sizeof *part);
    if (!part) { /* fall back to one serial pass */
        double s = 0;
        for (size_t i = 0; i < n; i++) s += (double)x[i] * (y ? (double)y[i] : 1.0);
        return s;
    }
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (nchunks > 4)
    for (size_t c = 0; c < nchunks; c++) {
        size_t lo = c * CHUNK, hi = lo + CHUNK < n ? lo + CHUNK : n;
        double s = 0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * (y ? (double)y[i] : 1.0);
        part[c] = s;
    }
    double s = 0;
    for (size_t c = 0; c < nchunks; c++) s += part[c];
    if (part != stack) free(part);
    return s;
}

static edm2_status cpu_sum(edm2_backend *b, const float *x, size_t n, double *out) {
    *out = reduce(b, x, NULL, n);
    return EDM2_OK;
}

static edm2_status cpu_dot(edm2_backend *b, const float *x, const float *y, size_t n, double *out) {
    *out = reduce(b, x, y, n);
    return EDM2_OK;
}

static edm2_status cpu_norm2(edm2_backend *b, const float *x, size_t n, double *out) {
    *out = sqrt(reduce(b, x, x, n));
    return EDM2_OK;
}

static edm2_status cpu_nan_to_zero(edm2_backend *b, float *x, size_t n, size_t *replaced) {
    size_t count = 0;
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) reduction(+ : count) if (n > 65536)
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            x[i] = 0.0f;
            count++;
        }
    if (replaced) *replaced = count;
    return EDM2_OK;
}

static edm2_status cpu_randn(edm2_backend *b, float *x, size_t n, edm2_rng rng) {
    const size_t chunk = 4096; /* numbers per edm2_philox_normals call */
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (n > 4 * chunk)
    for (size_t i = 0; i < n; i += chunk)
        edm2_philox_normals(rng.seed, rng.stream, rng.offset + i, n - i < chunk ? n - i : chunk, x + i);
    return EDM2_OK;
}

static edm2_status cpu_rand(edm2_backend *b, float *x, size_t n, edm2_rng rng) {
#pragma omp parallel for num_threads(nthreads(b)) schedule(static) if (n > 16384)
    for (size_t i = 0; i < n; i++) x[i] = edm2_philox_uniform(rng.seed, rng.stream, rng.offset + i);
    return EDM2_OK;
}

/* No native handles on the CPU (ABI 1.1). */
static edm2_status cpu_native(edm2_backend *b, edm2_backend_native *out) {
    (void)b;
    uint32_t size = out->struct_size < sizeof *out ? out->struct_size : (uint32_t)sizeof *out;
    memset(out, 0, size);
    out->struct_size = size;
    if (size >= offsetof(edm2_backend_native, device) + sizeof out->device) out->device = -1;
    return EDM2_OK;
}

/* Host memory is backend memory here: ordinary allocations, and uploads that copy at once. */
static edm2_status cpu_host_alloc(edm2_backend *b, size_t bytes, void **out) {
    (void)b;
    *out = aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    return *out ? EDM2_OK : EDM2_ERR_NOMEM;
}

static void cpu_host_free(edm2_backend *b, void *p) {
    (void)b;
    free(p);
}

/* ---- Data-parallel training (ABI 1.2) ---- */

#define GROUP_CHUNK ((size_t)1 << 18) /* floats of each part exchanged per round of reduce_sum */

/* The process group from the host services, or NULL when this is the only process. */
static const edm2_host *group(const edm2_backend *b) {
    const edm2_host *h = b->host;
    return h && h->struct_size >= offsetof(edm2_host, comm_barrier) + sizeof h->comm_barrier && h->world_size > 1 &&
                   h->comm_allgather && h->comm_broadcast
               ? h
               : NULL;
}

/* out = ((parts of process 0 in order) + parts of process 1 in order) + ...: every process gathers, chunk by
 * chunk, every process's parts and adds them in that one order, so all get the same bits, equal to one
 * process adding the same parts in order. Each process receives (world - 1) * nparts * n floats, against
 * about 2 n for a ring all-reduce: the price of a deterministic order without a reduction tree's
 * reassociation, paid where CPU ranks train small networks. */
static edm2_status cpu_reduce_sum(edm2_backend *b, const float *const *parts, int nparts, float *out, size_t n) {
    const edm2_host *h = group(b);
    if (nparts < 1) return edm2_logf(b->host, EDM2_LOG_ERROR, "cpu", EDM2_ERR_INVALID, "reduce_sum of %d parts", nparts);
    const int T = nthreads(b);
    if (!h) {
        if (out != parts[0]) memcpy(out, parts[0], n * sizeof *out);
        for (int k = 1; k < nparts; k++) {
            const float *p = parts[k];
#pragma omp parallel for schedule(static) num_threads(T) if (n > 65536)
            for (size_t i = 0; i < n; i++) out[i] += p[i];
        }
        return EDM2_OK;
    }
    const size_t W = (size_t)h->world_size, C = n < GROUP_CHUNK ? (n ? n : 1) : GROUP_CHUNK;
    float *send = malloc((size_t)nparts * C * sizeof *send), *recv = malloc(W * (size_t)nparts * C * sizeof *recv);
    edm2_status s = send && recv ? EDM2_OK : EDM2_ERR_NOMEM;
    for (size_t off = 0; s == EDM2_OK && off < n; off += C) {
        const size_t c = n - off < C ? n - off : C;
        for (int k = 0; k < nparts; k++) memcpy(send + (size_t)k * C, parts[k] + off, c * sizeof *send);
        if ((s = h->comm_allgather(h->ctx, send, recv, (size_t)nparts * C * sizeof *send)) != EDM2_OK) break;
        memcpy(out + off, recv, c * sizeof *out);
        for (size_t q = 1; q < W * (size_t)nparts; q++) {
            const float *p = recv + q * C;
            float *o = out + off;
#pragma omp parallel for schedule(static) num_threads(T) if (c > 65536)
            for (size_t i = 0; i < c; i++) o[i] += p[i];
        }
    }
    free(send), free(recv);
    return s == EDM2_ERR_NOMEM ? edm2_logf(b->host, EDM2_LOG_ERROR, "cpu", s, "out of memory in reduce_sum") : s;
}

static edm2_status cpu_broadcast(edm2_backend *b, void *x, size_t bytes, int root) {
    const edm2_host *h = group(b);
    return h ? h->comm_broadcast(h->ctx, x, bytes, root) : EDM2_OK;
}

static const edm2_backend_vtable k_vtable = {
    sizeof(edm2_backend_vtable),
    cpu_create,
    cpu_destroy,
    cpu_device_name,
    cpu_alloc,
    cpu_free,
    cpu_memcpy, /* upload */
    cpu_memcpy, /* download */
    cpu_memcpy, /* copy */
    cpu_synchronize,
    cpu_memory_stats,
    cpu_fill,
    cpu_scale,
    cpu_axpby,
    cpu_lerp,
    cpu_sum,
    cpu_dot,
    cpu_norm2,
    cpu_nan_to_zero,
    cpu_randn,
    cpu_rand,
    cpu_native,
    cpu_host_alloc,
    cpu_host_free,
    cpu_memcpy, /* upload_async */
    cpu_reduce_sum,
    cpu_broadcast,
};

static const edm2_plugin_desc k_desc = {
    sizeof(edm2_plugin_desc), "cpu", EDM2_KIND_BACKEND, EDM2_BACKEND_CPU, "1.1.0",
    "host memory, OpenMP vector ops, Philox4x32-10 random numbers",
    NULL, 0, NULL, &k_vtable,
};

static const edm2_plugin_desc *const k_plugins[] = {&k_desc};
EDM2_DEFINE_ENTRY(k_plugins)
