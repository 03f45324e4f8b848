/* edm2.h: the whole public plugin ABI in one include. */
#ifndef EDM2_H
#define EDM2_H
#include "edm2_plugin.h"
#include "edm2_backend.h"
#include "edm2_network.h"
#include "edm2_loss.h"
#include "edm2_optimizer.h"
#include "edm2_ema.h"
#include "edm2_sampler.h"
#include "edm2_features.h"
#include "edm2_vae.h"
#include "edm2_util.h"
#endif
