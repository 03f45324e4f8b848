/* png_read.c: PNG decoding (png_decode, png_read; image_io.h) through libpng's own reading functions, giving the
 * pixels Pillow gives (the EDM / EDM2 dataset tools read images with Image.open(...).convert("RGB"), and training
 * reads the tools' PNGs with Image.open), bitwise:
 *   - no gamma, colour-profile or sRGB conversion (gAMA, cHRM, sRGB and iCCP are ignored, as Pillow ignores them);
 *   - palettes expanded to their colours; 1-, 2- and 4-bit grey scaled to 8 bits (x 255, 85, 17);
 *   - 16-bit colour and grey-with-alpha: the high byte of each sample; 16-bit grey (Pillow's mode I;16, whose
 *     conversion clips): min(value, 255);
 *   - alpha and tRNS transparency dropped (not composited);
 *   - grey replicated to RGB; RGB to grey (channels = 1) as Pillow's convert("L"): (19595 R + 38470 G + 7471 B +
 *     32768) >> 16;
 *   - interlaced images de-interlaced.
 * The header's size is checked before any pixel memory is allocated. */
#include <setjmp.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "image_io.h"

typedef struct png_source {
    const unsigned char *data;
    size_t size, at;
    char msg[200]; /* libpng's error */
} png_source;

static void source_read(png_structp png, png_bytep out, size_t n) {
    png_source *s = png_get_io_ptr(png);
    if (n > s->size - s->at) png_error(png, "the file ends inside the image (cut short)");
    memcpy(out, s->data + s->at, n);
    s->at += n;
}

static void on_error(png_structp png, png_const_charp msg) {
    png_source *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; } /* (damaged ancillary chunks) */

/* One decoded row of `src_channels` samples a pixel (8-bit, or 16-bit big-endian grey when wide) into `channels`
 * 8-bit ones. */
static void convert_row(uint8_t *out, const uint8_t *in, int width, int src_channels, int wide, int channels) {
    for (int x = 0; x < width; x++) {
        const uint8_t *p = in + (size_t)x * src_channels * (wide ? 2 : 1);
        uint8_t *q = out + (size_t)x * channels;
        if (wide) { /* 16-bit grey, Pillow's I;16: clipped to 255 */
            const unsigned v = (unsigned)p[0] << 8 | p[1];
            memset(q, v > 255 ? 255 : (int)v, (size_t)channels);
        } else if (src_channels <= 2) { /* grey (and alpha) */
            memset(q, p[0], (size_t)channels);
        } else if (channels == 3) { /* RGB (and alpha) */
            memcpy(q, p, 3);
        } else {
            q[0] = (uint8_t)((19595u * p[0] + 38470u * p[1] + 7471u * p[2] + 0x8000u) >> 16);
        }
    }
}

int png_decode(const void *buf, size_t size, const char *name, int channels, int want_w, int want_h, uint8_t **pixels,
               int *width, int *height, edm2_err *err) {
    *pixels = NULL;
    png_source src = {.data = buf, .size = size};
    if (size < 8 || png_sig_cmp(buf, 0, 8)) return err_set(err, "%s: not a readable PNG: not a PNG signature", name);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL, *volatile rows = NULL;
    png_bytep *volatile ptrs = NULL;
    volatile int stage = 0; /* 0: header, 1: pixels */
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return err_set(err, "%s: out of memory", name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(px), free(rows), free(ptrs);
        return err_set(err, stage ? "%s: PNG decode failed: %s" : "%s: not a readable PNG: %s", name, src.msg);
    }
    png_set_read_fn(png, &src, source_read);
    /* Every chunk but IHDR, PLTE, tRNS, IDAT and IEND is skipped unread (text, profiles, ...: nothing here uses
     * them, and a damaged length there asked libpng for gigabytes); what libpng still buffers is capped. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_set_chunk_malloc_max(png, (png_alloc_size_t)1 << 24);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, type, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
    const char *why = NULL;
    char msg[160];
    if ((want_w > 0 && (int64_t)w != want_w) || (want_h > 0 && (int64_t)h != want_h))
        snprintf(msg, sizeof msg, "%ux%u pixels, expected %dx%d", w, h, want_w, want_h), why = msg;
    else if (w > PNG_MAX_SIDE || h > PNG_MAX_SIDE)
        snprintf(msg, sizeof msg, "%ux%u pixels (at most %d a side)", w, h, PNG_MAX_SIDE), why = msg;
    /* Deflate expands at most 1032-fold and a 1-bit palette image becomes 24-bit RGB: a header that announces
     * more pixels than the file could hold is refused before they are allocated. */
    else if ((size_t)w * h * 3 > size * 25000 + 65536)
        snprintf(msg, sizeof msg, "%ux%u pixels announced in %zu bytes: truncated or not a PNG", w, h, size), why = msg;
    if (why) {
        png_destroy_read_struct(&png, &info, NULL);
        return err_set(err, "%s: %s", name, why);
    }
    const int wide = depth == 16 && type == PNG_COLOR_TYPE_GRAY;
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !wide) png_set_strip_16(png); /* the high byte */
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int src_channels = png_get_channels(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)w * src_channels * (wide ? 2 : 1)) png_error(png, "unexpected row layout");
    stage = 1;
    if (!(px = malloc((size_t)w * h * channels + 1)) || !(rows = malloc(rowbytes * (passes > 1 ? h : 1) + 1)))
        png_error(png, "out of memory");
    if (passes > 1) { /* interlaced: the whole image, then converted */
        if (!(ptrs = malloc(sizeof(png_bytep) * (h ? h : 1)))) png_error(png, "out of memory");
        for (png_uint_32 y = 0; y < h; y++) ptrs[y] = rows + rowbytes * y;
        png_read_image(png, ptrs);
        for (png_uint_32 y = 0; y < h; y++)
            convert_row(px + (size_t)w * channels * y, rows + rowbytes * y, (int)w, src_channels, wide, channels);
    } else {
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(png, rows, NULL);
            convert_row(px + (size_t)w * channels * y, rows, (int)w, src_channels, wide, channels);
        }
    }
    png_destroy_read_struct(&png, &info, NULL); /* (what follows the pixels is not read, as Pillow leaves it) */
    free(rows), free(ptrs);
    *pixels = px;
    *width = (int)w, *height = (int)h;
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
