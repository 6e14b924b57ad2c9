#!/usr/bin/python3
"""Summarises bench/paper/run.sh's results.tsv: per configuration, the dev accuracy and macro-F1 as mean, sample
standard deviation (the spread between seeds) and min-max, with the number of seeds, and the difference of the
means from the base row.

    /usr/bin/python3 tools/paper/summarize.py out/paper/results.tsv [--markdown]
"""
import csv
import statistics
import sys
from collections import OrderedDict


def main():
    path = sys.argv[1]
    md = "--markdown" in sys.argv
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

    base = stats(runs.get("base", []), "dev_accuracy")
    header = ["config", "n", "dev accuracy mean ± sd [min-max]", "vs base", "dev macro-F1 mean ± sd", "s/run"]
    table = []
    for name, rows in runs.items():
        a, f = stats(rows, "dev_accuracy"), stats(rows, "dev_macro_f1")
        if not a:
            continue
        secs = statistics.mean(float(r["seconds"]) for r in rows)
        table.append([name, str(a[4]), "%.4f ± %.4f [%.4f-%.4f]" % a[:4],
                      "%+.4f" % (a[0] - base[0]) if base and name != "base" else "-",
                      "%.4f ± %.4f" % f[:2] if f else "-", "%.0f" % secs])
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
