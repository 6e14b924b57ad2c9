#!/usr/bin/python3
"""End-to-end oracle for bertfit's checkpoint formats, with the plain-PyTorch reference model
(tools/reference/torch_bert.py) and the independent safetensors reader (tools/io/safetensors_read.py).
Run with Debian's /usr/bin/python3 (torch 1.13).

  e2e_reference.py make-bin DIR FAMILY SEED
      Writes DIR/config.json and DIR/pytorch_model.bin (torch.save of a state dict: random weights with HF's
      names plus the position_ids buffer HF keeps), and DIR/reference.json = {input_ids, attention_mask,
      token_type_ids, logits} for a fixed batch, computed by the reference model.
  e2e_reference.py logits DIR BATCH_JSON
      Reads DIR (config.json + model.safetensors, or its sharded index) WITHOUT bertfit and prints the reference
      model's logits for the batch in BATCH_JSON ({input_ids, attention_mask, token_type_ids}) as JSON.
Both use the sequence-classification head (BERT: pooler + classifier; RoBERTa: classifier.dense + out_proj).
"""
import collections
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import safetensors_read  # noqa: E402
import torch_bert  # noqa: E402


def reference_config(cfg):
    """torch_bert's config dict from a config.json (HF class defaults for what is missing)."""
    out = torch_bert.make_config(cfg.get("model_type", "bert"))
    for k in out:
        if k in cfg:
            out[k] = cfg[k]
    out["num_labels"] = len(cfg.get("id2label", {"0": 0, "1": 1}))
    return out


def make_bin(out_dir, family, seed):
    os.makedirs(out_dir, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    cfg = torch_bert.make_config(family, num_labels=3)
    params = torch_bert.random_params(cfg, "cls", gen)
    ids, mask, types, labels = torch_bert.make_batch(cfg, "cls", gen)
    with torch.no_grad():
        _, logits, _ = torch_bert.forward(params, cfg, "cls", ids, mask, types, labels)
    sd = collections.OrderedDict((k, v.detach()) for k, v in params.items())
    p = "roberta" if family == "roberta" else "bert"
    sd[p + ".embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).expand((1, -1))
    torch.save(sd, os.path.join(out_dir, "pytorch_model.bin"))
    config = {k: v for k, v in cfg.items() if k != "num_labels"}
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    config["label2id"] = {"a": 0, "b": 1, "c": 2}
    config["architectures"] = ["BertForSequenceClassification" if p == "bert" else "RobertaForSequenceClassification"]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(out_dir, "reference.json"), "w") as f:
        json.dump({"input_ids": ids.tolist(), "attention_mask": mask.tolist(), "token_type_ids": types.tolist(),
                   "logits": logits.tolist()}, f)


def logits_of_dir(model_dir, batch_path):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = reference_config(json.load(f))
    tensors = safetensors_read.load_model_dir(model_dir)
    params = {k: torch.from_numpy(v) for k, v in tensors.items()}
    with open(batch_path) as f:
        b = json.load(f)
    ids, mask, types = (torch.tensor(b[k], dtype=torch.long) for k in ("input_ids", "attention_mask", "token_type_ids"))
    labels = torch.zeros(ids.shape[0], dtype=torch.long)
    with torch.no_grad():
        _, logits, _ = torch_bert.forward(params, cfg, "cls", ids, mask, types, labels)
    json.dump(logits.tolist(), sys.stdout)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if len(sys.argv) == 5 and sys.argv[1] == "make-bin":
        make_bin(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "logits":
        logits_of_dir(sys.argv[2], sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
