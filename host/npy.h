/* npy.h: NumPy's .npy array format (versions 1.0, 2.0 and 3.0): the magic "\x93NUMPY", the version, the
 * header's length, then a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (8, 64, 64), }
 * padded with spaces and a newline, then the data in C order. Read here: little-endian floats ('<f2', '<f4',
 * '<f8') in C order, the arrays the EDM2 dataset tool's encode step writes (the VAE's posterior mean and std). */
#ifndef EDM2_HOST_NPY_H
#define EDM2_HOST_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"
#include "safetensors.h"

#define NPY_MAX_DIMS 8

typedef struct npy_array {
    st_dtype dtype; /* the element type, as safetensors names it (st_to_f32 converts) */
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    size_t numel;
    const unsigned char *data; /* numel elements, in the caller's buffer (any alignment) */
} npy_array;

/* Parses the .npy file held in buf[size]; `name` is used in messages. Returns 0, or -1 with a one-line error. */
int npy_parse(const unsigned char *buf, size_t size, const char *name, npy_array *a, edm2_err *err);

#endif
