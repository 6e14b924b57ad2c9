#!/usr/bin/python3
"""An independent reader of TensorBoard event files (events.out.tfevents.*), to test bertfit's writer.

Nothing here comes from bertfit's C++ code: the TFRecord framing is parsed with its own CRC-32C (bit-wise,
checked against the RFC 3720 test vectors by --self-test), and the Event protobuf is decoded by Google's
protobuf runtime (Debian's python3-protobuf) from a descriptor of TensorBoard's event.proto / summary.proto /
tensor.proto declared below with their field numbers, as tensorboard/compat/proto has them.

  tfevents_reader.py FILE_OR_DIR...   prints one JSON object per file: {"path", "events": [...]}; every
                                      event {"wall_time", "step", and "file_version" or "values": [{"tag",
                                      "simple_value" | "text", "plugin"}]}
  tfevents_reader.py --self-test      checks the CRC-32C against known vectors
Exit status 1, with the file and byte offset, on a bad length or data CRC, a truncated record, or bytes that
do not decode as an Event.
"""
import glob
import json
import os
import struct
import sys

# ---- CRC-32C (Castagnoli), bit by bit: deliberately not the table form bertfit uses.
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def self_test():
    # RFC 3720 (iSCSI) appendix B.4 vectors and the common "123456789" check value.
    vectors = [
        (b"123456789", 0xE3069283),
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ]
    for data, want in vectors:
        got = crc32c(data)
        if got != want:
            sys.exit("crc32c self-test failed: %r -> %08x, expected %08x" % (data[:12], got, want))
    print("crc32c self-test: ok")


# ---- The protobuf messages, declared as descriptors (no generated code, no .proto compiler needed).
def message_classes():
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="bertfit_tb_reader.proto", package="tensorboard", syntax="proto3")

    def message(name, fields, parent=None):
        m = (parent.nested_type if parent else fdp.message_type).add(name=name)
        for fname, number, ftype, label, type_name, oneof in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name
            if oneof is not None:
                f.oneof_index = oneof
        return m

    OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    dt = fdp.enum_type.add(name="DataType")
    for n, v in (("DT_INVALID", 0), ("DT_FLOAT", 1), ("DT_DOUBLE", 2), ("DT_STRING", 7)):
        dt.value.add(name=n, number=v)
    shape = message("TensorShapeProto", [
        ("dim", 2, F.TYPE_MESSAGE, REP, ".tensorboard.TensorShapeProto.Dim", None),
        ("unknown_rank", 3, F.TYPE_BOOL, OPT, None, None)])
    message("Dim", [("size", 1, F.TYPE_INT64, OPT, None, None), ("name", 2, F.TYPE_STRING, OPT, None, None)], shape)
    message("TensorProto", [
        ("dtype", 1, F.TYPE_ENUM, OPT, ".tensorboard.DataType", None),
        ("tensor_shape", 2, F.TYPE_MESSAGE, OPT, ".tensorboard.TensorShapeProto", None),
        ("version_number", 3, F.TYPE_INT32, OPT, None, None),
        ("tensor_content", 4, F.TYPE_BYTES, OPT, None, None),
        ("float_val", 5, F.TYPE_FLOAT, REP, None, None),
        ("double_val", 6, F.TYPE_DOUBLE, REP, None, None),
        ("string_val", 8, F.TYPE_BYTES, REP, None, None)])
    md = message("SummaryMetadata", [
        ("plugin_data", 1, F.TYPE_MESSAGE, OPT, ".tensorboard.SummaryMetadata.PluginData", None),
        ("display_name", 2, F.TYPE_STRING, OPT, None, None),
        ("summary_description", 3, F.TYPE_STRING, OPT, None, None)])
    message("PluginData", [("plugin_name", 1, F.TYPE_STRING, OPT, None, None),
                           ("content", 2, F.TYPE_BYTES, OPT, None, None)], md)
    summary = message("Summary", [("value", 1, F.TYPE_MESSAGE, REP, ".tensorboard.Summary.Value", None)])
    value = message("Value", [
        ("node_name", 7, F.TYPE_STRING, OPT, None, None),
        ("tag", 1, F.TYPE_STRING, OPT, None, None),
        ("metadata", 9, F.TYPE_MESSAGE, OPT, ".tensorboard.SummaryMetadata", None),
        ("simple_value", 2, F.TYPE_FLOAT, OPT, None, 0),
        ("obsolete_old_style_histogram", 3, F.TYPE_BYTES, OPT, None, 0),
        ("tensor", 8, F.TYPE_MESSAGE, OPT, ".tensorboard.TensorProto", 0)], summary)
    value.oneof_decl.add(name="value")
    event = message("Event", [
        ("wall_time", 1, F.TYPE_DOUBLE, OPT, None, None),
        ("step", 2, F.TYPE_INT64, OPT, None, None),
        ("file_version", 3, F.TYPE_STRING, OPT, None, 0),
        ("graph_def", 4, F.TYPE_BYTES, OPT, None, 0),
        ("summary", 5, F.TYPE_MESSAGE, OPT, ".tensorboard.Summary", 0),
        ("meta_graph_def", 9, F.TYPE_BYTES, OPT, None, 0)])
    event.oneof_decl.add(name="what")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("tensorboard.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def fail(path, offset, why):
    sys.stderr.write("%s: byte %d: %s\n" % (path, offset, why))
    sys.exit(1)


def read_file(path, Event):
    data = open(path, "rb").read()
    events, off = [], 0
    while off < len(data):
        if off + 12 > len(data):
            fail(path, off, "truncated record header")
        header = data[off:off + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[off + 8:off + 12])
        if masked(crc32c(header)) != length_crc:
            fail(path, off, "length CRC mismatch")
        start = off + 12
        if start + length + 4 > len(data):
            fail(path, off, "truncated record of %d bytes" % length)
        record = data[start:start + length]
        (data_crc,) = struct.unpack("<I", data[start + length:start + length + 4])
        if masked(crc32c(record)) != data_crc:
            fail(path, start, "data CRC mismatch")
        ev = Event()
        try:
            ev.ParseFromString(record)
        except Exception as e:  # the protobuf runtime's DecodeError
            fail(path, start, "not an Event: %s" % e)
        out = {"wall_time": ev.wall_time, "step": ev.step}
        what = ev.WhichOneof("what")
        if what == "file_version":
            out["file_version"] = ev.file_version
        elif what == "summary":
            values = []
            for v in ev.summary.value:
                item = {"tag": v.tag, "plugin": v.metadata.plugin_data.plugin_name}
                kind = v.WhichOneof("value")
                if kind == "simple_value":
                    item["simple_value"] = v.simple_value
                elif kind == "tensor":
                    t = v.tensor
                    item["dtype"] = t.dtype
                    item["shape"] = [d.size for d in t.tensor_shape.dim]
                    item["text"] = [s.decode("utf-8") for s in t.string_val]
                values.append(item)
            out["values"] = values
        else:
            out["other"] = what
        events.append(out)
        off = start + length + 4
    return events


def main(argv):
    if argv[1:] == ["--self-test"]:
        self_test()
        return
    if len(argv) < 2:
        sys.exit(__doc__)
    Event = message_classes()
    for arg in argv[1:]:
        paths = sorted(glob.glob(os.path.join(arg, "**", "events.out.tfevents.*"), recursive=True)) \
            if os.path.isdir(arg) else [arg]
        if not paths:
            sys.exit("%s: no events.out.tfevents.* file" % arg)
        for p in paths:
            print(json.dumps({"path": p, "events": read_file(p, Event)}))


if __name__ == "__main__":
    main(sys.argv)
