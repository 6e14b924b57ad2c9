#!/usr/bin/env bash
# The README's main command: the end-to-end demo. Until the demo issue lands it builds bertfit and shows
# what this build can do so far.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
./build/src/cli/bertfit info
./build/src/cli/bertfit --help
