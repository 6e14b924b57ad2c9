#!/usr/bin/python3
"""Summarises bench/paper/run.sh's and bench/tricks/run.sh's results.tsv: per configuration, the dev accuracy
and macro-F1 as mean, sample standard deviation (the spread between seeds) and min-max, with the number of
seeds, and the difference of the means from the base row; the test columns the same way when the file has them,
and the mean seconds per run with its ratio to base.

    /usr/bin/python3 tools/paper/summarize.py out/paper/results.tsv [--markdown] [--seconds-from-seeds 2,3]

--seconds-from-seeds: the seconds columns from these seeds' runs only (e.g. when the others shared the machine
with another job); the metrics still use every seed.
"""
import csv
import statistics
import sys
from collections import OrderedDict


def main():
    path = sys.argv[1]
    md = "--markdown" in sys.argv
    time_seeds = None
    if "--seconds-from-seeds" in sys.argv:
        time_seeds = set(sys.argv[sys.argv.index("--seconds-from-seeds") + 1].split(","))
    runs = OrderedDict()
    with open(path) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            runs.setdefault(r["config"], []).append(r)

    def stats(rows, key):
        v = [float(r[key]) for r in rows if r[key]]
        if not v:
            return None
        sd = statistics.stdev(v) if len(v) > 1 else float("nan")
        return statistics.mean(v), sd, min(v), max(v), len(v)

    with_test = any("test_accuracy" in rows[0] for rows in runs.values())
    base_rows = runs.get("base", [])
    header = ["config", "n", "dev accuracy mean ± sd [min-max]", "vs base", "dev macro-F1 mean ± sd", "vs base"]
    if with_test:
        header += ["test accuracy mean ± sd", "vs base", "test macro-F1 mean ± sd", "vs base"]
    header += ["s/run", "x base"]

    def cells(rows, key, full=False):
        v, b = stats(rows, key), stats(base_rows, key)
        if not v:
            return ["-", "-"]
        text = ("%.4f ± %.4f [%.4f-%.4f]" % v[:4]) if full else ("%.4f ± %.4f" % v[:2])
        return [text, "%+.4f" % (v[0] - b[0]) if b and rows is not base_rows else "-"]

    def seconds(rows):
        v = [float(r["seconds"]) for r in rows if time_seeds is None or r["seed"] in time_seeds]
        return statistics.mean(v) if v else 0.0

    table = []
    for name, rows in runs.items():
        if not stats(rows, "dev_accuracy"):
            continue
        row = [name, str(len(rows))] + cells(rows, "dev_accuracy", True) + cells(rows, "dev_macro_f1")
        if with_test:
            row += cells(rows, "test_accuracy") + cells(rows, "test_macro_f1")
        secs = seconds(rows)
        ratio = "%.2f" % (secs / seconds(base_rows)) if base_rows and secs > 0 and seconds(base_rows) > 0 else "-"
        table.append(row + ["%.0f" % secs, ratio])
    if md:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for r in table:
            print("| " + " | ".join(r) + " |")
    else:
        widths = [max(len(r[i]) for r in table + [header]) for i in range(len(header))]
        for r in [header] + table:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    cpus = {r["cpu"] for rows in runs.values() for r in rows}
    print("\nCPU: %s; sd = sample standard deviation over seeds (nan with one seed)" % ", ".join(sorted(cpus)))


if __name__ == "__main__":
    main()
