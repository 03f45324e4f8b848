/* checkpoint.c: writing, finding, reading and pruning training checkpoints. */
#include "checkpoint.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metadata.h"

#define PREFIX "training-state-"
#define SUFFIX ".safetensors"

int ckpt_write(const char *path, const ckpt_buffer *bufs, size_t n, const ckpt_info *info, edm2_err *err) {
    st_out *outs = calloc(n + 1, sizeof *outs);
    if (!outs) return err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        outs[i].name = bufs[i].name;
        outs[i].dtype = ST_F32;
        outs[i].ndim = 1;
        outs[i].shape[0] = (int64_t)bufs[i].n;
        outs[i].data = bufs[i].host;
    }
    char nimg[32], step[32], batch[32], seed[32];
    snprintf(nimg, sizeof nimg, "%lld", (long long)info->nimg);
    snprintf(step, sizeof step, "%lld", (long long)info->optimizer_step);
    snprintf(batch, sizeof batch, "%lld", (long long)info->batch);
    snprintf(seed, sizeof seed, "%lld", (long long)info->seed);
    const char *keys[] = {"edm2.checkpoint", "edm2.nimg", "edm2.optimizer_step", "edm2.batch", "edm2.seed",
                          "edm2.fingerprint"};
    const char *vals[] = {"1", nimg, step, batch, seed, info->fingerprint};
    int rc = st_write(path, outs, n, keys, vals, 6, err);
    free(outs);
    return rc;
}

/* Lists checkpoints: names sorted by images seen (from the file name's kimg). */
static size_t list_ckpts(const char *run_dir, char ***out) {
    DIR *d = opendir(run_dir);
    *out = NULL;
    if (!d) return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name), pl = strlen(PREFIX), sl = strlen(SUFFIX);
        if (len <= pl + sl || strncmp(e->d_name, PREFIX, pl) || strcmp(e->d_name + len - sl, SUFFIX)) continue;
        char **a = realloc(*out, (n + 1) * sizeof *a);
        if (!a) break;
        *out = a;
        a[n++] = strdup(e->d_name);
    }
    closedir(d);
    /* Zero-padded kimg: lexical order is numeric order. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp((*out)[j - 1], (*out)[j]) > 0; j--) {
            char *t = (*out)[j];
            (*out)[j] = (*out)[j - 1];
            (*out)[j - 1] = t;
        }
    return n;
}

int ckpt_find_latest(const char *run_dir, char *path_out, size_t len, edm2_err *err) {
    (void)err;
    char **names;
    size_t n = list_ckpts(run_dir, &names);
    path_out[0] = 0;
    if (n) snprintf(path_out, len, "%s/%s", run_dir, names[n - 1]);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return 0;
}

/* The value of key in a fingerprint's "ID:key=value;key=value..." (NULL when absent), into buf. */
static const char *fp_value(const char *fp, const char *key, char *buf, size_t len) {
    const size_t kn = strlen(key);
    for (const char *p = strchr(fp, ':'); p; p = strchr(p, ';')) {
        p++;
        if (!strncmp(p, key, kn) && p[kn] == '=') {
            snprintf(buf, len, "%.*s", (int)strcspn(p + kn + 1, ";"), p + kn + 1);
            return buf;
        }
    }
    return NULL;
}

/* The key of the fingerprint entry at p (just after its ':' or ';'), into key. */
static const char *fp_key(const char *p, char *key, size_t len) {
    snprintf(key, len, "%.*s", (int)strcspn(p, "="), p);
    return key;
}

/* What differs between the network a checkpoint was written for (was) and this config's (now), as
 * "key = A there, B here; ...", or the plugin ids where those differ; empty when nothing does (out[0] 0). */
static void fp_diff(const char *was, const char *now, char *out, size_t len) {
    const size_t iw = strcspn(was, ":"), in = strcspn(now, ":");
    char key[128], a[256], b[256];
    out[0] = 0;
    if (iw != in || strncmp(was, now, iw)) {
        snprintf(out, len, "network plugin %.*s there, %.*s here", (int)iw, was, (int)in, now);
        return;
    }
    for (const char *p = strchr(now, ':'); p && strlen(out) + 1 < len; p = strchr(p + 1, ';')) {
        const char *vb = fp_value(now, fp_key(p + 1, key, sizeof key), b, sizeof b);
        const char *va = fp_value(was, key, a, sizeof a);
        if (vb && (!va || !cfg_same_value(va, vb)))
            snprintf(out + strlen(out), len - strlen(out), "%s%s = %s there, %s here", out[0] ? "; " : "", key,
                     va ? va : "(not kept)", vb);
    }
    for (const char *p = strchr(was, ':'); p && !out[0]; p = strchr(p + 1, ';')) /* a key kept there, not here */
        if (!fp_value(now, fp_key(p + 1, key, sizeof key), b, sizeof b))
            snprintf(out, len, "%s kept there, not here", key);
}

int ckpt_check_meta(const st_file *f, ckpt_info *info, edm2_err *err) {
    const char *path = f->path;
    int rc = 0;
    ckpt_info got = {0};
    if (!st_meta(f, "edm2.checkpoint"))
        rc = err_set(err, "%s: not a training checkpoint (no metadata edm2.checkpoint)", path);
    if (!rc && (meta_int(f, "edm2.batch", 1, CKPT_MAX_BATCH, &got.batch, err) ||
                meta_int(f, "edm2.nimg", 0, CKPT_MAX_NIMG, &got.nimg, err) ||
                meta_int(f, "edm2.optimizer_step", 0, CKPT_MAX_NIMG, &got.optimizer_step, err) ||
                meta_int(f, "edm2.seed", INT64_MIN, INT64_MAX, &got.seed, err)))
        rc = -1;
    if (!rc && got.nimg % got.batch)
        rc = err_set(err, "%s: metadata edm2.nimg = %lld is not a multiple of edm2.batch = %lld", path,
                     (long long)got.nimg, (long long)got.batch);
    if (!rc && got.optimizer_step > got.nimg / got.batch)
        rc = err_set(err, "%s: metadata edm2.optimizer_step = %lld exceeds the %lld steps of %lld images in batches of %lld",
                     path, (long long)got.optimizer_step, (long long)(got.nimg / got.batch), (long long)got.nimg,
                     (long long)got.batch);
    const char *fp = st_meta(f, "edm2.fingerprint");
    if (!rc && !fp) rc = err_set(err, "%s: not a training checkpoint (no metadata edm2.fingerprint)", path);
    char diff[800] = "";
    if (!rc && strcmp(fp, info->fingerprint)) fp_diff(fp, info->fingerprint, diff, sizeof diff);
    if (diff[0])
        rc = err_set(err, "%s: was written for another network ([network] %s). Resume with its values, or use a new run_dir",
                     path, diff);
    if (!rc && got.batch != info->batch)
        rc = err_set(err, "%s: was trained with batch %lld; this config says %lld (resume needs the same batch)", path,
                     (long long)got.batch, (long long)info->batch);
    if (!rc && got.seed != info->seed)
        rc = err_set(err, "%s: was trained with seed %lld; this config says %lld", path, (long long)got.seed,
                     (long long)info->seed);
    if (!rc) {
        info->nimg = got.nimg;
        info->optimizer_step = got.optimizer_step;
    }
    return rc;
}

/* Validates a checkpoint before any of it is used: its metadata (ckpt_check_meta), exactly the expected
 * tensors (1-D, float32, the right sizes), every value finite. */
int ckpt_read_file(const st_file *f, const ckpt_buffer *bufs, size_t n, ckpt_info *info, edm2_err *err) {
    const char *path = f->path;
    ckpt_info got = *info;
    int rc = ckpt_check_meta(f, &got, err);
    if (!rc && f->n != n)
        rc = err_set(err, "%s: holds %zu tensors, this run keeps %zu (params, optimizer state, EMAs)", path, f->n, n);
    for (size_t i = 0; !rc && i < n; i++) {
        const st_tensor *t = st_find(f, bufs[i].name);
        if (!t || t->ndim != 1 || t->numel != bufs[i].n || t->dtype != ST_F32) {
            rc = err_set(err, "%s: missing or misshaped '%s' (expected %zu float32 values)", path, bufs[i].name, bufs[i].n);
            break;
        }
        st_to_f32(t, bufs[i].host);
        for (size_t k = 0; k < bufs[i].n && !rc; k++)
            if (!isfinite(bufs[i].host[k]))
                rc = err_set(err, "%s: '%s' holds %g at index %zu (a damaged checkpoint)", path, bufs[i].name,
                             bufs[i].host[k], k);
    }
    if (!rc) {
        info->nimg = got.nimg;
        info->optimizer_step = got.optimizer_step;
    }
    return rc;
}

int ckpt_read(const char *path, const ckpt_buffer *bufs, size_t n, ckpt_info *info, edm2_err *err) {
    st_file f;
    int rc = st_open(&f, path, err) || ckpt_read_file(&f, bufs, n, info, err) ? -1 : 0;
    st_close(&f);
    return rc;
}

void ckpt_prune(const char *run_dir, int keep) {
    if (keep <= 0) return;
    char **names;
    size_t n = list_ckpts(run_dir, &names);
    for (size_t i = 0; i < n; i++) {
        if (i + (size_t)keep < n) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", run_dir, names[i]);
            unlink(p);
        }
        free(names[i]);
    }
    free(names);
}

int remove_stale_temporaries(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) return 0;
    int removed = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strstr(e->d_name, ".tmp.")) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", run_dir, e->d_name);
        removed += unlink(p) == 0;
    }
    closedir(d);
    return removed;
}
