/* test_abi_c.c: the ABI headers compiled as C11 with -Wall -Wextra -pedantic -Werror (see CMakeLists),
 * checked against the same headers compiled as C++17 (test_abi_cxx.cpp): identical struct layouts. */
#include "test_util.h"
#include "edm2/edm2.h"

size_t abi_sizes_cxx(size_t *out, size_t cap);

static size_t abi_sizes_c(size_t *out) {
    size_t n = 0;
    out[n++] = sizeof(edm2_plugin_entry_t);
    out[n++] = sizeof(edm2_plugin_desc);
    out[n++] = sizeof(edm2_config_key);
    out[n++] = sizeof(edm2_host);
    out[n++] = sizeof(edm2_config);
    out[n++] = sizeof(edm2_backend_vtable);
    out[n++] = sizeof(edm2_network_vtable);
    out[n++] = sizeof(edm2_network_info);
    out[n++] = sizeof(edm2_forward_args);
    out[n++] = sizeof(edm2_param_desc);
    out[n++] = sizeof(edm2_loss_vtable);
    out[n++] = sizeof(edm2_loss_batch);
    out[n++] = sizeof(edm2_optimizer_vtable);
    out[n++] = sizeof(edm2_ema_vtable);
    out[n++] = sizeof(edm2_sampler_vtable);
    out[n++] = sizeof(edm2_denoiser);
    out[n++] = offsetof(edm2_plugin_entry_t, abi);
    return n;
}

static void test_layouts_match(void **state) {
    (void)state;
    size_t c[32], cxx[32];
    size_t nc = abi_sizes_c(c), ncxx = abi_sizes_cxx(cxx, 32);
    assert_int_equal(nc, ncxx);
    for (size_t i = 0; i < nc; i++) assert_int_equal(c[i], cxx[i]);
    assert_int_equal(c[nc - 1], 0); /* the version comes first */
}

static void test_version_macros(void **state) {
    (void)state;
    assert_int_equal(EDM2_ABI_MAJOR, 1);
    assert_true(EDM2_ABI_MINOR >= 0);
    assert_string_equal(EDM2_ENTRY_SYMBOL, "edm2_plugin_entry");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_layouts_match), cmocka_unit_test(test_version_macros)};
    test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
