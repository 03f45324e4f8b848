/* snapshot.h: network snapshots: one safetensors file holding a network's whole arena under the
 * reference's tensor names, with the network plugin id and every hyperparameter in its metadata, so a
 * snapshot alone is enough to rebuild and sample the network (or load it into the PyTorch reference). */
#ifndef EDM2_HOST_SNAPSHOT_H
#define EDM2_HOST_SNAPSHOT_H

#include <stdint.h>

#include "config.h"
#include "plugin_loader.h"
#include "runtime.h"
#include "safetensors.h"

/* Extra metadata entries of a snapshot. */
typedef struct snapshot_meta {
    int64_t nimg;
    const char *ema_plugin; /* NULL when the snapshot is not an EMA */
    double ema_param;
    const char *ema_label;
    const char *note;       /* e.g. "post-hoc reconstruction from 12 snapshots"; may be NULL */
    int posthoc;            /* 1: a reconstruction (phema skips these as inputs) */
    /* Latent data (NULL for pixels): the VAE plugin whose latents the network was trained on and the
     * per-channel scaling of the data (vae_net.h), so `generate` can decode. */
    const char *latents, *latent_scale, *latent_bias;
} snapshot_meta;

/* Writes `arena` (host memory) atomically. `net_keys`: the network plugin's schema, with values from
 * the config section `section` of `c` (or the schema default). */
int snapshot_write(const char *path, const net_instance *ni, const float *arena, const cfg *c, const char *section,
                   const snapshot_meta *meta, edm2_err *err);
/* Opens a snapshot file and the network it describes on `rt` (the network plugin named in its metadata,
 * built for rt's backend), and loads its weights. Strict: every tensor of the file must be a parameter of
 * that network and every parameter must be there with its shape, all finite. `precision` (NULL or empty:
 * as stored) replaces the network's `precision` key, an execution setting rather than part of the
 * network (e.g. sampling an fp32-trained snapshot in bf16). Fills *f (caller closes). */
int snapshot_open(const char *path, const plugin_registry *reg, runtime *rt, net_instance *ni, st_file *f,
                  const char *precision, edm2_err *err);
#define SNAPSHOT_MAX_NIMG ((int64_t)1 << 50) /* images seen: far beyond any training run */

/* nimg recorded in a snapshot's metadata (edm2.nimg, checked), else derived from its kimg the reference's
 * way (file name ...-KKKKKKK-S.SSS.safetensors). */
int snapshot_nimg(const st_file *f, int64_t *nimg, edm2_err *err);

#endif
