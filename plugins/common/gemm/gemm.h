/* gemm.h: the matrix products of the network, our own kernels (no im2col, no padded copies).
 *
 * Forward-type products (gemm.c), C[M, N] = A[M, K] B[N, K]^T (+ C): every element is the same sequence of
 * fused multiply-adds over k = 0..K-1 whatever M, N, the tile it falls in, or the thread count, so an
 * image's result does not depend on its batch. AVX-512 12x16 / 12x32 or AVX2 6x16 register tiles over
 * packed B panels (BLIS-style), with an exact scalar-FMA fallback; products with at most 4 columns (an
 * output convolution) instead run 16 interleaved FMA chains per element (k = l, l + 16, ...) summed in
 * lane order, again one fixed sequence per element. 3x3 convolutions are implicit GEMMs:
 * the rows of A are the nine taps of each output pixel, read in place; taps that fall outside the image
 * read a zero row, which gives exactly the products of a zero-padded input.
 *
 * Weight-gradient products (gemm_tn.c), C[M, N] += A^T B over the rows of A and B (pixels): rows are read
 * in place, in runs of consecutive pixels; for a 3x3 convolution each tap visits only the pixels where it
 * stays inside the image. The pixel range is cut into a fixed number of pieces whose partial sums are
 * added in order, so results do not depend on the thread count. */
#ifndef EDM2_GEMM_H
#define EDM2_GEMM_H

#include <stddef.h>

/* The instruction set the kernels use: the best this CPU has, or a lower one named by the environment
 * variable EDM2_GEMM_ISA (scalar, avx2) to exercise the other paths. */
typedef enum { GEMM_ISA_SCALAR = 0, GEMM_ISA_AVX2 = 1, GEMM_ISA_AVX512 = 2 } gemm_isa_t;
gemm_isa_t gemm_isa(void);

/* Floats of packing scratch (64-byte aligned) a product with these N, K needs. */
size_t gemm_pack_floats(int N, int K);
/* C = A B^T (accumulate = 0) or C += A B^T (the product is formed first, then added). */
void gemm_nt(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack);
/* C = A B (accumulate = 0) or C += A B, with B[K, N] row-major. */
void gemm_nn(size_t M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int accumulate,
             float *pack);
/* 3x3 convolution, padding 1: y[Nimg, H, W, O] (+)= conv(x[Nimg, H, W, C], w[O, 3, 3, C]) (channels-last,
 * tap-major weights). Bitwise the same as zero padding + im2col + gemm_nt. */
void gemm_conv3x3(int Nimg, int H, int W, int C, const float *x, int O, const float *w, float *y, int accumulate,
                  float *pack);

/* Weight gradients. GEMM_TN_SPLITS pieces of the pixel range; `part` is scratch of gemm_tn_part_floats. */
#define GEMM_TN_SPLITS 4
size_t gemm_tn_part_floats(int M, int N, int ntaps);
/* C[M, N] += A[Q, M]^T B[Q, N] (row strides M and N; C's is N). */
void gemm_tn(int M, int N, size_t Q, const float *A, const float *B, float *C, float *part);
/* Weight gradient of a 3x3 convolution, padding 1: dw[O, 3, 3, C] += sum over output pixels p and taps t
 * of dy[p, O] x[p + offset(t), C], dy[Nimg, H, W, O], x[Nimg, H, W, C]. */
void gemm_tn_conv3x3(int O, int C, int Nimg, int H, int W, const float *dy, const float *x, float *dw, float *part);

#endif
