/* data_tensors.c: a safetensors file holding `images` [N, C, R, R] already in data scale (e.g. the
 * normalised VAE latents of the img512 presets) and optionally `labels` [N] of class indices (any float
 * dtype, integral values in 0..DATA_MAX_CLASSES-1). Images stay in the mapped file. Metadata of the encode
 * job: edm2.latents (+ scale, bias) mark VAE latents; edm2.latent_moments = 1 marks [N, 2C, R, R] posterior
 * means and stds, from which training draws (dataset_draw). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_sources.h"
#include "safetensors.h"

int tensors_open(dataset *d, const char *path, int max_images, edm2_err *err) {
    st_file *f = calloc(1, sizeof *f);
    if (!f) return err_set(err, "out of memory");
    d->tensors = f;
    if (st_open(f, path, err)) return -1;
    const st_tensor *im = st_find(f, "images"), *lb = st_find(f, "labels");
    if (!im || im->ndim != 4 || im->shape[2] != im->shape[3] || im->shape[0] < 1 || im->shape[1] < 1 || im->shape[2] < 1)
        return err_set(err, "%s: needs a tensor 'images' [N, C, R, R] with N, C, R >= 1", path);
    if (im->shape[0] > DATA_MAX_IMAGES || im->shape[1] > DATA_MAX_CHANNELS || im->shape[2] > DATA_MAX_RESOLUTION)
        return err_set(err, "%s: images [%lld, %lld, %lld, %lld]: at most %d images of %d channels and %d pixels a side",
                       path, (long long)im->shape[0], (long long)im->shape[1], (long long)im->shape[2],
                       (long long)im->shape[3], DATA_MAX_IMAGES, DATA_MAX_CHANNELS, DATA_MAX_RESOLUTION);
    if (lb && (lb->ndim != 1 || lb->shape[0] != im->shape[0]))
        return err_set(err, "%s: 'labels' must be [N] class indices, N = %lld", path, (long long)im->shape[0]);
    d->t_images = im;
    const char *lat = st_meta(f, "edm2.latents"), *ls = st_meta(f, "edm2.latent_scale"), *lb2 = st_meta(f, "edm2.latent_bias");
    if (lat && (!ls || !lb2 || strlen(lat) >= sizeof d->latents || strlen(ls) >= sizeof d->latent_scale ||
                strlen(lb2) >= sizeof d->latent_bias))
        return err_set(err, "%s: edm2.latents without a readable edm2.latent_scale and edm2.latent_bias", path);
    if (lat) {
        snprintf(d->latents, sizeof d->latents, "%s", lat);
        snprintf(d->latent_scale, sizeof d->latent_scale, "%s", ls);
        snprintf(d->latent_bias, sizeof d->latent_bias, "%s", lb2);
    }
    d->count = (int)im->shape[0];
    if (max_images > 0 && max_images < d->count) d->count = max_images;
    d->channels = (int)im->shape[1];
    const char *mom = st_meta(f, "edm2.latent_moments");
    if (mom && !strcmp(mom, "1")) { /* [N, 2C, R, R]: mean, then std */
        if (im->shape[1] % 2) return err_set(err, "%s: edm2.latent_moments = 1 needs an even channel count", path);
        d->moments = 1;
        d->channels /= 2;
    }
    if (im->shape[2] != d->resolution)
        return err_set(err, "%s: images are %lldx%lld, but [data] resolution = %d", path, (long long)im->shape[2],
                       (long long)im->shape[3], d->resolution);
    if (lb) {
        float *l = malloc(lb->numel * sizeof(float) + 1);
        d->labels = malloc((size_t)d->count * sizeof *d->labels);
        if (!l || !d->labels) {
            free(l);
            return err_set(err, "out of memory");
        }
        st_to_f32(lb, l);
        int rc = 0;
        for (int i = 0; i < d->count && !rc; i++) {
            if (!(l[i] >= 0 && l[i] < DATA_MAX_CLASSES && l[i] == floorf(l[i])))
                rc = err_set(err, "%s: labels[%d] = %g is not a class index in 0..%d", path, i, l[i], DATA_MAX_CLASSES - 1);
            else d->labels[i] = (int32_t)l[i];
        }
        free(l);
        if (rc || labels_finish(d, path, err)) return -1;
    }
    snprintf(d->desc, sizeof d->desc, "tensors %.300s: %d images, %dx%dx%d, %d classes", path, d->count, d->channels,
             d->resolution, d->resolution, d->label_dim);
    return 0;
}
