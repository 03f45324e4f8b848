#!/usr/bin/env python3
"""Writes tests/data/dinov2_ref.safetensors: FD_DINOv2 features computed by the original DINOv2 code
(facebookresearch/dinov2, commit b8931f7, its DinoVisionTransformer with the blocks and attention of
dinov2_vitl14's hub model, block_chunks 0) on a small random network (dim 64, depth 2, 4 heads, patch 14, trained size 518 like the
released models: a 37x37 grid of position embeddings), each image prepared as the EDM2 reference's DINOv2
detector prepares it (calculate_metrics.py, resize_mode 'torch': 0..255 values, bicubic with antialiasing
to 224x224, / 255, ImageNet mean and std). The network's weights, converted by
scripts/convert_dinov2_weights.py (pos_embed interpolated to 16x16 once), are stored under their names
beside the images (values k/255) and the expected features, for tests/test_dinov2.c.
Images: 2 RGB 32x32 and 1 grey 28x28 (replicated to RGB, as edm2 does for grey data): enlarged; 1 RGB
300x300: shrunk.
Made with torch 2.15.0 (CPU), numpy 2.4.6:
    python3 tests/data/make_dinov2_ref.py DINOV2_CHECKOUT   (a checkout of facebookresearch/dinov2)"""
import os
import sys
from functools import partial

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
from convert_dinov2_weights import convert  # noqa: E402

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def detector_input(px):
    """The EDM2 detector's input: uint8 NCHW (3 channels) -> resized, normalised float32."""
    x = torch.nn.functional.interpolate(torch.from_numpy(px).to(torch.float32), size=(224, 224), mode="bicubic",
                                        antialias=True)
    x = x.to(torch.float32) / 255
    x = x - torch.tensor(MEAN, dtype=torch.float32).reshape(1, -1, 1, 1)
    return x / torch.tensor(STD, dtype=torch.float32).reshape(1, -1, 1, 1)


def main():
    sys.path.insert(0, sys.argv[1])
    from dinov2.layers import MemEffAttention, NestedTensorBlock as Block
    from dinov2.models.vision_transformer import DinoVisionTransformer

    torch.manual_seed(2026)
    model = DinoVisionTransformer(img_size=518, patch_size=14, embed_dim=64, depth=2, num_heads=4, mlp_ratio=4,
                                  init_values=1.0, block_fn=partial(Block, attn_class=MemEffAttention), block_chunks=0,
                                  num_register_tokens=0, interpolate_antialias=False, interpolate_offset=0.1).eval()
    with torch.no_grad():  # every weight random and of some size, so that each one matters
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith(".gamma"):
                p.copy_(0.5 + torch.rand_like(p))
            elif name.endswith(".weight") and p.ndim >= 2:
                p.copy_(torch.randn_like(p) * (p[0].numel() ** -0.5))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    rng = np.random.default_rng(2026)
    imgs = {
        "rgb32": rng.integers(0, 256, (2, 3, 32, 32)),
        "grey28": rng.integers(0, 256, (1, 1, 28, 28)),
        "rgb300": rng.integers(0, 256, (1, 3, 300, 300)),
    }
    out = {name: t for name, t in convert(model.state_dict()).items()}
    for key, px in imgs.items():
        rgb = np.repeat(px, 3, axis=1) if px.shape[1] == 1 else px
        with torch.no_grad():
            feats = model(detector_input(rgb.astype(np.uint8)))
        out[f"ref.{key}.images"] = (px.astype(np.float64) / 255.0).astype(np.float32)
        out[f"ref.{key}.features"] = feats.numpy().astype(np.float32)
    save_file(out, os.path.join(HERE, "dinov2_ref.safetensors"),
              metadata={"dim": "64", "depth": "2", "heads": "4", "patch": "14", "resolution": "224"})
    print("wrote", os.path.join(HERE, "dinov2_ref.safetensors"), {k: v.shape for k, v in out.items() if k.startswith("ref.")})


if __name__ == "__main__":
    main()
