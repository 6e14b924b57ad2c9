#!/usr/bin/env bash
# The low-precision benchmark (issue 13), one command, every figure from this run on this machine:
#   BERT-base inference, seq 128, batch 1 / 8 / 32: bertfit fp32, bertfit int8 (bertfit quantize's
#     arithmetic), ONNX Runtime fp32 (onnxruntime-node, as bench/engine/run.sh installs it);
#   BERT-base fine-tuning step, seq 128, batch 32: bertfit fp32 and --bf16, PyTorch fp32 and
#     torch.autocast("cpu", dtype=torch.bfloat16);
#   the linear layers' GEMMs alone: ours against oneDNN (bertfit_lowp_gemm_bench).
# Cases alternate (fp32 / low precision next to each other) and each round repeats the whole set, so a drift
# of the machine's speed hits both sides of a ratio alike; compare ratios within one run only.
#
#   bash bench/lowp/run.sh [--rounds N] [--no-train] [--no-infer] [--no-ort] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
ROUNDS=2 TRAIN=1 INFER=1 ORT=1 BUILD=${BERTFIT_BENCH_BUILD:-build} OUT=""
while (($#)); do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --no-train) TRAIN=0 ;;
    --no-infer) INFER=0 ORT=0 ;;
    --no-ort) ORT=0 ;;
    --out) OUT=$2; shift ;;
    *) echo "usage: $0 [--rounds N] [--no-train] [--no-infer] [--no-ort] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
OUT=${OUT:-$BUILD/lowp_bench_out}
mkdir -p "$OUT"
PY=/usr/bin/python3
cmake --build "$BUILD" -j2 --target bertfit_engine_bench bertfit_lowp_gemm_bench >/dev/null
BENCH=$BUILD/bench/engine/bertfit_engine_bench
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
if ((ORT)) && [[ ! -d $BUILD/ort/node_modules/onnxruntime-node ]]; then
  mkdir -p "$BUILD/ort" && cp tools/bench/package.json "$BUILD/ort/package.json"
  (cd "$BUILD/ort" && npm install --no-audit --no-fund --ignore-scripts >/dev/null 2>&1) || ORT=0
fi
if ((ORT)) && [[ ! -f $OUT/base.onnx ]]; then
  "$PY" tools/bench/torch_bench.py --export-onnx "$OUT/base.onnx" --model base >/dev/null 2>&1 || ORT=0
fi
# One line per case: engine, case, batch, precision, median ms.
row() { "$PY" -c 'import json,sys
r = json.loads(sys.argv[1][len("RESULT "):])
print("%-8s %-6s b%-3d %-5s median %9.1f ms  [%0.1f-%0.1f]" % (r["engine"], r["case"], r["batch"], r.get("precision", "fp32"), r["median_ms"], r["min_ms"], r["max_ms"]))' "$1"; }
echo "== $(/usr/bin/python3 tools/bench/machine.py --describe), $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== bf16: $("$BUILD/src/cli/bertfit" info | sed -n 's/^bf16: *//p'); int8: $("$BUILD/src/cli/bertfit" info | sed -n 's/^int8: *//p')"
for ((round = 1; round <= ROUNDS; ++round)); do
  echo "== round $round"
  ((INFER)) && for b in 1 8 32; do
    for p in fp32 int8; do
      l=$("$BENCH" --model base --case infer --batch $b --seq 128 --threads 2 --warmup 1 --repeats 3 --precision $p | grep '^RESULT ')
      echo "$l" >>"$OUT/results.jsonl"; row "$l"
    done
    if ((ORT)); then
      l=$(NODE_PATH="$ROOT/$BUILD/ort/node_modules" node tools/bench/ort_bench.js --onnx "$OUT/base.onnx" --model base \
        --batch $b --seq 128 --threads 2 --warmup 1 --repeats 3 --gflop 0 | grep '^RESULT ')
      echo "$l" >>"$OUT/results.jsonl"; row "$l"
    fi
  done
  if ((TRAIN)); then
    for p in fp32 bf16; do
      l=$("$BENCH" --model base --case train --batch 32 --seq 128 --threads 2 --warmup 1 --repeats 2 --precision $p | grep '^RESULT ')
      echo "$l" >>"$OUT/results.jsonl"; row "$l"
      flag=""; [[ $p == bf16 ]] && flag=--bf16
      l=$("$PY" tools/bench/torch_bench.py --model base --case train --batch 32 --seq 128 --threads 2 --warmup 1 --repeats 2 $flag | grep '^RESULT ')
      echo "$l" >>"$OUT/results.jsonl"; row "$l"
    done
  fi
done
echo "== GEMMs of the linear layers (GFLOP/s)"
for m in 128 4096; do "$BUILD/bench/lowp/bertfit_lowp_gemm_bench" --rows $m --rounds 3; done
