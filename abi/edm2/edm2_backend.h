/* edm2_backend.h: the backend plugin kind: memory, host/device copies, float32 vector operations and a
 * counter-based random generator. Backend-agnostic plugins (EMA profiles, samplers) do all their
 * numerical work through this table, so they run unchanged on every backend.
 *
 * Pointers named `x`, `y`, `dst`, `src` below are *backend memory*: on the CUDA backend they are device
 * pointers that the host cannot dereference. Only `upload`/`download` take host pointers.
 * Every call is ordered after the previous calls on the same instance (one stream); results written to
 * host memory (`download`, reductions) are complete when the call returns.
 */
#ifndef EDM2_BACKEND_H
#define EDM2_BACKEND_H

#include "edm2_plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct edm2_backend edm2_backend; /* opaque instance */

/* The random stream: element i of a draw is a pure function of (seed, stream, offset + i), the same
 * on every backend (Philox4x32-10; see edm2/edm2_philox.h for the exact mapping). */
typedef struct edm2_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t offset;
} edm2_rng;

/* A backend's native handles (ABI 1.1). CPU backends leave the CUDA fields NULL/-1. Opaque pointers
 * keep the ABI free of CUDA headers: a CUDA plugin casts them to the types named here. */
typedef struct edm2_backend_native {
    uint32_t struct_size;    /* set by the caller to sizeof(edm2_backend_native) */
    int device;              /* CUDA device ordinal; -1 on a CPU backend */
    void *stream;            /* cudaStream_t: every operation of the backend is ordered on it */
    void *cublas;            /* cublasHandle_t bound to `stream` (math mode: pedantic float32, no TF32) */
    void *cublaslt;          /* cublasLtHandle_t */
    void *cudnn;             /* cudnnHandle_t bound to `stream`; NULL when built without cuDNN */
    void *workspace;         /* device scratch for cuBLASLt/cuDNN, stream-ordered: use only on `stream` */
    size_t workspace_bytes;
} edm2_backend_native;

/* Who calls what: create/destroy only the host; every other function the host and the plugins it
 * lends an edm2_backend_ops to, from one thread at a time per instance, between create and destroy.
 * Ownership: memory from alloc belongs to the caller until it passes it to free; host pointers passed in
 * are only read or written during the call. */
typedef struct edm2_backend_vtable {
    uint32_t struct_size;
    /* Called by the host once per run. `host` and `cfg` outlive the call (`cfg` only during it).
     * On success *out is a new instance owned by the caller (free with destroy). */
    edm2_status (*create)(const edm2_host *host, const edm2_config *cfg, edm2_backend **out);
    /* Called by the host last, after every buffer of this instance was freed. NULL is a no-op. */
    void (*destroy)(edm2_backend *b);
    /* Short human-readable device name for logs, e.g. "CPU (2 threads)" or "NVIDIA H100". Static
     * for the instance's lifetime. */
    const char *(*device_name)(edm2_backend *b);

    /* Memory. alloc returns zeroed, 256-byte aligned backend memory owned by the caller. */
    edm2_status (*alloc)(edm2_backend *b, size_t bytes, void **out);
    void (*free)(edm2_backend *b, void *p); /* NULL is a no-op */
    edm2_status (*upload)(edm2_backend *b, void *dst, const void *host_src, size_t bytes);
    edm2_status (*download)(edm2_backend *b, void *host_dst, const void *src, size_t bytes);
    edm2_status (*copy)(edm2_backend *b, void *dst, const void *src, size_t bytes);
    /* Blocks until all queued work is done. Reports asynchronous device errors. */
    edm2_status (*synchronize)(edm2_backend *b);
    /* Bytes of backend memory currently allocated through this instance, and the peak. */
    void (*memory_stats)(edm2_backend *b, size_t *current, size_t *peak);

    /* Vector operations over n float32 elements. In-place aliasing (x == y) is allowed. */
    edm2_status (*fill)(edm2_backend *b, float *x, float value, size_t n);           /* x = v      */
    edm2_status (*scale)(edm2_backend *b, float *x, float a, size_t n);             /* x = a x    */
    edm2_status (*axpby)(edm2_backend *b, float *y, float a, const float *x, float beta,
                         size_t n);                                                 /* y = a x + beta y */
    edm2_status (*lerp)(edm2_backend *b, float *y, const float *x, float t, size_t n); /* y += t (x - y) */
    /* Reductions accumulate in double and write one double to *host* memory. */
    edm2_status (*sum)(edm2_backend *b, const float *x, size_t n, double *out);
    edm2_status (*dot)(edm2_backend *b, const float *x, const float *y, size_t n, double *out);
    edm2_status (*norm2)(edm2_backend *b, const float *x, size_t n, double *out); /* sqrt(x.x) */
    /* Replaces NaN and +-Inf by 0; writes how many were replaced to *replaced (host, may be NULL). */
    edm2_status (*nan_to_zero)(edm2_backend *b, float *x, size_t n, size_t *replaced);

    /* Random numbers, element i from counter (rng.offset + i): randn draws N(0,1), rand U(0,1). */
    edm2_status (*randn)(edm2_backend *b, float *x, size_t n, edm2_rng rng);
    edm2_status (*rand)(edm2_backend *b, float *x, size_t n, edm2_rng rng);

    /* ---- ABI 1.1 (read only when struct_size covers it) ---- */
    /* The backend's native handles, for compute plugins built for the same backend (a CUDA network,
     * loss or optimizer orders all its work on `stream` and uses these handles). Fills *out up to
     * out->struct_size (set by the caller). Handles stay owned by the backend and valid until destroy. */
    edm2_status (*native)(edm2_backend *b, edm2_backend_native *out);
    /* Uploads that do not stall the caller (ABI 1.1; each may be NULL: the host then uses malloc and upload).
     * host_alloc: `bytes` of host memory the device can copy from directly (CUDA: page-locked), owned by the
     * caller until host_free. upload_async: queues the copy on the backend's stream and returns at once; the
     * host memory (from host_alloc) must stay unchanged until a later call completes the queue: synchronize,
     * download, a reduction or nan_to_zero (the CPU backend copies at once). */
    edm2_status (*host_alloc)(edm2_backend *b, size_t bytes, void **out);
    void (*host_free)(edm2_backend *b, void *p);
    edm2_status (*upload_async)(edm2_backend *b, void *dst, const void *host_src, size_t bytes);
    /* ---- ABI 1.2: data-parallel training (each may be NULL in a one-process-only backend) ---- */
    /* out[n] = the sum of `nparts` arrays parts[0..nparts-1][n] of every process (backend memory; the same
     * nparts on each), the same on every process. The CPU backend adds in one fixed order (process 0's parts
     * in order, then process 1's, ...), so K processes give bitwise the sum one process computes by adding
     * the same parts in that order; the CUDA backend adds its own parts, then all-reduces with NCCL (equal
     * within float rounding). With one process: out = parts[0] + parts[1] + ... in order. */
    edm2_status (*reduce_sum)(edm2_backend *b, const float *const *parts, int nparts, float *out, size_t n);
    /* `bytes` of backend memory at x from process `root` to every process. */
    edm2_status (*broadcast)(edm2_backend *b, void *x, size_t bytes, int root);
    /* Planned: the compute precision of a network (see edm2_network.h). */
} edm2_backend_vtable;

/* What the host hands backend-agnostic plugins: a backend's table plus its instance. */
typedef struct edm2_backend_ops {
    const edm2_backend_vtable *vt;
    edm2_backend *b;
} edm2_backend_ops;

#ifdef __cplusplus
}
#endif
#endif /* EDM2_BACKEND_H */
