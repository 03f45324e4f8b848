#!/usr/bin/env bash
# test_example_plugin.sh BUILD_DIR SOURCE_DIR: installs edm2, builds examples/ema_poly against the installed
# headers and CMake package only, then trains a tiny model with it and reconstructs a tracked exponent
# post hoc (numerical inner products); the reconstruction must equal the tracked average. Then builds
# examples/dpm_solver the same way and samples with it: it must reach Heun's images (the same ODE).
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

# The third-party sampler: built the same way, then used by generate; with many steps it reaches the images
# Heun reaches (the same ODE), and with few it is close to them.
cmake -S "$src/examples/dpm_solver" -B "$tmp/dpm" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >/dev/null
cmake --build "$tmp/dpm" >/dev/null
export EDM2_PLUGIN_PATH="$tmp/dpm"
gen() { # SAMPLER STEPS OUT
  cat > "$tmp/gen.ini" <<INI
[job]
type = generate
[sampler]
plugin = $1
num_steps = $2
[generate]
net = $tmp/run/network-snapshot-0000003-g9.safetensors
seeds = 0-7
outdir = $3
raw = true
images = false
grid = false
INI
  "$build/edm2host" run "$tmp/gen.ini" 2>"$tmp/gen.log" || { cat "$tmp/gen.log"; exit 1; }
}
gen heun 200 "$tmp/heun200"
gen dpmpp2m 399 "$tmp/dpm399"
gen dpmpp2m 15 "$tmp/dpm15"
grep -q "dpmpp2m (15 evaluations each)" "$tmp/gen.log"
gen euler 15 "$tmp/euler15"
"$build/tests/st_compare" "$tmp/dpm399/samples.safetensors" "$tmp/heun200/samples.safetensors" 2e-3
# At 15 evaluations the second-order multistep solver is nearer the converged images than Euler (first order).
"$build/tests/st_compare" "$tmp/dpm15/samples.safetensors" "$tmp/heun200/samples.safetensors" 0.12
if "$build/tests/st_compare" "$tmp/euler15/samples.safetensors" "$tmp/heun200/samples.safetensors" 0.12; then
  echo "Euler with 15 evaluations is as near the converged images as DPM-Solver++(2M)"; exit 1
fi
echo "example sampler: built against the installed headers; 399 steps within 2e-3 of Heun's 200; at 15 evaluations nearer than Euler"
