#!/usr/bin/env bash
# gpu-check.sh OUT_DIR: the one script to run on a GPU machine (see the project brief), in at most ~8
# minutes: finds cuDNN (under /usr/local/cuda, or PyTorch's nvidia/cudnn Python package), builds for the
# GPU's architecture with CUDA forced on, runs the CUDA tests, the same tests once under compute-sanitizer
# (memcheck), the whole suite, `check-ref --backend cuda`, and a few kimg of the demo on the GPU; leaves
# every log (and the demo's grid) in OUT_DIR and prints a summary. Usage on the device machine, from the
# repository root:
#   source .devdeps/install.sh && scripts/gpu-check.sh $OUT
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
step configure cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEDM2_CUDA=ON -DEDM2_BUILD_TESTS=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" ${cudnn_root:+-DEDM2_CUDNN_ROOT="$cudnn_root"}
step build cmake --build build-gpu -j"$(nproc)"
build-gpu/edm2host plugins >"$out/plugins.txt" 2>&1
step cuda-tests bash -c "cd build-gpu && ctest -R 'parity|cuda' --output-on-failure"
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$sanitizer" ]; then
  step memcheck bash -c "cd build-gpu && for t in tests/test_backend_parity tests/test_cuda_layers; do
    $sanitizer --tool memcheck --error-exitcode 1 \$t || exit 1; done"
fi
step suite bash -c "cd build-gpu && ctest --output-on-failure"
step check-ref build-gpu/edm2host check-ref tests/data/edm2_small.safetensors --backend cuda
step demo-gpu build-gpu/edm2host run configs/fashion-mnist-demo.ini --set backend.plugin=cuda \
  --set job.run_dir="$out/demo" --set training.duration_kimg=4 --set training.status_kimg=1
echo "== CPU benchmark on this machine" | tee "$out/bench.log"
build-gpu/edm2-bench bench/fmnist-mc16.ini --steps 5 >>"$out/bench.log" 2>&1
tail -3 "$out/bench.log"
printf '%s\n' "${summary[@]}" | tee "$out/summary.txt"
