// Byte <-> character map of GPT-2 and the Oniguruma split; see byte_level.h.
#include "tokenizer/byte_level.h"

#include <oniguruma.h>

#include <cstring>
#include <mutex>

#include "bertfit/error.h"
#include "tokenizer/tokenizer_impl.h"

namespace bertfit::tok {
namespace {

// The pattern of tokenizers/src/pre_tokenizers/byte_level.rs (GPT-2's encoder.py), verbatim.
const char kGpt2Pattern[] = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteTables {
  char32_t to_char[256];
  int from_char[324];  // characters used are < U+0144
  ByteTables() {
    // bytes_to_unicode(): printable bytes map to themselves, the 68 others to U+0100 + n in byte order.
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_char[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(0x100 + n++);
    }
    for (int& f : from_char) f = -1;
    for (int b = 0; b < 256; ++b) from_char[to_char[b]] = b;
  }
};
const ByteTables& tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) {
  return tables().to_char[b];
}
int char_to_byte(char32_t c) {
  return c < 324 ? tables().from_char[c] : -1;
}

ByteLevelRegex::ByteLevelRegex() {
  static std::once_flag init;
  std::call_once(init, [] {
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
  OnigRegex reg = nullptr;
  OnigErrorInfo info;
  const auto* p = reinterpret_cast<const OnigUChar*>(kGpt2Pattern);
  const int r = onig_new(&reg, p, p + std::strlen(kGpt2Pattern), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                         ONIG_SYNTAX_DEFAULT, &info);
  if (r != ONIG_NORMAL) {
    OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(msg, r, &info);
    throw Error(std::string("Oniguruma rejected the GPT-2 pattern: ") + reinterpret_cast<char*>(msg));
  }
  regex_ = reg;
}

ByteLevelRegex::~ByteLevelRegex() {
  if (regex_) onig_free(static_cast<OnigRegex>(regex_));
}

void ByteLevelRegex::split(const uint8_t* text, size_t n, std::vector<std::pair<size_t, size_t>>& out) const {
  // One region per thread: onig_search writes match positions into it; the compiled regex is read-only.
  thread_local struct Region {
    OnigRegion* r = onig_region_new();
    ~Region() { onig_region_free(r, 1); }
  } region;
  const auto* begin = reinterpret_cast<const OnigUChar*>(text);
  const OnigUChar* end = begin + n;
  size_t pos = 0, last = 0;
  while (pos < n) {
    const int at =
        onig_search(static_cast<OnigRegex>(regex_), begin, end, begin + pos, end, region.r, ONIG_OPTION_NONE);
    if (at < 0) break;  // ONIG_MISMATCH (or an error: the rest stays one piece)
    const size_t ms = static_cast<size_t>(region.r->beg[0]), me = static_cast<size_t>(region.r->end[0]);
    if (ms > last) out.emplace_back(last, ms);
    if (me == ms) {  // cannot happen with this pattern; guard against an endless loop anyway
      ++pos;
      continue;
    }
    out.emplace_back(ms, me);
    last = pos = me;
  }
  if (last < n) out.emplace_back(last, n);
}

}  // namespace bertfit::tok
