/* plugin_check.h: every plugin a config names, instantiated once to validate its values. */
#ifndef EDM2_HOST_PLUGIN_CHECK_H
#define EDM2_HOST_PLUGIN_CHECK_H

#include "validate.h"

/* Opens the backend and creates and destroys an instance of each plugin section of rc. Returns 0, or -1
 * with the plugin's reason in one line, after where the key it names was set (FILE:LINE, or --set
 * SECTION.KEY) or else the config's path. With a [network] section and `net` not NULL, *net is the
 * network's info (its shapes; params NULL, the table being gone with the instance). */
int config_instantiate(const run_config *rc, edm2_network_info *net, edm2_err *err);

#endif
