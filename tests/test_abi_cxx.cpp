// test_abi_cxx.cpp: the ABI headers compiled as C++17 with -Wall -Wextra -pedantic -Werror.
#include <cstddef>

#include "edm2/edm2.h"

static_assert(offsetof(edm2_plugin_entry_t, abi) == 0, "the ABI version must come first");

extern "C" size_t abi_sizes_cxx(size_t *out, size_t cap) {
    size_t v[] = {sizeof(edm2_plugin_entry_t), sizeof(edm2_plugin_desc),     sizeof(edm2_config_key),
                  sizeof(edm2_host),           sizeof(edm2_config),          sizeof(edm2_backend_vtable),
                  sizeof(edm2_network_vtable), sizeof(edm2_network_info),    sizeof(edm2_forward_args),
                  sizeof(edm2_param_desc),     sizeof(edm2_loss_vtable),     sizeof(edm2_loss_batch),
                  sizeof(edm2_optimizer_vtable), sizeof(edm2_ema_vtable),    sizeof(edm2_sampler_vtable),
                  sizeof(edm2_denoiser),       offsetof(edm2_plugin_entry_t, abi)};
    size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i < n && i < cap; i++) out[i] = v[i];
    return n;
}

// A plugin entry defined from C++ compiles too (the macro gives it C linkage).
static const edm2_plugin_desc *const k_none[1] = {nullptr};
namespace {
const edm2_plugin_entry_t k_entry = {{EDM2_ABI_MAJOR, EDM2_ABI_MINOR}, sizeof(edm2_plugin_entry_t), 0, k_none};
}
extern "C" const edm2_plugin_entry_t *abi_cxx_entry() { return &k_entry; }
