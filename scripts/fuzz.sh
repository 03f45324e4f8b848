#!/usr/bin/env bash
# fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]: builds the libFuzzer harnesses (tests/fuzz, clang, ASan + UBSan)
# into build-fuzz/ and runs each for a bounded time from its seed corpus (tests/fuzz/corpus/<name>/; new
# inputs go to a scratch folder, the repository is not modified), as many at a time as there are cores.
# Default: 8 s each, all nine (what CI runs: 40 s on two cores).
# A longer hunt:  scripts/fuzz.sh 3600 config snapshot
# A crash leaves its input in build-fuzz/crashes/ and fails the script; reproduce with
#   build-fuzz/fuzz/fuzz_NAME build-fuzz/crashes/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
shift || true
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(safetensors dataset_json config idx png snapshot checkpoint image archive)
scripts/deps.sh fuzz
CC=clang CXX=clang++ scripts/build.sh build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDM2_FUZZ=ON -DEDM2_CUDA=OFF \
  -DEDM2_BUILD_TESTS=OFF >/dev/null
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# One harness: its result line (and what failed) into $out/NAME.txt, its status into $out/NAME.rc.
fuzz_one() {
  local n=$1 scratch runs cov rc=0
  scratch=$(mktemp -d)
  local dict=tests/fuzz/dict/$n.dict
  local args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
              -artifact_prefix=build-fuzz/crashes/"$n"- -print_final_stats=1)
  [ -f "$dict" ] && args+=(-dict="$dict")
  if build-fuzz/fuzz/fuzz_"$n" "${args[@]}" "$scratch" tests/fuzz/corpus/"$n" >"$scratch.log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$scratch.log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$scratch.log" | tail -1 || true)
    echo "fuzz_$n: ok, $runs inputs in ${secs} s ($cov)"
  else
    echo "fuzz_$n: FAILED"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$scratch.log" | head -10
    rc=1
  fi >"$out/$n.txt"
  echo $rc >"$out/$n.rc"
  rm -rf "$scratch" "$scratch.log"
}
# As many harnesses at a time as there are cores (each runs one process), reported in order.
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cores=$(nproc)
for n in "${names[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$cores" ]; do wait -n || true; done
  fuzz_one "$n" &
done
wait
status=0
for n in "${names[@]}"; do
  cat "$out/$n.txt"
  [ "$(cat "$out/$n.rc" 2>/dev/null)" = 0 ] || status=1
done
exit $status
