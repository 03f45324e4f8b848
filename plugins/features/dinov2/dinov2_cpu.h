/* dinov2_cpu.h: the forward pass of DINOv2's vision transformer (dinov2_vit.h) on the CPU, every value by one
 * fixed sequence of operations (features do not depend on the batch or the thread count). */
#ifndef EDM2_DINOV2_CPU_H
#define EDM2_DINOV2_CPU_H

#include "dinov2_vit.h"

/* Scratch of the forward pass of up to `batch` images (dino_work_alloc), host memory. */
typedef struct dino_work {
    int batch;
    float *x, *h, *qkv, *att, *s, *mlp, *patches, *pack;
} dino_work;
int dino_work_alloc(dino_work *w, const dino_vit *v, int batch);
void dino_work_free(dino_work *w);

/* out[n, dim] = the features of img[n, 3, res, res] (already resized and normalised; n <= w->batch), weights
 * in `arena`. The images share the products (whose weights are packed once for all), never a sum. */
void dino_forward(const dino_vit *v, const float *arena, const float *img, int n, float *out, dino_work *w);

#endif
