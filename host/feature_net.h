/* feature_net.h: the job's feature network (the [features] plugin, e.g. inception_v3) with its weights loaded
 * from the file its `weights` key names, and images turned into features as FID defines it: generated
 * images (values in [-1, 1]) are first quantised to 8-bit pixels exactly as the PNG files would store them,
 * then scaled to [0, 1] for the plugin. */
#ifndef EDM2_HOST_FEATURE_NET_H
#define EDM2_HOST_FEATURE_NET_H

#include "runtime.h"

typedef struct feat_instance {
    const plugin_rec *rec;
    const edm2_features_vtable *vt;
    edm2_features *f;
    edm2_features_info info;
    runtime *rt;
    char weights[1024];    /* the weights file as the config names it */
    char fingerprint[24];  /* FNV-1a-64 of the weight values, hex: which network the statistics came from */
    float *img, *feat;     /* backend buffers for the images of one call of the plugin */
    float *host_img;       /* host buffer of the quantised images */
    size_t chunk_floats;   /* floats per image in img */
} feat_instance;

/* Creates the features plugin `rec` on rt's backend with its section `cfg`, loads and checks the weights its
 * `weights` key names (every table entry must be in the file with its shape and finite; other tensors are
 * ignored) and prepares it. 0, or -1 with a one-line reason naming the file and tensor. */
int feat_open(feat_instance *fi, runtime *rt, const plugin_rec *rec, const edm2_config *cfg, edm2_err *err);
void feat_close(feat_instance *fi);
/* features[n, info.dim] (host) of images[n, C, R, R] (host, generated: values in [-1, 1]). */
int feat_extract(feat_instance *fi, const float *images, int n, int C, int R, float *features, edm2_err *err);

#endif
