#!/usr/bin/python3
"""PyTorch baseline of bertfit's engine benchmark: a plain torch BERT with HuggingFace's maths, same shapes.

One case per process (peak RSS per case), one JSON line "RESULT {...}" on stdout, like bertfit_engine_bench:

    /usr/bin/python3 tools/bench/torch_bench.py --case train|infer|mlm|mlm_gather --model base|mini \
        --batch 8 --seq 128 --threads 2 --warmup 1 --repeats 3 --setting p2
    /usr/bin/python3 tools/bench/torch_bench.py --export-onnx out.onnx --model base --seq 128

The thread set-up (OMP_WAIT_POLICY, BLAS library via LD_LIBRARY_PATH, OPENBLAS_NUM_THREADS) must be set in the
environment BEFORE this process starts (bench/engine/run.sh does it); --setting only labels the result.

Model: BertForSequenceClassification (2 labels) / BertForMaskedLM as HF computes them: word + token type +
position embeddings, LayerNorm, dropout 0.1 (embeddings, attention probabilities, sub-layer outputs,
classifier), post-LN layers with separate Q, K, V nn.Linear as HF, exact erf GELU, additive finfo.min mask,
pooler tanh, MLM head dense-gelu-LN with the decoder tied to the word embeddings. HF's init (normal 0.02).
train: optimizer.zero_grad(set_to_none=True), forward, cross-entropy, backward, clip_grad_norm_(1.0),
AdamW(lr 2e-5, weight decay 0.01 except biases and LayerNorm weights): the same step bertfit's driver times.
mlm: 15% of positions labelled; logits at every position (HF), or only at the labelled ones (mlm_gather).
"""
import argparse
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {"base": dict(L=12, C=768, NH=12, I=3072), "mini": dict(L=4, C=256, NH=4, I=1024)}
VOCAB, MAXPOS, TYPES, P_DROP, EPS = 30522, 512, 2, 0.1, 1e-12


class Layer(nn.Module):
    def __init__(self, C, NH, I):
        super().__init__()
        self.NH, self.HS = NH, C // NH
        self.query, self.key, self.value = nn.Linear(C, C), nn.Linear(C, C), nn.Linear(C, C)
        self.attn_out, self.ln1 = nn.Linear(C, C), nn.LayerNorm(C, eps=EPS)
        self.inter, self.out, self.ln2 = nn.Linear(C, I), nn.Linear(I, C), nn.LayerNorm(C, eps=EPS)
        self.drop = nn.Dropout(P_DROP)

    def forward(self, x, ext):
        B, T, C = x.shape

        def heads(t):
            return t.view(B, T, self.NH, self.HS).permute(0, 2, 1, 3)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.HS) + ext
        probs = self.drop(torch.softmax(scores, dim=-1))
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(B, T, C)
        a = self.ln1(self.drop(self.attn_out(ctx)) + x)
        return self.ln2(self.drop(self.out(F.gelu(self.inter(a)))) + a)


class Bert(nn.Module):
    def __init__(self, L, C, NH, I, head):
        super().__init__()
        self.head = head
        self.word, self.pos, self.tok_type = nn.Embedding(VOCAB, C, padding_idx=0), nn.Embedding(MAXPOS, C), nn.Embedding(TYPES, C)
        self.ln, self.drop = nn.LayerNorm(C, eps=EPS), nn.Dropout(P_DROP)
        self.layers = nn.ModuleList(Layer(C, NH, I) for _ in range(L))
        if head == "cls":
            self.pooler, self.classifier = nn.Linear(C, C), nn.Linear(C, 2)
        else:
            self.transform, self.tln = nn.Linear(C, C), nn.LayerNorm(C, eps=EPS)
            self.mlm_bias = nn.Parameter(torch.zeros(VOCAB))
        for m in self.modules():  # HF _init_weights
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0.0, 0.02)
            if isinstance(m, nn.Linear):
                m.bias.data.zero_()
        self.word.weight.data[0].zero_()

    def forward(self, ids, mask, types, labels=None, gather=False):
        B, T = ids.shape
        pos = torch.arange(T).expand(B, T)
        x = self.drop(self.ln(self.word(ids) + self.tok_type(types) + self.pos(pos)))
        ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, ext)
        if self.head == "cls":
            logits = self.classifier(self.drop(torch.tanh(self.pooler(x[:, 0]))))
            return logits if labels is None else F.cross_entropy(logits, labels)
        h = x.view(B * T, -1)
        flat = labels.view(-1)
        if gather:  # the same loss and gradients with the head on the labelled rows only
            keep = flat.ne(-100).nonzero().squeeze(1)
            h, flat = h.index_select(0, keep), flat.index_select(0, keep)
        t = self.tln(F.gelu(self.transform(h)))
        logits = F.linear(t, self.word.weight, self.mlm_bias)
        return F.cross_entropy(logits, flat, ignore_index=-100)


def model_gflop(model, case, B, T, L, C, masked):
    """The issue's count, the same as bertfit_engine_bench (printed there too)."""
    named = dict(model.named_parameters())
    emb = sum(p.numel() for n, p in named.items() if n.startswith(("word.", "pos.", "tok_type.", "ln.")))
    enc = sum(p.numel() for n, p in named.items() if n.startswith("layers."))
    total = sum(p.numel() for p in named.values())
    tokens = B * T
    attn = 12.0 * L * T * C * tokens
    if case.startswith("mlm"):
        return (6.0 * enc * tokens + attn + 6.0 * (C * C + C * VOCAB) * masked) * 1e-9
    train = 6.0 * (total - emb) * tokens + attn
    return (train / 3.0 if case == "infer" else train) * 1e-9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default="train", choices=["train", "infer", "mlm", "mlm_gather"])
    ap.add_argument("--model", default="mini", choices=list(SIZES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--setting", default="")
    ap.add_argument("--export-onnx", default="")
    ap.add_argument("--bf16", action="store_true",
                    help="torch.autocast('cpu', dtype=torch.bfloat16) around the forward and loss (HF's --bf16)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    s = SIZES[a.model]
    head = "mlm" if a.case.startswith("mlm") else "cls"
    model = Bert(s["L"], s["C"], s["NH"], s["I"], head)
    B, T = a.batch, a.seq
    g = torch.Generator().manual_seed(11)
    ids = torch.randint(1, VOCAB, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    types = torch.zeros(B, T, dtype=torch.long)

    if a.export_onnx:
        model.eval()
        torch.onnx.export(model, (ids, mask, types), a.export_onnx, opset_version=14,
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["logits"],
                          dynamic_axes={n: {0: "batch", 1: "seq"} for n in ["input_ids", "attention_mask", "token_type_ids"]})
        print("exported", a.export_onnx, file=sys.stderr)
        return

    masked = 0
    if head == "cls":
        labels = torch.randint(0, 2, (B,), generator=g)
    else:
        masked = int(round(0.15 * B * T))
        labels = torch.full((B * T,), -100, dtype=torch.long)
        pick = torch.randperm(B * T, generator=g)[:masked]
        labels[pick] = torch.randint(0, VOCAB, (masked,), generator=g)
        labels = labels.view(B, T)

    import contextlib
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext

    if a.case == "infer":
        model.eval()

        def step():
            with torch.inference_mode(), amp():
                model(ids, mask, types)
    else:
        model.train()
        decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or ".ln" in n or n.startswith("ln.") or "tln" in n)]
        no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or ".ln" in n or n.startswith("ln.") or "tln" in n]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=2e-5)
        gather = a.case == "mlm_gather"

        def step():
            opt.zero_grad(set_to_none=True)
            with amp():
                loss = model(ids, mask, types, labels, gather=gather)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()

    samples = []
    for r in range(a.warmup + a.repeats):
        t0 = time.perf_counter()
        step()
        dt = (time.perf_counter() - t0) * 1e3
        if r >= a.warmup:
            samples.append(dt)
    srt = sorted(samples)
    n = len(srt)
    median = srt[n // 2] if n % 2 else 0.5 * (srt[n // 2 - 1] + srt[n // 2])
    res = dict(engine="pytorch", case=a.case, model=a.model, batch=B, seq=T, threads=a.threads,
               setting=a.setting or f"t{a.threads}", median_ms=median, min_ms=srt[0], max_ms=srt[-1],
               gflop=model_gflop(model, a.case, B, T, s["L"], s["C"], masked),
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
               samples_ms=[round(x, 3) for x in samples], torch=torch.__version__,
               blas=os.environ.get("BERTFIT_BENCH_BLAS", "openblas-pthread"), precision="bf16" if a.bf16 else "fp32")
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
