/* image_io.c: PNG I/O through libpng's simplified API, pixel encoding, grids. */
#include "image_io.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "fileio.h"

int png_decode(const void *buf, size_t size, const char *name, int channels, int want_w, int want_h, uint8_t **pixels,
               int *width, int *height, edm2_err *err) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    *pixels = NULL;
    if (!png_image_begin_read_from_memory(&img, buf, size))
        return err_set(err, "%s: not a readable PNG: %s", name, img.message);
    /* The header's size is checked before anything is allocated for the pixels. */
    if ((want_w > 0 && (int64_t)img.width != want_w) || (want_h > 0 && (int64_t)img.height != want_h)) {
        png_image_free(&img);
        return err_set(err, "%s: %ux%u pixels, expected %dx%d", name, img.width, img.height, want_w, want_h);
    }
    if (img.width > PNG_MAX_SIDE || img.height > PNG_MAX_SIDE) {
        png_image_free(&img);
        return err_set(err, "%s: %ux%u pixels (at most %d a side)", name, img.width, img.height, PNG_MAX_SIDE);
    }
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    size_t bytes = PNG_IMAGE_SIZE(img);
    /* Deflate expands at most 1032-fold and a 1-bit palette image becomes 24-bit RGB: a header that
     * announces more pixels than the file could hold is refused before they are allocated. */
    if (bytes > size * 25000 + 65536) {
        png_image_free(&img);
        return err_set(err, "%s: %ux%u pixels announced in %zu bytes: truncated or not a PNG", name, img.width,
                       img.height, size);
    }
    uint8_t *px = malloc(bytes ? bytes : 1);
    if (!px) {
        png_image_free(&img);
        return err_set(err, "%s: out of memory", name);
    }
    if (!png_image_finish_read(&img, NULL, px, 0, NULL)) {
        free(px);
        return err_set(err, "%s: PNG decode failed: %s", name, img.message);
    }
    *pixels = px;
    *width = (int)img.width;
    *height = (int)img.height;
    return 0;
}

int png_read(const char *path, int channels, int want_w, int want_h, uint8_t **pixels, int *width, int *height,
             edm2_err *err) {
    unsigned char *buf;
    size_t size;
    *pixels = NULL;
    if (map_file(path, &buf, &size, err)) return -1;
    int rc = png_decode(buf, size, path, channels, want_w, want_h, pixels, width, height, err);
    unmap_file(buf, size);
    return rc;
}

int png_encode(const uint8_t *pixels, int width, int height, int channels, unsigned char **png, size_t *size,
               edm2_err *err) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)width;
    img.height = (png_uint_32)height;
    img.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    png_alloc_size_t n = PNG_IMAGE_PNG_SIZE_MAX(img);
    *png = malloc(n);
    if (!*png) return err_set(err, "out of memory for a %dx%d PNG", width, height);
    if (!png_image_write_to_memory(&img, *png, &n, 0, pixels, 0, NULL)) {
        free(*png), *png = NULL;
        return err_set(err, "PNG encode failed: %s", img.message);
    }
    *size = n;
    return 0;
}

int png_write(const char *path, const uint8_t *pixels, int width, int height, int channels, edm2_err *err) {
    unsigned char *png;
    size_t n = 0;
    if (png_encode(pixels, width, height, channels, &png, &n, err)) return err_set(err, "%s: %s", path, err->msg);
    atomic_file af;
    int rc = af_open(&af, path, err);
    if (!rc && fwrite(png, 1, n, af.f) != n) {
        af_abort(&af);
        rc = err_set(err, "%s: write failed", path);
    } else if (!rc) {
        rc = af_commit(&af, err);
    }
    free(png);
    return rc;
}

void pixels_encode(float *out, const uint8_t *px, int channels, int height, int width) {
    for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                out[((size_t)c * height + y) * width + x] = px[((size_t)y * width + x) * channels + c] / 127.5f - 1.0f;
}

uint8_t pixel_quantize(float x) {
    float v = (x + 1.0f) * 127.5f;
    v = v < 0 ? 0 : v > 255 ? 255 : v;
    return (uint8_t)lrintf(v);
}

void pixels_decode(uint8_t *px, const float *x, int channels, int channels_out, int height, int width) {
    for (int y = 0; y < height; y++)
        for (int xx = 0; xx < width; xx++)
            for (int c = 0; c < channels_out; c++) {
                int src = c < channels ? c : channels - 1;
                px[((size_t)y * width + xx) * channels_out + c] = pixel_quantize(x[((size_t)src * height + y) * width + xx]);
            }
}

int grid_write(const char *path, const float *images, int n, int channels, int res, int cols, edm2_err *err) {
    if (n <= 0 || cols <= 0) return err_set(err, "%s: empty grid", path);
    int rows = (n + cols - 1) / cols, co = channels == 1 ? 1 : 3;
    int W = cols * res, H = rows * res;
    uint8_t *grid = calloc((size_t)W * H * co, 1), *tile = malloc((size_t)res * res * co);
    if (!grid || !tile) {
        free(grid), free(tile);
        return err_set(err, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        pixels_decode(tile, images + (size_t)i * channels * res * res, channels, co, res, res);
        int gy = (i / cols) * res, gx = (i % cols) * res;
        for (int y = 0; y < res; y++)
            memcpy(grid + (((size_t)gy + y) * W + gx) * co, tile + (size_t)y * res * co, (size_t)res * co);
    }
    int rc = png_write(path, grid, W, H, co, err);
    free(grid), free(tile);
    return rc;
}
