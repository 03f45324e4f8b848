/* test_backend_parity.c: the CUDA backend against the CPU backend: every vector operation and the random
 * streams, on data uploaded to device memory the host cannot dereference. Exits 77 (skipped, with the
 * reason) when there is no CUDA device or the CUDA backend was not built. */
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
    memcpy(hx, a, n * sizeof(float));
    for (int k = 0; k < 2; k++) {
        const edm2_backend_vtable *vt = rts[k]->bvt;
        vt->axpby(rts[k]->b, y[k], 1.5f, x[k], -0.5f, n);
        vt->lerp(rts[k]->b, y[k], x[k], 0.1f, n);
        vt->scale(rts[k]->b, y[k], 0.7f, n);
    }
    rt_download(&g_cpu, a, y[0], n, &err);
    rt_download(&g_gpu, b, y[1], n, &err);
    compare("axpby/lerp/scale", a, b, n, 1e-5);
    double s[2], d[2], nr[2];
    for (int k = 0; k < 2; k++) {
        rts[k]->bvt->sum(rts[k]->b, x[k], n, &s[k]);
        rts[k]->bvt->dot(rts[k]->b, x[k], y[k], n, &d[k]);
        rts[k]->bvt->norm2(rts[k]->b, y[k], n, &nr[k]);
    }
    assert_true(fabs(s[0] - s[1]) <= 1e-9 * (1 + fabs(s[0])));
    assert_true(fabs(d[0] - d[1]) <= 1e-9 * (1 + fabs(d[0])));
    assert_true(fabs(nr[0] - nr[1]) <= 1e-9 * nr[0]);
    hy[0] = NAN, hy[1] = INFINITY;
    for (size_t i = 2; i < n; i++) hy[i] = (float)i;
    size_t rep[2];
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
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parity)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    runtime_close(&g_gpu);
    runtime_close(&g_cpu);
    registry_free(&g_reg);
    return rc;
}
