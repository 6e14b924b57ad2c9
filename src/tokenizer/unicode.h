// Unicode helpers for the tokenizers: lossy UTF-8 decoding (as Rust's String::from_utf8_lossy), UTF-8
// encoding, and one flag byte per code point holding exactly the character classes HuggingFace's Rust
// tokenizers use (FORMATS.md 2c, 3.4):
//  - BertNormalizer / BertPreTokenizer take categories from the `unicode_categories` 0.1.1 crate, whose
//  tables
//    are Unicode 8.0. ICU (Unicode 15) gives today's categories; a code point counts as control (Cc/Cf/Co),
//    non-spacing mark (Mn) or punctuation (P*) only if u_charAge says it existed in Unicode 8.0, with
//    explicit exceptions for the 6 characters whose category changed after 8.0.
//  - whitespace is the White_Space property (Rust char::is_whitespace); CJK ranges are the Rust source's.
//  - "word" is Rust regex's Unicode \w (Alphabetic, M, Nd, Pc, Join_Control), used by single_word tokens.
// The table is built once (about 1.1 M code points, tens of milliseconds) on first use, thread-safely.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bertfit::tok {

enum CharFlag : uint8_t {
  CHAR_CONTROL = 1,     // BERT clean_text removes it (Cc/Cf/Co as of Unicode 8.0, not \t \n \r)
  CHAR_WHITESPACE = 2,  // White_Space (Rust char::is_whitespace)
  CHAR_PUNCT = 4,       // BERT punctuation: ASCII punctuation or P* as of Unicode 8.0
  CHAR_MN = 8,          // Mn as of Unicode 8.0 (stripped with accents)
  CHAR_CJK = 16,        // surrounded by spaces by handle_chinese_chars
  CHAR_WORD = 32,       // Rust regex \w
  CHAR_CASED = 64,      // has a lowercase mapping different from itself
  CHAR_DECOMP = 128,    // has a canonical decomposition (NFD changes it)
};

constexpr char32_t kMaxCodePoint = 0x10FFFF;
constexpr char32_t kReplacementChar = 0xFFFD;

// Flags of code point c (0 for c > 0x10FFFF).
uint8_t char_flags(char32_t c);

// Appends the code points of `bytes` to `out`; each maximal invalid subsequence becomes one U+FFFD
// (Unicode's "substitution of maximal subparts", what Rust and Python's errors="replace" do).
void decode_utf8_lossy(std::string_view bytes, std::u32string& out);
std::u32string decode_utf8_lossy(std::string_view bytes);
// True when `bytes` is valid UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid_utf8(std::string_view bytes);
void append_utf8(char32_t c, std::string& out);
std::string to_utf8(std::u32string_view s);
inline int utf8_length(char32_t c) {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

// Rust char::to_lowercase (full mapping, no context: Σ always → σ, İ → "i̇"). Appends to out.
void append_lowercase(char32_t c, std::u32string& out);
// Canonical decomposition of one character (NFD of the one-char string). Appends to out.
void append_nfd(char32_t c, std::u32string& out);

}  // namespace bertfit::tok
