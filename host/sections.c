/* sections.c: the schemas of the sections the host itself reads. Plugin sections ([backend],
 * [network], [loss], [optimizer], [ema], [sampler]) take their schema from the plugin they name. */
#include <string.h>

#include "validate.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const edm2_config_key k_job[] = {
    {"type", EDM2_CFG_STRING, NULL, "what to run: see `edm2host --help` for the job types"},
    {"run_dir", EDM2_CFG_STRING, "runs/default", "output folder (log, stats, snapshots, checkpoints)"},
    {"seed", EDM2_CFG_INT, "0", "seed of every random stream of the run"},
    {"threads", EDM2_CFG_INT, "0", "CPU threads for plugins (0 = all cores, shared by the processes of a node)"},
    {"comm_timeout_s", EDM2_CFG_FLOAT, "600", "data-parallel runs: seconds to wait for the other processes before failing"},
};

static const edm2_config_key k_plugins[] = {
    {"path", EDM2_CFG_STRING, "", "extra plugin folders, colon-separated, relative to this config file; searched first"},
    {"load", EDM2_CFG_STRING, "", "plugin files to load, comma-separated, relative to this config file; must load"},
};

static const edm2_config_key k_data[] = {
    {"source", EDM2_CFG_STRING, "fashion-mnist",
     "fashion-mnist (the Debian package's IDX files), folder (PNGs + dataset.json, in a folder or a .zip archive of "
     "the EDM2 dataset tool, which may hold .npy latents of its encode step instead), images (PNG/JPEG of any size in "
     "class subfolders or with a dataset.json, centre-cropped to the resolution as the dataset tool does) or tensors "
     "(a .safetensors file)"},
    {"path", EDM2_CFG_STRING, "", "data folder or file; empty = /usr/share/datasets/fashion-mnist for fashion-mnist"},
    {"split", EDM2_CFG_STRING, "train", "fashion-mnist split: train or test"},
    {"resolution", EDM2_CFG_INT, "32", "image resolution (fashion-mnist: 28, 32 = padded, or 32/k downsampled)"},
    {"channels", EDM2_CFG_INT, "3", "folder of PNGs: 1 (gray) or 3 (RGB)"},
    {"max_images", EDM2_CFG_INT, "0", "use only the first N images (0 = all)"},
    /* The scaling of the dataset tool's .npy latents, which it stores unscaled; the defaults are the reference's
     * (those of [vae] too, docs/vae.md "Latent scaling"). */
    {"latent_mean", EDM2_CFG_FLOAT_LIST, "5.81,3.25,0.12,-2.15", "archive of .npy latents: mean of each raw channel"},
    {"latent_std", EDM2_CFG_FLOAT_LIST, "4.17,4.62,3.71,3.28", "archive of .npy latents: std of each raw channel"},
    {"final_mean", EDM2_CFG_FLOAT, "0", "archive of .npy latents: mean of the scaled channels"},
    {"final_std", EDM2_CFG_FLOAT, "0.5", "archive of .npy latents: std of the scaled channels"},
};

static const edm2_config_key k_training[] = {
    {"batch", EDM2_CFG_INT, "2048", "images per optimizer step"},
    {"batch_gpu", EDM2_CFG_INT, "0",
     "images per forward/backward pass (gradient accumulation); 0 = one pass per process (batch / processes); auto = "
     "that, halved after a pass that runs out of memory until one fits"},
    {"duration_kimg", EDM2_CFG_FLOAT, "2147483.648", "training length in thousands of images"},
    {"status_kimg", EDM2_CFG_FLOAT, "131.072", "status line and stats.jsonl record interval (kimg)"},
    {"snapshot_kimg", EDM2_CFG_FLOAT, "8388.608", "EMA snapshot interval (kimg, >= 1; 0 = only at the end)"},
    {"checkpoint_kimg", EDM2_CFG_FLOAT, "134217.728", "checkpoint interval (kimg, >= 1; 0 = only at the end)"},
    {"keep_checkpoints", EDM2_CFG_INT, "2", "how many of the newest checkpoints to keep (0 = all)"},
    {"sample_grid", EDM2_CFG_BOOL, "true", "at the end, write samples.png from an EMA snapshot with [sampler]"},
    {"grid_ema", EDM2_CFG_STRING, "", "EMA label to sample the grid from (default: the last one)"},
    {"grid_columns", EDM2_CFG_INT, "10", "grid columns (and, for class-conditional nets, samples per class)"},
};

static const edm2_config_key k_generate[] = {
    {"net", EDM2_CFG_STRING, NULL, "snapshot to sample from (.safetensors written by train or phema)"},
    {"gnet", EDM2_CFG_STRING, "", "guiding network snapshot (needed when guidance != 1)"},
    {"guidance", EDM2_CFG_FLOAT, "1", "guidance weight w: D = g + w (net - g); 1 = no guidance"},
    {"seeds", EDM2_CFG_STRING, "0-63", "seeds, as a list and/or ranges: 0-63 or 1,5,10-19"},
    {"labels", EDM2_CFG_STRING, "rows", "class labels: rows (one grid row per class), random (per seed), or a class index"},
    {"batch", EDM2_CFG_INT, "32", "images per sampler call"},
    {"outdir", EDM2_CFG_STRING, "out", "output folder (its config.ini: how its images were made)"},
    {"images", EDM2_CFG_BOOL, "true", "write one PNG per image (SEED-classC.png)"},
    {"subdirs", EDM2_CFG_BOOL, "false", "PNGs in subfolders of 1000 seeds (OUTDIR/000000/, OUTDIR/001000/, ...)"},
    {"resume", EDM2_CFG_BOOL, "false", "generate only the images not in outdir yet (an interrupted run's rest; a seed's image does not depend on the batch); refused when outdir's config.ini names another network, guidance, labels, sampler, VAE or backend"},
    {"grid", EDM2_CFG_BOOL, "true", "write grid.png of the first (up to 1024) images"},
    {"grid_columns", EDM2_CFG_INT, "10", "images per grid row"},
    {"raw", EDM2_CFG_BOOL, "false", "also write samples.safetensors with the float images"},
    {"precision", EDM2_CFG_STRING, "", "network precision (fp32, bf16, fp16: the CUDA network's body); empty = as the snapshot was trained"},
};

static const edm2_config_key k_evaluate[] = {
    {"net", EDM2_CFG_STRING, "", "snapshot to evaluate (.safetensors written by train or phema): its images are generated "
                                 "with [sampler] (or give images)"},
    {"images", EDM2_CFG_STRING, "", "instead of net: a folder of PNG images to measure, e.g. a generate job's outdir "
                                    "(its grid.png left out; every PNG below it, at [data]'s channels and resolution)"},
    {"gnet", EDM2_CFG_STRING, "", "guiding network snapshot (needed when guidance != 1)"},
    {"guidance", EDM2_CFG_FLOAT, "1", "guidance weight w: D = g + w (net - g); 1 = no guidance"},
    {"seeds", EDM2_CFG_STRING, "0-1023", "seeds of the generated images, as a list and/or ranges"},
    {"labels", EDM2_CFG_STRING, "random", "class labels: random (per seed), rows, or a class index"},
    {"batch", EDM2_CFG_INT, "64", "images per sampler call"},
    {"metrics", EDM2_CFG_STRING, "swd",
     "what to measure: swd (sliced Wasserstein distance, no weights needed), fid ([features] inception_v3), fd_dinov2 "
     "([features] dinov2), or swd with one of them, e.g. swd,fid"},
    {"reference", EDM2_CFG_STRING, "", "SWD reference statistics file: loaded when it exists, else computed from [data] "
                                      "and saved there; empty = computed from [data] each time"},
    {"fid_reference", EDM2_CFG_STRING, "", "reference statistics of the Fréchet distance, FID or FD_DINOv2 (mean, "
                                          "covariance of [data]'s features): loaded when the file exists, else computed "
                                          "and saved there; empty = computed each time"},
    {"ref_images", EDM2_CFG_INT, "0", "reference images from [data] (0 = as many as generated)"},
    {"swd_patches", EDM2_CFG_INT, "128", "SWD: patches per image and pyramid level"},
    {"swd_min_res", EDM2_CFG_INT, "16", "SWD: coarsest pyramid level"},
    {"images_dir", EDM2_CFG_STRING, "", "also write a grid of the (first 1024) generated images here; empty = none"},
    {"precision", EDM2_CFG_STRING, "", "network precision (fp32, bf16, fp16: the CUDA network's body); empty = as the snapshot was trained"},
};

static const edm2_config_key k_sweep[] = {
    {"runs", EDM2_CFG_STRING, NULL, "training run folders (their EMA snapshots), comma-separated: one curve each"},
    {"stds", EDM2_CFG_FLOAT_LIST, "0.025,0.05,0.075,0.1,0.15,0.2", "sigma_rel to reconstruct and evaluate"},
    {"at_kimg", EDM2_CFG_FLOAT, "0", "reconstruct at the snapshots of this kimg; 0 = the newest"},
    {"guidance", EDM2_CFG_FLOAT_LIST, "1", "guidance weights (several: the guidance x EMA grid; needs gnet)"},
    {"gnet", EDM2_CFG_STRING, "", "guiding network snapshot"},
    {"outdir", EDM2_CFG_STRING, "sweep", "where the reconstructions (one folder per run), sweep.md/.tsv/.png go"},
    {"seeds", EDM2_CFG_STRING, "0-999", "seeds of the generated images of each evaluation"},
    {"labels", EDM2_CFG_STRING, "random", "class labels: random (per seed), rows, or a class index"},
    {"batch", EDM2_CFG_INT, "100", "images per sampler call"},
    {"metrics", EDM2_CFG_STRING, "swd", "swd, fid or fd_dinov2 (needs [features]), or swd with one of them; the table "
                                        "and plot use the Fréchet distance when measured"},
    {"reference", EDM2_CFG_STRING, "", "SWD reference statistics file (see [evaluate] reference)"},
    {"fid_reference", EDM2_CFG_STRING, "", "Fréchet distance (FID, FD_DINOv2) reference statistics file (see [evaluate] "
                                          "fid_reference)"},
    {"ref_images", EDM2_CFG_INT, "0", "reference images from [data] (0 = as many as generated)"},
    {"swd_patches", EDM2_CFG_INT, "128", "SWD: patches per image and pyramid level"},
    {"swd_min_res", EDM2_CFG_INT, "16", "SWD: coarsest pyramid level"},
    {"precision", EDM2_CFG_STRING, "", "network precision (fp32, bf16, fp16: the CUDA network's body); empty = as the snapshot was trained"},
};

static const edm2_config_key k_report[] = {
    {"runs", EDM2_CFG_STRING, NULL, "training run folders to compare, comma-separated"},
    {"sweep", EDM2_CFG_STRING, "", "sweep.tsv of a sweep over these runs (for the best FID or SWD and its sigma_rel); empty = none"},
    {"outdir", EDM2_CFG_STRING, "report", "where report.md, loss.png and the grids go"},
};

static const edm2_config_key k_phema[] = {
    {"snapshots", EDM2_CFG_STRING, NULL, "folder with the training run's EMA snapshots"},
    {"stds", EDM2_CFG_FLOAT_LIST, "0.050,0.100", "sigma_rel (or other profile parameters) to reconstruct"},
    {"at_kimg", EDM2_CFG_FLOAT, "0", "reconstruct at the snapshot of this kimg; 0 = the newest"},
    {"outdir", EDM2_CFG_STRING, "", "output folder; empty = the snapshots folder"},
};

static const edm2_config_key k_encode[] = {
    {"source", EDM2_CFG_STRING, NULL,
     "folder of images (PNG, JPEG; any size), or a .zip of one: class subfolders, a dataset.json, or just images"},
    {"dest", EDM2_CFG_STRING, NULL, "the tensors file to write (.safetensors, for [data] source = tensors)"},
    {"resolution", EDM2_CFG_INT, "512", "images are centre-cropped and resized to this (the ADM / EDM2 dataset tool's crop)"},
    {"latents", EDM2_CFG_STRING, "moments",
     "moments (the posterior's mean and std: training draws anew at each use, as EDM2), mean, or sample (one draw here)"},
    {"batch", EDM2_CFG_INT, "8", "images per call of the VAE"},
    {"max_images", EDM2_CFG_INT, "0", "encode only the first N images (0 = all)"},
    {"checkpoint_images", EDM2_CFG_INT, "1000", "save the progress (DEST.partial*) every N images"},
    {"stop_after", EDM2_CFG_INT, "0", "stop after N images in this run, resumable (for time-limited jobs; 0 = no limit)"},
};

static const edm2_config_key k_convert[] = {
    {"source", EDM2_CFG_STRING, NULL,
     "folder of images (PNG, JPEG; any size), or a .zip of one: class subfolders, a dataset.json, or just images"},
    {"dest", EDM2_CFG_STRING, NULL,
     "the folder to write (PNGs and dataset.json, for [data] source = folder), or one archive when it ends in .zip"},
    {"resolution", EDM2_CFG_INT, "64", "images are centre-cropped and resized to this (the ADM / EDM2 dataset tool's crop)"},
    {"max_images", EDM2_CFG_INT, "0", "convert only the first N images (0 = all)"},
};

static const host_section k_sections[] = {
    {"job", "the job to run and where its outputs go", k_job, COUNT(k_job)},
    {"plugins", "where to find plugins besides the default search path", k_plugins, COUNT(k_plugins)},
    {"data", "the training images", k_data, COUNT(k_data)},
    {"training", "batch, duration and the intervals of status, snapshots and checkpoints", k_training, COUNT(k_training)},
    {"generate", "what to generate from which snapshot", k_generate, COUNT(k_generate)},
    {"phema", "post-hoc EMA reconstruction", k_phema, COUNT(k_phema)},
    {"evaluate", "what to measure of which snapshot, against which reference", k_evaluate, COUNT(k_evaluate)},
    {"sweep", "the EMA-length sweep: runs, sigma_rel, guidance, and the evaluation settings", k_sweep, COUNT(k_sweep)},
    {"report", "the training runs to compare and where the report goes", k_report, COUNT(k_report)},
    {"encode", "the dataset tool: which images, where the latents go, how they are made", k_encode, COUNT(k_encode)},
    {"convert", "the dataset tool's convert step: which images, where the PNGs go, their size", k_convert,
     COUNT(k_convert)},
};

/* Values that pass the type check but cannot work. */
static const host_range k_ranges[] = {
    {"job", "threads", 0, 4096},
    {"job", "comm_timeout_s", 1, 86400},
    {"evaluate", "batch", 1, 1 << 16},
    {"sweep", "batch", 1, 1 << 16},
    {"sweep", "ref_images", 0, 1 << 30},
    {"sweep", "swd_patches", 1, 1 << 16},
    {"sweep", "swd_min_res", 8, 4096},
    {"evaluate", "ref_images", 0, 1 << 30},
    {"evaluate", "swd_patches", 1, 1 << 16},
    {"evaluate", "swd_min_res", 8, 4096},
    {"data", "resolution", 1, 4096},
    {"encode", "resolution", 8, 4096},
    {"encode", "batch", 1, 64},
    {"encode", "max_images", 0, 1 << 30},
    {"encode", "checkpoint_images", 1, 1 << 30},
    {"encode", "stop_after", 0, 1 << 30},
    {"convert", "resolution", 8, 4096},
    {"convert", "max_images", 0, 1 << 30},
    {"data", "channels", 1, 3},
    {"data", "max_images", 0, 1 << 30},
    {"training", "batch", 1, 1 << 24},
    {"training", "batch_gpu", 0, 1 << 24},
    {"training", "duration_kimg", 0, 1e12},
    {"training", "status_kimg", 0, 1e12},
    {"training", "snapshot_kimg", 0, 1e12},
    {"training", "checkpoint_kimg", 0, 1e12},
    {"training", "keep_checkpoints", 0, 1e6},
    {"training", "grid_columns", 1, 1024},
    {"generate", "batch", 1, 65536},
    {"generate", "grid_columns", 1, 1024},
    {"phema", "at_kimg", 0, 1e12},
};

const host_range *host_range_find(const char *section, const char *key) {
    for (size_t i = 0; i < COUNT(k_ranges); i++)
        if (!strcmp(k_ranges[i].section, section) && !strcmp(k_ranges[i].key, key)) return &k_ranges[i];
    return NULL;
}

const char *host_key_word(const char *section, const char *key) {
    return !strcmp(section, "training") && !strcmp(key, "batch_gpu") ? "auto" : NULL;
}

const host_section *host_section_list(size_t *n) {
    *n = COUNT(k_sections);
    return k_sections;
}

const host_section *host_section_find(const char *name) {
    for (size_t i = 0; i < COUNT(k_sections); i++)
        if (strcmp(k_sections[i].name, name) == 0) return &k_sections[i];
    return NULL;
}
