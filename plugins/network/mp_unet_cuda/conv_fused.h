/* conv_fused.h: a bf16/fp16 evaluation forward's 3x3 convolution and the element-wise layer after it as one
 * cuDNN graph (conv_graph.h's epilogues, compiled by cuDNN's runtime fusion engines), so that the
 * convolution's output is never stored and read back (docs/cuda-network.md, Fused epilogues):
 *   conv_res0 with the modulation and MP-SiLU: y = mp_silu(conv(x) c[n, o]);
 *   conv_res1 with the residual MP sum and clip: y = clip(mp_sum(z, conv(x), t), clip).
 * EDM2_CUDNN_FUSE chooses: off (the default), timed (fused where the fused plan is timed faster than the
 * convolution and the layer's kernel), on (fused wherever cuDNN fuses the pattern). The choice is made once
 * per shape and epilogue, reported as a debug line, and not kept in EDM2_CUDNN_PLANS's file. Training
 * forwards never fuse: their backward needs the convolution's output (and the clip's bits). */
#ifndef EDM2_CONV_FUSED_H
#define EDM2_CONV_FUSED_H

#include "conv_graph.h"
#include "gpu_ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The layer after a 3x3 convolution, fused into it. */
typedef struct conv_epilogue {
    int kind;       /* CG_EPI_MOD_SILU, or CG_EPI_SUM (clamped where clip > 0) */
    const float *c; /* MOD_SILU: the modulation c[N, O], float32 */
    const void *z;  /* SUM: mp_sum's first input z[N, H, W, O], in the activations' type */
    float t, clip;  /* SUM: mp_sum(z, conv, t)'s t in (0, 1), and the clip's bound (0: none) */
} conv_epilogue;

/* y[N, H, W, O] = epilogue e of the 3x3 convolution of x[N, H, W, C] with w_hat[O, 3, 3, C] (activations'
 * type). 0: done, as one fused graph; 1: not fused (EDM2_CUDNN_FUSE off, float32, or no fused plan chosen
 * for this shape): the caller runs the two apart (conv_epilogue_apart); -1: failed (g->err). */
int conv_fused_forward(gpu_ctx *g, void *y, const void *x, const void *w_hat, int N, int H, int W, int C, int O,
                       const conv_epilogue *e);
/* The same two apart, as an unfused forward runs them: tmp = the convolution (its output, kept where the caller
 * needs it), then the layer's kernel into y; the sum's clip writes its bits into keep where not NULL (a training
 * forward's, for the backward). 0 or -1 (g->err). */
int conv_epilogue_apart(gpu_ctx *g, void *y, void *tmp, unsigned char *keep, const void *x, const void *w_hat, int N,
                        int H, int W, int C, int O, const conv_epilogue *e);
/* Frees every fused plan (gpu_ctx_free). */
void conv_fused_free(gpu_ctx *g);

#ifdef __cplusplus
}
#endif
#endif
