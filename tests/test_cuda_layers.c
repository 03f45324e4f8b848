/* test_cuda_layers.c: every CUDA layer kernel (mp_ops_cuda.h) against its CPU layer, forward and backward,
 * overwriting and accumulating, on odd shapes (1x1 and 2x3 images, one channel, batch 1 and 7): bitwise
 * equal, except the Fourier embedding (cosf, within 2e-6); also the bf16 network's weight preparation
 * (act_ops.h; its other bf16 layers: test_cuda_lp_layers) and the first and last convolutions' direct
 * kernels (thin_conv.h). Exits 77 (skipped, with the reason) without a CUDA device. */
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "forced_weight_norm.h"
#include "mp_conv.h"
#include "mp_ops.h"
#include "act_ops.h"
#include "act_type.h"
#include "mp_ops_cuda.h"
#include "test_util.h"
#include "thin_conv.h"
#include "unet_kernels.h"

static cudaStream_t g_stream;
#define CUDA_BUF_STREAM g_stream
#include "cuda_buf.h"

static void test_normalize_silu_sum_cat(void **state) {
    (void)state;
    const size_t rows[] = {1, 6, 7 * 2 * 3};
    const int cols[] = {1, 3, 37};
    for (int s = 0; s < 3; s++)
        for (int acc = 0; acc < 2; acc++) {
            size_t R = rows[s], n = R * (size_t)cols[s];
            buf x = make(n, 1, 1.5f), y = make(n, 2, 0), nr = make(R, 3, 0), dy = make(n, 4, 1), dx = make(n, 5, 1);
            normalize_rows_forward(y.h, nr.h, x.h, R, cols[s], cols[s], cols[s]);
            assert_int_equal(mpc_normalize_rows_forward(g_stream, y.d, nr.d, x.d, R, cols[s], cols[s], cols[s]), 0);
            same("normalize forward", &y, 0), same("normalize norms", &nr, 0);
            normalize_rows_backward(dx.h, dy.h, x.h, nr.h, R, cols[s], cols[s], cols[s], acc);
            assert_int_equal(mpc_normalize_rows_backward(g_stream, dx.d, dy.d, x.d, nr.d, R, cols[s], cols[s], cols[s], acc), 0);
            same("normalize backward", &dx, 0);
            mp_silu_forward(y.h, x.h, n);
            assert_int_equal(mpc_silu_forward(g_stream, y.d, x.d, n), 0);
            same("mp_silu forward", &y, 0);
            mp_silu_backward(dx.h, dy.h, x.h, n, acc);
            assert_int_equal(mpc_silu_backward(g_stream, dx.d, dy.d, x.d, n, acc), 0);
            same("mp_silu backward", &dx, 0);
            { /* the encoder's pixel norm + MP-SiLU and their gradients (act_ops.h), float32: the steps in turn */
                buf a = make(n, 20, 0), da = make(n, 21, 1), g = make(n, 22, 1);
                normalize_rows_forward(y.h, nr.h, x.h, R, cols[s], cols[s], cols[s]);
                mp_silu_forward(a.h, y.h, n);
                assert_int_equal(act_normalize_silu_forward(g_stream, ACT_F32, y.d, a.d, nr.d, x.d, R, cols[s]), 0);
                same("normalize + silu forward y", &y, 0), same("normalize + silu forward a", &a, 0), same("norms", &nr, 0);
                mp_silu_backward(g.h, da.h, y.h, n, 1);
                normalize_rows_backward(dx.h, g.h, x.h, nr.h, R, cols[s], cols[s], cols[s], 0);
                assert_int_equal(act_silu_normalize_backward(g_stream, ACT_F32, dx.d, g.d, da.d, y.d, x.d, nr.d, R, cols[s]), 0);
                same("silu + normalize backward", &dx, 0);
                drop(&a), drop(&da), drop(&g);
            }
            mp_sum_forward(y.h, x.h, dy.h, 0.3f, n);
            assert_int_equal(mpc_sum_forward(g_stream, y.d, x.d, dy.d, 0.3f, n), 0);
            same("mp_sum forward", &y, 0);
            buf db = make(n, 6, 1);
            mp_sum_backward(dx.h, db.h, dy.h, 0.3f, n, acc);
            assert_int_equal(mpc_sum_backward(g_stream, dx.d, db.d, dy.d, 0.3f, n, acc), 0);
            same("mp_sum backward a", &dx, 0), same("mp_sum backward b", &db, 0);
            /* mp_cat of [R, cols] and [R, 5] */
            buf b = make(R * 5, 7, 1), cat = make(R * (cols[s] + 5), 8, 0), dcat = make(R * (cols[s] + 5), 9, 1);
            mp_cat_forward(cat.h, x.h, cols[s], b.h, 5, R, 0.5f);
            assert_int_equal(mpc_cat_forward(g_stream, cat.d, x.d, cols[s], b.d, 5, R, 0.5f), 0);
            same("mp_cat forward", &cat, 0);
            mp_cat_backward(dx.h, b.h, dcat.h, cols[s], 5, R, 0.5f, acc);
            assert_int_equal(mpc_cat_backward(g_stream, dx.d, b.d, dcat.d, cols[s], 5, R, 0.5f, acc), 0);
            same("mp_cat backward a", &dx, 0), same("mp_cat backward b", &b, 0);
            drop(&x), drop(&y), drop(&nr), drop(&dy), drop(&dx), drop(&db), drop(&b), drop(&cat), drop(&dcat);
        }
}

static void test_modulate_resample_clip_fourier(void **state) {
    (void)state;
    const int Ns[] = {1, 7}, Hs[] = {2, 4}, Ws[] = {2, 6}, Cs[] = {1, 5};
    for (int s = 0; s < 2; s++)
        for (int acc = 0; acc < 2; acc++) {
            const int N = Ns[s], H = Hs[s], W = Ws[s], C = Cs[s];
            const size_t n = (size_t)N * H * W * C, q = n / 4;
            buf x = make(n, 1, 2), c = make((size_t)N * C, 2, 1), y = make(n, 3, 0), dy = make(n, 4, 1), dx = make(n, 5, 1),
                dc = make((size_t)N * C, 6, 1);
            modulate_silu_forward(y.h, x.h, c.h, N, (size_t)H * W, C);
            assert_int_equal(mpc_modulate_silu_forward(g_stream, y.d, x.d, c.d, N, (size_t)H * W, C), 0);
            same("modulate_silu forward", &y, 0);
            modulate_silu_backward(dx.h, dc.h, dy.h, x.h, c.h, N, (size_t)H * W, C, acc);
            assert_int_equal(mpc_modulate_silu_backward(g_stream, dx.d, dc.d, dy.d, x.d, c.d, N, (size_t)H * W, C, acc), 0);
            same("modulate_silu backward dx", &dx, 0), same("modulate_silu backward dc", &dc, 0);
            buf yd = make(q, 7, 0), gq = make(q, 8, 1), yu = make(n * 4, 9, 0), gu = make(n * 4, 10, 1);
            resample_down_forward(yd.h, x.h, N, H, W, C);
            assert_int_equal(mpc_resample_down_forward(g_stream, yd.d, x.d, N, H, W, C), 0);
            same("down forward", &yd, 0);
            resample_down_backward(dx.h, gq.h, N, H, W, C, acc);
            assert_int_equal(mpc_resample_down_backward(g_stream, dx.d, gq.d, N, H, W, C, acc), 0);
            same("down backward", &dx, 0);
            resample_up_forward(yu.h, x.h, N, H, W, C);
            assert_int_equal(mpc_resample_up_forward(g_stream, yu.d, x.d, N, H, W, C), 0);
            same("up forward", &yu, 0);
            resample_up_backward(dx.h, gu.h, N, H, W, C, acc);
            assert_int_equal(mpc_resample_up_backward(g_stream, dx.d, gu.d, N, H, W, C, acc), 0);
            same("up backward", &dx, 0);
            buf un = make(n, 11, 0);
            unsigned char *keep_d;
            assert_int_equal(cudaMalloc((void **)&keep_d, n / 8 + 1), cudaSuccess);
            size_t clipped = mp_sum_clip_forward(y.h, un.h, x.h, dy.h, 0.3f, 1.0f, n);
            assert_int_equal(act_sum_clip_forward(g_stream, ACT_F32, y.d, keep_d, x.d, dy.d, 0.3f, 1.0f, n), 0);
            same("sum_clip forward", &y, 0);
            assert_int_equal(keep_bits("sum_clip keep", keep_d, un.h, 1.0f, n), clipped);
            { /* the clip's and MP-Sum's gradients (act_ops.h): bitwise the CPU's two steps, float32 */
                buf g6 = make(n, 16, 0), db = make(n, 17, 1);
                clip_backward(g6.h, dy.h, un.h, 1.0f, n, 0);
                mp_sum_backward(dx.h, db.h, g6.h, 0.3f, n, acc);
                assert_int_equal(act_sum_clip_backward(g_stream, ACT_F32, dx.d, db.d, dy.d, keep_d, 0.3f, n, acc), 0);
                same("sum_clip backward a", &dx, 0), same("sum_clip backward b", &db, 0);
                drop(&g6), drop(&db);
            }
            { /* y += x and dropout (unet_kernels.h), float32: bitwise the CPU's arithmetic */
                buf ya = make(n, 18, 1);
                for (size_t i = 0; i < n; i++) ya.h[i] += x.h[i];
                assert_int_equal(uk_accumulate(g_stream, ACT_F32, ya.d, x.d, n), 0);
                same("y += x", &ya, 0);
                const size_t per = n / (size_t)N; /* image m's elements draw from stream 6 + m */
                for (size_t i = 0; i < n; i++)
                    ya.h[i] = edm2_philox_uniform(5, 6 + i / per, 100 + i % per) < 0.25f ? 0.0f : x.h[i] * (1.0f / (1.0f - 0.25f));
                assert_int_equal(cudaMemcpy(ya.d, x.d, n * sizeof(float), cudaMemcpyDeviceToDevice), cudaSuccess);
                assert_int_equal(uk_dropout(g_stream, ACT_F32, ya.d, n, per, 0.25f, 5, 6, 100), 0);
                same("dropout", &ya, 0);
                drop(&ya);
            }
            buf sig = make((size_t)N, 12, 1), fr = make((size_t)C, 13, 6.28f), ph = make((size_t)C, 14, 6.28f),
                fo = make((size_t)N * C, 15, 0);
            mp_fourier_forward(fo.h, sig.h, fr.h, ph.h, N, C);
            assert_int_equal(mpc_fourier_forward(g_stream, fo.d, sig.d, fr.d, ph.d, N, C), 0);
            same("fourier", &fo, 2e-6f);
            cudaFree(keep_d);
            drop(&x), drop(&c), drop(&y), drop(&dy), drop(&dx), drop(&dc), drop(&yd), drop(&gq), drop(&yu), drop(&gu);
            drop(&un), drop(&sig), drop(&fr), drop(&ph), drop(&fo);
        }
}

/* Forced weight normalisation of a whole arena in one launch: three weights (1x1, 3x4x3x3, 16x9x3x3) with
 * values between them that must stay untouched; float32 bitwise the CPU's per weight, the bf16 network's
 * warp per unit within 1e-6 of the largest value (every value of a unit is divided by one norm). */
static void test_forced_weight_norm(void **state) {
    (void)state;
    const int Os[] = {1, 3, 16}, Fs[] = {1, 36, 81};
    const size_t gap = 5;
    size_t offs[3], n = gap, nunits = 0;
    for (int i = 0; i < 3; i++) offs[i] = n, n += (size_t)Os[i] * Fs[i] + gap, nunits += (size_t)Os[i];
    mpc_unit *units = malloc(nunits * sizeof *units), *units_d = NULL;
    size_t j = 0;
    for (int i = 0; i < 3; i++)
        for (int o = 0; o < Os[i]; o++) units[j++] = (mpc_unit){offs[i] + (size_t)o * Fs[i], Fs[i]};
    assert_int_equal(cudaMalloc((void **)&units_d, nunits * sizeof *units), cudaSuccess);
    assert_int_equal(cudaMemcpy(units_d, units, nunits * sizeof *units, cudaMemcpyHostToDevice), cudaSuccess);
    for (int act = ACT_F32; act <= ACT_BF16; act++) {
        buf w = make(n, 1, 1.5f);
        for (int i = 0; i < 3; i++) forced_weight_norm(w.h + offs[i], Os[i], Fs[i]);
        assert_int_equal(act_forced_weight_norm(g_stream, act, w.d, units_d, nunits), 0);
        same(act == ACT_F32 ? "forced weight norm" : "bf16 net: forced weight norm", &w,
             act == ACT_F32 ? 0 : 1e-6f * largest(w.h, n));
        drop(&w);
    }
    cudaFree(units_d);
    free(units);
}

static void test_weights(void **state) {
    (void)state;
    const int Os[] = {1, 3, 16, 5}, Cs[] = {1, 4, 9, 40}, ks[] = {1, 3, 3, 3}; /* F = 1, 36, 81, 360 */
    for (int s = 0; s < 4; s++) {
        const int O = Os[s], C = Cs[s], k = ks[s];
        const size_t F = (size_t)C * k * k, n = (size_t)O * F;
        buf w = make(n, 1, 1), wh = make(n, 2, 0), nr = make((size_t)O, 3, 0), g = make(1, 4, 1), dwh = make(n, 5, 1),
            dw = make(n, 6, 1), dg = make(1, 7, 1), scratch = make((size_t)O, 8, 0);
        mpconv_weight_forward(wh.h, nr.h, w.h, g.h[0], O, C, k);
        assert_int_equal(mpc_weight_forward(g_stream, wh.d, nr.d, w.d, g.d, O, C, k), 0);
        same("weight forward", &wh, 0), same("weight norms", &nr, 0);
        mpconv_weight_backward(dw.h, dg.h, dwh.h, w.h, nr.h, g.h[0], O, C, k);
        assert_int_equal(mpc_weight_backward(g_stream, dw.d, dg.d, dwh.d, w.d, nr.d, g.d, O, C, k, scratch.d), 0);
        same("weight backward", &dw, 0), same("gain gradient", &dg, 0);
        /* The bf16 network's gradient of it, a block per unit (sums in another order): within 1e-5. */
        mpconv_weight_backward(dw.h, dg.h, dwh.h, w.h, nr.h, g.h[0], O, C, k);
        assert_int_equal(act_weight_backward(g_stream, ACT_BF16, dw.d, dg.d, dwh.d, w.d, nr.d, g.d, O, C, k, scratch.d), 0);
        same("bf16 net: weight backward", &dw, 1e-5f * largest(dw.h, n));
        same("bf16 net: gain gradient", &dg, 1e-5f * fmaxf(1, fabsf(dg.h[0])));
        drop(&w), drop(&wh), drop(&nr), drop(&g), drop(&dwh), drop(&dw), drop(&dg), drop(&scratch);
    }
}

/* The bf16 network's preparation of several weights in one launch (act_weights_forward), one warp per unit
 * (sums in another order than float32's): weights in an arena with gaps, some with a gain, each prepared in
 * float32 only (a float32 layer's, into its slot) or in bf16 only (the body's). The shapes take every path
 * of the transposition through shared memory: one tile of channels, two (40 channels: 32 and 8), narrower
 * tiles for 5x5 taps, and 17x17 taps of 2 channels (289, more than a tile holds), gathered directly.
 * Float32 within 1e-5 of the largest value, bf16 within one unit in its last place, norms within 1e-5;
 * nothing else written. */
static void test_weights_one_launch(void **state) {
    (void)state;
    enum { NW = 7 };
    const int Os[NW] = {1, 3, 16, 3, 2, 2, 1}, Cs[NW] = {1, 4, 9, 40, 40, 3, 2}, ks[NW] = {1, 3, 3, 3, 1, 5, 17};
    const int lp[NW] = {0, 1, 1, 1, 0, 1, 1};
    const size_t gap = 5;
    size_t off[NW], hat_off[NW], norm_off[NW], n = gap, nh = 7, nn = 0, nu = 0;
    long gain[NW];
    for (int i = 0; i < NW; i++) {
        const size_t numel = (size_t)Os[i] * Cs[i] * ks[i] * ks[i];
        off[i] = n, n += numel + gap;
        hat_off[i] = nh, nh += lp[i] ? 0 : numel + gap;
        norm_off[i] = nn, nn += (size_t)Os[i] + 1, nu += (size_t)Os[i];
    }
    for (int i = 0; i < NW; i++) gain[i] = i % 3 == 1 ? -1 : (long)(n + i); /* the gains after the weights */
    buf w = make(n + NW, 1, 1), hat = make(nh, 2, 3), nr = make(nn, 3, 3);
    lbuf wl = lmake(n + NW, 4, 3);
    float *expect_hat = malloc(hat.n * sizeof(float)), *expect_lp = malloc(wl.n * sizeof(float));
    memcpy(expect_hat, hat.h, hat.n * sizeof(float)), memcpy(expect_lp, wl.h, wl.n * sizeof(float));
    act_prep_unit *units = malloc(nu * sizeof *units), *units_d = NULL;
    for (int i = 0, j = 0; i < NW; i++) {
        const int kk = ks[i] * ks[i], F = Cs[i] * kk;
        float *dst = lp[i] ? expect_lp + off[i] : expect_hat + hat_off[i];
        mpconv_weight_forward(dst, nr.h + norm_off[i], w.h + off[i], gain[i] >= 0 ? w.h[gain[i]] : 1.0f, Os[i], Cs[i],
                              ks[i]);
        for (int o = 0; o < Os[i]; o++, j++)
            units[j] = (act_prep_unit){off[i] + (size_t)o * F, lp[i] ? (size_t)-1 : hat_off[i] + (size_t)o * F,
                                       norm_off[i] + (size_t)o, gain[i], Cs[i], kk, lp[i]};
    }
    assert_int_equal(cudaMalloc((void **)&units_d, nu * sizeof *units), cudaSuccess);
    assert_int_equal(cudaMemcpy(units_d, units, nu * sizeof *units, cudaMemcpyHostToDevice), cudaSuccess);
    assert_int_equal(act_weights_forward(g_stream, ACT_BF16, hat.d, wl.d, nr.d, w.d, units_d, nu), 0);
    memcpy(hat.h, expect_hat, hat.n * sizeof(float));
    same("bf16 net: weights forward, float32", &hat, 1e-5f * largest(hat.h, hat.n));
    same("bf16 net: weight norms", &nr, 1e-5f * largest(nr.h, nn));
    lsame("bf16 net: weights forward, bf16", &wl, expect_lp, 1, 0);
    cudaFree(units_d);
    free(units), free(expect_hat), free(expect_lp);
    drop(&w), drop(&hat), drop(&nr), ldrop(&wl);
}

/* The network's first and last convolutions as thin_conv's direct kernels against the CPU's 3x3 convolution
 * (mp_conv.h), float32, within 1e-5 of each result's largest value (another order of the sums): the
 * output thin (37 input channels: a second, partial slot of lanes; 130: two blocks along the channels), the
 * input thin (200 output channels: two blocks), both thin, pixel counts that leave a warp's last pixels
 * empty, and 312 pixels: two tiles of the weight gradient. Input gradients overwritten and accumulated,
 * weight gradients always accumulated. */
static void test_thin_conv(void **state) {
    (void)state;
    const int Ns[] = {2, 1, 3, 1, 2, 2}, Hs[] = {5, 3, 6, 8, 4, 12}, Ws[] = {7, 4, 6, 8, 4, 13};
    const int Cs[] = {37, 5, 3, 130, 8, 16}, Os[] = {4, 40, 2, 8, 200, 3};
    for (int s = 0; s < 6; s++) {
        const int N = Ns[s], H = Hs[s], W = Ws[s], C = Cs[s], O = Os[s], acc = s % 2;
        const size_t P = (size_t)N * H * W, nx = P * C, ny = P * O, nw = (size_t)O * 9 * C;
        const int kinds = thin_conv_kinds(C, O);
        assert_true(kinds & THIN_FWD && kinds & THIN_FILTER);
        buf x = make(nx, 1, 1), w = make(nw, 2, 0.1f), y = make(ny, 3, 0), dy = make(ny, 4, 1), dx = make(nx, 5, 1);
        buf dw = make(nw, 6, 1), part = make(thin_conv_part_floats(N, H, W, C, O), 7, 0);
        size_t pack = 0, wt = 0, pt = 0;
        conv_scratch_need(C, O, 3, &pack, &wt, &pt);
        conv_scratch sc = {aligned_alloc(64, (pack * 4 + 64) / 64 * 64), aligned_alloc(64, (wt * 4 + 64) / 64 * 64),
                           aligned_alloc(64, (pt * 4 + 64) / 64 * 64)};
        conv2d_forward(y.h, x.h, w.h, &sc, N, H, W, C, O, 3);
        assert_int_equal(thin_conv_forward(g_stream, y.d, x.d, w.d, N, H, W, C, O), 0);
        same("thin conv forward", &y, 1e-5f * largest(y.h, ny));
        float *dxe = (kinds & THIN_DATA) ? dx.h : NULL;
        conv2d_backward(dxe, dw.h, dy.h, x.h, w.h, &sc, N, H, W, C, O, 3, acc);
        if (dxe) {
            assert_int_equal(thin_conv_backward_data(g_stream, dx.d, dy.d, w.d, N, H, W, C, O, acc), 0);
            same("thin conv backward data", &dx, 1e-5f * largest(dx.h, nx));
        }
        assert_int_equal(thin_conv_backward_filter(g_stream, dw.d, dy.d, x.d, N, H, W, C, O, part.d), 0);
        same("thin conv backward filter", &dw, 1e-5f * largest(dw.h, nw));
        free(sc.pack), free(sc.wt), free(sc.part);
        drop(&x), drop(&w), drop(&y), drop(&dy), drop(&dx), drop(&dw), drop(&part);
    }
    assert_int_equal(thin_conv_kinds(9, 9), 0);
    assert_int_equal(thin_conv_kinds(9, 8), THIN_FWD | THIN_DATA | THIN_FILTER);
    assert_int_equal(thin_conv_kinds(8, 9), THIN_FWD | THIN_FILTER);
}

int main(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        printf("SKIP: CUDA layer parity: no CUDA device (%s)\n", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        return 77;
    }
    if (cudaStreamCreate(&g_stream) != cudaSuccess) return 1;
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_normalize_silu_sum_cat),
                                       cmocka_unit_test(test_modulate_resample_clip_fourier),
                                       cmocka_unit_test(test_forced_weight_norm), cmocka_unit_test(test_weights),
                                       cmocka_unit_test(test_weights_one_launch), cmocka_unit_test(test_thin_conv)};
    test_filter_from_env();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cudaStreamDestroy(g_stream);
    return rc;
}
