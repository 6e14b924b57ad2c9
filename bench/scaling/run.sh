#!/usr/bin/env bash
# Data-parallel scaling on one machine (docs/scaling.md):
#   local    2 ranks x 1 thread (mpirun, TCP over loopback) against 1 process x 2 threads and 1 x 1 thread, the
#            same global batch (accumulation 2 in one process): what the collectives cost here
#   netns    2 ranks in two network namespaces joined by a veth pair, each side's egress shaped with tc (tbf:
#            1 and 10 Gbit/s, and unshaped), with the reduction overlapping the backward (buckets) and not
#   all      both
# As root: the namespaces (bfs0, bfs1) and the veth pair are created here and removed on exit. This machine's
# kernel has no netem qdisc, so latency is not simulated (docs/scaling.md models it).
#   bench/scaling/run.sh BUILD_DIR OUT_DIR [local|netns|all] [MODEL_SIZE] [STEPS] [REPEATS] [BATCH] [SEQ]
# Writes OUT_DIR/results.tsv: part, config, repeat, steps, train_runtime (s), s/step, ms/step spent waiting
# for the gradient sums (data-parallel runs); every run's log.
set -euo pipefail

BUILD=$(realpath "$1")
OUT=$2
PART=${3:-all}
SIZE=${4:-small}
STEPS=${5:-12}
REPEATS=${6:-2}
BATCH=${7:-16}
SEQ=${8:-64}
BF=$BUILD/src/cli/bertfit
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
cd "$OUT"
export OMP_WAIT_POLICY=PASSIVE

awk -F'\t' 'FNR > 1 { print $2 "." $3 }' "$ROOT/tests/fixtures/cli/train.tsv" >corpus.txt
"$BF" train-tokenizer --corpus corpus.txt --out tok --vocab_size 1200 --min_frequency 2 >tokenizer.log 2>&1
# Per-rank batch BATCH of SEQ tokens; global batch 2 x BATCH. No evaluation, no checkpoints: the steps only.
P=(pretrain --tokenizer_name tok --train_file corpus.txt --model_size "$SIZE" --max_seq_length "$SEQ"
  --learning_rate 1e-4 --eval_strategy no --save_strategy no --logging_steps 1000 --seed 7
  --per_device_train_batch_size "$BATCH" --max_steps "$STEPS" --overwrite_output_dir)
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl self,tcp)

[[ -f results.tsv ]] ||
  printf 'part\tconfig\trepeat\tsteps\ttrain_runtime_s\ts_per_step\twait_ms_per_step\n' >results.tsv
# record PART CONFIG REPEAT DIR: the run's train_runtime (trainer_state.json) and its wait for the sums (log)
record() {
  local rt wait
  rt=$(sed -n 's/^ *"train_runtime": \([0-9.eE+-]*\),*$/\1/p' "$4/trainer_state.json" | tail -1)
  wait=$(sed -n 's/^data-parallel: \([0-9.]*\) ms per step waiting.*/\1/p' "$4.log" | tail -1)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$STEPS" "$rt" \
    "$(awk -v t="$rt" -v s="$STEPS" 'BEGIN { printf "%.4f", t / s }')" "${wait:--}" | tee -a results.tsv
}

if [[ $PART == local || $PART == all ]]; then
  for rep in $(seq 1 "$REPEATS"); do  # alternating, so that the other agents' load hits all configs alike
    "$BF" "${P[@]}" --threads 2 --gradient_accumulation_steps 2 --output_dir l-1x2 >l-1x2.log 2>&1
    record local "1 process x 2 threads (accumulation 2)" "$rep" l-1x2
    "${MPI[@]}" --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -np 2 \
      "$BF" "${P[@]}" --threads 1 --output_dir l-2x1 >l-2x1.log 2>&1
    record local "2 ranks x 1 thread (loopback)" "$rep" l-2x1
    "$BF" "${P[@]}" --threads 1 --gradient_accumulation_steps 2 --output_dir l-1x1 >l-1x1.log 2>&1
    record local "1 process x 1 thread (accumulation 2)" "$rep" l-1x1
  done
  # The same computation, so the same weights (docs/distributed.md).
  cmp -s l-1x2/model.safetensors l-2x1/model.safetensors && echo "local: 1x2 and 2x1 weights bitwise equal"
fi

if [[ $PART == netns || $PART == all ]]; then
  cleanup() {
    ip netns del bfs0 2>/dev/null || true
    ip netns del bfs1 2>/dev/null || true
  }
  trap cleanup EXIT
  cleanup
  ip netns add bfs0
  ip netns add bfs1
  ip link add bfsv0 netns bfs0 type veth peer name bfsv1 netns bfs1
  ip -n bfs0 addr add 10.99.7.1/24 dev bfsv0
  ip -n bfs1 addr add 10.99.7.2/24 dev bfsv1
  for ns in bfs0 bfs1; do ip -n $ns link set lo up; done
  ip -n bfs0 link set bfsv0 up
  ip -n bfs1 link set bfsv1 up
  # shape RATE: both directions (each side's egress) limited by a token bucket; "none": unshaped veth.
  shape() {
    for side in "bfs0 bfsv0" "bfs1 bfsv1"; do
      set -- $side
      ip netns exec "$1" tc qdisc del dev "$2" root 2>/dev/null || true
      # burst: at least rate x 1 ms (tbf needs a bucket of a few timer ticks at 10 Gbit/s)
      [[ $RATE == none ]] || ip netns exec "$1" tc qdisc add dev "$2" root tbf rate "$RATE" burst "$BURST" latency 50ms
    done
  }
  # Two "machines": mpirun and rank 0 in bfs0, rank 1 in bfs1 under its own Open MPI daemon, started by
  # netns_agent.sh where a real cluster would use ssh. All traffic, MPI's and the launcher's, crosses the
  # shaped veth.
  printf '10.99.7.1 slots=1\n10.99.7.2 slots=1\n' >hosts
  NET=(--hostfile hosts --map-by node --mca plm_rsh_agent "$ROOT/bench/scaling/netns_agent.sh"
    --mca btl_tcp_if_include 10.99.7.0/24 --mca oob_tcp_if_include 10.99.7.0/24)
  for rep in $(seq 1 "$REPEATS"); do
    for spec in "none 0" "10gbit 1250kb" "1gbit 125kb"; do
      set -- $spec
      RATE=$1 BURST=$2
      shape
      for cap in 4 0; do
        name=n-$RATE-cap$cap
        ip netns exec bfs0 "${MPI[@]}" "${NET[@]}" -np 2 "$BF" "${P[@]}" --threads 1 --ddp_bucket_cap_mb $cap \
          --output_dir "$name" >"$name.log" 2>&1
        record netns "$RATE, buckets $cap MiB$([[ $cap == 0 ]] && echo ' (no overlap)')" "$rep" "$name"
      done
    done
  done
fi
