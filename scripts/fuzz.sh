#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan, build-fuzz/) and runs each for
# SECONDS (default 60) from its seed corpus in tests/fuzz_corpus/. Usage: scripts/fuzz.sh [SECONDS]
# Exits non-zero when a target finds a crash, a hang, a leak, UB or an allocation over the limit,
# naming the target and the file that reproduces it. docs/testing.md, "Fuzzing".
#   SAT_FUZZ_TARGETS="npy idx"  run only these targets
#   SAT_FUZZ_KEEP=1             keep the scratch directory (grown corpora, logs) after a clean run
#   SAT_JOBS=N                  build jobs, and targets fuzzed at once (default 2: one per core)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2; }
targets=(${SAT_FUZZ_TARGETS:-npy idx model checkpoint trace})

# The largest input worth trying per target: a few times the largest seed.
declare -A max_len=([npy]=4096 [idx]=4096 [model]=8192 [checkpoint]=32768 [trace]=65536)
declare -A dict=([model]=fuzz/json.dict [checkpoint]=fuzz/json.dict [trace]=fuzz/json.dict)

cxx=$(command -v clang++-14 || command -v clang++ || true)
cc=$(command -v clang-14 || command -v clang || true)
[[ -n $cxx && -n $cc ]] || { echo "fuzz: clang not found (scripts/install-deps.sh installs it)" >&2; exit 2; }

# A build of its own: every source compiled by clang with the sanitizers and fuzzer coverage; the
# tests, benchmarks and CUDA are left out, and only the fuzz targets are built.
dir=build-fuzz
cmake -S . -B "$dir" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" -DSAT_FUZZ=ON \
  -DSAT_BUILD_TESTS=OFF -DSAT_BUILD_BENCH=OFF -DSAT_NATIVE=OFF -DCMAKE_CUDA_COMPILER= \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" >"$dir.configure.log" 2>&1 || {
  cat "$dir.configure.log"; exit 1; }
echo "fuzz: building ${targets[*]/#/fuzz_} in $dir (log: $dir.build.log)"
cmake --build "$dir" -j"${SAT_JOBS:-2}" --target "${targets[@]/#/fuzz_}" >"$dir.build.log" 2>&1 || {
  tail -40 "$dir.build.log"; exit 1; }

# Runs never write into tests/: corpora, crash files and the parsers' scratch files go here.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sat-fuzz.XXXXXX")
# The targets that parse from a path rewrite a file per input: on tmpfs, since a disk file system
# flushes a truncated-and-rewritten file on close (ext4's auto_da_alloc), which makes runs 10x slower.
files=$scratch/files
if [[ -d /dev/shm && -w /dev/shm ]]; then files=$(mktemp -d /dev/shm/sat-fuzz.XXXXXX); fi
trap 'rm -rf "$files"' EXIT
export OMP_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target's run, in the background: its exit status goes to $scratch/$t/rc.
fuzz_one() {
  local t=$1 rc=0
  mkdir -p "$scratch/$t/corpus" "$scratch/$t/artifacts" "$files/$t"
  cp tests/fuzz_corpus/"$t"/* "$scratch/$t/corpus/"
  # -malloc_limit_mb: no input of these sizes justifies one allocation of 256 MiB (the largest
  # honest one is a trace blob at zlib's 1032:1 from 64 KiB); a larger one is a size taken from a
  # header without a bound by the file. -rss_limit_mb bounds the whole process.
  TMPDIR=$files/$t "$dir/fuzz/fuzz_$t" "$scratch/$t/corpus" -max_total_time="$seconds" \
    -max_len="${max_len[$t]}" ${dict[$t]:+-dict="${dict[$t]}"} -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=256 -print_final_stats=1 \
    -artifact_prefix="$scratch/$t/artifacts/" >"$scratch/$t/fuzz.log" 2>&1 || rc=$?
  echo "$rc" >"$scratch/$t/rc"
}

for t in "${targets[@]}"; do
  [[ -d tests/fuzz_corpus/$t ]] || { echo "fuzz: no corpus tests/fuzz_corpus/$t" >&2; exit 2; }
done
# The targets run side by side, as many at once as there are build jobs (a core each), so that
# CI spends SECONDS per round rather than per target; each still fuzzes for SECONDS.
jobs=${SAT_JOBS:-2}
running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then wait -n; running=$((running - 1)); fi
done
wait

failed=()
for t in "${targets[@]}"; do
  log=$scratch/$t/fuzz.log
  rc=$(cat "$scratch/$t/rc")
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  if [[ $rc == 0 ]]; then
    echo "fuzz_$t: ${seconds} s, $runs runs, ${cov:-cov: ?}, no findings"
  else
    failed+=("$t")
    echo "fuzz_$t: FINDING (exit $rc) after $runs runs"
    grep -E '^==[0-9]+== ?ERROR|runtime error|terminate called|what\(\)|SUMMARY|ALARM|out-of-memory|malloc\(|Test unit written' "$log" | head -8 |
      sed 's/^/  /'
    for f in "$scratch/$t/artifacts"/*; do
      if [[ -e $f ]]; then echo "  reproduce: $dir/fuzz/fuzz_$t $f"; fi
    done
    echo "  log: $log"
  fi
done

if ((${#failed[@]})); then
  echo "fuzz: findings in ${failed[*]}; scratch kept in $scratch"
  exit 1
fi
if [[ ${SAT_FUZZ_KEEP:-0} == 1 ]]; then echo "fuzz: scratch kept in $scratch"; else rm -rf "$scratch"; fi
echo "fuzz: no findings"
