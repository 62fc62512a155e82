#!/usr/bin/env bash
# The main job: install what is missing, build, and train LeNet-5 on Fashion-MNIST with BDWP 2:8
# on the default (cpu) backend. Extra arguments go to `sat train`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --main
# Only what training on the cpu backend needs: the CLI, in a build folder of its own (the tests,
# benchmarks, Python module, CUDA kernels and SystemC model are the test command's, scripts/test.sh,
# in build/; without pkg-config the SystemC model is not looked for).
SAT_TARGETS=sat_cli scripts/build.sh build-main -DSAT_BUILD_TESTS=OFF -DSAT_BUILD_BENCH=OFF \
  -DSAT_BUILD_PYTHON=OFF -DCMAKE_CUDA_COMPILER= -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON
out=runs/lenet5-bdwp-2x8
# The main job starts afresh each time (--force) unless it is asked to continue (--resume).
mode=(--force)
for a in "$@"; do [[ "$a" == --resume || "$a" == --force ]] && mode=(); done
if [[ ${#mode[@]} -gt 0 && -e "$out/checkpoint.sat" ]]; then
  echo "run.sh: replacing the earlier run in $out (scripts/run.sh --resume continues it instead)"
fi
./build-main/sat train --model lenet5 --method bdwp --nm 2:8 --out "$out" "${mode[@]}" "$@"
