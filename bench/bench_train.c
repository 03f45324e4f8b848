/* bench_train.c: edm2-bench, the training and sampling benchmark (a program, not a test). For the
 * network/loss/optimizer/EMA of a train config it measures training-step throughput (forced weight
 * normalisation, loss forward+backward, Adam, EMA) and the evaluation forward time, and relates the
 * achieved GFLOP/s to the machine's matrix-product rate timed in the same run: on the cpu backend
 * OpenBLAS sgemm 2048^3 (same threads), on the cuda backend a bf16 8192^3 cuBLAS product on the GPU
 * (edm2_bench_gemm_cuda.so, gemm_cuda.cu). --no-sgemm (or --no-gemm) skips it. With training it also times the
 * data loader drawing that many images from posterior moments, on the threads a training run would use, to show
 * whether the data keep up.
 *
 *   edm2-bench CONFIG.ini [--threads N] [--steps N] [--warmup N] [--only train|eval] [--no-sgemm]
 *              [--sample] [--profile] [--verbose] [--set s.k=v ...]
 * Warm-up steps are not timed: 2 by default, 6 on the cuda backend, whose network captures its passes as
 * CUDA graphs over the first few (a one-time cost that the timed steps must not include). --profile (cuda
 * backend) runs the CUDA profiler over the timed training steps and evaluation passes only, so that `ncu
 * --profile-from-start off` sees steady passes, without the warm-up's cuDNN algorithm trials
 * (bench/kernel_profile.py; --only train or --only eval picks one kind). --verbose shows the plugins' debug
 * lines (the CUDA network's cuDNN algorithm choices among them).
 */
#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_args.h"
#include "config.h"
#include "dataset.h"
#include "generate.h"
#include "loader.h"
#include "log.h"
#include "progress.h"
#include "runtime.h"
#include "safetensors.h"
#include "setup.h"

/* The data loader's rate in images/s for C x R x R images drawn from posterior moments (mean + std n per use, as
 * the img512 presets' latents: the costliest source per value), on `threads` threads (what a training run on this
 * backend uses): a temporary tensors file of `batch` random moments, 4 batches timed after one. -1 on failure. */
static double data_rate(int C, int R, int batch, int threads, edm2_err *err) {
    char path[] = "/tmp/edm2-bench-data-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return err_set(err, "cannot create a temporary file in /tmp"), -1;
    close(fd);
    const size_t per = (size_t)2 * C * R * R;
    float *m = malloc((size_t)batch * per * sizeof *m);
    double rate = -1;
    dataset d;
    memset(&d, 0, sizeof d);
    loader l;
    memset(&l, 0, sizeof l);
    cfg c = {0};
    char res[16];
    snprintf(res, sizeof res, "%d", R);
    const st_out o = {"images", ST_F32, 4, {batch, 2 * C, R, R}, m};
    const char *keys[] = {"edm2.latent_moments"}, *vals[] = {"1"};
    const float *img, *lab;
    if (!m) {
        err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)batch * per; i++) m[i] = (i / (per / 2)) % 2 ? 0.5f : (float)(i % 97) * 0.01f;
    if (st_write(path, &o, 1, keys, vals, 1, err) || cfg_put(&c, "data", "source", "tensors") ||
        cfg_put(&c, "data", "path", path) || cfg_put(&c, "data", "resolution", res) || dataset_open(&d, &c, err) ||
        loader_open(&l, &d, 1, batch, 0, (uint64_t)batch, 0, 0, NULL, threads, err) || loader_next(&l, &img, &lab, err))
        goto done;
    const double t0 = now_s();
    for (int k = 0; k < 4; k++)
        if (loader_next(&l, &img, &lab, err)) goto done;
    rate = 4.0 * batch / (now_s() - t0);
done:
    loader_close(&l);
    dataset_close(&d);
    cfg_free(&c);
    unlink(path);
    free(m);
    return rate;
}

/* OpenBLAS sgemm 2048 x 2048 x 2048, best of 5, in GFLOP/s. */
static double sgemm_rate(int threads) {
    const int n = 2048;
    float *a = malloc((size_t)n * n * sizeof(float)), *b = malloc((size_t)n * n * sizeof(float)),
          *c = malloc((size_t)n * n * sizeof(float));
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        best = fmin(best, now_s() - t0);
    }
    free(a), free(b), free(c);
    return 2.0 * n * n * (double)n / best / 1e9;
}

/* edm2_bench_gemm_cuda.so beside this program (gemm_cuda.cu), loaded once and kept (it shares the process's
 * CUDA runtime); NULL with the reason in why. */
static void *cuda_module(char *why, size_t len) {
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 64);
    if (n > 0) path[n] = 0;
    char *slash = n > 0 ? strrchr(path, '/') : NULL;
    if (!slash) return snprintf(why, len, "cannot find this program's folder"), NULL;
    strcpy(slash + 1, "edm2_bench_gemm_cuda.so");
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) snprintf(why, len, "%.300s", dlerror());
    return h;
}

/* The cuda backend's bf16 GEMM rate in GFLOP/s; -1 with the reason in why when it cannot be timed. */
static double cuda_gemm_rate(runtime *rt, char *why, size_t len) {
    void *h = cuda_module(why, len);
    if (!h) return -1;
    double (*tflops)(void *, char *, size_t);
    *(void **)&tflops = dlsym(h, "edm2_bench_bf16_gemm_tflops");
    edm2_backend_native nat;
    memset(&nat, 0, sizeof nat);
    nat.struct_size = sizeof nat;
    if (!tflops || !rt->bvt->native || rt->bvt->native(rt->b, &nat) != EDM2_OK || !nat.stream)
        return snprintf(why, len, "edm2_bench_gemm_cuda.so: no timing function, or the backend has no CUDA stream"), -1;
    const double r = tflops(nat.stream, why, len);
    return r > 0 ? r * 1e3 : -1;
}

static int usage(void) {
    fprintf(stderr, "usage: edm2-bench CONFIG.ini [--threads N] [--steps N] [--warmup N] [--only train|eval] [--no-gemm] "
                    "[--sample] [--profile] [--verbose] [--set s.k=v ...]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    char *sets[64];
    int nsets = 0, threads = 0, steps = 10, warmup = -1, do_train = 1, do_eval = 1, do_sgemm = 1, do_sample = 0,
        do_profile = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            if (arg_int("edm2-bench", "--threads", argv[++i], 0, 4096, &threads)) return 2;
        } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            if (arg_int("edm2-bench", "--steps", argv[++i], 1, 1000000, &steps)) return 2;
        } else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) {
            if (arg_int("edm2-bench", "--warmup", argv[++i], 0, 1000000, &warmup)) return 2;
        }
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < 64) sets[nsets++] = argv[++i];
        else if (!strcmp(argv[i], "--no-sgemm") || !strcmp(argv[i], "--no-gemm")) do_sgemm = 0;
        else if (!strcmp(argv[i], "--sample")) do_sample = 1;
        else if (!strcmp(argv[i], "--profile")) do_profile = 1;
        else if (!strcmp(argv[i], "--verbose")) log_set_level(EDM2_LOG_DEBUG);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            const char *w = argv[++i];
            do_train = !strcmp(w, "train"), do_eval = !strcmp(w, "eval");
            if (!do_train && !do_eval) {
                LOG_ERROR("edm2-bench: --only '%s': expected train or eval", w);
                return 2;
            }
        }
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            return usage();
        }
    }
    if (!path) {
        return usage();
    }
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    setup s;
    edm2_err err = {0};
    if (setup_from_config(&s, path, sets, nsets, &err)) {
        LOG_ERROR("%s", err.msg);
        return 1;
    }
    const run_config *rc = &s.rc;
    if (!rc->plugin[EDM2_KIND_NETWORK] || !rc->plugin[EDM2_KIND_LOSS] || !rc->plugin[EDM2_KIND_OPTIMIZER]) {
        LOG_ERROR("%s: a train config is needed ([network], [loss], [optimizer])", path);
        setup_free(&s);
        return 1;
    }
    /* Everything this run holds, released at the end (done:), on success and failure alike. */
    runtime rt;
    net_instance ni;
    const edm2_loss_vtable *lvt = rc->plugin[EDM2_KIND_LOSS]->desc->vtable;
    const edm2_optimizer_vtable *ovt = rc->plugin[EDM2_KIND_OPTIMIZER]->desc->vtable;
    edm2_loss *loss = NULL;
    edm2_optimizer *opt = NULL;
    float *bufs[6] = {NULL}; /* y, grads, ema, labels, D, sigma */
    memset(&rt, 0, sizeof rt), memset(&ni, 0, sizeof ni);
    int status = 1;
    config_view v, tv;
    config_view_host(&tv, rc->cfg, "training");
    const int batch = (int)edm2_cfg_int(&tv.api, "batch", 64);
    config_view_plugin(&v, rc, EDM2_KIND_BACKEND);
    if (runtime_open(&rt, rc->plugin[EDM2_KIND_BACKEND], &v.api, threads, &err)) goto fail;
    if (warmup < 0) warmup = rt.backend_rec->desc->backend == EDM2_BACKEND_CUDA ? 6 : 2;
    int (*profiler)(int) = NULL; /* --profile: the CUDA profiler's switch */
    if (do_profile) {
        char why[400] = "";
        void *h = rt.backend_rec->desc->backend == EDM2_BACKEND_CUDA ? cuda_module(why, sizeof why) : NULL;
        if (h) *(void **)&profiler = dlsym(h, "edm2_bench_cuda_profiler");
        if (!profiler) {
            snprintf(err.msg, sizeof err.msg, "--profile: needs the cuda backend and edm2_bench_gemm_cuda.so beside "
                     "edm2-bench (%s)", why[0] ? why : "not the cuda backend, or no profiler function in the module");
            goto fail;
        }
    }
    config_view_plugin(&v, rc, EDM2_KIND_NETWORK);
    if (net_open(&ni, &rt, rc->plugin[EDM2_KIND_NETWORK], &v.api, &err)) goto fail;
    const edm2_network_info *info = &ni.info;
    const size_t per = (size_t)info->img_channels * info->img_resolution * info->img_resolution, A = info->arena_floats;
    config_view_plugin(&v, rc, EDM2_KIND_LOSS);
    if (lvt->create(&rt.services, &v.api, &rt.ops, &loss) != EDM2_OK) {
        err_plugin(&err, "[loss] %s", rc->plugin[EDM2_KIND_LOSS]->desc->id);
        goto fail;
    }
    config_view_plugin(&v, rc, EDM2_KIND_OPTIMIZER);
    if (ovt->create(&rt.services, &v.api, &rt.ops, info, &opt) != EDM2_OK) {
        err_plugin(&err, "[optimizer] %s", rc->plugin[EDM2_KIND_OPTIMIZER]->desc->id);
        goto fail;
    }
    const size_t counts[6] = {per * batch, A, A, (size_t)batch * (info->label_dim ? info->label_dim : 1), per * batch,
                              (size_t)batch};
    for (int i = 0; i < 6; i++)
        if (!(bufs[i] = rt_alloc(&rt, counts[i], &err))) goto fail;
    float *y = bufs[0], *grads = bufs[1], *ema = bufs[2], *labels = bufs[3], *D = bufs[4], *sigma = bufs[5];
    ni.vt->init_params(ni.net, ni.params, 0);
    rt.bvt->randn(rt.b, y, per * batch, (edm2_rng){1, 1, 0});
    rt.bvt->scale(rt.b, y, 0.5f, per * batch);
    rt.bvt->fill(rt.b, labels, info->label_dim ? 1.0f / info->label_dim : 0.0f, (size_t)batch * (info->label_dim ? info->label_dim : 1));
    rt.bvt->fill(rt.b, sigma, 1.0f, (size_t)batch);
    rt.bvt->copy(rt.b, ema, ni.params, A * sizeof(float));
    printf("edm2-bench %s: %s %dx%dx%d, label_dim %d, %.2f M parameters, %.3f GFLOP per image forward\n", path,
           ni.rec->desc->id, info->img_channels, info->img_resolution, info->img_resolution, info->label_dim, A / 1e6,
           info->gflops_per_image);
    printf("backend %s, batch %d, %d threads, %d timed steps after %d warm-up\n", rt.bvt->device_name(rt.b), batch,
           threads, steps, warmup);
    /* Training steps. */
    double t_train = 0;
    for (int it = 0; do_train && it < warmup + steps; it++) {
        if (profiler && it == warmup) profiler(1);
        double t0 = now_s(), obj, lr;
        ni.vt->normalize_weights(ni.net, ni.params);
        rt.bvt->fill(rt.b, grads, 0.0f, A);
        edm2_loss_batch lb;
        memset(&lb, 0, sizeof lb);
        lb.struct_size = sizeof lb;
        lb.y = y, lb.labels = info->label_dim ? labels : NULL, lb.N = batch, lb.batch_total = batch;
        lb.rng = (edm2_rng){0, 7, (uint64_t)it * (per + 1) * batch};
        if (lvt->compute(loss, net_ref(&ni), ni.params, grads, &lb, &obj) != EDM2_OK) goto fail;
        if (ovt->step(opt, ni.params, grads, (int64_t)it * batch, batch, &lr) != EDM2_OK) goto fail;
        rt.bvt->lerp(rt.b, ema, ni.params, 0.01f, A);
        rt.bvt->synchronize(rt.b);
        if (it >= warmup) t_train += now_s() - t0;
    }
    if (profiler) profiler(0);
    /* Evaluation forward passes. */
    double t_eval = 0;
    for (int it = 0; do_eval && it < warmup + steps; it++) {
        if (profiler && it == warmup) profiler(1);
        edm2_forward_args fa;
        memset(&fa, 0, sizeof fa);
        fa.struct_size = sizeof fa;
        fa.params = ni.params, fa.x = y, fa.sigma = sigma, fa.labels = info->label_dim ? labels : NULL, fa.N = batch;
        fa.D = D;
        double t0 = now_s();
        if (ni.vt->forward(ni.net, &fa) != EDM2_OK) goto fail;
        rt.bvt->synchronize(rt.b);
        if (it >= warmup) t_eval += now_s() - t0;
    }
    if (profiler) profiler(0);
    size_t cur, peak;
    rt.bvt->memory_stats(rt.b, &cur, &peak);
    /* Sampling: one batch of images from noise with the [sampler] plugin (heun, 32 steps = 63 evaluations per
     * image, without one), after one warm-up batch. */
    double t_sample = 0;
    int evals = 0;
    if (do_sample) {
        const plugin_rec *srec = rc->plugin[EDM2_KIND_SAMPLER];
        if (!srec) srec = registry_find(rc->registry, EDM2_KIND_SAMPLER, "heun", rt.backend_rec->desc->backend);
        config_view sv;
        config_view_init(&sv, rc->cfg, "sampler", srec ? srec->desc->keys : NULL, srec ? srec->desc->key_count : 0);
        generator gen;
        memset(&gen, 0, sizeof gen);
        uint64_t *seeds = malloc((size_t)batch * sizeof *seeds);
        float *lab = calloc((size_t)batch * (info->label_dim ? info->label_dim : 1), sizeof *lab);
        float *out = malloc(per * batch * sizeof *out);
        int bad = !srec || !seeds || !lab || !out || generator_open(&gen, &rt, &ni, NULL, 1.0, srec, &sv.api, &err);
        for (int i = 0; !bad && i < batch; i++) {
            seeds[i] = (uint64_t)i;
            if (info->label_dim) lab[(size_t)i * info->label_dim + i % info->label_dim] = 1.0f;
        }
        if (!bad) evals = gen.svt->num_evals(gen.s);
        for (int it = 0; !bad && it < 2; it++) {
            double t0 = now_s();
            bad = generator_run(&gen, seeds, NULL, info->label_dim ? lab : NULL, batch, out, &err);
            if (it) t_sample = now_s() - t0;
        }
        generator_close(&gen);
        free(seeds), free(lab), free(out);
        if (bad) goto fail;
        rt.bvt->memory_stats(rt.b, &cur, &peak);
    }
    double ips = steps * batch / t_train, eval = t_eval / steps;
    double g_train = 3 * info->gflops_per_image * ips, g_eval = info->gflops_per_image * batch / eval;
    const int gpu = rt.backend_rec->desc->backend == EDM2_BACKEND_CUDA;
    char why[400] = "";
    double peak_rate = !do_sgemm ? 0 : gpu ? cuda_gemm_rate(&rt, why, sizeof why) : sgemm_rate(threads);
    const char *peak_name = gpu ? "bf16 gemm" : "sgemm";
    char frac[2][40] = {"", ""};
    if (peak_rate > 0) {
        snprintf(frac[0], sizeof frac[0], "  = %4.0f%% of %s", 100 * g_train / peak_rate, peak_name);
        snprintf(frac[1], sizeof frac[1], "  = %4.0f%% of %s", 100 * g_eval / peak_rate, peak_name);
    }
    if (do_train)
        printf("training:  %8.1f images/s  %7.1f ms/step  %6.1f GFLOP/s (3x forward)%s\n", ips, 1e3 * t_train / steps,
               g_train, frac[0]);
    if (do_eval) printf("eval:      %8.3f s per forward of %d  %6.1f GFLOP/s%s\n", eval, batch, g_eval, frac[1]);
    if (do_sample)
        printf("sampling:  %8.2f images/s at %d evaluations per image (batch %d)  %6.1f GFLOP/s\n", batch / t_sample, evals,
               batch, info->gflops_per_image * evals * batch / t_sample);
    printf("memory:    %8.1f MiB peak of the backend (%.1f MiB held at the end)\n", peak / 1048576.0, cur / 1048576.0);
    if (do_train) { /* can the data keep up with that training rate? */
        const int lthreads = loader_threads_for(rt.backend_rec->desc->backend != EDM2_BACKEND_CPU, threads);
        const double drate = data_rate(info->img_channels, info->img_resolution, batch, lthreads, &err);
        if (drate < 0) goto fail;
        printf("data:      %8.1f images/s drawn from posterior moments by the loader's %d thread%s (%.1fx training)\n",
               drate, lthreads, lthreads == 1 ? "" : "s", drate / ips);
    }
    if (do_sgemm && gpu && peak_rate > 0) printf("gemm:      %8.1f TFLOP/s (cuBLAS bf16 8192^3 on this GPU)\n", peak_rate / 1e3);
    else if (do_sgemm && gpu) printf("gemm:      not timed (%s)\n", why);
    else if (do_sgemm) printf("sgemm:     %8.1f GFLOP/s (OpenBLAS 2048^3, %d threads)\n", peak_rate, threads);
    status = 0;
    goto done;
fail:
    LOG_ERROR("%s", err.msg[0] ? err.msg : "benchmark failed (see above)");
done:
    if (loss) lvt->destroy(loss);
    if (opt) ovt->destroy(opt);
    for (int i = 0; rt.b && i < 6; i++) rt_free(&rt, bufs[i]);
    if (rt.b) net_close(&ni, &rt);
    runtime_close(&rt);
    setup_free(&s);
    return status;
}
