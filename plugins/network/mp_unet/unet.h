/* unet.h: the EDM2 U-Net with preconditioning and uncertainty head (docs/formulas.md §3): its module graph, the
 * parameter arena table (reference state_dict names), initialisation, forward and backward. */
#ifndef EDM2_UNET_H
#define EDM2_UNET_H

#include "block.h"
#include "edm2/edm2_network.h"
#include "workspace.h"

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
} unet_hparams;

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

typedef struct unet {
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

    /* Runtime state. */
    float *w_hat, *w_norm, *dw_hat; /* prepared weights, their row norms, their gradient */
    float *pack, *wt, *part;
    size_t pack_floats, wt_floats, part_floats;
    conv_scratch sc;
    workspace fws, bws;
    /* Saved by the last training forward. */
    int saved_N, have_saved;
    uint64_t drop_seed, drop_stream, drop_offset;
    block_saved *saved;
    float **mod_in, **mod_out;
    float *x_in0, *c_out, *fourier, *lab, *e3, *emb, *lv_fourier;
} unet;

/* Builds the graph and the table; returns 0 or -1 with a reason in err. */
int unet_build(unet *u, const unet_hparams *hp, char *err, size_t errlen);
void unet_free(unet *u);
void unet_init_params(const unet *u, float *params, uint64_t seed);
/* Forced weight normalisation of every weight in params (forced_weight_norm.c). */
void unet_normalize_weights(const unet *u, float *params);
/* Returns 0, or -1 when out of memory. */
int unet_forward(unet *u, const edm2_forward_args *a);
int unet_backward(unet *u, const float *params, const float *dD, const float *dlogvar, float *grads);

#endif
