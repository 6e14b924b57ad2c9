// A read-only ZIP reader over a memory map, for torch's checkpoint archives (FORMATS.md 2b): STORED entries
// only (torch never compresses), ZIP64 records, data descriptors (torch sets flag bit 3 and leaves the local
// header's sizes zero, so sizes and CRCs come from the central directory), CRC-32 checked with zlib on first
// access. Every offset and size is bounds-checked against the file; the entry table is bounded by the central
// directory's size, so a hostile count cannot make us allocate more than the file justifies.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bertfit {

namespace io {
class MappedFile;
}

struct ZipEntry {
  std::string name;
  uint16_t method = 0;        // 0 = STORED
  uint16_t flags = 0;         // general purpose bits (bit 0 = encrypted)
  uint32_t crc32 = 0;         // from the central directory
  uint64_t size = 0;          // uncompressed size
  uint64_t comp_size = 0;     // compressed size (== size for STORED)
  uint64_t local_offset = 0;  // local header offset
  uint64_t data_offset = 0;   // payload offset in the file
};

class ZipArchive {
 public:
  // Maps and indexes the archive; throws FormatError("<path>: <problem>").
  static ZipArchive open(const std::string& path);
  // Indexes an in-memory archive (fuzzer, tests); the bytes must outlive the result.
  static ZipArchive parse(const uint8_t* bytes, size_t size, const std::string& what);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(std::string_view name) const;
  // The payload of a STORED entry after checking its CRC-32. Throws FormatError naming the entry when it is
  // compressed, encrypted, or its CRC does not match.
  const uint8_t* data(const ZipEntry& e) const;
  const std::string& path() const { return path_; }
  std::shared_ptr<const io::MappedFile> mapping() const { return map_; }

 private:
  std::string path_;
  std::shared_ptr<const io::MappedFile> map_;
  const uint8_t* bytes_ = nullptr;
  size_t size_ = 0;
  std::vector<ZipEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace bertfit
