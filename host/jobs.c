/* jobs.c: the table of job types that `[job] type` may name, and the sections each one needs. */
#include <string.h>

#include "validate.h"

#define KIND(k) (1u << (k))

static const job_def k_jobs[] = {
    {NULL, NULL, 0, NULL, NULL},
};
static const size_t k_njobs = 0;

const job_def *job_list(size_t *n) {
    *n = k_njobs;
    return k_jobs;
}

const job_def *job_find(const char *type) {
    for (size_t i = 0; i < k_njobs; i++)
        if (strcmp(k_jobs[i].type, type) == 0) return &k_jobs[i];
    return NULL;
}
