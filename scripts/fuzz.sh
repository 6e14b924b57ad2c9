#!/usr/bin/env bash
# Builds every libFuzzer target (clang, ASan + UBSan) and runs each for SECONDS (default 45), starting from
# its seed corpus fuzz/corpus/<name>/ when there is one. A crash fails the script and leaves the input in
# build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-45}
# The libraries are instrumented for coverage too (-fsanitize=fuzzer-no-link), so the fuzzer sees inside them.
# -g1 (line tables) is enough for the crash reports' file:line and compiles faster than RelWithDebInfo's -g.
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DBERTFIT_FUZZ=ON \
  -DBERTFIT_TESTS=OFF -DBERTFIT_BENCH=OFF -DBERTFIT_SANITIZE=address,undefined \
  -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
targets=$(cd fuzz && ls fuzz_*.cpp 2>/dev/null | sed 's/\.cpp$//')
[[ -n "$targets" ]] || { echo "fuzz: no targets"; exit 0; }
cmake --build build-fuzz -j "$(nproc)" --target $targets
mkdir -p build-fuzz/crashes
# One fuzzer per core at a time (each is single-threaded): the same seconds per target in half the wall time
# on two cores.
fuzz_one() {
  local t=$1 work=build-fuzz/corpus/$1 seeds=()
  mkdir -p "$work"
  [[ -d fuzz/corpus/$t ]] && seeds=(fuzz/corpus/$t)
  ASAN_OPTIONS=detect_leaks=0 ./build-fuzz/fuzz/$t "$work" "${seeds[@]}" -max_total_time="$SECONDS_PER_TARGET" \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -artifact_prefix=build-fuzz/crashes/$t- -print_final_stats=1 2>&1 |
    grep -E "^(stat::number_of_executed_units|==|SUMMARY|Done)|ERROR" | sed "s/^/$t: /" || true
}
running=0
for t in $targets; do
  echo "fuzz: $t for ${SECONDS_PER_TARGET}s"
  fuzz_one "$t" &
  running=$((running + 1))
  if ((running >= $(nproc))); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
if ls build-fuzz/crashes/* >/dev/null 2>&1; then
  echo "fuzz: a crash was found: $(ls build-fuzz/crashes/)"
  exit 1
fi
