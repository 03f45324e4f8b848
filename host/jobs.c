/* jobs.c: the table of job types that `[job] type` may name, and the sections each one needs. */
#include <string.h>

#include "jobs.h"

#define KIND(k) (1u << (k))

static const char *const k_train_sections[] = {"data", "training", NULL};
static const char *const k_generate_sections[] = {"generate", NULL};
static const char *const k_phema_sections[] = {"phema", NULL};
static const char *const k_evaluate_sections[] = {"evaluate", "data", NULL};
static const char *const k_sweep_sections[] = {"sweep", "data", NULL};
static const char *const k_report_sections[] = {"report", NULL};
static const char *const k_encode_sections[] = {"encode", NULL};
static const char *const k_convert_sections[] = {"convert", NULL};

static const job_def k_jobs[] = {
    {"train", "train a network; resumable, with EMA snapshots and a final sample grid",
     KIND(EDM2_KIND_BACKEND) | KIND(EDM2_KIND_NETWORK) | KIND(EDM2_KIND_LOSS) | KIND(EDM2_KIND_OPTIMIZER) |
         KIND(EDM2_KIND_EMA),
     k_train_sections, job_train},
    {"generate", "generate images from a snapshot with a sampler, optionally guided by a second snapshot",
     KIND(EDM2_KIND_BACKEND) | KIND(EDM2_KIND_SAMPLER), k_generate_sections, job_generate},
    {"phema", "post-hoc EMA: reconstruct any sigma_rel from a run's snapshots",
     KIND(EDM2_KIND_BACKEND) | KIND(EDM2_KIND_EMA), k_phema_sections, job_phema},
    {"evaluate", "measure a snapshot's samples (or a folder of images) against reference images (SWD, "
                 "FID or FD_DINOv2); appends to metrics.jsonl",
     KIND(EDM2_KIND_BACKEND), k_evaluate_sections, job_evaluate}, /* ([sampler] when it generates: net) */
    {"sweep", "EMA-length sweep: reconstruct sigma_rel post hoc, evaluate each; table and plot",
     KIND(EDM2_KIND_BACKEND) | KIND(EDM2_KIND_EMA) | KIND(EDM2_KIND_SAMPLER), k_sweep_sections, job_sweep},
    {"report", "compare training runs: differing config keys, best FID/FD/SWD, loss curves, speed, grids",
     0, k_report_sections, job_report},
    {"encode", "the dataset tool of latent presets: a folder of images -> VAE latents (a tensors file); resumable",
     KIND(EDM2_KIND_BACKEND) | KIND(EDM2_KIND_VAE), k_encode_sections, job_encode},
    {"convert", "the dataset tool of pixel presets: a folder (or .zip) of images -> centre-cropped PNGs with "
                "dataset.json; resumable",
     0, k_convert_sections, job_convert},
};
static const size_t k_njobs = sizeof k_jobs / sizeof *k_jobs;

const job_def *job_list(size_t *n) {
    *n = k_njobs;
    return k_jobs;
}

const job_def *job_find(const char *type) {
    for (size_t i = 0; i < k_njobs; i++)
        if (strcmp(k_jobs[i].type, type) == 0) return &k_jobs[i];
    return NULL;
}
