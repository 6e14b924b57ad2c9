#!/usr/bin/env bash
# Data-parallel training through the built binary under Open MPI's mpirun (2 ranks on this machine, TCP over
# loopback). One case per CTest entry:
#   mpi_test.sh BERTFIT MPIRUN FIXTURES WORK CASE
# CASE:
#   exact   pretrain and finetune with 2 ranks of per-rank batch 8 end with model.safetensors bitwise equal
#           to one process with gradient accumulation 2 and batch 8 (dropout on), the same logged losses and
#           the same evaluation; a checkpoint of either resumes under the other (N = 1 <-> 2), bitwise; the
#           same with the reduction in buckets during the backward, and with the optimizer state sharded
#           (ZeRO stage 1)
#   faults  a missing file on one rank, other data on one rank, a rank killed mid-run: the job ends (no
#           hang) with the failing rank's own message
# Tiny models and a few steps: each case takes seconds. Every command's output stays under WORK/<case>/.
set -euo pipefail

BF=$1
MPIRUN=$2
FIX=$3
WORK=$4/$5
CASE=$5
DATA=$FIX/cli
export OMP_WAIT_POLICY=PASSIVE
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

# As root (CI) mpirun needs --allow-run-as-root; --oversubscribe lets 2 ranks start on fewer free slots;
# TCP over loopback only (no other interface is probed; see ../shared/docs/DEPENDENCIES.md).
MPI=("$MPIRUN" --allow-run-as-root --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo
  --mca oob_tcp_if_include lo)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
run() {
  local name=$1
  shift
  local rc=0
  "$@" >"$name.log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    cat "$name.log" >&2
    fail "$name: exit $rc ($*)"
  fi
}
same_bytes() {
  cmp -s "$1" "$2" || fail "$1 and $2 differ"
  echo "ok: $1 == $2"
}
# The logged training losses and the evaluations' metrics of a trainer_state.json, without the timings.
losses() {
  grep -E '"(loss|eval_loss|eval_accuracy|eval_macro_f1|train_loss|grad_norm)":' "$1"
}
# expect_job_error NAME MESSAGE CMD...: the job must end non-zero within the CTest timeout and print MESSAGE.
expect_job_error() {
  local name=$1 message=$2
  shift 2
  local rc=0 t0=$SECONDS
  "$@" >"$name.log" 2>&1 || rc=$?
  [[ $rc -ne 0 ]] || {
    cat "$name.log" >&2
    fail "$name: the job succeeded"
  }
  grep -qF -- "$message" "$name.log" || {
    cat "$name.log" >&2
    fail "$name: its output lacks: $message"
  }
  echo "ok: $name (exit $rc after $((SECONDS - t0)) s): $(grep -F -m1 -- "$message" "$name.log")"
}

awk -F'\t' 'FNR > 1 { print $2 "." $3 }' "$DATA/train.tsv" >corpus.txt
run tokenizer "$BF" train-tokenizer --corpus corpus.txt --out tok --vocab_size 1200 --min_frequency 2
# One thread per rank: two ranks on the two cores CI has.
P=(pretrain --tokenizer_name tok --train_file corpus.txt --model_size tiny --max_seq_length 64
  --learning_rate 1e-3 --eval_strategy no --logging_steps 1 --threads 1 --seed 7 --per_device_train_batch_size 8)

case $CASE in
exact)
  # Pre-training from scratch (masking and dropout on): 4 steps of global batch 16.
  run pretrain-1 "$BF" "${P[@]}" --max_steps 4 --gradient_accumulation_steps 2 --output_dir p1
  run pretrain-2 "${MPI[@]}" -np 2 "$BF" "${P[@]}" --max_steps 4 --output_dir p2
  grep -q "data-parallel: Open MPI.*2 ranks, global batch 16" pretrain-2.log || fail "pretrain-2 ran not as 2 ranks"
  same_bytes p1/model.safetensors p2/model.safetensors
  diff <(losses p1/trainer_state.json) <(losses p2/trainer_state.json) || fail "pretrain: logged losses differ"

  # Fine-tuning that model (a new head, dropout on): 6 steps, evaluated and saved every 3.
  F=(finetune --model p1 --train_file "$DATA/train.tsv" --validation_file "$DATA/dev.tsv"
    --text_columns title,abstract --label_column categories --quoting auto --max_seq_length 64
    --learning_rate 1e-3 --logging_steps 1 --threads 1 --seed 7 --per_device_train_batch_size 8
    --max_steps 6 --eval_strategy steps --eval_steps 3 --save_total_limit 0)
  run finetune-1 "$BF" "${F[@]}" --gradient_accumulation_steps 2 --output_dir f1
  # Small buckets: the head, each layer and the embeddings reduced while the backward goes on.
  run finetune-2 "${MPI[@]}" -np 2 "$BF" "${F[@]}" --output_dir f2 --ddp_bucket_cap_mb 0.05
  grep -q "gradients summed in 4 bucket(s)" finetune-2.log || fail "finetune-2: not 4 buckets"
  same_bytes f1/checkpoint-3/model.safetensors f2/checkpoint-3/model.safetensors
  same_bytes f1/checkpoint-3/optimizer.safetensors f2/checkpoint-3/optimizer.safetensors
  same_bytes f1/model.safetensors f2/model.safetensors
  diff <(losses f1/trainer_state.json) <(losses f2/trainer_state.json) || fail "finetune: losses or metrics differ"
  diff <(grep -v -e runtime -e per_second f1/eval_results.json) \
    <(grep -v -e runtime -e per_second f2/eval_results.json) || fail "finetune: final evaluations differ"

  # ZeRO stage 1 (optimizer state sharded): the same weights and, gathered for the checkpoint, the same
  # optimizer state; and it resumes from the unsharded run's checkpoint.
  run finetune-zero "${MPI[@]}" -np 2 "$BF" "${F[@]}" --output_dir fz --zero_stage 1
  grep -q "optimizer state sharded (ZeRO stage 1)" finetune-zero.log || fail "finetune-zero: not sharded"
  same_bytes f1/checkpoint-3/optimizer.safetensors fz/checkpoint-3/optimizer.safetensors
  same_bytes f1/model.safetensors fz/model.safetensors
  run resume-zero "${MPI[@]}" -np 2 "$BF" "${F[@]}" --output_dir rz --resume_from_checkpoint f1/checkpoint-3 \
    --zero_stage 1
  same_bytes f1/model.safetensors rz/model.safetensors

  # Resume with another number of ranks, the global batch kept: 1 process's checkpoint under 2 ranks, and
  # 2 ranks' checkpoint in 1 process.
  # (And no overlap: one bucket after the backward.)
  run resume-1to2 "${MPI[@]}" -np 2 "$BF" "${F[@]}" --output_dir r12 --resume_from_checkpoint f1/checkpoint-3 \
    --ddp_bucket_cap_mb 0
  grep -q "resuming from" resume-1to2.log || fail "resume-1to2 did not resume"
  same_bytes f1/model.safetensors r12/model.safetensors
  run resume-2to1 "$BF" "${F[@]}" --gradient_accumulation_steps 2 --output_dir r21 \
    --resume_from_checkpoint f2/checkpoint-3
  same_bytes f1/model.safetensors r21/model.safetensors
  ;;

faults)
  Q=("${P[@]}" --max_steps 3 --overwrite_output_dir)
  # Bad input on one rank: its message, naming its rank and the file, ends the job.
  expect_job_error missing-file "bertfit (rank 1 of 2): error:" \
    "${MPI[@]}" -np 1 "$BF" "${Q[@]}" --output_dir m : -np 1 "$BF" "${Q[@]/corpus.txt/missing.txt}" --output_dir m
  grep -qF "missing.txt" missing-file.log || fail "missing-file: the message does not name the file"
  # Other data on one rank (a shorter corpus): found before the first step, by the rank that differs.
  head -n 100 corpus.txt >corpus-short.txt
  expect_job_error other-data "bertfit (rank 1 of 2): error: rank 1 of 2: its training data differs from rank 0's" \
    "${MPI[@]}" -np 1 "$BF" "${Q[@]}" --output_dir d : -np 1 "$BF" "${Q[@]/corpus.txt/corpus-short.txt}" --output_dir d
  # A rank killed (SIGKILL, no word from it) in the middle of a long run: mpirun ends the other rank, which
  # was waiting for it in a collective, instead of it hanging.
  expect_job_error killed-rank "exited on signal 9" \
    "${MPI[@]}" -np 1 "$BF" "${P[@]}" --max_steps 100000 --output_dir k --overwrite_output_dir \
    : -np 1 bash -c '(sleep 4; kill -9 $$) & exec "$0" "$@"' "$BF" "${P[@]}" --max_steps 100000 --output_dir k \
    --overwrite_output_dir
  [[ -f k/model.safetensors ]] && fail "killed-rank: a final model was written"
  echo "ok: faults"
  ;;
*)
  fail "unknown case $CASE"
  ;;
esac
