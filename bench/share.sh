#!/usr/bin/env bash
# share.sh [CONFIG] [STEPS]: how edm2 shares a machine. Runs the training benchmark alone, then two copies at
# once (as two users' training runs would), and prints each run's images/s and its fraction of the solo
# rate. Each copy should get about half the machine (>= 45% of solo), and the solo rate should not drop when
# the default thread wait policy changes. Default: bench/fmnist-mc16.ini, 30 timed steps.
#   OMP_WAIT_POLICY=active bench/share.sh     (spinning idle threads, for comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
cfg=${1:-bench/fmnist-mc16.ini}
steps=${2:-30}
bench=(build/edm2-bench "$cfg" --only train --no-sgemm --steps "$steps")
rate() { grep -o 'training: *[0-9.]*' "$1" | grep -o '[0-9.]*$'; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${bench[@]}" >"$tmp/solo" 2>&1
solo=$(rate "$tmp/solo")
"${bench[@]}" >"$tmp/a" 2>&1 &
a=$!
"${bench[@]}" >"$tmp/b" 2>&1 &
b=$!
wait $a $b
ra=$(rate "$tmp/a")
rb=$(rate "$tmp/b")
echo "solo:  $solo images/s ($(nproc) cores, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-default})"
awk -v s="$solo" -v a="$ra" -v b="$rb" 'BEGIN { printf "pair:  %s and %s images/s = %.0f%% and %.0f%% of solo\n", a, b, 100*a/s, 100*b/s }'
