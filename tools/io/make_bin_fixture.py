#!/usr/bin/python3
"""Writes real torch.save checkpoints for the .bin reader tests (run with Debian's /usr/bin/python3, torch 1.13).

Outputs in tests/fixtures/io/bin/ (small, committed):
  tiny.bin            torch.save(state_dict, "tiny.bin")  -> archive prefix "tiny/"
  archive.bin         torch.save(state_dict, <file object>) -> archive prefix "archive/"
  tiny.expected.json  {name: {"dtype", "shape", "values"}} in state-dict order, values as Python floats/ints
and tests/fixtures/io/hostile/legacy.bin, a pre-1.6 (non-zip) torch file that bertfit must refuse.
The state dict has what real checkpoints have: an nn.Module state dict (OrderedDict with _metadata, BUILD),
tied weights (two names, one storage), a transposed view (.t(), shares storage, strides [1, n]), a slice with a
storage offset, an expanded position_ids buffer (stride 0), f16, bf16, f64, i64, bool, a 0-dim and an empty
tensor, and an nn.Parameter (torch._utils._rebuild_parameter).
Deterministic: fixed seed, so regenerating gives identical tensors (the zip bytes may differ by torch build).
"""
import collections
import io
import json
import os
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "io", "bin")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = torch.nn.Embedding(5, 4)
        self.dense = torch.nn.Linear(4, 3)
        self.LayerNorm = torch.nn.LayerNorm(3)
        self.register_buffer("position_ids", torch.arange(6).expand((1, -1)))


def build():
    torch.manual_seed(1234)
    model = Tiny()
    sd = model.state_dict()  # OrderedDict with a _metadata attribute
    emb = sd["embeddings.weight"]
    sd["decoder.weight"] = emb  # tied: same storage, same key in the zip
    sd["dense.weight_t"] = sd["dense.weight"].t()  # view: strides [1, 4]
    sd["emb_rows"] = emb[2:4]  # storage offset 8
    sd["half"] = torch.linspace(-2, 2, 6).reshape(2, 3).half()
    sd["bf16"] = torch.tensor([1.0, -0.5, 3.140625, 1e-3]).bfloat16()
    sd["f64"] = torch.tensor([[0.1, 0.2]], dtype=torch.float64)
    sd["flags"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.tensor([7.0, 8.0]))
    return sd


def expected(sd):
    out = collections.OrderedDict()
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64", torch.bool: "BOOL"}
    for k, t in sd.items():
        t = t.detach()
        vals = t.reshape(-1).tolist() if t.dtype in (torch.int64, torch.bool) else t.float().reshape(-1).tolist()
        out[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "strides": list(t.stride()),
                  "storage_offset": t.storage_offset(), "values": [int(v) if isinstance(v, bool) else v for v in vals]}
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = build()
    torch.save(sd, os.path.join(OUT, "tiny.bin"))
    buf = io.BytesIO()
    torch.save(sd, buf)
    with open(os.path.join(OUT, "archive.bin"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(OUT, "tiny.expected.json"), "w") as f:
        json.dump(expected(sd), f, indent=1)
        f.write("\n")
    # The legacy (pre-1.6) format, which bertfit refuses with a clear message: a hostile-corpus input.
    hostile = os.path.join(OUT, "..", "hostile")
    os.makedirs(hostile, exist_ok=True)
    torch.save({"w": torch.ones(2)}, os.path.join(hostile, "legacy.bin"), _use_new_zipfile_serialization=False)
    # Self-check: torch reads back what it wrote.
    back = torch.load(os.path.join(OUT, "tiny.bin"))
    assert all(torch.equal(back[k], sd[k]) for k in sd), "torch round trip failed"
    print("wrote", OUT, "with torch", torch.__version__, file=sys.stderr)


if __name__ == "__main__":
    main()
