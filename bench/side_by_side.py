#!/usr/bin/env python3
"""side_by_side.py: ours and the PyTorch reference timed in one command on the same machine, with the ratios
(issue: speed against the reference on the same GPU). Runs build/edm2-bench on configs/edm2-img512-PRESET.ini
(training, evaluation, sampling at 63 evaluations per image, peak memory) and the reference's timing script
(torch_gpu_bench.py, e.g. ../shared/bench or .devref/bench: the public NVlabs/edm2 code, measured only) for each
preset at the same batch, then prints one table. A preset that does not fit at --batch (ours or the reference
out of memory) is run at the largest halving of it that fits, both sides at that batch (the table says which).

usage: python3 bench/side_by_side.py --torch-bench PATH/torch_gpu_bench.py [--presets xs,s] [--batch 256]
           [--precision fp32,bf16,fp16] [--backend cuda] [--compile] [--steps 10] [--build build]
Ours runs once per precision (the network's `precision` key); the reference trains in fp16 as published.
Our training TFLOP/s (3x our count of the forward, 2 FLOPs per multiply-add as in a GEMM rate) is also
given as a fraction of the bf16 8192^3 product that the reference's script times in the same command.
On a CPU-only machine: --backend cpu, and BENCH_DEVICE=cpu for the reference (small batches)."""
import argparse
import os
import re
import subprocess
import sys


def ours(build, preset, batch, backend, steps, precision):
    cmd = [os.path.join(build, "edm2-bench"), f"configs/edm2-img512-{preset}.ini", "--set", f"backend.plugin={backend}",
           "--set", f"training.batch={batch}", "--set", f"network.precision={precision}", "--steps", str(steps),
           "--no-sgemm", "--sample"]  # edm2-bench's default warm-up (6 on CUDA: the graphs are captured then)
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        if out_of_memory(out.stderr):
            return None
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    t = out.stdout
    num = lambda pat: float(re.search(pat, t).group(1))
    return {"train": num(r"training:\s+([\d.]+) images/s"), "eval": batch / num(r"eval:\s+([\d.]+) s per forward"),
            "sample": num(r"sampling:\s+([\d.]+) images/s"), "mem_gib": num(r"memory:\s+([\d.]+) MiB peak") / 1024,
            "train_tflops": num(r"training:.*?([\d.]+) GFLOP/s") / 1e3}


def out_of_memory(stderr):
    return re.search(r"out of (device )?memory|OutOfMemoryError", stderr, re.I) is not None


def reference(script, presets, batch, compile_, steps):
    cmd = [sys.executable, script, "--presets", presets, "--batch", str(batch), "--gemm", "--steps", str(steps)]
    cmd += ["--compile"] if compile_ else []
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        if out_of_memory(out.stderr):
            return None, None, ""
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
    ap.add_argument("--precision", default="bf16", help="comma-separated: fp32, bf16, fp16")
    a = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    header = False
    for p in a.presets.split(","):
        batch = a.batch
        while True:  # both sides at the same batch: halved until both fit
            ref, gemm, device = reference(a.torch_bench, p, batch, a.compile, a.steps)
            mine = {prec: ours(a.build, p, batch, a.backend, a.steps, prec) for prec in a.precision.split(",")} if ref else {}
            if ref and all(mine.values()):
                break
            if batch <= 1:
                sys.exit(f"{p}: out of memory even at batch 1")
            print(f"{p}: out of memory at batch {batch} ({'ours' if ref else 'the reference'}); trying {batch // 2}",
                  flush=True)
            batch //= 2
        if not header:
            print(f"{device}; ours on backend {a.backend}" + (f"; bf16 8192^3 GEMM {gemm:.0f} TFLOP/s" if gemm else ""))
            print("| preset | batch | ours | reference mode | train img/s ours / ref (ratio) | eval img/s ours / ref (ratio) | "
                  "sampling img/s, 63 evals, ours / ref (ratio) | peak GiB ours / ref | ours train TFLOP/s (of bf16 GEMM) |")
            print("|---|---|---|---|---|---|---|---|---|")
            header = True
        for prec, o in mine.items():
            frac = f" ({100 * o['train_tflops'] / gemm:.0f}%)" if gemm else ""
            for (rp, mode), r in sorted(ref.items()):
                if rp != p:
                    continue
                cell = lambda k: f"{o[k]:.3g} / {r[k]:.3g} ({o[k] / r[k]:.2f}x)" if r[k] > 0 else f"{o[k]:.3g} / -"
                print(f"| {p} | {batch} | {prec} | {mode} | {cell('train')} | {cell('eval')} | {cell('sample')} | "
                      f"{o['mem_gib']:.1f} / {r['mem_gib']:.1f} | {o['train_tflops']:.1f}{frac} |", flush=True)

if __name__ == "__main__":
    main()
