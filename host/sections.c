/* sections.c: the schemas of the sections the host itself reads. Plugin sections ([backend],
 * [network], [loss], [optimizer], [ema], [sampler]) take their schema from the plugin they name. */
#include <string.h>

#include "validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const edm2_config_key k_job[] = {
    {"type", EDM2_CFG_STRING, NULL, "what to run: see `edm2host --help` for the job types"},
    {"run_dir", EDM2_CFG_STRING, "runs/default", "output folder (log, stats, snapshots, checkpoints)"},
    {"seed", EDM2_CFG_INT, "0", "seed of every random stream of the run"},
    {"threads", EDM2_CFG_INT, "0", "CPU threads for plugins (0 = all cores)"},
};

static const edm2_config_key k_plugins[] = {
    {"path", EDM2_CFG_STRING, "", "extra plugin folders, colon-separated, relative to this config file; searched first"},
    {"load", EDM2_CFG_STRING, "", "plugin files to load, comma-separated, relative to this config file; must load"},
};

static const host_section k_sections[] = {
    {"job", "the job to run and where its outputs go", k_job, COUNT(k_job)},
    {"plugins", "where to find plugins besides the default search path", k_plugins, COUNT(k_plugins)},
};

const host_section *host_section_list(size_t *n) {
    *n = COUNT(k_sections);
    return k_sections;
}

const host_section *host_section_find(const char *name) {
    for (size_t i = 0; i < COUNT(k_sections); i++)
        if (strcmp(k_sections[i].name, name) == 0) return &k_sections[i];
    return NULL;
}
