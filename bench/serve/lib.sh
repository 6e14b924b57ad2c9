# Shared by bench/serve/run.sh and bench/serve/ab.sh (sourced; the caller sets BF and SB, the bertfit and
# bertfit_serve_bench binaries).

# serve_start MODEL LOG TEXTS [SERVE OPTIONS...]: `bertfit serve --threads 2` on a free port, warmed up with 20
# requests (the arena sized); sets SERVE_PID and SERVE_PORT, or prints the server's log and exits.
serve_start() {
  local model=$1 log=$2 texts=$3
  shift 3
  "$BF" serve --model "$model" --port 0 --threads 2 "$@" 2>"$log" &
  SERVE_PID=$!
  SERVE_PORT=
  for _ in $(seq 600); do
    SERVE_PORT=$(grep -o 'listening on http://[^:]*:[0-9]*' "$log" | sed 's/.*://' || true)
    [[ -n $SERVE_PORT ]] && break
    sleep 0.1
  done
  [[ -n $SERVE_PORT ]] || { cat "$log" >&2; kill "$SERVE_PID"; exit 1; }
  "$SB" load "$SERVE_PORT" "$texts" 1 20 >/dev/null
}

# wrk_round MODEL PORT TEXTS: one forward pass per text in turn in this process (serve_bench forward), then wrk at
# concurrency 1 for 10 s (predict.lua); prints wrk's line, the forward p50 and the ratio of the p50s.
wrk_round() {
  local f w p50
  f=$("$SB" forward "$1" "$3" | sed -n 's/.*forward_ms_p50=\([0-9.]*\).*/\1/p')
  w=$(wrk -t1 -c1 -d10s --timeout 10s -s bench/serve/predict.lua "http://127.0.0.1:$2" -- "$3" | grep '^wrk ')
  p50=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$w")
  echo "$w forward_ms_p50=$f p50_ratio=$(/usr/bin/python3 -c "print(round($p50 / $f, 3))")"
}
