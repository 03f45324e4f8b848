/* test_backend_parity.c: the CUDA backend against the CPU backend: every vector operation (bitwise), the
 * reductions (bitwise), the random streams, a long EMA-like chain of lerps (bitwise), the native handles
 * and the stream-ordered pool, on data uploaded to device memory the host cannot dereference. Exits 77
 * (skipped, with the reason) when there is no CUDA device or the CUDA backend was not built. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend_fixture.h"
#include "test_util.h"

static runtime g_cpu, g_gpu;
static plugin_registry g_reg;

static void compare(const char *what, const float *a, const float *b, size_t n, double tol) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    if (m > tol) fprintf(stderr, "%s: max diff %g > %g\n", what, m, tol);
    assert_true(m <= tol);
}

static void test_parity(void **state) {
    (void)state;
    const size_t n = 300007;
    edm2_err err;
    float *hx = malloc(n * sizeof(float)), *hy = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float)),
          *b = malloc(n * sizeof(float));
    runtime *rts[2] = {&g_cpu, &g_gpu};
    float *x[2], *y[2];
    for (int k = 0; k < 2; k++) {
        x[k] = rt_alloc(rts[k], n, &err);
        y[k] = rt_alloc(rts[k], n, &err);
        assert_non_null(x[k]);
        assert_non_null(y[k]);
    }
    edm2_rng r = {2024, 3, 17};
    for (int k = 0; k < 2; k++) rts[k]->bvt->randn(rts[k]->b, x[k], n, r);
    rt_download(&g_cpu, a, x[0], n, &err);
    rt_download(&g_gpu, b, x[1], n, &err);
    compare("randn", a, b, n, 1e-6);
    for (int k = 0; k < 2; k++) rts[k]->bvt->rand(rts[k]->b, y[k], n, r);
    rt_download(&g_cpu, a, y[0], n, &err);
    rt_download(&g_gpu, b, y[1], n, &err);
    compare("rand", a, b, n, 0);
    for (int k = 0; k < 2; k++) {
        const edm2_backend_vtable *vt = rts[k]->bvt;
        vt->axpby(rts[k]->b, y[k], 1.5f, x[k], -0.5f, n);
        vt->lerp(rts[k]->b, y[k], x[k], 0.1f, n);
        vt->scale(rts[k]->b, y[k], 0.7f, n);
    }
    rt_download(&g_cpu, a, y[0], n, &err);
    rt_download(&g_gpu, b, y[1], n, &err);
    compare("axpby/lerp/scale", a, b, n, 0); /* bitwise: no fused multiply-adds on either side */
    double s[2], d[2], nr[2];
    for (int k = 0; k < 2; k++) {
        rts[k]->bvt->sum(rts[k]->b, x[k], n, &s[k]);
        rts[k]->bvt->dot(rts[k]->b, x[k], y[k], n, &d[k]);
        rts[k]->bvt->norm2(rts[k]->b, y[k], n, &nr[k]);
    }
    /* The same terms in the same order: bitwise equal reductions. */
    assert_memory_equal(&s[0], &s[1], sizeof(double));
    assert_memory_equal(&d[0], &d[1], sizeof(double));
    assert_memory_equal(&nr[0], &nr[1], sizeof(double));
    hy[0] = NAN, hy[1] = INFINITY;
    for (size_t i = 2; i < n; i++) hy[i] = (float)i;
    size_t rep[2];
    rt_download(&g_gpu, hx, x[1], n, &err); /* x before the fill of its first half */
    for (int k = 0; k < 2; k++) {
        rt_upload(rts[k], y[k], hy, n, &err);
        rts[k]->bvt->nan_to_zero(rts[k]->b, y[k], n, &rep[k]);
        rts[k]->bvt->fill(rts[k]->b, x[k], 2.5f, n / 2);
    }
    assert_int_equal(rep[0], 2);
    assert_int_equal(rep[1], 2);
    rt_download(&g_gpu, b, y[1], n, &err);
    assert_float_equal(b[0], 0, 0);
    assert_float_equal(b[5], 5, 0);
    rt_download(&g_gpu, b, x[1], n, &err);
    assert_float_equal(b[n / 2 - 1], 2.5f, 0);
    assert_float_equal(b[n / 2], hx[n / 2], 0);
    for (int k = 0; k < 2; k++) rt_free(rts[k], x[k]), rt_free(rts[k], y[k]);
    free(hx), free(hy), free(a), free(b);
}

/* An EMA is a long chain of lerps: 2000 of them agree bitwise between the backends. */
static void test_long_lerp_chain(void **state) {
    (void)state;
    const size_t n = 4099;
    edm2_err err;
    runtime *rts[2] = {&g_cpu, &g_gpu};
    float *avg[2], *theta[2], *out[2];
    for (int k = 0; k < 2; k++) {
        avg[k] = rt_alloc(rts[k], n, &err), theta[k] = rt_alloc(rts[k], n, &err);
        out[k] = malloc(n * sizeof(float));
        assert_non_null(avg[k]);
        rts[k]->bvt->randn(rts[k]->b, avg[k], n, (edm2_rng){1, 2, 0});
        for (int step = 1; step <= 2000; step++) {
            assert_int_equal(rts[k]->bvt->randn(rts[k]->b, theta[k], n, (edm2_rng){1, 3, (uint64_t)step * n}), EDM2_OK);
            float beta = (float)pow(1.0 - 1.0 / (step + 1), 7.94);
            assert_int_equal(rts[k]->bvt->lerp(rts[k]->b, avg[k], theta[k], 1.0f - beta, n), EDM2_OK);
        }
        rt_download(rts[k], out[k], avg[k], n, &err);
    }
    compare("2000 lerps", out[0], out[1], n, 0);
    for (int k = 0; k < 2; k++) rt_free(rts[k], avg[k]), rt_free(rts[k], theta[k]), free(out[k]);
}

/* ABI 1.1 native handles: none on the CPU; device, stream and cuBLAS on CUDA. Allocation and free cycles
 * through the stream-ordered pool leave the counters at zero. */
static void test_native_and_pool(void **state) {
    (void)state;
    edm2_backend_native nc, ng;
    memset(&nc, 0, sizeof nc), memset(&ng, 0, sizeof ng);
    nc.struct_size = ng.struct_size = sizeof nc;
    assert_int_equal(g_cpu.bvt->native(g_cpu.b, &nc), EDM2_OK);
    assert_int_equal(nc.device, -1);
    assert_null(nc.stream);
    assert_int_equal(g_gpu.bvt->native(g_gpu.b, &ng), EDM2_OK);
    assert_true(ng.device >= 0);
    assert_non_null(ng.stream);
    assert_non_null(ng.cublas);
    assert_non_null(ng.cublaslt);
    assert_non_null(ng.workspace);
    size_t before, after, peak;
    g_gpu.bvt->memory_stats(g_gpu.b, &before, &peak);
    for (int i = 0; i < 100; i++) {
        void *p;
        assert_int_equal(g_gpu.bvt->alloc(g_gpu.b, (size_t)(i + 1) * 1000, &p), EDM2_OK);
        assert_int_equal((uintptr_t)p % 256, 0);
        g_gpu.bvt->free(g_gpu.b, p);
    }
    assert_int_equal(g_gpu.bvt->synchronize(g_gpu.b), EDM2_OK);
    g_gpu.bvt->memory_stats(g_gpu.b, &after, &peak);
    assert_int_equal(before, after);
}

/* ABI 1.1 uploads that do not stall: page-locked host memory, a queued copy, completed by a download; on
 * both backends the device copy equals the source. */
static void test_upload_async(void **state) {
    (void)state;
    const size_t n = 100003;
    runtime *rts[2] = {&g_cpu, &g_gpu};
    edm2_err err;
    for (int k = 0; k < 2; k++) {
        float *h = rt_host_alloc(rts[k], n * sizeof(float)), *back = malloc(n * sizeof(float)), *d = rt_alloc(rts[k], n, &err);
        assert_non_null(h);
        assert_non_null(rts[k]->bvt->upload_async);
        for (size_t i = 0; i < n; i++) h[i] = (float)i * 0.5f - 7.0f;
        assert_int_equal(rt_upload_async(rts[k], d, h, n, &err), 0);
        assert_int_equal(rt_download(rts[k], back, d, n, &err), 0); /* completes the queue */
        assert_memory_equal(back, h, n * sizeof(float));
        rt_host_free(rts[k], h);
        rt_free(rts[k], d);
        free(back);
    }
}

int main(void) {
    char why[512];
    if (open_backend(&g_reg, &g_cpu, "edm2_backend_cpu.so", "cpu", why, sizeof why)) {
        fprintf(stderr, "error: %s\n", why);
        return 1;
    }
    if (open_backend(&g_reg, &g_gpu, "edm2_backend_cuda.so", "cuda", why, sizeof why)) {
        printf("SKIP: CUDA backend parity: %s\n", why);
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parity), cmocka_unit_test(test_long_lerp_chain),
                                       cmocka_unit_test(test_native_and_pool), cmocka_unit_test(test_upload_async)};
    test_filter_from_env();
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    runtime_close(&g_gpu);
    runtime_close(&g_cpu);
    registry_free(&g_reg);
    return rc;
}
