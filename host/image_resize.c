/* image_resize.c: Pillow's resampling of 8-bit images and the ADM centre crop (image_resize.h). The
 * arithmetic follows Pillow's Resample.c: coefficients in double, normalised per output pixel, then
 * converted to fixed point with 22 fractional bits (rounded away from zero); each pass sums pixel x
 * coefficient products in 32-bit integers starting from one half, and clips (sum >> 22) to 0..255. */
#include "image_resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2)

static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double bicubic_filter(double x) { /* a = -0.5 */
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct coeffs {
    int ksize, *bounds; /* per output pixel: first input pixel, count */
    int32_t *k;         /* [out, ksize] fixed point */
} coeffs;

/* Pillow's precompute_coeffs over the input range [0, in) and normalize_coeffs_8bpc. */
static int precompute(int in, int out, resample_filter f, coeffs *c) {
    const double support0 = f == RESAMPLE_BOX ? 0.5 : 2.0;
    double (*filter)(double) = f == RESAMPLE_BOX ? box_filter : bicubic_filter;
    double scale = (double)in / out, filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = support0 * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    double *kk = malloc((size_t)out * c->ksize * sizeof *kk);
    c->bounds = malloc((size_t)out * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out * c->ksize * sizeof *c->k);
    if (!kk || !c->bounds || !c->k) {
        free(kk);
        return -1;
    }
    for (int xx = 0; xx < out; xx++) {
        const double center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        xmax -= xmin;
        double *k = kk + (size_t)xx * c->ksize;
        int x = 0;
        for (; x < xmax; x++) {
            const double w = filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < c->ksize; x++) k[x] = 0;
        c->bounds[xx * 2] = xmin, c->bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out * c->ksize; i++)
        c->k[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS)) : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
    free(kk);
    return 0;
}

static uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int image_resize(const uint8_t *in, int w, int h, int ch, uint8_t *out, int ow, int oh, resample_filter f,
                 edm2_err *err) {
    coeffs hc = {0}, vc = {0};
    uint8_t *tmp = NULL;
    int rc = -1;
    if (precompute(w, ow, f, &hc) || precompute(h, oh, f, &vc)) {
        err_set(err, "out of memory resizing a %dx%d image", w, h);
        goto done;
    }
    const int need_h = ow != w, need_v = oh != h;
    const int y_first = vc.bounds[0], y_last = vc.bounds[oh * 2 - 2] + vc.bounds[oh * 2 - 1];
    const uint8_t *src = in;
    int src_rows_offset = 0; /* the row of `in` that row 0 of src is */
    if (need_h) {
        const int rows = need_v ? y_last - y_first : h, first = need_v ? y_first : 0;
        if (!(tmp = malloc((size_t)(rows ? rows : 1) * ow * ch))) {
            err_set(err, "out of memory resizing a %dx%d image", w, h);
            goto done;
        }
        for (int yy = 0; yy < rows; yy++)
            for (int xx = 0; xx < ow; xx++) {
                const int xmin = hc.bounds[xx * 2], xmax = hc.bounds[xx * 2 + 1];
                const int32_t *k = hc.k + (size_t)xx * hc.ksize;
                for (int c = 0; c < ch; c++) {
                    int32_t ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < xmax; x++) ss += in[((size_t)(yy + first) * w + x + xmin) * ch + c] * k[x];
                    uint8_t *dst = need_v ? tmp : out;
                    dst[((size_t)yy * ow + xx) * ch + c] = clip8(ss);
                }
            }
        if (!need_v) {
            rc = 0;
            goto done;
        }
        src = tmp, src_rows_offset = first;
    }
    if (need_v) {
        const int sw = need_h ? ow : w;
        for (int yy = 0; yy < oh; yy++) {
            const int ymin = vc.bounds[yy * 2] - src_rows_offset, ymax = vc.bounds[yy * 2 + 1];
            const int32_t *k = vc.k + (size_t)yy * vc.ksize;
            for (int xx = 0; xx < sw; xx++)
                for (int c = 0; c < ch; c++) {
                    int32_t ss = 1 << (PRECISION_BITS - 1);
                    for (int y = 0; y < ymax; y++) ss += src[((size_t)(y + ymin) * sw + xx) * ch + c] * k[y];
                    out[((size_t)yy * sw + xx) * ch + c] = clip8(ss);
                }
        }
    } else if (!need_h)
        memcpy(out, in, (size_t)w * h * ch);
    rc = 0;
done:
    free(hc.bounds), free(hc.k), free(vc.bounds), free(vc.k), free(tmp);
    return rc;
}

int center_crop_dhariwal(const uint8_t *in, int w, int h, int ch, int res, uint8_t *out, edm2_err *err) {
    uint8_t *cur = NULL, *next = NULL;
    const uint8_t *src = in;
    int cw = w, chh = h, rc = -1;
    if (w < 1 || h < 1 || res < 1) return err_set(err, "cannot crop a %dx%d image to %dx%d", w, h, res, res);
    while ((cw < chh ? cw : chh) >= 2 * res) {
        const int nw = cw / 2, nh = chh / 2;
        if (!(next = malloc((size_t)nw * nh * ch)) || image_resize(src, cw, chh, ch, next, nw, nh, RESAMPLE_BOX, err))
            goto done;
        free(cur);
        cur = next, next = NULL, src = cur, cw = nw, chh = nh;
    }
    const double scale = (double)res / (cw < chh ? cw : chh);
    const int nw = (int)nearbyint(cw * scale), nh = (int)nearbyint(chh * scale); /* Python's round: half to even */
    if (nw < res || nh < res) {
        err_set(err, "internal: crop of %dx%d to %d", cw, chh, res);
        goto done;
    }
    if (!(next = malloc((size_t)nw * nh * ch)) || image_resize(src, cw, chh, ch, next, nw, nh, RESAMPLE_BICUBIC, err))
        goto done;
    const int y0 = (nh - res) / 2, x0 = (nw - res) / 2;
    for (int y = 0; y < res; y++) memcpy(out + (size_t)y * res * ch, next + ((size_t)(y + y0) * nw + x0) * ch, (size_t)res * ch);
    rc = 0;
done:
    if (rc && !err->msg[0]) err_set(err, "out of memory cropping a %dx%d image", w, h);
    free(cur), free(next);
    return rc;
}
