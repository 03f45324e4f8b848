/* test_fid.c: the Fréchet distance (frechet.h) against scipy's, as pytorch-fid computes it
 * (tests/data/frechet_ref.safetensors, made by tests/data/make_frechet_ref.py): on full-rank statistics of 500
 * feature rows and on rank-deficient ones of 40 rows (few images); the feature statistics against numpy's
 * mean and covariance; and the distance's basic properties (0 for identical statistics, the squared mean
 * shift for equal covariances, the shift plus tr S2 against a zero S1); the distance of feature rows (through
 * their Gram matrix when there are fewer than dimensions) against that of their statistics; statistics
 * accumulated in batches against all at once, and reference statistics through a file (float64, exact) with
 * the weights' fingerprint checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frechet.h"
#include "metric_fid.h"
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
        /* The distance of the rows themselves (in two batches): with 40 rows (< D) through their Gram matrix,
         * with 500 through the statistics; both the distance of our statistics to rounding. */
        double of_stats, of_rows;
        assert_int_equal(frechet_distance(mu, sg, m[2], m[3], D, &of_stats, &err), 0);
        fid_accum acc;
        assert_int_equal(fid_accum_init(&acc, D, &err), 0);
        assert_int_equal(fid_accum_add(&acc, ff, 7, &err), 0);
        assert_int_equal(fid_accum_add(&acc, ff + 7 * D, rows[c] - 7, &err), 0);
        assert_true((acc.rows != NULL) == (rows[c] <= (size_t)D));
        assert_int_equal(fid_accum_distance(&acc, m[2], m[3], &of_rows, &err), 0);
        fid_accum_free(&acc);
        fprintf(stderr, "%s: of the rows %.12f, of their statistics %.12f\n", cases[c], of_rows, of_stats);
        assert_true(fabs(of_rows - of_stats) <= 1e-9 * fabs(of_stats));
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
    /* S1 = 0 (no eigenvalue above rounding, the square-root term empty): d = |mu1 - mu2|^2 + tr S2. */
    double zero[25] = {0};
    assert_int_equal(frechet_distance(mu1, zero, mu2, s, D, &got, &err), 0);
    assert_true(fabs(got - (5.0 + 5 * 2.3)) < 1e-10);
}

/* Rows added in uneven batches give the statistics of all rows at once (to rounding); a statistics file
 * gives back exactly what was saved, and is refused for another fingerprint or dimension. */
static void test_accumulate_and_file(void **state) {
    (void)state;
    enum { D = 6, N = 301 };
    float *f = malloc((size_t)N * D * sizeof *f);
    for (int i = 0; i < N * D; i++) f[i] = (float)(5.0 + sin(0.37 * i) + 0.01 * (i % 7)); /* a large mean */
    double mu[D], sg[D * D], mu2[D], sg2[D * D];
    edm2_err err;
    assert_int_equal(feature_stats(f, N, D, mu, sg, &err), 0);
    fid_accum a;
    assert_int_equal(fid_accum_init(&a, D, &err), 0);
    for (int i = 0, step = 1; i < N; i += step, step = step * 3 % 97 + 1)
        assert_int_equal(fid_accum_add(&a, f + (size_t)i * D, (size_t)(N - i < step ? N - i : step), &err), 0);
    assert_int_equal(fid_accum_finish(&a, mu2, sg2, &err), 0);
    fid_accum_free(&a);
    for (int i = 0; i < D; i++) assert_true(fabs(mu[i] - mu2[i]) <= 1e-12 * fabs(mu[i]));
    for (int i = 0; i < D * D; i++) assert_true(fabs(sg[i] - sg2[i]) <= 1e-10 * (fabs(sg[i]) + 1e-3));
    /* numpy.cov by the two-pass definition. */
    for (int j = 0; j < D; j++)
        for (int k = 0; k < D; k++) {
            double m = 0;
            for (int i = 0; i < N; i++) m += ((double)f[i * D + j] - mu[j]) * ((double)f[i * D + k] - mu[k]);
            assert_true(fabs(m / (N - 1) - sg[j * D + k]) <= 1e-10 * (fabs(m / (N - 1)) + 1e-3));
        }
    char *dir = make_temp_dir(), path[512];
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    fid_stats s, back;
    assert_int_equal(fid_stats_alloc(&s, "fid", D, &err), 0);
    memcpy(s.mu, mu, sizeof mu), memcpy(s.sigma, sg, sizeof sg);
    s.count = N;
    snprintf(s.fingerprint, sizeof s.fingerprint, "00112233aabbccdd");
    assert_int_equal(fid_stats_save(path, &s, "test rows", &err), 0);
    assert_int_equal(fid_stats_load(path, "fid", D, "00112233aabbccdd", &back, &err), 0);
    assert_memory_equal(back.mu, mu, sizeof mu);
    assert_memory_equal(back.sigma, sg, sizeof sg);
    assert_int_equal(back.count, N);
    fid_stats_free(&back);
    assert_int_equal(fid_stats_load(path, "fid", D, "ffffffffffffffff", &back, &err), -1);
    assert_non_null(strstr(err.msg, "other feature weights"));
    assert_int_equal(fid_stats_load(path, "fid", D + 1, "", &back, &err), -1);
    assert_non_null(strstr(err.msg, "fid/mu [7]"));
    assert_int_equal(fid_stats_load(path, "fd_dinov2", D, "", &back, &err), -1); /* another network's statistics */
    assert_non_null(strstr(err.msg, "not fd_dinov2 reference statistics (edm2.metric = fid): another feature network's"));
    snprintf(s.metric, sizeof s.metric, "fd_dinov2"); /* the same under another metric's name */
    assert_int_equal(fid_stats_save(path, &s, "test rows", &err), 0);
    assert_int_equal(fid_stats_load(path, "fd_dinov2", D, "00112233aabbccdd", &back, &err), 0);
    assert_memory_equal(back.sigma, sg, sizeof sg);
    assert_string_equal(back.metric, "fd_dinov2");
    fid_stats_free(&back);
    assert_int_equal(fid_stats_load(path, "fid", D, "", &back, &err), -1);
    st_file sf;
    assert_int_equal(st_open(&sf, path, &err), 0);
    assert_non_null(st_find(&sf, "fd_dinov2/sigma"));
    assert_string_equal(st_meta(&sf, "fd_dinov2.count"), "301");
    st_close(&sf);
    fid_stats_free(&s);
    rm_rf(dir);
    free(dir), free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_scipy), cmocka_unit_test(test_properties),
                                       cmocka_unit_test(test_accumulate_and_file)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
