// UTF-8 checks for data files: strict validation (as Python's bytes.decode("utf-8") accepts: no overlong
// forms, no surrogates, nothing above U+10FFFF) and code-point counting for length statistics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bertfit::data {

// Offset of the first byte that starts an invalid or truncated sequence, or npos when `s` is valid UTF-8.
size_t utf8_invalid_offset(std::string_view s);

// Number of code points of a valid UTF-8 string (counts the bytes that are not continuation bytes).
int64_t utf8_length(std::string_view s);

}  // namespace bertfit::data
