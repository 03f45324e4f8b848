/* unet_config.h: the config keys and hyperparameter checks of mp_unet, shared by its CPU and CUDA builds. */
#ifndef EDM2_UNET_CONFIG_H
#define EDM2_UNET_CONFIG_H

#include "edm2/edm2.h"
#include "unet_graph.h"

#define UNET_CONFIG_KEY_COUNT 19
extern const edm2_config_key unet_config_keys[];
/* Reads and checks the hyperparameters; a one-line error through the host's log on failure. */
edm2_status unet_parse_hparams(const edm2_host *host, const edm2_config *cfg, unet_hparams *hp);

#endif
