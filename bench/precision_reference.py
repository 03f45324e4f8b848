#!/usr/bin/env python3
"""precision_reference.py: how far the PyTorch reference itself moves from float32 when its U-Net body runs in
bf16 or fp16, on the network of test_cuda_network (16x16x3, 5 classes, channels 16x[1,2,3], 2 blocks, attention
at 8x8, every gain 0.7); the bounds of test_precisions are about five times these (docs/cuda-network.md). Runs on
a CPU. The reference's source (NVlabs/edm2, e.g. ../shared/ref/torch) is imported for measurement only.

usage: python3 bench/precision_reference.py PATH/ref/torch
Prints, per precision, the relative L2 error of D, of the worst weight tensor's gradient, of the scalar gains'
gradients as one vector, and of all gradients together."""
import sys

import torch

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else "../shared/ref/torch")
import training.networks_edm2 as networks  # noqa: E402


def network():
    torch.manual_seed(0)
    net = networks.Precond(img_resolution=16, img_channels=3, label_dim=5, use_fp16=False, model_channels=16,
                           channel_mult=[1, 2, 3], num_blocks=2, attn_resolutions=[8], channels_per_head=16,
                           dropout=0.0, logvar_channels=8)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("gain"):
                p.fill_(0.7)
    return net.train()


def run(dtype):
    """D and the parameter gradients of sum(D dD) + sum(logvar dlv), the body in `dtype` as the reference's
    Precond.forward runs it on a GPU (use_fp16), float32 elsewhere."""
    net, B = network(), 5
    g = torch.Generator().manual_seed(1)
    x = 0.8 * torch.randn(B, 3, 16, 16, generator=g)
    sigma = torch.exp(-0.4 + 1.2 * torch.randn(B, generator=g)).reshape(-1, 1, 1, 1)
    labels = torch.zeros(B, 5)
    labels[torch.arange(B), (torch.arange(B) * 3) % 5] = 1
    dD, dlv = 1e-3 * torch.randn(B, 3, 16, 16, generator=g), 0.1 * torch.randn(B, 1, 1, 1, generator=g)
    sd = net.sigma_data
    c_skip, c_out = sd ** 2 / (sigma ** 2 + sd ** 2), sigma * sd / (sigma ** 2 + sd ** 2).sqrt()
    c_in, c_noise = 1 / (sd ** 2 + sigma ** 2).sqrt(), sigma.flatten().log() / 4
    D = c_skip * x + c_out * net.unet((c_in * x).to(dtype), c_noise, labels).to(torch.float32)
    logvar = net.logvar_linear(net.logvar_fourier(c_noise)).reshape(-1, 1, 1, 1)
    ((D * dD).sum() + (logvar * dlv).sum()).backward()
    return D.detach(), {n: p.grad.detach().clone() for n, p in net.named_parameters() if p.grad is not None}


def rel(a, b):
    return float((a - b).norm() / a.norm()) if a.norm() > 0 else 0.0


D32, g32 = run(torch.float32)
print(f"torch {torch.__version__}")
for dtype in (torch.bfloat16, torch.float16):
    D, g = run(dtype)
    worst = max((rel(g32[n], g[n]), n) for n in g32 if g32[n].numel() > 1)
    gains = [n for n in g32 if g32[n].numel() == 1]
    gain_err = rel(torch.stack([g32[n] for n in gains]), torch.stack([g[n] for n in gains]))
    all_err = rel(torch.cat([g32[n].flatten() for n in g32]), torch.cat([g[n].flatten() for n in g32]))
    print(f"{str(dtype)[6:]}: D {rel(D32, D):.2e}; gradients: worst tensor {worst[0]:.2e} ({worst[1]}), "
          f"gains {gain_err:.2e}, all {all_err:.2e}")
