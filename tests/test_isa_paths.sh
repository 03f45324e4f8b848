#!/usr/bin/env bash
# test_isa_paths.sh BUILD_DIR SOURCE_DIR: runs check-ref with the GEMM kernels forced to each instruction set
# this CPU has (EDM2_GEMM_ISA=scalar/avx2, and the best), and checks that every forward output (eval and
# sampling) is bitwise identical across them: the kernels compute the same per-element FMA sequence.
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ref="$src/tests/data/edm2_small.safetensors"
for isa in scalar avx2 best; do
  EDM2_GEMM_ISA=$isa "$build/edm2host" -q check-ref "$ref" --dump "$tmp/$isa.safetensors" >"$tmp/$isa.log" ||
    { cat "$tmp/$isa.log"; echo "check-ref failed with EDM2_GEMM_ISA=$isa"; exit 1; }
done
for isa in scalar avx2; do
  "$build/tests/st_compare" "$tmp/$isa.safetensors" "$tmp/best.safetensors" 0 eval/ sample/
done
echo "forward outputs bitwise identical across scalar, avx2 and the best kernels"
