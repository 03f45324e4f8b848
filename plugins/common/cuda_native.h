/* cuda_native.h: what the CUDA compute plugins share to reach the GPU: the backend's native handles (ABI 1.1:
 * device, stream, cuBLAS handle) and the descriptor's probe (is there a device at all). Header-only, for
 * plugins built against the CUDA runtime. */
#ifndef EDM2_CUDA_NATIVE_H
#define EDM2_CUDA_NATIVE_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "edm2/edm2_backend.h"

/* *n = the backend's native handles; 0, or -1 when the backend is not a CUDA backend of ABI 1.1 or later. */
static inline int edm2_cuda_native(const edm2_backend_ops *b, edm2_backend_native *n) {
    memset(n, 0, sizeof *n);
    n->struct_size = sizeof *n;
    const int has = b->vt->struct_size >= offsetof(edm2_backend_vtable, native) + sizeof b->vt->native && b->vt->native;
    return has && b->vt->native(b->b, n) == EDM2_OK && n->device >= 0 && n->stream && n->cublas ? 0 : -1;
}

/* The probe of a CUDA plugin's descriptor: EDM2_OK when a CUDA device is visible. */
static inline edm2_status edm2_cuda_probe(char *why, size_t len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n > 0) return EDM2_OK;
    snprintf(why, len, "no CUDA device (%s)", e == cudaSuccess ? "none found" : cudaGetErrorString(e));
    return EDM2_ERR_NODEVICE;
}

#endif
