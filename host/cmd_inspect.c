/* cmd_inspect.c: `edm2host inspect FILE.safetensors`: what a file of the project is and what it holds, from its
 * metadata: a network snapshot (kimg, EMA profile, the network's hyperparameters), a post-hoc reconstruction,
 * a training checkpoint (kimg, optimizer step, batch, seed, the network it was written for), a latents dataset
 * of the encode job, SWD, FID or FD_ID reference statistics, a features network's converted weights, or any other
 * safetensors file; then its tensors in sum (or each with --tensors) and, with --meta, every metadata entry. A run's
 * folder is inspect_folder.c's, a dataset archive or .npy array inspect_archive.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "fileio.h"
#include "inspect.h"
#include "jobs.h"
#include "log.h"

/* The metadata entries that are not the project's own ("edm2.*"): a snapshot's network hyperparameters. */
static void print_hyperparameters(const st_file *f, const char *network, FILE *out) {
    int n = 0;
    for (size_t i = 0; i < f->nmeta; i++) {
        if (!strncmp(f->meta_keys[i], "edm2.", 5)) continue;
        fprintf(out, "%s%s = %s", n++ ? ", " : "  network: ", f->meta_keys[i], f->meta_vals[i]);
    }
    if (n) fprintf(out, " (plugin %s)\n", network ? network : "mp_unet");
}

/* A checkpoint's fingerprint "ID:KEY=VALUE;KEY=VALUE..." as "network: KEY = VALUE, ... (plugin ID)". */
static void print_fingerprint(const char *fp, FILE *out) {
    const char *colon = strchr(fp, ':');
    if (!colon) return;
    fprintf(out, "  network: ");
    for (const char *p = colon + 1; *p;) {
        const size_t n = strcspn(p, ";");
        const char *eq = memchr(p, '=', n);
        if (eq) fprintf(out, "%s%.*s = %.*s", p == colon + 1 ? "" : ", ", (int)(eq - p), p, (int)(n - (size_t)(eq - p) - 1), eq + 1);
        p += n + (p[n] == ';');
    }
    fprintf(out, " (plugin %.*s)\n", (int)(colon - fp), fp);
}

/* The largest label + 1 of a [N] tensor of class indices (0 when there is none). */
static long classes(const st_tensor *labels) {
    if (!labels || labels->ndim != 1) return 0;
    double *v = malloc((labels->numel + 1) * sizeof *v);
    if (!v) return 0;
    st_to_f64(labels, v);
    double top = -1;
    for (size_t i = 0; i < labels->numel; i++)
        if (v[i] > top) top = v[i];
    free(v);
    return top < 1e9 ? (long)top + 1 : -1; /* (-1: not class indices) */
}

/* Control characters of a file's strings as '?', so that what is printed stays on its lines. */
static void clean(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

static const char *or_q(const char *s) { return s ? s : "?"; }

static void describe(const st_file *f, FILE *out) {
    const char *ckpt = st_meta(f, "edm2.checkpoint"), *metric = st_meta(f, "edm2.metric");
    const char *network = st_meta(f, "edm2.network"), *ema = st_meta(f, "edm2.ema"), *kimg = st_meta(f, "edm2.kimg");
    const char *nimg = st_meta(f, "edm2.nimg"), *latents = st_meta(f, "edm2.latents");
    const st_tensor *images = st_find(f, "images");
    if (ckpt) {
        fprintf(out, "%s: training checkpoint at kimg %.3f (optimizer step %s), batch %s, seed %s\n", f->path,
               nimg ? strtod(nimg, NULL) / 1000 : 0.0,
               or_q(st_meta(f, "edm2.optimizer_step")), or_q(st_meta(f, "edm2.batch")), or_q(st_meta(f, "edm2.seed")));
        if (st_meta(f, "edm2.fingerprint")) print_fingerprint(st_meta(f, "edm2.fingerprint"), out);
    } else if (metric && (!strcmp(metric, "fid") || (!strncmp(metric, "fd_", 3) && strlen(metric) < FD_NAME_MAX))) {
        char FD[FD_NAME_MAX + 8], count[FD_NAME_MAX + 8], dim[FD_NAME_MAX + 8], weights[FD_NAME_MAX + 8];
        snprintf(count, sizeof count, "%s.count", metric), snprintf(dim, sizeof dim, "%s.dim", metric);
        snprintf(weights, sizeof weights, "%s.weights", metric);
        fprintf(out, "%s: %s reference statistics of %s images (%s features, weights %s), from %s\n", f->path,
               fd_display(metric, FD, sizeof FD), or_q(st_meta(f, count)), or_q(st_meta(f, dim)), or_q(st_meta(f, weights)),
               or_q(st_meta(f, "edm2.source")));
    } else if (metric && !strcmp(metric, "swd")) {
        const char *ch = st_meta(f, "swd.channels"), *res = st_meta(f, "swd.resolution");
        const long patches = st_meta(f, "swd.patches") ? atol(st_meta(f, "swd.patches")) : 0;
        fprintf(out, "%s: SWD reference statistics of %lld images %sx%sx%s (%zu pyramid levels, %ld patches per image and "
               "level), from %s\n",
               f->path, f->n && f->t[0].ndim > 0 && patches > 0 ? (long long)f->t[0].shape[0] / patches : -1LL, or_q(ch),
               or_q(res), or_q(res),
               f->n, patches, or_q(st_meta(f, "edm2.source")));
    } else if (images && images->ndim == 4 && (latents || st_meta(f, "edm2.encode"))) {
        const int moments = st_meta(f, "edm2.latent_moments") && !strcmp(st_meta(f, "edm2.latent_moments"), "1");
        fprintf(out, "%s: latents dataset of %lld images, %lldx%lldx%lld%s, %ld classes, VAE %s, from %s\n", f->path,
               (long long)images->shape[0], (long long)(images->shape[1] / (moments ? 2 : 1)), (long long)images->shape[2],
               (long long)images->shape[3], moments ? " (posterior mean and std: training draws)" : "",
               classes(st_find(f, "labels")), or_q(latents), or_q(st_meta(f, "edm2.source")));
    } else if (network || ema || nimg) {
        const char *label = st_meta(f, "edm2.ema_label");
        fprintf(out, "%s: %s", f->path, st_meta(f, "edm2.posthoc") ? "post-hoc EMA reconstruction" : "network snapshot");
        if (kimg) fprintf(out, " at kimg %s", kimg);
        else if (nimg) fprintf(out, " at kimg %.3f", strtod(nimg, NULL) / 1000);
        if (ema) fprintf(out, ", EMA %s %s", ema, label ? label : or_q(st_meta(f, "edm2.ema_param")));
        if (latents) fprintf(out, ", of %s latents", latents);
        fprintf(out, "\n");
        print_hyperparameters(f, network, out);
    } else if (st_meta(f, "edm2.features")) { /* (written by scripts/convert_*_weights.py) */
        const char *id = st_meta(f, "edm2.features");
        fprintf(out, "%s: weights of the features plugin %s ([features] plugin = %s), converted from %s\n", f->path, id, id,
               or_q(st_meta(f, "edm2.source")));
    } else {
        fprintf(out, "%s: safetensors file without the project's metadata\n", f->path);
    }
}

void inspect_print(st_file *f, int tensors, int meta, FILE *out) {
    for (size_t i = 0; i < f->nmeta; i++) clean(f->meta_keys[i]), clean(f->meta_vals[i]);
    for (size_t i = 0; i < f->n; i++) clean(f->t[i].name);
    describe(f, out);
    size_t values = 0, bytes = 0;
    int used[4] = {0};
    for (size_t i = 0; i < f->n; i++) {
        values += f->t[i].numel, bytes += f->t[i].numel * st_dtype_bytes(f->t[i].dtype);
        used[f->t[i].dtype] = 1;
    }
    fprintf(out, "  tensors: %zu, %.6g M values, %.1f MiB (", f->n, values / 1e6, bytes / 1048576.0);
    for (int d = 0, k = 0; d < 4; d++)
        if (used[d]) fprintf(out, "%s%s", k++ ? ", " : "", st_dtype_word((st_dtype)d));
    fprintf(out, ")\n");
    for (size_t i = 0; tensors && i < f->n; i++) {
        fprintf(out, "    %-48s %-8s [", f->t[i].name, st_dtype_word(f->t[i].dtype));
        for (int d = 0; d < f->t[i].ndim; d++) fprintf(out, "%s%lld", d ? ", " : "", (long long)f->t[i].shape[d]);
        fprintf(out, "]\n");
    }
    for (size_t i = 0; meta && i < f->nmeta; i++) fprintf(out, "    %s = %s\n", f->meta_keys[i], f->meta_vals[i]);
}

int cmd_inspect(int argc, char **argv) {
    if (wants_help(argc, argv)) {
        printf("usage: edm2host inspect FILE.safetensors [--tensors] [--meta]\n"
               "       edm2host inspect FOLDER\n"
               "       edm2host inspect DATASET.zip | ARRAY.npy\n\n"
               "Says what a file is (network snapshot, post-hoc reconstruction, training checkpoint, latents\n"
               "dataset, SWD or FID reference statistics) and what it holds, from its metadata: the kimg, EMA,\n"
               "network hyperparameters, batch and seed; then its tensors in sum. Of a training run's folder:\n"
               "where it stands (kimg of its duration, loss, time, checkpoints, snapshots, evaluations); of a\n"
               "folder of generated images: how many, from which snapshot and sampler. Of the EDM dataset tool's\n"
               "archive: its PNG or .npy images, their size, its classes and the [data] settings that read it.\n\n"
               "  --tensors  each tensor's name, type and shape\n"
               "  --meta     every metadata entry as it is stored\n");
        return 0;
    }
    const char *path = NULL;
    int tensors = 0, meta = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tensors")) tensors = 1;
        else if (!strcmp(argv[i], "--meta")) meta = 1;
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            LOG_ERROR("inspect: unexpected argument '%s' (see edm2host inspect --help)", argv[i]);
            return 2;
        }
    }
    if (!path) {
        LOG_ERROR("inspect: missing FILE.safetensors (see edm2host inspect --help)");
        return 2;
    }
    st_file f;
    edm2_err err;
    if (is_folder(path)) {
        if (inspect_folder(path, stdout, &err) == 0) return 0;
        LOG_ERROR("%s", err.msg);
        return 1;
    }
    const int archive = inspect_archive(path, stdout, &err);
    if (archive <= 0) {
        if (archive < 0) LOG_ERROR("%s", err.msg);
        return archive < 0;
    }
    if (st_open(&f, path, &err)) {
        LOG_ERROR("%s", err.msg);
        st_close(&f);
        return 1;
    }
    inspect_print(&f, tensors, meta, stdout);
    st_close(&f);
    return 0;
}
