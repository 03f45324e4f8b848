/* dinov2_vit.h: the vision transformer of DINOv2 (Oquab et al. 2023, "DINOv2: Learning Robust Visual
 * Features without Supervision") as the FD_DINOv2 metric uses it (the EDM2 paper's second metric, after
 * Stein et al. 2023): ViT-L/14 on 224x224 images, whose final-normalised class token is the image's 1024
 * features. The weight table (names of the released state dict, e.g. blocks.3.attn.qkv.weight; pos_embed
 * already interpolated to the input's grid of patches by scripts/convert_dinov2_weights.py); the forward
 * pass: dinov2_cpu.h, and the CUDA build's.
 *
 *   tokens x[T = 1 + g^2, D]: the class token, then the g x g patches of the image (a 14x14 stride-14
 *   convolution), plus pos_embed; depth blocks of
 *     x += ls1 * proj(attention(LN1(x))),  attention: heads of D / heads, softmax(q k^T / sqrt(D / heads)) v
 *     x += ls2 * fc2(GELU(fc1(LN2(x))))    GELU with erf, hidden 4 D
 *   features = LN(x)[0] (LayerNorm eps 1e-6 everywhere). */
#ifndef EDM2_DINOV2_VIT_H
#define EDM2_DINOV2_VIT_H

#include <stddef.h>

#include "edm2/edm2_features.h"

#define DINO_MAX_DEPTH 48
#define DINO_BLOCK_PARAMS 14
#define DINO_MAX_PARAMS (6 + DINO_BLOCK_PARAMS * DINO_MAX_DEPTH)

typedef struct dino_shape {
    int dim, depth, heads, patch, res; /* ViT-L/14 at 224: 1024, 24, 16, 14, 224 */
} dino_shape;

/* Arena offsets (floats) of one block's weights, in the order of the table. */
typedef struct dino_block {
    size_t n1w, n1b, qkvw, qkvb, projw, projb, ls1, n2w, n2b, fc1w, fc1b, fc2w, fc2b, ls2;
} dino_block;

typedef struct dino_vit {
    dino_shape s;
    int grid, tokens, hidden; /* patches a side, 1 + grid^2, 4 dim */
    size_t cls, pos, pw, pb, nw, nb;
    dino_block blk[DINO_MAX_DEPTH];
    edm2_param_desc params[DINO_MAX_PARAMS];
    char names[DINO_MAX_PARAMS][40];
    size_t nparams, arena_floats;
    double gflops; /* per image, resizing aside */
} dino_vit;

/* The table of a shape; -1 with a reason in msg[len] for a shape it cannot be. */
int dino_build(dino_vit *v, const dino_shape *s, char *msg, size_t len);
/* The table of the shape the plugin's keys (dim, depth, heads, patch, resolution) give, and its max_batch;
 * -1 with a reason in msg[len]. */
int dino_build_from(dino_vit *v, const edm2_config *cfg, int *max_batch, char *msg, size_t len);
/* The plugin's info (edm2_features.h), up to info->struct_size. */
void dino_info(const dino_vit *v, edm2_features_info *info);

#endif
