/* edm2-vae-bench: encoding and decoding throughput of the [vae] plugin of a config at a given image size, and
 * the process's peak memory (not a test). Usage:
 *   edm2-vae-bench bench/vae-sd.ini --set vae.weights=FILE [--res 512] [--images 2] [--threads N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "setup.h"
#include "vae_net.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double peak_mib(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    char *sets[64];
    int nsets = 0, threads = 0, res = 512, n = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--res") && i + 1 < argc) res = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < 64) sets[nsets++] = argv[++i];
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else path = NULL, i = argc;
    }
    if (!path || res < 8 || n < 1) {
        fprintf(stderr, "usage: edm2-vae-bench CONFIG.ini [--res 512] [--images 2] [--threads N] [--set s.k=v ...]\n");
        return 2;
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
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
    double t0 = now();
    if (vae_encode_images(&vi, img, n, res, res, mom, &err)) goto fail;
    const double enc = now() - t0, after_enc = peak_mib();
    for (int i = 0; i < n; i++) memcpy(mom + (size_t)i * lat, mom + (size_t)i * 2 * lat, lat * sizeof *mom);
    t0 = now();
    if (vae_decode_latents(&vi, mom, n, h, h, out, &err)) goto fail;
    const double dec = now() - t0;
    printf("%s on %s, %dx%d images (latents %dx%dx%d), %d images, %d threads\n", s.rc.plugin[EDM2_KIND_VAE]->desc->id,
           rt.bvt->device_name(rt.b), res, res, L, h, h, n, threads);
    printf("encode: %.3f s per image (%.3f images/s); decode: %.3f s per image (%.3f images/s)\n", enc / n, n / enc,
           dec / n, n / dec);
    printf("peak memory: %.0f MiB (weights loaded: %.0f MiB, after encoding: %.0f MiB; before the VAE: %.0f MiB)\n",
           peak_mib(), after_weights, after_enc, base);
    vae_close(&vi);
    runtime_close(&rt);
    return 0;
fail:
    LOG_ERROR("%s", err.msg);
    return 1;
}
