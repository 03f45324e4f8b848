#!/usr/bin/env bash
# test_mpi.sh BUILD_DIR SOURCE_DIR: data-parallel training over MPI processes on the CPU backend
# (mpirun --oversubscribe): 2 and 3 processes give bitwise the files of one process with the same global
# batch and batch_gpu; a run stopped by SIGINT to one process writes one checkpoint, and resuming with the
# processes ends bitwise where the one-process run ends; different configs on different processes are
# refused at start, and so are the jobs that run in one process (phema) and a batch that the processes
# cannot share; a killed process and a hung one end the run with an error within the time limit.
# Generation over 2 and 3 processes writes bitwise the files of one (PNGs, grid, raw floats), also resumed, and
# stops cleanly on SIGINT to one process, to be resumed to the one-process images. Evaluation over 2 and 3
# processes gives bitwise the reference statistics, grid and values of one, of generated images and a folder,
# and a sweep over 2 processes the table, values and plot of one. Encoding over 2 and 3 processes writes bitwise
# the latents of one, also continued by another number of processes after stop_after or SIGINT.
# Exits 77 (skipped) without mpirun or an edm2host built with MPI.
set -uo pipefail
build=$1 src=$2
host="$build/edm2host"
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; exit 77; }
"$host" --version | grep -q "with MPI" || { echo "SKIP: edm2host was built without MPI"; exit 77; }
# Root in CI; no ssh needed on one machine (the rsh agent is only checked for, never used locally).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
command -v ssh >/dev/null || export OMPI_MCA_plm_rsh_agent=false
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
cfg="$src/tests/configs/tiny_train.ini"
fail() { echo "FAIL: $*"; exit 1; }
# Open MPI keeps allocations to its exit (and unloads the components that made them, so they cannot be
# suppressed by name): no leak checking of the processes mpirun starts; the one-process runs keep it.
mpirun_() { ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --oversubscribe "$@"; }
train() { # DIR KIMG NPROC [--set ...]: one process without mpirun, else mpirun -n NPROC
  local dir=$1 kimg=$2 n=$3
  shift 3
  local cmd=("$host" -q run "$cfg" --set job.run_dir="$tmp/$dir" --set training.duration_kimg=$kimg "$@")
  if [ "$n" = 0 ]; then "${cmd[@]}"; else mpirun_ -n "$n" "${cmd[@]}"; fi
}
pids_of() { # PATTERN: waits until two processes whose command lines match PATTERN exist; prints their pids
  local pids
  for i in $(seq 200); do
    pids=$(pgrep -f "$1" | tr '\n' ' ')
    [ $(echo $pids | wc -w) -ge 2 ] && break
    sleep 0.05
  done
  echo $pids
}
run_pids() { pids_of "edm2host -q run .*run_dir=$tmp/$1 "; } # RUN: the two processes of training run RUN
training() { # RUN: waits until training run RUN has written its first status line (both processes are training)
  for i in $(seq 1500); do
    [ -s "$tmp/$1/stats.jsonl" ] && return
    sleep 0.02
  done
}
same_files() { # A B: every file of run A equals B's byte for byte
  local n=0
  for f in "$tmp/$1"/*.safetensors; do
    cmp -s "$f" "$tmp/$2/$(basename "$f")" || fail "$2/$(basename "$f") differs from $1's"
    n=$((n + 1))
  done
  [ $n -gt 0 ] || fail "run $1 wrote no files"
  echo "ok: $2 has bitwise the $n files of $1"
}

train one2 2 0 --set training.batch_gpu=4 || fail "one process"
train two2 2 2 --set training.batch_gpu=4 || fail "two processes"
same_files one2 two2
train one3 2 0 --set training.batch=12 --set training.batch_gpu=4 || fail "one process, batch 12"
train three3 2 3 --set training.batch=12 --set training.batch_gpu=4 || fail "three processes"
same_files one3 three3
train two_passes 2 2 --set training.batch=16 --set training.batch_gpu=4 || fail "two passes per process"
train one_passes 2 0 --set training.batch=16 --set training.batch_gpu=4 || fail "one process, batch 16"
same_files one_passes two_passes

# Resume with processes (from a checkpoint of the group), and after SIGINT to one process.
train resumed 1 2 --set training.batch_gpu=4 || fail "1 kimg with two processes"
train resumed 2 2 --set training.batch_gpu=4 || fail "resume with two processes"
same_files one2 resumed
train one4 4 0 --set training.batch_gpu=4 --set training.checkpoint_kimg=0 --set training.snapshot_kimg=0 || fail "4 kimg"
train sig 4 2 --set training.batch_gpu=4 --set training.checkpoint_kimg=0 --set training.snapshot_kimg=0 \
  >"$tmp/sig.log" 2>&1 &
pids=$(run_pids sig)
training sig
kill -INT $(echo $pids | awk '{print $NF}') 2>/dev/null
wait $! && echo "note: the run ended before the signal arrived"
ls "$tmp/sig"/training-state-*.safetensors >/dev/null 2>&1 || fail "no checkpoint after SIGINT: $(tail -3 "$tmp/sig.log")"
[ $(ls "$tmp/sig"/training-state-*.safetensors | wc -l) -le 2 ] || fail "more than one checkpoint after SIGINT"
train sig 4 2 --set training.batch_gpu=4 --set training.checkpoint_kimg=0 --set training.snapshot_kimg=0 ||
  fail "resume after SIGINT"
cmp -s "$tmp/one4/training-state-0000004.safetensors" "$tmp/sig/training-state-0000004.safetensors" ||
  fail "resumed after SIGINT: the final checkpoint differs from the one-process run's"
echo "ok: SIGINT to one process: one checkpoint, exit 130, resumed bitwise"

# Different configs on different processes.
out=$(mpirun_ -n 1 "$host" -q run "$cfg" --set job.run_dir="$tmp/mix" --set training.duration_kimg=2 : \
  -n 1 "$host" -q run "$cfg" --set job.run_dir="$tmp/mix" --set training.duration_kimg=3 2>&1) && fail "mixed configs ran"
echo "$out" | grep -q "runs another config than process 0" || fail "mixed configs: $(echo "$out" | head -3)"
echo "ok: different configs refused: $(echo "$out" | grep -m1 "another config")"

# A batch that does not split over the processes (batch_gpu unset) is refused, naming the key.
out=$(train odd 1 2 --set training.batch=7 --set training.batch_gpu=0 2>&1) && fail "batch 7 over 2 processes ran"
echo "$out" | grep -q "\[training\] batch = 7 does not split over 2 processes: make it a multiple of 2" ||
  fail "batch 7 over 2 processes: $(echo "$out" | head -2)"
echo "ok: batch 7 over 2 processes refused"

# Jobs other than training, generation, evaluation and the sweep run in one process.
out=$(mpirun_ -n 2 "$host" -q run "$src/configs/fashion-mnist-phema.ini" 2>&1) && fail "phema ran twice"
echo "$out" | grep -q "the phema job runs in one process" || fail "phema under mpirun: $(echo "$out" | head -2)"
echo "ok: phema under mpirun refused"

# Generation: each process makes every world-th batch, the first writes the grid and the raw floats.
cat >"$tmp/gen.ini" <<INI
[job]
type = generate
[sampler]
plugin = heun
num_steps = 8
[generate]
net = $tmp/one2/network-snapshot-0000002-0.100.safetensors
seeds = 0-22
batch = 4
raw = true
INI
gen() { # OUT NPROC [--set ...]: one process without mpirun, else mpirun -n NPROC
  local out=$1 n=$2
  shift 2
  local cmd=("$host" -q run "$tmp/gen.ini" --set generate.outdir="$tmp/$out" "$@")
  if [ "$n" = 0 ]; then "${cmd[@]}"; else mpirun_ -n "$n" "${cmd[@]}"; fi
}
same_images() { # A B: B has every image, the grid and the raw floats of A, byte for byte
  local n=0
  for f in "$tmp/$1"/*.png "$tmp/$1"/*.safetensors; do
    [ -f "$f" ] || continue
    cmp -s "$f" "$tmp/$2/$(basename "$f")" || fail "$2/$(basename "$f") differs from $1's"
    n=$((n + 1))
  done
  [ $n -gt 2 ] || fail "generation $1 wrote no files"
  echo "ok: $2 has bitwise the $n files of $1"
}
gen gen_one 0 || fail "generate, one process"
gen gen_two 2 || fail "generate, two processes"
same_images gen_one gen_two
gen gen_three 3 || fail "generate, three processes"
same_images gen_one gen_three
# Resumed by two processes: some images and the grid gone (raw floats are not kept by a resumed run).
rm "$tmp/gen_two"/000003.png "$tmp/gen_two"/000016.png "$tmp/gen_two"/000022.png "$tmp/gen_two"/grid.png
gen gen_two 2 --set generate.resume=true --set generate.raw=false || fail "generate, resumed by two processes"
same_images gen_one gen_two
# SIGINT to one of two processes as soon as the first round's images are written: both stop after the same
# round, exit 130; resumed, the images are the one-process run's (a seed's image does not depend on the batch
# or the process).
sig_gen=(--set generate.seeds=0-199 --set sampler.num_steps=16 --set generate.raw=false)
gen gen_sig 2 "${sig_gen[@]}" >"$tmp/gen_sig.log" 2>&1 &
run=$!
for i in $(seq 1000); do # (up to 20 s)
  ls "$tmp/gen_sig"/0*.png >/dev/null 2>&1 && break
  sleep 0.02
done
kill -INT $(pids_of "edm2host -q run $tmp/gen.ini --set generate.outdir=$tmp/gen_sig " | awk '{print $NF}') 2>/dev/null
if wait $run; then
  echo "note: the generation ended before the signal arrived"
else
  made=$(ls "$tmp/gen_sig"/*.png 2>/dev/null | wc -l)
  [ "$made" -lt 200 ] && [ $((made % 8)) = 0 ] || fail "after SIGINT: $made images, expected whole rounds of 8"
  echo "ok: SIGINT to one of two generating processes: both stopped after $made images"
fi
gen gen_sig 2 "${sig_gen[@]}" --set generate.resume=true || fail "generate, resumed after SIGINT"
[ $(ls "$tmp/gen_sig"/0*.png | wc -l) = 200 ] || fail "resumed after SIGINT: not 200 images"
gen gen_sig_one 0 "${sig_gen[@]}" || fail "one process, 200 images"
same_images gen_sig_one gen_sig

# Evaluation: each process measures every world-th batch (of the reference images too), the first adds them
# in batch order: the reference statistics, the grid and the values are bitwise those of one process.
cat >"$tmp/ev.ini" <<INI
[job]
type = evaluate
[data]
source = fashion-mnist
resolution = 8
max_images = 1000
[sampler]
plugin = heun
num_steps = 4
[features]
plugin = dinov2
weights = $src/tests/data/dinov2_ref.safetensors
dim = 64
heads = 4
depth = 2
[evaluate]
net = $tmp/one2/network-snapshot-0000002-0.100.safetensors
seeds = 0-40
batch = 4
metrics = swd,fd_dinov2
swd_min_res = 8
swd_patches = 16
ref_images = 150
INI
ev() { # OUT NPROC JSONL [--set ...]: the reference files and grid into OUT, the values of JSONL's new record into
  # OUT/values
  local out=$1 n=$2 jsonl=$3
  shift 3
  local cmd=("$host" -q run "$tmp/ev.ini" --set evaluate.reference="$tmp/$out/swd.safetensors"
    --set evaluate.fid_reference="$tmp/$out/fd.safetensors" --set evaluate.images_dir="$tmp/$out" "$@")
  if [ "$n" = 0 ]; then "${cmd[@]}"; else mpirun_ -n "$n" "${cmd[@]}"; fi || return 1
  tail -1 "$jsonl" | grep -o '"\(swd\|fd_dinov2\)": [-0-9.e+]*' >"$tmp/$out/values"
}
same_measure() { # A B
  for f in swd.safetensors fd.safetensors grid.png values; do
    cmp -s "$tmp/$1/$f" "$tmp/$2/$f" || fail "evaluation $2: $f differs from $1's"
  done
  echo "ok: evaluation by $2 gives bitwise the reference statistics, grid and values of $1 ($(tr '\n' ' ' <"$tmp/$1/values"))"
}
records="$tmp/one2/metrics.jsonl" # (beside the snapshot)
ev ev_one 0 "$records" || fail "evaluate, one process"
[ $(wc -l <"$tmp/ev_one/values") = 2 ] || fail "evaluate: no swd and fd_dinov2 in the record"
ev ev_two 2 "$records" || fail "evaluate, two processes"
same_measure ev_one ev_two
ev ev_three 3 "$records" || fail "evaluate, three processes"
same_measure ev_one ev_three
# A folder of images (the generation's), measured by two processes, against the statistics saved above.
for n in 0 2; do
  mkdir -p "$tmp/evf$n" && cp "$tmp/ev_one"/*.safetensors "$tmp/evf$n/"
  ev evf$n $n "$tmp/gen_one/metrics.jsonl" --set evaluate.net= --set evaluate.images="$tmp/gen_one" ||
    fail "evaluate a folder, $n processes"
done
cmp -s "$tmp/evf0/values" "$tmp/evf2/values" && cmp -s "$tmp/evf0/grid.png" "$tmp/evf2/grid.png" ||
  fail "a folder evaluated by two processes: other values or grid"
echo "ok: a folder evaluated by two processes: the values of one ($(tr '\n' ' ' <"$tmp/evf2/values"))"
# The sweep: the first process reconstructs, all evaluate, the first writes: the one-process table and values.
sweep() { # OUT NPROC
  local cmd=("$host" -q run "$tmp/ev.ini" --set job.type=sweep --set ema.plugin=power --set sweep.runs="$tmp/one2"
    --set sweep.stds=0.05,0.08 --set sweep.seeds=0-16 --set sweep.batch=4 --set sweep.metrics=swd,fd_dinov2
    --set sweep.swd_min_res=8 --set sweep.swd_patches=16 --set sweep.ref_images=150 --set sweep.outdir="$tmp/$1"
    --set sweep.reference="$tmp/ev_one/swd.safetensors" --set sweep.fid_reference="$tmp/ev_one/fd.safetensors")
  if [ "$2" = 0 ]; then "${cmd[@]}"; else mpirun_ -n "$2" "${cmd[@]}"; fi
}
sweep sweep_one 0 || fail "sweep, one process"
sweep sweep_two 2 || fail "sweep, two processes"
for f in sweep.tsv sweep.md sweep.png; do
  cmp -s "$tmp/sweep_one/$f" "$tmp/sweep_two/$f" || fail "sweep by two processes: $f differs"
done
echo "ok: a sweep by two processes writes bitwise the table, values and plot of one"

# Encoding (the latent presets' dataset tool): each process encodes every world-th batch, the first writes them
# in order: bitwise the latents file of one process (an unreadable image among them); a partial encoding made by
# two processes is continued by three to the same file; SIGINT to one of two processes stops both after the same
# round, exit 130, and the same command continues to the one-process file.
"$build/tests/st_extract" "$src/tests/data/vae_ref.safetensors" small/w/ "$tmp/vae.safetensors" || fail "st_extract"
mkdir -p "$tmp/encsrc/a" "$tmp/encsrc/b" "$tmp/encsig/a"
i=0
for f in "$tmp/gen_one"/0*.png; do # (23 images of 8x8; twice over for the SIGINT check)
  cp "$f" "$tmp/encsrc/$([ $i -lt 12 ] && echo a || echo b)/"
  for k in 1 2; do cp "$f" "$tmp/encsig/a/$k-$(basename "$f")"; done
  i=$((i + 1))
done
echo "not an image" >"$tmp/encsrc/b/broken.png"
cat >"$tmp/enc.ini" <<INI
extends = $src/tests/configs/small_vae.ini
[job]
type = encode
seed = 5
[vae]
weights = $tmp/vae.safetensors
[encode]
source = $tmp/encsrc
resolution = 8
batch = 3
checkpoint_images = 2
INI
enc() { # NAME NPROC [--set ...]: encodes into $tmp/NAME.safetensors; one process without mpirun
  local name=$1 n=$2
  shift 2
  local cmd=("$host" -q run "$tmp/enc.ini" --set encode.dest="$tmp/$name.safetensors" "$@")
  if [ "$n" = 0 ]; then "${cmd[@]}"; else mpirun_ -n "$n" "${cmd[@]}"; fi
}
enc enc_one 0 2>"$tmp/enc_one.log" || fail "encode, one process"
grep -q "skipped: .*broken.png" "$tmp/enc_one.log" || fail "encode: the unreadable image not reported"
for n in 2 3; do
  enc enc_$n $n 2>/dev/null || fail "encode, $n processes"
  cmp -s "$tmp/enc_one.safetensors" "$tmp/enc_$n.safetensors" || fail "encoded by $n processes: another file"
done
enc enc_sample_one 0 --set encode.latents=sample 2>/dev/null || fail "encode (sample), one process"
enc enc_sample_3 3 --set encode.latents=sample 2>/dev/null || fail "encode (sample), three processes"
cmp -s "$tmp/enc_sample_one.safetensors" "$tmp/enc_sample_3.safetensors" || fail "sampled latents by three processes differ"
echo "ok: encoding by 2 and 3 processes writes bitwise the latents of one (posterior moments and a draw)"
enc enc_part 2 --set encode.stop_after=7 2>/dev/null || fail "encode, stopped after 7 images by two processes"
[ -f "$tmp/enc_part.safetensors" ] && fail "encode stopped after 7 images: the file written"
grep -q '"processed": 7,' "$tmp/enc_part.safetensors.partial.json" || fail "encode stopped after 7: $(cat "$tmp/enc_part.safetensors.partial.json")"
enc enc_part 3 2>/dev/null || fail "encode continued by three processes"
cmp -s "$tmp/enc_one.safetensors" "$tmp/enc_part.safetensors" || fail "encode continued by three processes: another file"
echo "ok: an encoding stopped by two processes after 7 images and continued by three: the file of one"
sig_enc=(--set encode.source="$tmp/encsig" --set encode.resolution=96 --set encode.batch=1 --set encode.checkpoint_images=1)
enc enc_sig 2 "${sig_enc[@]}" >"$tmp/enc_sig.log" 2>&1 &
run=$!
for i in $(seq 400); do # (the first round's progress saved: the processes are encoding)
  [ -f "$tmp/enc_sig.safetensors.partial.json" ] && break
  sleep 0.02
done
kill -INT $(pids_of "edm2host -q run $tmp/enc.ini --set encode.dest=$tmp/enc_sig.safetensors " | awk '{print $NF}') 2>/dev/null
if wait $run; then
  echo "note: the encoding ended before the signal arrived"
else
  st=$?
  [ $st = 130 ] || fail "encode after SIGINT: exit status $st (expected 130): $(tail -2 "$tmp/enc_sig.log")"
  [ -f "$tmp/enc_sig.safetensors" ] && fail "encode after SIGINT: the file written"
  done_=$(grep -o '"processed": [0-9]*' "$tmp/enc_sig.safetensors.partial.json" | grep -o '[0-9]*$')
  [ "$done_" -lt 46 ] && [ $((done_ % 2)) = 0 ] || fail "after SIGINT: $done_ images, expected whole rounds of 2"
  echo "ok: SIGINT to one of two encoding processes: both stopped after $done_ images"
fi
enc enc_sig 2 "${sig_enc[@]}" 2>/dev/null || fail "encode, continued after SIGINT"
enc enc_sig_one 0 "${sig_enc[@]}" 2>/dev/null || fail "encode, one process, 46 images"
cmp -s "$tmp/enc_sig_one.safetensors" "$tmp/enc_sig.safetensors" || fail "encode continued after SIGINT: another file"
echo "ok: continued after SIGINT, the file of one process"

# A killed process, then a hung one (SIGSTOP): the run ends with an error within the limit.
for sig in KILL STOP; do
  t0=$(date +%s)
  train dead$sig 1000 2 --set training.batch_gpu=4 --set job.comm_timeout_s=3 >"$tmp/dead$sig.log" 2>&1 &
  run=$!
  pids=$(run_pids dead$sig)
  training dead$sig
  victim=$(echo $pids | awk '{print $NF}')
  kill -$sig $victim
  for i in $(seq 120); do kill -0 $run 2>/dev/null || break; sleep 0.5; done
  kill -0 $run 2>/dev/null && { kill -CONT $victim; kill -KILL $pids; fail "SIG$sig to a process: the run still runs after 60 s"; }
  wait $run && fail "SIG$sig to a process: the run reported success"
  kill -KILL $victim 2>/dev/null
  echo "ok: SIG$sig to one process: the run ended with an error after $(( $(date +%s) - t0 )) s"
done
[ -n "$(grep -h "no answer from the other processes" "$tmp/deadSTOP.log")" ] || fail "hung process: no timeout error"
echo "all data-parallel checks passed"
