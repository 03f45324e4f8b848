/* gen_session.h: what the jobs that sample from a snapshot share (generate, evaluate): the backend, the
 * snapshot `net` and, when `guidance` != 1, the guiding snapshot `gnet` (keys of the job's section), the
 * [sampler] plugin, and the seeds and labels of the images. */
#ifndef EDM2_HOST_GEN_SESSION_H
#define EDM2_HOST_GEN_SESSION_H

#include <stdint.h>

#include "cpu_share.h"
#include "generate.h"
#include "safetensors.h"
#include "validate.h"

typedef struct gen_session {
    runtime rt;
    net_instance net, gnet;
    st_file nf, gf;
    generator gen;
    cpu_share share;
    int L, C, R;
    size_t per; /* floats per image */
} gen_session;

/* The backend alone (its threads shared with other programs: gen_session_share_cpu), for a job that measures
 * images it does not generate. 0, or -1 with a reason; close either way. */
int gen_session_open_backend(gen_session *s, const run_config *rc, edm2_err *err);
/* The backend, the snapshots and the sampler. `sec` is the job's section (`section` its name, for messages).
 * 0, or -1 with a reason; close either way. */
int gen_session_open(gen_session *s, const run_config *rc, const edm2_config *sec, const char *section, edm2_err *err);
/* Adjusts the thread count to what other programs leave free (cpu_share.h), with a log line. */
void gen_session_share_cpu(gen_session *s);
void gen_session_close(gen_session *s);

/* Parses "0-63" / "1,5,10-19" into a malloc'ed list. */
int seeds_parse(const char *s, uint64_t **out, int *n, edm2_err *err);
/* Checks a labels mode (rows, random, or a class index < L); *fixed: the index, or -1. */
int label_mode(const char *mode, int L, int *fixed, edm2_err *err);
/* Class of image i: rows -> (i / cols) % L, random -> from the seed, else the fixed index. */
int label_class(const char *mode, int fixed, int i, uint64_t seed, int cols, int L);

#endif
