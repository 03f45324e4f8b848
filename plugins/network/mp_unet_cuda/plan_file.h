/* plan_file.h: the file of EDM2_CUDNN_PLANS, which keeps the bf16/fp16 3x3 convolution plans chosen by
 * timing (conv_cuda.c) so that a later run takes the same choices without timing them again: a resumed
 * training, a rerun that must give the same bits (timing can choose otherwise from run to run), a kernel
 * profile under Nsight Compute (which must profile what an ordinary run runs). Plain text, one line per
 * plan; '#' starts a comment line:
 *
 *   KEY ; forward algo A math M ws BYTES [graph ENGINE ws BYTES] ; backward-data ... ; backward-filter ... ;
 *   wgrad gemm|cudnn
 *
 * (on one line). KEY names the GPU, cuDNN's version, the settings that bound the choice and the shape
 * (conv_cuda.c makes it; it holds no ';'). Each kind gives the legacy algorithm (cudnnConvolution*Algo_t),
 * its math type (cudnnMathType_t) and workspace bytes, and, where the graph API's execution plan runs
 * instead, that plan's engine (cuDNN's global index) and workspace; `wgrad` says whether the weight
 * gradient runs as products (wgrad_gemm). This file only reads and writes records; conv_cuda.c checks them
 * against cuDNN. */
#ifndef EDM2_PLAN_FILE_H
#define EDM2_PLAN_FILE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PLAN_KEY_MAX 256 /* a key of conv_cuda.c is at most about 170 characters */

/* One kind of product (forward, backward data, backward filter) of a plan. */
typedef struct plan_kind_rec {
    int algo;          /* the legacy algorithm */
    int math;          /* its math type */
    uint64_t ws;       /* its workspace bytes */
    int64_t engine;    /* >= 0: the graph API's plan of this engine runs instead (beta = 0), ... */
    uint64_t graph_ws; /* ... with this many workspace bytes */
} plan_kind_rec;

typedef struct plan_rec {
    char key[PLAN_KEY_MAX];
    plan_kind_rec kind[3];
    int wgrad_gemm;
} plan_rec;

/* Every line of the file at `path` well-formed: 0 (also when there is no such file), or -1 with
 * "PATH:LINE: what was expected" (or why it cannot be read) in why. */
int plan_file_check(const char *path, char *why, size_t whylen);
/* The first record of `key` in the file into *r, its line number into *line: 1; 0 when there is none (or
 * no file); -1 with why as plan_file_check. */
int plan_file_find(const char *path, const char *key, plan_rec *r, int *line, char *why, size_t whylen);
/* r's line written into the file, in place of the first line of the same key or after the others; the
 * file made (with a header comment) when there is none. The whole file is written to PATH.tmp.PID and then
 * renamed over PATH, so a reader sees the old file or the new one, never a part. 0, or -1 with why. */
int plan_file_put(const char *path, const plan_rec *r, char *why, size_t whylen);
/* The name of kind k (0 forward, 1 backward data, 2 backward filter) in a line: "forward", "backward-data",
 * "backward-filter". */
const char *plan_kind_name(int k);
/* r as its line (no newline) into s[n]; its length, as snprintf. */
int plan_rec_format(const plan_rec *r, char *s, size_t n);

#ifdef __cplusplus
}
#endif
#endif
