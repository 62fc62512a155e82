#!/usr/bin/env bash
# Every test: install what is missing, build, run the suite with ctest, rebuild the unit tests with
# AddressSanitizer + UndefinedBehaviorSanitizer and run them again, then fuzz the file parsers.
#   SAT_SKIP_SANITIZE=1   no sanitizer pass        SAT_FUZZ_SECONDS=N   seconds per fuzz target (30)
#   SAT_SKIP_FUZZ=1       no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
phase() { echo "== test.sh: $* ($((SECONDS - start)) s)"; }

phase "install-deps"
scripts/install-deps.sh
phase "build"
scripts/build.sh build
phase "ctest"
(cd build && ctest --output-on-failure -j2 --timeout 900)
if [[ "${SAT_SKIP_SANITIZE:-0}" != 1 ]]; then
  phase "sanitizer build"
  # -O1, as the sanitizers' own docs advise: half the compile time of -O3 (37 s against 17 s for
  # host/src/model.cpp under ASan), and the checks are the same. The HLS kernel keeps its own -O3.
  scripts/build.sh build-asan -DSAT_SANITIZE=ON -DSAT_BUILD_BENCH=OFF \
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG"
  phase "sanitizer ctest"
  # The sanitizer pass runs the unit tests; the long end-to-end runs are covered above: the slow
  # label, and `sat sim --evaluate` (every model and method on the SystemC model: 35 s plain, 187 s
  # under ASan, a fifth of this pass; the sim code it runs is under ASan in the sim suites).
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=2 \
     ctest --output-on-failure -j2 --timeout 900 -LE slow -E '^SimCli\.EvaluateAppliesSetAndSaysSo$')
fi
if [[ "${SAT_SKIP_FUZZ:-0}" != 1 ]]; then
  phase "fuzz"
  scripts/fuzz.sh "${SAT_FUZZ_SECONDS:-30}"
fi
phase "done"
