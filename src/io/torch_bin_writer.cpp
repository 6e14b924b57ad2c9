// pytorch_model.bin writing (see write_torch_bin in include/bertfit/io/torch_bin.h). The zip layout follows
// the torch 1.13 file inspected byte by byte (FORMATS.md 2b) and the ZIP APPNOTE; the pickle is the opcode
// sequence torch emits for a state dict (FORMATS.md 2b), without the memo, which is optional.
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "bertfit/error.h"
#include "bertfit/io/torch_bin.h"
#include "core/atomic_file.h"

namespace bertfit {

namespace {

const char* storage_class(DType d) {
  switch (d) {
    case DType::F64:
      return "DoubleStorage";
    case DType::F32:
      return "FloatStorage";
    case DType::F16:
      return "HalfStorage";
    case DType::BF16:
      return "BFloat16Storage";
    case DType::I64:
      return "LongStorage";
    case DType::I32:
      return "IntStorage";
    case DType::I16:
      return "ShortStorage";
    case DType::I8:
      return "CharStorage";
    case DType::U8:
      return "ByteStorage";
    case DType::BOOL:
      return "BoolStorage";
    default:
      return nullptr;
  }
}

// Protocol-2 pickle of an OrderedDict of tensors.
class PickleWriter {
 public:
  void op(char c) { out_.push_back(static_cast<uint8_t>(c)); }
  void raw(const void* p, size_t n) {
    out_.insert(out_.end(), static_cast<const uint8_t*>(p), static_cast<const uint8_t*>(p) + n);
  }
  void global(const std::string& module, const std::string& name) {
    op('c');
    raw(module.data(), module.size());
    op('\n');
    raw(name.data(), name.size());
    op('\n');
  }
  void str(const std::string& s) {
    op('X');
    const uint32_t n = static_cast<uint32_t>(s.size());
    raw(&n, 4);
    raw(s.data(), s.size());
  }
  void integer(int64_t v) {
    if (v >= 0 && v < (int64_t{1} << 31)) {  // BININT (the reader sign-extends i32; keep it non-negative)
      op('J');
      const int32_t x = static_cast<int32_t>(v);
      raw(&x, 4);
    } else {  // LONG1 with 8 bytes, two's complement little-endian
      op('\x8a');
      op('\x08');
      raw(&v, 8);
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    op('(');
    for (int64_t x : v) integer(x);
    op('t');
  }
  void empty_ordered_dict() {
    global("collections", "OrderedDict");
    op(')');
    op('R');
  }
  std::vector<uint8_t> out_;
};

struct ZipEntryOut {
  std::string name;
  const uint8_t* data;
  uint64_t size;
  uint32_t crc;
  uint64_t offset;  // of the local header
};

void put16(std::vector<uint8_t>& b, uint16_t v) {
  b.insert(b.end(), {uint8_t(v), uint8_t(v >> 8)});
}
void put32(std::vector<uint8_t>& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v));
  put16(b, static_cast<uint16_t>(v >> 16));
}
void put64(std::vector<uint8_t>& b, uint64_t v) {
  put32(b, static_cast<uint32_t>(v));
  put32(b, static_cast<uint32_t>(v >> 32));
}

uint32_t crc_of(const uint8_t* p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < n;) {
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n - done, 1u << 30));
    crc = crc32(crc, p + done, chunk);
    done += chunk;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace

void write_torch_bin(const std::string& path, const std::vector<TensorRef>& tensors) {
  std::string stem = path.substr(path.find_last_of('/') + 1);
  if (const size_t dot = stem.find('.'); dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);
  if (stem.empty()) stem = "archive";

  // Storage bytes: contiguous tensors are written from their own memory, strided ones gathered first.
  std::vector<std::vector<uint8_t>> gathered(tensors.size());
  std::vector<std::pair<const uint8_t*, uint64_t>> storages;
  std::set<std::string> names;
  PickleWriter pk;
  pk.op('\x80');
  pk.op('\x02');
  pk.empty_ordered_dict();
  pk.op('(');
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRef& t = tensors[i];
    const char* cls = storage_class(t.dtype);
    if (!cls)
      throw FormatError(path + ": tensor \"" + t.name + "\": dtype " + dtype_name(t.dtype) +
                        " has no torch storage");
    if (!names.insert(t.name).second) throw FormatError(path + ": duplicate tensor \"" + t.name + "\"");
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * (dtype_bits(t.dtype) / 8);
    if (t.is_contiguous()) {
      if (t.nbytes < bytes)
        throw FormatError(path + ": tensor \"" + t.name + "\" has fewer bytes than its shape needs");
      storages.push_back({t.data, bytes});
    } else {
      gathered[i] = contiguous_bytes(t);
      storages.push_back({gathered[i].data(), gathered[i].size()});
    }
    std::vector<int64_t> stride(t.shape.size(), 1);
    for (size_t k = t.shape.size(); k-- > 1;) stride[k - 1] = stride[k] * std::max<int64_t>(t.shape[k], 1);
    pk.str(t.name);
    pk.global("torch._utils", "_rebuild_tensor_v2");
    pk.op('(');
    pk.op('(');  // persistent id ('storage', class, key, 'cpu', numel)
    pk.str("storage");
    pk.global("torch", cls);
    pk.str(std::to_string(i));
    pk.str("cpu");
    pk.integer(t.numel());
    pk.op('t');
    pk.op('Q');
    pk.integer(0);  // storage offset
    pk.int_tuple(t.shape);
    pk.int_tuple(stride);
    pk.op('\x89');            // requires_grad False
    pk.empty_ordered_dict();  // backward hooks
    pk.op('t');
    pk.op('R');
  }
  pk.op('u');
  pk.op('.');

  static const char kVersion[] = "3\n", kOrder[] = "little";
  std::vector<ZipEntryOut> entries;
  entries.push_back({stem + "/data.pkl", pk.out_.data(), pk.out_.size(), 0, 0});
  entries.push_back({stem + "/byteorder", reinterpret_cast<const uint8_t*>(kOrder), 6, 0, 0});
  for (size_t i = 0; i < storages.size(); ++i)
    entries.push_back({stem + "/data/" + std::to_string(i), storages[i].first, storages[i].second, 0, 0});
  entries.push_back({stem + "/version", reinterpret_cast<const uint8_t*>(kVersion), 2, 0, 0});

  // Local headers (each in its own buffer) interleaved with the payloads, then the central directory.
  std::vector<std::vector<uint8_t>> headers(entries.size());
  std::vector<ByteSpan> parts;
  uint64_t pos = 0;
  constexpr uint32_t k32 = 0xFFFFFFFF;
  for (size_t i = 0; i < entries.size(); ++i) {
    ZipEntryOut& e = entries[i];
    e.crc = crc_of(e.data, e.size);
    e.offset = pos;
    const bool big = e.size >= k32;
    std::vector<uint8_t>& h = headers[i];
    put32(h, 0x04034b50);
    put16(h, big ? 45 : 20);  // version needed
    put16(h, 0);              // flags: sizes and CRC are in this header
    put16(h, 0);              // STORED
    put16(h, 0);
    put16(h, 0x21);  // time, date (1980-01-01, as torch)
    put32(h, e.crc);
    put32(h, big ? k32 : static_cast<uint32_t>(e.size));
    put32(h, big ? k32 : static_cast<uint32_t>(e.size));
    put16(h, static_cast<uint16_t>(e.name.size()));
    const size_t z64 = big ? 20 : 0;  // ZIP64 extra: id, len, size, compressed size
    const size_t base = 30 + e.name.size() + z64 + 4;
    const size_t pad = (64 - (pos + base) % 64) % 64;
    put16(h, static_cast<uint16_t>(z64 + 4 + pad));
    h.insert(h.end(), e.name.begin(), e.name.end());
    if (big) {
      put16(h, 1);
      put16(h, 16);
      put64(h, e.size);
      put64(h, e.size);
    }
    put16(h, 0x4246);  // "FB": torch's padding field, aligning the payload to 64 bytes
    put16(h, static_cast<uint16_t>(pad));
    h.insert(h.end(), pad, 'Z');
    parts.push_back({h.data(), h.size()});
    parts.push_back({e.data, e.size});
    pos += h.size() + e.size;
  }
  std::vector<uint8_t> tail;
  const uint64_t cd_offset = pos;
  for (const ZipEntryOut& e : entries) {
    const bool big_size = e.size >= k32, big_off = e.offset >= k32;
    std::vector<uint8_t> extra;
    if (big_size || big_off) {
      put16(extra, 1);
      put16(extra, static_cast<uint16_t>((big_size ? 16 : 0) + (big_off ? 8 : 0)));
      if (big_size) {
        put64(extra, e.size);
        put64(extra, e.size);
      }
      if (big_off) put64(extra, e.offset);
    }
    put32(tail, 0x02014b50);
    put16(tail, 45);  // version made by
    put16(tail, extra.empty() ? 20 : 45);
    put16(tail, 0);
    put16(tail, 0);
    put16(tail, 0);
    put16(tail, 0x21);
    put32(tail, e.crc);
    put32(tail, big_size ? k32 : static_cast<uint32_t>(e.size));
    put32(tail, big_size ? k32 : static_cast<uint32_t>(e.size));
    put16(tail, static_cast<uint16_t>(e.name.size()));
    put16(tail, static_cast<uint16_t>(extra.size()));
    put16(tail, 0);  // comment
    put16(tail, 0);  // disk
    put16(tail, 0);  // internal attributes
    put32(tail, 0);  // external attributes
    put32(tail, big_off ? k32 : static_cast<uint32_t>(e.offset));
    tail.insert(tail.end(), e.name.begin(), e.name.end());
    tail.insert(tail.end(), extra.begin(), extra.end());
  }
  const uint64_t cd_size = tail.size(), z64_offset = cd_offset + cd_size, n = entries.size();
  put32(tail, 0x06064b50);  // ZIP64 end of central directory, always written (as torch does)
  put64(tail, 44);
  put16(tail, 45);
  put16(tail, 45);
  put32(tail, 0);
  put32(tail, 0);
  put64(tail, n);
  put64(tail, n);
  put64(tail, cd_size);
  put64(tail, cd_offset);
  put32(tail, 0x07064b50);  // ZIP64 locator
  put32(tail, 0);
  put64(tail, z64_offset);
  put32(tail, 1);
  put32(tail, 0x06054b50);  // end of central directory
  put16(tail, 0);
  put16(tail, 0);
  put16(tail, static_cast<uint16_t>(std::min<uint64_t>(n, 0xFFFF)));
  put16(tail, static_cast<uint16_t>(std::min<uint64_t>(n, 0xFFFF)));
  put32(tail, static_cast<uint32_t>(std::min<uint64_t>(cd_size, k32)));
  put32(tail, static_cast<uint32_t>(std::min<uint64_t>(cd_offset, k32)));
  put16(tail, 0);
  parts.push_back({tail.data(), tail.size()});
  write_file_atomic(path, parts);
}

}  // namespace bertfit
