/* test_image_resize.c: Pillow's resampling (image_resize.c) bitwise against Pillow itself
 * (tests/data/resize_ref.safetensors, made by make_resize_ref.py): BOX and BICUBIC, down and up, RGB and grey,
 * odd sizes; the ADM / EDM2 dataset tool's centre crop; and a JPEG, RGB and CMYK, decoded as Pillow decodes it
 * (the CMYK one as its convert("RGB") converts it). */
#include <stdlib.h>
#include <string.h>

#include "image_read.h"
#include "image_resize.h"
#include "safetensors.h"
#include "test_util.h"

static st_file g_ref;

/* The tensor as 8-bit values; its shape [h, w, c] into dims. */
static uint8_t *pixels(const char *name, int dims[3]) {
    const st_tensor *t = st_find(&g_ref, name);
    if (!t || t->ndim != 3) fail_msg("%s missing", name);
    float *f = malloc(t->numel * sizeof *f);
    uint8_t *p = malloc(t->numel);
    st_to_f32(t, f);
    for (size_t i = 0; i < t->numel; i++) p[i] = (uint8_t)f[i];
    for (int k = 0; k < 3; k++) dims[k] = (int)t->shape[k];
    free(f);
    return p;
}

static void test_resize_matches_pillow(void **state) {
    (void)state;
    const char *filters[2] = {"box", "bicubic"};
    for (int i = 0; i < 5; i++)
        for (int f = 0; f < 2; f++) {
            char name[64];
            int di[3], dw[3];
            snprintf(name, sizeof name, "case%d/in", i);
            uint8_t *in = pixels(name, di);
            snprintf(name, sizeof name, "case%d/%s", i, filters[f]);
            uint8_t *want = pixels(name, dw), *got = malloc((size_t)dw[0] * dw[1] * dw[2]);
            edm2_err err;
            assert_int_equal(image_resize(in, di[1], di[0], di[2], got, dw[1], dw[0], f ? RESAMPLE_BICUBIC : RESAMPLE_BOX,
                                          &err), 0);
            size_t bad = 0;
            for (size_t k = 0; k < (size_t)dw[0] * dw[1] * dw[2]; k++) bad += got[k] != want[k];
            if (bad) print_message("%s: %zu of %d values differ\n", name, bad, dw[0] * dw[1] * dw[2]);
            assert_int_equal(bad, 0);
            free(in), free(want), free(got);
        }
}

static void test_center_crop(void **state) {
    (void)state;
    int di[3], dw[3];
    uint8_t *in = pixels("crop/in", di);
    const char *names[2] = {"crop/out16", "crop/out32"};
    for (int k = 0; k < 2; k++) {
        uint8_t *want = pixels(names[k], dw), *got = malloc((size_t)dw[0] * dw[1] * 3);
        edm2_err err;
        assert_int_equal(center_crop_dhariwal(in, di[1], di[0], 3, dw[0], got, &err), 0);
        assert_memory_equal(got, want, (size_t)dw[0] * dw[1] * 3);
        free(want), free(got);
    }
    free(in);
}

static void test_jpeg_as_pillow(void **state) {
    (void)state;
    if (!image_read_has_jpeg()) {
        print_message("skipped: this build reads no JPEG (libjpeg not found)\n");
        skip();
    }
    int d[3], w, h;
    uint8_t *want = pixels("jpeg/decoded", d), *got = NULL;
    edm2_err err;
    if (image_read_rgb(EDM2_TEST_DATA "/resize_ref.jpg", &got, &w, &h, &err)) fail_msg("%s", err.msg);
    assert_int_equal(w, d[1]);
    assert_int_equal(h, d[0]);
    assert_memory_equal(got, want, (size_t)w * h * 3);
    free(want), free(got);
    /* CMYK (Adobe's inverted values, as Pillow and Photoshop write them): Pillow's convert("RGB"), bitwise */
    want = pixels("jpeg_cmyk/decoded", d);
    if (image_read_rgb(EDM2_TEST_DATA "/resize_ref_cmyk.jpg", &got, &w, &h, &err)) fail_msg("%s", err.msg);
    assert_int_equal(w, d[1]);
    assert_int_equal(h, d[0]);
    assert_memory_equal(got, want, (size_t)w * h * 3);
    free(want), free(got);
    /* not an image */
    assert_int_equal(image_read_rgb(EDM2_TEST_DATA "/make_resize_ref.py", &got, &w, &h, &err), -1);
    assert_non_null(strstr(err.msg, "neither PNG nor JPEG"));
}

static int setup(void **state) {
    (void)state;
    edm2_err err;
    return st_open(&g_ref, EDM2_TEST_DATA "/resize_ref.safetensors", &err) ? (fprintf(stderr, "%s\n", err.msg), -1) : 0;
}

static int teardown(void **state) {
    (void)state;
    st_close(&g_ref);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resize_matches_pillow), cmocka_unit_test(test_center_crop),
                                       cmocka_unit_test(test_jpeg_as_pillow)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
