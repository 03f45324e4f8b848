#!/usr/bin/env python3
"""convert_dinov2_weights.py: the DINOv2 weights for edm2's `dinov2` features plugin (the FD_DINOv2 metric).

Converts the released DINOv2 ViT-L/14 state dict, dinov2_vitl14_pretrain.pth (what
torch.hub.load('facebookresearch/dinov2', 'dinov2_vitl14') downloads from
https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth; download it yourself,
nothing here downloads), into a .safetensors file with the same tensor names (cls_token, pos_embed,
patch_embed.proj.weight, blocks.0.norm1.weight, ..., norm.bias), float32, for 224x224 inputs: pos_embed's
grid (37 x 37 patches for the 518x518 images DINOv2 was trained on) is interpolated to the 16 x 16 patches
of a 224x224 image the way DINOv2 itself does it for such an input (bicubic, without antialiasing, at the
scale (16 + 0.1) / 37), once, here. mask_token (unused for features) is left out.

    python3 scripts/convert_dinov2_weights.py dinov2_vitl14_pretrain.pth dinov2-vitl14.safetensors

Needs torch (to read the .pth pickle and for the interpolation) and numpy. Then in a config:
    [features]
    plugin = dinov2
    weights = dinov2-vitl14.safetensors
"""
import math
import os
import sys

import numpy as np

from convert_fid_weights import load_state_dict, write_safetensors

PATCH, RES = 14, 224


def convert(state_dict, patch=PATCH, res=RES):
    """The tensors edm2 reads, as float32 numpy arrays; raises ValueError when it is not a DINOv2 ViT."""
    import torch

    need = ("cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight")
    if not all(n in state_dict for n in need):
        raise ValueError("not a DINOv2 vision transformer (cls_token, pos_embed, patch_embed.proj.weight, norm.weight)")
    if any(n.startswith("register_tokens") for n in state_dict):
        raise ValueError("a DINOv2 model with register tokens; FD_DINOv2 uses dinov2_vitl14 without")
    w = state_dict["patch_embed.proj.weight"]
    if tuple(w.shape[1:]) != (3, patch, patch):
        raise ValueError(f"patch_embed.proj.weight has shape {tuple(w.shape)}: expected [dim, 3, {patch}, {patch}]")
    pos = state_dict["pos_embed"].detach().float()
    dim, n = pos.shape[-1], pos.shape[1] - 1
    m = int(math.isqrt(n))
    if m * m != n:
        raise ValueError(f"pos_embed has {n} patch positions, not a square grid")
    g = res // patch
    if g != m:  # DinoVisionTransformer.interpolate_pos_encoding for a res x res input (interpolate_offset 0.1)
        grid = pos[:, 1:].reshape(1, m, m, dim).permute(0, 3, 1, 2)
        s = (g + 0.1) / m
        grid = torch.nn.functional.interpolate(grid, scale_factor=(s, s), mode="bicubic", antialias=False)
        if tuple(grid.shape[-2:]) != (g, g):
            raise ValueError(f"interpolating pos_embed from {m}x{m} gave {tuple(grid.shape[-2:])}, not {g}x{g}")
        pos = torch.cat((pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, g * g, dim)), dim=1)
    out = {"pos_embed": pos.numpy()}
    for name, t in state_dict.items():
        if name in ("pos_embed", "mask_token"):
            continue
        out[name] = t.detach().cpu().float().numpy()
    return out


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    sd = load_state_dict(argv[1], "model")
    try:
        tensors = convert(sd)
    except ValueError as e:
        sys.exit(f"{argv[1]}: {e}")
    blocks = len({n.split(".")[1] for n in tensors if n.startswith("blocks.")})
    dim = tensors["norm.weight"].shape[0]
    write_safetensors(argv[2], tensors, {"edm2.features": "dinov2", "edm2.source": os.path.basename(argv[1])})
    print(f"wrote {argv[2]}: {len(tensors)} tensors from {argv[1]} (dim {dim}, depth {blocks}, for {RES}x{RES} inputs)")
    if (dim, blocks) != (1024, 24):
        print(f"note: not ViT-L (dim 1024, depth 24): set [features] dim = {dim}, depth = {blocks} and heads = "
              f"{max(dim // 64, 1)} (DINOv2's heads are 64 wide)")


if __name__ == "__main__":
    main(sys.argv)
