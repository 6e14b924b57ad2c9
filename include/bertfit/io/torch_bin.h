// pytorch_model.bin (torch >= 1.6 zip format) as zero-copy tensor views: ZipArchive + restricted unpickler
// (FORMATS.md 2b). The archive prefix is found, not assumed (the file's stem, or "archive" for files saved to
// a file object). data.pkl must unpickle to a dict (OrderedDict) of str -> tensor: what state_dict() gives.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bertfit/io/tensor.h"
#include "bertfit/io/zip.h"

namespace bertfit {

class TorchBinFile {
 public:
  // Throws FormatError("<path>: <problem>") for a legacy or non-zip file, a missing data.pkl or storage
  // record, a forbidden global, a CRC mismatch, a storage record whose size differs from numel * element
  // size, a non-tensor value, a duplicate key, or a big-endian archive.
  static TorchBinFile open(const std::string& path);
  static TorchBinFile parse(const uint8_t* bytes, size_t size, const std::string& what);

  // Tensors in state-dict order. Views that share storage (tied weights, .t()) point at the same bytes;
  // non-contiguous views carry strides (to_f32 honours them).
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view name) const;
  const std::string& archive_prefix() const { return prefix_; }
  std::shared_ptr<const io::MappedFile> mapping() const { return zip_.mapping(); }

 private:
  static TorchBinFile from_zip(ZipArchive zip, const std::string& what);
  ZipArchive zip_;
  std::string prefix_;
  std::vector<TensorRef> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
};

// Writes tensors as torch.save(OrderedDict) does (torch 1.13's zip layout: "<stem>/data.pkl" pickled with
// protocol 2 and only the globals the reader allows, "<stem>/data/<i>" one storage per tensor,
// "<stem>/version" = "3",
// "<stem>/byteorder" = "little"; STORED entries with payloads 64-byte aligned by an "FB" extra field; ZIP64
// records as torch writes them, ZIP64 extra fields when an entry or offset needs them). Strided views are
// written contiguous. torch.load (also with weights_only=True) reads the result. Atomic (temporary name,
// fsync, rename). Throws FormatError for a dtype torch has no storage class for, or on I/O failure.
void write_torch_bin(const std::string& path, const std::vector<TensorRef>& tensors);

}  // namespace bertfit
