/* unet_graph.h: the EDM2 U-Net as data (docs/formulas.md §2-3): hyperparameters, the module graph in the
 * reference's order, the blocks' shapes, and the parameter arena table (reference state_dict names). Both
 * builds of mp_unet (CPU here, CUDA in ../mp_unet_cuda) run over this one description, so a snapshot
 * written by one loads into the other. */
#ifndef EDM2_UNET_GRAPH_H
#define EDM2_UNET_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "edm2/edm2_network.h"

enum { RESAMPLE_KEEP = 0, RESAMPLE_DOWN = 1, RESAMPLE_UP = 2 };

/* A weight of the arena: offset of w (reference layout [O, C, k, k]) and of its prepared w_hat
 * (channels-last, same offset in the w_hat buffer), and where its row norms are kept. */
typedef struct weight_ref {
    int present;
    int O, C, k;
    size_t offset;      /* into params / grads / w_hat / dw_hat arenas */
    size_t norm_offset; /* into the row-norm buffer */
} weight_ref;

/* Its number of values, O C k k. */
static inline size_t weight_numel(const weight_ref *w) { return (size_t)w->O * w->C * w->k * w->k; }

typedef struct block_def {
    int enc;           /* 1: encoder flavour, 0: decoder */
    int resample;      /* RESAMPLE_* */
    int cin, cout, cemb;
    int Hin, Win;      /* input resolution */
    int H, W;          /* output resolution */
    int heads, cph;    /* heads = 0: no attention */
    float res_balance, attn_balance, clip_act, dropout;
    size_t emb_gain;   /* arena offset of the scalar emb_gain */
    weight_ref res0, res1, skip, qkv, proj, emb_linear;
    uint64_t id;       /* distinct per block: selects its dropout random numbers */
} block_def;

#define UNET_MAX_LEVELS 8
#define UNET_MAX_ATTN 8
#define UNET_MAX_PARAMS ((size_t)1 << 32) /* arena floats (16 GiB); the paper's XXL has 1.5e9 */

typedef struct unet_hparams {
    int img_resolution, img_channels, label_dim, model_channels;
    int channel_mult[UNET_MAX_LEVELS], levels;
    int channel_mult_noise, channel_mult_emb; /* 0 = default (cblock[0], max(cblock)) */
    int num_blocks;
    int attn_resolutions[UNET_MAX_ATTN], n_attn;
    int channels_per_head;
    float label_balance, concat_balance, res_balance, attn_balance, clip_act, dropout;
    int logvar_channels;
    float sigma_data;
    int precision; /* UNET_FP32, UNET_BF16, UNET_FP16: the U-Net body's activations (CUDA build) */
} unet_hparams;

/* Precision of the U-Net body's activations and products (the `precision` key). Parameters, gradients,
 * Adam moments, EMAs, the embedding, preconditioning and the uncertainty head are float32 in every case. */
enum { UNET_FP32 = 0, UNET_BF16 = 1, UNET_FP16 = 2 };

enum { MOD_CONV = 0, MOD_BLOCK = 1 };

typedef struct unet_module {
    int kind;
    int dec;
    int skip_src;   /* decoder blocks: the encoder module whose output is concatenated first; -1 none */
    int H, W, cin, cout;
    block_def blk;  /* MOD_BLOCK */
    weight_ref conv;/* MOD_CONV (the first encoder conv) */
} unet_module;

typedef struct unet_weight {
    weight_ref ref;
    long gain;      /* arena offset of its gain scalar, or -1 for gain 1 */
} unet_weight;

typedef struct unet_graph {
    unet_hparams hp;
    int cnoise, cemb;
    unet_module *mods;
    int nmods, nenc;
    edm2_param_desc *params;
    size_t nparams, cap_params;
    unet_weight *weights;
    size_t nweights;
    size_t arena_floats, norm_floats;
    size_t off_out_gain, off_emb_freqs, off_emb_phases, off_lv_freqs, off_lv_phases;
    weight_ref emb_noise, emb_label, out_conv, logvar_linear;
    double gflops;
} unet_graph;

/* Builds the graph and the table; returns 0 or -1 with a reason in err. */
int unet_graph_build(unet_graph *g, const unet_hparams *hp, char *err, size_t errlen);
void unet_graph_free(unet_graph *g);
/* The initial values of table entry i (host memory, numel floats) from the random stream `seed`. */
void unet_init_tensor(const unet_graph *g, size_t i, float *dst, uint64_t seed);
/* The network's info for get_info (the table stays owned by g). */
void unet_graph_info(const unet_graph *g, edm2_network_info *info);
/* The whole initial arena (host memory, arena_floats floats; padding zero). */
void unet_init_params(const unet_graph *g, float *params, uint64_t seed);

#endif
