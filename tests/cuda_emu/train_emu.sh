#!/usr/bin/env bash
# train_emu.sh EMU_TREE SOURCE_DIR: training on the emulated CUDA backend (README.md here), with the host of
# the emulated plugin tree, on tests/configs/tiny_train.ini for 0.1 kimg (13 steps):
#   1. EDM2_GROUP_OF_ONE=1 (the data-parallel path: per-pass gradient arenas, NCCL's all-reduce and
#      broadcast with one rank) gives bytewise the plain run's checkpoint, as scripts/gpu-check.sh checks on
#      a GPU;
#   2. precision = bf16 trains (a finite loss) with the passes replayed from CUDA graphs (never turned
#      off);
#   3. its snapshots generate images with guidance in bf16 (8 Heun steps), each network's evaluations from
#      CUDA graphs, on the backend that the generation config's `plugin = auto` chose (the emulated GPU);
#   4. `plugin = auto` keeps to the CPU where a plugin the config names has no CUDA build, or where
#      CUDA_VISIBLE_DEVICES hides the device; processes of one run (mpirun) that would choose differently are
#      refused;
#   5. a device too small (emulated: EDM2_EMU_DEVICE_BYTES) for a training pass or a sampling batch gives one
#      line naming the key to lower, and the smaller pass or batch runs; with batch_gpu = auto the step is done
#      again in halved passes, bytewise the run that names the pass size that fits.
set -uo pipefail
tree=${1:?usage: train_emu.sh EMU_TREE SOURCE_DIR}
src=${2:?usage: train_emu.sh EMU_TREE SOURCE_DIR}
export ASAN_OPTIONS=detect_leaks=0 OPENBLAS_NUM_THREADS=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
train() { # NAME [SETTING...]: one run into $dir/NAME, its log in $dir/NAME.log (debug lines too)
  local name=$1
  shift
  "$tree/edm2host" -v run "$src/tests/configs/tiny_train.ini" --set backend.plugin=cuda --set job.run_dir="$dir/$name" \
    --set training.duration_kimg=0.1 --set training.status_kimg=0.1 --set training.snapshot_kimg=0 \
    --set training.checkpoint_kimg=0 "$@" >"$dir/$name.log" 2>&1 || { cat "$dir/$name.log"; fail "run $name"; }
}
train plain
EDM2_GROUP_OF_ONE=1 train group
grep -q "group of one" "$dir/group.log" || fail "the group-of-one run did not take the data-parallel path"
grep -q "NCCL" "$dir/group.log" || { grep -i "group" "$dir/group.log"; fail "the group-of-one run did not use NCCL"; }
ck=$(cd "$dir/plain" && ls training-state-*.safetensors | tail -1)
cmp "$dir/plain/$ck" "$dir/group/$ck" || fail "group of one: $ck differs from the plain run's"
echo "group of one with NCCL (emulated): $ck bytewise the plain run's"
train bf16 --set network.precision=bf16
grep -q "turned off" "$dir/bf16.log" && { grep "turned off" "$dir/bf16.log"; fail "CUDA graphs turned off in bf16 training"; }
n=$(grep -c "CUDA graph captured" "$dir/bf16.log")
[ "$n" -ge 2 ] || fail "bf16 training: $n CUDA graphs captured, expected the training forward's and the backward's"
loss=$(grep -o '"loss": [-0-9.e+]*' "$dir/bf16/stats.jsonl" | tail -1 | awk '{print $2}')
awk -v l="$loss" 'BEGIN { exit !(l == l + 0 && l > 0 && l < 10) }' || fail "bf16 training: final loss '$loss'"
echo "bf16 training (emulated): loss $loss, $n CUDA graphs captured, never turned off"
gen=$(ls "$dir"/bf16/network-snapshot-*-0.100.safetensors)
"$tree/edm2host" -v run "$src/configs/fashion-mnist-generate.ini" --set generate.net="$gen" \
  --set generate.gnet="${gen%-0.100.safetensors}-0.050.safetensors" --set generate.guidance=1.5 \
  --set generate.seeds=0-3 --set generate.batch=4 --set sampler.num_steps=8 --set generate.outdir="$dir/gen" \
  >"$dir/gen.log" 2>&1 ||
  { cat "$dir/gen.log"; fail "guided generation"; }
grep -q "backend cuda, chosen by plugin = auto: a CUDA device is present" "$dir/gen.log" ||
  fail "generation: the config's [backend] plugin = auto did not choose the (emulated) CUDA device"
grep -q "precision = bf16" "$dir/gen.log" || fail "generation: the snapshot's bf16 not in effect"
grep -q "turned off" "$dir/gen.log" && fail "CUDA graphs turned off in generation"
n=$(grep -c "CUDA graph captured" "$dir/gen.log")
[ "$n" -ge 2 ] || fail "generation: $n CUDA graphs captured, expected at least one per network"
[ -f "$dir/gen/grid.png" ] && [ "$(ls "$dir"/gen/00000?-class*.png | wc -l)" = 4 ] || { ls "$dir/gen"; fail "generation: images missing"; }
echo "guided generation in bf16 (emulated): 4 images, $n CUDA graphs captured, never turned off; backend auto: cuda"
# [backend] plugin = auto keeps to the CPU where a plugin the config names has no CUDA build (a CPU-only sampler).
out=$("$tree/edm2host" check "$src/tests/configs/tiny_train.ini" --set backend.plugin=auto \
  --set plugins.path="$tree/../fixtures" --set sampler.plugin=extra_euler_cpu 2>&1) || { echo "$out"; fail "check"; }
grep -q "backend cpu, chosen by plugin = auto: \[sampler\] plugin 'extra_euler_cpu' has no CUDA build" <<<"$out" ||
  { echo "$out"; fail "backend auto with a CPU-only plugin did not keep to the CPU"; }
echo "backend auto with a CPU-only sampler: cpu"
"$tree/edm2host" plugins | grep -q "^\[backend\] plugin = auto chooses cuda here (a CUDA device is present)" ||
  fail "edm2host plugins does not say that auto chooses the (emulated) GPU"
# ... and where CUDA_VISIBLE_DEVICES hides the device (the emulation honours it as the CUDA runtime does).
out=$(CUDA_VISIBLE_DEVICES= "$tree/edm2host" check "$src/tests/configs/tiny_train.ini" --set backend.plugin=auto 2>&1) ||
  { echo "$out"; fail "check without a visible device"; }
grep -q "backend cpu, chosen by plugin = auto: cuda: no CUDA device" <<<"$out" ||
  { echo "$out"; fail "backend auto without a visible device did not keep to the CPU"; }
echo "backend auto without a visible device: cpu"
# A pass, or a sampling batch, too large for the device's memory (EDM2_EMU_DEVICE_BYTES: 39 MB, between what
# 4 images and what 64 need here): one line saying which key to lower; the smaller one runs.
export EDM2_EMU_DEVICE_BYTES=39000000
train fits --set training.batch=64 --set training.batch_gpu=4
for group in 0 1; do # (the data-parallel path: the processes learn of the failure in the step's gathering)
  out=$(EDM2_GROUP_OF_ONE=$group "$tree/edm2host" -q run "$src/tests/configs/tiny_train.ini" --set backend.plugin=cuda \
    --set job.run_dir="$dir/oom$group" --set training.batch=64 --set training.batch_gpu=64 --set training.duration_kimg=0.1 2>&1) &&
    { echo "$out"; fail "a pass of 64 images ran"; }
  [ "$(wc -l <<<"$out")" = 1 ] && grep -q "error: a pass of 64 images did not fit in memory at kimg 0.000 (set \[training\] batch_gpu to a smaller divisor of 64,.*out of device memory" <<<"$out" ||
    { echo "$out"; fail "a pass too large for the device (EDM2_GROUP_OF_ONE=$group): not the one-line error"; }
done
snap=$(ls "$dir"/fits/network-snapshot-*-0.100.safetensors)
for b in 4 256; do
  out=$("$tree/edm2host" -q run "$src/configs/fashion-mnist-generate.ini" --set generate.net="$snap" --set generate.seeds=0-255 \
    --set generate.batch=$b --set sampler.num_steps=2 --set generate.outdir="$dir/oom-gen$b" 2>&1)
  echo "rc=$? $out" >"$dir/oom-gen$b.log"
done
grep -q "^rc=0 $" "$dir/oom-gen4.log" || { cat "$dir/oom-gen4.log"; fail "sampling in batches of 4 under the memory limit"; }
grep -q "^rc=1 error: sampling 256 images at once did not fit in memory (lower the job's batch" "$dir/oom-gen256.log" ||
  { cat "$dir/oom-gen256.log"; fail "sampling 256 images at once: not the one-line error"; }
unset EDM2_EMU_DEVICE_BYTES
echo "a device too small for a pass of 64 or a sampling batch of 256: one line naming batch_gpu or batch"
# batch_gpu = auto on a device (42 MB) where a pass of 64 does not fit and one of 32 does only once the failed
# pass's memory is back: the network's workspaces given back (without that, the next pass grows them to the
# failed one's size first), and the frees still queued on the stream done before the allocation is tried again
# (the backend's trim_pool; in the _reversed run's deferred queue). The step is done again in passes of 32, with
# one warning giving the reason, and the run is bytewise the run with batch_gpu = 32; on the data-parallel path
# as well, whose processes learn of the failure in the step's gathering.
export EDM2_EMU_DEVICE_BYTES=42000000
train auto --set training.batch=64 --set training.batch_gpu=auto
grep -q "^warning: batch_gpu = auto: a pass of 64 images did not fit in memory: mp_unet: .*out of device memory.*; the step again in passes of 32 images$" "$dir/auto.log" &&
  [ "$(grep -c "did not fit" "$dir/auto.log")" = 1 ] && grep -q "batch_gpu = auto: training in passes of 32 images, 2 per process and step" "$dir/auto.log" ||
  { grep -i "auto\|fit\|memory" "$dir/auto.log"; fail "batch_gpu = auto: not one warning and then passes of 32"; }
EDM2_GROUP_OF_ONE=1 train auto-group --set training.batch=64 --set training.batch_gpu=auto
grep -q "training in passes of 32 images, 2 per process and step" "$dir/auto-group.log" ||
  { grep -i "auto\|fit\|memory" "$dir/auto-group.log"; fail "batch_gpu = auto on the data-parallel path: not passes of 32"; }
unset EDM2_EMU_DEVICE_BYTES
train pass32 --set training.batch=64 --set training.batch_gpu=32
ck=$(cd "$dir/pass32" && ls training-state-*.safetensors | tail -1)
for run in auto auto-group; do cmp "$dir/$run/$ck" "$dir/pass32/$ck" || fail "batch_gpu = auto ($run): $ck differs from batch_gpu = 32's"; done
echo "batch_gpu = auto under a memory limit: passes of 32 after one of 64 failed, bytewise batch_gpu = 32 (also grouped)"
# Processes of one run that would choose differently (one sees a GPU, one does not) are refused, each saying so.
if command -v mpirun >/dev/null && "$tree/edm2host" --version | grep -q "with MPI"; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  command -v ssh >/dev/null || export OMPI_MCA_plm_rsh_agent=false
  auto_check=(check "$src/tests/configs/tiny_train.ini" --set backend.plugin=auto)
  out=$(timeout 120 mpirun -n 1 env CUDA_VISIBLE_DEVICES= "$tree/edm2host" "${auto_check[@]}" : \
    -n 1 "$tree/edm2host" "${auto_check[@]}" 2>&1) && { echo "$out"; fail "processes on different backends ran"; }
  grep -q "plugin = auto chose cpu on process 0 (cuda: no CUDA device .*) but cuda on process 1" <<<"$out" ||
    { echo "$out"; fail "processes on different backends: not the expected error"; }
  echo "backend auto, one process without a device and one with: refused"
else
  echo "SKIP (this part): no mpirun, or an edm2host without MPI"
fi
