/* test_fid.c: the Fréchet distance (frechet.h) against scipy's, as pytorch-fid computes it
 * (tests/data/frechet_ref.safetensors, made by tests/data/make_frechet_ref.py): on full-rank statistics of 500
 * feature rows and on rank-deficient ones of 40 rows (few images); the feature statistics against numpy's
 * mean and covariance; and the distance's basic properties (0 for identical statistics, the squared mean
 * shift for equal covariances). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frechet.h"
#include "safetensors.h"
#include "test_util.h"

static double *load(const st_file *f, const char *name, size_t n) {
    const st_tensor *t = st_find(f, name);
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    float *tmp = malloc(n * sizeof *tmp);
    double *d = malloc(n * sizeof *d);
    st_to_f32(t, tmp);
    for (size_t i = 0; i < n; i++) d[i] = tmp[i];
    free(tmp);
    return d;
}

static void test_against_scipy(void **state) {
    (void)state;
    st_file f;
    edm2_err err;
    assert_int_equal(st_open(&f, EDM2_TEST_DATA "/frechet_ref.safetensors", &err), 0);
    const int D = 64;
    const char *cases[2] = {"full", "low_rank"};
    const size_t rows[2] = {500, 40};
    for (int c = 0; c < 2; c++) {
        char name[64];
        double *m[4];
        const char *what[4] = {"mu_a", "sigma_a", "mu_b", "sigma_b"};
        for (int k = 0; k < 4; k++) {
            snprintf(name, sizeof name, "%s/%s", cases[c], what[k]);
            m[k] = load(&f, name, k % 2 ? (size_t)D * D : (size_t)D);
        }
        snprintf(name, sizeof name, "%s/fid", cases[c]);
        double *ref = load(&f, name, 1);
        snprintf(name, sizeof name, "%s/fid_hi", cases[c]);
        double *hi = load(&f, name, 1);
        const double want = ref[0] + hi[0];
        double got;
        assert_int_equal(frechet_distance(m[0], m[1], m[2], m[3], D, &got, &err), 0);
        fprintf(stderr, "%s: %.10f (scipy %.10f)\n", cases[c], got, want);
        assert_true(fabs(got - want) <= 1e-7 * fabs(want));
        /* Our statistics of the same features agree with numpy's (stored in float32). */
        snprintf(name, sizeof name, "%s/features_a", cases[c]);
        double *feat = load(&f, name, rows[c] * D);
        float *ff = malloc(rows[c] * D * sizeof *ff);
        for (size_t i = 0; i < rows[c] * D; i++) ff[i] = (float)feat[i];
        double *mu = malloc(D * sizeof *mu), *sg = malloc((size_t)D * D * sizeof *sg);
        assert_int_equal(feature_stats(ff, rows[c], D, mu, sg, &err), 0);
        for (int i = 0; i < D; i++) assert_true(fabs(mu[i] - m[0][i]) <= 1e-6 * (1 + fabs(m[0][i])));
        for (int i = 0; i < D * D; i++) assert_true(fabs(sg[i] - m[1][i]) <= 1e-5 * (1 + fabs(m[1][i])));
        free(feat), free(ff), free(mu), free(sg), free(ref), free(hi);
        for (int k = 0; k < 4; k++) free(m[k]);
    }
    st_close(&f);
}

static void test_properties(void **state) {
    (void)state;
    const int D = 5;
    double mu1[5] = {0, 1, 2, 3, 4}, mu2[5] = {1, 1, 2, 3, 2}, s[25] = {0}, got;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) s[i * D + j] = (i == j ? 2.0 : 0.0) + 0.3 / (1 + abs(i - j));
    edm2_err err;
    assert_int_equal(frechet_distance(mu1, s, mu1, s, D, &got, &err), 0);
    assert_true(fabs(got) < 1e-10);
    assert_int_equal(frechet_distance(mu1, s, mu2, s, D, &got, &err), 0);
    assert_true(fabs(got - 5.0) < 1e-10); /* |mu1 - mu2|^2 = 1 + 4 */
    /* Isotropic covariances a I and b I: d = D (sqrt(a) - sqrt(b))^2. */
    double a[25] = {0}, b[25] = {0};
    for (int i = 0; i < D; i++) a[i * D + i] = 4, b[i * D + i] = 1;
    assert_int_equal(frechet_distance(mu1, a, mu1, b, D, &got, &err), 0);
    assert_true(fabs(got - 5.0) < 1e-10);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_scipy), cmocka_unit_test(test_properties)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
