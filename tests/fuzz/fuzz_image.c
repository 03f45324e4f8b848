/* fuzz_image.c: the encode job's source images: arbitrary bytes decoded as RGB (PNG or JPEG by their first bytes;
 * image_read.c, as a file's or an archive entry's bytes), then the ADM centre crop to 8x8 (image_resize.c): a
 * one-line error or an image of the size read, never a crash or an unchecked allocation. */
#include "fuzz_util.h"
#include "image_read.h"
#include "image_resize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *px = NULL, crop[8 * 8 * 3];
    int w = 0, h = 0;
    edm2_err err;
    if (image_decode_rgb(data, size, "img", &px, &w, &h, &err)) {
        fuzz_one_line(&err);
        return 0;
    }
    if (w < 1 || h < 1 || (unsigned long long)w * h > IMAGE_READ_MAX_PIXELS) abort();
    if ((w < 4096 && h < 4096) && center_crop_dhariwal(px, w, h, 3, 8, crop, &err)) fuzz_one_line(&err);
    free(px);
    return 0;
}
