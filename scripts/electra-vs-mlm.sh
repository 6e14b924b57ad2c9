#!/usr/bin/env bash
# ELECTRA or MLM pre-training for the same wall time (issue 18, item 2): which gives the better dev accuracy
# after the same fine-tuning? Every run of a round goes at once (one thread each), so all share the machine's
# load in the same time window.
#
#   scripts/electra-vs-mlm.sh DEMO_OUT OUT [SECONDS]
# DEMO_OUT: a directory from `scripts/demo.sh --data-only --skip-setup --out DEMO_OUT` (data/, corpus.txt,
# tokenizer/). SECONDS (default 300): the pre-training budget; each objective's max_steps is its measured rate
# (a 40-step calibration run of each, at once) times SECONDS, so both schedules end at about that time.
# Seeds: SEEDS (default "1 2"). Fine-tuning: the demo's settings on FT_SAMPLES (default 16000) training
# examples, one epoch, scored on all of dev.tsv. Prints one line per run and the mean per objective.
set -euo pipefail
DEMO=$1
OUT=$2
SECONDS_BUDGET=${3:-300}
SEEDS=${SEEDS:-"1 2"}
FT_SAMPLES=${FT_SAMPLES:-16000}
BF=${BF:-$PWD/build/src/cli/bertfit}
export OMP_WAIT_POLICY=PASSIVE
mkdir -p "$OUT"
PT=(--tokenizer "$DEMO/tokenizer" --train_file "$DEMO/corpus.txt" --model_size tiny --max_seq_length 128
  --per_device_train_batch_size 32 --learning_rate 1e-3 --warmup_ratio 0.1 --eval_strategy no
  --save_strategy no --max_eval_samples 1000 --logging_steps 100 --threads 1 --overwrite_output_dir)
OBJ=(mlm electra)

rate() {  # steps per second of a finished run's training
  python3 -c 'import json,sys; h=json.load(open(sys.argv[1]))["log_history"]; print([e for e in h if "train_steps_per_second" in e][-1]["train_steps_per_second"])' "$1/trainer_state.json"
}

echo "calibration: 40 steps of each objective, at once ($(date -u +%H:%M:%S))"
for o in "${OBJ[@]}"; do
  "$BF" pretrain "${PT[@]}" --objective "$o" --max_steps 40 --seed 1 --output_dir "$OUT/cal-$o" \
    >"$OUT/cal-$o.log" 2>&1 &
done
wait
declare -A STEPS
for o in "${OBJ[@]}"; do
  r=$(rate "$OUT/cal-$o")
  STEPS[$o]=$(python3 -c "print(max(50, int($r * $SECONDS_BUDGET)))")
  echo "  $o: $r steps/s -> max_steps ${STEPS[$o]}"
done

echo "pre-training: ${SECONDS_BUDGET} s each, all at once ($(date -u +%H:%M:%S))"
for s in $SEEDS; do
  for o in "${OBJ[@]}"; do
    /usr/bin/time -f "%e" -o "$OUT/pt-$o-$s.time" "$BF" pretrain "${PT[@]}" --objective "$o" \
      --max_steps "${STEPS[$o]}" --seed "$s" --output_dir "$OUT/pt-$o-$s" >"$OUT/pt-$o-$s.log" 2>&1 &
  done
done
wait
echo "fine-tuning: all at once ($(date -u +%H:%M:%S))"
for s in $SEEDS; do
  for o in "${OBJ[@]}"; do
    "$BF" finetune --model "$OUT/pt-$o-$s" --output_dir "$OUT/ft-$o-$s" --train_file "$DEMO/data/train.tsv" \
      --validation_file "$DEMO/data/dev.tsv" --text_columns title,abstract --label_column categories \
      --quoting none --max_seq_length 128 --truncation head_tail --head_length 32 --learning_rate 1e-3 \
      --warmup_ratio 0.1 --num_train_epochs 1 --per_device_train_batch_size 32 --save_total_limit 1 \
      --max_train_samples "$FT_SAMPLES" --logging_steps 100 --threads 1 --seed "$s" --overwrite_output_dir \
      >"$OUT/ft-$o-$s.log" 2>&1 &
  done
done
wait
echo "done ($(date -u +%H:%M:%S))"
for o in "${OBJ[@]}"; do
  for s in $SEEDS; do
    python3 - "$OUT" "$o" "$s" <<'PY'
import json, sys
out, o, s = sys.argv[1:]
e = json.load(open(f"{out}/ft-{o}-{s}/eval_results.json"))
t = open(f"{out}/pt-{o}-{s}.time").read().strip()
steps = json.load(open(f"{out}/pt-{o}-{s}/trainer_state.json"))["global_step"]
print(f"{o} seed {s}: pre-training {steps} steps in {t} s; dev accuracy {e['eval_accuracy']:.4f}, macro-F1 {e['eval_macro_f1']:.4f}")
PY
  done
done
