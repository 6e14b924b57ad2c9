#!/usr/bin/python3
"""Prints the engine benchmark's comparison table from bench/engine/run.sh's results.jsonl.

    /usr/bin/python3 tools/bench/report.py build-perf/bench_out/results.jsonl [--markdown]

Ratios are speed ratios (baseline time / bertfit time, > 1 = bertfit faster), all from the same run. The PyTorch
baseline of a case is its fastest median over the settings tried (p2, b2, t1); the spread printed is the
[min-max] of that setting's samples. GFLOP/s use the issue's FLOP count (bench/engine/engine_bench.cpp): HF's
computation; where the step runs fewer (the last layer on the [CLS] rows), the target lines also say how many
it executed and at what rate.
"""
import json
import sys
from collections import defaultdict


def merge(group):
    """One row from the rounds of one (engine, case, setting): the median over every round's samples, so a
    round taken while the machine was slower and one taken while it was faster both count."""
    if len(group) == 1:
        return group[0]
    r = dict(group[0])
    samples = sorted(x for g in group for x in g["samples_ms"])
    n = len(samples)
    r["samples_ms"] = samples
    r["median_ms"] = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    r["min_ms"], r["max_ms"] = samples[0], samples[-1]
    r["peak_rss_mb"] = max(g["peak_rss_mb"] for g in group)
    r["load_before"] = max(g.get("load_before", 0) for g in group)
    for key in ("sgemm_gflops", "fma_gflops"):
        v = [g[key] for g in group if key in g]
        if v:
            r[key] = sum(v) / len(v)
    r["rounds"] = len(group)
    return r


def load(path):
    raw = [json.loads(l) for l in open(path) if l.strip()]
    machine = next((r for r in raw if r["engine"] == "machine"), None)  # bench/engine/run.sh's first line
    raw = [r for r in raw if r["engine"] != "machine"]
    # The alternating batch-1 pairs (setting "alt"), in the file's order: bertfit, then ONNX Runtime.
    alt = [r for r in raw if r["setting"] == "alt"]
    raw = [r for r in raw if r["setting"] != "alt"]
    # (A failed case leaves no line: each bertfit record pairs with the ONNX Runtime record right after it.)
    pairs = [(a, b) for a, b in zip(alt, alt[1:]) if a["engine"] == "bertfit" and b["engine"] == "onnxruntime"]
    groups = defaultdict(list)
    for r in raw:
        groups[(r["engine"], r["model"], r["case"], r["batch"], r["threads"], r["setting"])].append(r)
    # sgemm cases stay one row each: the run's first and last are compared to detect contention.
    rows = [r for k, g in groups.items() for r in (g if k[2] in ("sgemm", "fma", "tile") else [merge(g)])]
    by = defaultdict(list)
    for r in rows:
        by[(r["engine"], r["model"], r["case"], r["batch"])].append(r)
    return rows, by, machine, pairs


def own_rate(r, rate):
    """The sgemm rate measured in the case's own process just before it (engine_bench), else the run's."""
    return r.get("sgemm_gflops") or rate


def peak_of(r, peak):
    """The FMA peak measured in the case's own process just before it (engine_bench), else the run's."""
    return r.get("fma_gflops") or peak


def executed_note(r):
    """The FLOPs the step ran, when fewer than the model's count (the last layer on the [CLS] rows)."""
    ex = r.get("executed_gflop")
    if not ex or ex >= r["gflop"] * 0.9995:
        return ""
    gf = ex / r["median_ms"] * 1e3
    return "; executed: %.0f%% of the model's FLOPs, %.0f GFLOP/s = %.0f%% of the peak" % (
        100 * ex / r["gflop"], gf, 100 * gf / peak_of(r, 0)) if peak_of(r, 0) else ""


def fmt_ms(r):
    return "%.0f [%.0f-%.0f]" % (r["median_ms"], r["min_ms"], r["max_ms"]) if r["median_ms"] >= 100 else \
        "%.1f [%.1f-%.1f]" % (r["median_ms"], r["min_ms"], r["max_ms"])


def main():
    path = sys.argv[1]
    md = "--markdown" in sys.argv
    rows, by, machine, pairs = load(path)
    sg2 = [r for r in rows if r["case"] == "sgemm" and r["threads"] == 2]
    sg1 = [r for r in rows if r["case"] == "sgemm" and r["threads"] == 1]
    rate = max((r["gflop"] / r["median_ms"] * 1e3 for r in sg2), default=0.0)
    rate1 = max((r["gflop"] / r["median_ms"] * 1e3 for r in sg1), default=0.0)
    def fma_rate(threads, setting):
        c = [r["gflop"] / r["median_ms"] * 1e3 for r in rows
             if r["case"] == "fma" and r["threads"] == threads and r["setting"] == setting]
        return max(c, default=0.0)
    peak, peak1 = fma_rate(2, "t2"), fma_rate(1, "t1")

    def tile_rate(threads):
        c = [r["gflop"] / r["median_ms"] * 1e3 for r in rows
             if r["case"] == "tile" and r["threads"] == threads and r["setting"] == "t%d" % threads]
        return max(c, default=0.0)
    tile, tile1 = tile_rate(2), tile_rate(1)
    loads = [r.get("load_before", 0) for r in rows]
    out = []
    p = out.append
    if machine:  # results files from before 2026-12-06 have no machine record: their names say the CPU
        p("machine: " + machine["description"])
    p("OpenBLAS sgemm 4096x768x768: %s GFLOP/s with 2 threads (samples: %s), %.0f with 1 thread" % (
        "%.0f" % rate, ", ".join("%.0f" % (r["gflop"] / r["median_ms"] * 1e3) for r in sg2), rate1))
    p("FMA peak (independent FMA chains, widest vectors): %.0f GFLOP/s with 2 threads, %.0f with 1; 256-bit: "
      "%.0f / %.0f" % (peak, peak1, fma_rate(2, "avx2"), fma_rate(1, "avx2")))
    if tile:
        p("gemm_packed's register tile alone (L2-resident panels, no packing): %.0f GFLOP/s with 2 threads (%.0f%% "
          "of the FMA peak), %.0f with 1 (%.0f%%): the ceiling of our GEMM" % (
              tile, 100 * tile / peak if peak else 0, tile1, 100 * tile1 / peak1 if peak1 else 0))
    p("load average before the cases: min %.2f, max %.2f (2 cores: above ~0.3 means another job was running)" % (
        min(loads, default=0), max(loads, default=0)))

    def bertfit(model, case, b, t=2):
        """The faster of bertfit's settings at this thread count (default waiting, or OMP_WAIT_POLICY=PASSIVE)."""
        c = [r for r in by.get(("bertfit", model, case, b), []) if r["threads"] == t]
        return min(c, key=lambda r: r["median_ms"]) if c else None

    def torch_best(model, case, b):
        c = by.get(("pytorch", model, case, b), [])
        return min(c, key=lambda r: r["median_ms"]) if c else None

    def ort(model, b):
        c = by.get(("onnxruntime", model, "infer", b), [])
        return c[0] if c else None

    sep = " | " if md else "  "
    header = ["case", "bertfit ms [min-max]", "GFLOP/s (% sgemm, % FMA peak)", "baseline", "baseline ms [min-max]",
              "speed ratio", "target", "met"]
    table = []

    def add(name, br, base, base_name, target):
        if not br:
            return
        gf = br["gflop"] / br["median_ms"] * 1e3
        cells = [name, fmt_ms(br) + " " + br["setting"],
                 "%.0f (%.0f%%, %.0f%%)" % (gf, 100 * gf / own_rate(br, rate) if own_rate(br, rate) else 0,
                                           100 * gf / peak_of(br, peak) if peak_of(br, peak) else 0)]
        if base:
            ratio = base["median_ms"] / br["median_ms"]
            cells += ["%s %s" % (base_name, base["setting"]), fmt_ms(base), "%.2fx" % ratio,
                      ">= %.1fx" % target if target else "-", ("yes" if ratio >= target else "NO") if target else "-"]
        else:
            cells += [base_name, "-", "-", ">= %.1fx" % target if target else "-", "?"]
        table.append(cells)

    add("base train b32", bertfit("base", "train", 32), torch_best("base", "train", 32), "PyTorch", 1.1)
    add("base train b8", bertfit("base", "train", 8), torch_best("base", "train", 8), "PyTorch", 1.2)
    for b in (1, 8, 32):
        add("base infer b%d" % b, bertfit("base", "infer", b), ort("base", b), "ONNX Runtime", 1.0)
        add("base infer b%d" % b, bertfit("base", "infer", b), torch_best("base", "infer", b), "PyTorch", 0)
    add("mini mlm b32", bertfit("mini", "mlm", 32), torch_best("mini", "mlm", 32), "PyTorch all-pos", 2.5)
    add("mini mlm b32", bertfit("mini", "mlm", 32), torch_best("mini", "mlm_gather", 32), "PyTorch gathered", 1.3)
    add("mini train b32", bertfit("mini", "train", 32), torch_best("mini", "train", 32), "PyTorch", 1.5)

    widths = [max(len(str(r[i])) for r in table + [header]) for i in range(len(header))]
    if md:
        p("| " + " | ".join(header) + " |")
        p("|" + "|".join("---" for _ in header) + "|")
        for r in table:
            p("| " + " | ".join(r) + " |")
    else:
        p(sep.join(h.ljust(w) for h, w in zip(header, widths)))
        for r in table:
            p(sep.join(str(c).ljust(w) for c, w in zip(r, widths)))

    p("")
    # Issue 12's targets: model FLOP/s against the machine's own FMA peak (2 threads).
    for name, model, case, b, target in (("base train b32", "base", "train", 32, 0.85),
                                         ("base train b8", "base", "train", 8, 0.75),
                                         ("mini train b32", "mini", "train", 32, 0.75)):
        br = bertfit(model, case, b)
        if br and peak_of(br, peak):
            gf = br["gflop"] / br["median_ms"] * 1e3
            p("%s: %.0f GFLOP/s = %.0f%% of the FMA peak %.0f (target >= %.0f%%: %s)%s" % (
                name, gf, 100 * gf / peak_of(br, peak), peak_of(br, peak), 100 * target,
                "met" if gf >= target * peak_of(br, peak) else "NOT met", executed_note(br)))
    # Issue 12's inference target: 1.3x ONNX Runtime (same weights, same run), or 85% of the FMA peak where
    # that is less demanding -- met when either is reached.
    for b in (1, 8, 32):
        br, base = bertfit("base", "infer", b), ort("base", b)
        if br and base and peak_of(br, peak):
            gf = br["gflop"] / br["median_ms"] * 1e3
            ratio, share = base["median_ms"] / br["median_ms"], gf / peak_of(br, peak)
            p("base infer b%d: %.2fx ONNX Runtime, %.0f GFLOP/s = %.0f%% of the FMA peak %.0f (target >= 1.3x or "
              ">= 85%%: %s)" % (b, ratio, gf, 100 * share, peak_of(br, peak),
                                "met" if ratio >= 1.3 or share >= 0.85 else "NOT met"))
    if pairs:  # the same target judged on back-to-back pairs: each pair's ratio, and its share of the probe
        ratios = sorted(o["median_ms"] / b["median_ms"] for b, o in pairs)
        shares = sorted(b["gflop"] / b["median_ms"] * 1e3 / peak_of(b, peak) for b, o in pairs if peak_of(b, peak))
        mid = lambda v: v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])
        p("base infer b1, %d alternating pairs (bertfit then ONNX Runtime, each its own process; ms %s): sorted ratios "
          "%s, median %.2fx; bertfit %s of the probe, median %.0f%% (target >= 1.3x or >= 85%%: %s)" % (
              len(pairs), " ".join("%.1f/%.1f" % (b["median_ms"], o["median_ms"]) for b, o in pairs),
              " ".join("%.2f" % r for r in ratios), mid(ratios),
              " ".join("%.0f%%" % (100 * x) for x in shares), 100 * mid(shares) if shares else 0,
              "met" if mid(ratios) >= 1.3 or (shares and mid(shares) >= 0.85) else "NOT met"))
    # Other targets: base b32 GFLOP/s vs sgemm, peak RSS, thread scaling.
    for b in (32, 8):
        br = bertfit("base", "train", b)
        if br and own_rate(br, rate):
            gf = br["gflop"] / br["median_ms"] * 1e3
            own = own_rate(br, rate)
            where = ("measured just before it (%.0f GFLOP/s; %.0f%% of the run's best sgemm, %.0f)" % (
                own, 100 * gf / rate if rate else 0, rate)) if "sgemm_gflops" in br else "of the run (%.0f)" % rate
            p("base train b%d: %.0f GFLOP/s = %.0f%% of the sgemm rate %s%s" % (
                b, gf, 100 * gf / own, where,
                " (target >= 90%%: %s)" % ("met" if gf >= 0.9 * own else "NOT met") if b == 32 else ""))
    for b in (32, 8):
        br = bertfit("base", "train", b)
        tc = by.get(("pytorch", "base", "train", b), [])
        if br and tc:
            tb = torch_best("base", "train", b)
            p("peak RSS base train b%d: bertfit %.0f MB, PyTorch %.0f MB at its best setting (%s; %.0f-%.0f over settings): "
              "ratio %.2f%s" % (b, br["peak_rss_mb"], tb["peak_rss_mb"], tb["setting"],
                                min(r["peak_rss_mb"] for r in tc), max(r["peak_rss_mb"] for r in tc),
                                br["peak_rss_mb"] / tb["peak_rss_mb"],
                                " (target <= 0.50: %s)" % ("met" if br["peak_rss_mb"] <= 0.5 * tb["peak_rss_mb"] else "NOT met")
                                if b == 32 else ""))
    for model, case, b in (("base", "train", 32), ("base", "train", 8), ("mini", "train", 32)):
        t1, t2 = bertfit(model, case, b, 1), bertfit(model, case, b, 2)
        if t1 and t2:
            s = t1["median_ms"] / t2["median_ms"]
            p("thread scaling %s %s b%d: 1 thread %.0f ms, 2 threads %.0f ms: %.2fx (target >= 1.8x: %s)" % (
                model, case, b, t1["median_ms"], t2["median_ms"], s, "met" if s >= 1.8 else "NOT met"))
    p("")
    p("every setting (median ms, peak RSS MB):")
    for key in sorted(k for k in by if k[0] != "onnxruntime" and k[2] != "sgemm"):
        p("  %-8s %-5s %-10s b%-3d " % key + "  ".join(
            "%s %.0f (%.0f MB)" % (r["setting"], r["median_ms"], r["peak_rss_mb"]) for r in by[key]))
    print("\n".join(out))


if __name__ == "__main__":
    main()
