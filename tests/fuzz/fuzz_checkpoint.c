/* fuzz_checkpoint.c: a training checkpoint as `train` resumes from it: safetensors bytes validated for a
 * small run (params and two optimizer buffers of 8 floats, one EMA, batch 4, seed 1): metadata counts in
 * range and consistent, exactly the expected tensors, every value finite; or a one-line error (for another
 * network's fingerprint, one that lists what differs). */
#include <math.h>

#include "checkpoint.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file f;
    edm2_err err;
    float host[4][8];
    ckpt_buffer bufs[4] = {{"params", host[0], 8}, {"optimizer/exp_avg", host[1], 8},
                           {"optimizer/exp_avg_sq", host[2], 8}, {"ema/0.100", host[3], 8}};
    ckpt_info info = {0, 0, 4, 1, "mp_unet:model_channels=4;channel_mult=1,2"};
    int rc = st_parse(&f, "training-state-0000001.safetensors", data, size, &err);
    if (!rc) rc = ckpt_read_file(&f, bufs, 4, &info, &err);
    if (rc) {
        fuzz_one_line(&err);
    } else {
        if (info.nimg < 0 || info.nimg % 4 || info.optimizer_step < 0 || info.optimizer_step > info.nimg / 4) abort();
        for (int b = 0; b < 4; b++)
            for (int i = 0; i < 8; i++)
                if (!isfinite(host[b][i])) abort();
    }
    st_close(&f);
    return 0;
}
