#!/usr/bin/env python3
"""Writes tests/data/vae_ref.safetensors: the Stable Diffusion VAE (diffusers' AutoencoderKL, an implementation
independent of ours) on two configurations, for tests/test_vae.c:

- "small/": block_out_channels (16, 32), layers_per_block 1, norm_num_groups 8, latent_channels 4, random
  weights (torch's default init, group norms perturbed), stored here under diffusers' names
  ("small/w/<name>") and under the single-file (LDM) names ("small/ldm/<name>", checked by converting them
  back with diffusers' own convert_ldm_vae_checkpoint); images [2, 3, 16, 16] in [0, 1] with their posterior
  mean and std [2, 8, 4, 4], and latents [2, 4, 4, 4] with their decoding [2, 3, 16, 16].
- "sd/": the real SD VAE configuration (block_out_channels 128, 256, 512, 512; 2 layers per block; 32 groups)
  with synthetic weights, a pure function of each tensor's name and index that tests/vae_weights.h
  regenerates in C (h = FNV-1a-64(name), u = (splitmix64(h + i) >> 40) / 2^24; in float64 cast to float32:
  tensors of 2+ dimensions (2u - 1) sqrt(3 / fan_in); 1-d tensors of norms 0.5 + u, other 1-d 0.1 (2u - 1)),
  so 84M parameters need no file here; an image [1, 3, 16, 16] with its mean and std [1, 8, 2, 2], latents
  [1, 4, 2, 2] with their decoding.
Made with torch 2.15.0 (CPU), diffusers 0.42.1, numpy 2.4.6:  python3 tests/data/make_vae_ref.py"""
import os

import numpy as np
import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
from safetensors.numpy import save_file

from synthetic import uniform


def synthetic(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if len(shape) >= 2:
        v = (2 * u - 1) * np.sqrt(3.0 / (n // shape[0]))
    elif "norm" in name:
        v = 0.5 + u
    else:
        v = 0.1 * (2 * u - 1)
    return v.astype(np.float32).reshape(shape)


def ldm_name(name, n_blocks):
    """diffusers' name of an AutoencoderKL tensor -> the single-file (LDM) checkpoint's name."""
    p = name.split(".")
    rep = {"conv_norm_out": "norm_out", "conv_shortcut": "nin_shortcut"}
    p = [rep.get(x, x) for x in p]
    if p[1] == "down_blocks":  # encoder.down_blocks.i.resnets.j / downsamplers.0
        tail = ["block", p[4]] + p[5:] if p[3] == "resnets" else ["downsample"] + p[5:]
        return ".".join([p[0], "down", p[2]] + tail)
    if p[1] == "up_blocks":  # decoder.up_blocks.i -> decoder.up.(n-1-i)
        i = str(n_blocks - 1 - int(p[2]))
        tail = ["block", p[4]] + p[5:] if p[3] == "resnets" else ["upsample"] + p[5:]
        return ".".join([p[0], "up", i] + tail)
    if p[1] == "mid_block":
        if p[2] == "resnets":
            return ".".join([p[0], "mid", f"block_{int(p[3]) + 1}"] + p[4:])
        attn = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}
        rest = p[5:] if p[4] != "to_out" else p[6:]
        return ".".join([p[0], "mid", "attn_1", attn[p[4]]] + rest)
    return ".".join(p)


def run(vae, images, latents):
    with torch.no_grad():
        d = vae.encode(torch.from_numpy(images)).latent_dist
        dec = vae.decode(torch.from_numpy(latents)).sample
    # contiguous copies: the posterior's mean and std are views into one tensor, which save_file would
    # otherwise write in the wrong order
    return (np.ascontiguousarray(d.mean.numpy()), np.ascontiguousarray(d.std.numpy()),
            np.ascontiguousarray(dec.numpy()))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(2026)
    out = {}

    torch.manual_seed(0)
    cfg = dict(block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
               up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4, norm_num_groups=8)
    small = AutoencoderKL(**cfg).eval()
    with torch.no_grad():
        for name, t in small.named_parameters():
            if "norm" in name:
                t.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn_like(t))
    sd = {k: v.numpy().copy() for k, v in small.state_dict().items()}
    ldm = {}
    for k, v in sd.items():
        lk = ldm_name(k, 2)
        ldm[lk] = v.reshape(v.shape + (1, 1)) if (".attn_1." in lk and v.ndim == 2) else v
    back = convert_ldm_vae_checkpoint({k: torch.from_numpy(v) for k, v in ldm.items()}, dict(small.config))
    assert back.keys() == sd.keys(), sorted(set(back) ^ set(sd))
    assert all(np.array_equal(back[k].numpy().reshape(sd[k].shape), sd[k]) for k in sd), "LDM names disagree"
    images = (rng.integers(0, 256, (2, 3, 16, 16)) / 255.0).astype(np.float32)
    latents = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    mean, std, dec = run(small, images, latents)
    out.update({f"small/w/{k}": v for k, v in sd.items()})
    out.update({f"small/ldm/{k}": v for k, v in ldm.items()})
    out.update({"small/images": images, "small/mean": mean, "small/std": std, "small/latents": latents,
                "small/decoded": dec})
    print(f"small: {sum(v.size for v in sd.values())} parameters, mean max {np.abs(mean).max():.3g}, "
          f"std range {std.min():.3g}..{std.max():.3g}, decoded max {np.abs(dec).max():.3g}")

    real = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                         norm_num_groups=32).eval()
    real.load_state_dict({k: torch.from_numpy(synthetic(k, tuple(v.shape))) for k, v in real.state_dict().items()})
    images = (rng.integers(0, 256, (1, 3, 16, 16)) / 255.0).astype(np.float32)
    latents = rng.standard_normal((1, 4, 2, 2)).astype(np.float32)
    mean, std, dec = run(real, images, latents)
    real64 = real.double()
    with torch.no_grad():
        d64 = real64.encode(torch.from_numpy(images).double()).latent_dist
        dec64 = real64.decode(torch.from_numpy(latents).double()).sample
    print(f"sd: {sum(p.numel() for p in real.parameters())} parameters; float32 vs float64: mean "
          f"{np.abs(mean - d64.mean.numpy()).max() / np.abs(d64.mean.numpy()).max():.2e}, decoded "
          f"{np.abs(dec - dec64.numpy()).max() / np.abs(dec64.numpy()).max():.2e} of the largest value")
    out.update({"sd/images": images, "sd/mean": mean, "sd/std": std, "sd/latents": latents, "sd/decoded": dec})
    save_file(out, os.path.join(here, "vae_ref.safetensors"),
              metadata={"made_by": "tests/data/make_vae_ref.py", "torch": torch.__version__, "diffusers": "0.42.1"})


if __name__ == "__main__":
    main()
