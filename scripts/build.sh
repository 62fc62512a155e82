#!/usr/bin/env bash
# Configures and builds SAT. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
#   SAT_TARGETS="t1 t2"   build only these targets (default: everything)
#   SAT_JOBS=N            parallel jobs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >"$dir.configure.log" 2>&1 || {
  cat "$dir.configure.log"; exit 1; }
grep -A8 "SAT optional parts" "$dir.configure.log" | sed 's/^-- //'
targets=()
for t in ${SAT_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$dir" -j"${SAT_JOBS:-2}" "${targets[@]}"
