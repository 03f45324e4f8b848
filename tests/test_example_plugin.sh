#!/usr/bin/env bash
# test_example_plugin.sh BUILD_DIR SOURCE_DIR: installs edm2, builds examples/ema_poly against the installed
# headers and CMake package only, then trains a tiny model with it and reconstructs a tracked exponent
# post hoc (numerical inner products); the reconstruction must equal the tracked average.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/examples/ema_poly" -B "$tmp/ex" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$tmp/ex" >/dev/null
export EDM2_PLUGIN_PATH="$tmp/ex"
"$build/edm2host" plugins --describe poly | grep -q "exponents"
"$build/edm2host" run "$src/tests/configs/tiny_train.ini" --set "job.run_dir=$tmp/run" --set training.duration_kimg=3 \
  --set ema.plugin=poly --set ema.exponents=3,9 2>"$tmp/train.log" || { cat "$tmp/train.log"; exit 1; }
cat > "$tmp/phema.ini" <<INI
[job]
type = phema
[ema]
plugin = poly
[phema]
snapshots = $tmp/run
stds = 9
at_kimg = 3
INI
"$build/edm2host" run "$tmp/phema.ini" 2>"$tmp/phema.log" || { cat "$tmp/phema.log"; exit 1; }
grep -q "numerical inner products" "$tmp/phema.log"
"$build/tests/st_compare" "$tmp/run/phema-0000003-9.000.safetensors" "$tmp/run/network-snapshot-0000003-g9.safetensors" 1e-5
echo "example plugin: built against the installed headers, trained, reconstructed post hoc"
