#!/usr/bin/env bash
# gpu-check.sh OUT_DIR: the one script to run on a GPU machine (see the project brief), in at most ~8
# minutes: finds cuDNN (under /usr/local/cuda, or PyTorch's nvidia/cudnn Python package), builds for the
# GPU's architecture with CUDA forced on, runs the CUDA tests (the FID Inception network's included), the same tests once under compute-sanitizer
# (memcheck), the whole suite (training on the GPU: determinism and exact resume included),
# `check-ref --backend cuda`, 4 kimg of the demo on the GPU (and on the CPU, for the losses side by side),
# the same 1-kimg GPU run twice (snapshots compared bytewise), generation from the GPU snapshot on both
# backends and with guidance, post-hoc EMA on the GPU, and (with .devref/ carried) img512-XS training speed
# of ours and of the PyTorch reference side by side; leaves every log (and the grids) in OUT_DIR and
# prints a summary. Usage on the device machine, from the repository root (the device tool returns at most
# a few files, hence the archive):
#   source .devdeps/install.sh && scripts/gpu-check.sh /tmp/gc; tar czf $OUT/gpu-check.tgz -C /tmp gc
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$out"
summary=()
step() { # NAME COMMAND...: runs a step, logs to OUT/NAME.log, records pass/fail
  local name=$1
  shift
  local t0=$(date +%s)
  if "$@" >"$out/$name.log" 2>&1; then summary+=("PASS  $name ($(( $(date +%s) - t0 )) s)")
  else summary+=("FAIL  $name ($(( $(date +%s) - t0 )) s, see $name.log)"); fi
  tail -3 "$out/$name.log"
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
echo "cuDNN root: ${cudnn_root:-under the CUDA toolkit}; CUDA architecture: sm_$arch" | tee -a "$out/gpu.txt"
[ -n "$cudnn_root" ] && export LD_LIBRARY_PATH=$cudnn_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
data=/usr/share/datasets/fashion-mnist # carried in .devdeps where no Debian package can be installed
[ -d $data ] || { mkdir -p /usr/share/datasets && ln -s /opt/devdeps$data $data; } 2>/dev/null || data=/opt/devdeps$data # the tests read the default path
step configure cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEDM2_CUDA=ON -DEDM2_BUILD_TESTS=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" ${cudnn_root:+-DEDM2_CUDNN_ROOT="$cudnn_root"}
step build cmake --build build-gpu -j"$(nproc)"
build-gpu/edm2host plugins >"$out/plugins.txt" 2>&1
step cuda-tests bash -c "cd build-gpu && ctest -R 'parity|cuda|inception|vae' --output-on-failure"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  step memcheck bash -c "cd build-gpu && for t in tests/test_backend_parity tests/test_cuda_layers; do
    $sanitizer --tool memcheck --error-exitcode 1 \$t || exit 1; done &&
    for t in tests/test_inception tests/test_vae; do EDM2_TEST_FILTER=test_cuda_matches \
    $sanitizer --tool memcheck --error-exitcode 1 \$t || exit 1; done"
  step memcheck-network bash -c "cd build-gpu && EDM2_PLUGIN_PATH=\$PWD/plugins $sanitizer --tool memcheck \
    --error-exitcode 1 tests/test_cuda_network"
fi
step suite bash -c "cd build-gpu && ctest --output-on-failure"
step check-ref build-gpu/edm2host check-ref tests/data/edm2_small.safetensors --backend cuda
# The SD VAE at 512x512 on the GPU (random weights of the real shapes).
step vae-bench-gpu build-gpu/edm2-vae-bench bench/vae-sd.ini --random-weights --set backend.plugin=cuda --res 512 --images 4
step demo-gpu build-gpu/edm2host run configs/fashion-mnist-demo.ini --set backend.plugin=cuda \
  --set data.path=$data --set job.run_dir="$out/demo" --set training.duration_kimg=4 --set training.status_kimg=1
# The same seed on the same GPU: bitwise the same snapshots (a second, shorter run twice).
for r in a b; do
  build-gpu/edm2host -q run configs/fashion-mnist-demo.ini --set backend.plugin=cuda --set data.path=$data \
    --set job.run_dir="$out/det-$r" --set training.duration_kimg=1 --set training.status_kimg=1 >"$out/det-$r.log" 2>&1
done
step deterministic bash -c "n=0; for f in $out/det-a/*.safetensors; do cmp \$f $out/det-b/\$(basename \$f) || exit 1; n=\$((n+1)); done; echo \$n identical files; [ \$n -gt 0 ]"
snap=$(ls "$out"/demo/network-snapshot-*-0.100.safetensors 2>/dev/null | tail -1)
for b in cuda cpu; do # a snapshot trained on the GPU samples on either backend
  step generate-$b build-gpu/edm2host run configs/fashion-mnist-generate.ini --set backend.plugin=$b \
    --set generate.net="$snap" --set generate.outdir="$out/generated-$b" --set generate.seeds=0-19
done
step generate-guided build-gpu/edm2host run configs/fashion-mnist-generate.ini --set backend.plugin=cuda \
  --set generate.net="$snap" --set generate.gnet="${snap%-0.100.safetensors}-0.050.safetensors" \
  --set generate.guidance=1.5 --set generate.outdir="$out/generated-guided" --set generate.seeds=0-19
# The same 2 kimg on the CPU, for the loss side by side with the GPU's (not bitwise: another product order).
step demo-cpu build-gpu/edm2host run configs/fashion-mnist-demo.ini --set data.path=$data \
  --set job.run_dir="$out/demo-cpu" --set training.duration_kimg=4 --set training.status_kimg=1 \
  --set training.sample_grid=false
step phema-gpu build-gpu/edm2host run configs/fashion-mnist-phema.ini --set backend.plugin=cuda \
  --set phema.snapshots="$out/demo" --set phema.outdir="$out/phema" --set phema.stds=0.05,0.10
rm -rf "$out"/det-a "$out"/det-b "$out"/phema "$out"/demo/training-state-* "$out"/demo-cpu/*.safetensors
# Speed side by side with the PyTorch reference on this GPU, in this run (issue 11): ours, then the reference's
# benchmark, when its source was carried in .devref/ (copies of ../shared/bench and ../shared/ref/torch).
if [ -f .devref/bench/torch_gpu_bench.py ]; then
  step bench-ours build-gpu/edm2-bench configs/edm2-img512-xs.ini --set backend.plugin=cuda --set training.batch=64 \
    --steps 4 --warmup 1 --no-sgemm
  step bench-torch timeout 200 python3 .devref/bench/torch_gpu_bench.py --presets xs --batch 64 --steps 5 --gemm
  tail -3 "$out/bench-ours.log" "$out/bench-torch.log"
fi
echo "== CPU benchmark on this machine" | tee "$out/bench.log"
build-gpu/edm2-bench bench/fmnist-mc16.ini --steps 5 >>"$out/bench.log" 2>&1
tail -3 "$out/bench.log"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
