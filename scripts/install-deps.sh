#!/usr/bin/env bash
# Installs every Debian package SAT needs. Idempotent: packages already present are skipped,
# and apt is not touched at all when nothing is missing.
# Usage: scripts/install-deps.sh [--main | --minimal]
#   --main:    only what the main job (scripts/run.sh: the sat CLI, training on the cpu backend) needs
#   --minimal: what the CPU build and its tests need
#   (none):    everything the test command uses (scripts/test.sh)
set -euo pipefail

main=(build-essential cmake pkg-config git ca-certificates libhwy-dev libdnnl-dev
      nlohmann-json3-dev zlib1g-dev libboost-program-options-dev dataset-fashion-mnist)
# libopenblas0-openmp: Debian's PyTorch (the benchmarks' baseline and the cross-checks) calls the
# system BLAS, and without OpenBLAS that is the reference BLAS, which made its dense epoch about
# 3x slower than a PyTorch user sees (docs/performance.md). SAT itself links no BLAS.
core=("${main[@]}" libgtest-dev googletest libbenchmark-dev
      python3 python3-numpy python3-torch libopenblas0-openmp gnuplot-nox)
optional=(verilator iverilog libsystemc-dev libxrt-dev libxrt-utils uuid-dev yosys libboost-all-dev
          libboost-mpi-dev openmpi-bin
          pybind11-dev python3-dev python3-pytest clang libclang-rt-14-dev)

case "${1:-}" in
  --main) want=("${main[@]}") ;;
  --minimal) want=("${core[@]}") ;;
  "") want=("${core[@]}" "${optional[@]}") ;;
  *) echo "install-deps: unknown option '$1' (usage: scripts/install-deps.sh [--main | --minimal])" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if (( ${#missing[@]} == 0 )); then
  echo "install-deps: all ${#want[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
