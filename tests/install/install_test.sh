#!/usr/bin/env bash
# install_test.sh BUILD EXAMPLES WORK LIBDIR CXX CMAKE BACKENDS: the installed package works for a
# consumer (BACKENDS: the build's backends, comma-separated).
#  1. `cmake --install BUILD --prefix WORK/prefix`;
#  2. every installed header compiles with nothing but the package's flags (no source-tree path);
#  3. EXAMPLES configured and built out of tree with find_package(sat) from that prefix only; its
#     train_lenet5 trains 3 steps on the cpu backend with the model found through SAT_MODELS_DIR,
#     reloads its checkpoint and evaluates; every other backend of the build opens from the
#     installed table and trains a step (cuda may instead say it has no GPU, fpga that it has no
#     xclbin); prune_nm round-trips
#     a 2:8 matrix;
#  4. train_lenet5 built again with plain g++ and `pkg-config --cflags --libs sat`, and run.
set -euo pipefail
build=$1 examples=$2 work=$3 libdir=$4 cxx=$5 cmake=$6 backends=$7
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"
cd "$work"

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect FILE REGEX: FILE's output must have a line matching REGEX
expect() { grep -Eq "$2" "$1" || { cat "$1"; fail "no line matching '$2' in $1"; }; }

step "install into $prefix"
"$cmake" --install "$build" --prefix "$prefix" > install.log
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
[ -f "$PKG_CONFIG_PATH/sat.pc" ] || fail "no sat.pc in $PKG_CONFIG_PATH"
[ -f "$prefix/share/sat/models/lenet5.json" ] || fail "the models are not installed"

step "every installed header compiles with the package's flags"
for h in "$prefix"/include/sat/*.hpp "$prefix"/include/sat/arch/*.hpp; do
  echo "#include <${h#"$prefix"/include/}>"
done > all_headers.cpp
# (a header including one that is not installed fails here: only the prefix is on the path)
"$cxx" -std=c++20 -fsyntax-only $(pkg-config --cflags sat) all_headers.cpp

step "host/examples against the prefix with find_package(sat)"
"$cmake" -S "$examples" -B examples -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
         -DCMAKE_BUILD_TYPE=Release -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF > configure.log
expect examples/CMakeCache.txt "^sat_DIR:PATH=$prefix/"
"$cmake" --build examples -j2 > build.log

examples/train_lenet5 --data synthetic --train-limit 512 --test-limit 128 --stop-after-steps 3 \
                      --out run-cmake > train-cmake.log
expect train-cmake.log '^trained 3 steps on cpu, last loss [0-9]+\.[0-9]+$'
expect train-cmake.log '^reloaded checkpoint: test accuracy [0-9.]+%, loss [0-9]+\.[0-9]+$'
for b in ${backends//,/ }; do
  [ "$b" = cpu ] && continue
  if examples/train_lenet5 --backend "$b" --data synthetic --train-limit 128 --test-limit 32 \
       --stop-after-steps 1 --out "run-$b" > "train-$b.log" 2>&1; then
    expect "train-$b.log" "^trained 1 steps on $b, last loss [0-9]+\.[0-9]+\$"
  elif [ "$b" = cuda ] && grep -q "^error: backend 'cuda': the NVIDIA driver" "train-$b.log"; then
    # a GPU-less machine: the backend is in the table and its make function ran
    echo "backend cuda: linked, no usable GPU here"
  elif [ "$b" = fpga ] && grep -q "^error: device 'fpga' needs the SAT xclbin" "train-$b.log"; then
    # no xclbin given (nor a card here): the XRT driver is linked and its device was being opened
    echo "backend fpga: linked, no xclbin or card here"
  else
    cat "train-$b.log"
    fail "backend $b does not train from the installed package"
  fi
done
examples/prune_nm 2:8 > prune.log
expect prune.log 'decompressed matches the mask'

step "train_lenet5 with g++ and pkg-config"
"$cxx" -std=c++20 -O2 "$examples/train_lenet5.cpp" -o train_lenet5_pc $(pkg-config --cflags --libs sat)
./train_lenet5_pc --model "$(pkg-config --variable=modelsdir sat)/lenet5.json" --data synthetic \
                  --train-limit 256 --test-limit 128 --stop-after-steps 2 --out run-pc > train-pc.log
expect train-pc.log '^trained 2 steps on cpu, last loss [0-9]+\.[0-9]+$'
expect train-pc.log '^reloaded checkpoint: test accuracy'
cat train-cmake.log train-pc.log
echo "install_package: passed"
