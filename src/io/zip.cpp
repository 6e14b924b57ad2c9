// ZIP reading for torch checkpoints (see include/bertfit/io/zip.h). Layout facts from the ZIP APPNOTE
// (4.3.7 local header, 4.3.12 central directory, 4.3.14-16 ZIP64 end records and locator, 4.5.3 ZIP64 extra
// field) and from a torch 1.13 file inspected byte by byte (data-descriptor flag, zero local sizes,
// "FB" padding extra, ZIP64 end records even for small files).
#include "bertfit/io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "bertfit/error.h"
#include "io/mapped_file.h"

namespace bertfit {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50,
                   kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kEocdSize = 22, kCentralSize = 46, kLocalSize = 30, kZip64EocdSize = 56, kLocatorSize = 20;

uint16_t u16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(u16(p)) | (static_cast<uint32_t>(u16(p + 2)) << 16);
}
uint64_t u64(const uint8_t* p) {
  return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
}

[[noreturn]] void fail(const std::string& what, const std::string& problem) {
  throw FormatError(what + ": " + problem);
}

// The legacy (pre-1.6) torch format is a bare pickle starting with PROTO 2, LONG1 10 and this magic number.
bool is_legacy_torch(const uint8_t* b, size_t n) {
  static const uint8_t kMagic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                   0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  return n >= sizeof kMagic && std::memcmp(b, kMagic, sizeof kMagic) == 0;
}

}  // namespace

ZipArchive ZipArchive::open(const std::string& path) {
  auto map = io::MappedFile::open(path);
  ZipArchive z = parse(map->data(), map->size(), path);
  z.map_ = std::move(map);
  return z;
}

ZipArchive ZipArchive::parse(const uint8_t* b, size_t n, const std::string& what) {
  if (is_legacy_torch(b, n))
    fail(what,
         "legacy (pre-1.6) torch checkpoint, not a zip archive; it is refused: re-save it with a current "
         "torch "
         "(torch.save(torch.load(path), path)) or convert it to safetensors");
  if (n < kEocdSize) fail(what, "file is " + std::to_string(n) + " bytes, too small to be a zip archive");
  // End of central directory: the last record, followed only by its comment (at most 65535 bytes).
  size_t eocd = std::string::npos;
  const size_t lowest = n > kEocdSize + 65535 ? n - kEocdSize - 65535 : 0;
  for (size_t i = n - kEocdSize + 1; i-- > lowest;) {
    if (u32(b + i) == kEocdSig && i + kEocdSize + u16(b + i + 20) == n) {
      eocd = i;
      break;
    }
  }
  if (eocd == std::string::npos)
    fail(what, b[0] == 'P' && b[1] == 'K'
                   ? "zip end-of-central-directory record not found (truncated archive?)"
                   : "not a zip archive (no end-of-central-directory record)");
  const uint8_t* e = b + eocd;
  if (u16(e + 4) != 0 || u16(e + 6) != 0) fail(what, "multi-disk zip archives are not supported");
  uint64_t count = u16(e + 10), cd_size = u32(e + 12), cd_offset = u32(e + 16);
  uint64_t cd_end_limit = eocd;  // the central directory must end before the end records
  if (eocd >= kLocatorSize && u32(e - kLocatorSize) == kZip64LocatorSig) {
    const uint64_t z64 = u64(e - kLocatorSize + 8);
    if (z64 > eocd - kLocatorSize || eocd - kLocatorSize - z64 < kZip64EocdSize ||
        u32(b + z64) != kZip64EocdSig)
      fail(what, "ZIP64 end-of-central-directory locator points to offset " + std::to_string(z64) +
                     ", where there is no ZIP64 end record");
    count = u64(b + z64 + 32);
    cd_size = u64(b + z64 + 40);
    cd_offset = u64(b + z64 + 48);
    cd_end_limit = z64;
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    fail(what, "end record needs ZIP64 values but the ZIP64 locator is missing");
  }
  if (cd_offset > cd_end_limit || cd_size > cd_end_limit - cd_offset)
    fail(what, "central directory [" + std::to_string(cd_offset) + ", +" + std::to_string(cd_size) +
                   ") runs past its end records (truncated or corrupt archive)");
  if (count > cd_size / kCentralSize)
    fail(what, "central directory declares " + std::to_string(count) + " entries but has room for at most " +
                   std::to_string(cd_size / kCentralSize));

  ZipArchive z;
  z.path_ = what;
  z.bytes_ = b;
  z.size_ = n;
  z.entries_.reserve(static_cast<size_t>(count));
  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - pos < kCentralSize || u32(b + pos) != kCentralSig)
      fail(what, "central directory entry " + std::to_string(i) + " at offset " + std::to_string(pos) +
                     " is truncated or has a bad signature");
    const uint8_t* c = b + pos;
    ZipEntry ze;
    ze.flags = u16(c + 8);
    ze.method = u16(c + 10);
    ze.crc32 = u32(c + 16);
    ze.comp_size = u32(c + 20);
    ze.size = u32(c + 24);
    const uint16_t name_len = u16(c + 28), extra_len = u16(c + 30), comment_len = u16(c + 32);
    ze.local_offset = u32(c + 42);
    const uint64_t rec = kCentralSize + uint64_t{name_len} + extra_len + comment_len;
    if (rec > cd_end - pos)
      fail(what, "central directory entry " + std::to_string(i) + " runs past the directory");
    ze.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    // ZIP64 extra field: the 0xFFFFFFFF fields, in the order size, compressed size, local offset.
    const uint8_t* x = c + kCentralSize + name_len;
    for (size_t k = 0; k + 4 <= extra_len;) {
      const uint16_t id = u16(x + k), len = u16(x + k + 2);
      if (k + 4 + len > extra_len) fail(what, "entry " + ze.name + ": extra field runs past its record");
      if (id == 0x0001) {
        const uint8_t* f = x + k + 4;
        size_t left = len;
        auto take = [&](uint64_t* v) {
          if (*v != 0xFFFFFFFF) return;
          if (left < 8) fail(what, "entry " + ze.name + ": ZIP64 extra field is too short");
          *v = u64(f);
          f += 8;
          left -= 8;
        };
        take(&ze.size);
        take(&ze.comp_size);
        take(&ze.local_offset);
      }
      k += 4 + len;
    }
    // Local header: only its name and extra lengths matter (torch's sizes there are zero).
    if (ze.local_offset > cd_offset || cd_offset - ze.local_offset < kLocalSize ||
        u32(b + ze.local_offset) != kLocalSig)
      fail(what, "entry " + ze.name + ": local header at offset " + std::to_string(ze.local_offset) +
                     " is missing or outside the archive");
    const uint8_t* l = b + ze.local_offset;
    const uint64_t data = ze.local_offset + kLocalSize + u16(l + 26) + u16(l + 28);
    if (data > cd_offset || ze.comp_size > cd_offset - data)
      fail(what, "entry " + ze.name + ": " + std::to_string(ze.comp_size) + " bytes at offset " +
                     std::to_string(data) + " run past the central directory (truncated archive?)");
    if (u16(l + 26) != name_len || std::memcmp(l + kLocalSize, ze.name.data(), name_len) != 0)
      fail(what, "entry " + ze.name + ": local header names a different file");
    ze.data_offset = data;
    if (!z.index_.emplace(ze.name, z.entries_.size()).second) fail(what, "duplicate entry " + ze.name);
    z.entries_.push_back(std::move(ze));
    pos += rec;
  }
  return z;
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const uint8_t* ZipArchive::data(const ZipEntry& e) const {
  if (e.flags & 1) fail(path_, "entry " + e.name + " is encrypted");
  if (e.method != 0)
    fail(path_, "entry " + e.name + " is compressed (method " + std::to_string(e.method) +
                    "); torch writes only stored entries");
  if (e.comp_size != e.size)
    fail(path_, "entry " + e.name + ": stored entry with compressed size " + std::to_string(e.comp_size) +
                    " != size " + std::to_string(e.size));
  const uint8_t* p = bytes_ + e.data_offset;
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < e.size;) {  // zlib takes uInt lengths: feed 1 GiB at a time
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(e.size - done, 1u << 30));
    crc = crc32(crc, p + done, chunk);
    done += chunk;
  }
  if (crc != e.crc32) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "CRC-32 mismatch (stored %08x, computed %08lx)", e.crc32, crc);
    fail(path_, "entry " + e.name + ": " + buf + "; the file is corrupt");
  }
  return p;
}

}  // namespace bertfit
