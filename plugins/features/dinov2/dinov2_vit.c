/* dinov2_vit.c: the weight table of DINOv2's vision transformer (dinov2_vit.h), shared by the CPU and CUDA
 * builds. */
#include "dinov2_vit.h"

#include <stdio.h>
#include <string.h>

#include "edm2/edm2.h"

/* Appends tensor `name` of `ndim` dims to the table; returns its offset (64-float aligned). */
static size_t add(dino_vit *v, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    edm2_param_desc *p = &v->params[v->nparams];
    snprintf(v->names[v->nparams], sizeof v->names[0], "%s", name);
    const int64_t dims[4] = {d0, d1, d2, d3};
    memset(p, 0, sizeof *p);
    p->name = v->names[v->nparams];
    p->ndim = (uint32_t)ndim;
    p->numel = 1;
    for (int i = 0; i < ndim; i++) p->shape[i] = dims[i], p->numel *= (size_t)dims[i];
    p->offset = v->arena_floats;
    v->arena_floats += (p->numel + 63) / 64 * 64;
    v->nparams++;
    return p->offset;
}

int dino_build(dino_vit *v, const dino_shape *s, char *msg, size_t len) {
    memset(v, 0, sizeof *v);
    if (s->dim < 1 || s->heads < 1 || s->dim % s->heads || s->dim > 65536)
        return snprintf(msg, len, "dim = %d: expected a positive multiple of heads = %d", s->dim, s->heads), -1;
    if (s->depth < 1 || s->depth > DINO_MAX_DEPTH)
        return snprintf(msg, len, "depth = %d: expected 1 to %d", s->depth, DINO_MAX_DEPTH), -1;
    if (s->patch < 1 || s->res < s->patch || s->res % s->patch || s->res > 4096)
        return snprintf(msg, len, "resolution = %d: expected a multiple of the patch size %d (at most 4096)", s->res,
                        s->patch), -1;
    v->s = *s;
    v->grid = s->res / s->patch;
    v->tokens = 1 + v->grid * v->grid;
    v->hidden = 4 * s->dim;
    const int D = s->dim, H = v->hidden, T = v->tokens;
    v->cls = add(v, "cls_token", 3, 1, 1, D, 0);
    v->pos = add(v, "pos_embed", 3, 1, T, D, 0);
    v->pw = add(v, "patch_embed.proj.weight", 4, D, 3, s->patch, s->patch);
    v->pb = add(v, "patch_embed.proj.bias", 1, D, 0, 0, 0);
    for (int i = 0; i < s->depth; i++) {
        dino_block *b = &v->blk[i];
        char n[40];
#define P(field, suffix, ...) (snprintf(n, sizeof n, "blocks.%d.%s", i, suffix), b->field = add(v, n, __VA_ARGS__))
        P(n1w, "norm1.weight", 1, D, 0, 0, 0);
        P(n1b, "norm1.bias", 1, D, 0, 0, 0);
        P(qkvw, "attn.qkv.weight", 2, 3 * D, D, 0, 0);
        P(qkvb, "attn.qkv.bias", 1, 3 * D, 0, 0, 0);
        P(projw, "attn.proj.weight", 2, D, D, 0, 0);
        P(projb, "attn.proj.bias", 1, D, 0, 0, 0);
        P(ls1, "ls1.gamma", 1, D, 0, 0, 0);
        P(n2w, "norm2.weight", 1, D, 0, 0, 0);
        P(n2b, "norm2.bias", 1, D, 0, 0, 0);
        P(fc1w, "mlp.fc1.weight", 2, H, D, 0, 0);
        P(fc1b, "mlp.fc1.bias", 1, H, 0, 0, 0);
        P(fc2w, "mlp.fc2.weight", 2, D, H, 0, 0);
        P(fc2b, "mlp.fc2.bias", 1, D, 0, 0, 0);
        P(ls2, "ls2.gamma", 1, D, 0, 0, 0);
#undef P
    }
    v->nw = add(v, "norm.weight", 1, D, 0, 0, 0);
    v->nb = add(v, "norm.bias", 1, D, 0, 0, 0);
    const double patches = (double)(T - 1) * 3 * s->patch * s->patch * D;
    const double block = (double)T * (3.0 * D * D + D * D + 2.0 * D * H) + 2.0 * T * T * D;
    v->gflops = 2.0 * (patches + s->depth * block) / 1e9;
    return 0;
}

int dino_build_from(dino_vit *v, const edm2_config *cfg, int *max_batch, char *msg, size_t len) {
    const char *keys[6] = {"dim", "depth", "heads", "patch", "resolution", "max_batch"};
    long long val[6];
    for (int i = 0; i < 6; i++) {
        val[i] = edm2_cfg_int(cfg, keys[i], 0);
        if (val[i] < 1 || val[i] > 65536) return snprintf(msg, len, "%s = %lld: expected 1 to 65536", keys[i], val[i]), -1;
    }
    *max_batch = (int)(val[5] < 4096 ? val[5] : 4096);
    const dino_shape s = {(int)val[0], (int)val[1], (int)val[2], (int)val[3], (int)val[4]};
    return dino_build(v, &s, msg, len);
}

void dino_info(const dino_vit *v, edm2_features_info *info) {
    edm2_features_info i;
    memset(&i, 0, sizeof i);
    i.struct_size = info->struct_size < sizeof i ? info->struct_size : (uint32_t)sizeof i;
    i.dim = v->s.dim;
    i.input_resolution = v->s.res;
    i.arena_floats = v->arena_floats;
    i.param_count = v->nparams;
    i.params = v->params;
    i.gflops_per_image = v->gflops;
    memcpy(info, &i, i.struct_size);
}
