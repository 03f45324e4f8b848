/* test_metrics.c: the sliced Wasserstein distance on Laplacian-pyramid patches (metric_swd.h) on sets where
 * the answer is known: a constant image's pyramid (no detail, the constant at the coarsest level), a shift
 * of a point set (1-d: exactly the shift; 49-d: the shift times E|d_1| of a random unit direction), identical
 * sets (exactly 0), two samples of one distribution against two distributions, determinism (also
 * whatever the number of threads), and an empty set refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "edm2/edm2_philox.h"
#include "metric_swd.h"
#include "test_util.h"

static void test_pyramid_of_constant(void **state) {
    (void)state;
    const int R = 32, L = swd_levels(R, 8);
    assert_int_equal(L, 3);
    assert_int_equal(swd_levels(28, 16), 1); /* 28 -> 14 < 16 */
    assert_int_equal(swd_levels(8, 16), 0);
    float img[32 * 32], l0[32 * 32], l1[16 * 16], l2[8 * 8], *lev[3] = {l0, l1, l2};
    for (int i = 0; i < R * R; i++) img[i] = 0.75f;
    swd_pyramid(img, R, L, lev);
    for (int i = 0; i < R * R; i++) assert_float_equal(l0[i], 0, 1e-6);
    for (int i = 0; i < 16 * 16; i++) assert_float_equal(l1[i], 0, 1e-6);
    for (int i = 0; i < 8 * 8; i++) assert_float_equal(l2[i], 0.75f, 1e-6);
}

static float *normal_set(size_t n, int dim, uint64_t stream) {
    float *x = malloc(n * dim * sizeof *x);
    for (size_t i = 0; i < n * dim; i++) x[i] = edm2_philox_normal(9, stream, i);
    return x;
}

static void test_shift(void **state) {
    (void)state;
    swd_params p;
    swd_default_params(&p);
    const size_t n = 3000;
    /* One dimension: every direction is +-1, the sorted sets differ by the shift everywhere. */
    float *a = normal_set(n, 1, 1), *b = malloc(n * sizeof *b);
    for (size_t i = 0; i < n; i++) b[i] = a[i] + 0.3f;
    assert_float_equal(swd_distance(a, n, b, n, 1, &p), 0.3, 1e-6);
    free(a), free(b);
    /* 49 dimensions, shifted along the first axis by s: s |d_1| per direction, E|d_1| = G(D/2) / (sqrt(pi)
     * G((D+1)/2)) for uniform unit directions in D dimensions. */
    const int D = 49;
    a = normal_set(n, D, 2), b = malloc(n * D * sizeof *b);
    memcpy(b, a, n * D * sizeof *b);
    for (size_t i = 0; i < n; i++) b[i * D] += 2.0f;
    const double expect = 2.0 * exp(lgamma(D / 2.0) - lgamma((D + 1) / 2.0)) / sqrt(M_PI);
    const double got = swd_distance(a, n, b, n, D, &p);
    fprintf(stderr, "49-d shift by 2: %.4f, expected %.4f\n", got, expect);
    assert_true(fabs(got - expect) < 0.1 * expect);
    assert_float_equal(swd_distance(a, n, a, n, D, &p), 0, 0);
#ifdef _OPENMP
    /* The same bits in one thread as in three (directions in blocks, 61 x 4 of them: a last block short). */
    const int threads = omp_get_max_threads();
    p.dirs = 61;
    omp_set_num_threads(1);
    const double one = swd_distance(a, n, b, n, D, &p);
    omp_set_num_threads(3);
    const double three = swd_distance(a, n, b, n, D, &p);
    omp_set_num_threads(threads);
    assert_memory_equal(&one, &three, sizeof one);
#endif
    free(a), free(b);
}

/* n images [n, 1, R, R]: white noise, or noise blurred in both directions (smooth = 1). */
static float *images(int n, int R, uint64_t stream, int smooth) {
    float *x = malloc((size_t)n * R * R * sizeof *x);
    for (size_t i = 0; i < (size_t)n * R * R; i++) x[i] = edm2_philox_normal(5, stream, i);
    for (int pass = 0; smooth && pass < 3; pass++) /* along rows and down columns */
        for (size_t i = 0; i + 2 * R < (size_t)n * R * R; i++) x[i] = (x[i] + x[i + 1] + x[i + R] + x[i + R + 1]) / 2;
    return x;
}

/* The mean over levels; *finest: the finest level's. */
static double swd_of(const float *x, const float *y, int n, int R, uint64_t seed, double *finest) {
    swd_params p;
    swd_default_params(&p);
    p.min_res = 16, p.patches = 64, p.dirs = 32, p.seed = seed; /* 4 x 32 directions */
    swd_set a, b;
    edm2_err err;
    assert_int_equal(swd_set_init(&a, &p, 1, R, &err), 0);
    assert_int_equal(swd_set_init(&b, &p, 1, R, &err), 0);
    /* In two calls for a: the descriptors do not depend on how the images are batched. */
    assert_int_equal(swd_set_add(&a, &p, x, n / 2, 0, &err), 0);
    assert_int_equal(swd_set_add(&a, &p, x + (size_t)(n / 2) * R * R, n - n / 2, (uint64_t)(n / 2), &err), 0);
    assert_int_equal(swd_set_add(&b, &p, y, n, 0, &err), 0);
    swd_set_finalize(&a), swd_set_finalize(&b);
    double per[SWD_MAX_LEVELS], mean;
    assert_int_equal(swd_compare(&a, &b, &p, per, &mean, &err), 0);
    *finest = per[0];
    swd_set_free(&a), swd_set_free(&b);
    return mean;
}

static void test_image_sets(void **state) {
    (void)state;
    const int n = 200, R = 32;
    float *s1 = images(n, R, 1, 1), *s2 = images(n, R, 2, 1), *w = images(n, R, 3, 0);
    double f_same, f_two, f_other, f;
    double same = swd_of(s1, s1, n, R, 0, &f_same), two_samples = swd_of(s1, s2, n, R, 0, &f_two);
    double other = swd_of(s1, w, n, R, 0, &f_other);
    fprintf(stderr, "SWD x1e3 (finest level, mean of 2): identical %.3f, two samples %.2f (%.2f), smooth vs white %.2f "
            "(%.2f)\n", f_same, f_two, two_samples, f_other, other);
    assert_float_equal(same, 0, 0);
    assert_true(f_two > 0 && f_two * 4 < f_other && two_samples < other); /* the fine level tells them apart */
    assert_float_equal(swd_of(s1, s2, n, R, 0, &f), two_samples, 0);      /* deterministic */
    assert_true(swd_of(s1, s2, n, R, 1, &f) != two_samples);              /* and the seed matters */
    free(s1), free(s2), free(w);
}

/* A set without descriptors is refused by name (not taken for a failed allocation). */
static void test_empty_set(void **state) {
    (void)state;
    swd_params p;
    swd_default_params(&p);
    p.min_res = 16;
    const int R = 32;
    float *x = images(4, R, 1, 1);
    swd_set a, b;
    edm2_err err;
    assert_int_equal(swd_set_init(&a, &p, 1, R, &err), 0);
    assert_int_equal(swd_set_init(&b, &p, 1, R, &err), 0);
    assert_int_equal(swd_set_add(&a, &p, x, 4, 0, &err), 0);
    swd_set_finalize(&a), swd_set_finalize(&b);
    double per[SWD_MAX_LEVELS], mean;
    assert_int_not_equal(swd_compare(&a, &b, &p, per, &mean, &err), 0);
    assert_non_null(strstr(err.msg, "empty set"));
    assert_true(swd_distance(a.desc[0], a.count, b.desc[0], b.count, a.dim, &p) < 0);
    swd_set_free(&a), swd_set_free(&b);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pyramid_of_constant), cmocka_unit_test(test_shift),
                                       cmocka_unit_test(test_image_sets), cmocka_unit_test(test_empty_set)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
