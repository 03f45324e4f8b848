/* test_png_read.c: PNG decoding (host/png_read.c) bitwise against Pillow's Image.open(...).convert("RGB") and
 * .convert("L") (tests/data/png_ref.safetensors, made by make_png_ref.py): every colour type and bit depth (grey
 * 1/2/4/8/16, grey + alpha 8/16, RGB 8/16, RGBA 8/16, palettes of 1/4/8 bits), a gAMA chunk far from sRGB's, tRNS
 * transparency, alpha, and Adam7 interlacing; and the same file cut short, refused with one line. */
#include <stdlib.h>
#include <string.h>

#include "image_io.h"
#include "safetensors.h"
#include "test_util.h"

static st_file g_ref;

/* Tensor `name` as bytes (its F32 values 0..255); *n: how many. */
static uint8_t *bytes_of(const char *name, size_t *n) {
    const st_tensor *t = st_find(&g_ref, name);
    if (!t) fail_msg("%s missing", name);
    float *f = malloc(t->numel * sizeof *f);
    uint8_t *b = malloc(t->numel);
    st_to_f32(t, f);
    for (size_t i = 0; i < t->numel; i++) b[i] = (uint8_t)f[i];
    free(f);
    *n = t->numel;
    return b;
}

static void test_as_pillow(void **state) {
    (void)state;
    int cases = 0;
    char name[64];
    for (;; cases++) {
        snprintf(name, sizeof name, "case%d/png", cases);
        if (!st_find(&g_ref, name)) break;
        size_t n, nrgb, nl;
        uint8_t *file = bytes_of(name, &n);
        snprintf(name, sizeof name, "case%d/rgb", cases);
        uint8_t *rgb = bytes_of(name, &nrgb);
        snprintf(name, sizeof name, "case%d/l", cases);
        uint8_t *l = bytes_of(name, &nl);
        const st_tensor *shape = st_find(&g_ref, name);
        const int h = (int)shape->shape[0], w = (int)shape->shape[1];
        for (int channels = 1; channels <= 3; channels += 2) {
            uint8_t *px = NULL;
            int gw, gh;
            edm2_err err;
            if (png_decode(file, n, "case.png", channels, 0, 0, &px, &gw, &gh, &err))
                fail_msg("case %d: %s", cases, err.msg);
            assert_int_equal(gw, w), assert_int_equal(gh, h);
            const uint8_t *want = channels == 3 ? rgb : l;
            if (memcmp(px, want, (size_t)w * h * channels))
                fail_msg("case %d (counted from 0 in: %s), %d channels: not Pillow's pixels", cases,
                         st_meta(&g_ref, "cases"), channels);
            free(px);
        }
        uint8_t *px = NULL; /* cut short: refused, one line */
        int gw, gh;
        edm2_err err;
        assert_int_equal(png_decode(file, n - 20, "cut.png", 3, 0, 0, &px, &gw, &gh, &err), -1);
        assert_null(px);
        assert_non_null(strstr(err.msg, "cut.png: "));
        assert_null(strchr(err.msg, '\n'));
        free(file), free(rgb), free(l);
    }
    assert_int_equal(cases, 18);
}

static int setup(void **state) {
    (void)state;
    edm2_err err;
    return st_open(&g_ref, EDM2_TEST_DATA "/png_ref.safetensors", &err) ? (fprintf(stderr, "%s\n", err.msg), -1) : 0;
}

static int teardown(void **state) {
    (void)state;
    st_close(&g_ref);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_as_pillow)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, setup, teardown);
}
