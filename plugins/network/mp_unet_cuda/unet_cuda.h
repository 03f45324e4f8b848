/* unet_cuda.h: the EDM2 U-Net with preconditioning and uncertainty head on the GPU (docs/formulas.md §3):
 * forward and backward over the module graph and arena table of ../mp_unet/unet_graph.h (the CPU build's),
 * so the two builds share config keys, table and arena layout. All work is queued on the backend's stream.
 * The U-Net body runs at the `precision` key's type (float32: bitwise the CPU's layers; bf16/fp16: tensor
 * cores); the arena, gradients, embedding, preconditioning, the first and the last convolution (a few
 * image channels, which suit no tensor-core algorithm) and the uncertainty head stay float32. */
#ifndef EDM2_UNET_CUDA_H
#define EDM2_UNET_CUDA_H

#include "act_ops.h"
#include "block_cuda.h"
#include "mp_ops_cuda.h"
#include "edm2/edm2_network.h"

/* What a training forward leaves for its backward: host-side pointers into the workspaces, and the dropout
 * draw. A training forward replayed from a CUDA graph restores its copy (pass_graph.c). */
typedef struct unet_record {
    int N;
    uint64_t drop_seed, drop_stream, drop_offset;
    float *x_in0, *out_in;    /* the first and the last convolution's inputs (float32) */
    float *c_out, *fourier, *lab, *e3, *emb, *lv_fourier;
} unet_record;

typedef struct unet_cuda {
    unet_graph g;
    edm2_backend_ops ops;
    gpu_ctx gc;
    /* Device scratch (allocated at the first pass). */
    float *w_hat, *w_norm, *unit_terms; /* prepared weights (float32, at f32_slot), row norms, gain terms */
    size_t *f32_slot;   /* [nweights]: each weight's offset in w_hat: its arena offset in a float32 network; in
                         * bf16/fp16 a compact layout of the weights the float32 layers read (the embeddings,
                         * the first and last convolutions, the uncertainty head), and (size_t)-1 for the
                         * body's, which only w_lp holds */
    size_t f32_floats;  /* w_hat's size */
    float *dw_hat;      /* the prepared weights' gradient, one module's span of the arena at a time (max_span) */
    void *w_lp;         /* bf16/fp16: w_hat in the activations' type, cast once per pass (NULL for float32) */
    size_t max_O, max_weight, max_span;
    size_t nunits;   /* every weight's output units, a row each of: */
    mpc_unit *units; /* device: the forced normalisation's table (made at the first use of either) */
    act_prep_unit *prep; /* bf16/fp16, device: the weight preparation's table */
    gws fws, bws; /* the forward's activations (kept for backward); the backward's pass-long buffers */
    gws bpp[2];   /* the backward's per-module buffers, alternating: module m works in bpp[m % 2] while its
                   * input gradient, from module m + 1, is still in the other. In a forward, which no
                   * backward reads, bpp[0] holds a block's temporaries (gblock_ctx.tmp) and bpp[1] the
                   * concatenated input of a decoder block, while that block runs (the backward recomputes
                   * it from its two parts, module outputs kept anyway). */
    /* Left by the last training forward (have_saved), for the backward. */
    int have_saved;
    unet_record rec;
    gblock_saved *saved;      /* [nmods] */
    void **mod_out;           /* the modules' outputs (the network's type; the decoder's skip inputs) */
    void **dskip;             /* backward: [nmods] the skip connections' gradients, waiting for their encoder module */
} unet_cuda;

/* Builds the graph and takes the backend's handles; 0, or -1 with a reason in err. */
int unet_cuda_build(unet_cuda *u, const unet_hparams *hp, const edm2_backend_ops *backend, char *err, size_t errlen);
void unet_cuda_free(unet_cuda *u);
/* After a pass that ran out of device memory: gives back the passes' workspaces and the products' own
 * workspace, so that a smaller pass has the memory (they grow again as passes need; the CUDA graphs, which hold
 * their addresses, are captured anew). The training forward's record is dropped with them. */
void unet_cuda_release_workspaces(unet_cuda *u);
/* The initial arena (device memory) from `seed`: the CPU build's values, uploaded tensor by tensor. */
int unet_cuda_init_params(unet_cuda *u, float *params, uint64_t seed);
/* Forced weight normalisation of every weight, in place (device memory). */
int unet_cuda_normalize_weights(unet_cuda *u, float *params);
/* Each returns 0, or -1 with a reason in u->gc.err. */
int unet_cuda_forward(unet_cuda *u, const edm2_forward_args *a);
int unet_cuda_backward(unet_cuda *u, const float *params, const float *dD, const float *dlogvar, float *grads);

#endif
