/* forced_weight_norm.h: forced weight normalisation (paper §2.3, CONFIG E; docs/formulas.md §1): before
 * every training step, without gradient, each weight's output units are projected back onto the
 * unit-variance sphere, w <- normalize(w) = w / (eps + ||w||_2 / sqrt(fan_in)). */
#ifndef EDM2_MP_FORCED_WEIGHT_NORM_H
#define EDM2_MP_FORCED_WEIGHT_NORM_H

/* w[O, fan_in], in place. */
void forced_weight_norm(float *w, int O, int fan_in);

/* Every weight of a network's arena (host memory), in place. */
struct unet_graph;
void unet_normalize_weights(const struct unet_graph *g, float *params);

#endif
