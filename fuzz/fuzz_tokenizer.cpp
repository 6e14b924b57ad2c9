// libFuzzer: raw bytes (any UTF-8 validity) into both tokenizer families, through every entry point the
// library offers: single texts, pairs, truncation (head / tail / head+tail, pairs) and chunking. The
// tokenizers are the committed trained fixtures (a cased WordPiece and a byte-level BPE), so the target
// needs no fetched data. Invariants checked: no crash, consistent lengths, offsets inside the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "bertfit/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

std::string fixture_dir(const char* name) {
  std::string here = __FILE__;
  return here.substr(0, here.rfind('/')) + "/../tests/fixtures/tokenizer/" + name;
}

void check(const bertfit::Encoding& e, size_t max_chars) {
  const size_t n = e.ids.size();
  if (e.tokens.size() != n || e.offsets.size() != n || e.type_ids.size() != n || e.word_ids.size() != n ||
      e.attention_mask.size() != n || e.special_tokens_mask.size() != n)
    std::abort();
  for (const auto& [s, t] : e.offsets)
    if (s > t || t > max_chars) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bertfit::Tokenizer bert = bertfit::Tokenizer::from_directory(fixture_dir("bert-cased"));
  static const bertfit::Tokenizer bpe = bertfit::Tokenizer::from_directory(fixture_dir("bpe-trained"));
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t chars = bertfit::tok::decode_utf8_lossy(text).size();
  for (const bertfit::Tokenizer* t : {&bert, &bpe}) {
    switch (mode % 5) {
      case 0:
        check(t->encode(text, (mode & 8) != 0), chars);
        break;
      case 1: {
        const size_t cut = text.size() / 2;
        check(t->encode_pair(text.substr(0, cut), text.substr(cut)), chars);
        check(bertfit::encode_pair_truncated(*t, text.substr(0, cut), text.substr(cut), 4 + mode / 8), chars);
        break;
      }
      case 2:
        check(bertfit::encode_truncated(*t, text, 3 + mode / 16,
                                        static_cast<bertfit::Truncation>((mode / 8) % 3), mode / 32),
              chars);
        break;
      case 3:
        for (const bertfit::Encoding& e : bertfit::encode_chunks(*t, text, 3 + mode / 16, mode / 64))
          check(e, chars);
        break;
      default: {
        const std::vector<bertfit::Encoding> b = t->encode_batch({text, text}, 1);
        if (b.size() != 2 || b[0].ids != b[1].ids) std::abort();
      }
    }
  }
  return 0;
}
