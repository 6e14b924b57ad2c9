#!/usr/bin/env bash
# The pre-training recipe's choices measured on the demo's task (issue 18, item 3): each choice against a base
# recipe with everything else equal, for the same pre-training wall time, then the same fine-tuning, scored on
# dev (test is kept for final recipes: docs/results.md).
#
#   bash bench/recipe/run.sh [--out DIR] [--data DIR] [--budget SECONDS] [--seeds "1"] [--base-seeds "1 2 3"]
#                            [--max_train_samples N] [--jobs N] [--only NAME[,NAME]] [--quick]
#
# Base: BERT-tiny (2 layers, hidden 128), WordPiece 8,000 trained on the task's train + test text, masked LM
# (15%, token-level), blocks of at most 128 tokens one per line, dropout 0.1, lr 1e-3, warm-up 0.1, linear decay,
# batch 32. Each other configuration changes one thing:
#   size-mini, size-small        a larger model (4L/256H, 4L/512H) in the same time: fewer steps
#   vocab-4000, vocab-16000      the WordPiece vocabulary (trained on the same corpus)
#   seq-64                       blocks of at most 64 tokens (fine-tuning still sees 128)
#   packing                      lines joined and cut into full 128-token blocks (--concatenate), no padding
#   no-dropout                   dropout 0 in pre-training (Cramming); fine-tuning puts 0.1 back
#   lr-5e-4, lr-2e-3             the pre-training peak learning rate
#   cosine                       cosine decay instead of linear
#   wwm                          whole-word masking
#   idpt                         the paper's in-domain further pre-training: the task's text mixed with the
#                                English manual pages installed on the machine (tools/data/man_corpus.py: the
#                                same kind of text, programs and libraries described; DIR/man-corpus.txt), for
#                                the same steps, with the base's vocabulary
#   ft-pooler                    the base's pre-trained model fine-tuned on the pooler instead of the last [CLS]
#                                (what the fine-tuning features change on top of the recipe; bench/paper has the
#                                rest of the fine-tuning strategies)
# The same wall time: every pre-training configuration whose step costs differ from the base's (size, vocabulary,
# block length, packing) first runs a short calibration (100 steps, two at a time as the real runs go), and its
# max_steps is that rate times --budget (default 300 s: about 1.7 epochs of the base). A larger model or
# vocabulary thus gets fewer steps, a shorter block more; the others take the base's step count. Fine-tuning (the same for every row):
# head+tail 32 + 94 of 128 tokens, features cls (the last layer's [CLS]: the pooler is untrained without
# next-sentence prediction, bench/paper), lr 1e-3, warm-up 0.1, batch 32, one epoch over --max_train_samples
# (default 16,000) training rows, dev scored once at the end.
# Seeds: the base row gets --base-seeds (its spread is the noise the others are read against), the others
# --seeds. A seed is both the pre-training's and the fine-tuning's. Runs go --jobs at a time (default 2, one
# thread each); DIR/results.tsv gets one line per run (resumable: runs already there are skipped), and
# tools/paper/summarize.py prints mean ± sd per configuration.
# --quick: a 20-second budget, 2,000 fine-tuning rows, one seed, four configurations (a plumbing check: its
# figures mean nothing).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=out/recipe DATA=out/demo BUDGET=300 SEEDS="1" BASE_SEEDS="1 2 3" SAMPLES=16000 JOBS=2 ONLY="" QUICK=0
while (($#)); do
  case $1 in
    --out) OUT=$2; shift ;;
    --data) DATA=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --seeds) SEEDS=$2; shift ;;
    --base-seeds) BASE_SEEDS=$2; shift ;;
    --max_train_samples) SAMPLES=$2; shift ;;
    --jobs) JOBS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --quick) QUICK=1 ;;
    -h | --help) sed -n '2,39p' "$0"; exit 0 ;;
    *) echo "recipe: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((QUICK)); then BUDGET=20 SEEDS=1 BASE_SEEDS=1 SAMPLES=2000 ONLY=${ONLY:-base,vocab-4000,packing,ft-pooler}; fi
source bench/runs.sh
[[ -f $RES ]] || printf 'config\tseed\tdev_accuracy\tdev_macro_f1\tseconds\tpt_steps\tpt_seconds\theldout_mlm_loss\tcpu\n' >"$RES"
log() { echo "recipe: $(date +%H:%M:%S) $*"; }
wanted() { [[ -z $ONLY || ",$ONLY," == *",$1,"* ]]; }

# name|vocabulary|pre-training options|fine-tuning options|pre-trained model of (empty: its own). The base's
# size, block length and learning rate change by size=, seq=, lr= (an option may be given only once); steps=base:
# the base's step count (a change that costs the same per step: a calibration of its own would only add the
# calibration's noise, 10-20% between identical runs, measured).
CONFIGS=(
  "base|8000|||"
  "size-mini|8000|size=mini||"
  "size-small|8000|size=small||"
  "vocab-4000|4000|||"
  "vocab-16000|16000|||"
  "seq-64|8000|seq=64||"
  "packing|8000|--concatenate||"
  "no-dropout|8000|steps=base --hidden_dropout_prob 0 --attention_probs_dropout_prob 0|--hidden_dropout_prob 0.1 --attention_probs_dropout_prob 0.1|"
  "lr-5e-4|8000|steps=base lr=5e-4||"
  "lr-2e-3|8000|steps=base lr=2e-3||"
  "cosine|8000|steps=base --lr_scheduler_type cosine||"
  "wwm|8000|steps=base --whole_word_mask||"
  "idpt|8000|steps=base corpus=idpt||"
  "ft-pooler|8000||--features pooler|base"
)

# Tokenizers: the demo's 8,000 and the other sizes trained the same way on the same corpus.
tokenizer() {
  local v=$1
  if [[ $v == 8000 ]]; then echo "$DATA/tokenizer"; return; fi
  [[ -f $OUT/tokenizer-$v/vocab.txt ]] ||
    "$BF" train-tokenizer --corpus "$DATA/corpus.txt" --vocab-size "$v" --out "$OUT/tokenizer-$v" >"$OUT/tokenizer-$v.log" 2>&1
  echo "$OUT/tokenizer-$v"
}
pt_args() {  # vocabulary, then the configuration's options (size=, seq=, lr=, corpus= change the base's)
  local v=$1 size=tiny seq=128 lr=1e-3 corpus=$DATA/corpus.txt a extra=()
  shift
  for a in "$@"; do
    case $a in
      size=*) size=${a#size=} ;;
      seq=*) seq=${a#seq=} ;;
      lr=*) lr=${a#lr=} ;;
      corpus=idpt) corpus=$DATA/corpus.txt,$OUT/man-corpus.txt ;;
      steps=*) ;;
      *) extra+=("$a") ;;
    esac
  done
  echo --tokenizer "$(tokenizer "$v")" --train_file "$corpus" --model_size "$size" --max_seq_length "$seq" \
    --per_device_train_batch_size 32 --learning_rate "$lr" --warmup_ratio 0.1 --eval_strategy no \
    --save_strategy no --max_eval_samples 1000 --logging_steps 200 --threads "$THREADS" --overwrite_output_dir \
    "${extra[@]}"
}
json_value() {  # file, then a Python expression over the parsed JSON `j`
  /usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
rate() {  # training steps per second of a finished run
  json_value "$1/trainer_state.json" '[e for e in j["log_history"] if "train_steps_per_second" in e][-1]["train_steps_per_second"]'
}

# The in-domain text, once (its size depends on the packages installed: the script prints it).
if wanted idpt; then
  [[ -f $OUT/man-corpus.txt ]] || /usr/bin/python3 tools/data/man_corpus.py "$OUT/man-corpus.txt"
fi
# 1. Calibration: 100 steps of each pre-training configuration, --jobs at a time, once (kept in DIR/calibration).
mkdir -p "$OUT/calibration"
declare -A STEPS
for c in "${CONFIGS[@]}"; do
  IFS='|' read -r name vocab pt ft of <<<"$c"
  [[ -z $of && $pt != *steps=base* ]] && { wanted "$name" || [[ $name == base ]]; } || continue
  [[ -f $OUT/calibration/$name/trainer_state.json ]] && continue
  pool_wait "$JOBS"
  log "calibrating $name (100 steps)"
  # shellcheck disable=SC2046,SC2086  # the option lists are words
  "$BF" pretrain $(pt_args "$vocab" $pt) --max_steps 100 --seed 1 --output_dir "$OUT/calibration/$name" \
    >"$OUT/calibration/$name.log" 2>&1 &
done
pool_wait 1
((!FAILED)) || { log "a calibration failed (see $OUT/calibration/*.log)"; exit 1; }
for c in "${CONFIGS[@]}"; do
  IFS='|' read -r name vocab pt ft of <<<"$c"
  [[ -z $of ]] && { wanted "$name" || [[ $name == base ]]; } || continue
  if [[ $pt == *steps=base* ]]; then
    STEPS[$name]=${STEPS[base]}
    log "$name: the base's max_steps ${STEPS[$name]}"
    continue
  fi
  r=$(rate "$OUT/calibration/$name")
  STEPS[$name]=$(/usr/bin/python3 -c "print(max(20, round($r * $BUDGET)))")
  log "$name: $r steps/s -> max_steps ${STEPS[$name]} for ${BUDGET} s"
done

FT=(--train_file "$DATA/data/train.tsv" --validation_file "$DATA/data/dev.tsv" --text_columns title,abstract
  --label_column categories --quoting none --max_seq_length 128 --truncation head_tail --head_length 32
  --learning_rate 1e-3 --warmup_ratio 0.1 --num_train_epochs 1 --per_device_train_batch_size 32
  --max_train_samples "$SAMPLES" --eval_strategy no --save_strategy no --load_best_model_at_end false
  --logging_steps 500 --overwrite_output_dir --threads "$THREADS")
# 2. One run: pre-training for the configuration's steps (unless it uses another's model), then fine-tuning; one
# line appended to results.tsv.
recipe_run() {
  local name=$1 vocab=$2 pt=$3 ft=$4 of=$5 seed=$6 ptdir t0 t1 t2 steps loss
  local dir=$OUT/runs/$name-seed$seed
  mkdir -p "$dir"
  t0=$(date +%s)
  if [[ -z $of ]]; then
    ptdir=$dir/pretrained
    log "$name seed $seed: pre-training ${STEPS[$name]} steps"
    # shellcheck disable=SC2046,SC2086
    "$BF" pretrain $(pt_args "$vocab" $pt) --max_steps "${STEPS[$name]}" --seed "$seed" --output_dir "$ptdir" \
      >"$dir/pretrain.log" 2>&1 || { log "$name seed $seed: pre-training failed: $dir/pretrain.log"; return 1; }
  else
    ptdir=$OUT/runs/$of-seed$seed/pretrained
    [[ -f $ptdir/model.safetensors ]] || { log "$name seed $seed: needs $of seed $seed first"; return 1; }
  fi
  t1=$(date +%s)
  log "$name seed $seed: fine-tuning"
  local features=(--features cls)  # unless the configuration chooses (an option may be given once)
  [[ $ft == *--features* ]] && features=()
  # shellcheck disable=SC2086
  "$BF" finetune --model "$ptdir" --output_dir "$dir/finetuned" --seed "$seed" "${FT[@]}" "${features[@]}" $ft \
    >"$dir/finetune.log" 2>&1 || { log "$name seed $seed: fine-tuning failed: $dir/finetune.log"; return 1; }
  t2=$(date +%s)
  steps=$(json_value "$ptdir/trainer_state.json" 'j["global_step"]')
  loss=$(field "$ptdir/eval_results.json" eval_loss)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$seed" \
    "$(field "$dir/finetuned/eval_results.json" eval_accuracy)" "$(field "$dir/finetuned/eval_results.json" eval_macro_f1)" \
    "$((t2 - t1))" "$steps" "$([[ -z $of ]] && echo $((t1 - t0)) || echo 0)" "$loss" "$CPU" >>"$RES"
  rm -f "$dir/finetuned/model.safetensors"  # the pre-trained model stays (ft-* rows fine-tune it again)
}
# Seeds in the outer loop (a study stopped early has every configuration at the same number of seeds); the
# base's extra seeds after the others.
ALL_SEEDS=$(printf '%s\n' $SEEDS $BASE_SEEDS | awk '!seen[$0]++' | xargs)
for seed in $ALL_SEEDS; do
  for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name vocab pt ft of <<<"$c"
    wanted "$name" || continue
    # The base and the rows that fine-tune its model: the base's seeds; the others: --seeds.
    if [[ $name == base || $of == base ]]; then
      [[ " $BASE_SEEDS " == *" $seed "* ]] || continue
    else
      [[ " $SEEDS " == *" $seed "* ]] || continue
    fi
    ! done_already "$name" "$seed" || continue
    # A fine-tuning of another configuration's model waits for that model.
    if [[ -n $of ]]; then while [[ ! -f $OUT/runs/$of-seed$seed/finetuned/eval_results.json ]]; do
      pool_wait "$JOBS"; ((FAILED)) && break 2; sleep 5; done; fi
    pool_wait "$JOBS"
    recipe_run "$name" "$vocab" "$pt" "$ft" "$of" "$seed" &
  done
done
pool_wait 1
((!FAILED)) || { log "a run failed (see above)"; exit 1; }
/usr/bin/python3 tools/paper/summarize.py "$RES"
