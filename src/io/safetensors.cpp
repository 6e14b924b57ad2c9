// safetensors reader and writer. The reader reproduces the reference implementation's checks in its order
// (FORMATS.md 2a, safetensors/src/tensor.rs read_metadata + Metadata::validate) and names the reference error
// in each message, so a report can be matched against what Python's safetensors would say. It is stricter in
// three documented places: duplicate keys, shape entries above 2^48-1 (the schema's bound) and unknown dtype
// strings are errors.
#include "bertfit/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "bertfit/error.h"
#include "core/atomic_file.h"
#include "io/json_util.h"
#include "io/mapped_file.h"

namespace bertfit {

namespace {

constexpr uint64_t kMaxHeaderSize = 100'000'000;  // MAX_HEADER_SIZE of the reference
constexpr uint64_t kMaxSchemaInt = (uint64_t{1} << 48) - 1;

[[noreturn]] void fail(const std::string& what, const std::string& problem, const char* ref) {
  throw FormatError(what + ": " + problem + " (" + ref + ")");
}

std::string quoted(const std::string& s) {
  return "\"" + s + "\"";
}

struct Entry {
  TensorRef ref;
  uint64_t begin = 0, end = 0;
};

// Reads a JSON array of non-negative integers <= 2^48-1 (shape or data_offsets).
std::vector<uint64_t> read_uint_array(const nlohmann::json& v, const std::string& what,
                                      const std::string& tensor, const char* field) {
  if (!v.is_array())
    fail(what, "tensor " + quoted(tensor) + ": " + field + " must be an array, got " + io::json_type_name(v),
         "InvalidHeaderDeserialization");
  std::vector<uint64_t> out;
  out.reserve(v.size());
  for (const auto& x : v) {
    if (!x.is_number_unsigned())
      fail(what,
           "tensor " + quoted(tensor) + ": " + field + " entries must be non-negative integers, got " +
               (x.is_number_integer() ? std::string("a negative integer")
                                      : std::string(io::json_type_name(x))),
           "InvalidHeaderDeserialization");
    const uint64_t u = x.get<uint64_t>();
    if (u > kMaxSchemaInt)
      fail(what,
           "tensor " + quoted(tensor) + ": " + field + " entry " + std::to_string(u) + " exceeds 2^48-1",
           "InvalidHeaderDeserialization");
    out.push_back(u);
  }
  return out;
}

std::string shape_text(const std::vector<uint64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto map = io::MappedFile::open(path);
  SafetensorsFile f = parse(map->data(), map->size(), path);
  f.map_ = std::move(map);
  return f;
}

SafetensorsFile SafetensorsFile::parse(const uint8_t* bytes, size_t size, const std::string& what) {
  // 1. Header length.
  if (size < 8)
    fail(what, "file is " + std::to_string(size) + " bytes, too small for the 8-byte header length",
         "HeaderTooSmall");
  uint64_t n;
  std::memcpy(&n, bytes, 8);  // little-endian host
  if (n > kMaxHeaderSize)
    fail(what, "header length " + std::to_string(n) + " exceeds the 100000000-byte limit", "HeaderTooLarge");
  if (n > size - 8)
    fail(what,
         "header length " + std::to_string(n) + " runs past the end of the " + std::to_string(size) +
             "-byte file",
         "InvalidHeaderLength");
  // 2. UTF-8 and JSON.
  const char* header = reinterpret_cast<const char*>(bytes + 8);
  const size_t bad = io::first_invalid_utf8(header, n);
  if (bad != n)
    fail(what, "header is not valid UTF-8 at header byte " + std::to_string(bad), "InvalidHeader");
  nlohmann::json j;
  try {
    j = io::parse_json_strict(header, n, what + " header");
  } catch (const FormatError& e) {
    throw FormatError(std::string(e.what()) + " (InvalidHeaderDeserialization)");
  }
  if (!j.is_object())
    fail(what, std::string("header must be a JSON object, got ") + io::json_type_name(j),
         "InvalidHeaderDeserialization");

  SafetensorsFile f;
  f.path_ = what;
  f.header_size_ = n;
  std::vector<Entry> entries;
  entries.reserve(j.size());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    const nlohmann::json& v = it.value();
    if (key == "__metadata__") {
      if (v.is_null()) continue;
      if (!v.is_object())
        fail(what, std::string("__metadata__ must be an object of strings, got ") + io::json_type_name(v),
             "InvalidHeaderDeserialization");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail(what,
               "__metadata__ value for " + quoted(m.key()) + " must be a string, got " +
                   io::json_type_name(m.value()),
               "InvalidHeaderDeserialization");
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object())
      fail(what, "tensor " + quoted(key) + ": entry must be an object, got " + io::json_type_name(v),
           "InvalidHeaderDeserialization");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!v.contains(field))
        fail(what, "tensor " + quoted(key) + ": missing field " + field, "InvalidHeaderDeserialization");
    const auto& dt = v["dtype"];
    Entry e;
    e.ref.name = key;
    if (!dt.is_string() || !parse_dtype(dt.get_ref<const std::string&>(), &e.ref.dtype))
      fail(what, "tensor " + quoted(key) + ": unknown dtype " + dt.dump(), "InvalidHeaderDeserialization");
    const auto shape = read_uint_array(v["shape"], what, key, "shape");
    const auto offsets = read_uint_array(v["data_offsets"], what, key, "data_offsets");
    if (offsets.size() != 2)
      fail(what,
           "tensor " + quoted(key) + ": data_offsets must be [BEGIN, END], got " +
               std::to_string(offsets.size()) + " entries",
           "InvalidHeaderDeserialization");
    e.ref.shape.assign(shape.begin(), shape.end());
    e.begin = offsets[0];
    e.end = offsets[1];
    entries.push_back(std::move(e));
  }

  // 3. Offsets: sorted, starting at 0, each BEGIN equal to the previous END, END >= BEGIN.
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t start = 0;
  for (const Entry& e : entries) {
    if (e.begin != start || e.end < e.begin)
      fail(what,
           "tensor " + quoted(e.ref.name) + ": data_offsets [" + std::to_string(e.begin) + ", " +
               std::to_string(e.end) + "] " +
               (e.end < e.begin ? std::string("end before begin")
                : e.begin < start
                    ? "overlap the previous tensor, which ends at " + std::to_string(start)
                    : "leave a gap after the previous tensor, which ends at " + std::to_string(start)),
           "InvalidOffset");
    // 4. Element count and byte size, overflow-checked.
    uint64_t nelem = 1;
    std::vector<uint64_t> shape(e.ref.shape.begin(), e.ref.shape.end());
    for (uint64_t d : shape)
      if (__builtin_mul_overflow(nelem, d, &nelem))
        fail(what,
             "tensor " + quoted(e.ref.name) + ": shape " + shape_text(shape) + " overflows the element count",
             "ValidationOverflow");
    uint64_t nbits;
    if (__builtin_mul_overflow(nelem, static_cast<uint64_t>(dtype_bits(e.ref.dtype)), &nbits))
      fail(what, "tensor " + quoted(e.ref.name) + ": shape " + shape_text(shape) + " overflows the byte size",
           "ValidationOverflow");
    if (nbits % 8 != 0)
      fail(what,
           "tensor " + quoted(e.ref.name) + ": " + std::to_string(nbits) +
               " bits is not a whole number of bytes",
           "MisalignedSlice");
    if (e.end - e.begin != nbits / 8)
      fail(what,
           "tensor " + quoted(e.ref.name) + ": data_offsets hold " + std::to_string(e.end - e.begin) +
               " bytes but dtype " + dtype_name(e.ref.dtype) + " with shape " + shape_text(shape) +
               " needs " + std::to_string(nbits / 8),
           "TensorInvalidInfo");
    start = e.end;
  }
  // 5. The buffer must end exactly at the end of the file (no trailing bytes, no missing bytes).
  const uint64_t buffer = size - 8 - n;
  if (start != buffer)
    fail(what,
         "tensors cover " + std::to_string(start) + " bytes but the data buffer has " +
             std::to_string(buffer) + (start < buffer ? " (trailing bytes)" : " (file truncated)"),
         "MetadataIncompleteBuffer");

  const uint8_t* data = bytes + 8 + n;
  f.tensors_.reserve(entries.size());
  for (Entry& e : entries) {
    e.ref.data = data + e.begin;
    e.ref.nbytes = static_cast<size_t>(e.end - e.begin);
    f.index_.emplace(e.ref.name, f.tensors_.size());
    f.tensors_.push_back(std::move(e.ref));
  }
  return f;
}

const TensorRef* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

struct Plan {
  std::string header;                   // padded JSON
  std::vector<const TensorRef*> order;  // layout order
  std::vector<std::vector<uint8_t>>
      gathered;  // copies of strided tensors, parallel to order (empty if direct)
  uint64_t buffer_size = 0;
};

std::string json_string(const std::string& s, const char* what) {
  try {
    return nlohmann::json(s).dump();
  } catch (const nlohmann::json::exception&) {
    throw FormatError(std::string("safetensors writer: ") + what + " is not valid UTF-8");
  }
}

Plan plan_safetensors(const std::vector<TensorRef>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  Plan p;
  std::set<std::string> names;
  for (const TensorRef& t : tensors) {
    if (t.name.empty()) throw FormatError("safetensors writer: a tensor has an empty name");
    if (t.name == "__metadata__") throw FormatError("safetensors writer: \"__metadata__\" is reserved");
    if (!names.insert(t.name).second)
      throw FormatError("safetensors writer: duplicate tensor " + quoted(t.name));
    for (int64_t d : t.shape)
      if (d < 0)
        throw FormatError("safetensors writer: tensor " + quoted(t.name) + " has a negative dimension");
    p.order.push_back(&t);
  }
  // The reference's order: dtype descending (so each tensor is aligned to its element size), then name.
  std::sort(p.order.begin(), p.order.end(), [](const TensorRef* a, const TensorRef* b) {
    return a->dtype != b->dtype ? a->dtype > b->dtype : a->name < b->name;
  });
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      h += (first ? "" : ",") + json_string(k, "a metadata key") + ":" + json_string(v, "a metadata value");
      first = false;
    }
    h += "}";
  }
  uint64_t off = 0;
  p.gathered.resize(p.order.size());
  for (size_t i = 0; i < p.order.size(); ++i) {
    const TensorRef& t = *p.order[i];
    const uint64_t bytes = (static_cast<uint64_t>(t.numel()) * dtype_bits(t.dtype) + 7) / 8;
    if (!t.strides.empty() && !t.is_contiguous()) {
      p.gathered[i] = contiguous_bytes(t);
    } else if (t.nbytes < bytes) {
      throw FormatError("safetensors writer: tensor " + quoted(t.name) + " has " + std::to_string(t.nbytes) +
                        " bytes, its shape needs " + std::to_string(bytes));
    }
    if (h.size() > 1) h += ",";
    h += json_string(t.name, "a tensor name") + ":{\"dtype\":\"" + dtype_name(t.dtype) + "\",\"shape\":[";
    for (size_t k = 0; k < t.shape.size(); ++k) h += (k ? "," : "") + std::to_string(t.shape[k]);
    h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + bytes) + "]}";
    off += bytes;
  }
  h += "}";
  h.append((8 - h.size() % 8) % 8, ' ');  // the buffer starts 8-aligned in the file
  p.header = std::move(h);
  p.buffer_size = off;
  return p;
}

}  // namespace

std::vector<uint8_t> serialize_safetensors(const std::vector<TensorRef>& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  Plan p = plan_safetensors(tensors, metadata);
  std::vector<uint8_t> out(8 + p.header.size() + p.buffer_size);
  const uint64_t n = p.header.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, p.header.data(), n);
  size_t off = 8 + n;
  for (size_t i = 0; i < p.order.size(); ++i) {
    const TensorRef& t = *p.order[i];
    const size_t bytes = (static_cast<uint64_t>(t.numel()) * dtype_bits(t.dtype) + 7) / 8;
    const uint8_t* src = p.gathered[i].empty() ? t.data : p.gathered[i].data();
    if (bytes) std::memcpy(out.data() + off, src, bytes);
    off += bytes;
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  Plan p = plan_safetensors(tensors, metadata);
  const uint64_t n = p.header.size();
  std::vector<ByteSpan> parts{{&n, 8}, {p.header.data(), p.header.size()}};
  for (size_t i = 0; i < p.order.size(); ++i) {
    const TensorRef& t = *p.order[i];
    const size_t bytes = (static_cast<uint64_t>(t.numel()) * dtype_bits(t.dtype) + 7) / 8;
    parts.push_back({p.gathered[i].empty() ? t.data : p.gathered[i].data(), bytes});
  }
  write_file_atomic(path, parts);
}

}  // namespace bertfit
