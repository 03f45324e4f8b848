#!/usr/bin/env python3
"""Writes tests/data/frechet_ref.safetensors: two Gaussians' statistics (mean [64], covariance [64, 64] of
random features, stored as float32; the distance is computed in float64 from those float32 values) and
their Frechet distance as scipy computes it for FID (the pytorch-fid
formula: |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 @ s2)), scipy.linalg.sqrtm, real part), plus a
nearly singular pair (rank-deficient covariances) as FID meets with few images.
Made with numpy 2.4.6 and scipy 1.17.1:  python3 tests/data/make_frechet_ref.py"""
import numpy as np, scipy.linalg
from safetensors.numpy import save_file

def fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    d = mu1 - mu2
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)

rng = np.random.default_rng(2026)
out = {}
for name, n, d in [("full", 500, 64), ("low_rank", 40, 64)]:
    a = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3
    b = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + 0.2
    for k, f in (("a", a), ("b", b)):
        out[f"{name}/mu_{k}"] = f.mean(0).astype(np.float32)
        out[f"{name}/sigma_{k}"] = np.cov(f, rowvar=False).astype(np.float32)
        out[f"{name}/features_{k}"] = f.astype(np.float32)
    st = [out[f"{name}/{k}"].astype(np.float64) for k in ("mu_a", "sigma_a", "mu_b", "sigma_b")]
    value = fid(*st)
    out[f"{name}/fid"] = np.array([value], dtype=np.float32)
    out[f"{name}/fid_hi"] = np.array([value - np.float32(value)], dtype=np.float32)  # value = fid + fid_hi
    print(name, out[f"{name}/fid"][0])
save_file(out, __file__.replace("make_frechet_ref.py", "frechet_ref.safetensors"),
          metadata={"provenance": "tests/data/make_frechet_ref.py, numpy 2.4.6, scipy 1.17.1"})
