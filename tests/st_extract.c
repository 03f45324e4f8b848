/* st_extract.c: test helper: writes the tensors of IN whose names start with PREFIX, without it, as float32 to
 * OUT (e.g. the small VAE's weights of tests/data/vae_ref.safetensors, "small/w/", for a test's [vae]).
 *   st_extract IN PREFIX OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: st_extract IN.safetensors PREFIX OUT.safetensors\n");
        return 2;
    }
    st_file in;
    edm2_err err;
    if (st_open(&in, argv[1], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const size_t plen = strlen(argv[2]);
    st_out *outs = calloc(in.n + 1, sizeof *outs);
    float **data = calloc(in.n + 1, sizeof *data);
    size_t n = 0;
    int rc = !outs || !data;
    for (size_t i = 0; !rc && i < in.n; i++) {
        const st_tensor *t = &in.t[i];
        if (strncmp(t->name, argv[2], plen)) continue;
        if (!(data[n] = malloc(t->numel * sizeof(float) + 1))) rc = 1;
        else st_to_f32(t, data[n]);
        outs[n] = (st_out){t->name + plen, ST_F32, t->ndim, {0}, data[n]};
        for (int k = 0; k < t->ndim; k++) outs[n].shape[k] = t->shape[k];
        n++;
    }
    if (!rc && !n) fprintf(stderr, "%s: no tensor named %s...\n", argv[1], argv[2]), rc = 1;
    if (!rc && st_write(argv[3], outs, n, NULL, NULL, 0, &err)) fprintf(stderr, "%s\n", err.msg), rc = 1;
    for (size_t i = 0; data && i < n; i++) free(data[i]);
    free(data), free(outs);
    st_close(&in);
    return rc;
}
