#!/usr/bin/env bash
# The paper's main comparisons (Sun et al. 2019, tables 2-5) rerun at our scale on the demo's task, several
# seeds each, choices scored on dev (test is for final recipes only: docs/results.md).
#
#   bash bench/paper/run.sh [--out DIR] [--data DIR] [--size tiny|mini] [--seeds "1 2 3"]
#                           [--max_train_samples N] [--epochs E] [--jobs N] [--only NAME[,NAME]] [--quick]
#
# Comparisons (every other setting as the "base" row: head+tail 1:3, the model's default features, no layer-wise
# decay, the model pre-trained on the task's text):
#   truncation   head | tail | head+tail                                   (paper table 2)
#   features     [CLS] of single layers | pooler | last4 concat / mean / max (paper table 3; last4 needs >= 4 layers)
#                (our layer 1 is the paper's "Layer-0", the first encoder layer: our layer 0 is the embeddings,
#                whose [CLS] is the same vector for every input; feat-cls is the last layer)
#   decay        layer-wise learning-rate decay 1.0 | 0.95 | 0.9           (paper table 4)
#   pretraining  with | without further (within-task) pre-training         (paper table 5)
# Data: the demo's Debian package-description task (scripts/demo.sh --data-only makes it in --data). Models: a
# BERT of --size pre-trained with masked LM on the task's train + test text for one epoch, and the same
# architecture from the same random initialisation (the "without" row). Each run is one `bertfit finetune`;
# its dev accuracy / macro-F1 go to DIR/results.tsv, and tools/paper/summarize.py prints mean, spread and n
# per configuration (markdown with --markdown). Runs already in results.tsv are skipped, so the script resumes.
# Fine-tuning runs go N at a time (--jobs, default 2) with the cores shared among them (one thread each on 2
# cores: more work per core than one run on two threads, and every run under the same conditions).
# Cost: one fine-tuning run of BERT-mini over 16,000 examples for one epoch is a few minutes on one core; the
# default set (12 configurations x 3 seeds, plus one pre-training) takes about 1.5 hours on a quiet 2-core
# machine. --quick: BERT-tiny, 2,000 examples, one seed, one configuration per comparison (a plumbing check).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=out/paper DATA=out/demo SIZE=mini SEEDS="1 2 3" SAMPLES=16000 EPOCHS=1 JOBS=2 ONLY="" QUICK=0
while (($#)); do
  case $1 in
    --out) OUT=$2; shift ;;
    --data) DATA=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --seeds) SEEDS=$2; shift ;;
    --max_train_samples) SAMPLES=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "paper: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((QUICK)); then SIZE=tiny SEEDS=1 SAMPLES=2000; fi
source bench/runs.sh
[[ -f $RES ]] || printf 'config\tseed\tdev_accuracy\tdev_macro_f1\tseconds\tcpu\n' >"$RES"
log() { echo "paper: $(date +%H:%M:%S) $*"; }

# The two models: pre-trained on the task's text, and its random initialisation.
PT=(--tokenizer "$DATA/tokenizer" --train_file "$DATA/corpus.txt" --model_size "$SIZE" --max_seq_length 128
  --per_device_train_batch_size 32 --learning_rate 1e-3 --warmup_ratio 0.1 --eval_strategy no
  --save_strategy no --logging_steps 500 --overwrite_output_dir)
if ((QUICK)); then PT+=(--max_train_samples 4000); fi
[[ -f $OUT/init-$SIZE/model.safetensors ]] ||
  "$BF" pretrain "${PT[@]}" --output_dir "$OUT/init-$SIZE" --num_train_epochs 0 >"$OUT/init-$SIZE.log" 2>&1
if [[ ! -f $OUT/pretrained-$SIZE/model.safetensors ]]; then
  log "pre-training BERT-$SIZE on the task's text (log: $OUT/pretrained-$SIZE.log)"
  "$BF" pretrain "${PT[@]}" --output_dir "$OUT/pretrained-$SIZE" --num_train_epochs 1 >"$OUT/pretrained-$SIZE.log" 2>&1
fi
LAYERS=$(sed -n 's/^ *"num_hidden_layers": \([0-9]*\).*/\1/p' "$OUT/init-$SIZE/config.json")

# name|model|extra finetune options
CONFIGS=(
  "base|pretrained|"
  "trunc-head|pretrained|--truncation head"
  "trunc-tail|pretrained|--truncation tail"
  "feat-cls|pretrained|--features cls"
  "feat-layer-1|pretrained|--features layer --feature_layer 1"
  "feat-layer-2|pretrained|--features layer --feature_layer 2"
  "decay-0.95|pretrained|--layerwise_lr_decay 0.95"
  "decay-0.9|pretrained|--layerwise_lr_decay 0.9"
  "no-pretraining|init|"
)
if ((LAYERS >= 4)); then
  CONFIGS+=("feat-last4-concat|pretrained|--features last4-concat" "feat-last4-mean|pretrained|--features last4-mean"
    "feat-last4-max|pretrained|--features last4-max")
fi
if ((QUICK)); then CONFIGS=("base|pretrained|" "trunc-head|pretrained|--truncation head"
  "feat-cls|pretrained|--features cls" "decay-0.9|pretrained|--layerwise_lr_decay 0.9" "no-pretraining|init|"); fi

FT=(--train_file "$DATA/data/train.tsv" --validation_file "$DATA/data/dev.tsv" --text_columns title,abstract
  --label_column categories --quoting none --max_seq_length 128 --learning_rate 1e-3 --warmup_ratio 0.1
  --num_train_epochs "$EPOCHS" --per_device_train_batch_size 32 --max_train_samples "$SAMPLES"
  --eval_strategy no --save_strategy no --load_best_model_at_end false --logging_steps 500 --overwrite_output_dir
  --threads "$THREADS")  # eval_strategy no: dev is scored once, by the final evaluation (not twice on one model)
# One fine-tuning run, its dev metrics appended to results.tsv (one short line: appends from parallel runs do not
# interleave). $4...: extra finetune options.
finetune_run() {
  local name=$1 model=$2 seed=$3 dir=$OUT/runs/$1-seed$3 t0 t1
  shift 3
  log "$name seed $seed: bertfit finetune $*"
  t0=$(date +%s)
  "$BF" finetune --model "$OUT/$model-$SIZE" --output_dir "$dir" --seed "$seed" "${FT[@]}" "$@" >"$dir.log" 2>&1 ||
    { log "$name seed $seed failed: $dir.log"; tail -3 "$dir.log"; return 1; }
  t1=$(date +%s)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$seed" "$(field "$dir/eval_results.json" eval_accuracy)" \
    "$(field "$dir/eval_results.json" eval_macro_f1)" "$((t1 - t0))" "$CPU" >>"$RES"
  rm -f "$dir/model.safetensors"  # keep the logs and metrics, not 40 copies of the weights
}
# Seeds in the outer loop: a study stopped early has every configuration at the same number of seeds.
for seed in $SEEDS; do
  for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name model extra <<<"$c"
    [[ -z $ONLY || ",$ONLY," == *",$name,"* ]] && ! done_already "$name" "$seed" || continue
    pool_wait "$JOBS"
    # shellcheck disable=SC2086  # extra is a list of options
    finetune_run "$name" "$model" "$seed" $extra &
  done
done
pool_wait 1
((!FAILED)) || { log "a run failed (see above)"; exit 1; }
/usr/bin/python3 tools/paper/summarize.py "$RES"
