/* inspect.h: what a safetensors file of the project, a run's folder or a dataset archive is and holds, in words
 * (`edm2host inspect`). */
#ifndef EDM2_HOST_DESCRIBE_FILES_H
#define EDM2_HOST_DESCRIBE_FILES_H

#include <stdio.h>

#include "safetensors.h"

/* Writes to `out` what f is (from its metadata) and its tensors in sum; with `tensors` each tensor, with
 * `meta` every metadata entry. The file's strings are printed with control characters as '?' (changed in f). */
void inspect_print(st_file *f, int tensors, int meta, FILE *out);
/* Writes to `out` where the training run in `dir` stands (kimg of its duration, loss, time, checkpoints,
 * snapshots, reconstructions, evaluations), or what a folder of generated images or snapshots holds. 0, or -1
 * when it is none of these. */
int inspect_folder(const char *dir, FILE *out, edm2_err *err);
/* Writes to `out` what a ZIP archive holds as a dataset of the EDM dataset tool (its PNG or .npy images, their
 * size, its classes) or the dtype and shape of a .npy array. 0; -1 with a one-line error; 1 when the file is
 * neither (by its first bytes). */
int inspect_archive(const char *path, FILE *out, edm2_err *err);

#endif
