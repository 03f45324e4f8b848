/* setup.h: the common start of `run` and `check`: load a config with its overrides, build the plugin
 * search path from it, load plugins, validate. */
#ifndef EDM2_HOST_SETUP_H
#define EDM2_HOST_SETUP_H

#include "validate.h"

typedef struct setup {
    cfg cfg;
    plugin_registry reg;
    run_config rc;
    char backend_note[480]; /* how the backend was chosen where the config left it to the host (backend_auto.h) */
} setup;

int setup_from_config(setup *s, const char *path, char *const *sets, int nsets, edm2_err *err);
void setup_free(setup *s);

#endif
