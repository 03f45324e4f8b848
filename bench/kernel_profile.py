#!/usr/bin/env python3
"""kernel_profile.py: where a training step's GPU time goes, kernel by kernel (issue: measure before fusing).
Runs build/edm2-bench under Nsight Compute collecting only each kernel's duration (gpu__time_duration.sum,
clocks and caches left alone, as in a real run) of one training step (--pass train) or one evaluation
forward, a sampler's step (--pass eval), after 4 warm-up passes: edm2-bench --profile switches the CUDA
profiler on for the timed pass only (ncu --profile-from-start off), so the warm-up's cuDNN algorithm
trials and graph captures are not counted. Where EDM2_CUDNN_PLANS names a file of plans timed by a run
outside ncu (scripts/gpu-check.sh's algos-timed step), the profiled run takes its plans from it instead of
timing them under ncu, so it profiles the algorithms a plain run runs. It sums the durations by kernel name
and prints the largest as a table: calls, total ms, share of the step's kernel time, after one line that
splits the time between the products (cuBLAS and cuDNN kernels) and ours (k_*). A CSV that ncu wrote
earlier can be summarised instead (--csv FILE).

usage: python3 bench/kernel_profile.py [--config configs/edm2-img512-xs.ini] [--batch 64] [--precision bf16]
           [--pass train|eval] [--build build] [--top 30] [--ncu ncu] [--csv FILE] [--save-csv FILE]"""
import argparse
import collections
import csv
import io
import os
import re
import subprocess
import sys

UNITS = {"nsecond": 1e-6, "ns": 1e-6, "usecond": 1e-3, "us": 1e-3, "msecond": 1.0, "ms": 1.0, "second": 1e3, "s": 1e3}


def short_name(name):
    """A kernel's name without its argument list and template noise: 'void k_silu<bf16>(...)' -> 'k_silu<bf16>'."""
    name = re.sub(r"^void\s+", "", name.strip())
    depth, out = 0, []
    for ch in name:  # drop the outermost (...) argument list
        if ch == "(" and depth == 0 and out:
            break
        out.append(ch)
    return "".join(out).replace("__nv_bfloat16", "bf16")[:90]


def summarise(text):
    """(name -> [calls, ms]) from ncu's --csv output; lines before the CSV header (==PROF== ...) are skipped."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        sys.exit("no ncu CSV header (\"ID\",...) in the output")
    rows = collections.defaultdict(lambda: [0, 0.0])
    for r in csv.DictReader(io.StringIO("\n".join(lines[start:]))):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        scale = UNITS.get(r.get("Metric Unit", "nsecond").strip(), None)
        if scale is None:
            sys.exit(f"unknown time unit {r.get('Metric Unit')!r}")
        v = float(r["Metric Value"].replace(",", ""))
        e = rows[short_name(r["Kernel Name"])]
        e[0] += 1
        e[1] += v * scale
    return rows


def category(name):
    """'ours' for this project's kernels (k_*), 'products' for the libraries' (cuBLAS, cuDNN), else 'other'."""
    if re.match(r"k_\w", name):
        return "ours"
    if re.search(r"gemm|xmma|cutlass|conv|grad|engine|cudnn|cublas|sm\d\d_", name, re.I):
        return "products"
    return "other"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/edm2-img512-xs.ini")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--pass", dest="kind", choices=["train", "eval"], default="train")
    ap.add_argument("--build", default="build")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--ncu", default="ncu")
    ap.add_argument("--csv", help="summarise this ncu CSV instead of running")
    ap.add_argument("--save-csv", help="also keep ncu's CSV here")
    a = ap.parse_args()
    if a.csv:
        text = open(a.csv).read()
    else:
        os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        cmd = [a.ncu, "--profile-from-start", "off", "--clock-control", "none", "--cache-control", "none", "--metrics",
               "gpu__time_duration.sum", "--csv", "--print-units", "base", os.path.join(a.build, "edm2-bench"), a.config,
               "--set", "backend.plugin=cuda", "--set", f"training.batch={a.batch}", "--set",
               f"network.precision={a.precision}", "--steps", "1", "--warmup", "4", "--only", a.kind, "--no-sgemm",
               "--profile"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        text = out.stdout
        if out.returncode:
            sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
        if a.save_csv:
            open(a.save_csv, "w").write(text)
    rows = summarise(text)
    total = sum(ms for _, ms in rows.values())
    print(f"{sum(c for c, _ in rows.values())} kernels, {total:.1f} ms of kernel time "
          f"({a.config if not a.csv else a.csv}, batch {a.batch}, {a.precision}; "
          f"{'one training step' if a.kind == 'train' else 'one evaluation forward'})")
    by = collections.defaultdict(float)
    for name, (_, ms) in rows.items():
        by[category(name)] += ms
    print("; ".join(f"{k} {by[k]:.1f} ms ({100 * by[k] / total:.0f}%)" for k in ("products", "ours", "other") if k in by))
    print("| kernel | calls | total ms | share |")
    print("|---|---|---|---|")
    for name, (calls, ms) in sorted(rows.items(), key=lambda kv: -kv[1][1])[:a.top]:
        print(f"| `{name}` | {calls} | {ms:.2f} | {100 * ms / total:.1f}% |")


if __name__ == "__main__":
    main()
