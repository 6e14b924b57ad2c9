// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord files, and TFRecord's
// "masked" form of it (a CRC stored next to the data it covers is rotated and offset, so that a CRC of a
// CRC does not come out trivially: tensorflow/core/lib/hash/crc32c.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace bertfit {

// Byte-wise table implementation (the files it checks are small: a few hundred bytes per training log).
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);
// ((crc >> 15) | (crc << 17)) + 0xa282ead8
uint32_t mask_crc32c(uint32_t crc);

}  // namespace bertfit
