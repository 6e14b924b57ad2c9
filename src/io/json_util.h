// Strict JSON parsing for untrusted files: valid UTF-8 checked up front, duplicate object keys rejected (the
// safetensors README forbids them; nlohmann would silently keep the last), nesting depth bounded, and every
// error becomes a FormatError/ConfigError that names the file and the byte position.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace bertfit::io {

// Index of the first byte that is not part of valid UTF-8 (overlongs, surrogates and > U+10FFFF are
// invalid), or n when all of it is valid.
size_t first_invalid_utf8(const char* s, size_t n);

// Parses JSON text. what names the source in messages ("model.safetensors header", "config.json").
// Throws FormatError("<what>: ...") on invalid UTF-8, syntax errors, duplicate keys or nesting > max_depth.
nlohmann::json parse_json_strict(const char* text, size_t n, const std::string& what, int max_depth = 64);

// Reads a whole small file (config.json, index.json) into a string, refusing files above max_bytes.
std::string read_small_file(const std::string& path, size_t max_bytes);

// A short human description of a JSON value's type ("string", "number", "object", ...), for messages.
const char* json_type_name(const nlohmann::json& v);

}  // namespace bertfit::io
