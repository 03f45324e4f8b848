/* st_compare.c: test helper: exits 0 when every tensor of A (or those whose names start with one of the
 * PREFIXes) exists in B with the same shape and max |a - b| / (1 + |b|) <= TOL; prints the worst tensor.
 *   st_compare A B TOL [PREFIX ...] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: st_compare A.safetensors B.safetensors TOL [PREFIX ...]\n");
        return 2;
    }
    st_file a, b;
    edm2_err err;
    if (st_open(&a, argv[1], &err) || st_open(&b, argv[2], &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double tol = atof(argv[3]), worst = 0;
    const char *worst_name = "";
    size_t compared = 0;
    for (size_t i = 0; i < a.n; i++) {
        int wanted = argc == 4;
        for (int k = 4; k < argc; k++) wanted |= strncmp(a.t[i].name, argv[k], strlen(argv[k])) == 0;
        if (!wanted) continue;
        compared++;
        const st_tensor *tb = st_find(&b, a.t[i].name);
        if (!tb || tb->numel != a.t[i].numel) {
            fprintf(stderr, "%s: missing or misshaped in %s\n", a.t[i].name, argv[2]);
            st_close(&a);
            st_close(&b);
            return 1;
        }
        float *x = malloc(a.t[i].numel * sizeof(float) + 4), *y = malloc(a.t[i].numel * sizeof(float) + 4);
        st_to_f32(&a.t[i], x), st_to_f32(tb, y);
        for (size_t j = 0; j < a.t[i].numel; j++) {
            double d = fabs((double)x[j] - y[j]) / (1 + fabs((double)y[j]));
            if (!(d <= worst)) worst = d, worst_name = a.t[i].name;
        }
        free(x), free(y);
    }
    printf("%zu tensors, max relative difference %.3g (%s)\n", compared, worst, worst_name);
    st_close(&a);
    st_close(&b);
    return compared && worst <= tol ? 0 : 1;
}
