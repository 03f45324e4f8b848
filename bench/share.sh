#!/usr/bin/env bash
# share.sh [KIMG] [CONFIG]: how edm2 shares a machine. Trains CONFIG (default the demo network) for KIMG
# (default 20) thousand images alone, then two such runs at once (as two users' runs would), and prints each
# run's images/s (the training loop's own figure, "img/s this session") and its fraction of the solo rate.
# Target: each of the pair >= 45% of solo, and solo as fast as with spinning threads:
#   OMP_WAIT_POLICY=active bench/share.sh     (idle threads always spin: the solo rate to compare with)
set -euo pipefail
cd "$(dirname "$0")/.."
kimg=${1:-20}
cfg=${2:-configs/fashion-mnist-demo.ini}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
train() { # NAME: one run into $tmp/NAME, its log in $tmp/NAME.log
  build/edm2host run "$cfg" --set job.run_dir="$tmp/$1" --set training.duration_kimg="$kimg" \
    --set training.status_kimg=1 --set training.sample_grid=false --set training.snapshot_kimg=0 \
    --set training.checkpoint_kimg=0 >"$tmp/$1.log" 2>&1
}
rate() { grep -o '([0-9.]* img/s this session)' "$tmp/$1.log" | grep -o '[0-9.]*' | head -1; }
train solo
train a & pa=$!
train b & pb=$!
wait $pa $pb
s=$(rate solo) a=$(rate a) b=$(rate b)
echo "solo:  $s images/s ($(nproc) cores, $kimg kimg, OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset})"
awk -v s="$s" -v a="$a" -v b="$b" 'BEGIN { printf "pair:  %s and %s images/s = %.0f%% and %.0f%% of solo\n", a, b, 100*a/s, 100*b/s }'
grep -h "other programs use" "$tmp/a.log" "$tmp/b.log" | head -4 | sed 's/^/       /' || true
