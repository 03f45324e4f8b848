#!/usr/bin/env bash
# test_convert_pkl.sh BUILD_DIR SOURCE_DIR: scripts/convert_edm2_pkl.py on pickles the EDM2 reference wrote
# (tests/data/pkl, made by tests/data/make_edm2_pkl.py from edm2_small's network): the float32 one converts to
# bitwise edm2_small's initial weights, the float16 training snapshot to them rounded to float16; the
# hyperparameters are edm2_small's (whose forward pass check-ref compares with the reference's), the latent
# scaling the one numpy computes for its encoder, kimg and sigma_rel those of the names. The converted files
# are used: generated from (decoded by a VAE), and the raw snapshot reconstructed post hoc. A pickle that
# would run a command (os.system) is refused without running it; a file that is no pickle or is cut short,
# with one line.
# Exits 77 (skipped) without python3.
set -uo pipefail
build=$1 src=$2
host="$build/edm2host"
command -v python3 >/dev/null || { echo "SKIP: no python3 (apt-get install python3)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
conv="$src/scripts/convert_edm2_pkl.py"
python3 "$conv" --outdir "$tmp/run" "$src"/tests/data/pkl/*.pkl >"$tmp/conv.log" 2>&1 || fail "convert: $(cat "$tmp/conv.log")"
cat "$tmp/conv.log"
post="$tmp/run/edm2-small-0000016-0.100.safetensors" raw="$tmp/run/network-snapshot-0000016-0.050.safetensors"
"$build/tests/st_extract" "$src/tests/data/edm2_small.safetensors" init/ "$tmp/init.safetensors" || fail "st_extract"
# The weights: every tensor, both ways (none missing, none extra).
"$build/tests/st_compare" "$post" "$tmp/init.safetensors" 0 && "$build/tests/st_compare" "$tmp/init.safetensors" "$post" 0 ||
  fail "float32 pickle: not bitwise the reference's weights"
"$build/tests/st_compare" "$raw" "$tmp/init.safetensors" 5e-4 && "$build/tests/st_compare" "$tmp/init.safetensors" "$raw" 5e-4 ||
  fail "float16 pickle: not the reference's weights within float16 rounding"
"$host" inspect "$raw" | grep -q "(float16)" || fail "the float16 snapshot's tensors are not kept in float16"
echo "ok: the weights of both pickles"
# The hyperparameters: every key the converted file shares with edm2_small's metadata has its value.
meta() { "$host" inspect "$1" --meta | sed -n 's/^    \([a-z_.0-9]*\) = \(.*\)$/\1=\2/p'; }
meta "$src/tests/data/edm2_small.safetensors" >"$tmp/ref.meta"
for f in "$post" "$raw"; do
  meta "$f" >"$tmp/conv.meta"
  shared=0
  while IFS= read -r kv; do
    k=${kv%%=*}
    want=$(grep -m1 "^$k=" "$tmp/ref.meta") || continue
    [ "$kv" = "$want" ] || fail "$(basename "$f"): $kv, edm2_small has $want"
    shared=$((shared + 1))
  done <"$tmp/conv.meta"
  [ $shared -ge 16 ] || fail "$(basename "$f"): only $shared hyperparameters in common with edm2_small"
done
grep -qx "edm2.network=mp_unet" "$tmp/conv.meta" || fail "no edm2.network"
echo "ok: the hyperparameters of both are edm2_small's"
# Time, EMA and data: from the names and the encoders (numpy's float32 scaling of the StabilityVAEEncoder).
meta "$post" >"$tmp/post.meta"
for kv in edm2.nimg=16384 edm2.ema=power edm2.ema_label=0.100 edm2.posthoc=1 edm2.latents=sd_vae \
  edm2.latent_scale=0.150000006,0.13333334,0.160000011,0.184615389 \
  edm2.latent_bias=-0.825000048,-0.400000036,-0.0400000028,0.369230777; do
  grep -qx -- "$kv" "$tmp/post.meta" || fail "post-hoc file: no $kv"
done
grep -qx "edm2.ema_label=0.050" "$tmp/conv.meta" && ! grep -q "edm2.posthoc\|edm2.latents" "$tmp/conv.meta" ||
  fail "training snapshot: $(tr '\n' ' ' <"$tmp/conv.meta")"
echo "ok: kimg, sigma_rel, post-hoc or raw, and the latent scaling"
# Used: latents generated and decoded by a (small, random) VAE; the raw snapshot reconstructed post hoc at its own
# sigma_rel and time (one input: itself).
"$build/tests/st_extract" "$src/tests/data/vae_ref.safetensors" small/w/ "$tmp/vae.safetensors" || fail "st_extract vae"
cat >"$tmp/gen.ini" <<INI
extends = $src/tests/configs/small_vae.ini
[job]
type = generate
[sampler]
plugin = heun
num_steps = 4
[vae]
weights = $tmp/vae.safetensors
[generate]
net = $post
seeds = 0-3
batch = 2
outdir = $tmp/gen
INI
"$host" -q run "$tmp/gen.ini" || fail "generate from the converted file"
[ $(ls "$tmp/gen"/0*.png | wc -l) = 4 ] && [ -f "$tmp/gen/grid.png" ] || fail "generate: not 4 images and a grid"
cat >"$tmp/phema.ini" <<INI
[job]
type = phema
[ema]
plugin = power
[phema]
snapshots = $tmp/run
stds = 0.05
outdir = $tmp/phema
INI
"$host" -q run "$tmp/phema.ini" || fail "phema on the converted snapshot"
"$build/tests/st_compare" "$tmp/phema"/phema-*.safetensors "$raw" 1e-6 || fail "phema of one snapshot at its own sigma_rel"
echo "ok: generated from (decoded by the VAE) and reconstructed post hoc"
# Refused: a pickle that would run a command, and a file that is no pickle.
python3 -c "
import os, pickle, sys
class Evil:
    def __reduce__(self):
        return (os.system, ('touch $tmp/ran',))
pickle.dump({'ema': Evil()}, open(sys.argv[1], 'wb'))" "$tmp/evil.pkl"
out=$(python3 "$conv" "$tmp/evil.pkl" 2>&1) && fail "a pickle naming os.system converted"
[ -e "$tmp/ran" ] && fail "the pickle's command ran"
echo "$out" | grep -q "error: .*evil.pkl: 'ema' is a .*system, not the reference's Precond network" ||
  fail "evil pickle: $out"
head -c 100 "$src/tests/data/edm2_small.safetensors" >"$tmp/bad.pkl"
out=$(python3 "$conv" "$tmp/bad.pkl" 2>&1) && fail "a file that is no pickle converted"
[ $(echo "$out" | wc -l) = 1 ] && echo "$out" | grep -q "error: .*bad.pkl: not a readable pickle" || fail "bad file: $out"
[ -e "$tmp/bad.safetensors" ] && fail "a file written for a bad input"
head -c 300000 "$src/tests/data/pkl/edm2-small-0000016-0.100.pkl" >"$tmp/cut.pkl"
out2=$(python3 "$conv" "$tmp/cut.pkl" 2>&1) && fail "a pickle cut short converted"
[ $(echo "$out2" | wc -l) = 1 ] && echo "$out2" | grep -q "error: .*cut.pkl: not a readable pickle" || fail "cut pickle: $out2"
[ -e "$tmp/cut.safetensors" ] && fail "a file written for a pickle cut short"
echo "ok: refused: $out"
echo "ok: refused: $out2"
echo "all conversion checks passed"
