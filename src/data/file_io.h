// Whole-file input and crash-safe output for the data area.
//
// Input: a read-only memory map (no copy, pages loaded as the parser walks them, so a 100 MB file costs no
// 100 MB heap buffer); an empty file maps to an empty view. Output: every file is written under a temporary
// name in the same directory, fsync'ed, then renamed over the target, and the directory is fsync'ed, so a
// reader (or a crash) never sees a half-written file.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/atomic_file.h"  // write_file_atomic: every file is written through it

namespace bertfit::data {

class MappedFile {
 public:
  // Throws FormatError naming the path when the file cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::string_view view() const { return {static_cast<const char*>(data_), size_}; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Reads a whole file into a string (for small files and pipes). Throws FormatError naming the path.
std::string read_file(const std::string& path);

}  // namespace bertfit::data
