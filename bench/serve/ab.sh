#!/usr/bin/env bash
# A/B of `bertfit serve` options on the latency target (issue 14: concurrency 1, served p50 within 15% of one
# forward pass), alternating fresh servers so a machine whose load drifts affects each side alike:
#
#   bench/serve/ab.sh [--rounds N] [--out DIR] -- "OPTIONS A" "OPTIONS B" ...
#
# Per round and option set: a fresh `bertfit serve --threads 2 OPTIONS` on the mini model of bench/serve/run.sh
# (run that once first: it makes DIR/model-mini and DIR/texts.txt), then `serve_bench alternate` (200 texts: a
# forward pass in-process, then the same text served by our client, never at once; 336 texts at c=32, one
# round) and wrk at c=1 for 10 s against one forward pass per text in turn (`serve_bench forward`). Appends
# to DIR/ab.txt (default out/bench-serve).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=out/bench-serve ROUNDS=3
while (($#)); do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --) shift; break ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
(($#)) || { echo "ab.sh: give the option sets after -- (\"\" for the defaults)" >&2; exit 2; }
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
BUILD=${BUILD:-build}
BF=$BUILD/src/cli/bertfit SB=$BUILD/bench/serve/bertfit_serve_bench model=$OUT/model-mini texts=$OUT/texts.txt
source bench/serve/lib.sh
[[ -d $model && -f $texts ]] || { echo "ab.sh: run bench/serve/run.sh --sizes mini first ($model)" >&2; exit 1; }
RES=$OUT/ab.txt
echo "# $(date -u +%FT%TZ) $(/usr/bin/python3 tools/bench/machine.py --describe), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES"
for r in $(seq "$ROUNDS"); do
  for opts in "$@"; do
    # shellcheck disable=SC2086  # the option set: words
    serve_start "$model" "$OUT/ab-serve.log" "$texts" $opts
    a=$("$SB" alternate "$model" "$SERVE_PORT" "$texts" 200 336 1 | tr '\n' ' ')
    w=$(wrk_round "$model" "$SERVE_PORT" "$texts")
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || true
    echo "round=$r options=[$opts] $a| $w" | tee -a "$RES"
  done
done
