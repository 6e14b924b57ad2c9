#!/usr/bin/python3
"""Generates the hostile-input corpus for bertfit's checkpoint readers: malformed safetensors files, torch zip
archives and pickles, config.json files and checkpoint directories, each with the error bertfit must report.

    /usr/bin/python3 tools/io/make_hostile_corpus.py OUTDIR

writes OUTDIR/<case files> and OUTDIR/manifest.json = [{"file", "loader", "error", "fragments"}], where loader
is safetensors | torch_bin | config | checkpoint, error the exception class, and fragments substrings the
message must contain (the test also requires the file's path). It also writes OUTDIR/valid_zip64.bin, a valid
archive whose central directory uses ZIP64 extra fields, which must load like tests/fixtures/io/bin/tiny.bin.
Committed inputs made by other tools (tests/fixtures/io/hostile/, e.g. torch's legacy format) have their own
manifest.json there. Standard library only (no numpy, no torch), deterministic output.
"""
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "..", "tests", "fixtures", "io", "bin", "tiny.bin")
cases = []


def case(name, data, loader, error, *fragments):
    path = os.path.join(OUT, name)
    if isinstance(data, dict):  # a directory: {file name: bytes}
        os.makedirs(path, exist_ok=True)
        for k, v in data.items():
            with open(os.path.join(path, k), "wb") as f:
                f.write(v)
    else:
        with open(path, "wb") as f:
            f.write(data)
    cases.append({"file": name, "loader": loader, "error": error, "fragments": list(fragments)})


# ---------------------------------------------------------------- safetensors

def st(header, buffer=b"", n=None):
    """A safetensors image from a header (dict or raw str/bytes) and a buffer; n overrides the length."""
    h = header if isinstance(header, bytes) else (
        header.encode() if isinstance(header, str) else json.dumps(header, separators=(",", ":")).encode())
    return struct.pack("<Q", len(h) if n is None else n) + h + buffer


def t(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


def safetensors_cases():
    f8 = b"\0" * 8
    S, E = "safetensors", "FormatError"
    case("st_empty.safetensors", b"", S, E, "HeaderTooSmall")
    case("st_5_bytes.safetensors", b"\x01\x02\x03\x04\x05", S, E, "HeaderTooSmall")
    case("st_header_longer_than_file.safetensors", st({}, n=4096), S, E, "InvalidHeaderLength")
    case("st_header_len_2_63.safetensors", st({}, n=1 << 63), S, E, "HeaderTooLarge")
    case("st_header_len_over_limit.safetensors", st({}, n=100_000_001), S, E, "HeaderTooLarge")
    good = st({"a": t("F32", [2], 0, 8)}, f8)
    case("st_truncated_buffer.safetensors", good[:-3], S, E, "file truncated", "MetadataIncompleteBuffer")
    case("st_trailing_bytes.safetensors", good + b"POLYGLOT", S, E, "trailing bytes", "MetadataIncompleteBuffer")
    case("st_overlap.safetensors", st({"a": t("F32", [2], 0, 8), "b": t("F32", [1], 4, 8)}, f8), S, E,
         "overlap", "InvalidOffset")
    case("st_gap.safetensors", st({"a": t("F32", [1], 0, 4), "b": t("F32", [1], 8, 12)}, f8 + b"\0" * 4), S, E,
         "gap", "InvalidOffset")
    case("st_offsets_past_end.safetensors", st({"a": t("F32", [1 << 38], 0, 1 << 40)}, f8), S, E,
         "file truncated", "MetadataIncompleteBuffer")
    case("st_end_before_begin.safetensors", st({"a": t("F32", [0], 0, 0), "b": t("F32", [1], 0, 4),
                                                "c": t("F32", [1], 4, 0)}, b"\0" * 4), S, E, "InvalidOffset")
    case("st_shape_overflow.safetensors", st({"a": t("F32", [1 << 40, 1 << 40, 1 << 40], 0, 8)}, f8), S, E,
         "overflows", "ValidationOverflow")
    case("st_dtype_size_mismatch.safetensors", st({"a": t("F64", [2], 0, 8)}, f8), S, E,
         "needs 16", "TensorInvalidInfo")
    case("st_duplicate_names.safetensors",
         st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],'
            '"data_offsets":[4,8]}}', f8), S, E, 'duplicate key "a"')
    case("st_non_utf8_header.safetensors", st(b'{"\xc3\x28":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}',
                                              b"\0" * 4), S, E, "not valid UTF-8", "InvalidHeader")
    case("st_overlong_utf8.safetensors", st(b'{"\xc0\xaf":1}'), S, E, "not valid UTF-8")
    case("st_metadata_int_value.safetensors", st({"__metadata__": {"format": 1}}), S, E,
         '"format" must be a string')
    case("st_metadata_list.safetensors", st({"__metadata__": ["pt"]}), S, E, "__metadata__ must be an object")
    case("st_metadata_nested.safetensors", st({"__metadata__": {"format": {"x": "pt"}}}), S, E,
         "must be a string")
    case("st_invalid_json.safetensors", st('{"a": {"dtype": "F32", '), S, E, "invalid JSON")
    case("st_unknown_dtype.safetensors", st({"a": t("F33", [1], 0, 4)}, b"\0" * 4), S, E, "unknown dtype")
    case("st_negative_shape.safetensors", st({"a": t("F32", [-1], 0, 4)}, b"\0" * 4), S, E, "negative")
    case("st_float_shape.safetensors", st('{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}',
                                          b"\0" * 4), S, E, "non-negative integers")
    case("st_missing_offsets.safetensors", st({"a": {"dtype": "F32", "shape": [1]}}), S, E,
         "missing field data_offsets")
    case("st_three_offsets.safetensors", st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}},
                                            b"\0" * 4), S, E, "[BEGIN, END]")
    case("st_header_is_array.safetensors", st("[]"), S, E, "must be a JSON object")
    case("st_json_nesting_bomb.safetensors", st("[" * 200000 + "]" * 200000), S, E, "nested deeper")
    case("st_number_overflow.safetensors", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":1e999999}}'), S, E,
         "invalid JSON", "number overflow")
    case("st_sub_byte_misaligned.safetensors", st({"a": t("F4", [3], 0, 1)}, b"\0"), S, E, "MisalignedSlice")
    case("st_dim_above_2_48.safetensors", st({"a": t("U8", [1 << 49], 0, 1 << 49)}), S, E, "2^48-1")


# ---------------------------------------------------------------- torch zip / pickle

def zip_image(entries, zip64_extra=False, method=0, eocd_count=None, cd_offset_delta=0):
    """A torch-style archive: STORED entries, payloads 64-byte aligned by an "FB" extra field, ZIP64 end
    records. zip64_extra puts sizes and offsets into ZIP64 extra fields of the central directory."""
    out, central = bytearray(), bytearray()
    for name, data in entries:
        nb = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = len(out)
        pad = (64 - (off + 30 + len(nb) + 4) % 64) % 64
        extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), len(data), len(nb),
                           len(extra)) + nb + extra + data
        if zip64_extra:
            cextra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), off)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
        else:
            cextra, sizes = b"", (len(data), len(data), off)
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, method, 0, 0, crc, sizes[0], sizes[1],
                               len(nb), len(cextra), 0, 0, 0, 0, sizes[2]) + nb + cextra
    cd_off = len(out) + cd_offset_delta
    out += central
    z64 = len(out)
    n = len(entries) if eocd_count is None else eocd_count
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, n, n, len(central), cd_off)
    out += struct.pack("<IIQI", 0x07064B50, 0, z64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(n, 0xFFFF), min(n, 0xFFFF), len(central),
                       min(cd_off, 0xFFFFFFFF), 0)
    return bytes(out)


def u(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pid(cls, key, numel):  # the persistent id tuple, then BINPERSID
    return b"(" + u("storage") + b"ctorch\n" + cls + b"\n" + u(key) + u("cpu") + b"J" + struct.pack("<i", numel) + b"tQ"


def tensor(cls, key, numel, offset, size, stride):
    ints = lambda v: b"(" + b"".join(b"J" + struct.pack("<i", x) for x in v) + b"t"
    return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + pid(cls, key, numel) + b"J" + struct.pack("<i", offset) +
            ints(size) + ints(stride) + b"\x89ccollections\nOrderedDict\n)RtR")


def state_dict(*items):  # OrderedDict of (name, pickled value)
    return (b"\x80\x02ccollections\nOrderedDict\n)R(" + b"".join(u(k) + v for k, v in items) + b"u.")


def torch_cases():
    B, E = "torch_bin", "FormatError"
    four = struct.pack("<4f", 1, 2, 3, 4)
    good_pkl = state_dict(("w", tensor(b"FloatStorage", "0", 4, 0, [2, 2], [2, 1])))
    good = [("m/data.pkl", good_pkl), ("m/data/0", four), ("m/version", b"3\n")]

    with open(TINY, "rb") as f:
        tiny = bytearray(f.read())
    flipped = bytearray(tiny)
    flipped[1700] ^= 0x01  # inside tiny/data/1's payload (offset 1600, 80 bytes)
    case("zip_bad_crc.bin", bytes(flipped), B, E, "tiny/data/1", "CRC-32 mismatch")
    cd = tiny.rfind(b"PK\x01\x02")
    case("zip_truncated_central_directory.bin", bytes(tiny[:cd + 20]), B, E, "end-of-central-directory")
    case("zip_truncated_half.bin", bytes(tiny[:len(tiny) // 2]), B, E, "end-of-central-directory")
    case("zip_cd_offset_past_end.bin", zip_image(good, cd_offset_delta=1 << 40), B, E, "central directory")
    case("zip_huge_entry_count.bin", zip_image(good, eocd_count=1 << 60), B, E, "declares", "entries")
    case("zip_compressed_entry.bin", zip_image(good, method=8), B, E, "compressed (method 8)")
    case("zip_duplicate_entry.bin", zip_image(good + [("m/data/0", four)]), B, E, "duplicate entry m/data/0")
    case("zip_not_a_zip.bin", b"hello, this is not a checkpoint\n" * 4, B, E, "not a zip archive")
    case("zip_no_data_pkl.bin", zip_image([("m/version", b"3\n")]), B, E, "no <archive>/data.pkl")
    case("zip_big_endian.bin", zip_image(good + [("m/byteorder", b"big")]), B, E, 'byteorder "big"')

    def pk(name, pkl, *fragments, extra=()):
        case(name, zip_image([("m/data.pkl", pkl), ("m/data/0", four)] + list(extra)), B, E, *fragments)

    pk("pickle_forbidden_os_system.bin", b"\x80\x02cos\nsystem\n(" + u("echo pwned") + b"tR.",
       "forbidden global os.system")
    pk("pickle_forbidden_builtins_eval.bin", b"\x80\x02cbuiltins\neval\n(" + u("1+1") + b"tR.",
       "forbidden global builtins.eval")
    pk("pickle_forbidden_torch_class.bin", b"\x80\x02ctorch.nn\nLinear\n)R.", "forbidden global torch.nn.Linear")
    pk("pickle_stack_global_protocol4.bin", b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00" + u("os") +
       u("system") + b"\x93.", "protocol 4")
    pk("pickle_inst_opcode.bin", b"\x80\x02(ios\nsystem\n.", "opcode 0x69 is not allowed")
    bomb = b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b"."
    pk("pickle_recursion_bomb.bin", bomb, "holds a Python list, not a state dict")
    pk("pickle_huge_string.bin", b"\x80\x02X\xf0\xff\xff\xff" + b"abc", "runs past the end")
    pk("pickle_huge_memo_index.bin", b"\x80\x02Nr\xff\xff\xff\xffj\xfe\xff\xff\xff.", "memo key 4294967294")
    pk("pickle_truncated.bin", good_pkl[:40], "truncated")
    pk("pickle_huge_storage_numel.bin", state_dict(("w", tensor(b"FloatStorage", "0", 1 << 30, 0, [4], [1]))),
       "storage data/0 has 16 bytes", "need 4294967296")
    pk("pickle_view_past_storage.bin", state_dict(("w", tensor(b"FloatStorage", "0", 4, 2, [2, 2], [2, 1]))),
       "reaches element 5 of a storage with 4 elements")
    pk("pickle_missing_storage.bin", state_dict(("w", tensor(b"FloatStorage", "7", 4, 0, [4], [1]))),
       "storage record data/7 is missing")
    pk("pickle_value_not_tensor.bin", state_dict(("w", b"K\x05")), '"w" holds a Python int, not a tensor')
    pk("pickle_not_a_dict.bin", b"\x80\x02]q\x00.", "holds a Python list, not a state dict")
    pk("pickle_duplicate_key.bin", state_dict(("w", tensor(b"FloatStorage", "0", 4, 0, [4], [1])),
                                              ("w", tensor(b"FloatStorage", "0", 4, 0, [4], [1]))), '"w" twice')
    pk("pickle_bad_persistent_id.bin", b"\x80\x02(" + u("storage") + b"tQ.", "persistent id")


# ---------------------------------------------------------------- config.json and directories

def config_cases():
    C, E = "config", "ConfigError"
    j = lambda d: json.dumps(d).encode()
    case("config_wrong_type.json", j({"model_type": "bert", "hidden_size": "768"}), C, E, "hidden_size",
         "must be an integer")
    case("config_negative_size.json", j({"model_type": "bert", "num_attention_heads": -12}), C, E,
         "num_attention_heads", "> 0")
    case("config_unknown_problem_type.json", j({"model_type": "bert", "problem_type": "ranking"}), C, E,
         "problem_type", "ranking")
    case("config_id2label_bad_key.json", j({"model_type": "bert", "id2label": {"zero": "a"}}), C, E,
         "id2label", 'key "zero"')
    case("config_not_json.json", b"model_type = bert\n", C, E, "invalid JSON")
    case("config_unsupported_model.json", j({"model_type": "gpt2"}), C, E, '"gpt2" is not supported')
    case("config_huge_vocab.json", j({"model_type": "bert", "vocab_size": 1 << 40}), C, E, "vocab_size", "2^31")
    case("config_non_utf8.json", b'{"model_type": "bert", "x": "\xff"}', C, E, "not valid UTF-8")
    case("config_nesting_bomb.json", b'{"x":' + b"[" * 100000 + b"]" * 100000 + b"}", C, E, "nested deeper")
    case("config_number_overflow.json", b'{"model_type": "bert", "hidden_size": 7E952712531}', C, E,
         "invalid JSON", "number overflow")
    case("config_null_pad.json", j({"model_type": "roberta", "pad_token_id": None}), C, E, "pad_token_id")
    case("config_indivisible_heads.json", j({"model_type": "bert", "hidden_size": 100}), C, E, "divisible")

    K, F = "checkpoint", "FormatError"
    shard = st({"a": t("F32", [1], 0, 4)}, b"\0" * 4)
    case("dir_index_path_traversal", {"model.safetensors.index.json": j({"weight_map": {"a": "../secret"}})}, K, F,
         "not a plain file name")
    case("dir_index_missing_shard", {"model.safetensors.index.json": j({"weight_map": {"a": "s1.safetensors"}})},
         K, F, "s1.safetensors", "cannot open")
    case("dir_index_wrong_shard", {"model.safetensors.index.json": j({"weight_map": {"b": "s1.safetensors"}}),
                                   "s1.safetensors": shard}, K, F, "b is not in s1.safetensors")
    case("dir_no_weights", {"config.json": j({"model_type": "bert"})}, K, F, "no weights found")
    case("dir_bad_weights", {"model.safetensors": b"\0" * 7}, K, F, "HeaderTooSmall")


def valid_zip64():
    """tiny.bin's entries rewritten with ZIP64 extra fields in the central directory."""
    import zipfile
    with zipfile.ZipFile(TINY) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with open(os.path.join(OUT, "valid_zip64.bin"), "wb") as f:
        f.write(zip_image(entries, zip64_extra=True))


if __name__ == "__main__":
    OUT = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    safetensors_cases()
    torch_cases()
    config_cases()
    valid_zip64()
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
    print("%d hostile cases in %s" % (len(cases), OUT), file=sys.stderr)
