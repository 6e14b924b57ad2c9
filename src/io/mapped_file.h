// Read-only memory map of a whole file, shared by every TensorRef that points into it. Tensors are handed out
// zero-copy; the map lives as long as the last owner (SafetensorsFile, TorchBinFile, Checkpoint) holding it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace bertfit::io {

class MappedFile {
 public:
  // Throws FormatError("<path>: <why>") when the file cannot be opened, is not a regular file, or mmap fails.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;  // nullptr for an empty file (mmap cannot map 0 bytes)
  size_t size_ = 0;
};

}  // namespace bertfit::io
