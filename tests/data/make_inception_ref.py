#!/usr/bin/env python3
"""Writes tests/data/inception_ref.safetensors: Inception-v3 FID features computed by an independent
implementation, the pytorch-fid package's InceptionV3 (block 3, 2048-d pool features, with its resize to
299x299 and scaling to [-1, 1]), with *synthetic* weights: every tensor is a pure function of its name and
index (below), which tests/test_inception.c regenerates in C to write the same weights file, so the
95 MB network needs no file here. Also checks scripts/convert_fid_weights.py on a .pth of these weights.

Weights: h = FNV-1a-64(name); u_i = (splitmix64(h + i) >> 40) / 2^24 in [0, 1); then, in float64, cast to
float32: conv.weight (2u - 1) sqrt(6 / fan_in); bn.weight and bn.running_var 0.5 + u; bn.bias and
bn.running_mean 0.2 (2u - 1).
Images (values k/255): 3 RGB 32x32, 2 grey 28x28 (replicated to RGB, as edm2 does for grey data), 1 RGB 64x64.
Made with torch 2.15.0 (CPU), torchvision 0.29.2, pytorch-fid 0.3.0, numpy 2.4.6:
    python3 tests/data/make_inception_ref.py"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import pytorch_fid.inception as pfi
from safetensors.numpy import save_file, load_file

from synthetic import uniform


def synthetic(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if name.endswith("conv.weight"):
        v = (2 * u - 1) * np.sqrt(6.0 / (n // shape[0]))
    elif name.endswith("bn.weight") or name.endswith("bn.running_var"):
        v = 0.5 + u
    else:
        v = 0.2 * (2 * u - 1)
    return v.astype(np.float32).reshape(shape)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(0)
    skeleton = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    sd = {}
    for name, t in skeleton.state_dict().items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            sd[name] = torch.zeros_like(t)
        else:
            sd[name] = torch.from_numpy(synthetic(name, tuple(t.shape)))
    pfi.load_state_dict_from_url = lambda *a, **k: sd  # no download: our weights instead of FID's
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()

    rng = np.random.default_rng(2026)
    imgs = {
        "rgb32": rng.integers(0, 256, (3, 3, 32, 32)),
        "grey28": rng.integers(0, 256, (2, 1, 28, 28)),
        "rgb64": rng.integers(0, 256, (1, 3, 64, 64)),
    }
    out = {}
    for key, px in imgs.items():
        x = (px.astype(np.float64) / 255.0).astype(np.float32)
        out[f"{key}/images"] = x
        t = torch.from_numpy(x)
        if t.shape[1] == 1:
            t = t.repeat(1, 3, 1, 1)
        with torch.no_grad():
            f32 = model(t)[0].squeeze(3).squeeze(2).numpy()
            f64 = model.double()(t.double())[0].squeeze(3).squeeze(2).numpy()
            model.float()
        out[f"{key}/features"] = f32
        err = np.abs(f32 - f64).max() / np.abs(f64).max()
        print(f"{key}: features max {np.abs(f32).max():.4g}, mean {f32.mean():.4g}; float32 vs float64 "
              f"rel. max error {err:.2e}")
    save_file(out, os.path.join(here, "inception_ref.safetensors"),
              metadata={"made_by": "tests/data/make_inception_ref.py", "torch": torch.__version__,
                        "pytorch_fid": "0.3.0"})

    # The converter on a .pth of these weights gives back exactly the FID tensors.
    with tempfile.TemporaryDirectory() as d:
        torch.save(sd, os.path.join(d, "w.pth"))
        conv = os.path.join(here, "..", "..", "scripts", "convert_fid_weights.py")
        subprocess.run([sys.executable, conv, os.path.join(d, "w.pth"), os.path.join(d, "w.safetensors")], check=True)
        got = load_file(os.path.join(d, "w.safetensors"))
        want = {k: v.numpy() for k, v in sd.items() if not (k.startswith("fc.") or k.endswith("num_batches_tracked"))}
        assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in want), "converter mismatch"
        print(f"converter: {len(got)} tensors, identical")


if __name__ == "__main__":
    main()
