#!/usr/bin/env bash
# Tests through the built binary, as fastText's are (issue 11, item 6). One case per CTest entry:
#   e2e_test.sh BERTFIT FIXTURES WORK CASE
# CASE:
#   pipeline  train-tokenizer -> pretrain (tiny BERT from scratch, a few steps) -> finetune -> evaluate ->
#             predict -> submission CSV, on a small real file (Debian package descriptions, tests/fixtures/cli);
#             multi-task finetune -> evaluate of each task's directory
#   resume    kill -9 at a random step, and the leftovers of a kill during a checkpoint save; then
#             --resume_from_checkpoint latest ends with model.safetensors bitwise equal to an uninterrupted run
#   lowp      low precision: finetune --bf16 learns, pretrain --bf16 runs; bertfit quantize -> evaluate / predict on the int8 model
#             (it learnt too); the AVX2 fallbacks give the same bits (a --bf16 run's model, the int8
#             evaluation); finetune refuses an int8 directory by name; info names both paths
#   outputs   output_dir as ".", "dir/." or a symlink; --overwrite_output_dir over an earlier run; the best
#             checkpoint found by a resume after the directory moved; predict's submission ids and output
#             paths; quantize into its own input
#   errors    every input defect of issue 11 that the data and evaluation code decide: exit 1 and its message
#   electra   pretrain --objective electra (tiny, embeddings projected, a few steps) -> the discriminator and
#             generator directories -> finetune with layer features and chunk pooling -> evaluate -> predict
#   wired     the defects whose check the training loop must call (see the branch's report): run it once the
#             loop calls them; it is not registered with CTest before that
# Every command's output is kept under WORK/<case>/ for a failing run.
set -euo pipefail

BF=$1
FIX=$2
WORK=$3/$4
CASE=$4
DATA=$FIX/cli
export OMP_WAIT_POLICY=PASSIVE
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
# run NAME CMD...: runs CMD with its output in NAME.log; fails the test when it fails.
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
# expect_error NAME MESSAGE CMD...: CMD must exit 1 and print MESSAGE (a fixed string) on stderr.
expect_error() {
  local name=$1 message=$2
  shift 2
  local rc=0
  "$@" >"$name.out" 2>"$name.err" || rc=$?
  [[ $rc -eq 1 ]] || {
    cat "$name.out" "$name.err" >&2
    fail "$name: exit $rc, expected 1 ($*)"
  }
  grep -qF -- "$message" "$name.err" || {
    cat "$name.err" >&2
    fail "$name: stderr lacks: $message"
  }
  grep -q "internal error" "$name.err" && fail "$name: an internal error instead of a bertfit error"
  echo "ok: $name"
}
same_bytes() {
  cmp -s "$1" "$2" || fail "$1 and $2 differ"
}

# The model every case fine-tunes: a WordPiece vocabulary trained on the training text (both option
# spellings of train-tokenizer) and a tiny BERT pre-trained from scratch for a few steps.
COMMON=(--threads 2 --seed 7)
make_model() {
  awk -F'\t' 'FNR > 1 { print $2 "." $3 }' "$DATA/train.tsv" >corpus.txt
  run tokenizer "$BF" train-tokenizer --corpus corpus.txt --out tok --vocab_size 1200 --min-frequency 2
  run pretrain "$BF" pretrain --tokenizer_name tok --train_file corpus.txt --model_size tiny \
    --max_seq_length 64 --per_device_train_batch_size 16 --learning_rate 1e-3 --max_steps 6 \
    --eval_strategy no --logging_steps 3 --output_dir pretrained --overwrite_output_dir "${COMMON[@]}"
  [[ -f pretrained/model.safetensors && -f pretrained/config.json ]] || fail "pretrain wrote no model"
}
FT_BASE=(--model pretrained --train_file "$DATA/train.tsv" --text_columns title,abstract
  --label_column categories --id_column paperid --quoting auto --max_seq_length 64 --learning_rate 1e-3
  --logging_steps 5 "${COMMON[@]}")
# CLI11 refuses an option given twice: the cases that vary these start from FT_BASE.
FT=("${FT_BASE[@]}" --head_length 16 --per_device_train_batch_size 16)

case $CASE in
pipeline)
  make_model
  run finetune "$BF" finetune "${FT[@]}" --validation_file "$DATA/dev.tsv" --num_train_epochs 8 \
    --output_dir ft --overwrite_output_dir
  for f in model.safetensors config.json tokenizer.json training_args.json trainer_state.json \
    eval_results.json; do
    [[ -f ft/$f ]] || fail "finetune did not write ft/$f"
  done
  grep -q "tokens per text: mean" finetune.log || fail "finetune printed no token statistics"
  run evaluate "$BF" evaluate --model ft --file "$DATA/test_labels.tsv" --output test.json --threads 2
  rows=$(($(grep -c . "$DATA/test_labels.tsv") - 1))
  grep -qF "\"examples\": $rows," test.json || fail "evaluate: not $rows examples in test.json"
  # It learnt: four balanced sections, chance is 0.25; this run reaches about 0.85 on dev (0.6 leaves room
  # for another CPU's rounding, e.g. AVX-512 against AVX2 kernels).
  acc=$(sed -n 's/^ *"accuracy": \([0-9.eE+-]*\),*$/\1/p' test.json)
  awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || fail "test accuracy $acc: the model did not learn"
  grep -qF "$DATA/test_labels.tsv: $rows examples, accuracy" evaluate.log || fail "evaluate: no summary line"
  # The evaluate path scores what finetune's final evaluation scores: the same file gives the same accuracy.
  run evaluate-dev "$BF" evaluate --model ft --file "$DATA/dev.tsv" --output dev.json --threads 2
  acc_ft=$(sed -n 's/^ *"eval_accuracy": \([0-9.eE+-]*\),*$/\1/p' ft/eval_results.json)
  acc_ev=$(sed -n 's/^ *"accuracy": \([0-9.eE+-]*\),*$/\1/p' dev.json)
  [[ -n $acc_ft && $acc_ft == "$acc_ev" ]] || fail "dev accuracy: finetune $acc_ft, evaluate $acc_ev"
  run predict "$BF" predict --model ft --file "$DATA/test.tsv" --output pred.tsv --all_probs \
    --submission submission.csv --threads 2
  [[ $(head -1 submission.csv) == "paperid,categories" ]] || fail "submission header: $(head -1 submission.csv)"
  # The batch size changes nothing: one document at a time (each at its own length, not padded to the
  # batch's longest) gives the same bytes.
  run predict-batch1 "$BF" predict --model ft --file "$DATA/test.tsv" --output pred_b1.tsv --all_probs \
    --batch_size 1 --threads 2
  same_bytes pred.tsv pred_b1.tsv
  trows=$(($(grep -c . "$DATA/test.tsv") - 1))
  [[ $(($(wc -l <submission.csv) - 1)) -eq $trows ]] || fail "submission: not $trows rows"
  # Ids in the test file's order, labels among the training labels.
  diff <(cut -f1 "$DATA/test.tsv" | tail -n +2) <(cut -d, -f1 submission.csv | tail -n +2) >/dev/null ||
    fail "submission ids differ from the test file's"
  cut -f4 "$DATA/train.tsv" | tail -n +2 | sort -u >labels.txt
  cut -d, -f2 submission.csv | tail -n +2 | sort -u | while read -r l; do
    grep -qxF "$l" labels.txt || fail "submission label '$l' is not a training label"
  done
  # The TSV's labels and the submission's agree; every class has a probability column.
  diff <(cut -f2 pred.tsv | tail -n +2) <(cut -d, -f2 submission.csv | tail -n +2) >/dev/null ||
    fail "pred.tsv and submission.csv disagree"
  [[ $(head -1 pred.tsv | tr '\t' '\n' | grep -c '^p_') -eq $(wc -l <labels.txt) ]] ||
    fail "pred.tsv: not one probability column per class"
  # An ensemble of the model with its own prediction file is that model (issue 15): its labels, its submission.
  run ensemble "$BF" ensemble --inputs pred.tsv,ft --file "$DATA/test.tsv" --weights 1,2 --output ens.tsv \
    --submission ens.csv --threads 2
  diff <(cut -f2 pred.tsv | tail -n +2) <(cut -f2 ens.tsv | tail -n +2) >/dev/null ||
    fail "the ensemble of one model changed its labels"
  same_bytes submission.csv ens.csv
  # Multi-task (issue 15 item 7): two tasks on one encoder (the second reads the titles only); each task's
  # directory is a plain classifier that evaluate scores as the run did, reading the task's columns from its
  # training_args.json. Six steps do not get past predicting one class, so the check is the loss (it differs
  # between the tasks' heads in the third digit): an example's logits do not depend on its batch, and the
  # sums over other batchings differ by double rounding (~1e-16), far below 1e-9.
  run multitask "$BF" finetune --model pretrained --task all="$DATA/train.tsv" --task titles="$DATA/train.tsv" \
    --task_validation_file all="$DATA/dev.tsv",titles="$DATA/dev.tsv" --task_text_columns titles=title \
    --text_columns title,abstract --label_column categories --id_column paperid --max_seq_length 64 \
    --learning_rate 1e-3 --max_steps 6 --per_device_train_batch_size 16 --output_dir mt "${COMMON[@]}"
  for t in all titles; do
    [[ -f mt/$t/model.safetensors && -f mt/$t/training_args.json ]] || fail "multitask: no model in mt/$t"
    run "evaluate-$t" "$BF" evaluate --model "mt/$t" --file "$DATA/dev.tsv" --output "mt_$t.json" --threads 2
    loss_mt=$(sed -n "s/^ *\"eval_${t}_loss\": \([0-9.eE+-]*\),*\$/\1/p" mt/eval_results.json)
    loss_ev=$(sed -n 's/^ *"loss": \([0-9.eE+-]*\),*$/\1/p' "mt_$t.json")
    awk -v a="$loss_mt" -v b="$loss_ev" 'BEGIN { exit !(a != "" && (a - b) ^ 2 < 1e-18) }' ||
      fail "multitask $t: dev loss $loss_mt in the run, $loss_ev from evaluate"
  done
  [[ $(sed -n 's/^ *"loss": \([0-9.eE+-]*\),*$/\1/p' mt_all.json) != \
    $(sed -n 's/^ *"loss": \([0-9.eE+-]*\),*$/\1/p' mt_titles.json) ]] || fail "multitask: both tasks' losses equal"
  # Predict on the labelled file gives the labels evaluate scored: its accuracy recomputed from pred.tsv.
  run predict-labelled "$BF" predict --model ft --file "$DATA/test_labels.tsv" --output pred_l.tsv --threads 2
  right=$(paste <(cut -f4 "$DATA/test_labels.tsv" | tail -n +2) <(cut -f2 pred_l.tsv | tail -n +2) |
    awk -F'\t' '$1 == $2' | wc -l)
  acc=$(sed -n 's/^ *"accuracy": \([0-9.eE+-]*\),*$/\1/p' test.json)
  awk -v r="$right" -v n="$rows" -v a="$acc" 'BEGIN { exit !(r / n == a + 0 || (r / n - a) ^ 2 < 1e-12) }' ||
    fail "evaluate accuracy $acc, predictions right $right of $rows"
  # Both spellings on tokenize.
  echo "a small test" | "$BF" tokenize --model ft --max_length 8 --no_special --json >tok_snake.txt
  echo "a small test" | "$BF" tokenize --model ft --max-length 8 --no-special --json >tok_kebab.txt
  same_bytes tok_snake.txt tok_kebab.txt
  grep -q '"ids"' tok_snake.txt || fail "tokenize printed no ids"
  ;;

resume)
  make_model
  # 24 steps, a checkpoint every 3 (all kept), the same settings for every run.
  R=("${FT[@]}" --validation_file "$DATA/dev.tsv" --max_steps 24 --eval_strategy steps --eval_steps 3
    --save_total_limit 0)
  run full "$BF" finetune "${R[@]}" --output_dir full --overwrite_output_dir
  # kill -9 at a random step: after a random checkpoint is complete, a random moment later.
  k=$(((RANDOM % 6 + 1) * 3))
  "$BF" finetune "${R[@]}" --output_dir killed --overwrite_output_dir >killed.log 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null && [[ ! -f killed/checkpoint-$k/trainer_state.json ]]; do sleep 0.01; done
  sleep "0.0$((RANDOM % 10))"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  echo "killed after checkpoint-$k (the run had reached: $(ls killed | grep -c '^checkpoint-') checkpoints)"
  [[ -f killed/checkpoint-$k/trainer_state.json ]] || fail "the run ended before checkpoint-$k"
  [[ -f killed/model.safetensors ]] && fail "the run finished before the kill"
  run resumed "$BF" finetune "${R[@]}" --output_dir killed --resume_from_checkpoint latest
  grep -q "resuming from" resumed.log || fail "no resume"
  same_bytes full/model.safetensors killed/model.safetensors
  echo "ok: kill -9 at a random step, resumed bitwise"

  # kill -9 during a checkpoint save: once the first checkpoint is complete, as soon as the staging
  # directory of a later save appears. A save takes milliseconds: up to three runs try to catch one.
  caught=""
  for attempt in 1 2 3; do
    "$BF" finetune "${R[@]}" --output_dir saving --overwrite_output_dir >saving.log 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [[ ! -f saving/checkpoint-3/trainer_state.json ]]; do sleep 0.005; done
    while kill -0 "$pid" 2>/dev/null; do
      staging=$(cd saving && compgen -G "checkpoint-*.tmp-*" || true)
      if [[ -n $staging && $staging != checkpoint-3.* ]]; then
        kill -9 "$pid" 2>/dev/null || true
        caught=$staging
        break
      fi
    done
    wait "$pid" 2>/dev/null || true
    [[ -n $caught ]] && break
  done
  if [[ -n $caught ]]; then
    echo "killed during the save of $caught; left: $(ls saving | tr '\n' ' ')"
    run resumed-save "$BF" finetune "${R[@]}" --output_dir saving --resume_from_checkpoint latest
    grep -q "resuming from" resumed-save.log || fail "no resume"
    compgen -G "saving/checkpoint-*.tmp-*" >/dev/null && fail "a staging directory was left: $(ls saving)"
    same_bytes full/model.safetensors saving/model.safetensors
    echo "ok: kill -9 during a save, resumed bitwise"
  else
    echo "NOTE: no save was caught in three runs (saves too quick here); the deterministic case below stands"
  fi

  # The same leftovers made deterministically (the race above is not always won): the uninterrupted run's
  # directory cut back to checkpoint-12, with checkpoint-12 missing trainer_state.json (killed after the
  # weights took their name) and checkpoint-15's staging directory of a dead process.
  cp -r full sim
  rm -rf sim/checkpoint-1[5-9] sim/checkpoint-2[0-9] sim/model.safetensors sim/trainer_state.json
  rm -f sim/checkpoint-12/trainer_state.json
  mkdir sim/checkpoint-15.tmp-4194309
  cp sim/checkpoint-12/model.safetensors sim/checkpoint-15.tmp-4194309/
  run resumed-sim "$BF" finetune "${R[@]}" --output_dir sim --resume_from_checkpoint latest
  grep -q "resuming from .*checkpoint-9 " resumed-sim.log ||
    fail "did not resume from the last complete checkpoint (9): $(grep resuming resumed-sim.log)"
  [[ -e sim/checkpoint-15.tmp-4194309 ]] && fail "the staging directory was left"
  same_bytes full/model.safetensors sim/model.safetensors
  echo "ok: leftovers of a kill during a save skipped and removed, resumed bitwise"
  ;;

outputs)
  # Output directories and files as users give them (the save keeps an existing directory's inode).
  make_model
  S=("${FT[@]}" --max_steps 6 --eval_strategy no --save_strategy steps --save_steps 3)
  # "." (the working directory; a mount point or a volume behaves as it does) and "dir/.".
  mkdir here
  (cd here && run ../dot "$BF" finetune "${S[@]/#pretrained/../pretrained}" --output_dir .)
  [[ -f here/model.safetensors && -f here/checkpoint-6/trainer_state.json ]] || fail "nothing saved in ."
  compgen -G "here/.bertfit-save-*" >/dev/null && fail "a staging directory was left in here/"
  run slashdot "$BF" finetune "${S[@]}" --output_dir sub/.
  [[ -f sub/model.safetensors ]] || fail "nothing saved in sub/."
  same_bytes here/model.safetensors sub/model.safetensors
  # A symlink to a directory stays a symlink; the model lands where it points.
  mkdir real
  ln -s real link
  run symlink "$BF" finetune "${S[@]}" --output_dir link
  [[ -L link && -f real/model.safetensors && -f real/checkpoint-6/trainer_state.json ]] ||
    fail "the symlinked output_dir was replaced: $(ls -la link real)"
  same_bytes here/model.safetensors real/model.safetensors
  echo "ok: output_dir ., dir/. and a symlink"

  # kill -9 at each rename of a save into an existing directory (strace's fault injection, where strace is
  # installed): the directory is the old one whole, or has no weights (loaders refuse it), or is the new one
  # whole; never the old weights beside a new config (which would load and predict garbage). The old config
  # differs from the new one (a field changed by hand), so a mixed directory shows.
  if command -v strace >/dev/null && strace -o /dev/null true 2>/dev/null; then  # (ptrace may be refused)
    sed 's/"hidden_dropout_prob": 0.1/"hidden_dropout_prob": 0.125/' here/config.json >old-config.json
    cmp -s old-config.json here/config.json && fail "the old config was not changed"
    K=("$BF" finetune "${S[@]}" --weight_decay 0.01 --output_dir killed-save --overwrite_output_dir)  # other weights
    rm -rf killed-save && cp -r here killed-save && cp old-config.json killed-save/config.json
    strace -f -o renames.txt -e trace=rename "${K[@]}" >/dev/null 2>&1 || fail "the traced save failed"
    # The save into killed-save itself: the renames of its top-level files.
    mapfile -t at < <(grep -n 'rename(' renames.txt | grep -E '"killed-save/[^/"]*"\) = 0$' | cut -d: -f1)
    [[ ${#at[@]} -ge 6 ]] || fail "the final save's renames were not found: $(tail -5 renames.txt)"
    for n in "${at[@]}"; do
      rm -rf killed-save && cp -r here killed-save && cp old-config.json killed-save/config.json
      strace -f -o /dev/null -e trace=rename -e inject=rename:signal=SIGKILL:when="$n" "${K[@]}" >/dev/null 2>&1 || true
      if [[ -f killed-save/model.safetensors ]] && cmp -s killed-save/model.safetensors here/model.safetensors; then
        cmp -s killed-save/config.json old-config.json ||
          fail "killed at rename $n: the old weights beside a new config.json"
      fi
    done
    echo "ok: kill -9 at each of ${#at[@]} renames of a save: never old weights beside new files"
  else
    echo "NOTE: strace missing or refused: the kill at each rename of a save is not tested here"
  fi

  # Two runs into one output_dir: the second is refused while the first holds the directory's lock; a
  # kill -9 releases it.
  "$BF" finetune "${FT[@]}" --max_steps 100000 --eval_strategy no --save_strategy no --output_dir busy \
    --overwrite_output_dir >busy.log 2>&1 &
  busy=$!
  for _ in $(seq 1000); do [[ -f busy/training_args.json ]] && break; sleep 0.01; done
  [[ -f busy/training_args.json ]] || fail "the first run did not start: $(cat busy.log)"
  expect_error output-dir-in-use "output_dir busy is in use by another bertfit run" \
    "$BF" finetune "${S[@]}" --output_dir busy --overwrite_output_dir
  kill -9 "$busy"
  wait "$busy" 2>/dev/null || true
  run after-kill "$BF" finetune "${S[@]}" --output_dir busy --overwrite_output_dir

  # --overwrite_output_dir over an earlier run: its checkpoints go (a later resume would take them).
  run again "$BF" finetune "${FT[@]}" --max_steps 4 --eval_strategy no --save_strategy steps --save_steps 2 --output_dir sub \
    --overwrite_output_dir
  grep -q "removed 2 checkpoint(s) of an earlier run" again.log || fail "no removal: $(cat again.log)"
  [[ "$(ls -d sub/checkpoint-* | tr '\n' ' ')" == "sub/checkpoint-2 sub/checkpoint-4 " ]] ||
    fail "checkpoints left: $(ls sub)"
  grep -q '"num_train_epochs": 1,' sub/trainer_state.json || fail "trainer_state.json: num_train_epochs"
  # ...but never the checkpoint the run starts from.
  run from-own-checkpoint "$BF" finetune "${FT_BASE[@]/#pretrained/sub/checkpoint-2}" --max_steps 2 \
    --eval_strategy no --output_dir sub --overwrite_output_dir
  [[ -f sub/checkpoint-2/model.safetensors ]] || fail "the --model checkpoint was removed: $(ls sub)"
  echo "ok: --overwrite_output_dir removed the earlier run's checkpoints"

  # A resumed run finds its best checkpoint after the directory moved and from another working directory
  # (trainer_state.json names it as the first run spelled it). The best is made unbeatable (accuracy 1.0 at
  # step 3) so that the end must load checkpoint-3, not keep the last step's weights.
  B=("${FT[@]}" --validation_file "$DATA/dev.tsv" --max_steps 9 --eval_strategy steps --eval_steps 3
    --save_total_limit 0 --metric_for_best_model eval_accuracy)
  run best "$BF" finetune "${B[@]}" --output_dir first
  rm -rf first/checkpoint-9 first/model.safetensors first/trainer_state.json
  sed -i -e 's/"best_global_step": [0-9]*/"best_global_step": 3/' -e 's/"best_metric": [0-9.eE+-]*/"best_metric": 1.0/' \
    -e 's|"best_model_checkpoint": "[^"]*"|"best_model_checkpoint": "first/checkpoint-3"|' first/checkpoint-6/trainer_state.json
  mv first moved
  mkdir elsewhere
  (cd elsewhere && run ../moved-resume "$BF" finetune "${B[@]/#pretrained/../pretrained}" --output_dir ../moved \
    --resume_from_checkpoint latest)
  grep -q "loaded the best model: ../moved/checkpoint-3 " moved-resume.log ||
    fail "the best checkpoint was not loaded: $(grep -i best moved-resume.log)"
  same_bytes moved/checkpoint-3/model.safetensors moved/model.safetensors
  # Again from checkpoint-6 named explicitly, with a trailing slash; its step-9 checkpoint is replaced whole.
  (cd elsewhere && run ../moved-resume2 "$BF" finetune "${B[@]/#pretrained/../pretrained}" --output_dir ../moved \
    --resume_from_checkpoint ../moved/checkpoint-6/)
  grep -q "loaded the best model: ../moved/checkpoint-3 " moved-resume2.log ||
    fail "the best checkpoint was not loaded: $(grep -i best moved-resume2.log)"
  echo "ok: the best checkpoint found after a move, from another directory"

  # predict: a submission takes the ids from the file's paperid column when the model names no id column;
  # an output path in a missing directory is refused before any work; quantize refuses its own input.
  cp -r here noid
  sed -i 's/"id_column": "paperid"/"id_column": ""/' noid/training_args.json
  run submission "$BF" predict --model noid --file "$DATA/test.tsv" --submission sub.csv
  [[ "$(sed -n 2p sub.csv | cut -d, -f1)" == "$(sed -n 2p "$DATA/test.tsv" | cut -f1)" ]] ||
    fail "the submission's first id: $(sed -n 2p sub.csv)"
  expect_error predict-missing-dir "the directory no-such-dir does not exist" \
    "$BF" predict --model here --file "$DATA/test.tsv" --output no-such-dir/p.tsv
  # An output that is the input, or two outputs that are one file, are refused before any work.
  cp "$DATA/test.tsv" in.tsv
  expect_error predict-over-input "--metrics: ./in.tsv is the input in.tsv" \
    "$BF" predict --model here --file in.tsv --metrics ./in.tsv
  cmp -s in.tsv "$DATA/test.tsv" || fail "predict replaced its input"
  expect_error predict-two-outputs "options --output and --submission name the same file" \
    "$BF" predict --model here --file in.tsv --output o.tsv --submission ./o.tsv
  # JSON Lines: the id is the key named like the submission's header.
  awk -F'\t' 'NR > 1 { printf "{\"paperid\": \"%s\", \"title\": \"%s\", \"abstract\": \"x\"}\n", $1, $1 }' \
    "$DATA/test.tsv" >in.jsonl
  run submission-jsonl "$BF" predict --model noid --file in.jsonl --submission sub-jsonl.csv
  [[ "$(sed -n 2p sub-jsonl.csv | cut -d, -f1)" == "$(sed -n 2p "$DATA/test.tsv" | cut -f1)" ]] ||
    fail "the JSONL submission's first id: $(sed -n 2p sub-jsonl.csv)"
  expect_error quantize-in-place "would replace the float weights" "$BF" quantize here here/.
  expect_error serve-port "--port 70000 is not a TCP port" "$BF" serve --model here --port 70000
  ;;

errors)
  make_model
  run finetune "$BF" finetune "${FT[@]}" --validation_file "$DATA/dev.tsv" --max_steps 2 --output_dir ft \
    --overwrite_output_dir
  # A1: a label the training labels lack, in the validation file and in evaluate's file.
  { head -3 "$DATA/dev.tsv"; printf 'x1\tSome tool\tDoes things.\tno-such-section\n'; } >dev_label.tsv
  expect_error label-finetune "dev_label.tsv:4: unknown label 'no-such-section' (not among the training labels" \
    "$BF" finetune "${FT[@]}" --validation_file dev_label.tsv --max_steps 2 --output_dir ft_label \
    --overwrite_output_dir
  expect_error label-evaluate "dev_label.tsv:4: unknown label 'no-such-section' (not among the training labels" \
    "$BF" evaluate --model ft --file dev_label.tsv
  # Item 3: the user's file-system errors name the path and exit 1 (not an internal error, exit 2).
  echo not a directory >out_file
  expect_error output-is-file "out_file" \
    "$BF" finetune "${FT[@]}" --max_steps 1 --output_dir out_file --overwrite_output_dir
  expect_error output-unwritable "/proc/bertfit-e2e" \
    "$BF" finetune "${FT[@]}" --max_steps 1 --output_dir /proc/bertfit-e2e/run
  expect_error predict-unwritable "/proc/bertfit-e2e" \
    "$BF" predict --model ft --file "$DATA/test.tsv" --text_columns title,abstract --output /proc/bertfit-e2e/p.tsv
  # The thread pool's waiting (core/wait_policy.h): bad settings are refused before any work, good ones shown.
  expect_error wait-policy "BERTFIT_WAIT_POLICY=spinny: expected adaptive, passive or active" \
    env BERTFIT_WAIT_POLICY=spinny "$BF" evaluate --model ft --file "$DATA/dev.tsv"
  expect_error spin-us "BERTFIT_SPIN_US=-5: expected microseconds" env BERTFIT_SPIN_US=-5 "$BF" info
  BERTFIT_WAIT_POLICY=active BERTFIT_SPIN_US=20 "$BF" info >info.log
  grep -q "^waiting: active (spin 20 us, then sleep)" info.log || fail "bertfit info: $(grep waiting info.log)"
  # Huge pages for the large buffers (core/aligned_buffer.h): shown, and a bad setting refused.
  grep -q "^memory:  buffers of 2 MiB or more advised as transparent huge pages" info.log ||
    fail "bertfit info: $(grep memory info.log)"
  BERTFIT_HUGE_PAGES=0 "$BF" info | grep -q "^memory:  off (BERTFIT_HUGE_PAGES=0)" || fail "BERTFIT_HUGE_PAGES=0 not shown"
  expect_error huge-pages "BERTFIT_HUGE_PAGES=yes: expected 0 (off) or 1" env BERTFIT_HUGE_PAGES=yes "$BF" info
  # A3: a header and no rows.
  head -1 "$DATA/dev.tsv" >header_only.tsv
  expect_error empty-finetune "header_only.tsv: no data rows" \
    "$BF" finetune "${FT[@]}" --validation_file header_only.tsv --max_steps 2 --output_dir ft_empty \
    --overwrite_output_dir
  expect_error empty-evaluate "header_only.tsv: no data rows" "$BF" evaluate --model ft --file header_only.tsv
  expect_error empty-predict "header_only.tsv: no data rows" \
    "$BF" predict --model ft --file header_only.tsv --submission never.csv
  [[ -e never.csv ]] && fail "predict wrote a submission for an empty file"
  # A4: a batch too large for memory.
  expect_error memory "does not fit" \
    "$BF" finetune "${FT_BASE[@]}" --head_length 16 --per_device_train_batch_size 100000000 --max_steps 1 \
    --output_dir ft_mem \
    --overwrite_output_dir
  # A5: a bare quote read with --quoting rfc4180 names the line where the quote opened and --quoting none;
  # auto (the data layer's default) reads it.
  { head -3 "$DATA/dev.tsv"; printf 'q1\t"Hello" world\tPrints "hello".\t%s\n' "$(sed -n 2p "$DATA/dev.tsv" | cut -f4)"
    sed -n 4,6p "$DATA/dev.tsv"; } >quotes.tsv
  expect_error quote-rfc "quotes.tsv:4: field 2: unexpected character after a closing quote" \
    "$BF" evaluate --model ft --file quotes.tsv --quoting rfc4180
  grep -qF -- "--quoting none" quote-rfc.err || fail "the quoting error does not name --quoting none"
  run quote-auto "$BF" evaluate --model ft --file quotes.tsv --quoting auto
  grep -qF "quotes.tsv: 6 examples" quote-auto.log || fail "quoting auto did not read 6 rows"
  { head -3 "$DATA/dev.tsv"; printf 'q1\t"Hello world\tPrints.\tnet\n'; } >unterminated.csv.tsv
  expect_error quote-open "unterminated.csv.tsv:4: field 2: quoted field is never closed" \
    "$BF" evaluate --model ft --file unterminated.csv.tsv --quoting rfc4180
  # Settings that would be silently ignored or misread: a feature layer beyond the hidden states (negative ones
  # count from the top, as hidden_states[i]), a feature layer without --features layer, chunks of pairs.
  expect_error feature-layer "feature layer -4 is not one of the model's 3 hidden states" \
    "$BF" finetune "${FT[@]}" --features layer --feature_layer -4 --max_steps 1 --output_dir fl --overwrite_output_dir
  expect_error feature-layer-unused "--feature_layer: is read only with --features layer (got --features cls)" \
    "$BF" finetune "${FT[@]}" --features cls --feature_layer 0 --max_steps 1 --output_dir fl --overwrite_output_dir
  expect_error chunks-of-pairs "--chunk_pooling: is for single long texts" \
    "$BF" finetune "${FT[@]}" --text_pair_column abstract --chunk_pooling mean --max_steps 1 --output_dir fl \
    --overwrite_output_dir
  run layer-minus-1 "$BF" finetune "${FT[@]}" --features layer --feature_layer -1 --max_steps 2 --eval_strategy no \
    --output_dir fl-1 --overwrite_output_dir
  run layer-2 "$BF" finetune "${FT[@]}" --features layer --feature_layer 2 --max_steps 2 --eval_strategy no \
    --output_dir fl2 --overwrite_output_dir
  same_bytes fl-1/model.safetensors fl2/model.safetensors
  # A6 (tokenize applies the check itself): head+tail whose head leaves no room for the tail.
  expect_error head-length "--head_length 14 leaves no room for the tail: --max_length 16" \
    sh -c "echo 'a b c' | '$BF' tokenize --model ft --max_length 16 --truncation head_tail --head_length 14"
  expect_error tokenize-utf8 "stdin:2: invalid UTF-8 at byte 1" \
    sh -c "printf 'fine\\n\\377\\376 bad\\n' | '$BF' tokenize --model ft"
  # Without --head_length, tokenize takes finetune's default (a quarter of the 14 text tokens: 4).
  run head-length-default sh -c "yes 'a b c d e f g h' | head -3 | tr '\n' ' ' |
    '$BF' tokenize --model ft --max_length 16 --truncation head_tail --json"
  [[ "$(grep -o '"ids":\[[^]]*\]' head-length-default.log | tr -cd , | wc -c)" == 15 ]] ||
    fail "tokenize head_tail at 16: $(cat head-length-default.log)"
  # The evaluate / predict option errors.
  expect_error predict-nothing "give --output and/or --submission" "$BF" predict --model ft --file "$DATA/test.tsv"
  expect_error not-classifier "not a fine-tuned classifier" "$BF" evaluate --model pretrained --file "$DATA/dev.tsv"
  expect_error no-column "no column 'nope' in the header" \
    "$BF" evaluate --model ft --file "$DATA/dev.tsv" --text_columns nope
  ;;

wired)
  # bertfit's pool waits adaptively by default; OpenBLAS's libgomp threads wait passively unless the user says
  # otherwise (main.cpp re-executes itself once with OMP_WAIT_POLICY=PASSIVE, since libgomp reads it before
  # main).
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT -u BERTFIT_WAIT_POLICY -u BERTFIT_SPIN_US "$BF" info >info_default.log
  grep -q '^waiting: adaptive (spin 100 us while' info_default.log || fail "default waiting: $(grep waiting info_default.log)"
  grep -q '^OpenBLAS waiting: OMP_WAIT_POLICY=PASSIVE ' info_default.log ||
    fail "default OpenBLAS waiting: $(grep waiting info_default.log)"
  OMP_WAIT_POLICY=ACTIVE "$BF" info >info_active.log
  grep -q '^OpenBLAS waiting: OMP_WAIT_POLICY=ACTIVE ' info_active.log ||
    fail "the user's policy: $(grep waiting info_active.log)"
  make_model
  # A5: the default quoting reads TSVs with bare quotes (needs the default "auto" in training_args.h).
  { head -3 "$DATA/train.tsv"; printf 'q1\t"Hello" world\tPrints "hello".\t%s\n' "$(sed -n 2p "$DATA/train.tsv" | cut -f4)"
    tail -n +4 "$DATA/train.tsv"; } >train_quotes.tsv
  run quote-default "$BF" finetune --model pretrained --train_file train_quotes.tsv --text_columns title,abstract \
    --label_column categories --max_seq_length 64 --head_length 16 --max_steps 1 --output_dir ft_q \
    --overwrite_output_dir "${COMMON[@]}"
  # A6: finetune checks --head_length (needs check_encode_options called by finetune, without the clamp).
  expect_error head-length-ft "--head_length 62 leaves no room for the tail" \
    "$BF" finetune "${FT_BASE[@]}" --head_length 62 --max_steps 1 --output_dir ft_h --overwrite_output_dir
  # The default head_length is a quarter of the text tokens (16 of 62 at length 64), recorded in config.json.
  run head-length-default "$BF" finetune "${FT_BASE[@]}" --max_steps 1 --output_dir ft_h --overwrite_output_dir
  grep -q '"head_length": 16' ft_h/config.json || fail "head_length default: $(grep head_length ft_h/config.json)"
  grep -q 'head_tail (head 16)' head-length-default.log || fail "the model line does not name the head length"
  # Stages as HF's run_classification: --do_eval / --do_predict alone use the fine-tuned model, train nothing.
  run stages "$BF" finetune --model ft_h --validation_file "$DATA/dev.tsv" --test_file "$DATA/test.tsv" \
    --text_columns title,abstract --label_column categories --id_column paperid --do_eval --do_predict \
    --output_dir ft_stages "${COMMON[@]}"
  [[ -f ft_stages/eval_results.json && -f ft_stages/submission.csv && ! -e ft_stages/model.safetensors ]] ||
    fail "--do_eval --do_predict alone: $(ls ft_stages)"
  "$BF" evaluate --model ft_h --file "$DATA/dev.tsv" --text_columns title,abstract --label_column categories \
    --output ev.json >/dev/null 2>&1 || fail "evaluate ft_h"
  acc_stage=$(grep -o '"eval_accuracy": [0-9.e-]*' ft_stages/eval_results.json | awk '{print $2}')
  acc_eval=$(grep -o '"accuracy": [0-9.e-]*' ev.json | awk '{print $2}')
  [[ -n "$acc_stage" && "$acc_stage" == "$acc_eval" ]] || fail "--do_eval accuracy $acc_stage != evaluate's $acc_eval"
  # A8: resuming with another layer-wise decay (needs load_optimizer_state in the resume).
  run ft-decay "$BF" finetune "${FT[@]}" --validation_file "$DATA/dev.tsv" --max_steps 4 \
    --eval_strategy steps --eval_steps 2 --save_total_limit 0 --layerwise_lr_decay 0.9 --output_dir ft_d \
    --overwrite_output_dir
  expect_error decay "ft_d/checkpoint-2/optimizer.safetensors: parameter group" \
    "$BF" finetune "${FT[@]}" --validation_file "$DATA/dev.tsv" --max_steps 6 --eval_strategy steps \
    --eval_steps 2 --save_total_limit 0 --layerwise_lr_decay 0.8 --output_dir ft_d \
    --resume_from_checkpoint ft_d/checkpoint-2
  ;;

lowp)
  make_model
  run finetune-bf16 "$BF" finetune "${FT[@]}" --validation_file "$DATA/dev.tsv" --num_train_epochs 8 --bf16 \
    --output_dir ft --overwrite_output_dir
  grep -q '"bf16": true' ft/training_args.json || fail "training_args.json does not record bf16"
  run evaluate "$BF" evaluate --model ft --file "$DATA/test_labels.tsv" --output test.json --threads 2
  acc=$(sed -n 's/^ *"accuracy": \([0-9.eE+-]*\),*$/\1/p' test.json)
  # As the pipeline case: chance is 0.25, the fp32 run reaches about 0.85.
  awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || fail "bf16 test accuracy $acc: the model did not learn"
  run quantize "$BF" quantize ft ft8
  grep -q '"quant_method": "bertfit_int8"' ft8/config.json || fail "no quantization_config in ft8/config.json"
  # inspect knows the int8 layout: no problem, the same parameter count as the float model.
  run inspect-int8 "$BF" inspect ft8
  run inspect-float "$BF" inspect ft
  grep -q "^quantization bertfit_int8, 8-bit weights" inspect-int8.log || fail "inspect: $(cat inspect-int8.log)"
  grep -q "^problems     none" inspect-int8.log || fail "inspect of the int8 model: $(cat inspect-int8.log)"
  [[ "$(grep '^parameters' inspect-int8.log)" == "$(grep '^parameters' inspect-float.log)" ]] ||
    fail "parameters: $(grep -h '^parameters' inspect-int8.log inspect-float.log)"
  run evaluate-int8 "$BF" evaluate --model ft8 --file "$DATA/test_labels.tsv" --output test8.json --threads 2
  acc8=$(sed -n 's/^ *"accuracy": \([0-9.eE+-]*\),*$/\1/p' test8.json)
  awk -v a="$acc8" 'BEGIN { exit !(a > 0.6) }' || fail "int8 test accuracy $acc8 (float model: $acc)"
  run predict-int8 "$BF" predict --model ft8 --file "$DATA/test.tsv" --output pred8.tsv --threads 2
  # The fallbacks compute the same integers / the same float operations (gemm_int8.h, gemm_bf16.h).
  run evaluate-int8-avx2 env BERTFIT_MAX_ISA=avx2 "$BF" evaluate --model ft8 --file "$DATA/test_labels.tsv" \
    --output test8_avx2.json --threads 2
  same_bytes test8.json test8_avx2.json
  run bf16-steps "$BF" finetune "${FT[@]}" --max_steps 3 --bf16 --output_dir s512 --overwrite_output_dir
  run bf16-steps-avx2 env BERTFIT_MAX_ISA=avx2 "$BF" finetune "${FT[@]}" --max_steps 3 --bf16 --output_dir s256 \
    --overwrite_output_dir
  same_bytes s512/model.safetensors s256/model.safetensors
  run pretrain-bf16 "$BF" pretrain --tokenizer_name tok --train_file corpus.txt --model_size tiny \
    --max_seq_length 64 --per_device_train_batch_size 16 --learning_rate 1e-3 --max_steps 2 --bf16 \
    --eval_strategy no --output_dir pt16 --overwrite_output_dir "${COMMON[@]}"
  grep -q '"bf16": true' pt16/training_args.json || fail "pretrain's training_args.json does not record bf16"
  expect_error finetune-int8 "a quantized model (config.json quantization_config.quant_method = \"bertfit_int8\")" \
    "$BF" finetune "${FT_BASE[@]/pretrained/ft8}" --max_steps 1 --output_dir ft_bad --overwrite_output_dir
  expect_error quantize-twice "already an int8 model" "$BF" quantize ft8 ft88
  "$BF" info >info.txt
  grep -q "^bf16: " info.txt && grep -q "^int8: " info.txt || fail "info does not name the low-precision paths"
  ;;

electra)
  awk -F'\t' 'FNR > 1 { print $2 "." $3 }' "$DATA/train.tsv" >corpus.txt
  run tokenizer "$BF" train-tokenizer --corpus corpus.txt --out tok --vocab_size 1200 --min-frequency 2
  run pretrain "$BF" pretrain --objective electra --tokenizer_name tok --train_file corpus.txt \
    --model_size tiny --embedding-size 64 --generator-size-ratio 0.25 --max_seq_length 64 \
    --per_device_train_batch_size 16 --learning_rate 1e-3 --max_steps 6 --eval_strategy no --logging_steps 3 \
    --output_dir pretrained --overwrite_output_dir "${COMMON[@]}"
  grep -qF '"ElectraForPreTraining"' pretrained/config.json || fail "pretrain: not an ElectraForPreTraining"
  grep -qF '"embedding_size": 64' pretrained/config.json || fail "pretrain: embedding_size not written"
  grep -qF '"ElectraForMaskedLM"' pretrained/generator/config.json || fail "pretrain: no generator beside it"
  grep -qF '"hidden_size": 32' pretrained/generator/config.json || fail "generator: not a quarter of 128"
  grep -q "generator MLM" pretrain.log || fail "pretrain printed no ELECTRA losses"
  # The discriminator fine-tuned as BERT's is: one layer's [CLS] features, two chunks per document, pooled.
  run finetune "$BF" finetune "${FT_BASE[@]}" --per_device_train_batch_size 8 --features layer --feature_layer 1 \
    --chunk_pooling mean --max_chunks 2 --validation_file "$DATA/dev.tsv" --max_steps 8 \
    --output_dir ft --overwrite_output_dir
  grep -qF '"ElectraForSequenceClassification"' ft/config.json || fail "finetune: not an ELECTRA classifier"
  run evaluate "$BF" evaluate --model ft --file "$DATA/dev.tsv" --output dev.json --threads 2
  acc_ft=$(sed -n 's/^ *"eval_accuracy": \([0-9.eE+-]*\),*$/\1/p' ft/eval_results.json)
  acc_ev=$(sed -n 's/^ *"accuracy": \([0-9.eE+-]*\),*$/\1/p' dev.json)
  [[ -n $acc_ft && $acc_ft == "$acc_ev" ]] || fail "dev accuracy: finetune $acc_ft, evaluate $acc_ev"
  run predict "$BF" predict --model ft --file "$DATA/test.tsv" --output pred.tsv --threads 2
  [[ $(($(wc -l <pred.tsv) - 1)) -eq $(($(grep -c . "$DATA/test.tsv") - 1)) ]] || fail "predict: rows missing"
  expect_error objective-roberta "electra trains an ELECTRA model" "$BF" pretrain --objective electra \
    --model_type roberta --tokenizer_name tok --train_file corpus.txt --output_dir bad
  ;;

*)
  fail "unknown case $CASE"
  ;;
esac
echo "PASS: $CASE"
