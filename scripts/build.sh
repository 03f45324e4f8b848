#!/usr/bin/env bash
# build.sh [BUILD_DIR] [extra cmake options...]: configures (once) and builds edm2. CUDA plugins are built
# when nvcc is found (/usr/local/cuda), and skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@"
fi
cmake --build "$dir" -j"$(nproc)"
