#!/usr/bin/env bash
# The serving benchmark (issue 14): `bertfit serve` under load from bertfit_serve_bench's client (kept-alive
# connections posting one TEI /predict request per text), server and client on this machine, against the
# offline figures of the same texts: predict's batches of 32 (in-process TextClassifier, model load excluded)
# and one forward pass of one text.
#
#   bench/serve/run.sh [--sizes "mini base"] [--out DIR]
#
# Texts: the demo's kind (Debian package descriptions, title + abstract: tests/fixtures/cli, 337 texts);
# models: random classifiers of the named sizes with the demo's settings (128 tokens, head+tail truncation),
# speed only. Per size: offline figures, then concurrency 1, 8 and 32 (mini: 10,000 requests at 32, with the
# server's RSS before and after), the targets' ratios measured alternately (serve_bench alternate), latency at
# concurrency 1 by wrk (bench/serve/predict.lua; skipped when wrk is missing), then SIGTERM (must exit 0).
# Writes DIR/results.txt (default out/bench-serve). Extra `bertfit serve` options: SERVE_ARGS="...".
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZES="mini base"
OUT=out/bench-serve
while (($#)); do
  case $1 in
    --sizes) SIZES=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
BUILD=${BUILD:-build}
BF=$BUILD/src/cli/bertfit
SB=$BUILD/bench/serve/bertfit_serve_bench
source bench/serve/lib.sh
[[ -x $BF && -x $SB ]] || { echo "build bertfit and bertfit_serve_bench first (cmake --build $BUILD --target bertfit bertfit_serve_bench)" >&2; exit 1; }
mkdir -p "$OUT"
RES=$OUT/results.txt
{
  echo "# $(date -u +%FT%TZ) $(/usr/bin/python3 tools/bench/machine.py --describe), $(nproc) cores"
  echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RES"
awk -F'\t' 'FNR > 1 { print $2 " " $3 }' tests/fixtures/cli/{train,dev,test}.tsv >"$OUT/texts.txt"
[[ -d $OUT/tok ]] || "$BF" train-tokenizer --corpus "$OUT/texts.txt" --out "$OUT/tok" --vocab_size 4000 \
  --min_frequency 2 >"$OUT/tokenizer.log" 2>&1

requests() {  # size concurrency -> requests
  case $1:$2 in
    mini:1) echo 1000 ;; mini:8) echo 3000 ;; mini:32) echo 10000 ;;
    *:1) echo 100 ;; *:8) echo 200 ;; *:32) echo 400 ;;
  esac
}

for size in $SIZES; do
  model=$OUT/model-$size
  [[ -d $model ]] || "$SB" make-model "$OUT/tok" "$size" "$model"
  echo "== $size" | tee -a "$RES"
  reps=3
  [[ $size == base ]] && reps=1  # ~2 minutes per pass on 2 cores
  "$SB" offline "$model" "$OUT/texts.txt" "$reps" | tee -a "$RES"
  [[ $size == mini ]] && "$SB" shapes "$model" | tee -a "$RES"
  # shellcheck disable=SC2086  # SERVE_ARGS: words
  serve_start "$model" "$OUT/serve-$size.log" "$OUT/texts.txt" ${SERVE_ARGS:-}
  pid=$SERVE_PID port=$SERVE_PORT
  for c in 1 8 32; do
    "$SB" load "$port" "$OUT/texts.txt" "$c" "$(requests "$size" "$c")" "$pid" | tee -a "$RES"
  done
  # The targets' ratios, measured alternately (the load of a shared machine changes by the minute).
  if [[ $size == mini ]]; then
    "$SB" alternate "$model" "$port" "$OUT/texts.txt" 200 336 3 | tee -a "$RES"
  else
    "$SB" alternate "$model" "$port" "$OUT/texts.txt" 30 64 2 | tee -a "$RES"
  fi
  # Latency at concurrency 1 by wrk (the load generator of the dependency notes: epoll, requests built once),
  # against one forward pass per text in turn in this process, alternating rounds.
  # Each round's ratio has a forward sweep of one second as its denominator, which drifts with the machine
  # by up to 15% from one sweep to the next; the medians of the rounds' p50s on each side are printed too.
  if command -v wrk >/dev/null; then
    for r in 1 2 3; do
      echo "wrk round=$r $(wrk_round "$model" "$port" "$OUT/texts.txt")" | tee -a "$RES"
    done
    grep '^wrk round=' "$RES" | tail -3 | /usr/bin/python3 -c '
import re, statistics, sys
rows = [dict(re.findall(r"(\w+)=([0-9.]+)", l)) for l in sys.stdin]
w = statistics.median(float(r["p50_ms"]) for r in rows)
f = statistics.median(float(r["forward_ms_p50"]) for r in rows)
print("wrk rounds=%d median_p50_ms=%.3f median_forward_ms_p50=%.3f ratio_of_medians=%.3f" % (len(rows), w, f, w / f))
' | tee -a "$RES"
  fi
  curl -s "http://127.0.0.1:$port/metrics" >"$OUT/metrics-$size.txt"
  grep -E '^te_batch_next_size_(sum|count)|^te_request_failure' "$OUT/metrics-$size.txt" | tee -a "$RES" || true
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  echo "sigterm exit $rc" | tee -a "$RES"
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES"
