/* cudnn_emu.cpp: the cuDNN calls of the project on host memory, for the emulated tests (README.md here):
 * 4-d tensor, filter and 2-d convolution descriptors, the algorithm queries (two algorithms of each kind
 * offered, with the descriptor's math type and no workspace; the workspace queries of any other say it is
 * not supported), the library's version, and the three convolutions
 * as float32 products through OpenBLAS (im2col), stored in the tensors' type, y = alpha conv + beta y (y
 * not read when beta = 0), after cuDNN's shape checks. Queued on the handle's stream. The graph API's
 * descriptors, heuristics and execution for one convolution per graph, with or without an epilogue (at the
 * end). */
#include <cblas.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cuda_emu.h"

struct cudnnContext {
    cudaStream_t stream;
};
struct cudnnTensorStruct {
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int n, c, h, w;
};
struct cudnnFilterStruct {
    cudnnTensorFormat_t format;
    cudnnDataType_t type;
    int k, c, r, s;
};
struct cudnnConvolutionStruct {
    int ph, pw, u, v, dh, dw;
    cudnnConvolutionMode_t mode;
    cudnnDataType_t compute;
    cudnnMathType_t math;
};

namespace {
/* A descriptor's life: made with its defaults, deleted; a 4-d layout (a tensor's n, c, h, w or a filter's
 * k, c, r, s) set with cuDNN's checks. */
template <typename D> cudnnStatus_t make_desc(D **d, D init = D{}) {
    *d = new D(init);
    return CUDNN_STATUS_SUCCESS;
}
template <typename D> cudnnStatus_t free_desc(D *d) {
    delete d;
    return CUDNN_STATUS_SUCCESS;
}
template <typename D> cudnnStatus_t set_4d(D *d, cudnnTensorFormat_t f, cudnnDataType_t t, int a, int b, int c, int e) {
    if (a <= 0 || b <= 0 || c <= 0 || e <= 0 || (f != CUDNN_TENSOR_NHWC && f != CUDNN_TENSOR_NCHW)) return CUDNN_STATUS_BAD_PARAM;
    *d = {f, t, a, b, c, e};
    return CUDNN_STATUS_SUCCESS;
}
EmuType emu(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT ? EMU_F32 : t == CUDNN_DATA_BFLOAT16 ? EMU_BF16 : EMU_F16; }
float load(cudnnDataType_t t, const void *p, size_t i) { return emu_load(emu(t), p, i); }
void store(cudnnDataType_t t, void *p, size_t i, float v) { emu_store(emu(t), p, i, v); }
size_t at(const cudnnTensorStruct &t, int n, int c, int h, int w) {
    return t.format == CUDNN_TENSOR_NHWC ? (((size_t)n * t.h + h) * t.w + w) * t.c + c
                                         : (((size_t)n * t.c + c) * t.h + h) * t.w + w;
}
/* Filter element (k, c, r, s), r and s flipped for CUDNN_CONVOLUTION. */
size_t at(const cudnnFilterStruct &f, const cudnnConvolutionStruct &cv, int k, int c, int r, int s) {
    if (cv.mode == CUDNN_CONVOLUTION) r = f.r - 1 - r, s = f.s - 1 - s;
    return f.format == CUDNN_TENSOR_NHWC ? (((size_t)k * f.r + r) * f.s + s) * f.c + c
                                         : (((size_t)k * f.c + c) * f.r + r) * f.s + s;
}
size_t count(const cudnnTensorStruct &t) { return (size_t)t.n * t.c * t.h * t.w; }
size_t count(const cudnnFilterStruct &f) { return (size_t)f.k * f.c * f.r * f.s; }

/* cuDNN's checks: the output shape of x under the filter and convolution, and one data type (of the three
 * emulated) with float32 accumulation. */
bool shapes_ok(const cudnnTensorStruct &x, const cudnnFilterStruct &f, const cudnnConvolutionStruct &cv,
               const cudnnTensorStruct &y) {
    const int ho = (x.h + 2 * cv.ph - ((f.r - 1) * cv.dh + 1)) / cv.u + 1;
    const int wo = (x.w + 2 * cv.pw - ((f.s - 1) * cv.dw + 1)) / cv.v + 1;
    const bool typed = x.type == CUDNN_DATA_FLOAT || x.type == CUDNN_DATA_BFLOAT16 || x.type == CUDNN_DATA_HALF;
    return x.n == y.n && x.c == f.c && y.c == f.k && y.h == ho && y.w == wo && typed && x.type == f.type &&
           y.type == x.type && cv.compute == CUDNN_DATA_FLOAT;
}

/* The filter as a matrix wm[K, Q], Q = R S C taps in (r, s, c) order (flipped for CUDNN_CONVOLUTION). */
std::vector<float> filter_matrix(const cudnnFilterStruct &f, const cudnnConvolutionStruct &cv, const void *w) {
    const size_t Q = (size_t)f.r * f.s * f.c;
    std::vector<float> wm(f.k * Q);
    for (int k = 0; k < f.k; k++)
        for (int r = 0; r < f.r; r++)
            for (int s = 0; s < f.s; s++)
                for (int c = 0; c < f.c; c++) wm[k * Q + ((size_t)r * f.s + s) * f.c + c] = load(f.type, w, at(f, cv, k, c, r, s));
    return wm;
}

/* The distance between a tensor's channels c and c + 1 (of one pixel). */
size_t cstride(const cudnnTensorStruct &t) { return t.format == CUDNN_TENSOR_NHWC ? 1 : (size_t)t.h * t.w; }

/* For each output pixel p and filter tap (r, s), where channel 0 of the input pixel under it lies in image 0
 * of x (-1: padding), [P, R S]; channel c lies c cstride(x) further on, image n's n C H W further on. */
std::vector<long> taps(const cudnnTensorStruct &x, const cudnnFilterStruct &f, const cudnnConvolutionStruct &cv,
                       const cudnnTensorStruct &y) {
    std::vector<long> t((size_t)y.h * y.w * f.r * f.s);
    for (int ho = 0; ho < y.h; ho++)
        for (int wo = 0; wo < y.w; wo++)
            for (int r = 0; r < f.r; r++)
                for (int s = 0; s < f.s; s++) {
                    const int hi = ho * cv.u - cv.ph + r * cv.dh, wi = wo * cv.v - cv.pw + s * cv.dw;
                    const bool in = hi >= 0 && hi < x.h && wi >= 0 && wi < x.w;
                    t[((size_t)ho * y.w + wo) * f.r * f.s + (size_t)r * f.s + s] = in ? (long)at(x, 0, 0, hi, wi) : -1;
                }
    return t;
}

/* v = a tensor's n elements as float32 (v reused: its capacity kept from call to call). */
void widen_into(std::vector<float> &v, cudnnDataType_t type, const void *p, size_t n) {
    v.resize(n);
    for (size_t i = 0; i < n; i++) v[i] = load(type, p, i);
}

/* m[P, K] = image n of y (float32 values yf, layout of y): the same bytes in NHWC. */
const float *image_matrix(const cudnnTensorStruct &y, int n, const std::vector<float> &yf, std::vector<float> &m) {
    const size_t P = (size_t)y.h * y.w, image = (size_t)n * y.c * P;
    if (y.format == CUDNN_TENSOR_NHWC) return yf.data() + image;
    m.resize(P * y.c);
    for (size_t p = 0; p < P; p++)
        for (int k = 0; k < y.c; k++) m[p * y.c + k] = yf[image + (size_t)k * P + p];
    return m.data();
}
/* out[i] = alpha acc[i] + beta out[i] (out not read when beta = 0). */
void blend(cudnnDataType_t t, void *out, const std::vector<float> &acc, float alpha, float beta) {
    for (size_t i = 0; i < acc.size(); i++) store(t, out, i, alpha * acc[i] + (beta != 0 ? beta * load(t, out, i) : 0.0f));
}

/* The buffers of convolve()'s work, kept from call to call (their blocks reused: fresh large blocks cost page
 * faults at every call). One piece of queued work runs at a time (emu_enqueue), so one set serves. */
struct ConvScratch {
    std::vector<float> wm, xf, yf, dy, col, prod, acc, dwm;
};
ConvScratch conv_scratch;

/* One of the three convolutions into conv_scratch.acc (float32, in the layout of its output): y = conv(x,
 * w) (OUT_Y: forward), x (OUT_X: backward data, from y = dy) or w (OUT_W: backward filter). Runs on the
 * queue (emu_enqueue). */
enum Out { OUT_Y, OUT_X, OUT_W };
void conv_compute(Out out, const cudnnTensorStruct &X, const void *x, const cudnnFilterStruct &F, const void *w,
                  const cudnnConvolutionStruct &CV, const cudnnTensorStruct &Y, const void *y) {
    /* per image: the taps as col[P, Q] (Q = R S C in (r, s, c) order); y_n = col wm^T; dcol = dy_n wm, added
     * back where each tap came from; dwm += dy_n^T col (float32 products through OpenBLAS) */
    ConvScratch &z = conv_scratch;
    const int P = Y.h * Y.w, RS = F.r * F.s, C = F.c, Q = RS * C, K = F.k;
    const size_t xc = cstride(X), ximage = (size_t)X.c * X.h * X.w;
    if (out != OUT_W) z.wm = filter_matrix(F, CV, w);
    z.acc.assign(out == OUT_Y ? count(Y) : out == OUT_X ? count(X) : count(F), 0.0f);
    z.col.resize((size_t)P * Q), z.prod.resize((size_t)P * (out == OUT_Y ? K : Q));
    if (out == OUT_W) z.dwm.assign((size_t)K * Q, 0.0f);
    const std::vector<long> t = taps(X, F, CV, Y);
    if (out != OUT_X) widen_into(z.xf, X.type, x, count(X));
    if (out != OUT_Y) widen_into(z.yf, Y.type, y, count(Y));
    for (int n = 0; n < Y.n; n++) {
        const size_t xn = (size_t)n * ximage; /* image n's first element in x */
        if (out != OUT_X)
            for (size_t i = 0; i < t.size(); i++) { /* a tap's C channels */
                float *dst_c = &z.col[i * C];
                if (t[i] < 0) std::fill(dst_c, dst_c + C, 0.0f);
                else if (xc == 1) std::copy_n(&z.xf[xn + (size_t)t[i]], C, dst_c);
                else for (int c = 0; c < C; c++) dst_c[c] = z.xf[xn + (size_t)t[i] + c * xc];
            }
        if (out == OUT_Y) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, P, K, Q, 1.0f, z.col.data(), Q, z.wm.data(), Q, 0.0f,
                        z.prod.data(), K);
            const size_t yc = cstride(Y), yn = (size_t)n * K * P;
            for (size_t p = 0; p < (size_t)P; p++)
                for (int k = 0; k < K; k++)
                    z.acc[yn + (Y.format == CUDNN_TENSOR_NHWC ? p * K + k : k * yc + p)] = z.prod[p * K + k];
        } else if (out == OUT_X) {
            const float *dy = image_matrix(Y, n, z.yf, z.dy);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, P, Q, K, 1.0f, dy, K, z.wm.data(), Q, 0.0f,
                        z.prod.data(), Q);
            for (size_t i = 0; i < t.size(); i++) /* in the order (p, r, s, c) */
                if (t[i] >= 0)
                    for (int c = 0; c < C; c++) z.acc[xn + (size_t)t[i] + c * xc] += z.prod[i * C + c];
        } else {
            const float *dy = image_matrix(Y, n, z.yf, z.dy);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, Q, P, 1.0f, dy, K, z.col.data(), Q, 1.0f,
                        z.dwm.data(), Q);
        }
    }
    if (out == OUT_W)
        for (int k = 0; k < K; k++)
            for (int r = 0; r < F.r; r++)
                for (int s = 0; s < F.s; s++)
                    for (int c = 0; c < F.c; c++)
                        z.acc[at(F, CV, k, c, r, s)] = z.dwm[(size_t)k * Q + ((size_t)r * F.s + s) * F.c + c];
}

/* One of the three convolutions (conv_compute), queued, its output `out` blended into dst. */
cudnnStatus_t convolve(cudnnHandle_t h, Out out, const void *alpha, const void *beta, const cudnnTensorStruct *xd,
                       const void *x, const cudnnFilterStruct *fd, const void *w, const cudnnConvolutionStruct *cd,
                       const cudnnTensorStruct *yd, const void *y, void *dst) {
    if (!shapes_ok(*xd, *fd, *cd, *yd)) return CUDNN_STATUS_BAD_PARAM;
    const cudnnTensorStruct X = *xd, Y = *yd;
    const cudnnFilterStruct F = *fd;
    const cudnnConvolutionStruct CV = *cd;
    const float a = *(const float *)alpha, b = *(const float *)beta;
    emu_enqueue(h->stream, [=]() {
        conv_compute(out, X, x, F, w, CV, Y, y);
        blend(out == OUT_Y ? Y.type : out == OUT_X ? X.type : F.type, dst, conv_scratch.acc, a, b);
    });
    return CUDNN_STATUS_SUCCESS;
}

/* The emulated heuristics and Find: every algorithm of the list, each as fast as the next (times 1, 2, ...);
 * the first `nondet` of them nondeterministic, as cuDNN's algorithm 0 of the backward passes is. */
template <typename Perf, typename Algo> void offer(Perf *perf, int requested, int *returned, const Algo *algos, int n,
                                                  int nondet, cudnnMathType_t math) {
    *returned = 0;
    for (int i = 0; i < n && i < requested; i++) {
        Perf p = {};
        p.algo = algos[i], p.status = CUDNN_STATUS_SUCCESS, p.time = 1.0f + i, p.memory = 0;
        p.determinism = i < nondet ? CUDNN_NON_DETERMINISTIC : CUDNN_DETERMINISTIC, p.mathType = math;
        perf[(*returned)++] = p;
    }
}
const cudnnConvolutionFwdAlgo_t k_fwd[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                           CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM};
const cudnnConvolutionBwdDataAlgo_t k_data[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_0, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1};
const cudnnConvolutionBwdFilterAlgo_t k_filter[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0,
                                                    CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};
/* Whether the list offers algorithm a: the workspace queries of any other say it is not supported, as
 * cuDNN's do for an algorithm that cannot run the shape. */
template <typename Algo, size_t n> bool offered(const Algo (&algos)[n], Algo a) {
    for (size_t i = 0; i < n; i++)
        if (algos[i] == a) return true;
    return false;
}
} // namespace

extern "C" {
cudnnStatus_t cudnnCreate(cudnnHandle_t *h) {
    *h = new cudnnContext{nullptr};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroy(cudnnHandle_t h) {
    delete h;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s) {
    h->stream = s;
    return CUDNN_STATUS_SUCCESS;
}
const char *cudnnGetErrorString(cudnnStatus_t s) {
    return s == CUDNN_STATUS_SUCCESS         ? "success"
           : s == CUDNN_STATUS_NOT_SUPPORTED ? "not supported (emulation)"
                                             : "cuDNN error (emulation)";
}
size_t cudnnGetVersion(void) { return CUDNN_VERSION; }

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *d) { return make_desc(d); }
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) { return free_desc(d); }
cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t f, cudnnDataType_t t, int n, int c,
                                         int h, int w) {
    return set_4d(d, f, t, n, c, h, w);
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *d) { return make_desc(d); }
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) { return free_desc(d); }
cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t t, cudnnTensorFormat_t f, int k, int c,
                                         int r, int s) {
    return set_4d(d, f, t, k, c, r, s);
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t *d) {
    return make_desc(d, cudnnConvolutionStruct{0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT, CUDNN_DEFAULT_MATH});
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) { return free_desc(d); }
cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int ph, int pw, int u, int v, int dh, int dw,
                                              cudnnConvolutionMode_t mode, cudnnDataType_t compute) {
    if (ph < 0 || pw < 0 || u <= 0 || v <= 0 || dh <= 0 || dw <= 0) return CUDNN_STATUS_BAD_PARAM;
    *d = {ph, pw, u, v, dh, dw, mode, compute, d->math};
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t m) {
    d->math = m;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                     const cudnnFilterDescriptor_t f, const cudnnConvolutionDescriptor_t cv,
                                                     const cudnnTensorDescriptor_t y, const int requested, int *returned,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf) {
    if (!shapes_ok(*x, *f, *cv, *y)) return CUDNN_STATUS_BAD_PARAM;
    offer(perf, requested, returned, k_fwd, 2, 0, cv->math);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataAlgorithm_v7(cudnnHandle_t, const cudnnFilterDescriptor_t f,
                                                          const cudnnTensorDescriptor_t dy,
                                                          const cudnnConvolutionDescriptor_t cv,
                                                          const cudnnTensorDescriptor_t dx, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
    if (!shapes_ok(*dx, *f, *cv, *dy)) return CUDNN_STATUS_BAD_PARAM;
    offer(perf, requested, returned, k_data, 2, 1, cv->math);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterAlgorithm_v7(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                            const cudnnTensorDescriptor_t dy,
                                                            const cudnnConvolutionDescriptor_t cv,
                                                            const cudnnFilterDescriptor_t f, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
    if (!shapes_ok(*x, *f, *cv, *dy)) return CUDNN_STATUS_BAD_PARAM;
    offer(perf, requested, returned, k_filter, 2, 1, cv->math);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t x, const void *,
                                                     const cudnnFilterDescriptor_t f, const void *,
                                                     const cudnnConvolutionDescriptor_t cv, const cudnnTensorDescriptor_t y,
                                                     void *, const int requested, int *returned,
                                                     cudnnConvolutionFwdAlgoPerf_t *perf, void *, size_t) {
    return cudnnGetConvolutionForwardAlgorithm_v7(h, x, f, cv, y, requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t h, const cudnnFilterDescriptor_t f, const void *,
                                                          const cudnnTensorDescriptor_t dy, const void *,
                                                          const cudnnConvolutionDescriptor_t cv,
                                                          const cudnnTensorDescriptor_t dx, void *, const int requested,
                                                          int *returned, cudnnConvolutionBwdDataAlgoPerf_t *perf, void *,
                                                          size_t) {
    return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, f, dy, cv, dx, requested, returned, perf);
}
cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t h, const cudnnTensorDescriptor_t x, const void *,
                                                            const cudnnTensorDescriptor_t dy, const void *,
                                                            const cudnnConvolutionDescriptor_t cv,
                                                            const cudnnFilterDescriptor_t f, void *, const int requested,
                                                            int *returned, cudnnConvolutionBwdFilterAlgoPerf_t *perf,
                                                            void *, size_t) {
    return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, x, dy, cv, f, requested, returned, perf);
}
cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t f, const cudnnConvolutionDescriptor_t cv,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t *bytes) {
    *bytes = 0;
    if (!offered(k_fwd, algo)) return CUDNN_STATUS_NOT_SUPPORTED;
    return shapes_ok(*x, *f, *cv, *y) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}
cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t, const cudnnFilterDescriptor_t f,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t cv,
                                                           const cudnnTensorDescriptor_t dx, cudnnConvolutionBwdDataAlgo_t algo,
                                                           size_t *bytes) {
    *bytes = 0;
    if (!offered(k_data, algo)) return CUDNN_STATUS_NOT_SUPPORTED;
    return shapes_ok(*dx, *f, *cv, *dy) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}
cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t cv,
                                                             const cudnnFilterDescriptor_t f,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t *bytes) {
    *bytes = 0;
    if (!offered(k_filter, algo)) return CUDNN_STATUS_NOT_SUPPORTED;
    return shapes_ok(*x, *f, *cv, *dy) ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_BAD_PARAM;
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd, const void *x,
                                      const cudnnFilterDescriptor_t fd, const void *w, const cudnnConvolutionDescriptor_t cd,
                                      cudnnConvolutionFwdAlgo_t, void *, size_t, const void *beta,
                                      const cudnnTensorDescriptor_t yd, void *y) {
    return convolve(h, OUT_Y, alpha, beta, xd, x, fd, w, cd, yd, y, y);
}
cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t h, const void *alpha, const cudnnFilterDescriptor_t fd,
                                           const void *w, const cudnnTensorDescriptor_t dyd, const void *dy,
                                           const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdDataAlgo_t, void *,
                                           size_t, const void *beta, const cudnnTensorDescriptor_t dxd, void *dx) {
    return convolve(h, OUT_X, alpha, beta, dxd, dx, fd, w, cd, dyd, dy, dx);
}
cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t h, const void *alpha, const cudnnTensorDescriptor_t xd,
                                             const void *x, const cudnnTensorDescriptor_t dyd, const void *dy,
                                             const cudnnConvolutionDescriptor_t cd, cudnnConvolutionBwdFilterAlgo_t, void *,
                                             size_t, const void *beta, const cudnnFilterDescriptor_t fd, void *dw) {
    return convolve(h, OUT_W, alpha, beta, xd, x, fd, dw, cd, dyd, dy, dw);
}
}

/* ---- the graph API, as far as conv_graph.c uses it ----
 * A descriptor is its type and its attributes (their bytes, by name); an attribute holding descriptors
 * holds snapshots of them (as cuDNN copies what it is given). Finalizing checks what each type needs; the
 * heuristics offer two engine configurations for a convolution graph (engine 0 with the nondeterministic
 * note for the backward kinds, as cuDNN's split reductions are, and engine 1 deterministic; both with the
 * tensor-core note for bf16/fp16), each a plan without workspace; executing a plan runs the graph's one
 * convolution through convolve() above, on the variant pack's pointers by unique id. A forward convolution
 * may carry an epilogue of pointwise operations (multiply, add, swish, clipped ReLU; operands broadcast or
 * scalars by value), applied in float32 to its sums before the output is stored, as cuDNN's runtime fusion
 * engines do; EDM2_EMU_NO_FUSION=1 makes the heuristics offer no engine for such a graph, as a cuDNN that
 * does not fuse the pattern. */
#include <map>
#include <memory>
#include <string>

namespace {
struct BackendDesc {
    cudnnBackendDescriptorType_t type;
    bool finalized = false;
    std::map<int, std::string> bytes;                               /* attribute -> its elements' bytes */
    std::map<int, std::vector<std::shared_ptr<BackendDesc>>> descs; /* attribute -> descriptors */
    std::vector<std::shared_ptr<BackendDesc>> results;              /* a heuristics descriptor's configurations */
};
size_t elem_size(cudnnBackendAttributeType_t t) {
    switch (t) {
    case CUDNN_TYPE_HANDLE: case CUDNN_TYPE_VOID_PTR: case CUDNN_TYPE_BACKEND_DESCRIPTOR: return sizeof(void *);
    case CUDNN_TYPE_INT64: case CUDNN_TYPE_DOUBLE: return 8;
    case CUDNN_TYPE_FLOAT: return 4;
    case CUDNN_TYPE_BOOLEAN: return sizeof(bool);
    default: return sizeof(int); /* the enumerations */
    }
}
BackendDesc *bd(cudnnBackendDescriptor_t d) { return (BackendDesc *)d; }
bool has(const BackendDesc *d, int a) { return d->bytes.count(a) || d->descs.count(a); }
template <typename T> T get1(const BackendDesc *d, int a) {
    T v{};
    auto it = d->bytes.find(a);
    if (it != d->bytes.end() && it->second.size() >= sizeof v) memcpy(&v, it->second.data(), sizeof v);
    return v;
}
std::vector<int64_t> get_i64(const BackendDesc *d, int a) {
    auto it = d->bytes.find(a);
    std::vector<int64_t> v;
    if (it != d->bytes.end()) v.resize(it->second.size() / 8), memcpy(v.data(), it->second.data(), v.size() * 8);
    return v;
}
std::shared_ptr<BackendDesc> child(const BackendDesc *d, int a) {
    auto it = d->descs.find(a);
    return it == d->descs.end() || it->second.empty() ? nullptr : it->second[0];
}

/* A convolution operation's roles (x, y, w), its convolution, alpha, beta, and which convolve() output. */
struct ConvRoles {
    int x, y, w, conv, alpha, beta;
    Out out;
};
bool roles_of(cudnnBackendDescriptorType_t t, ConvRoles *r) {
    if (t == CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR)
        *r = {CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, OUT_Y};
    else if (t == CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR)
        *r = {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, OUT_X};
    else if (t == CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR)
        *r = {CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
              CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
              OUT_W};
    else
        return false;
    return true;
}

/* A tensor descriptor as the legacy structs: 4-d, channels-last when its channel stride is 1. */
bool as_tensor(const BackendDesc *t, cudnnTensorStruct *x) {
    const std::vector<int64_t> d = get_i64(t, CUDNN_ATTR_TENSOR_DIMENSIONS), s = get_i64(t, CUDNN_ATTR_TENSOR_STRIDES);
    if (d.size() != 4 || s.size() != 4) return false;
    const bool nhwc = s[1] == 1 && s[3] == d[1] && s[2] == d[3] * d[1] && s[0] == d[2] * d[3] * d[1];
    const bool nchw = s[3] == 1 && s[2] == d[3] && s[1] == d[2] * d[3] && s[0] == d[1] * d[2] * d[3];
    if (!nhwc && !nchw) return false;
    *x = {nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW, get1<cudnnDataType_t>(t, CUDNN_ATTR_TENSOR_DATA_TYPE),
          (int)d[0], (int)d[1], (int)d[2], (int)d[3]};
    return true;
}
bool as_conv(const BackendDesc *c, cudnnConvolutionStruct *cv) {
    const std::vector<int64_t> pre = get_i64(c, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS),
                               post = get_i64(c, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS),
                               st = get_i64(c, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES),
                               dil = get_i64(c, CUDNN_ATTR_CONVOLUTION_DILATIONS);
    if (get1<int64_t>(c, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS) != 2 || pre.size() != 2 || pre != post || st.size() != 2 ||
        dil.size() != 2)
        return false;
    *cv = {(int)pre[0], (int)pre[1], (int)st[0], (int)st[1], (int)dil[0], (int)dil[1],
           get1<cudnnConvolutionMode_t>(c, CUDNN_ATTR_CONVOLUTION_CONV_MODE),
           get1<cudnnDataType_t>(c, CUDNN_ATTR_CONVOLUTION_COMP_TYPE), CUDNN_DEFAULT_MATH};
    return true;
}

/* A pointwise operation of a forward convolution's epilogue: y = mode(x[, b]) in float32, b a tensor
 * (broadcast where its dimensions are 1) or a scalar given by value, by unique id. */
struct EpiOp {
    cudnnPointwiseMode_t mode;
    double lower, upper, slope, swish; /* RELU_FWD's clips and slope, SWISH_FWD's beta */
    bool has_b, by_value;
    cudnnTensorStruct b;
    int64_t b_uid;
};
/* The convolution of an operation graph, its tensors and convolution as the legacy structs, and its
 * epilogue: the graph's other operations, pointwise, a chain from the convolution's output (virtual,
 * float32) to y, the last result, of the data's type (y below: the output's struct and uid[1] its id). */
struct ConvOp {
    ConvRoles r;
    cudnnTensorStruct x, y;
    cudnnFilterStruct f;
    cudnnConvolutionStruct cv;
    int64_t uid[3]; /* x, y, w */
    float alpha, beta;
    std::vector<EpiOp> epi;
};
bool is_virtual(const BackendDesc *t) { return get1<bool>(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL); }
bool same_dims(const cudnnTensorStruct &a, const cudnnTensorStruct &b) {
    return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
}
/* Pointwise operation `op` as the next link of c's epilogue, from the tensor of unique id *uid (the
 * previous result); *uid, *last and *last_virtual: its result. Checks what the emulation runs: the modes
 * the project uses, float32 math, shapes that broadcast to the output's. */
bool epi_link(const BackendDesc *op, ConvOp *c, int64_t *uid, cudnnTensorStruct *last, bool *last_virtual) {
    auto pw = child(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR);
    auto x = child(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC), y = child(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC);
    auto b = child(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC);
    cudnnTensorStruct xt, yt;
    if (op->type != CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR || !pw || !x || !y || !as_tensor(x.get(), &xt) ||
        !as_tensor(y.get(), &yt) || get1<int64_t>(x.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID) != *uid ||
        !same_dims(yt, c->y) || get1<cudnnDataType_t>(pw.get(), CUDNN_ATTR_POINTWISE_MATH_PREC) != CUDNN_DATA_FLOAT)
        return false;
    for (int a : {(int)CUDNN_ATTR_OPERATION_POINTWISE_ALPHA1, (int)CUDNN_ATTR_OPERATION_POINTWISE_ALPHA2})
        if (has(op, a) && get1<float>(op, a) != 1.0f) return false; /* operands scaled: not emulated */
    EpiOp e = {};
    e.mode = get1<cudnnPointwiseMode_t>(pw.get(), CUDNN_ATTR_POINTWISE_MODE);
    const bool binary = e.mode == CUDNN_POINTWISE_MUL || e.mode == CUDNN_POINTWISE_ADD;
    if (!binary && e.mode != CUDNN_POINTWISE_SWISH_FWD && e.mode != CUDNN_POINTWISE_RELU_FWD) return false;
    if (binary != (b != nullptr)) return false;
    e.lower = get1<double>(pw.get(), CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP);
    e.upper = has(pw.get(), CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP) ? get1<double>(pw.get(), CUDNN_ATTR_POINTWISE_RELU_UPPER_CLIP)
                                                                   : 3.4e38;
    e.slope = get1<double>(pw.get(), CUDNN_ATTR_POINTWISE_RELU_LOWER_CLIP_SLOPE);
    e.swish = has(pw.get(), CUDNN_ATTR_POINTWISE_SWISH_BETA) ? get1<double>(pw.get(), CUDNN_ATTR_POINTWISE_SWISH_BETA) : 1.0;
    if (b) {
        if (!as_tensor(b.get(), &e.b) || is_virtual(b.get())) return false;
        e.has_b = true, e.by_value = get1<bool>(b.get(), CUDNN_ATTR_TENSOR_IS_BY_VALUE);
        e.b_uid = get1<int64_t>(b.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID);
        const cudnnTensorStruct &t = e.b;
        const bool fits = (t.n == 1 || t.n == c->y.n) && (t.c == 1 || t.c == c->y.c) && (t.h == 1 || t.h == c->y.h) &&
                          (t.w == 1 || t.w == c->y.w);
        if (!fits || (e.by_value && (t.n * t.c * t.h * t.w != 1 || t.type != CUDNN_DATA_FLOAT))) return false;
    }
    c->epi.push_back(e);
    *uid = get1<int64_t>(y.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID), *last = yt, *last_virtual = is_virtual(y.get());
    return true;
}
/* The graph's convolution (its first operation) and epilogue (ConvOp); false when the graph is not that, of
 * consistent shapes. */
bool conv_op(const BackendDesc *graph, ConvOp *c) {
    auto ops = graph->descs.find(CUDNN_ATTR_OPERATIONGRAPH_OPS);
    if (ops == graph->descs.end() || ops->second.empty()) return false;
    const BackendDesc *op = ops->second[0].get();
    if (!roles_of(op->type, &c->r)) return false;
    const int role[3] = {c->r.x, c->r.y, c->r.w};
    cudnnTensorStruct t[3];
    bool virt[3];
    for (int i = 0; i < 3; i++) {
        auto d = child(op, role[i]);
        if (!d || !as_tensor(d.get(), &t[i])) return false;
        c->uid[i] = get1<int64_t>(d.get(), CUDNN_ATTR_TENSOR_UNIQUE_ID), virt[i] = is_virtual(d.get());
    }
    auto conv = child(op, c->r.conv);
    if (!conv || !as_conv(conv.get(), &c->cv)) return false;
    c->x = t[0], c->y = t[1], c->f = {t[2].format, t[2].type, t[2].n, t[2].c, t[2].h, t[2].w};
    c->alpha = get1<float>(op, c->r.alpha), c->beta = get1<float>(op, c->r.beta);
    c->epi.clear();
    const size_t nops = ops->second.size();
    if (nops > 1) { /* the epilogue: forward only, from the convolution's float32 sums (virtual) */
        if (c->r.out != OUT_Y || !virt[1] || t[1].type != CUDNN_DATA_FLOAT || c->beta != 0) return false;
        int64_t uid = c->uid[1];
        cudnnTensorStruct last = t[1];
        bool last_virtual = true;
        for (size_t i = 1; i < nops; i++)
            if (!epi_link(ops->second[i].get(), c, &uid, &last, &last_virtual) || (i + 1 < nops) != last_virtual)
                return false;
        if (last.format != CUDNN_TENSOR_NHWC) return false; /* what the execution below indexes */
        c->y = last, c->uid[1] = uid; /* the output: the last result, of the data's type */
    } else if (virt[0] || virt[1] || virt[2]) {
        return false;
    }
    return shapes_ok(c->x, c->f, c->cv, c->y);
}
/* The operation graph under a plan: plan -> engine configuration -> engine -> graph. */
std::shared_ptr<BackendDesc> graph_of_plan(const BackendDesc *plan) {
    auto cfg = child(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG);
    auto engine = cfg ? child(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE) : nullptr;
    return engine ? child(engine.get(), CUDNN_ATTR_ENGINE_OPERATION_GRAPH) : nullptr;
}
/* Engine `index` of a convolution graph, as a finalized engine configuration. */
std::shared_ptr<BackendDesc> engine_cfg(const std::shared_ptr<BackendDesc> &graph, const ConvOp &c, int64_t index) {
    auto engine = std::make_shared<BackendDesc>();
    engine->type = CUDNN_BACKEND_ENGINE_DESCRIPTOR, engine->finalized = true;
    engine->descs[CUDNN_ATTR_ENGINE_OPERATION_GRAPH] = {graph};
    engine->bytes[CUDNN_ATTR_ENGINE_GLOBAL_INDEX] = std::string((const char *)&index, 8);
    std::vector<cudnnBackendNumericalNote_t> notes;
    if (c.x.type != CUDNN_DATA_FLOAT) notes.push_back(CUDNN_NUMERICAL_NOTE_TENSOR_CORE);
    if (index == 0 && c.r.out != OUT_Y) notes.push_back(CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
    engine->bytes[CUDNN_ATTR_ENGINE_NUMERICAL_NOTE] =
        std::string((const char *)notes.data(), notes.size() * sizeof(cudnnBackendNumericalNote_t));
    auto cfg = std::make_shared<BackendDesc>();
    cfg->type = CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, cfg->finalized = true;
    cfg->descs[CUDNN_ATTR_ENGINECFG_ENGINE] = {engine};
    return cfg;
}
} // namespace

extern "C" {
cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t t, cudnnBackendDescriptor_t *d) {
    auto *b = new BackendDesc;
    b->type = t;
    *d = b;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t d) {
    delete bd(d);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a,
                                       cudnnBackendAttributeType_t t, int64_t n, const void *v) {
    BackendDesc *b = bd(d);
    if (!b || b->finalized || n < 0 || (n > 0 && !v)) return CUDNN_STATUS_BAD_PARAM;
    if (t == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
        std::vector<std::shared_ptr<BackendDesc>> snap;
        for (int64_t i = 0; i < n; i++) {
            const BackendDesc *c = bd(((const cudnnBackendDescriptor_t *)v)[i]);
            if (!c || !c->finalized) return CUDNN_STATUS_BAD_PARAM;
            snap.push_back(std::make_shared<BackendDesc>(*c));
        }
        b->descs[a] = snap;
    } else {
        b->bytes[a] = std::string((const char *)v, (size_t)n * elem_size(t));
    }
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t d) {
    BackendDesc *b = bd(d);
    if (!b || b->finalized) return CUDNN_STATUS_BAD_PARAM;
    ConvOp c;
    switch (b->type) {
    case CUDNN_BACKEND_TENSOR_DESCRIPTOR: {
        cudnnTensorStruct x;
        if (!as_tensor(b, &x) || !has(b, CUDNN_ATTR_TENSOR_UNIQUE_ID)) return CUDNN_STATUS_BAD_PARAM;
        break;
    }
    case CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR: {
        cudnnConvolutionStruct cv;
        if (!as_conv(b, &cv)) return CUDNN_STATUS_BAD_PARAM;
        break;
    }
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
        if (!conv_op(b, &c) || !has(b, CUDNN_ATTR_OPERATIONGRAPH_HANDLE)) return CUDNN_STATUS_NOT_SUPPORTED;
        break;
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR: {
        auto graph = child(b, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
        if (!graph || !has(b, CUDNN_ATTR_ENGINEHEUR_MODE) || !conv_op(graph.get(), &c)) return CUDNN_STATUS_BAD_PARAM;
        const char *nf = getenv("EDM2_EMU_NO_FUSION"); /* as a cuDNN that fuses no epilogue: no engine offered */
        if (c.epi.empty() || !(nf && *nf && strcmp(nf, "0")))
            for (int64_t e = 0; e < 2; e++) b->results.push_back(engine_cfg(graph, c, e));
        break;
    }
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR: {
        auto graph = graph_of_plan(b);
        if (!graph || !has(b, CUDNN_ATTR_EXECUTION_PLAN_HANDLE) || !conv_op(graph.get(), &c))
            return CUDNN_STATUS_BAD_PARAM;
        const int64_t ws = 0;
        b->bytes[CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE] = std::string((const char *)&ws, 8);
        break;
    }
    case CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR:
        if (get_i64(b, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS).size() * sizeof(void *) !=
            b->bytes[CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS].size())
            return CUDNN_STATUS_BAD_PARAM;
        break;
    default: /* the operations: checked as part of their graph */
        break;
    }
    b->finalized = true;
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const d, cudnnBackendAttributeName_t a,
                                       cudnnBackendAttributeType_t t, int64_t requested, int64_t *count, void *v) {
    const BackendDesc *b = bd(d);
    if (!b || !b->finalized || !count) return CUDNN_STATUS_BAD_PARAM;
    if (t == CUDNN_TYPE_BACKEND_DESCRIPTOR) { /* into the caller's descriptors, as copies */
        const std::vector<std::shared_ptr<BackendDesc>> *src =
            b->type == CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR && a == CUDNN_ATTR_ENGINEHEUR_RESULTS ? &b->results : nullptr;
        auto it = b->descs.find(a);
        if (!src && it != b->descs.end()) src = &it->second;
        if (!src) return CUDNN_STATUS_BAD_PARAM;
        *count = (int64_t)src->size();
        for (int64_t i = 0; i < requested && i < *count; i++) {
            BackendDesc *dst = bd(((cudnnBackendDescriptor_t *)v)[i]);
            if (!dst) return CUDNN_STATUS_BAD_PARAM;
            *dst = *(*src)[(size_t)i];
        }
        if (*count > requested && requested > 0) *count = requested;
        return CUDNN_STATUS_SUCCESS;
    }
    auto it = b->bytes.find(a);
    if (it == b->bytes.end()) return CUDNN_STATUS_BAD_PARAM;
    const size_t es = elem_size(t);
    *count = (int64_t)(it->second.size() / es);
    if (*count > requested) *count = requested;
    if (*count > 0) memcpy(v, it->second.data(), (size_t)*count * es);
    return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnBackendExecute(cudnnHandle_t h, cudnnBackendDescriptor_t plan, cudnnBackendDescriptor_t pack) {
    const BackendDesc *p = bd(plan), *vp = bd(pack);
    ConvOp c;
    if (!p || !vp || !p->finalized || !vp->finalized || p->type != CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)
        return CUDNN_STATUS_BAD_PARAM;
    auto graph = graph_of_plan(p);
    if (!graph || !conv_op(graph.get(), &c)) return CUDNN_STATUS_BAD_PARAM;
    const std::vector<int64_t> uids = get_i64(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS);
    const std::string &ptrs = vp->bytes.at(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS);
    auto pointer = [&](int64_t uid) { /* the variant pack's pointer of a unique id, or null */
        void *q = nullptr;
        for (size_t i = 0; i < uids.size(); i++)
            if (uids[i] == uid) memcpy(&q, ptrs.data() + i * sizeof(void *), sizeof(void *));
        return q;
    };
    void *at[3] = {pointer(c.uid[0]), pointer(c.uid[1]), pointer(c.uid[2])};
    if (!at[0] || !at[1] || !at[2]) return CUDNN_STATUS_BAD_PARAM;
    if (!c.epi.empty()) { /* the forward's sums, then the epilogue per element, y stored once */
        std::vector<const void *> operand;
        std::vector<float> scalar; /* by value: read now, as cuDNN does when the plan is executed */
        for (const EpiOp &e : c.epi) {
            const void *q = e.has_b ? pointer(e.b_uid) : nullptr;
            if (e.has_b && !q) return CUDNN_STATUS_BAD_PARAM;
            operand.push_back(q), scalar.push_back(e.by_value ? *(const float *)q : 0.0f);
        }
        const ConvOp C = c;
        const void *x = at[0], *w = at[2];
        void *y = at[1];
        emu_enqueue(h->stream, [=]() {
            conv_compute(OUT_Y, C.x, x, C.f, w, C.cv, C.y, nullptr);
            const std::vector<float> &acc = conv_scratch.acc;
            for (size_t i = 0; i < acc.size(); i++) {
                const int k = (int)(i % C.y.c), wq = (int)(i / C.y.c % C.y.w), hq = (int)(i / C.y.c / C.y.w % C.y.h),
                          n = (int)(i / ((size_t)C.y.c * C.y.w * C.y.h));
                float v = acc[i];
                for (size_t j = 0; j < C.epi.size(); j++) {
                    const EpiOp &e = C.epi[j];
                    const cudnnTensorStruct &t = e.b;
                    const float b = !e.has_b ? 0.0f
                                    : e.by_value ? scalar[j]
                                                 : load(t.type, operand[j], ::at(t, t.n == 1 ? 0 : n, t.c == 1 ? 0 : k,
                                                                                  t.h == 1 ? 0 : hq, t.w == 1 ? 0 : wq));
                    if (e.mode == CUDNN_POINTWISE_MUL) v *= b;
                    else if (e.mode == CUDNN_POINTWISE_ADD) v += b;
                    else if (e.mode == CUDNN_POINTWISE_SWISH_FWD) v = v / (1.0f + std::exp(-(float)e.swish * v));
                    else v = std::min((float)e.upper, v < (float)e.lower ? (float)(e.lower + e.slope * (v - e.lower)) : v);
                }
                store(C.y.type, y, i, v);
            }
        });
        return CUDNN_STATUS_SUCCESS;
    }
    void *dst = c.r.out == OUT_Y ? at[1] : c.r.out == OUT_X ? at[0] : at[2];
    return convolve(h, c.r.out, &c.alpha, &c.beta, &c.x, at[0], &c.f, at[2], &c.cv, &c.y, at[1], dst);
}
}
