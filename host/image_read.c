/* image_read.c: source images of any size as 8-bit RGB (image_read.h). */
#include "image_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "image_io.h"
#include "image_resize.h"

#ifdef EDM2_HAVE_JPEG
#include <jpeglib.h>
#include <setjmp.h>

typedef struct jpeg_failure {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_fail(j_common_ptr c) {
    jpeg_failure *f = (jpeg_failure *)c->err;
    f->mgr.format_message(c, f->msg);
    longjmp(f->jump, 1);
}

static void jpeg_quiet(j_common_ptr c, int level) { (void)c, (void)level; } /* warnings: corrupt data is still decoded */

/* px[n x 4] CMYK as a JPEG stores it, into px[n x 3] RGB in place, as Pillow reads it: the stored values inverted
 * (Adobe's convention, which Pillow assumes for every CMYK JPEG), then R = (255 - K) - C (255 - K) / 255 with the
 * quotient rounded to nearest (likewise G from M, B from Y), Pillow's conversion to RGB. */
static void cmyk_to_rgb(uint8_t *px, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = px + 4 * i;
        const unsigned nk = s[3]; /* 255 - K, K = 255 - stored */
        uint8_t rgb[3];
        for (int c = 0; c < 3; c++) {
            const unsigned t = (255u - s[c]) * nk + 128; /* (255 - stored) = the ink, times 255 - K, rounded / 255 */
            rgb[c] = (uint8_t)(nk - (((t >> 8) + t) >> 8));
        }
        memcpy(px + 3 * i, rgb, 3); /* (3 i <= 4 i: never ahead of what is still to be read) */
    }
}

static int read_jpeg(const char *path, const unsigned char *data, size_t n, uint8_t **px, int *w, int *h,
                     edm2_err *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    uint8_t *volatile out = NULL;
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_fail;
    fail.mgr.emit_message = jpeg_quiet;
    if (setjmp(fail.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(out);
        return err_set(err, "%s: not a readable JPEG (%s)", path, fail.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    if ((unsigned long long)cinfo.image_width * cinfo.image_height > IMAGE_READ_MAX_PIXELS || !cinfo.image_width ||
        !cinfo.image_height) {
        jpeg_destroy_decompress(&cinfo);
        return err_set(err, "%s: %ux%u pixels: empty or too large", path, cinfo.image_width, cinfo.image_height);
    }
    const int cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB; /* grey is replicated by libjpeg; YCCK made CMYK by it */
    jpeg_start_decompress(&cinfo);
    const size_t stride = (size_t)cinfo.output_width * 3;
    if (cinfo.output_components != (cmyk ? 4 : 3) ||
        !(out = malloc((stride + cinfo.output_width) * cinfo.output_height))) { /* (CMYK: 4 bytes a pixel) */
        jpeg_destroy_decompress(&cinfo);
        return err_set(err, "%s: cannot decode as RGB (or out of memory)", path);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        const size_t y = cinfo.output_scanline;
        JSAMPROW row = out + (cmyk ? 4 * cinfo.output_width : stride) * y;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (cmyk) cmyk_to_rgb(out, (size_t)cinfo.output_width * cinfo.output_height);
    *w = (int)cinfo.output_width, *h = (int)cinfo.output_height;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    *px = out;
    return 0;
}

int image_read_has_jpeg(void) { return 1; }
#else
int image_read_has_jpeg(void) { return 0; }
#endif

int image_decode_rgb(const unsigned char *data, size_t n, const char *name, uint8_t **px, int *w, int *h,
                     edm2_err *err) {
    *px = NULL;
    if (n >= 8 && !memcmp(data, "\x89PNG\r\n\x1a\n", 8)) return png_decode(data, n, name, 3, 0, 0, px, w, h, err);
    if (n >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
#ifdef EDM2_HAVE_JPEG
        if (n > 0xFFFFFFFFu) return err_set(err, "%s: a JPEG of %zu bytes (at most 4 GiB)", name, n);
        return read_jpeg(name, data, n, px, w, h, err);
#else
        return err_set(err, "%s: a JPEG, and this build has no JPEG support (apt-get install libjpeg-dev, rebuild)", name);
#endif
    }
    return err_set(err, "%s: neither PNG nor JPEG", name);
}

int image_decode_crop(const unsigned char *data, size_t n, const char *name, int res, uint8_t *crop, edm2_err *err) {
    uint8_t *px = NULL;
    int w, h;
    if (image_decode_rgb(data, n, name, &px, &w, &h, err)) return -1;
    int rc = center_crop_dhariwal(px, w, h, 3, res, crop, err);
    free(px);
    return rc ? err_set(err, "%s: %s", name, err->msg) : 0;
}

int image_read_rgb(const char *path, uint8_t **px, int *w, int *h, edm2_err *err) {
    unsigned char *data;
    size_t n;
    *px = NULL;
    if (map_file(path, &data, &n, err)) return -1;
    int rc = image_decode_rgb(data, n, path, px, w, h, err);
    unmap_file(data, n);
    return rc;
}

int image_read_crop(const char *path, int res, uint8_t *crop, edm2_err *err) {
    unsigned char *data;
    size_t n;
    if (map_file(path, &data, &n, err)) return -1;
    int rc = image_decode_crop(data, n, path, res, crop, err);
    unmap_file(data, n);
    return rc;
}
