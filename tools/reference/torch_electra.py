#!/usr/bin/python3
"""A plain-PyTorch ELECTRA with HuggingFace's maths and parameter names: the oracle for bertfit's ELECTRA.

Written from HF's modeling_electra.py semantics (transformers is not installable here):
  ElectraEmbeddings: word + token type + position embeddings at embedding_size, LayerNorm(embedding_size),
    dropout; ElectraModel: then embeddings_project = Linear(embedding_size, hidden_size) when the sizes differ;
    hidden_states[0] is the projected embedding output; the encoder is BERT's (post-LN layers, erf GELU).
  ElectraForPreTraining: discriminator_predictions.dense (hidden -> hidden), activation (hidden_act),
    dense_prediction (hidden -> 1), squeeze; loss = BCEWithLogits over the attention-mask-1 tokens (mean).
  ElectraForMaskedLM: generator_predictions.dense (hidden -> embedding_size), gelu, LayerNorm(embedding_size);
    generator_lm_head (embedding_size -> vocab) with its weight tied to the word embeddings; cross-entropy.
  ElectraForSequenceClassification: ElectraClassificationHead on the first token: dropout, dense (hidden ->
    hidden), gelu, dropout, out_proj; cross-entropy.

Run with Debian's interpreter:
    /usr/bin/python3 tools/reference/torch_electra.py --out tests/fixtures/parity
Writes one safetensors file per case in torch_bert.py's layout (weights, batch, hidden states, logits, loss,
every parameter's gradient, a 10-step AdamW trajectory).
"""
import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import layer_norm, make_batch, write_safetensors  # noqa: E402


def make_config(embedding_size, **kw):
    cfg = dict(model_type="electra", vocab_size=99, embedding_size=embedding_size, hidden_size=32,
               num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, hidden_act="gelu",
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=40,
               type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
    cfg.update(kw)
    return cfg


def param_shapes(cfg, head):
    C, I, V, E = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["embedding_size"]
    p = "electra"
    s = {f"{p}.embeddings.word_embeddings.weight": (V, E),
         f"{p}.embeddings.position_embeddings.weight": (cfg["max_position_embeddings"], E),
         f"{p}.embeddings.token_type_embeddings.weight": (cfg["type_vocab_size"], E),
         f"{p}.embeddings.LayerNorm.weight": (E,), f"{p}.embeddings.LayerNorm.bias": (E,)}
    if E != C:
        s.update({f"{p}.embeddings_project.weight": (C, E), f"{p}.embeddings_project.bias": (C,)})
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
    if head == "cls":
        s.update({"classifier.dense.weight": (C, C), "classifier.dense.bias": (C,),
                  "classifier.out_proj.weight": (NL, C), "classifier.out_proj.bias": (NL,)})
    elif head == "mlm":
        s.update({"generator_predictions.dense.weight": (E, C), "generator_predictions.dense.bias": (E,),
                  "generator_predictions.LayerNorm.weight": (E,), "generator_predictions.LayerNorm.bias": (E,),
                  "generator_lm_head.bias": (V,)})
    else:
        s.update({"discriminator_predictions.dense.weight": (C, C), "discriminator_predictions.dense.bias": (C,),
                  "discriminator_predictions.dense_prediction.weight": (1, C),
                  "discriminator_predictions.dense_prediction.bias": (1,)})
    return s


def random_params(cfg, head, gen):
    """As torch_bert.py: weights and biases ~ N(0, 0.1), LayerNorm weights ~ 1 + N(0, 0.1)."""
    out = {}
    for name, shape in param_shapes(cfg, head).items():
        t = torch.randn(shape, generator=gen) * 0.1
        if "LayerNorm" in name and name.endswith("weight"):
            t += 1.0
        out[name] = t.requires_grad_(True)
    return out


def forward(P, cfg, head, ids, mask, types, labels):
    B, T = ids.shape
    C, NH, E = cfg["hidden_size"], cfg["num_attention_heads"], cfg["embedding_size"]
    HS = C // NH
    eps = cfg["layer_norm_eps"]
    pad = cfg["pad_token_id"]
    pos = torch.arange(T).expand(B, T)
    e = "electra.embeddings."
    x = F.embedding(ids, P[e + "word_embeddings.weight"], padding_idx=pad)
    x = x + F.embedding(types, P[e + "token_type_embeddings.weight"])
    x = x + F.embedding(pos, P[e + "position_embeddings.weight"])
    x = layer_norm(x, P[e + "LayerNorm.weight"], P[e + "LayerNorm.bias"], eps)
    if E != C:
        x = F.linear(x, P["electra.embeddings_project.weight"], P["electra.embeddings_project.bias"])
    hidden = [x]
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for l in range(cfg["num_hidden_layers"]):
        q = f"electra.encoder.layer.{l}."

        def lin(t, n):
            return F.linear(t, P[q + n + ".weight"], P[q + n + ".bias"])

        def heads(t):
            return t.view(B, T, NH, HS).permute(0, 2, 1, 3)

        Q, K, Vv = (heads(lin(x, "attention.self." + n)) for n in ("query", "key", "value"))
        probs = torch.softmax(torch.matmul(Q, K.transpose(-1, -2)) / math.sqrt(HS) + ext, dim=-1)
        ctx = torch.matmul(probs, Vv).permute(0, 2, 1, 3).contiguous().view(B, T, C)
        a = layer_norm(lin(ctx, "attention.output.dense") + x, P[q + "attention.output.LayerNorm.weight"],
                       P[q + "attention.output.LayerNorm.bias"], eps)
        inter = F.gelu(lin(a, "intermediate.dense"))
        x = layer_norm(lin(inter, "output.dense") + a, P[q + "output.LayerNorm.weight"],
                       P[q + "output.LayerNorm.bias"], eps)
        hidden.append(x)
    if head == "cls":  # ElectraClassificationHead (dropout off)
        h = F.gelu(F.linear(x[:, 0], P["classifier.dense.weight"], P["classifier.dense.bias"]))
        logits = F.linear(h, P["classifier.out_proj.weight"], P["classifier.out_proj.bias"])
        loss = F.cross_entropy(logits, labels)
    elif head == "mlm":  # ElectraGeneratorPredictions + generator_lm_head (tied to the word embeddings)
        g = "generator_predictions."
        t = F.gelu(F.linear(x, P[g + "dense.weight"], P[g + "dense.bias"]))
        t = layer_norm(t, P[g + "LayerNorm.weight"], P[g + "LayerNorm.bias"], eps)
        logits = F.linear(t, P[e + "word_embeddings.weight"], P["generator_lm_head.bias"])
        loss = F.cross_entropy(logits.view(-1, cfg["vocab_size"]), labels.view(-1), ignore_index=-100)
    else:  # ElectraDiscriminatorPredictions + ElectraForPreTraining's loss
        d = "discriminator_predictions."
        h = F.gelu(F.linear(x, P[d + "dense.weight"], P[d + "dense.bias"]))
        logits = F.linear(h, P[d + "dense_prediction.weight"], P[d + "dense_prediction.bias"]).squeeze(-1)
        active = mask.view(-1, T) == 1
        loss = F.binary_cross_entropy_with_logits(logits.view(-1, T)[active], labels[active].float())
    return hidden, logits, loss


def make_case(name, embedding_size, head, seed, out_dir):
    gen = torch.Generator().manual_seed(seed)
    cfg = make_config(embedding_size, num_labels=3)
    P = random_params(cfg, head, gen)
    ids, mask, types, labels = make_batch(cfg, "cls" if head == "cls" else "mlm", gen)
    if head == "disc":  # replaced (1) / original (0) on every position, padding included (the loss skips it)
        labels = (torch.rand(ids.shape, generator=gen) < 0.3).long()
    hidden, logits, loss = forward(P, cfg, head, ids, mask, types, labels)
    loss.backward()
    t = {n: v.detach().clone() for n, v in P.items()}
    t.update({"input.input_ids": ids, "input.attention_mask": mask, "input.token_type_ids": types,
              "input.labels": labels})
    for l, h in enumerate(hidden):
        t[f"expected.hidden.{l}"] = h.detach()
    t["expected.logits"] = logits.detach()
    t["expected.loss"] = loss.detach().reshape(1)
    for n, v in P.items():
        t["grad." + n] = v.grad.detach().clone()

    steps, lr, wd = 10, 1e-3, 0.01
    P2 = {n: v.detach().clone().requires_grad_(True) for n, v in t.items() if n in P}
    nd = [v for n, v in P2.items() if n.endswith("bias") or "LayerNorm" in n]
    dc = [v for n, v in P2.items() if not (n.endswith("bias") or "LayerNorm" in n)]
    opt = torch.optim.AdamW([{"params": dc, "weight_decay": wd}, {"params": nd, "weight_decay": 0.0}], lr=lr,
                            betas=(0.9, 0.999), eps=1e-8)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        _, _, l2 = forward(P2, cfg, head, ids, mask, types, labels)
        l2.backward()
        torch.nn.utils.clip_grad_norm_(list(P2.values()), 1.0)
        opt.step()
        traj.append(l2.item())
    t["expected.trajectory"] = torch.tensor(traj, dtype=torch.float32)
    for n, v in P2.items():
        t["expected.after_adamw." + n] = v.detach()
    meta = {"config": json.dumps(cfg), "head": head,
            "adamw": json.dumps({"steps": steps, "lr": lr, "weight_decay": wd, "max_grad_norm": 1.0})}
    path = os.path.join(out_dir, f"{name}.safetensors")
    write_safetensors(path, t, meta)
    print(f"{path}: loss {loss.item():.6f}, trajectory {traj[0]:.5f} -> {traj[-1]:.5f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/parity")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    # embedding_size 24 != hidden 32: embeddings_project in every head; one classifier without it (24 -> 32).
    cases = [("electra_cls", 24, "cls"), ("electra_mlm", 24, "mlm"), ("electra_disc", 24, "disc"),
             ("electra_cls_noproj", 32, "cls")]
    for i, (name, E, head) in enumerate(cases):
        make_case(name, E, head, 2000 + i, args.out)


if __name__ == "__main__":
    main()
