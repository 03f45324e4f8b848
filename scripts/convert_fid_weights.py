#!/usr/bin/env python3
"""convert_fid_weights.py: the FID Inception-v3 weights for edm2's `inception_v3` features plugin.

Converts the PyTorch FID weights that the pytorch-fid package uses, pt_inception-2015-12-05-6726825d.pth
(TensorFlow's 2015-12-05 Inception graph ported to PyTorch; download it yourself from the pytorch-fid
releases on GitHub, nothing here downloads), into a .safetensors file with the same tensor names
(Conv2d_1a_3x3.conv.weight, Mixed_5b.branch1x1.bn.running_var, ...), float32. The classifier (fc.*) and
batch-norm counters (num_batches_tracked) are left out: FID uses the 2048 pool features.

    python3 scripts/convert_fid_weights.py pt_inception-2015-12-05-6726825d.pth fid-inception.safetensors

Needs torch (to read the .pth pickle) and numpy. Then in a config:
    [features]
    plugin = inception_v3
    weights = fid-inception.safetensors
"""
import json
import os
import struct
import sys

import numpy as np


def write_safetensors(path, tensors, metadata):
    """Writes {name: float32 array} as safetensors (8-byte header length, JSON header, raw data), atomically."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def convert(state_dict):
    """The tensors edm2 reads, as float32 numpy arrays; raises ValueError when the file is not the FID network."""
    out = {}
    for name, t in state_dict.items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue
        if not (name.endswith(".conv.weight") or ".bn." in name):
            raise ValueError(f"unexpected tensor '{name}': not an Inception-v3 BasicConv2d weight")
        out[name] = t.detach().cpu().float().numpy()
    convs = sum(1 for n in out if n.endswith(".conv.weight"))
    if convs != 94 or len(out) != 94 * 5:
        raise ValueError(f"{convs} convolutions and {len(out)} tensors; FID's Inception-v3 has 94 and 470")
    if "Mixed_7c.branch_pool.conv.weight" not in out or tuple(out["Conv2d_1a_3x3.conv.weight"].shape) != (32, 3, 3, 3):
        raise ValueError("not the FID Inception-v3 layout (Conv2d_1a_3x3 ... Mixed_7c)")
    return out


def load_state_dict(path, wrapper):
    """The state dict in a .pth file (inside its `wrapper` entry when it has one); exits with one line if unreadable."""
    import torch
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same one-line message
        sys.exit(f"{path}: cannot read as a PyTorch state dict ({e})")
    if isinstance(sd, dict) and isinstance(sd.get(wrapper), dict):
        sd = sd[wrapper]
    return sd


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    sd = load_state_dict(argv[1], "state_dict")
    try:
        tensors = convert(sd)
    except ValueError as e:
        sys.exit(f"{argv[1]}: {e}")
    write_safetensors(argv[2], tensors, {"edm2.features": "inception_v3", "edm2.source": os.path.basename(argv[1])})
    print(f"wrote {argv[2]}: {len(tensors)} tensors from {argv[1]}")


if __name__ == "__main__":
    main(sys.argv)
