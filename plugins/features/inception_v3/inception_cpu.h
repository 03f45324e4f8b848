/* inception_cpu.h: the CPU primitives of the FID Inception-v3 graph (inception_graph.h): bilinear resize,
 * convolutions as implicit GEMMs (3x3, padding 1) or im2col + GEMM (../../common/gemm), batch
 * normalisation + ReLU, pools and the final mean; channels-last activations for up to max_batch images. */
#ifndef EDM2_INCEPTION_CPU_H
#define EDM2_INCEPTION_CPU_H

#include "inception_graph.h"

typedef struct incep_cpu {
    const incep_graph *g;
    const float *w, *ab;           /* prepared weights and (alpha, beta) (incep_prepare) */
    int max_batch, n;              /* images the buffers hold; images of the current pass */
    float *slot[INCEP_SLOTS];      /* [max_batch, slot_floats] each */
    float *col, *pack;             /* im2col rows of one image's largest convolution; GEMM packing */
    size_t col_floats;
} incep_cpu;

/* Allocates the buffers. 0, or -1 when out of memory. */
int incep_cpu_init(incep_cpu *c, const incep_graph *g, const float *w, const float *ab, int max_batch);
void incep_cpu_free(incep_cpu *c);
/* features[n, 2048] of images[n, C, H, W] (host memory, values in [0, 1]), n <= max_batch. */
int incep_cpu_forward(incep_cpu *c, const float *images, int n, int C, int H, int W, float *features);

#endif
