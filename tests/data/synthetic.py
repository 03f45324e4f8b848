"""Synthetic weights shared by the reference scripts (make_inception_ref.py, make_vae_ref.py) and the C tests
(tests/synthetic_weights.h): element i of a tensor is a pure function of its name and i,
h = FNV-1a-64(name), u_i = (splitmix64(h + i) >> 40) / 2^24 in [0, 1); each script maps u to its tensors'
values."""
import numpy as np

M64 = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def uniform(name, n):
    """u_0 .. u_{n-1} of the tensor `name`, float64."""
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a64(name)) + np.arange(n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / 16777216.0
