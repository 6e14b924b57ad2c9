// pytorch_model.bin reading (see include/bertfit/io/torch_bin.h).
#include "bertfit/io/torch_bin.h"

#include <cstring>

#include "bertfit/error.h"
#include "bertfit/io/pickle.h"
#include "io/mapped_file.h"

namespace bertfit {

namespace {
constexpr uint64_t kMaxPickleBytes = 64u << 20;  // data.pkl of a state dict is ~100 bytes per tensor
}

TorchBinFile TorchBinFile::open(const std::string& path) {
  return from_zip(ZipArchive::open(path), path);
}

TorchBinFile TorchBinFile::parse(const uint8_t* bytes, size_t size, const std::string& what) {
  return from_zip(ZipArchive::parse(bytes, size, what), what);
}

TorchBinFile TorchBinFile::from_zip(ZipArchive zip, const std::string& what) {
  TorchBinFile f;
  // The prefix: the folder holding data.pkl at the top level ("<prefix>/data.pkl").
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : zip.entries()) {
    const size_t slash = e.name.find('/');
    if (slash != std::string::npos && slash > 0 &&
        e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pkl) throw FormatError(what + ": two data.pkl records (" + pkl->name + ", " + e.name + ")");
      pkl = &e;
      f.prefix_ = e.name.substr(0, slash);
    }
  }
  if (!pkl) throw FormatError(what + ": no <archive>/data.pkl record: not a torch checkpoint");
  if (const ZipEntry* bo = zip.find(f.prefix_ + "/byteorder")) {
    const std::string order(reinterpret_cast<const char*>(zip.data(*bo)), bo->size);
    if (order != "little")
      throw FormatError(what + ": byteorder \"" + order + "\" is not supported (only little)");
  }
  if (pkl->size > kMaxPickleBytes)
    throw FormatError(what + ": data.pkl is " + std::to_string(pkl->size) +
                      " bytes, more than a state dict needs");
  const pickle::Pickle p = pickle::unpickle(zip.data(*pkl), pkl->size, what + ": " + pkl->name);

  const pickle::Object& root = p.root_object();
  if (root.kind != pickle::Kind::DICT)
    throw FormatError(what + ": data.pkl holds a Python " + pickle::kind_name(root.kind) +
                      ", not a state dict (a dict of tensors)");
  // Resolve each storage once: its record must exist and hold exactly numel * element size bytes.
  std::vector<const uint8_t*> storage_data(p.storages.size(), nullptr);
  std::vector<size_t> storage_bytes(p.storages.size(), 0);
  for (size_t k = 0; k + 1 < root.items.size(); k += 2) {
    const pickle::Object& key = p.at(root.items[k]);
    const pickle::Object& val = p.at(root.items[k + 1]);
    const std::string name = key.kind == pickle::Kind::STR ? p.str(key) : std::to_string(key.i);
    if (val.kind != pickle::Kind::TENSOR)
      throw FormatError(what + ": state dict entry \"" + name + "\" holds a Python " +
                        pickle::kind_name(val.kind) + ", not a tensor");
    const pickle::TensorInfo& ti = p.tensors[val.ref];
    const pickle::StorageInfo& si = p.storages[ti.storage];
    const size_t es = dtype_bits(si.dtype) / 8;
    if (!storage_data[ti.storage]) {
      const ZipEntry* rec = zip.find(f.prefix_ + "/data/" + si.key);
      if (!rec)
        throw FormatError(what + ": tensor \"" + name + "\": storage record data/" + si.key + " is missing");
      uint64_t want;
      if (__builtin_mul_overflow(static_cast<uint64_t>(si.numel), es, &want) || rec->size != want)
        throw FormatError(what + ": tensor \"" + name + "\": storage data/" + si.key + " has " +
                          std::to_string(rec->size) + " bytes, but " + std::to_string(si.numel) + " " +
                          dtype_name(si.dtype) + " elements need " + std::to_string(si.numel * es));
      storage_data[ti.storage] = zip.data(*rec);  // checks the CRC
      storage_bytes[ti.storage] = rec->size;
    }
    TensorRef t;
    t.name = name;
    t.dtype = si.dtype;
    t.shape = ti.size;
    const size_t off =
        static_cast<size_t>(ti.offset) * es;  // < numel * es, checked by the unpickler if non-empty
    t.data = storage_data[ti.storage] + (off <= storage_bytes[ti.storage] ? off : storage_bytes[ti.storage]);
    t.nbytes = off <= storage_bytes[ti.storage] ? storage_bytes[ti.storage] - off : 0;
    t.strides = ti.stride;
    if (t.is_contiguous()) t.strides.clear();
    if (!f.index_.emplace(name, f.tensors_.size()).second)
      throw FormatError(what + ": state dict has the key \"" + name + "\" twice");
    f.tensors_.push_back(std::move(t));
  }
  f.zip_ = std::move(zip);
  return f;
}

const TensorRef* TorchBinFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace bertfit
