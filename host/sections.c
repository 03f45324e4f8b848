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

static const edm2_config_key k_data[] = {
    {"source", EDM2_CFG_STRING, "fashion-mnist", "fashion-mnist (the Debian package's IDX files) or folder (PNGs + dataset.json)"},
    {"path", EDM2_CFG_STRING, "", "data folder; empty = /usr/share/datasets/fashion-mnist for fashion-mnist"},
    {"split", EDM2_CFG_STRING, "train", "fashion-mnist split: train or test"},
    {"resolution", EDM2_CFG_INT, "32", "image resolution (fashion-mnist: 28, 32 = padded, or 32/k downsampled)"},
    {"channels", EDM2_CFG_INT, "3", "folder: 1 (gray) or 3 (RGB)"},
    {"max_images", EDM2_CFG_INT, "0", "use only the first N images (0 = all)"},
};

static const edm2_config_key k_training[] = {
    {"batch", EDM2_CFG_INT, "2048", "images per optimizer step"},
    {"batch_gpu", EDM2_CFG_INT, "0", "images per forward/backward (gradient accumulation); 0 = batch"},
    {"duration_kimg", EDM2_CFG_FLOAT, "2147483.648", "training length in thousands of images"},
    {"status_kimg", EDM2_CFG_FLOAT, "131.072", "status line and stats.jsonl record interval (kimg)"},
    {"snapshot_kimg", EDM2_CFG_FLOAT, "8388.608", "EMA snapshot interval (kimg, >= 1; 0 = only at the end)"},
    {"checkpoint_kimg", EDM2_CFG_FLOAT, "134217.728", "checkpoint interval (kimg, >= 1; 0 = only at the end)"},
    {"keep_checkpoints", EDM2_CFG_INT, "2", "how many of the newest checkpoints to keep (0 = all)"},
    {"sample_grid", EDM2_CFG_BOOL, "true", "at the end, write samples.png from an EMA snapshot with [sampler]"},
    {"grid_ema", EDM2_CFG_STRING, "", "EMA label to sample the grid from (default: the last one)"},
    {"grid_columns", EDM2_CFG_INT, "10", "grid columns (and, for class-conditional nets, samples per class)"},
};

static const host_section k_sections[] = {
    {"job", "the job to run and where its outputs go", k_job, COUNT(k_job)},
    {"plugins", "where to find plugins besides the default search path", k_plugins, COUNT(k_plugins)},
    {"data", "the training images", k_data, COUNT(k_data)},
    {"training", "batch, duration and the intervals of status, snapshots and checkpoints", k_training, COUNT(k_training)},
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
