#!/usr/bin/env python3
"""Step-time model of bertfit's data-parallel training (docs/scaling.md): prints the tables of the doc.

Per step, every rank computes its micro-batch (T_c: forward + backward + AdamW) and the ranks sum the gradients
(OrderedSum / BucketedReducer: an all-to-all then an all-gather, each moving (N-1)/N of the S gradient bytes in
and out of every rank):
    T_r    = 2 (N-1)/N S / B  +  2 (N-1) alpha k  +  S / B_host
    hidden = what the backward can cover: buckets other than the last one (the embeddings, which the backward
             finishes last) overlap with the rest of the backward, at most T_bwd
    T      = T_c + max(T_r(last bucket), T_r - min(T_bwd, T_r(all but the last)))
B: link rate x 0.9 (TCP); alpha: one message's latency; k: buckets (--ddp_bucket_cap_mb 25);
B_host: what the host's TCP stack and copies sustain (fitted to the runs of bench/scaling/run.sh).
Efficiency = T_c / T (weak scaling: per-rank batch fixed, so N ranks process N x the examples)."""
import math

MODELS = {
    # parameters (floats), share of them in the embeddings, T_c for batch 32 x 128 on this 2-core VM (s)
    # (docs/benchmarks.md: BERT-base fine-tuning step 7.98 s, mini 0.453 s, 2 threads)
    "BERT-base": (109_483_776, 0.218, 7.98),
    "mini": (11_171_072, 0.711, 0.453),
}


def step(params, emb_share, t_c, n, gbit, alpha=50e-6, host_gbs=3.0, cap_mb=25):
    s = 4 * params
    b = gbit * 1e9 / 8 * 0.9
    k = max(1, math.ceil(s / (cap_mb * 2**20)))
    def t_r(nbytes, buckets):
        return 2 * (n - 1) / n * nbytes / b + 2 * (n - 1) * alpha * buckets + nbytes / (host_gbs * 1e9)
    total = t_r(s, k)
    last = t_r(emb_share * s, 1)
    t_bwd = t_c * 2 / 3
    exposed = max(last, total - min(t_bwd, total - last))
    return t_c + exposed, total


if __name__ == "__main__":
    for speed, label in ((1, "as fast as this 2-core VM"), (10, "10x this VM (a ~20-core machine)")):
        print(f"\n{label}: step time (s) and efficiency, per-rank batch 32 x 128")
        print("| model | link | " + " | ".join(f"N={n}" for n in (2, 4, 8, 16, 32, 64)) + " |")
        print("|---|---|" + "---|" * 6)
        for name, (p, e, t_c) in MODELS.items():
            for gbit in (10, 100):
                cells = []
                for n in (2, 4, 8, 16, 32, 64):
                    t, _ = step(p, e, t_c / speed, n, gbit)
                    cells.append(f"{t:.2f} ({100 * t_c / speed / t:.0f}%)")
                print(f"| {name} | {gbit} Gbit/s | " + " | ".join(cells) + " |")


def check_simulated():
    """The two-machine runs of run.sh (model size small: 13.75 M parameters, 6.4% in the embeddings, no
    overlap): the host rate is fitted to the unshaped veth's wait, the shaped ones are predicted."""
    s = 4 * 13_751_808
    host = s / 0.653  # B/s: mean wait of the two unshaped runs without overlap (590, 716 ms)
    for gbit in (10, 1):
        b = gbit * 1e9 / 8 * 0.9
        print(f"{gbit} Gbit/s, no overlap: predicted {1e3 * (s / b + s / host):.0f} ms per step waiting")


if __name__ == "__main__":
    check_simulated()
