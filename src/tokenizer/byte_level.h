// GPT-2 / RoBERTa byte-level pre-tokenization: the GPT-2 split pattern run by Oniguruma, the same engine and
// pattern HuggingFace's tokenizers compile (tokenizers/src/pre_tokenizers/byte_level.rs), so that \s, \p{L}
// and \p{N} have exactly the oracle's meaning (FORMATS.md 3.3: Oniguruma's \s includes U+0085, not U+FEFF).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace bertfit::tok {

class ByteLevelRegex {
 public:
  ByteLevelRegex();  // throws Error if Oniguruma rejects the pattern (never for the built-in one)
  ~ByteLevelRegex();
  ByteLevelRegex(const ByteLevelRegex&) = delete;
  ByteLevelRegex& operator=(const ByteLevelRegex&) = delete;
  // Splits UTF-8 text[0, n) into consecutive pieces covering it (matches and the gaps between them, HF's
  // SplitDelimiterBehavior::Isolated); appends [begin, end) byte ranges to out.
  void split(const uint8_t* text, size_t n, std::vector<std::pair<size_t, size_t>>& out) const;

 private:
  void* regex_ = nullptr;  // OnigRegex
};

}  // namespace bertfit::tok
