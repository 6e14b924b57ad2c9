// safetensors read (mmap, zero-copy) and write (atomic), exactly as FORMATS.md 2a describes the reference
// implementation (huggingface/safetensors): every validation rule of read_metadata + Metadata::validate, and
// the writer's layout (dtype-descending then name order, header padded with spaces to 8 bytes).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bertfit/io/tensor.h"

namespace bertfit {

namespace io {
class MappedFile;
}

class SafetensorsFile {
 public:
  // Maps and validates the file. Throws FormatError("<path>: <problem> (<reference error name>)") for every
  // malformed input; never reads outside the file and allocates at most a small multiple of the header size.
  static SafetensorsFile open(const std::string& path);
  // Validates an in-memory image (used by the fuzzer and by open). what names it in messages. The bytes must
  // outlive the returned object.
  static SafetensorsFile parse(const uint8_t* bytes, size_t size, const std::string& what);

  // Tensors in file order (ascending data offsets). Their data pointers stay valid while this object (or a
  // copy of it) lives.
  const std::vector<TensorRef>& tensors() const { return tensors_; }
  const TensorRef* find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }
  size_t header_size() const { return header_size_; }  // N, the JSON length including padding
  // The mapping, so a Checkpoint can keep it alive beyond this object.
  std::shared_ptr<const io::MappedFile> mapping() const { return map_; }

 private:
  std::string path_;
  std::shared_ptr<const io::MappedFile> map_;
  std::vector<TensorRef> tensors_;
  std::map<std::string, size_t, std::less<>> index_;
  std::map<std::string, std::string> metadata_;
  size_t header_size_ = 0;
};

// Writes tensors (any dtype; strided views are gathered) with the given __metadata__ (omitted when empty).
// Atomic: writes "<path>.tmp-<pid>", fsyncs, renames over path, fsyncs the directory. Throws FormatError for
// duplicate or empty names, the reserved name "__metadata__", or I/O failure.
void write_safetensors(const std::string& path, const std::vector<TensorRef>& tensors,
                       const std::map<std::string, std::string>& metadata);

// The exact bytes write_safetensors would write (header + buffer), for tests and in-memory use.
std::vector<uint8_t> serialize_safetensors(const std::vector<TensorRef>& tensors,
                                           const std::map<std::string, std::string>& metadata);

}  // namespace bertfit
