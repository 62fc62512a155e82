#!/usr/bin/env bash
# The main job: install what is missing, build, and train LeNet-5 on Fashion-MNIST with BDWP 2:8
# on the default (cpu) backend. Extra arguments go to `sat train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --minimal
scripts/build.sh build
out=runs/lenet5-bdwp-2x8
# The main job starts afresh each time (--force) unless it is asked to continue (--resume).
mode=(--force)
for a in "$@"; do [[ "$a" == --resume || "$a" == --force ]] && mode=(); done
if [[ ${#mode[@]} -gt 0 && -e "$out/checkpoint.sat" ]]; then
  echo "run.sh: replacing the earlier run in $out (scripts/run.sh --resume continues it instead)"
fi
./build/sat train --model lenet5 --method bdwp --nm 2:8 --out "$out" "${mode[@]}" "$@"
