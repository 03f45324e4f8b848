/* edm2-vae-bench: encoding and decoding throughput of the [vae] plugin of a config at a given image size, and
 * the process's peak memory (not a test). Usage:
 *   edm2-vae-bench bench/vae-sd.ini --set vae.weights=FILE [--res 512] [--images 2] [--threads N]
 *   edm2-vae-bench bench/vae-sd.ini --random-weights [...]   (seeded random weights of the plugin's shapes, for
 *                                                            timing where the real file is not at hand) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli_args.h"
#include "edm2/edm2_philox.h"
#include "log.h"
#include "progress.h"
#include "safetensors.h"
#include "setup.h"
#include "vae_net.h"

static double peak_mib(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

/* Seeded random weights of the [vae] plugin's table at `path`: weights of 2+ dimensions N(0, 1 / fan_in), norm
 * scales 1, biases 0. */
static int random_weights(const setup *s, runtime *rt, const char *path, edm2_err *err) {
    const plugin_rec *rec = s->rc.plugin[EDM2_KIND_VAE];
    const edm2_vae_vtable *vt = rec->desc->vtable;
    config_view v;
    config_view_plugin(&v, &s->rc, EDM2_KIND_VAE);
    edm2_vae *x = NULL;
    if (vt->create(&rt->services, &v.api, &rt->ops, &x) != EDM2_OK) return err_set(err, "[vae] %s: create", rec->desc->id);
    edm2_vae_info info = {.struct_size = sizeof info};
    vt->get_info(x, &info);
    float *arena = malloc(info.arena_floats * sizeof *arena + 1);
    st_out *outs = calloc(info.param_count, sizeof *outs);
    int rc = -1;
    if (!arena || !outs) {
        err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < info.param_count; i++) {
        const edm2_param_desc *d = &info.params[i];
        const float g = d->ndim >= 2 ? 1.0f / sqrtf((float)(d->numel / (size_t)d->shape[0])) : 0.0f;
        const int norm = d->ndim < 2 && strstr(d->name, "norm") && strstr(d->name, "weight");
        for (size_t k = 0; k < d->numel; k++)
            arena[d->offset + k] = d->ndim >= 2 ? g * edm2_philox_normal(1, i, k) : norm ? 1.0f : 0.0f;
        outs[i] = (st_out){d->name, ST_F32, (int)d->ndim, {0}, arena + d->offset};
        for (uint32_t k = 0; k < d->ndim; k++) outs[i].shape[k] = d->shape[k];
    }
    rc = st_write(path, outs, info.param_count, NULL, NULL, 0, err);
done:
    free(arena), free(outs);
    vt->destroy(x);
    return rc;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    char *sets[64];
    int nsets = 0, threads = 0, res = 512, n = 2, random = 0;
    char tmp[64] = "", wset[128] = "";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (arg_int("edm2-vae-bench", "--threads", argv[++i], 0, 4096, &threads)) return 2;
        } else if (!strcmp(argv[i], "--res") && i + 1 < argc) {
            if (arg_int("edm2-vae-bench", "--res", argv[++i], 8, 8192, &res)) return 2;
        } else if (!strcmp(argv[i], "--images") && i + 1 < argc) {
            if (arg_int("edm2-vae-bench", "--images", argv[++i], 1, 1000000, &n)) return 2;
        }
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < 63) sets[nsets++] = argv[++i];
        else if (!strcmp(argv[i], "--random-weights")) random = 1;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else path = NULL, i = argc;
    }
    if (!path || res < 8 || n < 1) {
        fprintf(stderr, "usage: edm2-vae-bench CONFIG.ini [--res 512] [--images 2] [--threads N] [--random-weights] "
                        "[--set s.k=v ...]\n");
        return 2;
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (random) { /* a temporary weights file, named before the config is read */
        snprintf(tmp, sizeof tmp, "/tmp/edm2-vae-bench-XXXXXX");
        int fd = mkstemp(tmp);
        if (fd < 0) {
            LOG_ERROR("cannot create a temporary file in /tmp");
            return 1;
        }
        close(fd);
        snprintf(wset, sizeof wset, "vae.weights=%s", tmp);
        sets[nsets++] = wset;
    }
    setup s;
    edm2_err err;
    if (setup_from_config(&s, path, sets, nsets, &err)) {
        LOG_ERROR("%s", err.msg);
        return 1;
    }
    if (!s.rc.plugin[EDM2_KIND_VAE]) {
        LOG_ERROR("%s: needs a [vae] section", path);
        return 1;
    }
    runtime rt;
    vae_instance vi;
    memset(&vi, 0, sizeof vi);
    config_view v;
    config_view_plugin(&v, &s.rc, EDM2_KIND_BACKEND);
    if (runtime_open(&rt, s.rc.plugin[EDM2_KIND_BACKEND], &v.api, threads, &err)) goto fail;
    if (random && random_weights(&s, &rt, tmp, &err)) goto fail;
    config_view_plugin(&v, &s.rc, EDM2_KIND_VAE);
    const double base = peak_mib();
    if (vae_open(&vi, &rt, s.rc.plugin[EDM2_KIND_VAE], &v.api, &err)) goto fail;
    const int d = vi.info.downsample, L = vi.info.latent_channels, h = res / d;
    const size_t in = (size_t)3 * res * res, lat = (size_t)L * h * h;
    float *img = malloc(in * n * sizeof *img), *mom = malloc(2 * lat * n * sizeof *mom), *out = malloc(in * n * sizeof *out);
    if (!img || !mom || !out) {
        LOG_ERROR("out of memory");
        return 1;
    }
    for (size_t i = 0; i < in * n; i++) img[i] = (float)((i * 2654435761u) % 256) / 255.0f;
    const double after_weights = peak_mib();
    double t0 = now_s();
    if (vae_encode_images(&vi, img, n, res, res, mom, &err)) goto fail;
    const double enc = now_s() - t0, after_enc = peak_mib();
    for (int i = 0; i < n; i++) memcpy(mom + (size_t)i * lat, mom + (size_t)i * 2 * lat, lat * sizeof *mom);
    t0 = now_s();
    if (vae_decode_latents(&vi, mom, n, h, h, out, &err)) goto fail;
    const double dec = now_s() - t0;
    printf("%s on %s, %dx%d images (latents %dx%dx%d), %d images, %d threads\n", s.rc.plugin[EDM2_KIND_VAE]->desc->id,
           rt.bvt->device_name(rt.b), res, res, L, h, h, n, threads);
    printf("encode: %.3f s per image (%.3f images/s); decode: %.3f s per image (%.3f images/s)\n", enc / n, n / enc,
           dec / n, n / dec);
    printf("peak memory: %.0f MiB (weights loaded: %.0f MiB, after encoding: %.0f MiB; before the VAE: %.0f MiB)\n",
           peak_mib(), after_weights, after_enc, base);
    vae_close(&vi);
    runtime_close(&rt);
    if (*tmp) remove(tmp);
    return 0;
fail:
    LOG_ERROR("%s", err.msg);
    if (*tmp) remove(tmp);
    return 1;
}
