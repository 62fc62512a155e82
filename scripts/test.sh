#!/usr/bin/env bash
# Every test: install what is missing, build, run the suite with ctest, then rebuild the unit tests
# with AddressSanitizer + UndefinedBehaviorSanitizer and run them again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
(cd build && ctest --output-on-failure -j2 --timeout 900)
if [[ "${SAT_SKIP_SANITIZE:-0}" != 1 ]]; then
  scripts/build.sh build-asan -DSAT_SANITIZE=ON -DSAT_BUILD_BENCH=OFF
  # The sanitizer pass runs the unit tests; the long end-to-end runs are covered above.
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 OMP_NUM_THREADS=2 \
     ctest --output-on-failure -j2 --timeout 900 -LE slow)
fi
