/* image_read.h: reading a source image of any size as 8-bit RGB for the dataset tool: PNG (libpng; grey,
 * palette, 16-bit and alpha converted as png_read does) and JPEG (libjpeg-turbo, its default, exact integer
 * IDCT and smooth chroma upsampling, as Pillow decodes; grey replicated to RGB; CMYK and YCCK (ImageNet has a
 * few) converted to RGB as Pillow's convert("RGB") does), told apart by their first bytes. */
#ifndef EDM2_HOST_IMAGE_READ_H
#define EDM2_HOST_IMAGE_READ_H

#include <stdint.h>

#include "errors.h"

#define IMAGE_READ_MAX_PIXELS (1ull << 28) /* 268M pixels (16384 x 16384) */

/* *px (malloc'ed) = the pixels [h, w, 3] of the PNG or JPEG in data[0, n) (told apart by their first bytes);
 * `name` (the file, or ARCHIVE:ENTRY) for messages. 0, or -1 with a reason naming it. */
int image_decode_rgb(const unsigned char *data, size_t n, const char *name, uint8_t **px, int *w, int *h,
                     edm2_err *err);
/* crop[res, res, 3] = the dataset tool's centre crop to res x res (center_crop_dhariwal, image_resize.h) of the
 * image in data[0, n) read as RGB. 0, or -1 with a reason naming it. */
int image_decode_crop(const unsigned char *data, size_t n, const char *name, int res, uint8_t *crop, edm2_err *err);
/* The same two of the file at `path`. */
int image_read_rgb(const char *path, uint8_t **px, int *w, int *h, edm2_err *err);
int image_read_crop(const char *path, int res, uint8_t *crop, edm2_err *err);
/* 1 when this build reads JPEG files (libjpeg was found when it was configured). */
int image_read_has_jpeg(void);

#endif
