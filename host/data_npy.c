/* data_npy.c: the dataset tool's encoded latents, one .npy array per image in a folder or a ZIP archive, as the
 * EDM2 reference's encode step writes them (00000/img-mean-std-00000000.npy ...): the SD VAE's posterior moments
 * [2C, R, R] in float32, the C channels' means then their stds, before scaling. They are scaled as the reference
 * scales them when it trains (x = raw * scale + bias per channel, docs/vae.md "Latent scaling") from [data]
 * latent_mean, latent_std, final_mean and final_std (the reference's defaults), and training draws mean + std * n
 * anew at each use (dataset_draw), as from the encode job's moments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_sources.h"
#include "npy.h"
#include "vae_net.h"

#define NPY_VAE "sd_vae" /* the VAE of the reference's encode step (Stable Diffusion's, sd-vae-ft-mse) */

int npy_moments_open(dataset *d, const edm2_config *scaling, edm2_err *err) {
    const unsigned char *buf;
    unsigned char *owned;
    size_t n;
    char name[DATA_NAME_BYTES];
    if (dataset_file_bytes(d, 0, &buf, &n, &owned, name, err)) return -1;
    npy_array a;
    int rc = npy_parse(buf, n, name, &a, err);
    int64_t lead = 1; /* leading dimensions flattened, as the reference reshapes to (-1, H, W) */
    if (!rc && a.numel == 0) rc = err_set(err, "%s: an empty array", name); /* (else every product of dimensions fits) */
    for (int i = 0; !rc && i + 2 < a.ndim; i++) lead *= a.shape[i];
    if (!rc && (a.ndim < 3 || lead % 2 || lead < 2 || lead > DATA_MAX_CHANNELS))
        rc = err_set(err, "%s: an array [2C, H, W] of posterior means and stds was expected (2C <= %d)", name,
                     DATA_MAX_CHANNELS);
    else if (!rc && (a.shape[a.ndim - 1] != d->resolution || a.shape[a.ndim - 2] != d->resolution))
        rc = err_set(err, "%s: %lldx%lld latents, [data] resolution = %d", name, (long long)a.shape[a.ndim - 2],
                     (long long)a.shape[a.ndim - 1], d->resolution);
    else if (!rc && !scaling)
        rc = err_set(err, "%s: VAE latents where images were expected", name);
    free(owned);
    if (rc) return -1;
    d->channels = (int)(lead / 2);
    if (latent_scaling_read(scaling, "data", d->channels, d->npy_scale, d->npy_bias, err)) return -1;
    latent_scaling_format(d->npy_scale, d->npy_bias, d->channels, d->latent_scale, d->latent_bias,
                          sizeof d->latent_scale);
    snprintf(d->latents, sizeof d->latents, "%s", NPY_VAE);
    d->npy = d->moments = 1;
    return 0;
}

int npy_moments_get(const dataset *d, int index, float *img, float *std, edm2_err *err) {
    const size_t plane = (size_t)d->resolution * d->resolution, per = (size_t)d->channels * plane;
    const unsigned char *buf;
    unsigned char *owned;
    size_t n;
    char name[DATA_NAME_BYTES];
    if (dataset_file_bytes(d, index, &buf, &n, &owned, name, err)) return -1;
    npy_array a;
    int rc = npy_parse(buf, n, name, &a, err);
    if (!rc && (a.numel != 2 * per || a.ndim < 2 || a.shape[a.ndim - 1] != d->resolution ||
                a.shape[a.ndim - 2] != d->resolution))
        rc = err_set(err, "%s: expected %d x %d x %d posterior means and stds, as the first image", name,
                     2 * d->channels, d->resolution, d->resolution);
    if (!rc) {
        st_tensor view = {.dtype = a.dtype, .numel = per, .data = a.data};
        st_to_f32(&view, img);
        if (std) view.data = a.data + per * st_dtype_bytes(a.dtype), st_to_f32(&view, std);
        for (int c = 0; c < d->channels; c++)
            for (size_t p = (size_t)c * plane; p < (size_t)(c + 1) * plane; p++) {
                img[p] = img[p] * d->npy_scale[c] + d->npy_bias[c];
                if (std) std[p] = std[p] * d->npy_scale[c];
            }
    }
    free(owned);
    return rc;
}
