#!/usr/bin/env python3
"""zero_latents.py OUT N: a `[data] source = tensors` file of N zero latents [N, 4, 64, 64] (the img512 presets'
shape) with labels 0..999 in turn, for timing or memory runs of the presets where no encoded dataset is at hand
(scripts/gpu-check.sh: batch_gpu = auto at the paper's batch). Written with the standard library only."""
import json
import struct
import sys

out, n = sys.argv[1], int(sys.argv[2])
per = 4 * 64 * 64
images = 4 * n * per
head = json.dumps({"images": {"dtype": "F32", "shape": [n, 4, 64, 64], "data_offsets": [0, images]},
                   "labels": {"dtype": "F32", "shape": [n], "data_offsets": [images, images + 4 * n]}}).encode()
head += b" " * (-len(head) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(head)) + head)
    for _ in range(n):
        f.write(bytes(4 * per))
    f.write(struct.pack("<%df" % n, *[float(i % 1000) for i in range(n)]))
