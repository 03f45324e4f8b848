/* conv_graph.c: 3x3 convolutions through cuDNN's graph API (conv_graph.h). */
#include "conv_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { UID_X = 1, UID_Y = 2, UID_W = 3 }; /* the tensors' unique ids in every graph and variant pack */
#define MAX_CFGS 16                       /* engine configurations looked at per heuristics mode */

/* What the plans of one graph share, kept until the last of them is freed: the operation graph and what
 * it is made of (whether cuDNN copies them into a plan or refers to them is not documented). */
typedef struct cgraph_ops {
    cudnnBackendDescriptor_t t[3], conv, op, graph; /* t: x, y, w */
    int refs;
} cgraph_ops;

/* What a plan was made from, freed with it (cgraph_plan.owned). */
typedef struct cgraph_owned {
    cudnnBackendDescriptor_t cfg, engine;
    cgraph_ops *ops;
} cgraph_owned;

static void destroy(cudnnBackendDescriptor_t d) {
    if (d) cudnnBackendDestroyDescriptor(d);
}

static void ops_release(cgraph_ops *o) {
    if (!o || --o->refs > 0) return;
    destroy(o->graph), destroy(o->op), destroy(o->conv);
    for (int i = 0; i < 3; i++) destroy(o->t[i]);
    free(o);
}

#define SET(d, name, type, n, ptr) cudnnBackendSetAttribute((d), (name), (type), (n), (ptr))
#define GET(d, name, type, n, count, ptr) cudnnBackendGetAttribute((d), (name), (type), (n), (count), (ptr))
#define DESC CUDNN_TYPE_BACKEND_DESCRIPTOR
#define OK CUDNN_STATUS_SUCCESS

/* A finalized tensor descriptor of logical dimensions (n, c, h, w), laid out channels-last (NHWC; a
 * filter's (k, c, r, s) in KRSC, the same strides); 16-byte aligned (the network's buffers are). */
static cudnnStatus_t make_tensor(cudnnBackendDescriptor_t *d, int64_t uid, cudnnDataType_t dt, int64_t n, int64_t c,
                                 int64_t h, int64_t w) {
    const int64_t dims[4] = {n, c, h, w}, strides[4] = {h * w * c, 1, w * c, c}, align = 16;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_TENSOR_DESCRIPTOR, d);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid);
    if (s == OK) s = SET(*d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align);
    if (s == OK) s = cudnnBackendFinalize(*d);
    return s;
}

/* Cross-correlation with padding 1, stride 1, dilation 1, float32 accumulation. */
static cudnnStatus_t make_conv(cudnnBackendDescriptor_t *d) {
    const int64_t dims = 2, pad[2] = {1, 1}, one[2] = {1, 1};
    const cudnnDataType_t comp = CUDNN_DATA_FLOAT;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, d);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &comp);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, one);
    if (s == OK) s = SET(*d, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, one);
    if (s == OK) s = cudnnBackendFinalize(*d);
    return s;
}

/* Each kind's operation and the attributes of its x, y and w roles, its convolution, alpha and beta. */
static const cudnnBackendDescriptorType_t k_op_type[3] = {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                                         CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                                         CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR};
static const cudnnBackendAttributeName_t k_op_attr[3][6] = {
    {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA},
    {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA},
    {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
     CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA}};

/* The operation graph of one convolution of `kind`; *step: the call that failed. */
static cudnnStatus_t make_ops(cudnnHandle_t h, cgraph_ops *o, int kind, int N, int H, int W, int C, int O,
                              cudnnDataType_t dt, float beta, const char **step) {
    const float alpha = 1.0f;
    cudnnStatus_t s;
    *step = "tensor descriptors";
    s = make_tensor(&o->t[0], UID_X, dt, N, C, H, W);
    if (s == OK) s = make_tensor(&o->t[1], UID_Y, dt, N, O, H, W);
    if (s == OK) s = make_tensor(&o->t[2], UID_W, dt, O, C, 3, 3);
    if (s != OK) return s;
    *step = "convolution descriptor";
    if ((s = make_conv(&o->conv)) != OK) return s;
    *step = "operation";
    const cudnnBackendAttributeName_t *a = k_op_attr[kind];
    s = cudnnBackendCreateDescriptor(k_op_type[kind], &o->op);
    for (int i = 0; i < 3 && s == OK; i++) s = SET(o->op, a[i], DESC, 1, &o->t[i]);
    if (s == OK) s = SET(o->op, a[3], DESC, 1, &o->conv);
    if (s == OK) s = SET(o->op, a[4], CUDNN_TYPE_FLOAT, 1, &alpha);
    if (s == OK) s = SET(o->op, a[5], CUDNN_TYPE_FLOAT, 1, &beta);
    if (s == OK) s = cudnnBackendFinalize(o->op);
    if (s != OK) return s;
    *step = "operation graph";
    s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, &o->graph);
    if (s == OK) s = SET(o->graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, DESC, 1, &o->op);
    if (s == OK) s = SET(o->graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    if (s == OK) s = cudnnBackendFinalize(o->graph);
    return s;
}

/* Engine configuration cfg as an execution plan into *p when it finalizes and qualifies (deterministic
 * unless any_determinism, at most max_ws of workspace): 1; 0 when not (cfg is then destroyed). An engine
 * whose notes cannot be read counts as nondeterministic; its global index is only reported (-1: unknown). */
static int plan_of(cudnnHandle_t h, cudnnBackendDescriptor_t cfg, cgraph_ops *o, int any_determinism, size_t max_ws,
                   cgraph_plan *p) {
    cgraph_owned *own = calloc(1, sizeof *own);
    cudnnBackendDescriptor_t plan = NULL, engine = NULL;
    cudnnBackendNumericalNote_t notes[CUDNN_NUMERICAL_NOTE_TYPE_COUNT];
    int64_t n = 0, nnotes = -1, ws = 0, index = -1;
    int ok = own && cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) == OK &&
             GET(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, DESC, 1, &n, &engine) == OK;
    if (ok && GET(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, CUDNN_NUMERICAL_NOTE_TYPE_COUNT,
                  &nnotes, notes) != OK)
        nnotes = -1;
    if (ok && GET(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index) != OK)
        index = -1;
    int deterministic = nnotes >= 0, tensor_core = 0;
    for (int64_t i = 0; i < nnotes && i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) {
        if (notes[i] == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC) deterministic = 0;
        if (notes[i] == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) tensor_core = 1;
    }
    ok = ok && (deterministic || any_determinism) &&
         cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &plan) == OK &&
         SET(plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h) == OK &&
         SET(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, DESC, 1, &cfg) == OK &&
         cudnnBackendFinalize(plan) == OK &&
         GET(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws) == OK &&
         ws >= 0 && (size_t)ws <= max_ws;
    if (!ok) {
        destroy(plan), destroy(engine), destroy(cfg);
        free(own);
        return 0;
    }
    own->cfg = cfg, own->engine = engine, own->ops = o;
    o->refs++;
    *p = (cgraph_plan){plan, ws, index, deterministic, tensor_core, own};
    return 1;
}

/* The plans of heuristics mode `mode` into out[*n, max) (plan_of); 0, or the failing status. */
static cudnnStatus_t from_heuristics(cudnnHandle_t h, cgraph_ops *o, cudnnBackendHeurMode_t mode, int any_determinism,
                                     size_t max_ws, cgraph_plan *out, int *n, int max) {
    cudnnBackendDescriptor_t heur = NULL, cfg[MAX_CFGS] = {NULL};
    int64_t count = 0;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur);
    if (s == OK) s = SET(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, DESC, 1, &o->graph);
    if (s == OK) s = SET(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (s == OK) s = cudnnBackendFinalize(heur);
    if (s == OK) s = GET(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, DESC, 0, &count, NULL);
    if (count > MAX_CFGS) count = MAX_CFGS;
    for (int64_t i = 0; i < count && s == OK; i++)
        s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &cfg[i]);
    if (s == OK && count > 0)
        s = GET(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, DESC, count, &count, cfg);
    for (int64_t i = 0; i < count; i++) { /* each cfg kept by its plan, or destroyed (by plan_of when it fails) */
        if (s != OK || *n >= max) destroy(cfg[i]);
        else if (plan_of(h, cfg[i], o, any_determinism, max_ws, &out[*n])) ++*n;
    }
    destroy(heur);
    return s;
}

int cgraph_plans(cudnnHandle_t h, int kind, int N, int H, int W, int C, int O, cudnnDataType_t dt, float beta,
                 int any_determinism, size_t max_ws, cgraph_plan *out, int max, char *why, size_t whylen) {
    cgraph_ops *o = calloc(1, sizeof *o);
    const char *step = "out of host memory";
    int n = 0;
    cudnnStatus_t s = o ? make_ops(h, o, kind, N, H, W, C, O, dt, beta, &step)
                        : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    if (o) o->refs = 1; /* ours until the plans are made */
    if (s == OK) {
        step = "heuristics, mode A";
        s = from_heuristics(h, o, CUDNN_HEUR_MODE_A, any_determinism, max_ws, out, &n, max);
    }
    if (s == OK && n == 0) {
        step = "heuristics, fallback";
        s = from_heuristics(h, o, CUDNN_HEUR_MODE_FALLBACK, any_determinism, max_ws, out, &n, max);
    }
    ops_release(o);
    if (s != OK) {
        snprintf(why, whylen, "%s: %s", step, cudnnGetErrorString(s));
        for (int i = 0; i < n; i++) cgraph_plan_free(&out[i]);
        return -1;
    }
    return n;
}

cudnnStatus_t cgraph_run(cudnnHandle_t h, const cgraph_plan *p, void *x, void *y, void *w, void *ws) {
    void *ptrs[3] = {x, y, w};
    const int64_t uids[3] = {UID_X, UID_Y, UID_W};
    cudnnBackendDescriptor_t vp = NULL;
    cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp);
    if (s == OK) s = SET(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptrs);
    if (s == OK) s = SET(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uids);
    if (s == OK) s = SET(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (s == OK) s = cudnnBackendFinalize(vp);
    if (s == OK) s = cudnnBackendExecute(h, p->plan, vp);
    destroy(vp);
    return s;
}

void cgraph_plan_free(cgraph_plan *p) {
    cgraph_owned *own = p->owned;
    destroy(p->plan);
    if (own) {
        destroy(own->cfg), destroy(own->engine);
        ops_release(own->ops);
        free(own);
    }
    memset(p, 0, sizeof *p);
}
