/* fuzz_png.c: PNG decoding of arbitrary bytes, with and without an expected size: never an allocation
 * larger than the header's checked size, never a crash. The first byte picks gray or RGB. */
#include "fuzz_util.h"
#include "image_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int channels = data[0] & 1 ? 3 : 1, want = data[0] & 2 ? 8 : 0;
    uint8_t *px = NULL;
    int w = 0, h = 0;
    edm2_err err;
    if (png_decode(data + 1, size - 1, "fuzz.png", channels, want, want, &px, &w, &h, &err)) fuzz_one_line(&err);
    else if (w < 1 || h < 1 || w > PNG_MAX_SIDE || h > PNG_MAX_SIDE || (want && (w != want || h != want))) abort();
    free(px);
    return 0;
}
