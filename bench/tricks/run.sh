#!/usr/bin/env bash
# The competition tricks of `bertfit finetune` (issue 15; docs/tricks.md) measured on the demo's task: each one
# against plain fine-tuning with everything else equal, several seeds each, dev and test accuracy / macro-F1 and
# the wall time of each run.
#
#   bash bench/tricks/run.sh [--out DIR] [--data DIR] [--size tiny|mini] [--seeds "1 2 3"] [--epochs E]
#                            [--jobs N] [--only NAME[,NAME]] [--quick]
#
# The model: the demo's (a BERT of --size, default tiny, pre-trained with masked LM on the task's train + test
# text for one epoch, lr 1e-3), fine-tuned with the demo's settings (head+tail 32 + 94 of 128 tokens, lr 1e-3,
# warm-up 0.1, linear decay, batch 32, --epochs over all of train.tsv), model selection off (the final model is
# scored). Configurations ("base" is plain fine-tuning; each other row adds one trick, common defaults):
#   fgm, pgd (K 3, alpha 0.3, eps 1.0), ema (0.999), rdrop (alpha 1), msd (5 head samples at rate 0.5),
#   class-weights (auto, sklearn's "balanced"), focal (gamma 2), label-smoothing (0.1),
#   pseudo-labels (the same seed's base model labels test.tsv; rows at probability >= 0.95 join training),
#   kfold-5 (5 stratified folds of train.tsv, the folds' mean probabilities; dev scored by ensembling the folds),
#   ensemble-seeds (the base models of all seeds averaged: one row, not a per-seed one),
#   multitask (the paper's MFiT: the section task and a second task on the same texts, the package name's family
#   from tools/data/name_family.py, through one encoder with a head each, batches drawn in proportion; the
#   section head is scored), multitask-fit (then the section task alone from that model at half the rate, --epochs
#   epochs: the paper's MFiT + FiT), epochs-2 (the base for twice the epochs: as many steps as multitask takes, so
#   that what the second task adds is read apart from what more steps add).
# Runs go N at a time (--jobs, default 2) with one thread each, so the seconds column compares runs made under
# the same conditions; ratios to base are what it is for. Each run appends to DIR/results.tsv (resumable: runs
# already there are skipped) and tools/paper/summarize.py prints mean ± sd per configuration, dev and test.
# Test figures are for reading off what a trick did, not for choosing among them (choose on dev).
# --quick: pre-training on 4,000 lines, fine-tuning on 2,000 examples, one seed, a few configurations (a plumbing
# check: its figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=out/tricks DATA=out/demo SIZE=tiny SEEDS="1 2 3" EPOCHS=1 JOBS=2 ONLY="" QUICK=0
while (($#)); do
  case $1 in
    --out) OUT=$2; shift ;;
    --data) DATA=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --seeds) SEEDS=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "tricks: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((QUICK)); then SEEDS=1; fi
PY=/usr/bin/python3
source bench/runs.sh
[[ -f $RES ]] || printf 'config\tseed\tdev_accuracy\tdev_macro_f1\ttest_accuracy\ttest_macro_f1\tseconds\tcpu\n' >"$RES"
log() { echo "tricks: $(date +%H:%M:%S) $*"; }

# The demo's pre-trained model (scripts/demo.sh defaults), made once.
MODEL=$OUT/pretrained-$SIZE$( ((QUICK)) && echo -quick || true)
if [[ ! -f $MODEL/model.safetensors ]]; then
  log "pre-training BERT-$SIZE on the task's text, one epoch (log: $MODEL.log)"
  "$BF" pretrain --tokenizer "$DATA/tokenizer" --train_file "$DATA/corpus.txt" --model_size "$SIZE" \
    --max_seq_length 128 --per_device_train_batch_size 32 --learning_rate 1e-3 --warmup_ratio 0.1 \
    --num_train_epochs 1 --eval_strategy no --save_strategy no --logging_steps 500 --overwrite_output_dir \
    --output_dir "$MODEL" $( ((QUICK)) && echo --max_train_samples 4000 || true) >"$MODEL.log" 2>&1
fi

# The fine-tuning settings every row shares (the model, training data, epochs and rate are each run's).
FT_SHARED=(--text_columns title,abstract --label_column categories --quoting none --max_seq_length 128
  --truncation head_tail --head_length 32 --warmup_ratio 0.1 --per_device_train_batch_size 32 --save_strategy no
  --load_best_model_at_end false --logging_steps 500 --overwrite_output_dir --threads "$THREADS")
FT=(--model "$MODEL" --train_file "$DATA/data/train.tsv" "${FT_SHARED[@]}" --learning_rate 1e-3)
SUBSET=()
if ((QUICK)); then SUBSET=(--max_train_samples 2000); fi
FT+=("${SUBSET[@]}")
VAL=(--validation_file "$DATA/data/dev.tsv")
# A metric from evaluate's / score.py's JSON (accuracy) or finetune's eval_results.json (eval_accuracy).
metric() { local v; v=$(field "$1" "eval_$2"); [[ -n $v ]] || v=$(field "$1" "$2"); echo "$v"; }
wanted() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }
record() {  # name seed dev.json test.json seconds (one line: appends from parallel jobs do not interleave)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(metric "$3" accuracy)" "$(metric "$3" macro_f1)" \
    "$(metric "$4" accuracy)" "$(metric "$4" macro_f1)" "$5" "$CPU" >>"$RES"
}
# A fine-tuning run scored on dev and test. $3...: extra finetune options.
finetune_run() {
  local name=$1 seed=$2 dir=$OUT/runs/$1-seed$2 t0 t1
  shift 2
  log "$name seed $seed: bertfit finetune $*"
  t0=$(date +%s)
  "$BF" finetune "${FT[@]}" "${VAL[@]}" --num_train_epochs "${FT_EPOCHS:-$EPOCHS}" --output_dir "$dir" \
    --seed "$seed" "$@" >"$dir.log" 2>&1 ||
    { log "$name seed $seed failed: $dir.log"; tail -3 "$dir.log"; return 1; }
  t1=$(date +%s)
  "$BF" evaluate --model "$dir" --file "$DATA/data/test_labels.tsv" --output "$dir/test.json" \
    --threads "$THREADS" >>"$dir.log" 2>&1
  record "$name" "$seed" "$dir/eval_results.json" "$dir/test.json" "$((t1 - t0))"
}
# Pseudo-labels: the same seed's base model labels test.tsv, then fine-tuning again with the confident rows.
pseudo_run() {
  local seed=$1 base=$OUT/runs/base-seed$1
  "$BF" predict --model "$base" --file "$DATA/data/test.tsv" --output "$base/test_predictions.tsv" \
    --id_column paperid --threads "$THREADS" >>"$base.log" 2>&1
  finetune_run pseudo-labels "$seed" --id_column paperid --pseudo_label_file "$base/test_predictions.tsv" \
    --pseudo_label_data "$DATA/data/test.tsv" --pseudo_label_threshold 0.95
}
# k-fold: 5 models on 4/5 of train.tsv each; test = the folds' mean probabilities (the command's own), dev = the
# same mean computed by `bertfit ensemble` over the fold models.
kfold_run() {
  local seed=$1 dir=$OUT/runs/kfold-5-seed$1 t0 t1 folds=()
  log "kfold-5 seed $seed: bertfit finetune --k_folds 5 --do_predict"
  t0=$(date +%s)
  "$BF" finetune "${FT[@]}" --num_train_epochs "$EPOCHS" --output_dir "$dir" --seed "$seed" --k_folds 5 \
    --do_train --do_predict \
    --test_file "$DATA/data/test.tsv" --id_column paperid >"$dir.log" 2>&1 ||
    { log "kfold-5 seed $seed failed: $dir.log"; tail -3 "$dir.log"; return 1; }
  t1=$(date +%s)
  for k in 0 1 2 3 4; do folds+=("$dir/fold-$k"); done
  "$BF" ensemble --inputs "${folds[@]}" --file "$DATA/data/dev.tsv" --id_column paperid \
    --output "$dir/dev_predictions.tsv" --threads "$THREADS" >>"$dir.log" 2>&1
  $PY tools/tricks/score.py "$dir/dev_predictions.tsv" "$DATA/data/dev.tsv" >"$dir/dev.json"
  $PY tools/tricks/score.py "$dir/test_predictions.tsv" "$DATA/data/test_labels.tsv" >"$dir/test.json"
  record kfold-5 "$seed" "$dir/dev.json" "$dir/test.json" "$((t1 - t0))"
}

# Multi-task (the paper's MFiT, section 5.3): the section task ("main", whose head the model's own) and the package
# name's family ("names", the same texts: tools/data/name_family.py) through one encoder; main's directory is
# scored on dev and test like any single-task model. Then multitask-fit: main alone from that directory (its head
# loaded) at half the rate for --epochs, the paper's "-FiT" step. The seconds of multitask-fit are both stages'.
multitask_run() {
  local seed=$1 dir=$OUT/runs/multitask-seed$1 fit=$OUT/runs/multitask-fit-seed$1 names=$OUT/names t0 t1 t2 t3
  local main=$DATA/data/train.tsv main_dev=$DATA/data/dev.tsv
  mkdir -p "$names"
  # --quick: the first 2,000 training rows and the first of every other label (multi-task runs take no
  # --max_train_samples; every label, so that dev and test can be scored).
  if ((QUICK)); then
    awk -F'\t' 'NR <= 2001 || !seen[$NF]++' "$main" >"$names/main-train.tsv"
    main=$names/main-train.tsv
  fi
  local aux=$names/family-$(basename "$main") aux_dev=$names/family-dev.tsv
  [[ -f $aux ]] || $PY tools/data/name_family.py "$main" "$aux"
  [[ -f $aux_dev ]] || $PY tools/data/name_family.py "$main_dev" "$aux_dev"
  log "multitask seed $seed: bertfit finetune --task main=$main --task names=$aux"
  t0=$(date +%s)
  "$BF" finetune --model "$MODEL" "${FT_SHARED[@]}" --learning_rate 1e-3 --num_train_epochs "$EPOCHS" \
    --task "main=$main" --task "names=$aux" --task_label_column names=family \
    --task_validation_file "main=$main_dev" --task_validation_file "names=$aux_dev" \
    --output_dir "$dir" --seed "$seed" >"$dir.log" 2>&1 ||
    { log "multitask seed $seed failed: $dir.log"; tail -3 "$dir.log"; return 1; }
  t1=$(date +%s)
  score_model "$dir/main" "$dir.log"
  record multitask "$seed" "$dir/main/dev.json" "$dir/main/test.json" "$((t1 - t0))"
  log "multitask-fit seed $seed: bertfit finetune --model multitask/main --learning_rate 5e-4"
  t2=$(date +%s)
  "$BF" finetune --model "$dir/main" --train_file "$DATA/data/train.tsv" "${FT_SHARED[@]}" "${SUBSET[@]}" \
    --learning_rate 5e-4 --num_train_epochs "$EPOCHS" --output_dir "$fit" --seed "$seed" >"$fit.log" 2>&1 ||
    { log "multitask-fit seed $seed failed: $fit.log"; tail -3 "$fit.log"; return 1; }
  t3=$(date +%s)
  score_model "$fit" "$fit.log"
  record multitask-fit "$seed" "$fit/dev.json" "$fit/test.json" "$((t1 - t0 + t3 - t2))"
}
# score_model DIR LOG: DIR/dev.json and DIR/test.json from `bertfit evaluate` (a multi-task run's own
# eval_results.json averages its tasks, so its main head is scored here instead).
score_model() {
  "$BF" evaluate --model "$1" --file "$DATA/data/dev.tsv" --output "$1/dev.json" --threads "$THREADS" >>"$2" 2>&1
  "$BF" evaluate --model "$1" --file "$DATA/data/test_labels.tsv" --output "$1/test.json" --threads "$THREADS" \
    >>"$2" 2>&1
}

# name|extra finetune options (one trick each, on top of base)
CONFIGS=(
  "base|"
  "fgm|--adversarial fgm"
  "pgd|--adversarial pgd"
  "ema|--ema_decay 0.999"
  "rdrop|--rdrop_alpha 1"
  "msd|--multi_sample_dropout 5 --classifier_dropout 0.5"
  "class-weights|--class_weights auto"
  "focal|--focal_gamma 2"
  "label-smoothing|--label_smoothing_factor 0.1"
)
SPECIAL=(pseudo-labels kfold-5 multitask epochs-2)
if ((QUICK)); then CONFIGS=("base|" "fgm|--adversarial fgm" "ema|--ema_decay 0.999"); fi

for seed in $SEEDS; do
  for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name extra <<<"$c"
    wanted "$name" && ! done_already "$name" "$seed" || continue
    pool_wait "$JOBS"
    # shellcheck disable=SC2086  # extra is a list of options
    finetune_run "$name" "$seed" $extra &
  done
done
pool_wait 1
((!FAILED)) || { log "a run failed (see above)"; exit 1; }
for seed in $SEEDS; do
  for name in "${SPECIAL[@]}"; do
    wanted "$name" && ! done_already "$name" "$seed" || continue
    [[ $name != pseudo-labels ]] || done_already base "$seed" || { log "pseudo-labels seed $seed: no base run"; continue; }
    pool_wait "$JOBS"
    case $name in
      pseudo-labels) pseudo_run "$seed" & ;;
      kfold-5) kfold_run "$seed" & ;;
      multitask) multitask_run "$seed" & ;;
      epochs-2) FT_EPOCHS=$((2 * EPOCHS)) finetune_run epochs-2 "$seed" & ;;
    esac
  done
done
pool_wait 1
((!FAILED)) || { log "a run failed (see above)"; exit 1; }

# The seeds' base models averaged (the cheapest ensemble: no extra training).
bases=()
for seed in $SEEDS; do [[ -f $OUT/runs/base-seed$seed/model.safetensors ]] && bases+=("$OUT/runs/base-seed$seed"); done
if ((${#bases[@]} > 1)) && wanted ensemble-seeds && ! done_already ensemble-seeds "${#bases[@]}"; then
  dir=$OUT/runs/ensemble-seeds
  mkdir -p "$dir"
  for split in dev test; do
    file=$DATA/data/dev.tsv
    [[ $split == dev ]] || file=$DATA/data/test.tsv
    "$BF" ensemble --inputs "${bases[@]}" --file "$file" --id_column paperid --output "$dir/${split}_predictions.tsv" \
      --threads "$(nproc)" >>"$dir.log" 2>&1
  done
  $PY tools/tricks/score.py "$dir/dev_predictions.tsv" "$DATA/data/dev.tsv" >"$dir/dev.json"
  $PY tools/tricks/score.py "$dir/test_predictions.tsv" "$DATA/data/test_labels.tsv" >"$dir/test.json"
  record ensemble-seeds "${#bases[@]}" "$dir/dev.json" "$dir/test.json" 0
fi
$PY tools/paper/summarize.py "$RES"
