/* gpu_ctx.h: what every part of the CUDA mp_unet works with: the backend's stream and library handles
 * (edm2_backend_native), the precision of the activations, the cuDNN convolution plans, and the first
 * failure as a one-line message. All work is queued on `stream`; nothing runs on the legacy default
 * stream. */
#ifndef EDM2_GPU_CTX_H
#define EDM2_GPU_CTX_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <stddef.h>

#include "act_type.h"
#include "edm2/edm2_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct conv_plan conv_plan;   /* conv_cuda.c */
typedef struct fused_plan fused_plan; /* conv_fused.c */

/* How a bf16/fp16 3x3 convolution's weight gradient is computed: cuDNN's algorithm or products over padded
 * copies, whichever is faster per shape (timed with the algorithms), or always one (EDM2_CUDNN_WGRAD=gemm,
 * =cudnn; with EDM2_CUDNN_ALGO=heuristic, cuDNN). */
enum { WGRAD_TIMED, WGRAD_GEMM, WGRAD_CUDNN };

/* Which cuDNN API a timed bf16/fp16 3x3 convolution may run through (EDM2_CUDNN_API): the legacy API's
 * algorithms (legacy, the default), the graph API's execution plans where cuDNN offers any (graph), or
 * whichever is timed faster (any); conv_cuda.c, conv_graph.h. */
enum { CONV_API_LEGACY, CONV_API_GRAPH, CONV_API_ANY };

/* Whether a bf16/fp16 evaluation forward runs a 3x3 convolution and the element-wise layer after it as one
 * cuDNN graph (EDM2_CUDNN_FUSE, conv_fused.h): never (off, the default), where timed faster than the two
 * apart (timed), or wherever cuDNN fuses them (on). */
enum { FUSE_OFF, FUSE_TIMED, FUSE_ON };

typedef struct gpu_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;   /* pedantic float32 (no TF32), bound to stream */
    int act;               /* ACT_*: activations in float32 (bitwise the CPU's) or bf16/fp16 (tensor cores) */
    cublasHandle_t blas_lp;/* bf16/fp16: our own handle on stream, default math (tensor cores) */
    void *dw_tmp;          /* bf16/fp16: a 3x3 weight's gradient before it is added to the float32 one (the
                            * network's scratch, unet_cuda.c) */
    int time_algos;        /* bf16/fp16: cuDNN algorithms timed (conv_cuda.c); EDM2_CUDNN_ALGO=heuristic: ranked */
    int wgrad;             /* bf16/fp16 3x3 weight gradients (conv_cuda.c): WGRAD_TIMED, or EDM2_CUDNN_WGRAD's */
    int conv_api;          /* CONV_API_*: EDM2_CUDNN_API's; float32 and untimed choices are legacy */
    int fuse;              /* FUSE_*: EDM2_CUDNN_FUSE's; float32 never fuses */
    int deterministic;     /* bf16/fp16: only deterministic cuDNN algorithms (1, the default), or any (0:
                            * EDM2_CUDNN_DETERMINISTIC=0, as PyTorch's cudnn.benchmark without
                            * torch.backends.cudnn.deterministic); float32 is always deterministic */
    cudnnHandle_t dnn;     /* bound to stream */
    void *scratch;         /* the backend's stream-ordered workspace for cuDNN */
    size_t scratch_bytes;
    edm2_backend_ops ops;  /* the backend, for a larger workspace of our own (own, own_bytes) when needed */
    void *own;
    size_t own_bytes;
    unsigned own_epoch;    /* counts the moves of `own` (a CUDA graph holds its address) */
    conv_plan *plans;      /* cuDNN descriptors and algorithms, one per convolution shape */
    char plan_file[1024];  /* bf16/fp16, timed: EDM2_CUDNN_PLANS, the file of chosen plans (plan_file.h), or "" */
    char gpu_key[96];      /* and the GPU in its keys: name and architecture */
    void (*note)(void *arg, const char *msg); /* where each plan's choice is reported (a debug log); or NULL */
    void *note_arg;
    size_t nplans, cap_plans;
    fused_plan *fplans;    /* the fused convolutions' plans, one per shape and epilogue (conv_fused.c) */
    size_t nfplans, cap_fplans;
    char err[320];         /* the first failure of the current call */
    int oom;               /* that failure was device memory running out (gpu_oom) */
} gpu_ctx;

/* Fills the handles from the backend's native table (act: ACT_*); 0, or -1 with a reason in g->err. */
int gpu_ctx_init(gpu_ctx *g, const edm2_backend_ops *backend, int act);
void gpu_ctx_free(gpu_ctx *g);
/* Gives back the products' own workspace (own); the next product that needs it allocates it again. */
void gpu_release_own(gpu_ctx *g);
/* Records "what: why" as the failure (the first one is kept) and returns -1. */
int gpu_fail(gpu_ctx *g, const char *what, const char *why);
/* Records "what: out of device memory" as the failure (the first one is kept; g->oom says so) and returns -1:
 * the caller's batch did not fit (the plugin reports EDM2_ERR_NOMEM, and the host says what to lower). */
int gpu_oom(gpu_ctx *g, const char *what);
/* Forgets the recorded failure (a new call, or a failure recovered from). */
void gpu_clear(gpu_ctx *g);
/* Records "EDM2_CUDNN_PLANS: why" (why: "PATH:LINE: ..." or the like, longer than gpu_fail keeps) as the
 * failure, as gpu_fail, and returns -1. */
int gpu_plans_fail(gpu_ctx *g, const char *why);

/* Checks of library calls: each returns -1 from the enclosing function (after gpu_fail) on failure. */
#define GPU_CUDA(g, call)                                                                                  \
    do {                                                                                                   \
        cudaError_t e_ = (cudaError_t)(call);                                                             \
        if (e_ == cudaErrorMemoryAllocation) return gpu_oom((g), #call);                                   \
        if (e_ != cudaSuccess) return gpu_fail((g), #call, cudaGetErrorString(e_));                        \
    } while (0)
#define GPU_BLAS(g, call)                                                                                  \
    do {                                                                                                   \
        cublasStatus_t s_ = (call);                                                                        \
        if (s_ == CUBLAS_STATUS_ALLOC_FAILED) return gpu_oom((g), #call);                                  \
        if (s_ != CUBLAS_STATUS_SUCCESS) return gpu_fail((g), #call, cublasGetStatusString(s_));           \
    } while (0)
#define GPU_DNN(g, call)                                                                                   \
    do {                                                                                                   \
        cudnnStatus_t s_ = (call);                                                                         \
        if (s_ != CUDNN_STATUS_SUCCESS) return gpu_fail((g), #call, cudnnGetErrorString(s_));              \
    } while (0)

/* A kernel launcher's status (0 or a cudaError_t), or an allocation: on failure the reason is recorded and
 * `on_fail` runs (return NULL, return -1, goto done). */
#define GPU_TRY(g, call, on_fail)                                                                          \
    do {                                                                                                   \
        int e_ = (call);                                                                                   \
        if (e_) {                                                                                          \
            if (e_ == cudaErrorMemoryAllocation) gpu_oom((g), #call);                                      \
            else gpu_fail((g), #call, cudaGetErrorString((cudaError_t)e_));                                \
            on_fail;                                                                                       \
        }                                                                                                  \
    } while (0)
#define GPU_NEED(g, ptr_expr, what, on_fail)                                                               \
    do {                                                                                                   \
        if (!(ptr_expr)) {                                                                                 \
            gpu_oom((g), (what));                                                                          \
            on_fail;                                                                                       \
        }                                                                                                  \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
