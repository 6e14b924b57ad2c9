#!/usr/bin/env bash
# The first baseline a user compares bertfit with: a supervised fastText classifier (Debian's `fasttext`
# package) trained on DATA_DIR/train.tsv and scored on the held-out test split.
#
#   scripts/baseline-fasttext.sh DATA_DIR            (DATA_DIR from `bertfit dataset debian --out DATA_DIR`,
#                                                    or any dir with the competition's train/dev/test files)
# Input: train.tsv, dev.tsv, test.tsv (paperid, title, abstract) and test_labels.tsv (+ categories).
# Text as the seed builds it: title + '.' + abstract; then lowercased and punctuation split off as tokens
# (fastText splits on whitespace only). Output under DATA_DIR/fasttext/ (override with FASTTEXT_OUT):
# the model, test predictions and results.json; accuracy and macro-F1 are printed.
# Scoring: tools/baseline/common.py (accuracy and macro-F1 as bertfit and sklearn define them).
# Settings (environment): FASTTEXT_ARGS (default below), FASTTEXT_THREADS (default nproc),
# FASTTEXT_AUTOTUNE=SECONDS to let fastText tune its hyper-parameters on dev.tsv instead (0.9.2 autotune).
# fastText trains with Hogwild threads, so runs with more than one thread differ slightly; FASTTEXT_THREADS=1
# is reproducible.
# fastText is installed here if missing (idempotent), not in scripts/setup.sh: only this script needs it.
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 DATA_DIR" >&2
  exit 2
fi
DATA=$1
for f in train.tsv dev.tsv test.tsv test_labels.tsv; do
  [[ -f "$DATA/$f" ]] || { echo "baseline-fasttext: missing $DATA/$f" >&2; exit 1; }
done
if ! command -v fasttext >/dev/null 2>&1; then
  echo "baseline-fasttext: installing Debian's fasttext package"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y --no-install-recommends fasttext >/dev/null 2>&1 || {
    $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends fasttext; }
fi
PY=/usr/bin/python3
TOOLS=$(cd "$(dirname "$0")/../tools/baseline" && pwd)  # common.py: reading and scoring, shared by the baselines
OUT=${FASTTEXT_OUT:-$DATA/fasttext}
THREADS=${FASTTEXT_THREADS:-$(nproc)}
ARGS=${FASTTEXT_ARGS:-"-lr 0.5 -epoch 25 -wordNgrams 2 -dim 100 -minCount 1 -loss softmax"}
mkdir -p "$OUT"

# TSV -> fastText lines "__label__<category> <tokens>" (or just tokens for the unlabelled test file).
PYTHONPATH="$TOOLS" $PY - "$DATA" "$OUT" <<'PYEOF'
import re, sys
from common import read_rows, text_of
data, out = sys.argv[1], sys.argv[2]
punct = re.compile(r"([^\w\s])")
def tokens(row):
    t = text_of(row).replace("\n", " ").replace("\t", " ").lower()
    return " ".join(punct.sub(r" \1 ", t).split())
for name, labelled in (("train", True), ("dev", True), ("test", False), ("test_labels", True)):
    with open(f"{out}/{name}.txt", "w") as o:
        for row in read_rows(f"{data}/{name}.tsv"):
            o.write((f"__label__{row['categories']} " if labelled else "") + tokens(row) + "\n")
PYEOF

t0=$(date +%s.%N)
if [[ -n "${FASTTEXT_AUTOTUNE:-}" ]]; then
  fasttext supervised -input "$OUT/train.txt" -output "$OUT/model" -thread "$THREADS" \
    -autotune-validation "$OUT/dev.txt" -autotune-duration "$FASTTEXT_AUTOTUNE" >"$OUT/train.log" 2>&1
  SETTINGS="autotune on dev.tsv, ${FASTTEXT_AUTOTUNE} s"
else
  # shellcheck disable=SC2086
  fasttext supervised -input "$OUT/train.txt" -output "$OUT/model" -thread "$THREADS" $ARGS >"$OUT/train.log" 2>&1
  SETTINGS="$ARGS"
fi
t1=$(date +%s.%N)
fasttext predict "$OUT/model.bin" "$OUT/test.txt" >"$OUT/test.pred"
t2=$(date +%s.%N)

PYTHONPATH="$TOOLS" $PY - "$OUT" "$SETTINGS" "$THREADS" "$t0" "$t1" "$t2" <<'PYEOF'
import sys
from common import score, write_results
out, settings, threads = sys.argv[1:4]
t0, t1, t2 = map(float, sys.argv[4:7])
gold = [l.split(" ", 1)[0][len("__label__"):] for l in open(f"{out}/test_labels.txt")]
pred = [l.strip()[len("__label__"):] for l in open(f"{out}/test.pred")]
acc, macro_f1, n_classes = score(gold, pred)
res = {"model": "fastText supervised (Debian fasttext 0.9.2)", "settings": settings, "threads": int(threads),
       "test_rows": len(gold), "classes": n_classes, "accuracy": acc, "macro_f1": macro_f1,
       "train_seconds": round(t1 - t0, 1), "predict_seconds": round(t2 - t1, 2)}
write_results(f"{out}/results.json", res)
print(f"fastText ({settings}, {threads} threads): test accuracy {acc:.4f}  macro-F1 {macro_f1:.4f}  "
      f"({len(gold)} rows, {n_classes} classes; train {res['train_seconds']} s, predict {res['predict_seconds']} s)")
PYEOF
