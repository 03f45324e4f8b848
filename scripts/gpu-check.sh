#!/usr/bin/env bash
# gpu-check.sh OUT_DIR [quick|more|compile|full]: the one script to run on a GPU machine (see the project brief).
# It finds cuDNN (under /usr/local/cuda, or PyTorch's nvidia/cudnn Python package), builds for the GPU's
# architecture with CUDA forced on, then checks, most urgent first, what has not yet run on a GPU (quick,
# the default):
#   1. the CUDA tests: network parity in fp32, each bf16 layer kernel and attention against the CPU's,
#      the bf16/fp16 precisions against fp32 and the passes replayed from CUDA graphs, the FID Inception
#      network, the FD_DINOv2 network (never run on a GPU yet), the SD VAE, the backend and layers; `check-ref --backend cuda`; NCCL in a group of one;
#   2. which algorithm each 3x3 convolution of img512 XS runs at batch 256 in bf16, timed, with the
#      training speed and peak of that run and where the memory went (algos.txt);
#   3. (with .devref/ carried) img512 XS and S at batch 256 (or the largest halving that fits): ours in
#      bf16 against the PyTorch reference (eager) in one command (bench/side_by_side.py);
#   4. where a bf16 XS training step's time goes, kernel by kernel (bench/kernel_profile.py: Nsight
#      Compute durations of a steady pass, with the plans of step 2);
#   5. the forced weight normalisation, the bf16 layers, attention, the bf16/fp16 network, the CUDA graphs,
#      Inception, DINOv2 and the VAE under compute-sanitizer (the same tests pass under ASan in the CPU emulation of
#      tests/cuda_emu, which cannot show the GPU's own memory faults);
#   6. (more and full, first) the evaluation with its convolutions' element-wise layers fused into them
#      (EDM2_CUDNN_FUSE: its test, then XS off, timed, on: fused.txt); the other ways of choosing algorithms (any determinism,
#      the graph API's plans, cuDNN's heuristics), the evaluation's kernel profile, sampling at batch 16 with
#      and without CUDA graphs, the
#      Fashion-MNIST demo for 30 kimg in fp32 with two seeds (the run-to-run spread) and in bf16 (final
#      losses side by side, grids kept), the SD VAE at 512x512 (the last two verified on an H100 before).
# Within a session's time quick reaches about step 4; `more` (right after, on the same machine: the build
# is kept) runs what quick did not pass of steps 2 to 4, then step 6.
# `compile` builds, runs the CUDA tests, and then only the speed table with the reference both eager and
# under torch.compile (issue 11's second training target; compiling takes minutes, so it has a session's
# run of its own). `full` adds to quick: fp16 in the speed table and the reference under torch.compile, the
# fp16 demo, `batch_gpu = auto` at XS's batch of 2048 (one step), the whole suite, memcheck of the fp32 network, and what earlier GPU sessions verified: the
# same 1-kimg run twice (snapshots compared bytewise), generation from a GPU snapshot on both backends and
# with guidance, post-hoc EMA on the GPU, the demo on the CPU. Every log (and the grids) stays in OUT_DIR;
# OUT_DIR/summary.txt is kept current, so a run cut short still says what passed. Usage on the device
# machine, from the repository root (the device tool returns only a few files, hence the archive; the
# timeout leaves time for it):
#   source .devdeps/install.sh && timeout 540 scripts/gpu-check.sh /tmp/gc; tar czf $OUT/gpu-check.tgz -C /tmp gc
# and right after it, on the same warm machine, with the time left (the build is kept):
#   source .devdeps/install.sh && timeout 240 scripts/gpu-check.sh /tmp/gc2 more; tar czf $OUT/more.tgz -C /tmp gc2
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [quick|more|compile|full]}
mode=${2:-quick}
mkdir -p "$out"
summary=()
# The steps that passed, kept beside the build for `more` on the same machine: what quick did not finish
# (it stops at its time limit) of the timed algorithms, the speed table and the kernel profile, more runs
# first.
passed_dir=$PWD/build-gpu/gpu-check-passed
[ "$mode" != more ] && rm -rf "$passed_dir"
needs() { [ "$mode" != more ] || [ ! -f "$passed_dir/$1" ]; } # NAME: quick, full, or more where quick did not pass it
step() { # NAME COMMAND...: runs a step, logs to OUT/NAME.log, records pass/fail
  local name=$1
  shift
  local t0=$(date +%s)
  "$@" >"$out/$name.log" 2>&1
  local rc=$? dt=$(( $(date +%s) - t0 ))
  if [ $rc = 0 ]; then summary+=("PASS  $name ($dt s)") && mkdir -p "$passed_dir" && touch "$passed_dir/$name"
  elif [ $rc = 124 ]; then summary+=("TIME  $name (stopped at its time limit after $dt s, see $name.log)")
  else summary+=("FAIL  $name ($dt s, see $name.log)"); fi
  tail -3 "$out/$name.log"
  printf '%s\n' "${summary[@]}" >"$out/summary.txt" # kept current: a run cut short still says what passed
}
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv |
  tee "$out/gpu.txt"
arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '.')
arch=${arch:-90}
cudnn_root=""
for py in python3 python; do
  command -v $py >/dev/null || continue
  cudnn_root=$($py -c "import os, nvidia.cudnn as c; print(os.path.dirname(c.__file__))" 2>/dev/null) && break
done
nccl_root=""
for py in python3 python; do # NCCL likewise (issue 12's one-rank check)
  command -v $py >/dev/null || continue
  nccl_root=$($py -c "import os, nvidia.nccl as c; print(os.path.dirname(c.__file__))" 2>/dev/null) && break
done
echo "cuDNN root: ${cudnn_root:-under the CUDA toolkit}; NCCL root: ${nccl_root:-under the CUDA toolkit}; CUDA architecture: sm_$arch" |
  tee -a "$out/gpu.txt"
[ -n "$cudnn_root" ] && export LD_LIBRARY_PATH=$cudnn_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
[ -n "$nccl_root" ] && export LD_LIBRARY_PATH=$nccl_root/lib:$LD_LIBRARY_PATH
data=/usr/share/datasets/fashion-mnist # carried in .devdeps where no Debian package can be installed
[ -d $data ] || { mkdir -p /usr/share/datasets && ln -s /opt/devdeps$data $data; } 2>/dev/null || data=/opt/devdeps$data # the tests read the default path
step configure cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEDM2_CUDA=ON -DEDM2_BUILD_TESTS=ON -DEDM2_CUDA_EMU=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" ${cudnn_root:+-DEDM2_CUDNN_ROOT="$cudnn_root"} ${nccl_root:+-DEDM2_NCCL_ROOT="$nccl_root"}
step build cmake --build build-gpu -j"$(nproc)"
build-gpu/edm2host plugins >"$out/plugins.txt" 2>&1
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
if [ "$mode" != more ]; then # (more: straight to what comes after the speed table)
# (the fused epilogues' test, whose plans cuDNN compiles at run time, runs in more, with their timing below)
step cuda-tests bash -c "cd build-gpu && EDM2_TEST_SKIP=test_plan_fused ctest -R 'parity|cuda|inception|vae|dinov2' \
  --timeout 240 --output-on-failure"
step check-ref build-gpu/edm2host check-ref tests/data/edm2_small.safetensors --backend cuda
# Issue 12 on one GPU: the data-parallel path in a group of one (two passes into their own arenas, NCCL's
# all-reduce and broadcast with one rank) gives bitwise the plain run's checkpoint.
if grep -q "edm2: NCCL /" "$out/configure.log"; then
  for g in 0 1; do
    EDM2_GROUP_OF_ONE=$g build-gpu/edm2host run configs/fashion-mnist-demo.ini --set backend.plugin=cuda \
      --set data.path=$data --set job.run_dir="$out/group$g" --set training.duration_kimg=1 --set training.batch_gpu=32 \
      --set training.status_kimg=1 --set training.sample_grid=false >"$out/group$g.log" 2>&1
  done
  step nccl-group-of-one bash -c "grep -q 'group of one' $out/group1.log && cmp $out/group0/training-state-0000001.safetensors \
    $out/group1/training-state-0000001.safetensors && echo bitwise equal"
else
  summary+=("SKIP  nccl-group-of-one (no NCCL found)")
fi
rm -rf "$out"/group0 "$out"/group1
fi # (mode != more)
# The kernel profiles take the cuDNN plans that the plain timed run before them chose and saved
# (EDM2_CUDNN_PLANS, plan_file.h), so that Nsight Compute times what a plain run runs (the last profile's
# algorithms, chosen under ncu, matched none of the speed table's); the file comes back in the archive. The
# speed table times its own plans, as a user's run does (a plan file that failed on its first GPU run must
# not cost the table), and so do the test suites, on purpose. The file stays beside the build, which `more`
# reuses on the same machine (its evaluation profile takes quick's plans), and is copied into OUT.
plans="$PWD/build-gpu/cudnn-plans.txt"
[ "$mode" != more ] && rm -f "$plans"
# Which cuDNN algorithm each 3x3 convolution of XS runs, with the training speed, peak and memory of each
# way of choosing: timed (the default: Find, then each candidate run as planned), timed among algorithms of
# any determinism (EDM2_CUDNN_DETERMINISTIC=0, as the reference's cudnn.benchmark), timed against the graph
# API's execution plans (EDM2_CUDNN_API=any), and as cuDNN's heuristics rank them (after the speed table).
# Each plan's line gives Find's time, the time as planned and what else was tried, and the first call of
# each kind on the network's tensors its own line (the last GPU profile showed 3.6 ms non-tensor-core
# kernels where Find had timed a tensor-core one at 0.11 ms). Ahead of the speed table: these lines say
# what to fix next.
algos() { # NAME VAR=VALUE...: one way of choosing, into algos-NAME.log and algos.txt
  local name=$1
  shift
  step algos-$name env "$@" timeout 100 build-gpu/edm2-bench configs/edm2-img512-xs.ini --set backend.plugin=cuda \
    --set training.batch=256 --set network.precision=bf16 --only train --steps 3 --no-sgemm --verbose
  grep -h "training:\|memory\|cuDNN 3x3" "$out"/algos-*.log >"$out/algos.txt"
}
# The default's plan lines (and its plans saved for the kernel profile), ahead of the speed table.
[ "$mode" != compile ] && needs algos-timed && algos timed EDM2_CUDNN_ALGO=timed EDM2_CUDNN_PLANS="$plans"
# Speed side by side with the PyTorch reference on this GPU, in one command (issue 11), when its source was
# carried in .devref/ (copies of ../shared/bench and ../shared/ref/torch); the table is side-by-side.md.
speed() { # SECONDS EXTRA ARGS of side_by_side.py: the table, stopped after SECONDS
  local limit=$1
  shift
  timeout "$limit" python3 bench/side_by_side.py --torch-bench .devref/bench/torch_gpu_bench.py --presets xs,s --batch 256 \
    --steps 5 --build build-gpu "$@" | tee -a "$out/side-by-side.md"
}
if [ "$mode" = compile ]; then
  [ -f .devref/bench/torch_gpu_bench.py ] && step side-by-side-compile speed 450 --precision bf16 --compile
  cat "$out/summary.txt"
  exit 0
fi
needs side-by-side && [ -f .devref/bench/torch_gpu_bench.py ] && step side-by-side speed 300 --precision bf16
# Where a bf16 training step's GPU time goes, kernel by kernel (Nsight Compute, durations only), with the
# plans of the timed step above: the kernels rewritten since the last profile have not been timed yet.
if needs kernel-profile; then
  [ -n "$ncu" ] && step kernel-profile env EDM2_CUDNN_PLANS="$plans" timeout 150 python3 bench/kernel_profile.py --build build-gpu --ncu "$ncu" \
    --batch 256 --precision bf16 --save-csv "$out/ncu-xs-bf16.csv"
  [ -f "$plans" ] && cp "$plans" "$out/"
fi
# The evaluation with each 3x3 convolution and the layer after it as one cuDNN graph (EDM2_CUDNN_FUSE,
# conv_fused.h; not yet run on a GPU): its test (test_cuda_network's test_plan_fused), then XS at batch 256
# unfused (the default), fused where timed faster, and fused wherever cuDNN fuses; the evaluation and
# sampling rates and each fused plan's report (fused.txt).
# cuDNN compiles each fused plan when it is made (seconds each), hence its own time limit per run.
if [ "$mode" != quick ]; then # (more: right after what quick left of steps 2 to 4)
  step fused-test bash -c "cd build-gpu && EDM2_PLUGIN_PATH=\$PWD/plugins EDM2_TEST_FILTER=test_plan_fused timeout 240 \
    tests/test_cuda_network"
  for fuse in off timed on; do
    step fused-$fuse env EDM2_CUDNN_FUSE=$fuse timeout 180 build-gpu/edm2-bench configs/edm2-img512-xs.ini \
      --set backend.plugin=cuda --set training.batch=256 --set network.precision=bf16 --only eval --sample --steps 3 \
      --no-gemm --verbose
  done
  grep -H "cuDNN fused\|eval: \|sampling: \|memory: " "$out"/fused-*.log >"$out/fused.txt"
fi
# Memory checks of the kernels on the GPU itself (the CPU emulation's ASan run sees out-of-bounds accesses
# already; this sees the GPU's own faults), after the speed steps: a run cut short loses these first.
memcheck() { # TEST [FILTER]: one test program (or its cmocka tests named FILTER) under memcheck, at most 150 s
  (cd build-gpu && EDM2_PLUGIN_PATH=$PWD/plugins EDM2_TEST_FILTER=${2:-} \
    timeout 150 "$sanitizer" --tool memcheck --error-exitcode 1 "tests/$1")
}
if [ -n "$sanitizer" ] && { [ "$mode" = quick ] || [ "$mode" = full ]; }; then
  step memcheck-layers memcheck test_cuda_layers
  step memcheck-lp-layers memcheck test_cuda_lp_layers
  step memcheck-attention memcheck test_cuda_attention
  step memcheck-lp memcheck test_cuda_network 'test_precisions'
  step memcheck-graphs memcheck test_cuda_network 'test_*_graph'
  step memcheck-inception memcheck test_inception test_cuda_matches
  step memcheck-vae memcheck test_vae test_cuda_matches
  step memcheck-dinov2 memcheck test_dinov2 test_cuda_matches
fi
# The other ways of choosing (after the speed table, which uses the default): any determinism, the graph
# API's plans, cuDNN's heuristics.
algos any-determinism EDM2_CUDNN_DETERMINISTIC=0
algos graph-api EDM2_CUDNN_API=any
algos heuristic EDM2_CUDNN_ALGO=heuristic
[ -n "$ncu" ] && step kernel-profile-eval env EDM2_CUDNN_PLANS="$plans" timeout 120 python3 bench/kernel_profile.py --build build-gpu --ncu "$ncu" \
  --batch 256 --precision bf16 --pass eval --save-csv "$out/ncu-xs-bf16-eval.csv"
# Sampling at small batch (launch-bound) with and without the CUDA graphs of the evaluation forward.
for graphs in 0 1; do
  step sample-graphs$graphs env EDM2_CUDA_GRAPHS=$graphs build-gpu/edm2-bench configs/fashion-mnist-demo.ini \
    --set backend.plugin=cuda --set training.batch=16 --only eval --sample --no-sgemm --steps 3
done
grep -h "sampling:" "$out"/sample-graphs*.log | tee "$out/sample-graphs.txt"
# Mixed precision on the demo (issue 11): 30 kimg in fp32 with two seeds (the run-to-run spread), then in
# bf16 (and fp16); the final losses side by side (stats.jsonl), each run's grid kept.
demos="fp32:0 fp32:1 bf16:0"
[ "$mode" = full ] && demos="$demos fp16:0"
for run in $demos; do
  prec=${run%:*} seed=${run#*:}
  step demo-$prec-seed$seed build-gpu/edm2host run configs/fashion-mnist-demo.ini --set backend.plugin=cuda \
    --set data.path=$data --set job.run_dir="$out/demo-$prec-seed$seed" --set job.seed=$seed \
    --set network.precision=$prec --set training.duration_kimg=30 --set training.snapshot_kimg=30 \
    --set training.checkpoint_kimg=30
done
for f in "$out"/demo-*/stats.jsonl; do
  echo "$(basename "$(dirname "$f")"): final $(tail -1 "$f" | grep -o '"loss": [-0-9.e]*'), $(tail -1 "$f" | grep -o '"img_per_s": [0-9.]*')"
done | tee "$out/demo-losses.txt"
rm -f "$out"/demo-*/training-state-*
# The SD VAE at 512x512 on the GPU (random weights of the real shapes).
step vae-bench-gpu build-gpu/edm2-vae-bench bench/vae-sd.ini --random-weights --set backend.plugin=cuda --res 512 --images 4
if [ "$mode" = full ]; then
  [ -f .devref/bench/torch_gpu_bench.py ] && step side-by-side-full speed 540 --precision fp16,bf16 --compile
  for preset in xs s; do # edm2-bench alone: its TFLOP/s against a bf16 8192^3 cuBLAS product of the same run
    step bench-$preset-bf16 build-gpu/edm2-bench configs/edm2-img512-$preset.ini --set backend.plugin=cuda \
      --set training.batch=256 --set network.precision=bf16 --sample --steps 5
  done
  # batch_gpu = auto (the presets' setting, not yet run on a GPU): XS at the paper's batch of 2048 on zero
  # latents, one step: the passes that run out of device memory, each given back, then the halving that fits.
  python3 bench/zero_latents.py /tmp/zero-latents.safetensors 2048
  step auto-pass-xs build-gpu/edm2host run configs/edm2-img512-xs.ini --set backend.plugin=cuda \
    --set data.path=/tmp/zero-latents.safetensors --set job.run_dir="$out/auto-pass-xs" --set training.duration_kimg=2.048 \
    --set training.status_kimg=2.048 --set training.snapshot_kimg=0 --set training.checkpoint_kimg=0 \
    --set training.sample_grid=false
  grep -h "batch_gpu = auto" "$out/auto-pass-xs.log"
  rm -rf /tmp/zero-latents.safetensors "$out"/auto-pass-xs/*.safetensors
  step suite bash -c "cd build-gpu && ctest --output-on-failure"
  if [ -n "$sanitizer" ]; then
    step memcheck-cuda bash -c "cd build-gpu && for t in tests/test_backend_parity tests/test_cuda_layers; do
      $sanitizer --tool memcheck --error-exitcode 1 \$t || exit 1; done"
    step memcheck-network memcheck test_cuda_network
  fi
  # The same seed on the same GPU: bitwise the same snapshots (a 1-kimg run twice).
  for r in a b; do
    build-gpu/edm2host -q run configs/fashion-mnist-demo.ini --set backend.plugin=cuda --set data.path=$data \
      --set job.run_dir="$out/det-$r" --set training.duration_kimg=1 --set training.status_kimg=1 >"$out/det-$r.log" 2>&1
  done
  step deterministic bash -c "n=0; for f in $out/det-a/*.safetensors; do cmp \$f $out/det-b/\$(basename \$f) || exit 1; n=\$((n+1)); done; echo \$n identical files; [ \$n -gt 0 ]"
  snap=$(ls "$out"/demo-fp32-seed0/network-snapshot-*-0.100.safetensors 2>/dev/null | tail -1)
  for b in cuda cpu; do # a snapshot trained on the GPU samples on either backend
    step generate-$b build-gpu/edm2host run configs/fashion-mnist-generate.ini --set backend.plugin=$b \
      --set generate.net="$snap" --set generate.outdir="$out/generated-$b" --set generate.seeds=0-19
  done
  step generate-guided build-gpu/edm2host run configs/fashion-mnist-generate.ini --set backend.plugin=cuda \
    --set generate.net="$snap" --set generate.gnet="${snap%-0.100.safetensors}-0.050.safetensors" \
    --set generate.guidance=1.5 --set generate.outdir="$out/generated-guided" --set generate.seeds=0-19
  step demo-cpu build-gpu/edm2host run configs/fashion-mnist-demo.ini --set backend.plugin=cpu --set data.path=$data \
    --set job.run_dir="$out/demo-cpu" --set training.duration_kimg=4 --set training.status_kimg=1 \
    --set training.sample_grid=false
  step phema-gpu build-gpu/edm2host run configs/fashion-mnist-phema.ini --set backend.plugin=cuda \
    --set phema.snapshots="$out/demo-fp32-seed0" --set phema.outdir="$out/phema" --set phema.stds=0.05,0.10
  rm -rf "$out"/det-a "$out"/det-b "$out"/phema "$out"/demo-cpu/*.safetensors
  echo "== CPU benchmark on this machine" | tee "$out/bench.log"
  build-gpu/edm2-bench bench/fmnist-mc16.ini --steps 5 >>"$out/bench.log" 2>&1
  tail -3 "$out/bench.log"
fi
rm -f "$out"/demo-*/*.safetensors
[ -f "$plans" ] && cp "$plans" "$out/"
cat "$out/summary.txt"
