/* image_io.h: PNG reading and writing (libpng), pixel encoding (x / 127.5 - 1 and back), and image grids. */
#ifndef EDM2_HOST_IMAGE_IO_H
#define EDM2_HOST_IMAGE_IO_H

#include <stdint.h>

#include "errors.h"

#include <stddef.h>

#define PNG_MAX_SIDE 16384

/* Decodes a PNG held in memory as `channels` (1 = gray, 3 = RGB) 8-bit pixels, HWC, as Pillow reads it
 * (png_read.c: no gamma conversion, alpha dropped, ...); *pixels is malloc'ed. The size from the header must be
 * want_w x want_h where those are > 0, and at most PNG_MAX_SIDE a side: checked before the pixels are allocated.
 * `name` is used in messages. */
int png_decode(const void *buf, size_t size, const char *name, int channels, int want_w, int want_h, uint8_t **pixels,
               int *width, int *height, edm2_err *err);
/* The same for a file. */
int png_read(const char *path, int channels, int want_w, int want_h, uint8_t **pixels, int *width, int *height,
             edm2_err *err);
/* Writes 8-bit HWC pixels atomically (temporary file + rename). */
int png_write(const char *path, const uint8_t *pixels, int width, int height, int channels, edm2_err *err);
/* The PNG file of 8-bit HWC pixels (channels 1 or 3) in memory: *png malloc'ed, *size bytes. */
int png_encode(const uint8_t *pixels, int width, int height, int channels, unsigned char **png, size_t *size,
               edm2_err *err);
/* Encodes 8-bit HWC pixels into float CHW: x / 127.5 - 1. */
void pixels_encode(float *out, const uint8_t *px, int channels, int height, int width);
/* One encoded value as an 8-bit pixel: clamp((x + 1) * 127.5, 0, 255), rounded to the nearest. */
uint8_t pixel_quantize(float x);
/* Decodes float CHW into 8-bit HWC: clamp((x + 1) * 127.5, 0, 255), rounded. `channels_out` is 1 or 3;
 * images with other channel counts show their first (up to 3) channels. */
void pixels_decode(uint8_t *px, const float *x, int channels, int channels_out, int height, int width);
/* Writes a grid of n images [n, C, R, R] (float, encoded) with `cols` columns as one PNG. */
int grid_write(const char *path, const float *images, int n, int channels, int res, int cols, edm2_err *err);

#endif
