#!/usr/bin/env bash
# deps.sh [demo|test|fuzz]: makes sure the Debian packages edm2 needs are installed. As root it installs what is
# missing with apt-get; otherwise it prints the exact apt-get line and exits 1.
set -euo pipefail
what=${1:-build}
pkgs="cmake make gcc g++ pkg-config libinih-dev libjansson-dev zlib1g-dev libpng-dev libjpeg-dev libopenblas-dev"
case "$what" in
  demo) pkgs="$pkgs dataset-fashion-mnist" ;;
  test) pkgs="$pkgs libcmocka-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin python3" ;;
  fuzz) pkgs="$pkgs clang libclang-rt-14-dev libomp-dev" ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "edm2: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "edm2: missing Debian packages. Install them with:"
  echo "  sudo apt-get install -y$missing"
  exit 1
fi
