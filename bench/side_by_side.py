#!/usr/bin/env python3
"""side_by_side.py: ours and the PyTorch reference timed in one command on the same machine, with the ratios
(issue: speed against the reference on the same GPU). Runs build/edm2-bench on configs/edm2-img512-PRESET.ini
(training, evaluation, sampling at 63 evaluations per image, peak memory) and the reference's timing script
(torch_gpu_bench.py, e.g. ../shared/bench or .devref/bench: the public NVlabs/edm2 code, measured only) for each
preset at the same batch, then prints one table.

usage: python3 bench/side_by_side.py --torch-bench PATH/torch_gpu_bench.py [--presets xs,s] [--batch 256]
           [--backend cuda] [--compile] [--steps 10] [--build build]
On a CPU-only machine: --backend cpu, and BENCH_DEVICE=cpu for the reference (small batches)."""
import argparse
import os
import re
import subprocess
import sys


def ours(build, preset, batch, backend, steps):
    cmd = [os.path.join(build, "edm2-bench"), f"configs/edm2-img512-{preset}.ini", "--set", f"backend.plugin={backend}",
           "--set", f"training.batch={batch}", "--steps", str(steps), "--warmup", "2", "--no-sgemm", "--sample"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    t = out.stdout
    num = lambda pat: float(re.search(pat, t).group(1))
    return {"train": num(r"training:\s+([\d.]+) images/s"), "eval": batch / num(r"eval:\s+([\d.]+) s per forward"),
            "sample": num(r"sampling:\s+([\d.]+) images/s"), "mem_gib": num(r"memory:\s+([\d.]+) MiB peak") / 1024}


def reference(script, presets, batch, compile_, steps):
    cmd = [sys.executable, script, "--presets", presets, "--batch", str(batch), "--gemm", "--steps", str(steps)]
    cmd += ["--compile"] if compile_ else []
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    rows, gemm = {}, None
    for line in out.stdout.splitlines():
        m = re.search(r"gemm bf16 8192\^3: ([\d.]+) TFLOP/s", line)
        if m:
            gemm = float(m.group(1))
        if line.startswith("preset="):
            kv = dict(x.split("=", 1) for x in line.split())
            rows[(kv["preset"], kv["mode"])] = {"train": float(kv["train_img_per_s"]), "eval": float(kv["eval_img_per_s"]),
                                                "sample": float(kv["sample_img_per_s_63nfe"]),
                                                "mem_gib": float(kv["peak_mem_gib"])}
    return rows, gemm, out.stdout.splitlines()[0] if out.stdout else ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torch-bench", required=True)
    ap.add_argument("--presets", default="xs,s")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--backend", default="cuda")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--build", default="build")
    a = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ref, gemm, device = reference(a.torch_bench, a.presets, a.batch, a.compile, a.steps)
    print(f"{device}; batch {a.batch}; ours on backend {a.backend}"
          + (f"; bf16 8192^3 GEMM {gemm:.0f} TFLOP/s" if gemm else ""))
    print("| preset | reference mode | train img/s ours / ref (ratio) | eval img/s ours / ref (ratio) | "
          "sampling img/s, 63 evals, ours / ref (ratio) | peak GiB ours / ref |")
    print("|---|---|---|---|---|---|")
    for p in a.presets.split(","):
        o = ours(a.build, p, a.batch, a.backend, a.steps)
        for (rp, mode), r in sorted(ref.items()):
            if rp != p:
                continue
            cell = lambda k: f"{o[k]:.3g} / {r[k]:.3g} ({o[k] / r[k]:.2f}x)" if r[k] > 0 else f"{o[k]:.3g} / -"
            print(f"| {p} | {mode} | {cell('train')} | {cell('eval')} | {cell('sample')} | "
                  f"{o['mem_gib']:.1f} / {r['mem_gib']:.1f} |")


if __name__ == "__main__":
    main()
