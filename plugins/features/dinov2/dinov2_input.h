/* dinov2_input.h: an image as the FD_DINOv2 detector of the EDM2 reference feeds it to DINOv2 (its default
 * "torch" resizing): 8-bit values 0..255 as floats, resized to res x res by PyTorch's bicubic interpolation
 * with antialiasing (torch.nn.functional.interpolate(x, (res, res), mode='bicubic', antialias=True): Keys'
 * cubic with a = -0.5, its support widened by the scale when shrinking, each output's weights normalised to
 * sum 1, the width resampled first, no clamping), then divided by 255 and normalised with ImageNet's mean
 * (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225). */
#ifndef EDM2_DINOV2_INPUT_H
#define EDM2_DINOV2_INPUT_H

#include <stddef.h>

/* Floats of scratch dino_input needs for an H x W image. */
size_t dino_input_scratch(int H, int W, int res);
/* out[3, res, res] from img[C, H, W] with values in [0, 1] that are k / 255 (C = 1: grey, used for all three
 * colours; C = 3: RGB), with `scratch` of dino_input_scratch floats. 0, or -1 for other channel counts. */
int dino_input(const float *img, int C, int H, int W, int res, float *out, float *scratch);

#endif
