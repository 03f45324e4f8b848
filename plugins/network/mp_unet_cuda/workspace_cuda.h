/* workspace_cuda.h: a bump allocator for activations in device memory (the CPU build's workspace.h, on the
 * backend's allocator): it keeps its block across passes; what a pass needs beyond it comes from extra
 * blocks, and the next reset grows the block to that pass's total. Frees are stream-ordered (the backend's
 * pool), so a reset never waits for the GPU. */
#ifndef EDM2_WORKSPACE_CUDA_H
#define EDM2_WORKSPACE_CUDA_H

#include <stddef.h>

#include "edm2/edm2_backend.h"

typedef struct gws {
    edm2_backend_ops ops;
    float *base;
    size_t cap, used; /* floats */
    void **extra;     /* overflow blocks of this pass */
    size_t nextra, cap_extra;
    size_t need;      /* floats this pass has asked for */
    int failed;
    unsigned epoch;   /* counts the moves of `base` (a CUDA graph holds its addresses) */
} gws;

/* n floats, 64-float (256-byte) aligned, uninitialised; NULL (and ws->failed) when out of memory. */
float *gws_alloc(gws *ws, size_t n);
float *gws_zeros(gws *ws, size_t n);
/* n elements of an activation type (ACT_*: 4 or 2 bytes each), aligned as gws_alloc. */
void *gws_act(gws *ws, int act, size_t n);
/* Frees the previous pass's blocks; grows the main block to the previous pass's total. 0 or -1. */
int gws_reset(gws *ws);
/* Gives back every block, keeping nothing for the next pass, which grows the workspace to its own total again
 * (after a pass that ran out of memory: a smaller one does not start from the failed one's size). */
void gws_release(gws *ws);
void gws_free(gws *ws);

#endif
