#!/usr/bin/python3
"""A plain-PyTorch BERT / RoBERTa with HuggingFace's maths and parameter names: the oracle for bertfit's engine.

Written here from HF's modeling_bert.py / modeling_roberta.py semantics (transformers is not installable on these
machines): embeddings (word + token type, then + position; RoBERTa positions from the padding mask), post-LN
layers, exact erf GELU, additive finfo.min attention mask, BERT pooler + classifier, RoBERTa classification head,
masked-LM head with the decoder tied to the word embeddings. nn.Embedding's padding_idx semantics (no gradient
into the padding row) through F.embedding(padding_idx=...).

Run with Debian's interpreter (the first python3 on PATH may lack torch):
    /usr/bin/python3 tools/reference/torch_bert.py --out tests/fixtures/parity
Writes one safetensors file per case: the weights (HF names), the batch, the expected hidden states of every
layer, logits, loss, the gradient of every parameter ("grad.<name>"), and a 10-step AdamW loss trajectory.
"""
import argparse
import json
import math
import os
import struct

import torch
import torch.nn.functional as F


def make_config(family, **kw):
    cfg = dict(model_type=family, vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
               intermediate_size=37, hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
               max_position_embeddings=40, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
               pad_token_id=0)
    if family == "roberta":
        cfg.update(max_position_embeddings=20, type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1,
                   bos_token_id=0, eos_token_id=2)
    cfg.update(kw)
    return cfg


def param_shapes(cfg, head):
    C, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    p = "roberta" if cfg["model_type"] == "roberta" else "bert"
    s = {f"{p}.embeddings.word_embeddings.weight": (V, C),
         f"{p}.embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], C),
         f"{p}.embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], C),
         f"{p}.embeddings.LayerNorm.weight": (C,), f"{p}.embeddings.LayerNorm.bias": (C,)}
    for l in range(cfg["num_hidden_layers"]):
        q = f"{p}.encoder.layer.{l}."
        for n in ("query", "key", "value"):
            s[q + f"attention.self.{n}.weight"] = (C, C)
            s[q + f"attention.self.{n}.bias"] = (C,)
        s[q + "attention.output.dense.weight"] = (C, C)
        s[q + "attention.output.dense.bias"] = (C,)
        s[q + "attention.output.LayerNorm.weight"] = (C,)
        s[q + "attention.output.LayerNorm.bias"] = (C,)
        s[q + "intermediate.dense.weight"] = (I, C)
        s[q + "intermediate.dense.bias"] = (I,)
        s[q + "output.dense.weight"] = (C, I)
        s[q + "output.dense.bias"] = (C,)
        s[q + "output.LayerNorm.weight"] = (C,)
        s[q + "output.LayerNorm.bias"] = (C,)
    NL = cfg.get("num_labels", 3)
    if head == "cls" and p == "bert":
        s.update({"bert.pooler.dense.weight": (C, C), "bert.pooler.dense.bias": (C,),
                  "classifier.weight": (NL, C), "classifier.bias": (NL,)})
    elif head == "cls":
        s.update({"classifier.dense.weight": (C, C), "classifier.dense.bias": (C,),
                  "classifier.out_proj.weight": (NL, C), "classifier.out_proj.bias": (NL,)})
    elif head == "mlm" and p == "bert":
        s.update({"cls.predictions.transform.dense.weight": (C, C), "cls.predictions.transform.dense.bias": (C,),
                  "cls.predictions.transform.LayerNorm.weight": (C,), "cls.predictions.transform.LayerNorm.bias": (C,),
                  "cls.predictions.bias": (V,)})
    elif head == "mlm":
        s.update({"lm_head.dense.weight": (C, C), "lm_head.dense.bias": (C,), "lm_head.layer_norm.weight": (C,),
                  "lm_head.layer_norm.bias": (C,), "lm_head.bias": (V,)})
    return s


def random_params(cfg, head, gen):
    """Weights ~ N(0, 0.1) (larger than HF's 0.02 so every path carries signal), LayerNorm weights ~ 1 + N(0, 0.1),
    biases ~ N(0, 0.1): every parameter is exercised, none sits at a special value."""
    out = {}
    for name, shape in param_shapes(cfg, head).items():
        t = torch.randn(shape, generator=gen) * 0.1
        if ("LayerNorm" in name or "layer_norm" in name) and name.endswith("weight"):
            t += 1.0
        out[name] = t.requires_grad_(True)
    return out


def layer_norm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def forward(P, cfg, head, ids, mask, types, labels):
    """Returns (hidden_states list, logits, loss) exactly as HF's modules compute them (dropout off)."""
    p = "roberta" if cfg["model_type"] == "roberta" else "bert"
    B, T = ids.shape
    C, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    HS = C // NH
    eps = cfg["layer_norm_eps"]
    pad = cfg["pad_token_id"]
    if p == "roberta":
        m = ids.ne(pad).int()
        pos = (torch.cumsum(m, dim=1).type_as(m) * m).long() + pad
    else:
        pos = torch.arange(T).expand(B, T)
    e = f"{p}.embeddings."
    x = F.embedding(ids, P[e + "word_embeddings.weight"], padding_idx=pad)
    x = x + F.embedding(types, P[e + "token_type_embeddings.weight"])
    x = x + F.embedding(pos, P[e + "position_embeddings.weight"], padding_idx=pad if p == "roberta" else None)
    x = layer_norm(x, P[e + "LayerNorm.weight"], P[e + "LayerNorm.bias"], eps)
    hidden = [x]
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        q = f"{p}.encoder.layer.{l}."

        def lin(t, n):
            return F.linear(t, P[q + n + ".weight"], P[q + n + ".bias"])

        def heads(t):
            return t.view(B, T, NH, HS).permute(0, 2, 1, 3)

        Q, K, Vv = (heads(lin(x, "attention.self." + n)) for n in ("query", "key", "value"))
        scores = torch.matmul(Q, K.transpose(-1, -2)) / math.sqrt(HS) + ext
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, Vv).permute(0, 2, 1, 3).contiguous().view(B, T, C)
        a = layer_norm(lin(ctx, "attention.output.dense") + x, P[q + "attention.output.LayerNorm.weight"],
                       P[q + "attention.output.LayerNorm.bias"], eps)
        inter = F.gelu(lin(a, "intermediate.dense"))
        x = layer_norm(lin(inter, "output.dense") + a, P[q + "output.LayerNorm.weight"],
                       P[q + "output.LayerNorm.bias"], eps)
        hidden.append(x)
    if head == "cls" and p == "bert":
        pooled = torch.tanh(F.linear(x[:, 0], P["bert.pooler.dense.weight"], P["bert.pooler.dense.bias"]))
        logits = F.linear(pooled, P["classifier.weight"], P["classifier.bias"])
        loss = F.cross_entropy(logits, labels)
    elif head == "cls":
        h = torch.tanh(F.linear(x[:, 0], P["classifier.dense.weight"], P["classifier.dense.bias"]))
        logits = F.linear(h, P["classifier.out_proj.weight"], P["classifier.out_proj.bias"])
        loss = F.cross_entropy(logits, labels)
    else:
        pre = "cls.predictions." if p == "bert" else "lm_head."
        dn, ln = (pre + "transform.dense", pre + "transform.LayerNorm") if p == "bert" else (pre + "dense", pre + "layer_norm")
        t = F.gelu(F.linear(x, P[dn + ".weight"], P[dn + ".bias"]))
        t = layer_norm(t, P[ln + ".weight"], P[ln + ".bias"], eps)
        logits = F.linear(t, P[e + "word_embeddings.weight"], P[pre + "bias"])  # tied decoder, own bias
        loss = F.cross_entropy(logits.view(-1, cfg["vocab_size"]), labels.view(-1), ignore_index=-100)
    return hidden, logits, loss


def write_safetensors(path, tensors, metadata):
    """Minimal writer of the format (FORMATS.md 2a): header padded with spaces to 8 bytes, offsets from 0."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        raw = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def make_batch(cfg, head, gen):
    """Three sequences of lengths 9, 5 and 2 padded to 9: special tokens at the ends, token types in pairs."""
    B, T = 3, 9
    lengths = [9, 5, 2]
    pad = cfg["pad_token_id"]
    ids = torch.full((B, T), pad, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    types = torch.zeros((B, T), dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, cfg["vocab_size"], (n,), generator=gen)
        mask[b, :n] = 1
        if cfg["type_vocab_size"] > 1:
            types[b, n // 2:n] = 1
    if head == "cls":
        labels = torch.tensor([2, 0, 1])
    else:  # masked LM: labels on about a third of the real tokens, -100 elsewhere (and on all padding)
        labels = torch.full((B, T), -100, dtype=torch.long)
        pick = (torch.rand((B, T), generator=gen) < 0.35) & mask.bool()
        pick[0, 1] = True
        labels[pick] = torch.randint(0, cfg["vocab_size"], (int(pick.sum()),), generator=gen)
    return ids, mask, types, labels


def make_case(family, head, seed, out_dir):
    gen = torch.Generator().manual_seed(seed)
    cfg = make_config(family, num_labels=3)
    P = random_params(cfg, head, gen)
    ids, mask, types, labels = make_batch(cfg, head, gen)
    hidden, logits, loss = forward(P, cfg, head, ids, mask, types, labels)
    loss.backward()
    t = {name: v.detach().clone() for name, v in P.items()}
    t.update({"input.input_ids": ids, "input.attention_mask": mask, "input.token_type_ids": types,
              "input.labels": labels})
    for l, h in enumerate(hidden):
        t[f"expected.hidden.{l}"] = h.detach()
    t["expected.logits"] = logits.detach()
    t["expected.loss"] = loss.detach().reshape(1)
    for name, v in P.items():
        t["grad." + name] = v.grad.detach().clone()

    # 10 AdamW steps as HF's Trainer would take them: no decay on biases and LayerNorm weights, clipping at 1.0.
    steps, lr, wd = 10, 1e-3, 0.01
    P2 = {n: v.detach().clone().requires_grad_(True) for n, v in t.items() if n in P}
    no_decay = [v for n, v in P2.items() if n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n]
    decay = [v for n, v in P2.items() if not (n.endswith("bias") or "LayerNorm" in n or "layer_norm" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-8)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        _, _, l2 = forward(P2, cfg, head, ids, mask, types, labels)
        l2.backward()
        torch.nn.utils.clip_grad_norm_(list(P2.values()), 1.0)
        opt.step()
        traj.append(l2.item())
    t["expected.trajectory"] = torch.tensor(traj, dtype=torch.float32)
    for name, v in P2.items():
        t["expected.after_adamw." + name] = v.detach()
    meta = {"config": json.dumps(cfg), "head": head, "adamw": json.dumps({"steps": steps, "lr": lr, "weight_decay": wd,
                                                                          "max_grad_norm": 1.0})}
    path = os.path.join(out_dir, f"{family}_{head}.safetensors")
    write_safetensors(path, t, meta)
    print(f"{path}: loss {loss.item():.6f}, trajectory {traj[0]:.5f} -> {traj[-1]:.5f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/parity")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for i, (family, head) in enumerate([("bert", "cls"), ("roberta", "cls"), ("bert", "mlm"), ("roberta", "mlm")]):
        make_case(family, head, 1000 + i, args.out)


if __name__ == "__main__":
    main()
