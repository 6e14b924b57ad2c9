// Helpers shared by the tokenizer tests: gzip'd golden files, the oracle's data directory, and the
// code-point scan text (the same as tools/oracle/make_goldens.js scan_text()).
#pragma once

#include <zlib.h>

#include <sys/stat.h>
#include <cstdio>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"
#include "tokenizer/unicode.h"

namespace bertfit::test {

inline std::vector<std::string> read_gz_lines(const std::string& path) {
  std::vector<std::string> lines;
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) return lines;
  std::string data;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.append(buf, static_cast<size_t>(n));
  gzclose(f);
  size_t pos = 0;
  while (pos < data.size()) {
    size_t e = data.find('\n', pos);
    if (e == std::string::npos) e = data.size();
    lines.push_back(data.substr(pos, e - pos));
    pos = e + 1;
  }
  return lines;
}

inline bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// The real vocabularies are fetched and converted by scripts/fetch-oracle-data.sh (never committed).
inline std::string oracle_data(const std::string& name) {
  return std::string(BERTFIT_SOURCE_DIR) + "/tools/oracle/data/" + name;
}
inline std::string fixtures(const std::string& name) {
  return std::string(BERTFIT_FIXTURES) + "/tokenizer/" + name;
}

// Code points [256k, 256k + 256), surrogates skipped, each as "a{c}b {c}1 ".
inline std::string scan_text(uint32_t k, const std::vector<bool>& excluded) {
  std::string s;
  for (char32_t c = k * 256; c < k * 256 + 256; ++c) {
    if ((c >= 0xD800 && c <= 0xDFFF) || excluded[c]) continue;
    s += 'a';
    tok::append_utf8(c, s);
    s += "b ";
    tok::append_utf8(c, s);
    s += "1 ";
  }
  return s;
}

// The row JSON text exactly as JSON.stringify writes it in make_goldens.js.
inline std::string row_json(const Encoding& e) {
  std::string s = "{\"ids\":[";
  auto list = [&](auto begin, auto end, auto f) {
    for (auto it = begin; it != end; ++it) {
      if (it != begin) s += ',';
      f(*it);
    }
  };
  list(e.ids.begin(), e.ids.end(), [&](int32_t v) { s += std::to_string(v); });
  s += "],\"types\":[";
  list(e.type_ids.begin(), e.type_ids.end(), [&](int32_t v) { s += std::to_string(v); });
  s += "],\"offsets\":[";
  list(e.offsets.begin(), e.offsets.end(), [&](const std::pair<uint32_t, uint32_t>& o) {
    s += std::to_string(o.first) + "," + std::to_string(o.second);
  });
  s += "],\"words\":[";
  list(e.word_ids.begin(), e.word_ids.end(), [&](int32_t v) { s += std::to_string(v); });
  s += "],\"special\":[";
  list(e.special_tokens_mask.begin(), e.special_tokens_mask.end(),
       [&](uint8_t v) { s += std::to_string(v); });
  s += "]}";
  return s;
}

}  // namespace bertfit::test
