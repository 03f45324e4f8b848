#!/usr/bin/env bash
# build.sh [BUILD_DIR] [extra cmake options...]: configures and builds edm2. The first run configures a
# Release build; later runs re-run the (cached, quick) configure step, so packages installed since, and
# options given now (./test passes -DEDM2_BUILD_TESTS=ON), take effect. CUDA plugins are built when nvcc
# is found (/usr/local/cuda), and skipped otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
if [ ! -f "$dir/CMakeCache.txt" ]; then
  set -- -DCMAKE_BUILD_TYPE=Release "$@"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cmake -S . -B "$dir" "$@" >"$log" 2>&1; then
  cat "$log"
  exit 1
fi
grep -E "^-- edm2:" "$log" || true
cmake --build "$dir" -j"$(nproc)"
