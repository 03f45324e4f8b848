/* test_backend.c: the Philox4x32-10 generator against the Random123 known-answer vectors, the mapping
 * of (seed, stream, offset) to numbers (normals drawn one at a time or many at once), and every vector operation
 * of the CPU backend plugin. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edm2/edm2_philox.h"
#include "backend_fixture.h"
#include "test_util.h"

static void test_philox_known_answers(void **state) {
    (void)state;
    struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < 3; i++) {
        edm2_philox_block c;
        memcpy(c.w, kat[i].ctr, sizeof c.w);
        edm2_philox_block o = edm2_philox4x32_10(c, kat[i].key[0], kat[i].key[1]);
        for (int j = 0; j < 4; j++) assert_int_equal(o.w[j], kat[i].out[j]);
    }
}

/* edm2_philox_normals: bitwise the single draws, from any first index (each lane of a block first) and for any
 * count, including counts that end inside a block or a pair. */
static void test_philox_normals(void **state) {
    (void)state;
    enum { N = 70000 };
    float *many = malloc(N * sizeof *many);
    assert_non_null(many);
    for (uint64_t first = (1ull << 40) - 3; first < (1ull << 40) + 3; first++) {
        edm2_philox_normals(9, 77, first, N, many);
        for (size_t k = 0; k < N; k++)
            if (many[k] != edm2_philox_normal(9, 77, first + k)) fail_msg("first %llu, k %zu", (unsigned long long)first, k);
    }
    for (size_t n = 0; n < 9; n++) {
        float few[9] = {0};
        edm2_philox_normals(1, 2, 3, n, few);
        for (size_t k = 0; k < 9; k++) assert_true(few[k] == (k < n ? edm2_philox_normal(1, 2, 3 + k) : 0.0f));
    }
    free(many);
}

static runtime g_rt;
static plugin_registry g_reg;

static int setup(void **state) {
    (void)state;
    char why[512];
    if (open_backend(&g_reg, &g_rt, "edm2_backend_cpu.so", "cpu", why, sizeof why)) {
        fprintf(stderr, "%s\n", why);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    runtime_close(&g_rt);
    registry_free(&g_reg);
    return 0;
}

static void test_random_streams(void **state) {
    (void)state;
    const size_t n = 100000;
    edm2_err err;
    float *x = rt_alloc(&g_rt, n, &err), *y = rt_alloc(&g_rt, n, &err);
    assert_non_null(x);
    edm2_rng r = {123, 4, 0};
    assert_int_equal(g_rt.bvt->randn(g_rt.b, x, n, r), EDM2_OK);
    double mean = 0, var = 0;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= n;
    assert_true(fabs(mean) < 0.01);
    assert_true(fabs(var - 1) < 0.02);
    /* Offsets address the same stream: a draw at offset 1000 equals the tail of the first draw. */
    edm2_rng r2 = {123, 4, 1000};
    assert_int_equal(g_rt.bvt->randn(g_rt.b, y, 500, r2), EDM2_OK);
    assert_memory_equal(y, x + 1000, 500 * sizeof(float));
    /* Another stream or seed gives other numbers. */
    edm2_rng r3 = {123, 5, 0};
    g_rt.bvt->randn(g_rt.b, y, 500, r3);
    assert_memory_not_equal(y, x, 500 * sizeof(float));
    /* Uniform numbers lie in (0, 1) with mean 1/2. */
    assert_int_equal(g_rt.bvt->rand(g_rt.b, x, n, r), EDM2_OK);
    mean = 0;
    for (size_t i = 0; i < n; i++) {
        assert_true(x[i] > 0 && x[i] < 1);
        mean += x[i];
    }
    assert_true(fabs(mean / n - 0.5) < 0.01);
    rt_free(&g_rt, x);
    rt_free(&g_rt, y);
}

static void test_vector_ops(void **state) {
    (void)state;
    const size_t n = 70001; /* above the parallel threshold, odd */
    const edm2_backend_vtable *vt = g_rt.bvt;
    edm2_backend *b = g_rt.b;
    edm2_err err;
    float *x = rt_alloc(&g_rt, n, &err), *y = rt_alloc(&g_rt, n, &err), *h = malloc(n * sizeof(float));
    float *hx = malloc(n * sizeof(float)), *hy = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) hx[i] = (float)(i % 17) - 8, hy[i] = (float)(i % 5);
    assert_int_equal(rt_upload(&g_rt, x, hx, n, &err), 0);
    assert_int_equal(rt_upload(&g_rt, y, hy, n, &err), 0);
    vt->axpby(b, y, 2.0f, x, 0.5f, n);
    rt_download(&g_rt, h, y, n, &err);
    for (size_t i = 0; i < n; i++) assert_float_equal(h[i], 2 * hx[i] + 0.5f * hy[i], 0);
    rt_upload(&g_rt, y, hy, n, &err);
    vt->lerp(b, y, x, 0.25f, n);
    rt_download(&g_rt, h, y, n, &err);
    for (size_t i = 0; i < n; i++) assert_float_equal(h[i], hy[i] + 0.25f * (hx[i] - hy[i]), 1e-6);
    vt->scale(b, y, 3.0f, n);
    rt_download(&g_rt, hy, y, n, &err);
    for (size_t i = 0; i < n; i++) assert_float_equal(hy[i], 3 * h[i], 1e-5);
    double s, d, nrm, ref_s = 0, ref_d = 0;
    for (size_t i = 0; i < n; i++) ref_s += hx[i], ref_d += (double)hx[i] * hy[i];
    vt->sum(b, x, n, &s);
    vt->dot(b, x, y, n, &d);
    vt->norm2(b, x, n, &nrm);
    assert_float_equal(s, ref_s, 1e-6 * fabs(ref_s) + 1e-9);
    assert_float_equal(d, ref_d, 1e-9 * fabs(ref_d));
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)hx[i] * hx[i];
    assert_float_equal(nrm, sqrt(ss), 1e-9 * sqrt(ss));
    vt->fill(b, y, 1.5f, n);
    rt_download(&g_rt, h, y, n, &err);
    for (size_t i = 0; i < n; i++) assert_float_equal(h[i], 1.5f, 0);
    hx[3] = NAN, hx[70000] = INFINITY, hx[5] = -INFINITY;
    rt_upload(&g_rt, x, hx, n, &err);
    size_t replaced = 0;
    vt->nan_to_zero(b, x, n, &replaced);
    assert_int_equal(replaced, 3);
    rt_download(&g_rt, h, x, n, &err);
    assert_float_equal(h[3], 0, 0);
    assert_float_equal(h[70000], 0, 0);
    size_t cur, peak;
    vt->memory_stats(b, &cur, &peak);
    assert_true(cur >= 2 * n * sizeof(float));
    rt_free(&g_rt, x);
    rt_free(&g_rt, y);
    vt->memory_stats(b, &cur, &peak);
    assert_int_equal(cur, 0);
    free(h), free(hx), free(hy);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_philox_normals),
        cmocka_unit_test(test_random_streams),
        cmocka_unit_test(test_vector_ops),
    };
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
