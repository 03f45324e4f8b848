/* vae_graph.h: the KL autoencoder of Stable Diffusion (Rombach et al., CVPR 2022; the VAE of the EDM2 img512
 * presets) in the layout of diffusers' AutoencoderKL: its weight table and its encoder and decoder written
 * once over backend primitives, so the CPU and CUDA builds run the same graph (docs/vae.md).
 *
 * Encoder: conv_in 3x3 -> per level i: layers_per_block ResNet blocks (GroupNorm, SiLU, conv 3x3, GroupNorm,
 * SiLU, conv 3x3, + the input or its 1x1 projection) and, but at the last level, a downsampling conv (3x3,
 * stride 2, zero padding only at the bottom and right) -> mid block (ResNet, single-head self-attention with
 * a GroupNorm in front and a residual, ResNet) -> GroupNorm, SiLU, conv_out 3x3 to 2 x latent channels ->
 * quant_conv 1x1: the posterior's mean and log-variance (clamped to [-30, 20]; std = exp(logvar / 2)).
 * Decoder: post_quant_conv 1x1 -> conv_in 3x3 -> mid block -> per level, widest first, layers_per_block + 1
 * ResNet blocks and, but at the last, nearest 2x upsampling + conv 3x3 -> GroupNorm, SiLU, conv_out 3x3.
 * GroupNorms: eps 1e-6, affine. Activations are channels-last [H, W, C], one image at a time. */
#ifndef EDM2_VAE_GRAPH_H
#define EDM2_VAE_GRAPH_H

#include <stddef.h>

#include "edm2/edm2_vae.h"

#define VAE_MAX_LEVELS 6
#define VAE_GN_EPS 1e-6f
#define VAE_LOGVAR_MIN (-30.0f)
#define VAE_LOGVAR_MAX 20.0f

typedef struct vae_hparams {
    int levels, ch[VAE_MAX_LEVELS]; /* block_out_channels */
    int layers;                     /* layers_per_block */
    int groups;                     /* norm_num_groups */
    int latent;                     /* latent_channels */
} vae_hparams;

typedef enum { VAE_CONV_3x3, VAE_CONV_1x1, VAE_CONV_DOWN } vae_conv_kind;

/* A convolution (or a linear layer, as 1x1) with bias. Weights NAME.weight [cout, cin, k, k] (or [cout, cin]
 * for the attention's linear layers) and NAME.bias [cout]; prepared (vae_prepare) tap-major [cout, k, k, cin]
 * in place. */
typedef struct vae_conv {
    const char *name;
    vae_conv_kind kind;
    int cin, cout;
    size_t w_off, b_off; /* arena offsets (floats) */
} vae_conv;

/* A GroupNorm: NAME.weight, NAME.bias [C]. */
typedef struct vae_norm {
    const char *name;
    int C, groups;
    size_t w_off, b_off;
} vae_norm;

typedef struct vae_graph {
    vae_hparams hp;
    vae_conv *conv;
    vae_norm *norm;
    int nconv, nnorm;
    edm2_param_desc *params;
    char **names;
    size_t nparams, arena_floats;
} vae_graph;

/* Builds the tables. 0, or -1 when out of memory. */
int vae_graph_build(vae_graph *g, const vae_hparams *hp);
void vae_graph_free(vae_graph *g);
/* The name of table entry i in the single-file (LDM) checkpoints: encoder.down.I.block.J..., mid.block_1,
 * mid.attn_1.{norm,q,k,v,proj_out}, decoder.up.(levels-1-I)..., norm_out, nin_shortcut. */
void vae_ldm_name(const vae_graph *g, size_t i, char *out, size_t len);
/* The name of table entry i in diffusers' files before 0.14: the attention's to_q, to_k, to_v, to_out.0 were
 * query, key, value, proj_attn. */
void vae_old_diffusers_name(const vae_graph *g, size_t i, char *out, size_t len);
/* Rearranges every 3x3 conv's weights tap-major, in place in the arena (host memory). 0, or -1 when out of
 * memory. */
int vae_prepare(const vae_graph *g, float *arena);

/* A dense channels-last activation [H, W, C] in one of the backend's buffers. */
typedef struct vae_view {
    int slot, H, W, C;
} vae_view;

enum { VAE_SLOT_0, VAE_SLOT_1, VAE_SLOT_2, VAE_SLOT_K, VAE_SLOT_V, VAE_SLOT_S, VAE_SLOTS };

/* What a backend provides (each returns 0 or -1, the backend having recorded why). */
typedef struct vae_backend {
    void *ctx;
    /* out = x[C, H, W] (NCHW, one image) as channels-last. */
    int (*load)(void *ctx, const float *x, vae_view out);
    /* y[C, H, W] (NCHW) = in. */
    int (*store)(void *ctx, vae_view in, float *y);
    /* out = conv(in) + bias; out != in. */
    int (*conv)(void *ctx, const vae_conv *c, vae_view in, vae_view out);
    /* out = GroupNorm(in), then SiLU when silu; out may be in. */
    int (*group_norm)(void *ctx, const vae_norm *n, int silu, vae_view in, vae_view out);
    /* out = a + b; out may be a or b. */
    int (*add)(void *ctx, vae_view a, vae_view b, vae_view out);
    /* out (2H x 2W) = nearest-neighbour upsampling of in. */
    int (*upsample)(void *ctx, vae_view in, vae_view out);
    /* out[HW, C] = softmax(q k^T / sqrt(C)) v over positions (s: scratch [HW, HW]). */
    int (*attend)(void *ctx, vae_view q, vae_view k, vae_view v, vae_view s, vae_view out);
    /* in [h, w, 2L] (mean, log-variance) -> y[2L, h, w] NCHW: mean, then exp(clamp(logvar) / 2). */
    int (*store_moments)(void *ctx, vae_view in, float *y);
} vae_backend;

/* One image through the encoder (image[3, H, W], H and W multiples of 2^(levels-1) -> moments[2L, h, w])
 * or the decoder (latents[L, h, w] -> image[3, H, W]). be = NULL plans: slot_floats gets the floats each
 * buffer needs for that size. */
int vae_encode(const vae_graph *g, const vae_backend *be, const float *image, int H, int W, float *moments,
               size_t slot_floats[VAE_SLOTS]);
int vae_decode(const vae_graph *g, const vae_backend *be, const float *latents, int h, int w, float *image,
               size_t slot_floats[VAE_SLOTS]);
/* The plugin's info up to info->struct_size. */
void vae_graph_info(const vae_graph *g, edm2_vae_info *info);

#endif
