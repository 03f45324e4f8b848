#!/usr/bin/env python3
"""Writes tests/data/pkl/: network pickles as the EDM2 reference writes them, for tests/test_convert_pkl.sh
(scripts/convert_edm2_pkl.py). The network is the reference's Precond with the hyperparameters and initial
weights of edm2_small.safetensors (its metadata and init/ tensors, which check-ref compares with this
project's network), pickled with the reference's torch_utils.persistence (its source embedded in the pickle)
in the reference's snapshot dict (dnnlib.util.EasyDict of encoder, dataset_kwargs, loss_fn and ema):
- edm2-small-0000016-0.100.pkl: float32, with a StabilityVAEEncoder of non-default scaling (raw_mean,
  raw_std, final_std), like a post-hoc reconstruction;
- network-snapshot-0000016-0.050.pkl: float16 (as the reference's training loop saves its snapshots), with a
  StandardRGBEncoder.
Each persistent class's embedded module source is replaced by one comment line (the converter never reads it).
Made with torch 2.15.0 (CPU) and the reference's source (NVlabs/edm2, commit 4bf8162):
    python3 tests/data/make_edm2_pkl.py EDM2_CHECKOUT"""
import copy
import json
import os
import pickle
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        assert h["dtype"] == "F32"
        a, z = h["data_offsets"]
        out[name] = torch.frombuffer(bytearray(b[8 + n + a:8 + n + z]), dtype=torch.float32).reshape(h["shape"])
    return out, meta


def ints(s):
    return [int(x) for x in s.split(",")]


def main():
    sys.path.insert(0, sys.argv[1])
    import dnnlib
    from training.encoders import StabilityVAEEncoder, StandardRGBEncoder
    from training.networks_edm2 import Precond
    from training.training_loop import EDM2Loss

    t, m = read_safetensors(os.path.join(HERE, "edm2_small.safetensors"))
    network_kwargs = dict(class_name="training.networks_edm2.Precond", model_channels=int(m["model_channels"]),
                          channel_mult=ints(m["channel_mult"]), num_blocks=int(m["num_blocks"]),
                          attn_resolutions=ints(m["attn_resolutions"]), channels_per_head=int(m["channels_per_head"]),
                          logvar_channels=int(m["logvar_channels"]), label_balance=float(m["label_balance"]),
                          concat_balance=float(m["concat_balance"]), res_balance=float(m["res_balance"]),
                          attn_balance=float(m["attn_balance"]), clip_act=float(m["clip_act"]),
                          dropout=float(m["dropout"]), sigma_data=float(m["sigma_data"]), use_fp16=True)
    interface_kwargs = dict(img_resolution=int(m["img_resolution"]), img_channels=int(m["img_channels"]),
                            label_dim=int(m["label_dim"]))
    net = dnnlib.util.construct_class_by_name(**network_kwargs, **interface_kwargs)  # as the training loop builds it
    assert isinstance(net, Precond)
    net.load_state_dict({k[len("init/"):]: v for k, v in t.items() if k.startswith("init/")}, strict=True)
    loss_fn = EDM2Loss(P_mean=float(m["P_mean"]), P_std=float(m["P_std"]), sigma_data=float(m["sigma_data"]))
    dataset_kwargs = dict(class_name="training.dataset.ImageFolderDataset", path="datasets/small.zip")
    out = os.path.join(HERE, "pkl")
    os.makedirs(out, exist_ok=True)
    pickles = []
    for name, encoder, dtype in [
        ("edm2-small-0000016-0.100.pkl",
         StabilityVAEEncoder(raw_mean=[5.5, 3.0, 0.25, -2.0], raw_std=[4.0, 4.5, 3.75, 3.25], final_std=0.6),
         torch.float32),
        ("network-snapshot-0000016-0.050.pkl", StandardRGBEncoder(), torch.float16),
    ]:
        data = dnnlib.EasyDict(encoder=encoder, dataset_kwargs=dataset_kwargs, loss_fn=loss_fn)
        data.ema = copy.deepcopy(net).cpu().eval().requires_grad_(False).to(dtype)
        pickles.append((name, encoder, data))
    # The pickles carry each persistent class's module source (the reference's code, run when the reference
    # loads them; never by the converter). It is left out of these fixtures, a line in its place (after the
    # copies above, which go through the pickled form).
    import training.encoders
    import training.networks_edm2
    import training.training_loop
    for module in (training.networks_edm2, training.encoders, training.training_loop):
        for obj in vars(module).values():
            if isinstance(obj, type) and hasattr(obj, "_orig_module_src"):
                obj._orig_module_src = f"# the source of {module.__name__}, left out of this test fixture\n"
    for name, encoder, data in pickles:
        with open(os.path.join(out, name), "wb") as f:
            pickle.dump(data, f)
        print(name, os.path.getsize(os.path.join(out, name)), "bytes; scale", getattr(encoder, "scale", None),
              "bias", getattr(encoder, "bias", None))


if __name__ == "__main__":
    main()
