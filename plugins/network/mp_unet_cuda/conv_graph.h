/* conv_graph.h: one kind of 3x3 convolution (forward, backward data, backward filter) through cuDNN's graph
 * API, for conv_cuda.c's bf16/fp16 plans: an operation graph of the one convolution on NHWC tensors with a
 * KRSC filter (padding 1, float32 accumulation), the engine configurations cuDNN's heuristics offer for it,
 * each finalized into an execution plan. Unlike the legacy API, where an algorithm number is all that is
 * given when a convolution runs, an execution plan is one engine with its settings: the plan that was
 * timed is the plan that runs. The tensors of every kind have the same roles, so one call runs any kind:
 * x[N, H, W, C] (the input, or its gradient for backward data), y[N, H, W, O] (the output, or its gradient
 * for the backward passes) and w[O, 3, 3, C] (the filter, or its gradient for backward filter).
 * A forward convolution may carry an element-wise epilogue in the same graph (cgraph_plans_epi): cuDNN's
 * runtime fusion then applies it to the float32 sums before y is stored (conv_fused.h). */
#ifndef EDM2_CONV_GRAPH_H
#define EDM2_CONV_GRAPH_H

#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { CG_FWD, CG_DATA, CG_FILTER }; /* the kinds, as conv_cuda.c's CALL_FWD, CALL_DATA, CALL_FILTER */

/* The forward convolution's epilogues, on its float32 sums acc[N, H, W, O] (pointwise operations in the
 * graph; b an operand tensor, s0 and s1 scalars given when the plan runs):
 *   CG_EPI_MOD_SILU: y = swish(acc * b) * s0, b[N, O] float32 broadcast over the pixels (the modulation
 *                    c and MP-SiLU's 1 / 0.596);
 *   CG_EPI_SUM:      y = (acc * s0 + b) * s1, b[N, H, W, O] in the data's type (mp_sum's two weights,
 *                    s1 that of b, s0 the ratio of acc's to it);
 *   CG_EPI_SUM_CLIP: the same clamped to [-clip, clip] (a ReLU with both clips). */
enum { CG_EPI_NONE, CG_EPI_MOD_SILU, CG_EPI_SUM, CG_EPI_SUM_CLIP };

typedef struct cgraph_plan {
    cudnnBackendDescriptor_t plan; /* the execution plan; NULL: none */
    int epi;                       /* CG_EPI_*: the epilogue in its graph (which tensors it runs on) */
    int64_t ws;                    /* its workspace bytes */
    int64_t engine;                /* its engine's global index (for the reports) */
    int deterministic;             /* its engine has no nondeterministic note */
    int tensor_core;               /* its engine has the tensor-core note */
    void *owned;                   /* what the plan was made from (conv_graph.c) */
} cgraph_plan;

/* The execution plans that cuDNN's heuristics (mode A, then the fallback list when A offers none that
 * qualifies) offer for the convolution of `kind` with x, y, w of data type dt (CUDNN_DATA_BFLOAT16 or
 * CUDNN_DATA_HALF) and output scale beta (0: overwritten), in the heuristics' order: those that finalize,
 * are deterministic unless any_determinism, and need at most max_ws bytes of workspace; at most max into
 * out. Returns how many (0: none qualifies), or -1 when cuDNN refused the graph itself; `why` then says
 * which call. The caller frees each with cgraph_plan_free. */
int cgraph_plans(cudnnHandle_t h, int kind, int N, int H, int W, int C, int O, cudnnDataType_t dt, float beta,
                 int any_determinism, size_t max_ws, cgraph_plan *out, int max, char *why, size_t whylen);
/* The same for a forward convolution with epilogue `epi` (CG_EPI_*; clip: CG_EPI_SUM_CLIP's bound), beta 0:
 * the plans cuDNN offers for the fused graph (its runtime fusion engines compile them; none where it does
 * not fuse the pattern). */
int cgraph_plans_epi(cudnnHandle_t h, int epi, double clip, int N, int H, int W, int C, int O, cudnnDataType_t dt,
                     int any_determinism, size_t max_ws, cgraph_plan *out, int max, char *why, size_t whylen);
/* Runs plan p on x, y, w (the roles above) with a workspace of at least p->ws bytes, on the handle's
 * stream; for a plan with an epilogue, b is its operand and s[0], s[1] its scalars (CG_EPI_*). */
cudnnStatus_t cgraph_run(cudnnHandle_t h, const cgraph_plan *p, void *x, void *y, void *w, void *ws);
cudnnStatus_t cgraph_run_epi(cudnnHandle_t h, const cgraph_plan *p, void *x, void *y, void *w, void *ws, const void *b,
                             const float s[2]);
void cgraph_plan_free(cgraph_plan *p);

#ifdef __cplusplus
}
#endif
#endif
