#!/usr/bin/env bash
# Installs every Debian package bertfit needs to build, test and run its oracles. Idempotent: a second run
# only checks. OpenBLAS is asked for by name, in its OpenMP flavour (one libgomp thread pool shared with our
# own kernels; see docs/architecture.md), because the base image's reference BLAS also links, 20x slower.
set -euo pipefail
PKGS=(
  cmake ninja-build g++ clang pkg-config
  libopenblas-openmp-dev        # CBLAS (sgemm), OpenMP build: BLAS calls inside our parallel regions run single-threaded
  nlohmann-json3-dev            # config.json, tokenizer.json, safetensors headers, trainer_state.json
  libcli11-dev                  # the command line
  libicu-dev libonig-dev        # tokenizers: Unicode ages/categories/NFD, GPT-2 regex as HF compiles it
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libzip-dev zlib1g-dev         # zip oracle in tests, CRC-32
  libclang-rt-14-dev            # libFuzzer and sanitizer runtimes for clang
  python3-torch python3-numpy   # numerics oracle (run with /usr/bin/python3)
  nodejs                        # tokenizer oracle (npm tokenizers@0.23.2; this nodejs ships npm)
  libcpp-httplib-dev curl       # bertfit serve (HTTP server; curl for the demo's --serve and the serving bench)
  wrk                           # the serving bench's load generator at concurrency 1 (bench/serve/predict.lua)
  libopenmpi-dev openmpi-bin    # data-parallel training (mpirun -np N bertfit finetune|pretrain); optional in the build
  libblis4-openmp               # engine benchmark: PyTorch baseline with BLIS-openmp as its BLAS (bench/engine/run.sh b2)
  chromium                      # the HTML report's test renders it headless (tests/report; ~120 MB, ~40 s to install)
  python3-protobuf              # TensorBoard event files read back by an independent reader (tools/report)
  strace                        # e2e: kill -9 injected at each rename of a save (tests/cli/e2e_test.sh, outputs)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -o Acquire::Languages=en -qq
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi
