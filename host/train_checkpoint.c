/* train_checkpoint.c: a training run's checkpoints: every arena (parameters, optimizer state, EMAs)
 * with the images seen and the optimizer step, moved between backend memory and
 * training-state-KKKKKKK.safetensors (checkpoint.c does the file format and its validation). */
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "log.h"
#include "trainer.h"

/* The checkpoint's buffers, pointing into host memory (t->host for params; allocated for the rest). */
static size_t ckpt_layout(trainer *t, ckpt_buffer *bufs, float **hosts, char names[][64]) {
    size_t n = 0, A = t->net.info.arena_floats;
    bufs[n++] = (ckpt_buffer){"params", hosts[0], A};
    size_t ns = t->ovt->state_count(t->opt);
    for (size_t i = 0; i < ns; i++) {
        edm2_state_buffer sb;
        t->ovt->state_buffer(t->opt, i, &sb);
        snprintf(names[n], 64, "optimizer/%s", sb.name);
        bufs[n] = (ckpt_buffer){names[n], hosts[n], sb.numel};
        n++;
    }
    for (size_t i = 0; i < t->nema; i++) {
        snprintf(names[n], 64, "ema/%s", t->evt->label(t->ema, i));
        bufs[n] = (ckpt_buffer){names[n], hosts[n], A};
        n++;
    }
    return n;
}

/* Backend memory of checkpoint buffer i. */
static float *ckpt_device(trainer *t, size_t i) {
    size_t ns = t->ovt->state_count(t->opt);
    if (i == 0) return t->net.params;
    if (i <= ns) {
        edm2_state_buffer sb;
        t->ovt->state_buffer(t->opt, i - 1, &sb);
        return sb.data;
    }
    return t->avg[i - 1 - ns];
}

static int ckpt_io(trainer *t, const char *path, int write, edm2_err *err) {
    ckpt_buffer bufs[MAX_EMA + 16];
    float *hosts[MAX_EMA + 16] = {0};
    char names[MAX_EMA + 16][64];
    size_t nb = 1 + t->ovt->state_count(t->opt) + t->nema;
    int rc = -1;
    for (size_t i = 0; i < nb; i++)
        if (!(hosts[i] = malloc((t->net.info.arena_floats + 1) * sizeof(float)))) {
            err_set(err, "out of memory");
            goto done;
        }
    nb = ckpt_layout(t, bufs, hosts, names);
    ckpt_info info = {t->nimg, t->ovt->get_step(t->opt), t->batch, t->seed, t->fingerprint};
    if (write) {
        for (size_t i = 0; i < nb; i++)
            if (rt_download(&t->rt, bufs[i].host, ckpt_device(t, i), bufs[i].n, err)) goto done;
        if (ckpt_write(path, bufs, nb, &info, err)) goto done;
    } else {
        if (ckpt_read(path, bufs, nb, &info, err)) goto done;
        for (size_t i = 0; i < nb; i++)
            if (rt_upload(&t->rt, ckpt_device(t, i), bufs[i].host, bufs[i].n, err)) goto done;
        t->nimg = info.nimg;
        t->ovt->set_step(t->opt, info.optimizer_step);
    }
    rc = 0;
done:
    for (size_t i = 0; i < nb; i++) free(hosts[i]);
    return rc;
}

int trainer_write_checkpoint(trainer *t, int keep, edm2_err *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/training-state-%07lld.safetensors", t->run_dir, (long long)(t->nimg / 1000));
    if (ckpt_io(t, path, 1, err)) return -1;
    ckpt_prune(t->run_dir, keep);
    LOG_INFO("checkpoint %s", path);
    return 0;
}

int trainer_read_checkpoint(trainer *t, const char *path, edm2_err *err) { return ckpt_io(t, path, 0, err); }
