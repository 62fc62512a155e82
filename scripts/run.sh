#!/usr/bin/env bash
# The main job: install what is missing, build, and train LeNet-5 on Fashion-MNIST with BDWP 2:8
# on the default (cpu) backend. Extra arguments go to `sat train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --minimal
scripts/build.sh build
./build/sat train --model lenet5 --method bdwp --nm 2:8 --out runs/lenet5-bdwp-2x8 "$@"
