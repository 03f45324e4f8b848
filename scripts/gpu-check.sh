#!/usr/bin/env bash
# gpu-check.sh: the one script to run on a GPU machine (see the project brief): builds with CUDA forced on,
# runs every CUDA test (they skip without a device, so on a GPU they must pass), the whole suite, and the
# CPU benchmark for reference. Usage on the device machine, from the repository root:
#   source .devdeps/install.sh && scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DEDM2_CUDA=ON >/dev/null || exit 1
cmake --build build-gpu -j"$(nproc)" 2>&1 | tail -3
build-gpu/edm2host plugins
echo "== CUDA tests"
(cd build-gpu && ctest -R parity --output-on-failure -V | grep -E "SKIP|PASSED|FAILED|Passed|Failed|Skipped|max diff")
echo "== whole suite"
(cd build-gpu && ctest --output-on-failure | tail -5)
echo "== CPU benchmark on this machine"
build-gpu/edm2-bench bench/fmnist-mc16.ini --steps 5
