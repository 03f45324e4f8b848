/* block_saved.h: what a training forward of an EDM2 Block keeps for its backward (pointers into the CPU
 * build's forward workspace; the CUDA build's device-memory twin is gblock_saved, ../mp_unet_cuda/block_cuda.h).
 * Channels-last [N, H, W, C]. */
#ifndef EDM2_BLOCK_SAVED_H
#define EDM2_BLOCK_SAVED_H

typedef struct block_saved {
    const float *x_in; /* [N, Hin, Win, cin] */
    float *x0;         /* after resampling [N, H, W, cin] */
    float *x1;         /* enc: after conv_skip [.., cout] (== x0 when no skip) */
    float *pn_norm;    /* enc: pixel-norm norms [N*H*W] */
    float *x2;         /* residual-branch input [.., enc ? cout : cin] */
    float *a;          /* mp_silu(x2): conv_res0 input */
    float *y0;         /* conv_res0 output [.., cout] */
    float *c;          /* emb_linear(emb) + 1 [N, cout] */
    float *y3;         /* mp_silu(y0 * c) after dropout: conv_res1 input */
    float *x5;         /* after the residual mp_sum [.., cout] */
    float *qkv, *qkvn, *qnorm, *attn, *ya; /* attention */
    float *x6;         /* before clipping (CPU: NULL when nothing was clipped; == x5 without attention;
                        * CUDA: always kept, the GPU does not wait to learn whether anything was) */
    float *out;        /* block output [.., cout] (CPU) */
} block_saved;

#endif
