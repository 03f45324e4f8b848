/* vae_cpu.h: the CPU primitives of the SD VAE graph (vae_graph.h): convolutions through the project's GEMM
 * kernels (../../common/gemm: implicit 3x3, 1x1 as a product, the stride-2 downsampling by im2col in bands
 * of rows), GroupNorm (+ SiLU), sums, nearest upsampling, single-head attention; buffers sized for the
 * largest image seen so far, one image at a time. */
#ifndef EDM2_VAE_CPU_H
#define EDM2_VAE_CPU_H

#include "vae_graph.h"

typedef struct vae_cpu {
    const vae_graph *g;
    const float *arena;          /* the weights, conv weights prepared (vae_prepare), host memory */
    float *slot[VAE_SLOTS], *col, *pack;
    size_t cap[VAE_SLOTS], col_cap, pack_cap;
} vae_cpu;

void vae_cpu_init(vae_cpu *c, const vae_graph *g, const float *arena);
void vae_cpu_free(vae_cpu *c);
/* One image each; 0, or -1 when out of memory. */
int vae_cpu_encode(vae_cpu *c, const float *image, int H, int W, float *moments);
int vae_cpu_decode(vae_cpu *c, const float *latents, int h, int w, float *image);

#endif
