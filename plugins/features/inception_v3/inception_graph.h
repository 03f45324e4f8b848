/* inception_graph.h: the Inception-v3 network of the Fréchet Inception Distance (Szegedy et al., "Rethinking
 * the Inception Architecture for Computer Vision", CVPR 2016), in the form FID uses (Heusel et al., NeurIPS
 * 2017; the port of TensorFlow's 2015-12-05 graph in the pytorch-fid package): its layers and weight table,
 * and its forward pass written once over backend primitives, so that the CPU and CUDA builds run the same
 * graph (docs/fid.md).
 *
 * Every convolution is a "BasicConv2d": convolution without bias, batch normalisation with the stored
 * statistics (eps 0.001), ReLU. Input: images in [0, 1] of any size, bilinearly resized to 299x299
 * (half-pixel centres, no antialiasing), scaled to [-1, 1]. Output: the 2048 channels of Mixed_7c averaged
 * over its 8x8 positions. The blocks' pooling branches follow the FID graph: average pools that exclude the
 * padding (Mixed_5b-d, 6b-e, 7b) and a max pool in Mixed_7c.
 *
 * Activations are channels-last, [N, H, W, C]; a block writes its branches into channel ranges of its
 * output (the concatenation), so views carry a channel offset and the row stride of their tensor. */
#ifndef EDM2_INCEPTION_GRAPH_H
#define EDM2_INCEPTION_GRAPH_H

#include <stddef.h>

#include "edm2/edm2_features.h"

#define INCEPTION_RES 299
#define INCEPTION_DIM 2048
#define INCEPTION_BN_EPS 0.001f
#define INCEPTION_MAX_CONVS 96

/* One BasicConv2d. Weights in the file: NAME.conv.weight [cout, cin, kh, kw], NAME.bn.{weight, bias,
 * running_mean, running_var} [cout]. */
typedef struct incep_conv {
    char name[40];
    int cin, cout, kh, kw, stride, ph, pw;
    int H, W, Ho, Wo; /* input and output sizes (the input is always resized to 299x299) */
    size_t w_off, gamma_off, beta_off, mean_off, var_off; /* arena offsets (floats) */
    size_t prep_w_off, prep_c_off; /* offsets in the prepared form: weights [cout, kh, kw, cin]; alpha, beta [cout] */
} incep_conv;

enum { INCEP_SLOT_A, INCEP_SLOT_B, INCEP_SLOT_T1, INCEP_SLOT_T2, INCEP_SLOTS };

typedef struct incep_graph {
    incep_conv conv[INCEPTION_MAX_CONVS];
    int nconv;
    edm2_param_desc params[5 * INCEPTION_MAX_CONVS];
    char names[5 * INCEPTION_MAX_CONVS][64];
    size_t nparams, arena_floats;
    size_t prep_w_floats, prep_c_floats; /* sizes of the prepared weights and per-channel (alpha, beta) */
    double gflops;                       /* per 299x299 image, multiply-adds x2 */
    size_t slot_floats[INCEP_SLOTS];     /* floats per image each activation buffer needs */
} incep_graph;

/* Fills the conv table, the weight table (arena layout), the prepared sizes and the buffer sizes. */
void incep_graph_build(incep_graph *g);

/* The plugin's info (edm2_features.h) of a built graph, up to info->struct_size. */
void incep_graph_info(const incep_graph *g, edm2_features_info *info);

/* The prepared form, computed on the host from the arena (host memory): weights rearranged tap-major
 * ([cout, kh, kw, cin], the im2col order), and batch normalisation as y = relu(alpha x + beta) with
 * alpha = gamma / sqrt(var + eps), beta = bias - mean alpha (float32, as PyTorch's inference kernel). */
void incep_prepare(const incep_graph *g, const float *arena, float *w, float *alpha_beta);

/* A view of an activation tensor: `slot` (which of the backend's buffers), its spatial size, the channel
 * range [c0, c0 + C) and the row stride ld (channels of the whole tensor). */
typedef struct incep_view {
    int slot, H, W, C, c0, ld;
} incep_view;

typedef enum { INCEP_MAXPOOL_S2, INCEP_AVGPOOL_S1_EXCL_PAD, INCEP_MAXPOOL_S1_PAD1 } incep_pool;

/* What a backend provides; every call works on n images; each returns 0 or -1 (the backend logged why). */
typedef struct incep_backend {
    void *ctx;
    /* out (3 channels, 299x299) = 2 bilinear(images[n, C, H, W]) - 1, grey replicated to RGB. */
    int (*resize)(void *ctx, const float *images, int C, int H, int W, incep_view out);
    int (*conv)(void *ctx, const incep_conv *c, incep_view in, incep_view out);
    int (*pool)(void *ctx, incep_pool kind, incep_view in, incep_view out);
    /* features[n, C] = the mean of `in` over its positions. */
    int (*mean)(void *ctx, incep_view in, float *features);
} incep_backend;

/* The forward pass over n images. */
int incep_forward(const incep_graph *g, const incep_backend *be, const float *images, int C, int H, int W,
                  float *features);
/* Output size of a convolution or pool along one axis. */
static inline int incep_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

#endif
