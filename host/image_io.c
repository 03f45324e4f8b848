/* image_io.c: PNG writing through libpng's simplified API (reading: png_read.c), pixel encoding, grids. */
#include "image_io.h"

#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "fileio.h"

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
