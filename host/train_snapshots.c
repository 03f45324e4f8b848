/* train_snapshots.c: EMA snapshots during training: network-snapshot-KKKKKKK-LABEL.safetensors per tracked
 * average, with the network's hyperparameters and the EMA profile in the metadata (snapshot.c). */
#include <stdio.h>

#include "log.h"
#include "snapshot.h"
#include "trainer.h"

int trainer_write_snapshots(trainer *t, edm2_err *err) {
    for (size_t i = 0; i < t->nema; i++) {
        char path[4200];
        const char *label = t->evt->label(t->ema, i);
        snprintf(path, sizeof path, "%s/network-snapshot-%07lld-%s.safetensors", t->run_dir, (long long)(t->nimg / 1000),
                 label);
        if (rt_download(&t->rt, t->host, t->avg[i], t->net.info.arena_floats, err)) return -1;
        const dataset *d = &t->data;
        snapshot_meta meta = {t->nimg, t->rc->plugin[EDM2_KIND_EMA]->desc->id, t->evt->profile_param(t->ema, i), label,
                              NULL, 0, d->latents[0] ? d->latents : NULL, d->latent_scale, d->latent_bias};
        if (snapshot_write(path, &t->net, t->host, t->rc->cfg, "network", &meta, err)) return -1;
    }
    LOG_INFO("snapshots of %zu EMA%s at kimg %.1f", t->nema, t->nema == 1 ? "" : "s", t->nimg / 1000.0);
    return 0;
}
