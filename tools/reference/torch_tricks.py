#!/usr/bin/python3
"""PyTorch references of bertfit's competition tricks (issue 15): the goldens of tests/train/tricks_parity_test.

Each case takes the parity model of torch_bert.py (same weights generator, same padded batch of lengths 9, 5, 2),
with the encoder's dropout off and the classification head's dropout ON at rate 0.3. The head's dropout masks
are made deterministic by drawing them exactly as bertfit does (src/core/rng.h: a SplitMix64 counter hash of
(dropout_key(seed, step, site), element index); sites 2^20 + 2s + k for head sample s, k = 0 before the head,
k = 1 RoBERTa's inner dropout): the reference recomputes those bits with Python integers, so both sides drop the
same elements, and everything else (the head, the losses, the gradients) is torch's own:

  weighted    F.cross_entropy(weight=w, label_smoothing=eps)
  focal       F.nll_loss((1 - p)^gamma * log p, y, weight=w)
  msd         the mean over S head samples of each sample's loss
  rdrop       the batch twice (rows d and d + D): F.cross_entropy over both passes (their mean) + alpha x the
              per-document symmetric F.kl_div, weighted by the document's class weight
  fgm / pgd   adversarial training on the word-embedding matrix (FGM: r = eps g / ||g||; PGD: K steps of
              alpha g / ||g||, projected onto the eps ball; the clean gradients plus the last adversarial pass's)
  multilabel  HF's multi_label_classification: F.binary_cross_entropy_with_logits on multi-hot targets
  regression  HF's regression: one output, F.mse_loss
  ema         n AdamW steps with the weights' exponential moving average, decay min(d, (1 + n) / (10 + n))

Run with Debian's interpreter:  /usr/bin/python3 tools/reference/torch_tricks.py --out tests/fixtures/tricks
Writes one safetensors file per case: weights, batch, metadata (the config and the trick's settings), the
expected loss, logits and the gradient of every parameter ("grad.<name>"), and per trick what it perturbs or
averages ("expected.perturbation", "expected.ema.<name>").
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import make_batch, make_config, random_params, forward, write_safetensors  # noqa: E402

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
HEAD_SITE = 1 << 20
P_HEAD = 0.3


def splitmix64(x):
    x = (x + GOLDEN) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def dropout_key(seed, step, site):
    return splitmix64(seed ^ splitmix64((step * 0x100000001B3 + splitmix64(site)) & M64))


def dropout_mask(shape, p, seed, step, site):
    """bertfit's keep mask of a row-major tensor: element i kept iff (hash >> 40) >= ceil(p 2^24)."""
    key = dropout_key(seed, step, site)
    th = math.ceil(p * 16777216.0)
    n = 1
    for s in shape:
        n *= s
    keep = [1.0 if (splitmix64((key + i * GOLDEN) & M64) >> 40) >= th else 0.0 for i in range(n)]
    return torch.tensor(keep, dtype=torch.float32).view(*shape)


def dropout(x, p, seed, step, site):
    return x * dropout_mask(tuple(x.shape), p, seed, step, site) / (1.0 - p)


def head_logits(P, family, last, s, seed, step, p):
    """The classification head on the last hidden state with head sample s's dropout masks."""
    site = HEAD_SITE + 2 * s
    if family == "bert":
        x = torch.tanh(F.linear(last[:, 0], P["bert.pooler.dense.weight"], P["bert.pooler.dense.bias"]))
        return F.linear(dropout(x, p, seed, step, site), P["classifier.weight"], P["classifier.bias"])
    x = dropout(last[:, 0], p, seed, step, site)
    a = torch.tanh(F.linear(x, P["classifier.dense.weight"], P["classifier.dense.bias"]))
    return F.linear(dropout(a, p, seed, step, site + 1), P["classifier.out_proj.weight"],
                    P["classifier.out_proj.bias"])


def trick_loss(logits, labels, t, targets=None):
    """One head sample's training loss under the trick settings t (HF's losses for the other problem types)."""
    if t.get("problem_type") == "multi_label_classification":
        return F.binary_cross_entropy_with_logits(logits, targets)
    if t.get("problem_type") == "regression":
        return F.mse_loss(logits.squeeze(-1), targets)
    w = torch.tensor(t["class_weights"]) if t["class_weights"] else None
    if t["focal_gamma"] > 0:
        lp = F.log_softmax(logits, dim=-1)
        base = F.nll_loss((1.0 - lp.exp()) ** t["focal_gamma"] * lp, labels, weight=w)
    else:
        base = F.cross_entropy(logits, labels, weight=w, label_smoothing=t["label_smoothing"])
    if t["rdrop_alpha"] <= 0:
        return base
    D = logits.shape[0] // 2
    l1, l2 = F.log_softmax(logits[:D], dim=-1), F.log_softmax(logits[D:], dim=-1)
    # Per document: 0.5 (KL(p2 || p1) + KL(p1 || p2)); F.kl_div(input = log q, target = p) = p (log p - log q).
    kl = 0.5 * (F.kl_div(l1, l2.exp(), reduction="none").sum(-1) + F.kl_div(l2, l1.exp(), reduction="none").sum(-1))
    wd = w[labels[:D]] if w is not None else torch.ones(D)
    return base + t["rdrop_alpha"] * (wd * kl).sum() / wd.sum()


def model_loss(P, cfg, family, ids, mask, types, labels, t, seed, step, targets=None):
    hidden, _, _ = forward(P, cfg, "cls", ids, mask, types, labels.clamp(0, cfg["num_labels"] - 1))
    S = t["multi_sample_dropout"]
    samples = [head_logits(P, family, hidden[-1], s, seed, step, P_HEAD) for s in range(S)]
    loss = sum(trick_loss(l, labels, t, targets) for l in samples) / S
    return loss, sum(samples) / S


def trick_settings(**kw):
    t = dict(class_weights=[], label_smoothing=0.0, focal_gamma=0.0, rdrop_alpha=0.0, multi_sample_dropout=1)
    t.update(kw)
    return t


def setup(family, seed, num_labels=3):
    gen = torch.Generator().manual_seed(seed)
    cfg = make_config(family, num_labels=num_labels, classifier_dropout=P_HEAD)
    P = random_params(cfg, "cls", gen)
    ids, mask, types, labels = make_batch(cfg, "cls", gen)
    return cfg, P, ids, mask, types, labels


def save_case(out_dir, name, cfg, P, batch, extra, meta):
    ids, mask, types, labels = batch
    t = {n: v.detach().clone() for n, v in P.items()}
    t.update({"input.input_ids": ids, "input.attention_mask": mask, "input.token_type_ids": types,
              "input.labels": labels})
    t.update(extra)
    meta = {"config": json.dumps(cfg), "head": "cls", "adamw": "{}", "tricks": json.dumps(meta)}
    path = os.path.join(out_dir, name + ".safetensors")
    write_safetensors(path, t, meta)
    return path


def loss_case(out_dir, name, family, seed, t, dropout_seed=7, step=3):
    cfg, P, ids, mask, types, labels = setup(family, seed)
    if t["rdrop_alpha"] > 0:  # the batch twice: document d in rows d and d + D
        ids, mask, types, labels = (torch.cat([x, x]) for x in (ids, mask, types, labels))
    loss, logits = model_loss(P, cfg, family, ids, mask, types, labels, t, dropout_seed, step)
    loss.backward()
    extra = {"expected.loss": loss.detach().reshape(1), "expected.logits": logits.detach()}
    extra.update({"grad." + n: v.grad.detach().clone() for n, v in P.items()})
    meta = dict(t, dropout_seed=dropout_seed, step=step)
    print(f"{save_case(out_dir, name, cfg, P, (ids, mask, types, labels), extra, meta)}: loss {loss.item():.6f}")


def problem_type_case(out_dir, name, family, seed, problem_type, S=1, dropout_seed=7, step=5):
    """HF's multi_label_classification (BCEWithLogitsLoss over [B, 3] multi-hot targets) or regression (one
    output, MSELoss), with the head's dropout and S head samples."""
    nl = 1 if problem_type == "regression" else 3
    cfg, P, ids, mask, types, _ = setup(family, seed, nl)
    cfg["problem_type"] = problem_type
    labels = torch.zeros(ids.shape[0], dtype=torch.long)  # bertfit: marks the documents that have a target
    if problem_type == "regression":
        targets = torch.tensor([0.7, -1.2, 2.5])
    else:
        targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    t = trick_settings(problem_type=problem_type, multi_sample_dropout=S)
    loss, logits = model_loss(P, cfg, family, ids, mask, types, labels, t, dropout_seed, step, targets)
    loss.backward()
    extra = {"expected.loss": loss.detach().reshape(1), "expected.logits": logits.detach(), "input.targets": targets}
    extra.update({"grad." + n: v.grad.detach().clone() for n, v in P.items()})
    meta = dict(t, dropout_seed=dropout_seed, step=step)
    print(f"{save_case(out_dir, name, cfg, P, (ids, mask, types, labels), extra, meta)}: loss {loss.item():.6f}")


def adversarial_case(out_dir, name, family, seed, kind, eps, alpha=0.0, K=1, dropout_seed=7, step=3):
    """FGM (kind 'fgm') or PGD on the word embeddings, the clean pass's loss being plain cross-entropy."""
    cfg, P, ids, mask, types, labels = setup(family, seed)
    t = trick_settings()
    emb = f"{'roberta' if family == 'roberta' else 'bert'}.embeddings.word_embeddings.weight"

    def loss_fn():
        return model_loss(P, cfg, family, ids, mask, types, labels, t, dropout_seed, step)[0]

    clean = loss_fn()
    clean.backward()
    clean_grads = {n: v.grad.detach().clone() for n, v in P.items()}
    E0 = P[emb].detach().clone()
    with torch.no_grad():
        if kind == "fgm":
            g = P[emb].grad
            P[emb] += eps * g / g.norm()
    if kind == "fgm":
        adv = loss_fn()
        adv.backward()  # adds to the clean gradients
    else:
        for k in range(K):
            with torch.no_grad():
                g = P[emb].grad
                P[emb] += alpha * g / g.norm()
                r = P[emb] - E0
                if r.norm() > eps:
                    P[emb].copy_(E0 + eps * r / r.norm())
            for v in P.values():
                v.grad = None
            if k == K - 1:  # the last pass adds to the clean gradients
                for n, v in P.items():
                    v.grad = clean_grads[n].clone()
            adv = loss_fn()
            adv.backward()
    extra = {"expected.loss": clean.detach().reshape(1), "expected.adv_loss": adv.detach().reshape(1),
             "expected.perturbation": (P[emb] - E0).detach()}
    extra.update({"grad." + n: v.grad.detach().clone() for n, v in P.items()})
    with torch.no_grad():
        P[emb].copy_(E0)  # the saved weights are the clean ones
    meta = dict(t, dropout_seed=dropout_seed, step=step, adversarial=kind, epsilon=eps, alpha=alpha, steps=K)
    print(f"{save_case(out_dir, name, cfg, P, (ids, mask, types, labels), extra, meta)}: clean {clean.item():.6f}, "
          f"adversarial {adv.item():.6f}, |r| {(extra['expected.perturbation']).norm().item():.4f}")


def ema_case(out_dir, name, family, seed, decay, steps, lr=1e-3, wd=0.01, dropout_seed=7):
    """`steps` AdamW steps (HF's groups, no clipping, constant lr; the head dropout of step n keyed by n x 4096,
    as the training loop keys its micro-batch 0) and the EMA of the weights after each."""
    cfg, P, ids, mask, types, labels = setup(family, seed)
    t = trick_settings()
    P0 = {n: v.detach().clone() for n, v in P.items()}
    no_decay = [v for n, v in P.items() if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n]
    decay_p = [v for n, v in P.items() if not (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n)]
    opt = torch.optim.AdamW([{"params": decay_p, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-8)
    shadow = {n: v.detach().clone() for n, v in P.items()}
    for n_step in range(steps):
        opt.zero_grad()
        loss = model_loss(P, cfg, family, ids, mask, types, labels, t, dropout_seed, n_step * 4096)[0]
        loss.backward()
        opt.step()
        d = min(decay, (1.0 + n_step) / (10.0 + n_step))
        with torch.no_grad():
            for n, v in P.items():
                shadow[n].mul_(d).add_(v.detach(), alpha=1.0 - d)
    extra = {"expected.ema." + n: v for n, v in shadow.items()}
    extra.update({"expected.after_adamw." + n: v.detach().clone() for n, v in P.items()})
    meta = dict(t, dropout_seed=dropout_seed, ema_decay=decay, steps=steps, lr=lr, weight_decay=wd)
    print(f"{save_case(out_dir, name, cfg, P0, (ids, mask, types, labels), extra, meta)}: last loss {loss.item():.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/tricks")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    w = [0.5, 2.0, 1.25]
    loss_case(args.out, "bert_weighted", "bert", 2000, trick_settings(class_weights=w, label_smoothing=0.1))
    loss_case(args.out, "roberta_focal", "roberta", 2001, trick_settings(class_weights=w, focal_gamma=2.0))
    loss_case(args.out, "roberta_msd", "roberta", 2002, trick_settings(multi_sample_dropout=3))
    loss_case(args.out, "bert_rdrop", "bert", 2003, trick_settings(rdrop_alpha=1.5))
    loss_case(args.out, "roberta_rdrop_msd_weighted", "roberta", 2004,
              trick_settings(class_weights=w, rdrop_alpha=1.0, multi_sample_dropout=2, focal_gamma=1.0))
    adversarial_case(args.out, "bert_fgm", "bert", 2005, "fgm", eps=1.0)
    # A ball smaller than K x alpha, so that the projection acts.
    adversarial_case(args.out, "roberta_pgd", "roberta", 2006, "pgd", eps=0.5, alpha=0.3, K=3)
    ema_case(args.out, "bert_ema", "bert", 2007, decay=0.9, steps=6)
    problem_type_case(args.out, "bert_multilabel", "bert", 2008, "multi_label_classification", S=2)
    problem_type_case(args.out, "roberta_regression", "roberta", 2009, "regression")


if __name__ == "__main__":
    main()
