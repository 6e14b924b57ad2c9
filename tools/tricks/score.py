#!/usr/bin/python3
"""Scores a prediction file (bertfit predict / ensemble / a --k_folds run's test_predictions.tsv: a header, then
id, label, ...) against a labelled TSV (the demo's dev.tsv or test_labels.tsv: paperid, ..., categories), and
prints JSON {"accuracy", "macro_f1", "rows"}: what `bertfit evaluate` reports for a model, for predictions that
are not one model's (ensembles, the k folds' mean).

    /usr/bin/python3 tools/tricks/score.py PREDICTIONS.tsv LABELLED.tsv [--id_column paperid] [--label_column categories]

Macro-F1 is scikit-learn's f1_score(average="macro", zero_division=0): the mean over the labels that occur in
the gold labels or the predictions. Every labelled row must have a prediction (an error names the first id
that has none), so a truncated file cannot score as a good one.
"""
import csv
import json
import sys


def read_tsv(path):
    csv.field_size_limit(1 << 30)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        sys.exit("score: %s is empty" % path)
    return rows[0], rows[1:]


def column(header, name, path):
    if name not in header:
        sys.exit("score: %s has no column %r (columns: %s)" % (path, name, ", ".join(header)))
    return header.index(name)


def main():
    args = sys.argv[1:]
    opts = {"--id_column": "paperid", "--label_column": "categories"}
    pos = []
    while args:
        a = args.pop(0)
        if a in opts:
            opts[a] = args.pop(0)
        else:
            pos.append(a)
    if len(pos) != 2:
        sys.exit(__doc__)
    pred_path, gold_path = pos
    ph, prows = read_tsv(pred_path)
    pi, pl = column(ph, "id", pred_path), column(ph, "label", pred_path)
    predicted = {r[pi]: r[pl] for r in prows}
    gh, grows = read_tsv(gold_path)
    gi, gl = column(gh, opts["--id_column"], gold_path), column(gh, opts["--label_column"], gold_path)
    y_true, y_pred = [], []
    for line, r in enumerate(grows, start=2):
        if r[gi] not in predicted:
            sys.exit("score: %s line %d: id %r has no prediction in %s" % (gold_path, line, r[gi], pred_path))
        y_true.append(r[gl])
        y_pred.append(predicted[r[gi]])
    labels = sorted(set(y_true) | set(y_pred))
    f1s = []
    for c in labels:
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        fp = sum(1 for t, p in zip(y_true, y_pred) if t != c and p == c)
        fn = sum(1 for t, p in zip(y_true, y_pred) if t == c and p != c)
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    accuracy = sum(1 for t, p in zip(y_true, y_pred) if t == p) / len(y_true)
    print(json.dumps({"accuracy": accuracy, "macro_f1": sum(f1s) / len(f1s), "rows": len(y_true)}, indent=2))


if __name__ == "__main__":
    main()
