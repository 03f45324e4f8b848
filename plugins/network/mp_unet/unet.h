/* unet.h: the CPU EDM2 U-Net with preconditioning and uncertainty head (docs/formulas.md §3): forward and
 * backward over the module graph and arena table of unet_graph.h. */
#ifndef EDM2_UNET_H
#define EDM2_UNET_H

#include "block.h"
#include "edm2/edm2_network.h"
#include "workspace.h"

typedef struct unet {
    unet_graph g; /* modules, arena table */
    /* Runtime state. */
    float *w_hat, *w_norm, *dw_hat; /* prepared weights, their row norms, their gradient */
    float *pack, *wt, *part;
    size_t pack_floats, wt_floats, part_floats;
    conv_scratch sc;
    workspace fws, bws;
    /* Saved by the last training forward. */
    int saved_N, have_saved;
    uint64_t drop_seed, drop_stream, drop_offset;
    block_saved *saved;
    float **mod_in, **mod_out;
    float *x_in0, *c_out, *fourier, *lab, *e3, *emb, *lv_fourier;
} unet;

/* Builds the graph and the table; returns 0 or -1 with a reason in err. */
int unet_build(unet *u, const unet_hparams *hp, char *err, size_t errlen);
void unet_free(unet *u);
/* Returns 0, or -1 when out of memory. */
int unet_forward(unet *u, const edm2_forward_args *a);
int unet_backward(unet *u, const float *params, const float *dD, const float *dlogvar, float *grads);

#endif
