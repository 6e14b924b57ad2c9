#!/usr/bin/env bash
# Reports through the built binary, checked from outside (issue 17):
#   report_e2e_test.sh BERTFIT FIXTURES SOURCE_DIR WORK
# 1. a tiny pretrain and finetune with --report_to tensorboard: their events.out.tfevents.* files are read by
#    tools/report/tfevents_reader.py (its own CRC-32C, Google's protobuf runtime: nothing of our writer) and
#    every number of trainer_state.json's log_history must be there under HF's tag at its step, and the
#    run's arguments as the "args" text;
# 2. eval_results.json, evaluate --output and predict --metrics carry per-class scores and the labelled
#    confusion matrix, consistent with each other;
# 3. `bertfit report` of both runs, rendered by headless Chromium (scripts/setup.sh installs it) as a person
#    would see it: the script finished (data-report="done") with every chart drawn, nothing on the console,
#    and a screenshot that is not blank; a report with broken data must show as broken (the check can fail).
set -euo pipefail

BF=$1
DATA=$2/cli
SRC=$3
WORK=$4
PY=/usr/bin/python3
READER=$SRC/tools/report/tfevents_reader.py
export OMP_WAIT_POLICY=PASSIVE
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
run() {
  local name=$1
  shift
  "$@" >"$name.log" 2>&1 || {
    cat "$name.log" >&2
    fail "$name: exit $? ($*)"
  }
}

"$PY" "$READER" --self-test >/dev/null || fail "the reader's CRC-32C self-test"

# 1. Runs that report to TensorBoard.
COMMON=(--threads 2 --seed 7)
awk -F'\t' 'FNR > 1 { print $2 "." $3 }' "$DATA/train.tsv" >corpus.txt
run tokenizer "$BF" train-tokenizer --corpus corpus.txt --out tok --vocab_size 1200 --min-frequency 2
run pretrain "$BF" pretrain --tokenizer_name tok --train_file corpus.txt --model_size tiny --max_seq_length 64 \
  --per_device_train_batch_size 16 --learning_rate 1e-3 --max_steps 4 --eval_strategy steps --eval_steps 2 \
  --logging_steps 1 --output_dir pretrained --report_to tensorboard "${COMMON[@]}"
run finetune "$BF" finetune --model pretrained --train_file "$DATA/train.tsv" --validation_file "$DATA/dev.tsv" \
  --text_columns title,abstract --label_column categories --quoting auto --max_seq_length 64 --head_length 16 \
  --learning_rate 1e-3 --per_device_train_batch_size 16 --max_steps 12 --eval_strategy steps --eval_steps 4 \
  --logging_steps 2 --output_dir ft --report-to tensorboard --logging-dir ft/tb "${COMMON[@]}"
[[ -d ft/tb ]] || fail "--logging_dir ft/tb was not used"
ls pretrained/runs/*/events.out.tfevents.* >/dev/null 2>&1 || fail "pretrain: no events file under output_dir/runs/<date>_<host>"
for d in pretrained ft; do
  [[ -f $d/report.html ]] || fail "$d: no report.html at the end of the run"
  "$PY" "$READER" "$d" >"$d.events.jsonl" 2>"$d.reader.err" || {
    cat "$d.reader.err" >&2
    fail "$d: the event file does not read back"
  }
  "$PY" - "$d" <<'PYEOF' || fail "$d: events differ from trainer_state.json"
import json, struct, sys
d = sys.argv[1]
files = [json.loads(l) for l in open(d + ".events.jsonl")]
assert len(files) == 1, "expected one event file, got %d" % len(files)
events = files[0]["events"]
assert events[0].get("file_version") == "brain.Event:2", events[0]
scalars, texts = {}, {}
for e in events[1:]:
    for v in e["values"]:
        if "simple_value" in v:
            scalars[(v["tag"], e["step"])] = v["simple_value"]
        else:
            assert v["plugin"] == "text" and v["dtype"] == 7 and v["shape"] == [1], v
            texts[v["tag"]] = v["text"][0]
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
def tag(k):  # HF's rewrite_logs
    return "eval/" + k[5:] if k.startswith("eval_") else "test/" + k[5:] if k.startswith("test_") else "train/" + k
expected = {}
for entry in json.load(open(d + "/trainer_state.json"))["log_history"]:
    for k, v in entry.items():
        if k != "step" and isinstance(v, (int, float)):
            expected[(tag(k), entry["step"])] = f32(v)
assert scalars == expected, "scalars differ:\n%s\n%s" % (sorted(set(scalars.items()) ^ set(expected.items()))[:10], "")
for must in ("train/loss", "train/learning_rate", "train/grad_norm", "train/epoch", "eval/loss"):
    assert any(t == must for t, _ in scalars), "no " + must
if d == "ft":
    assert any(t == "eval/accuracy" for t, _ in scalars) and any(t == "eval/macro_f1" for t, _ in scalars)
args = json.loads(texts["args/text_summary"])
assert args == json.load(open(d + "/training_args.json")), "args text differs from training_args.json"
print("ok: %s: %d scalars, args text" % (d, len(scalars)))
PYEOF
done

# 2. Metrics a program can read.
run evaluate "$BF" evaluate --model ft --file "$DATA/dev.tsv" --output dev.json --threads 2
run predict "$BF" predict --model ft --file "$DATA/dev.tsv" --label_column categories --metrics predict.json \
  --threads 2
"$PY" - <<'PYEOF' || fail "metrics JSON"
import json
ev, pr, er = json.load(open("dev.json")), json.load(open("predict.json")), json.load(open("ft/eval_results.json"))
labels = ev["labels"]
assert labels == sorted(labels) and len(labels) == 4, labels
cm = ev["confusion_matrix"]
assert cm["labels"] == labels and cm["rows"] == "true" and cm["columns"] == "predicted"
m = cm["matrix"]
assert sum(map(sum, m)) == ev["examples"]
pc = ev["per_class"]
for i, c in enumerate(pc):
    assert c["label"] == labels[i] and c["support"] == sum(m[i]) and c["predicted"] == sum(r[i] for r in m)
    p = m[i][i] / c["predicted"] if c["predicted"] else 0.0
    r = m[i][i] / c["support"] if c["support"] else 0.0
    assert abs(c["precision"] - p) < 1e-12 and abs(c["recall"] - r) < 1e-12, c
assert abs(ev["accuracy"] - sum(m[i][i] for i in range(4)) / ev["examples"]) < 1e-12
assert abs(ev["macro_f1"] - sum(c["f1"] for c in pc) / 4) < 1e-12  # every class has support in dev
# The same model on the same file: evaluate, predict and the run's final evaluation agree.
for k in ("labels", "per_class", "confusion_matrix", "accuracy", "macro_f1"):
    assert pr[k] == ev[k], k
assert er["eval_confusion_matrix"] == ev["confusion_matrix"] and er["eval_per_class"] == ev["per_class"]
assert er["eval_accuracy"] == ev["accuracy"]
assert sum(pr["predicted_counts"].values()) == ev["examples"]
assert [pr["predicted_counts"][l] for l in labels] == [c["predicted"] for c in pc]
print("ok: metrics JSON")
PYEOF

# 3. The report, as a browser shows it.
run report "$BF" report ft pretrained --output report.html --title "e2e </script> report"
grep -qE '<script[^>]+src=|<link |@import|url\(' report.html && fail "report.html loads something from outside"
CHROME=$(command -v chromium || true)
[[ -n $CHROME ]] || fail "chromium is not installed (scripts/setup.sh installs it)"
chrome() {
  local profile
  profile=$(mktemp -d "$WORK/chrome-profile.XXXXXX")  # a fresh profile per run
  "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$profile" --enable-logging=stderr --v=0 "$@"
}
chrome --dump-dom "file://$WORK/report.html" >dom.html 2>console.log || fail "chromium --dump-dom failed"
grep -q 'data-report="done"' dom.html || fail "the report's script did not finish: $(grep -o '<body[^>]*>' dom.html)"
# Nothing on the console: our script logs only when it fails; an uncaught error is logged as CONSOLE too.
grep -F 'CONSOLE' console.log && fail "console messages while drawing the report"
# Curves of both runs, the heat map (4 x 4), the per-class table, the histogram.
charts=$(grep -o 'data-charts="[0-9]*"' dom.html | grep -o '[0-9]*')
((charts >= 10)) || fail "only $charts charts drawn"
[[ $(grep -o 'class="series"' dom.html | wc -l) -ge 10 ]] || fail "too few curves"
[[ $(grep -o 'class="cm-cell"' dom.html | wc -l) -eq 16 ]] || fail "the confusion matrix is not 4 x 4"
grep -q 'data-chart="per-class"' dom.html || fail "no per-class table"
grep -q 'class="limit"' dom.html || fail "no truncation line in the token-length histogram"
grep -q '<title>e2e &lt;/script&gt; report</title>' dom.html || fail "the title is not escaped"
chrome --window-size=1300,2600 --screenshot="$WORK/shot.png" "file://$WORK/report.html" >/dev/null 2>&1 ||
  fail "chromium --screenshot failed"
"$PY" "$SRC/tools/report/png_check.py" stats shot.png >shot.json
"$PY" - <<'PYEOF' || fail "the screenshot looks blank: $(cat shot.json)"
import json
s = json.load(open("shot.json"))
# A drawn page: many colours (anti-aliased curves in 2 run colours, the heat map's shades), and ink in every
# 200-row band of the first 2400 rows (header, run table, three rows of charts, the heat map); a blank page
# or one whose script stopped after the header has one colour below the header.
assert s["colors"] > 100, s["colors"]
assert s["non_background"] > 0.15, s["non_background"]
assert all(b > 0.02 for b in s["bands"][:12]), s["bands"]
PYEOF
# The checks can fail: broken data must give data-report="error" and a console message.
sed 's/"runs":\[/"runs":[}/' report.html >broken.html
chrome --dump-dom "file://$WORK/broken.html" >broken-dom.html 2>broken-console.log || true
grep -q 'data-report="error"' broken-dom.html || fail "a broken report was not detected"
grep -q 'CONSOLE' broken-console.log || fail "a broken report logged nothing"
echo "ok: report rendered ($charts charts)"
