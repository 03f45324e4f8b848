/* test_cuda_lp_layers.c: the bf16 layer kernels of the CUDA network (act_ops.h, unet_kernels.h) against the
 * CPU layers (mp_ops.h, mp_conv.h) on the same bf16 inputs, forward and backward, overwriting and
 * accumulating, on odd shapes: where the GPU computes in float32 what the CPU computes and rounds once, the
 * result is bitwise the CPU's rounded to bf16; where it sums in another order (pixel norm, the modulation's
 * dc), within one bf16 unit in the last place (float32 outputs within 1e-5 of the largest value). The
 * shapes take both paths of the 8-element chunks (lp_math.cuh): channel counts that are multiples of 8
 * (16-byte accesses) and odd ones, a last chunk of fewer than 8, and operands at unaligned addresses; the bf16
 * weight preparation is checked in test_cuda_layers' test_weights. The fp16 instantiations are the same templates (test_cuda_network's
 * test_precisions covers them whole). Exits 77 (skipped, with the reason) without a CUDA device. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act_ops.h"
#include "act_type.h"
#include "mp_ops.h"
#include "test_util.h"
#include "unet_kernels.h"

static cudaStream_t g_stream;
#define CUDA_BUF_STREAM g_stream
#include "cuda_buf.h"

#define BF ACT_BF16

static void test_elementwise(void **state) {
    (void)state;
    /* n = N H W C: 4 (one short chunk), 360, 180 (a last chunk of 4), 1152 and 1536 with C = 24 and 16
     * (16-byte accesses; the modulation's gradients in one pass, over 1 and 2 chunks of pixels) */
    const int Ns[] = {1, 3, 3, 2, 2}, Hs[] = {2, 4, 2, 4, 6}, Ws[] = {2, 6, 6, 6, 8}, Cs[] = {1, 5, 5, 24, 16};
    for (int s = 0; s < 5; s++)
        for (int acc = 0; acc < 2; acc++) {
            const int N = Ns[s], H = Hs[s], W = Ws[s], C = Cs[s];
            const size_t HW = (size_t)H * W, n = (size_t)N * HW * C, q = n / 4;
            lbuf x = lmake(n, 1, 2), y = lmake(n, 2, 0), dy = lmake(n, 3, 1), dx = lmake(n, 4, 1);
            float *e = malloc((4 * n + 1) * sizeof(float)), *e2 = malloc((4 * n + 1) * sizeof(float));
            /* MP-SiLU */
            mp_silu_forward(e, x.h, n);
            assert_int_equal(act_silu_forward(g_stream, BF, y.d, x.d, n), 0);
            lsame("mp_silu forward", &y, e, 0, 0);
            memcpy(e, dx.h, n * sizeof(float));
            mp_silu_backward(e, dy.h, x.h, n, acc);
            assert_int_equal(act_silu_backward(g_stream, BF, dx.d, dy.d, x.d, n, acc), 0);
            lsame("mp_silu backward", &dx, e, 0, 0);
            lupload(&dx); /* back to its bf16 start for the next accumulation */
            /* MP-Sum */
            mp_sum_forward(e, x.h, dy.h, 0.3f, n);
            assert_int_equal(act_sum_forward(g_stream, BF, y.d, x.d, dy.d, 0.3f, n), 0);
            lsame("mp_sum forward", &y, e, 0, 0);
            lbuf db = lmake(n, 5, 1);
            memcpy(e, dx.h, n * sizeof(float)), memcpy(e2, db.h, n * sizeof(float));
            mp_sum_backward(e, e2, dy.h, 0.3f, n, acc);
            assert_int_equal(act_sum_backward(g_stream, BF, dx.d, db.d, dy.d, 0.3f, n, acc), 0);
            lsame("mp_sum backward a", &dx, e, 0, 0), lsame("mp_sum backward b", &db, e2, 0, 0);
            lupload(&dx), lupload(&db);
            /* MP-Cat of [P, C] and [P, Cb] (both multiples of 8 with C = 24: whole chunks from one operand) */
            const size_t P = (size_t)N * HW;
            const int Cb = C % 8 ? 3 : 16;
            lbuf b3 = lmake(P * Cb, 6, 1), cat = lmake(P * (C + Cb), 7, 0), dcat = lmake(P * (C + Cb), 8, 1);
            mp_cat_forward(e, x.h, C, b3.h, Cb, P, 0.5f);
            lbuf acat = lmake(P * (C + Cb), 17, 0);
            assert_int_equal(act_cat_forward(g_stream, BF, cat.d, acat.d, x.d, C, b3.d, Cb, P, 0.5f), 0);
            lsame("mp_cat forward", &cat, e, 0, 0);
            for (size_t i = 0; i < P * (C + Cb); i++) e[i] = bf16_round(e[i]);
            mp_silu_forward(e, e, P * (C + Cb)); /* of the stored (bf16) concatenation */
            lsame("mp_cat forward's MP-SiLU", &acat, e, 0, 0);
            ldrop(&acat);
            memcpy(e, dx.h, n * sizeof(float)), memcpy(e2, b3.h, P * Cb * sizeof(float));
            mp_cat_backward(e, e2, dcat.h, C, Cb, P, 0.5f, acc);
            assert_int_equal(act_cat_backward(g_stream, BF, dx.d, b3.d, dcat.d, C, Cb, P, 0.5f, acc), 0);
            lsame("mp_cat backward a", &dx, e, 0, 0), lsame("mp_cat backward b", &b3, e2, 0, 0);
            lupload(&dx);
            /* a decoder block's last gradient (mp_silu's of dsil at the concatenation xc added into dcat) taken
             * apart into the operands in one pass: bitwise act_silu_backward then act_cat_backward, dcat kept */
            lbuf dsil = lmake(P * (C + Cb), 18, 1), xc = lmake(P * (C + Cb), 19, 1.5f);
            float *gc = malloc((P * (C + Cb) + 1) * sizeof(float));
            memcpy(gc, dcat.h, P * (C + Cb) * sizeof(float));
            mp_silu_backward(gc, dsil.h, xc.h, P * (C + Cb), 1);
            for (size_t i = 0; i < P * (C + Cb); i++) gc[i] = bf16_round(gc[i]);
            mp_cat_backward(e, e2, gc, C, Cb, P, 0.5f, 0);
            assert_int_equal(act_silu_cat_backward(g_stream, BF, dx.d, b3.d, dcat.d, dsil.d, xc.d, C, Cb, P, 0.5f), 0);
            lsame("mp_silu + mp_cat backward a", &dx, e, 0, 0), lsame("mp_silu + mp_cat backward b", &b3, e2, 0, 0);
            lsame("mp_silu + mp_cat backward leaves dy", &dcat, dcat.h, 0, 0);
            lupload(&dx);
            free(gc), ldrop(&dsil), ldrop(&xc);
            /* modulation + MP-SiLU (c, dc float32; dc summed in chunks) */
            buf c = make((size_t)N * C, 9, 1), dc = make((size_t)N * C, 10, 1);
            modulate_silu_forward(e, x.h, c.h, N, HW, C);
            assert_int_equal(act_modulate_silu_forward(g_stream, BF, y.d, x.d, c.d, N, HW, C), 0);
            lsame("modulate_silu forward", &y, e, 0, 0);
            memcpy(e, dx.h, n * sizeof(float));
            modulate_silu_backward(e, dc.h, dy.h, x.h, c.h, N, HW, C, acc);
            float *part;
            const size_t part_bytes = (size_t)N * act_dc_chunks(HW, C) * C * sizeof(float);
            assert_int_equal(cudaMalloc((void **)&part, part_bytes + 4), cudaSuccess);
            assert_int_equal(act_modulate_silu_backward(g_stream, BF, dx.d, dc.d, dy.d, x.d, c.d, N, HW, C, acc, part), 0);
            lsame("modulate_silu backward dx", &dx, e, 0, 0);
            same("modulate_silu backward dc", &dc, 1e-5f * largest(dc.h, dc.n));
            cudaFree(part);
            lupload(&dx);
            /* resampling */
            lbuf yd = lmake(q, 11, 0), gq = lmake(q, 12, 1), yu = lmake(n * 4, 13, 0), gu = lmake(n * 4, 14, 1);
            resample_down_forward(e, x.h, N, H, W, C);
            assert_int_equal(act_resample_down_forward(g_stream, BF, yd.d, x.d, N, H, W, C), 0);
            lsame("down forward", &yd, e, 0, 0);
            memcpy(e, dx.h, n * sizeof(float));
            resample_down_backward(e, gq.h, N, H, W, C, acc);
            assert_int_equal(act_resample_down_backward(g_stream, BF, dx.d, gq.d, N, H, W, C, acc), 0);
            lsame("down backward", &dx, e, 0, 0);
            lupload(&dx);
            resample_up_forward(e, x.h, N, H, W, C);
            assert_int_equal(act_resample_up_forward(g_stream, BF, yu.d, x.d, N, H, W, C), 0);
            lsame("up forward", &yu, e, 0, 0);
            memcpy(e, dx.h, n * sizeof(float));
            resample_up_backward(e, gu.h, N, H, W, C, acc);
            assert_int_equal(act_resample_up_backward(g_stream, BF, dx.d, gu.d, N, H, W, C, acc), 0);
            lsame("up backward", &dx, e, 0, 0);
            lupload(&dx);
            /* residual sum with clipping, and its gradient given the keep bits of the (float32) unclipped sum */
            unsigned char *keep_d;
            assert_int_equal(cudaMalloc((void **)&keep_d, n / 8 + 1), cudaSuccess);
            const size_t clipped = mp_sum_clip_forward(e, e2, x.h, dy.h, 0.3f, 1.0f, n);
            assert_int_equal(act_sum_clip_forward(g_stream, BF, y.d, keep_d, x.d, dy.d, 0.3f, 1.0f, n), 0);
            lsame("sum_clip forward", &y, e, 0, 0);
            if (n >= 360) assert_true(clipped > 0 && clipped < n); /* both ways taken */
            assert_int_equal(keep_bits("sum_clip keep", keep_d, e2, 1.0f, n), clipped);
            /* its gradient: the clipped gradient goes straight into mp_sum's */
            float *g6 = malloc((n + 1) * sizeof(float));
            clip_backward(g6, dy.h, e2, 1.0f, n, 0);
            memcpy(e, dx.h, n * sizeof(float)), memcpy(e2, db.h, n * sizeof(float));
            mp_sum_backward(e, e2, g6, 0.3f, n, acc);
            assert_int_equal(act_sum_clip_backward(g_stream, BF, dx.d, db.d, dy.d, keep_d, 0.3f, n, acc), 0);
            lsame("sum_clip backward a", &dx, e, 0, 0), lsame("sum_clip backward b", &db, e2, 0, 0);
            free(g6);
            /* type conversion, gradient accumulation into float32, y += x, dropout */
            buf f = make(n, 16, 3);
            assert_int_equal(act_convert(g_stream, BF, y.d, ACT_F32, f.d, n), 0);
            lsame("float32 -> bf16", &y, f.h, 0, 0);
            for (size_t i = 0; i < n; i++) f.h[i] += x.h[i];
            assert_int_equal(act_add_to_f32(g_stream, BF, f.d, x.d, n), 0);
            same("bf16 added into float32", &f, 0);
            for (size_t i = 0; i < n; i++) e[i] = dx.h[i] + x.h[i];
            lupload(&dx);
            assert_int_equal(uk_accumulate(g_stream, BF, dx.d, x.d, n), 0);
            lsame("y += x", &dx, e, 0, 0);
            const size_t per = HW * C; /* image m's elements draw from stream 6 + m (chunks across images) */
            for (size_t i = 0; i < n; i++)
                e[i] = edm2_philox_uniform(5, 6 + i / per, 100 + i % per) < 0.25f ? 0.0f : x.h[i] * (1.0f / (1.0f - 0.25f));
            assert_int_equal(cudaMemcpy(y.d, x.d, n * 2, cudaMemcpyDeviceToDevice), cudaSuccess);
            assert_int_equal(uk_dropout(g_stream, BF, y.d, n, per, 0.25f, 5, 6, 100), 0);
            lsame("dropout", &y, e, 0, 0);
            free(e), free(e2);
            ldrop(&x), ldrop(&y), ldrop(&dy), ldrop(&dx), ldrop(&db), ldrop(&b3), ldrop(&cat), ldrop(&dcat), drop(&c);
            drop(&dc), ldrop(&yd), ldrop(&gq), ldrop(&yu), ldrop(&gu), drop(&f);
            cudaFree(keep_d);
        }
}

/* Operands that start 2 or 6 bytes past a 16-byte boundary (views into larger buffers): the chunks gather
 * element by element, with the same results. */
static lbuf lview(const lbuf *b, size_t off) { return (lbuf){b->h + off, (char *)b->d + 2 * off, b->n - off}; }

static void test_unaligned(void **state) {
    (void)state;
    const int N = 1, C = 8;
    const size_t HW = 5, n = N * HW * C; /* 40: five chunks, none aligned */
    lbuf X = lmake(n + 3, 1, 2), Y = lmake(n + 1, 2, 0), DY = lmake(n + 3, 3, 1), DX = lmake(n + 1, 4, 1);
    lbuf x = lview(&X, 3), y = lview(&Y, 1), dy = lview(&DY, 3), dx = lview(&DX, 1);
    buf c = make((size_t)N * C, 5, 1);
    float *e = malloc((n + 1) * sizeof(float));
    mp_silu_forward(e, x.h, n);
    assert_int_equal(act_silu_forward(g_stream, BF, y.d, x.d, n), 0);
    lsame("unaligned mp_silu forward", &y, e, 0, 0);
    mp_sum_forward(e, x.h, dy.h, 0.3f, n);
    assert_int_equal(act_sum_forward(g_stream, BF, y.d, x.d, dy.d, 0.3f, n), 0);
    lsame("unaligned mp_sum forward", &y, e, 0, 0);
    memcpy(e, dx.h, n * sizeof(float));
    mp_silu_backward(e, dy.h, x.h, n, 1);
    assert_int_equal(act_silu_backward(g_stream, BF, dx.d, dy.d, x.d, n, 1), 0);
    lsame("unaligned mp_silu backward (accumulating)", &dx, e, 0, 0);
    modulate_silu_forward(e, x.h, c.h, N, HW, C); /* c aligned (16-byte loads), x and y not */
    assert_int_equal(act_modulate_silu_forward(g_stream, BF, y.d, x.d, c.d, N, HW, C), 0);
    lsame("unaligned modulate_silu forward", &y, e, 0, 0);
    free(e);
    ldrop(&X), ldrop(&Y), ldrop(&DY), ldrop(&DX), drop(&c);
}

/* The modulation's gradients on shapes that take every path of its tiles (act_ops.cu, k_modulate_backward):
 * 33 groups of 8 channels (two group tiles, the second of one group), 256 pixel tiles with 5 pixels per
 * thread (two rounds of 4) and tiles past the last pixel, and a short last group (12 channels, gathered).
 * dx bitwise the CPU's, dc within 1e-5 of its largest value (summed in another order). */
static void test_modulate_tiles(void **state) {
    (void)state;
    const int Ns[] = {2, 1, 3}, Cs[] = {264, 256, 12};
    const size_t HWs[] = {40, 8200, 7};
    for (int s = 0; s < 3; s++) {
        const int N = Ns[s], C = Cs[s], acc = s == 1;
        const size_t HW = HWs[s], n = (size_t)N * HW * C;
        lbuf x = lmake(n, 1, 2), dy = lmake(n, 3, 1), dx = lmake(n, 4, 1);
        buf c = make((size_t)N * C, 9, 1), dc = make((size_t)N * C, 10, 1);
        float *e = malloc((n + 1) * sizeof(float)), *part;
        memcpy(e, dx.h, n * sizeof(float));
        modulate_silu_backward(e, dc.h, dy.h, x.h, c.h, N, HW, C, acc);
        const size_t part_bytes = (size_t)N * act_dc_chunks(HW, C) * C * sizeof(float);
        assert_int_equal(cudaMalloc((void **)&part, part_bytes + 4), cudaSuccess);
        assert_int_equal(act_modulate_silu_backward(g_stream, BF, dx.d, dc.d, dy.d, x.d, c.d, N, HW, C, acc, part), 0);
        lsame("modulate_silu backward dx (tiles)", &dx, e, 0, 0);
        same("modulate_silu backward dc (tiles)", &dc, 1e-5f * largest(dc.h, dc.n));
        cudaFree(part), free(e);
        ldrop(&x), ldrop(&dy), ldrop(&dx), drop(&c), drop(&dc);
    }
}

/* The pixel norm, a group of lanes per row (the CPU sums in order): within one bf16 unit in the last place.
 * Rows of 1, 37, 160 and 64 channels: groups of 1, 8, 32 and 8 lanes (32, 4, 1 and 4 rows per warp), the
 * last warp's rows partly past the end, chunks short or unaligned (37) and whole 16-byte ones. */
static void test_normalize(void **state) {
    (void)state;
    const size_t rows[] = {1, 6, 42, 13};
    const int cols[] = {1, 37, 160, 64};
    for (int s = 0; s < 4; s++)
        for (int acc = 0; acc < 2; acc++) {
            const size_t R = rows[s], n = R * (size_t)cols[s];
            lbuf x = lmake(n, 1, 1.5f), y = lmake(n, 2, 0), dy = lmake(n, 3, 1), dx = lmake(n, 4, 1);
            buf nr = make(R, 5, 0);
            float *e = malloc((n + 1) * sizeof(float));
            normalize_rows_forward(e, nr.h, x.h, R, cols[s], cols[s], cols[s]);
            assert_int_equal(act_normalize_rows_forward(g_stream, BF, y.d, nr.d, x.d, R, cols[s]), 0);
            lsame("normalize forward", &y, e, 1, 0);
            same("normalize norms", &nr, 1e-5f * largest(nr.h, R));
            memcpy(e, dx.h, n * sizeof(float));
            normalize_rows_backward(e, dy.h, x.h, nr.h, R, cols[s], cols[s], cols[s], acc);
            assert_int_equal(act_normalize_rows_backward(g_stream, BF, dx.d, dy.d, x.d, nr.d, R, cols[s], acc), 0);
            lsame("normalize backward", &dx, e, 1, 1e-5f * largest(e, n));
            /* with the MP-SiLU that follows it in the encoder, one pass each way: a bitwise mp_silu of y as
             * stored, the gradient as act_silu_backward (stored in bf16) then the norm's */
            lbuf a = lmake(n, 6, 0), da = lmake(n, 7, 1);
            assert_int_equal(act_normalize_silu_forward(g_stream, BF, y.d, a.d, nr.d, x.d, R, cols[s]), 0);
            normalize_rows_forward(e, nr.h, x.h, R, cols[s], cols[s], cols[s]);
            lsame("normalize + silu forward y", &y, e, 1, 0);
            lread(&y); /* the GPU's y, from which a is computed */
            mp_silu_forward(e, y.h, n);
            lsame("normalize + silu forward a", &a, e, 0, 0);
            float *g = malloc((n + 1) * sizeof(float));
            memcpy(g, dy.h, n * sizeof(float));
            mp_silu_backward(g, da.h, y.h, n, 1);
            for (size_t i = 0; i < n; i++) g[i] = bf16_round(g[i]);
            normalize_rows_backward(e, g, x.h, nr.h, R, cols[s], cols[s], cols[s], 0);
            assert_int_equal(act_silu_normalize_backward(g_stream, BF, dx.d, dy.d, da.d, y.d, x.d, nr.d, R, cols[s]), 0);
            lsame("silu + normalize backward", &dx, e, 1, 1e-5f * largest(e, n));
            lsame("silu + normalize backward leaves dy", &dy, dy.h, 0, 0);
            free(g), free(e);
            ldrop(&a), ldrop(&da);
            ldrop(&x), ldrop(&y), ldrop(&dy), ldrop(&dx), drop(&nr);
        }
}

int main(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("SKIP: CUDA bf16 layers: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    if (cudaStreamCreate(&g_stream) != cudaSuccess) return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_elementwise), cmocka_unit_test(test_unaligned),
                                       cmocka_unit_test(test_modulate_tiles), cmocka_unit_test(test_normalize)};
    test_filter_from_env();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cudaStreamDestroy(g_stream);
    return rc;
}
