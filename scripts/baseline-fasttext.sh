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
# Scoring: accuracy and macro-F1 with sklearn's definitions (macro over the classes present in the gold
# labels or the predictions, zero_division=0; the same as bertfit's metrics) in a few lines of Python's
# standard library, so the baseline does not depend on a bertfit build.
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
OUT=${FASTTEXT_OUT:-$DATA/fasttext}
THREADS=${FASTTEXT_THREADS:-$(nproc)}
ARGS=${FASTTEXT_ARGS:-"-lr 0.5 -epoch 25 -wordNgrams 2 -dim 100 -minCount 1 -loss softmax"}
mkdir -p "$OUT"

# TSV -> fastText lines "__label__<category> <tokens>" (or just tokens for the unlabelled test file).
$PY - "$DATA" "$OUT" <<'PYEOF'
import csv, re, sys
data, out = sys.argv[1], sys.argv[2]
csv.field_size_limit(1 << 30)
punct = re.compile(r"([^\w\s])")
def text(row):
    t = (row["title"] + "." + row["abstract"]).replace("\n", " ").replace("\t", " ").lower()
    return " ".join(punct.sub(r" \1 ", t).split())
for name, labelled in (("train", True), ("dev", True), ("test", False), ("test_labels", True)):
    with open(f"{data}/{name}.tsv", newline="", encoding="utf-8") as f, open(f"{out}/{name}.txt", "w") as o:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            o.write((f"__label__{row['categories']} " if labelled else "") + text(row) + "\n")
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

$PY - "$OUT" "$SETTINGS" "$THREADS" "$t0" "$t1" "$t2" <<'PYEOF'
import json, sys
out, settings, threads = sys.argv[1:4]
t0, t1, t2 = map(float, sys.argv[4:7])
train_s, predict_s = t1 - t0, t2 - t1
gold = [l.split(" ", 1)[0][len("__label__"):] for l in open(f"{out}/test_labels.txt")]
pred = [l.strip()[len("__label__"):] for l in open(f"{out}/test.pred")]
assert len(gold) == len(pred), (len(gold), len(pred))
classes = sorted(set(gold) | set(pred))
f1s = []
for c in classes:
    tp = sum(g == c and p == c for g, p in zip(gold, pred))
    npred, nsup = pred.count(c), gold.count(c)
    prec = tp / npred if npred else 0.0
    rec = tp / nsup if nsup else 0.0
    f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
acc = sum(g == p for g, p in zip(gold, pred)) / len(gold)
res = {"model": "fastText supervised (Debian fasttext 0.9.2)", "settings": settings, "threads": int(threads),
       "test_rows": len(gold), "classes": len(classes), "accuracy": acc, "macro_f1": sum(f1s) / len(f1s),
       "train_seconds": round(train_s, 1), "predict_seconds": round(predict_s, 2)}
json.dump(res, open(f"{out}/results.json", "w"), indent=2)
print(f"fastText ({settings}, {threads} threads): test accuracy {acc:.4f}  macro-F1 {res['macro_f1']:.4f}  "
      f"({len(gold)} rows, {len(classes)} classes; train {res['train_seconds']} s, predict {res['predict_seconds']} s)")
PYEOF
