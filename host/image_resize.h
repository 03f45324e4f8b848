/* image_resize.h: 8-bit image resampling exactly as Pillow's Image.resize computes it (separable
 * convolution with Pillow's filter support, its coefficient rounding to 22-bit fixed point, horizontal pass
 * then vertical, rounding and clipping to 8 bits between them), and the centre crop of the ADM / EDM2
 * dataset tool built on it ("center-crop-dhariwal"): halve with BOX while the short side is at least twice
 * the target, resize with BICUBIC so the short side is the target (sizes rounded half to even, as Python's
 * round), crop the centre. Images are HWC, 1 to 4 channels. */
#ifndef EDM2_HOST_IMAGE_RESIZE_H
#define EDM2_HOST_IMAGE_RESIZE_H

#include <stdint.h>

#include "errors.h"

typedef enum { RESAMPLE_BOX, RESAMPLE_BICUBIC } resample_filter;

/* out[oh, ow, ch] = Pillow's im.resize((ow, oh), filter) of in[h, w, ch]. 0, or -1 (out of memory). */
int image_resize(const uint8_t *in, int w, int h, int ch, uint8_t *out, int ow, int oh, resample_filter f,
                 edm2_err *err);
/* out[res, res, ch] = the centre crop of in[h, w, ch]; the short side must be at least 1. 0 or -1. */
int center_crop_dhariwal(const uint8_t *in, int w, int h, int ch, int res, uint8_t *out, edm2_err *err);

#endif
