/* act_type.h: the element type of the CUDA U-Net body's activations (and of the prepared weights its
 * products read), the `precision` key's UNET_FP32/BF16/FP16 (../mp_unet/unet_graph.h), the same numbers. */
#ifndef EDM2_ACT_TYPE_H
#define EDM2_ACT_TYPE_H

#include <stddef.h>

enum { ACT_F32 = 0, ACT_BF16 = 1, ACT_F16 = 2 };
static inline size_t act_size(int act) { return act == ACT_F32 ? 4 : 2; }
/* Its name in messages: "float32", "bf16", "fp16". */
static inline const char *act_name(int act) { return act == ACT_BF16 ? "bf16" : act == ACT_F16 ? "fp16" : "float32"; }

#endif
