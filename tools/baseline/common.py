"""What the baseline scripts share: reading the competition's TSVs and scoring predictions.

Text as the seed builds it: title + '.' + abstract. Scoring: accuracy and macro-F1 with sklearn's definitions
(macro over the classes present in the gold labels or the predictions, zero_division=0; the same as bertfit's
metrics), in Python's standard library so that a baseline's score does not depend on a bertfit build.
"""
import csv
import json

csv.field_size_limit(1 << 30)


def read_rows(path):
    """The rows of a competition TSV as dicts (tab-separated, no quoting: the files have bare quotes)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def text_of(row):
    return row["title"] + "." + row["abstract"]


def score(gold, pred):
    """(accuracy, macro-F1, number of classes) of predicted labels against gold labels."""
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
    return acc, sum(f1s) / len(f1s), len(classes)


def write_results(path, res):
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
