// Strict JSON parsing helpers (see json_util.h).
#include "io/json_util.h"

#include <fstream>
#include <set>
#include <vector>

#include "bertfit/error.h"
#include "io/mapped_file.h"

namespace bertfit::io {

size_t first_invalid_utf8(const char* text, size_t n) {
  const auto* s = reinterpret_cast<const unsigned char*>(text);
  size_t i = 0;
  while (i < n) {
    const unsigned c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;  // continuation byte, 0xC0/0xC1 (overlong) or > 0xF4
    }
    if (i + len > n) return i;
    for (int k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return n;
}

namespace {
// "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ..." -> "syntax error ...".
std::string strip_prefix(const std::string& what) {
  size_t at = what.find("] ");
  std::string s = at == std::string::npos ? what : what.substr(at + 2);
  at = s.find(": ");
  return s.rfind("parse error", 0) == 0 && at != std::string::npos ? s.substr(at + 2) : s;
}
}  // namespace

nlohmann::json parse_json_strict(const char* text, size_t n, const std::string& what, int max_depth) {
  const size_t bad = first_invalid_utf8(text, n);
  if (bad != n) throw FormatError(what + ": not valid UTF-8 at byte " + std::to_string(bad));
  // One set of keys per open object; a key seen twice in the same object is an error.
  std::vector<std::set<std::string>> keys;
  auto cb = [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) -> bool {
    using E = nlohmann::json::parse_event_t;
    // Thrown from inside the parse so a "[[[[..." bomb stops before its parse stack grows with it.
    if (depth > max_depth)
      throw FormatError(what + ": JSON nested deeper than " + std::to_string(max_depth) + " levels");
    if (ev == E::object_start) {
      keys.emplace_back();
    } else if (ev == E::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (ev == E::key) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys.empty() && !keys.back().insert(k).second)
        throw FormatError(what + ": duplicate key \"" + k + "\"");
    }
    return true;
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, text + n, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const nlohmann::json::parse_error& e) {
    throw FormatError(what + ": invalid JSON at byte " + std::to_string(e.byte) + ": " +
                      strip_prefix(e.what()));
  } catch (const nlohmann::json::exception& e) {  // e.g. out_of_range 406: a number like 1e999 overflows
    throw FormatError(what + ": invalid JSON: " + strip_prefix(e.what()));
  }
  return j;
}

std::string read_small_file(const std::string& path, size_t max_bytes) {
  auto m = MappedFile::open(path);
  if (m->size() > max_bytes)
    throw FormatError(path + ": file is " + std::to_string(m->size()) + " bytes, more than the " +
                      std::to_string(max_bytes) + " allowed for this kind of file");
  return std::string(reinterpret_cast<const char*>(m->data()), m->size());
}

const char* json_type_name(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "object";
    case nlohmann::json::value_t::array:
      return "array";
    case nlohmann::json::value_t::string:
      return "string";
    case nlohmann::json::value_t::boolean:
      return "boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return "integer";
    case nlohmann::json::value_t::number_float:
      return "number";
    default:
      return "binary";
  }
}

}  // namespace bertfit::io
