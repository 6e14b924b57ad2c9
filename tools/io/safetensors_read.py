#!/usr/bin/python3
"""A pure Python + numpy reader and writer of the safetensors format, independent of bertfit.

It is the oracle for bertfit's writer ("a directory written by bertfit is read by a reader of the format that
is not bertfit") and the writer of files bertfit's reader must accept. It follows FORMATS.md 2a / the reference
implementation: u64 little-endian header length N <= 100,000,000, N bytes of UTF-8 JSON, then the byte buffer;
offsets sorted, contiguous from 0, buffer exactly covered; dtypes F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL (+U16,
U32, U64). BF16 is widened to float32 (u16 << 16) since numpy has no bfloat16.

Use as a module:
    import sys; sys.path.insert(0, "tools/io"); import safetensors_read as st
    tensors, metadata = st.load_file("model.safetensors")   # {name: np.ndarray}, {str: str}
    st.save_file({"w": np.zeros((2, 3), np.float32)}, "out.safetensors", {"format": "pt"})
    tensors = st.load_model_dir("some/hf/dir")               # model.safetensors or the sharded index
Or from the shell:
    /usr/bin/python3 tools/io/safetensors_read.py FILE [--json]   # summary, or every value as JSON
"""
import json
import os
import struct
import sys

import numpy as np

MAX_HEADER = 100_000_000
_DTYPES = {  # name -> (numpy dtype of the stored bytes, bytes per element)
    "F64": ("<f8", 8), "F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": ("<u2", 2),
    "I64": ("<i8", 8), "I32": ("<i4", 4), "I16": ("<i2", 2), "I8": ("i1", 1),
    "U64": ("<u8", 8), "U32": ("<u4", 4), "U16": ("<u2", 2), "U8": ("u1", 1), "BOOL": ("?", 1),
}
# The reference writer's order: dtype descending in the Rust enum order, then name.
_ORDER = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]


class SafetensorsError(ValueError):
    pass


def _reject_duplicates(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise SafetensorsError("duplicate key %r" % k)
        d[k] = v
    return d


def load_bytes(data, what="<bytes>"):
    """Parses a whole file image; returns ({name: np.ndarray}, {metadata}). BF16 becomes float32."""
    if len(data) < 8:
        raise SafetensorsError("%s: HeaderTooSmall" % what)
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER:
        raise SafetensorsError("%s: HeaderTooLarge" % what)
    if 8 + n > len(data):
        raise SafetensorsError("%s: InvalidHeaderLength" % what)
    try:
        text = data[8:8 + n].decode("utf-8")
    except UnicodeDecodeError as e:
        raise SafetensorsError("%s: InvalidHeader (%s)" % (what, e))
    header = json.loads(text, object_pairs_hook=_reject_duplicates)
    if not isinstance(header, dict):
        raise SafetensorsError("%s: header is not an object" % what)
    metadata = header.pop("__metadata__", None) or {}
    if not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError("%s: metadata values must be strings" % what)
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    buf = memoryview(data)[8 + n:]
    start = 0
    out = {}
    for name, info in entries:
        dtype, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _DTYPES:
            raise SafetensorsError("%s: %s: unknown dtype %r" % (what, name, dtype))
        if b != start or e < b:
            raise SafetensorsError("%s: %s: InvalidOffset" % (what, name))
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise SafetensorsError("%s: %s: bad shape" % (what, name))
        npdt, size = _DTYPES[dtype]
        count = int(np.prod(shape, dtype=object)) if shape else 1
        if e - b != count * size:
            raise SafetensorsError("%s: %s: TensorInvalidInfo" % (what, name))
        arr = np.frombuffer(buf[b:e], dtype=npdt, count=count).reshape(shape)
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.copy()
        start = e
    if start != len(buf):
        raise SafetensorsError("%s: MetadataIncompleteBuffer" % what)
    return out, metadata


def load_file(path):
    with open(path, "rb") as f:
        return load_bytes(f.read(), path)


def load_model_dir(path):
    """{name: array} from an HF directory's model.safetensors or model.safetensors.index.json shards."""
    single = os.path.join(path, "model.safetensors")
    if os.path.exists(single):
        return load_file(single)[0]
    with open(os.path.join(path, "model.safetensors.index.json")) as f:
        index = json.load(f)
    out = {}
    for shard in sorted(set(index["weight_map"].values())):
        out.update(load_file(os.path.join(path, shard))[0])
    return out


def save_file(tensors, path, metadata=None):
    """Writes {name: np.ndarray} the way the reference writer does (order, 8-byte space padding)."""
    names = {np.dtype("<f8"): "F64", np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<i8"): "I64",
             np.dtype("<i4"): "I32", np.dtype("<i2"): "I16", np.dtype("i1"): "I8", np.dtype("u1"): "U8",
             np.dtype("?"): "BOOL"}
    items = [(k, names[np.asarray(v).dtype], np.ascontiguousarray(v)) for k, v in tensors.items()]
    items.sort(key=lambda t: (-_ORDER.index(t[1]), t[0]))
    header, off = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for k, dt, v in items:
        header[k] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
        off += v.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for _, _, v in items:
            f.write(v.tobytes())


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    tensors, metadata = load_file(argv[1])
    if "--json" in argv:
        json.dump({"metadata": metadata,
                   "tensors": {k: {"shape": list(v.shape), "values": v.reshape(-1).tolist()}
                               for k, v in tensors.items()}}, sys.stdout)
        return 0
    print("metadata:", metadata)
    for k, v in tensors.items():
        print("%-60s %-8s %s" % (k, v.dtype, list(v.shape)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
