#!/usr/bin/python3
"""Golden values for src/train/problem_metrics.cpp from scikit-learn 1.2 and SciPy (Debian's python3-sklearn,
python3-scipy; only this generator needs them, the test reads the committed JSON):
    /usr/bin/python3 tools/reference/gen_problem_metrics_golden.py > tests/fixtures/tricks/problem_metrics_golden.json
Multi-label: sklearn f1_score (micro, macro; zero_division=0), precision / recall (micro), accuracy_score
(exact match) on indicator matrices, predictions = probabilities > threshold. Regression: mean squared error,
scipy.stats.pearsonr, scipy.stats.spearmanr (ties included).
"""
import json
import warnings

import numpy as np
import scipy.stats
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, precision_score, recall_score

warnings.filterwarnings("ignore")


def multilabel(name, rng, n, k, threshold, quality):
    t = (rng.random((n, k)) < 0.35).astype(np.float32)
    t[:, -1] = 0  # a label nobody has (its F1 is 0 by zero_division, and counts in the macro mean)
    noise = rng.random((n, k)).astype(np.float32)
    p = np.clip(quality * t + (1 - quality) * noise, 0, 1).astype(np.float32)
    pred = (p > threshold).astype(int)
    return {"name": name, "num_labels": k, "threshold": threshold, "probs": p.flatten().tolist(),
            "targets": t.flatten().tolist(),
            "micro_f1": f1_score(t, pred, average="micro", zero_division=0),
            "macro_f1": f1_score(t, pred, average="macro", zero_division=0),
            "micro_precision": precision_score(t, pred, average="micro", zero_division=0),
            "micro_recall": recall_score(t, pred, average="micro", zero_division=0),
            "exact_match": accuracy_score(t, pred),
            "f1": f1_score(t, pred, average=None, zero_division=0).tolist()}


def regression(name, p, t):
    p = np.asarray(p, dtype=np.float32)
    t = np.asarray(t, dtype=np.float32)
    return {"name": name, "predictions": p.tolist(), "targets": t.tolist(),
            "mse": float(mean_squared_error(t.astype(np.float64), p.astype(np.float64))),
            "pearson": float(scipy.stats.pearsonr(p.astype(np.float64), t.astype(np.float64))[0]),
            "spearman": float(scipy.stats.spearmanr(p, t)[0])}


def main():
    rng = np.random.default_rng(15)
    ml = [multilabel("good", rng, 40, 5, 0.5, 0.8), multilabel("noisy", rng, 60, 4, 0.5, 0.3),
          multilabel("threshold 0.3", rng, 30, 6, 0.3, 0.5)]
    x = rng.normal(size=50)
    rg = [regression("linear + noise", x + 0.3 * rng.normal(size=50), x),
          regression("ties", [1, 2, 2, 3, 3, 3, 5, 0.5], [0.5, 2, 1, 3, 4, 3, 6, 1]),
          regression("anti", -x[:20] ** 3, x[:20])]
    print(json.dumps({"multi_label": ml, "regression": rg}, indent=1))


if __name__ == "__main__":
    main()
