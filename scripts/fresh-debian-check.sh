#!/usr/bin/env bash
# fresh-debian-check.sh: proves the README's promise on a machine that has nothing installed. Builds a
# minimal Debian 12 root (debootstrap --variant=minbase), copies this working tree into two copies of it
# (what `git clone` would give: tracked and not-ignored files) and runs, side by side, as the very first
# command in each, `./demo` (shortened: DEMO_ARGS, default 2 kimg; it must end with samples.png) and `./test`.
# Needs root, chroot and bind mounts, and network access to the Debian mirror; where the machine cannot
# provide those it says so and exits 77 (skipped). CI runs it; run it yourself before every change that
# touches set-up (scripts/, demo, test, CMakeLists.txt, the packages a part needs).
#
#   sudo scripts/fresh-debian-check.sh [WORK_DIR]      (WORK_DIR default /var/tmp/edm2-fresh, removed after)
#   sudo scripts/fresh-debian-check.sh --base-only [WORK_DIR]
# --base-only makes the minimal root alone and keeps it in WORK_DIR, for a later run to take (CI makes it
# in the background while it builds: the download overlaps the compiling).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
base_only=0
if [ "${1:-}" = --base-only ]; then base_only=1 && shift; fi
work=${1:-/var/tmp/edm2-fresh}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
demo_args=${DEMO_ARGS:---set training.duration_kimg=2 --set training.status_kimg=1}
skip() { echo "fresh-debian-check: SKIPPED: $*"; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot)"
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null || skip "cannot install debootstrap"
fi
mounted=()
cleanup() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  # Never remove a tree that still has the host's /dev or /proc mounted inside it.
  if grep -q " $work/" /proc/mounts; then
    echo "fresh-debian-check: mounts remain under $work; not removing it"
  else
    rm -rf "$work"
  fi
}
# What an interrupted run left mounted is never removed (rm would go into the host's /dev and /proc).
if grep -q " $work/" /proc/mounts; then
  echo "fresh-debian-check: mounts remain under $work from an earlier run; unmount them (umount -l) first"
  exit 1
fi
start=$(date +%s)
if [ $base_only = 0 ] && [ -f "$work/base.done" ]; then # made beforehand by --base-only: all but it goes
  trap cleanup EXIT
  find "$work" -mindepth 1 -maxdepth 1 ! -name base ! -name base.done -exec rm -rf {} +
  echo "== debootstrap: the root made beforehand ($(cat "$work/base.done"))"
else
  [ $base_only = 1 ] || trap cleanup EXIT
  rm -rf "$work"
  mkdir -p "$work"
  echo "== debootstrap --variant=minbase bookworm ($mirror)"
  debootstrap --variant=minbase bookworm "$work/base" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -5 "$work/debootstrap.log"; skip "debootstrap could not build a root here"; }
  echo "   $(( $(date +%s) - start )) s"
  if [ $base_only = 1 ]; then
    echo "debootstrap of $mirror in $(( $(date +%s) - start )) s" >"$work/base.done"
    exit 0
  fi
fi
mkdir -p "$work/probe"
mount --bind /proc "$work/probe" 2>/dev/null || skip "bind mounts are not permitted here"
umount "$work/probe"

# prepare NAME: a fresh copy of the root with the tree in /root/edm2 and /proc, /sys, /dev mounted.
prepare() {
  local root="$work/$1"
  cp -a "$work/base" "$root"
  mkdir -p "$root/root/edm2"
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    tar --null -T - -cf - 2>/dev/null) | tar -C "$root/root/edm2" -xf -
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  for m in proc sys dev; do
    mount --bind "/$m" "$root/$m" && mounted+=("$root/$m")
  done
}
# run_first NAME COMMAND: COMMAND as the first command in root NAME, its output in NAME.log; its seconds in
# NAME.time, or NAME.failed.
run_first() {
  local name=$1 cmd=$2 t0=$(date +%s)
  if chroot "$work/$name" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb \
      bash -c "cd /root/edm2 && $cmd" >"$work/$name.log" 2>&1; then
    echo $(( $(date +%s) - t0 )) >"$work/$name.time"
  else
    touch "$work/$name.failed"
  fi
}
# report NAME COMMAND: what run_first left.
report() {
  local name=$1 cmd=$2
  if [ -f "$work/$name.failed" ]; then
    tail -30 "$work/$name.log"
    echo "fresh-debian-check: '$cmd' FAILED on a fresh root (log above)"
    return 1
  fi
  echo "== $name: $cmd (first command on a fresh Debian 12)"
  grep -E "^edm2: installing" "$work/$name.log" | cut -c1-150 || true
  tail -3 "$work/$name.log"
  echo "   $name passed in $(cat "$work/$name.time") s"
}

# Both at once, each in its own root: their downloads and package installs overlap the other's build.
demo_cmd="./demo $demo_args && test -s runs/fashion-mnist-demo/samples.png"
prepare demo
prepare test
run_first demo "$demo_cmd" &
run_first test "./test" &
wait
rc=0
report demo "$demo_cmd" || rc=1
report test "./test" || rc=1
[ $rc = 0 ] || exit 1
echo "== fresh-debian-check passed in $(( $(date +%s) - start )) s"
