#!/usr/bin/env bash
# The thread pool's waiting policies (core/wait_policy.h; issue 12, item 5) on a quiet machine and on a shared
# one, in one command:
#
#   bash bench/engine/waiting.sh [--rounds N] [--model mini|base] [--batch B] [--repeats R] [--loads "quiet busy pair"]
#                                [--old BIN] [--spins "20 300"] [--policies "adaptive passive active"]
#
# Inference (bertfit_engine_bench --case infer, seq 128, 2 threads), each policy in turn within a round:
# BERTFIT_WAIT_POLICY=adaptive (the default), passive, active. Loads: quiet (nothing else; run it on a quiet
# machine), busy (two busy loops on the cores, started by this script), pair (two copies of the benchmark at
# once, both with the same policy). --old BIN adds an engine bench built before the pool (libgomp, with
# OMP_WAIT_POLICY=PASSIVE, bertfit's old default). --spins adds the adaptive policy with other spin budgets
# (BERTFIT_SPIN_US; the default is 100 us); --policies picks which of the three plain policies run. Shared
# cores make the times bimodal (where the scheduler puts the threads), so use 8 rounds or more there: the
# summary gives the median of the runs' medians, the mean, and every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=6 MODEL=mini BATCH=1 REPEATS=100 LOADS="quiet busy pair" OLD="" SPINS="" POLICIES="adaptive passive active"
BUILD=${BERTFIT_BENCH_BUILD:-build-perf}
while (($#)); do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --model) MODEL=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --repeats) REPEATS=$2; shift ;;
    --loads) LOADS=$2; shift ;;
    --old) OLD=$2; shift ;;
    --spins) SPINS=$2; shift ;;
    --policies) POLICIES=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
BENCH=$BUILD/bench/engine/bertfit_engine_bench
[[ -x $BENCH ]] || { echo "no $BENCH: build with -DBERTFIT_BENCH=ON (or set BERTFIT_BENCH_BUILD)" >&2; exit 2; }
PY=/usr/bin/python3
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
ARGS=(--case infer --model "$MODEL" --batch "$BATCH" --seq 128 --threads 2 --warmup 20 --repeats "$REPEATS")
CONFIGS=()
for p in $POLICIES; do CONFIGS+=("$p|BERTFIT_WAIT_POLICY=$p|$BENCH"); done
for us in $SPINS; do CONFIGS+=("adaptive-spin-${us}us|BERTFIT_WAIT_POLICY=adaptive BERTFIT_SPIN_US=$us|$BENCH"); done
[[ -n $OLD ]] && CONFIGS+=("old-libgomp-passive|OMP_WAIT_POLICY=PASSIVE|$OLD")

median_of() { "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read().split("RESULT ",1)[1])["median_ms"])'; }
echo "== $(/usr/bin/python3 tools/bench/machine.py --describe), $(nproc) cores; $MODEL b$BATCH; load $(cut -d' ' -f1-3 /proc/loadavg)"
for load in $LOADS; do
  busy=()
  if [[ $load == busy ]]; then
    for _ in 1 2; do (while :; do :; done) & busy+=($!); done
    sleep 1
  fi
  for r in $(seq "$ROUNDS"); do
    for cfg in "${CONFIGS[@]}"; do
      IFS='|' read -r label envs bin <<<"$cfg"
      if [[ $load == pair ]]; then
        env $envs "$bin" "${ARGS[@]}" >"$OUT/a" 2>/dev/null & a=$!
        env $envs "$bin" "${ARGS[@]}" >"$OUT/b" 2>/dev/null & b=$!
        wait $a $b
        for f in a b; do echo "$load $label $(median_of <"$OUT/$f")"; done
      else
        echo "$load $label $(env $envs "$bin" "${ARGS[@]}" 2>/dev/null | median_of)"
      fi
    done
  done | tee -a "$OUT/all"
  ((${#busy[@]})) && kill "${busy[@]}" && wait "${busy[@]}" 2>/dev/null || true
done
"$PY" - "$OUT/all" <<'EOF'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    load, label, ms = line.split()
    runs[(load, label)].append(float(ms))
print("load   policy                median of medians   mean   runs (ms)")
for (load, label), v in runs.items():
    print("%-6s %-21s %10.2f %12.2f   %s" % (load, label, statistics.median(v), statistics.mean(v),
                                            " ".join("%.1f" % x for x in sorted(v))))
EOF
