#!/usr/bin/env bash
# test_mpi.sh BUILD_DIR SOURCE_DIR: data-parallel training over MPI processes on the CPU backend
# (mpirun --oversubscribe): 2 and 3 processes give bitwise the files of one process with the same global
# batch and batch_gpu; a run stopped by SIGINT to one process writes one checkpoint, and resuming with the
# processes ends bitwise where the one-process run ends; different configs on different processes are
# refused at start, and so are jobs other than training and a batch that the processes cannot share; a
# killed process and a hung one end the run with an error within the time limit.
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
pids_of() { # RUN: waits until the two processes of run RUN exist; prints their pids
  local pids
  for i in $(seq 200); do
    pids=$(pgrep -f "edm2host -q run .*run_dir=$tmp/$1 " | tr '\n' ' ')
    [ $(echo $pids | wc -w) -ge 2 ] && break
    sleep 0.05
  done
  echo $pids
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
pids=$(pids_of sig)
sleep 0.5
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

# Jobs other than training run in one process.
out=$(mpirun_ -n 2 "$host" -q run "$src/configs/fashion-mnist-generate.ini" 2>&1) && fail "generate ran twice"
echo "$out" | grep -q "the generate job runs in one process" || fail "generate under mpirun: $(echo "$out" | head -2)"
echo "ok: generate under mpirun refused"

# A killed process, then a hung one (SIGSTOP): the run ends with an error within the limit.
for sig in KILL STOP; do
  t0=$(date +%s)
  train dead$sig 1000 2 --set training.batch_gpu=4 --set job.comm_timeout_s=3 >"$tmp/dead$sig.log" 2>&1 &
  run=$!
  pids=$(pids_of dead$sig)
  sleep 1
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
