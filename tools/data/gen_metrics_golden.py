#!/usr/bin/python3
"""Golden values for src/train/metrics.cpp, computed by scikit-learn (the reference the metrics copy).

Run with Debian's interpreter after `apt-get install python3-sklearn` (only this generator needs it; the
test reads the committed JSON):
    /usr/bin/python3 tools/data/gen_metrics_golden.py > tests/fixtures/data/metrics_golden.json
Cases: random predictions of varying quality, classes never predicted, classes without support, a class
absent from both (reported=False), binary, perfect and all-wrong predictions.
"""
import json
import sys
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix, f1_score,
                             precision_recall_fscore_support)

warnings.filterwarnings("ignore")  # zero_division=0 is asked for explicitly; sklearn still warns


def case(name, y_true, y_pred, num_classes, names):
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    present = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(range(num_classes)),
                                                 average=None, zero_division=0)
    out = {
        "name": name,
        "num_classes": num_classes,
        "labels": y_true.tolist(),
        "predictions": y_pred.tolist(),
        "names": names,
        "accuracy": accuracy_score(y_true, y_pred),
        "per_class": {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist()},
        "reported": [c in present for c in range(num_classes)],
        "confusion": confusion_matrix(y_true, y_pred, labels=list(range(num_classes))).flatten().tolist(),
    }
    for avg in ("macro", "micro", "weighted"):
        ap, ar, af, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        out[avg] = {"precision": ap, "recall": ar, "f1": af}
        assert abs(af - f1_score(y_true, y_pred, average=avg, zero_division=0)) < 1e-15
    for digits in (2, 4):
        out["report_%d" % digits] = classification_report(
            y_true, y_pred, target_names=[names[c] for c in present], digits=digits, zero_division=0)
    out["report_ids_2"] = classification_report(y_true, y_pred, digits=2, zero_division=0)
    # sklearn 1.2 quirk: with no true positive at all it builds its counts as floats and prints the support
    # as "2.0"; the metric values are unaffected. The test compares report text only when this is false.
    out["report_float_support"] = bool((y_true == y_pred).sum() == 0)
    return out


def main():
    rng = np.random.default_rng(1234)
    cases = []
    for i, (n, c, quality) in enumerate([(50, 4, 0.6), (200, 7, 0.3), (37, 3, 0.9), (500, 12, 0.5)]):
        y = rng.integers(0, c, size=n)
        noise = rng.integers(0, c, size=n)
        pred = np.where(rng.random(n) < quality, y, noise)
        names = ["class_%d" % k for k in range(c)]
        cases.append(case("random_%d" % i, y, pred, c, names))
    # Class 2 is never predicted; class 3 is predicted but has no support; class 4 is absent from both.
    cases.append(case("zero_division", [0, 0, 1, 1, 2, 2, 2, 0], [0, 1, 1, 1, 0, 1, 3, 3], 5,
                      ["neg", "pos", "neutral", "other", "unused"]))
    cases.append(case("binary", [0, 1, 1, 0, 1, 1, 0, 0, 1], [0, 1, 0, 0, 1, 1, 1, 0, 1], 2, ["neg", "pos"]))
    cases.append(case("perfect", [2, 0, 1, 2], [2, 0, 1, 2], 3, ["a", "bb", "a much longer class name"]))
    cases.append(case("all_wrong", [0, 1, 0, 1], [1, 0, 1, 0], 2, ["x", "y"]))
    cases.append(case("unicode_names", [0, 1, 2, 1], [0, 1, 1, 1], 3, ["计算机", "物理学", "数学"]))
    json.dump({"generator": "tools/data/gen_metrics_golden.py", "sklearn": sklearn.__version__, "cases": cases},
              sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
