// Character tables for the tokenizers; see unicode.h for what each flag means and why Unicode 8.0 ages.
#include "tokenizer/unicode.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <memory>
#include <mutex>

namespace bertfit::tok {
namespace {

bool is_cjk(char32_t c) {
  // The ranges of tokenizers/src/normalizers/bert.rs (is_chinese_char); note 2B920–2CEAF, not Python's
  // 2B820–2CEAF.
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

const icu::Normalizer2* nfd_instance() {
  static const icu::Normalizer2* nfd = [] {
    UErrorCode status = U_ZERO_ERROR;
    const icu::Normalizer2* n = icu::Normalizer2::getNFDInstance(status);
    return U_SUCCESS(status) ? n : nullptr;
  }();
  return nfd;
}

uint8_t compute_flags(char32_t c) {
  const UChar32 u = static_cast<UChar32>(c);
  uint8_t f = 0;
  UVersionInfo age;
  u_charAge(u, age);
  // Assigned in Unicode <= 8.0 (age 0.0 means unassigned in ICU's Unicode 15: no category to test anyway).
  const bool in_v8 = age[0] > 0 && age[0] < 9;
  const int8_t type = u_charType(u);
  const bool control_type = type == U_CONTROL_CHAR || type == U_FORMAT_CHAR || type == U_PRIVATE_USE_CHAR;
  if (in_v8 && control_type && c != '\t' && c != '\n' && c != '\r') f |= CHAR_CONTROL;
  if (c == '\t' || c == '\n' || c == '\r' || u_hasBinaryProperty(u, UCHAR_WHITE_SPACE)) f |= CHAR_WHITESPACE;
  const bool punct_type = type == U_CONNECTOR_PUNCTUATION || type == U_DASH_PUNCTUATION ||
                          type == U_START_PUNCTUATION || type == U_END_PUNCTUATION ||
                          type == U_INITIAL_PUNCTUATION || type == U_FINAL_PUNCTUATION ||
                          type == U_OTHER_PUNCTUATION;
  bool punct = in_v8 && punct_type;
  if (c < 0x80 && ((c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                   (c >= 0x7B && c <= 0x7E)))
    punct = true;
  bool mn = in_v8 && type == U_NON_SPACING_MARK;
  // Characters whose general category changed after Unicode 8.0 (measured against the oracle, FORMATS 3.4):
  switch (c) {
    case 0x166D:
      punct = true;
      break;  // CANADIAN SYLLABICS CHI SIGN: Po in 8.0, now So
    case 0x111C9:
      punct = true;
      mn = false;
      break;  // SHARADA SANDHI MARK: Po in 8.0, now Mn
    case 0x1734:
      mn = true;
      break;      // HANUNOO SIGN PAMUDPOD: Mn in 8.0, now Mc
    case 0x1885:  // MONGOLIAN LETTER ALI GALI BALUDA: Lo in 8.0, now Mn
    case 0x1886:
      mn = false;
      break;  // ... THREE BALUDA: Lo in 8.0, now Mn
    case 0xA9BD:
      mn = false;
      break;  // JAVANESE CONSONANT SIGN KERET: Mc in 8.0, now Mn
    default:
      break;
  }
  if (punct) f |= CHAR_PUNCT;
  if (mn) f |= CHAR_MN;
  if (is_cjk(c)) f |= CHAR_CJK;
  const bool mark =
      type == U_NON_SPACING_MARK || type == U_COMBINING_SPACING_MARK || type == U_ENCLOSING_MARK;
  if (u_hasBinaryProperty(u, UCHAR_ALPHABETIC) || mark || type == U_DECIMAL_DIGIT_NUMBER ||
      type == U_CONNECTOR_PUNCTUATION || u_hasBinaryProperty(u, UCHAR_JOIN_CONTROL))
    f |= CHAR_WORD;
  if (c == 0x130 || u_tolower(u) != u) f |= CHAR_CASED;
  if (const icu::Normalizer2* nfd = nfd_instance()) {
    icu::UnicodeString d;
    if (nfd->getDecomposition(u, d)) f |= CHAR_DECOMP;
  }
  return f;
}

const uint8_t* flag_table() {
  static const std::unique_ptr<uint8_t[]> table = [] {
    std::unique_ptr<uint8_t[]> t(new uint8_t[kMaxCodePoint + 1]);
    for (char32_t c = 0; c <= kMaxCodePoint; ++c) {
      // Surrogates never reach the tokenizer (the decoder replaces them); planes 4-13 are unassigned.
      t[c] = (c >= 0xD800 && c <= 0xDFFF) || (c >= 0x40000 && c < 0xE0000) ? 0 : compute_flags(c);
    }
    return t;
  }();
  return table.get();
}

}  // namespace

uint8_t char_flags(char32_t c) {
  static const uint8_t* table = flag_table();
  return c <= kMaxCodePoint ? table[c] : 0;
}

void decode_utf8_lossy(std::string_view bytes, std::u32string& out) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  out.reserve(out.size() + n);
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    }
    int need;
    char32_t c;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2, c = b & 0x0F;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;  // no surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3, c = b & 0x07;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;  // <= U+10FFFF
    } else {
      out.push_back(kReplacementChar);  // a byte that never starts a character
      ++i;
      continue;
    }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < need; ++k, ++j) {
      const unsigned char lo_k = k == 0 ? lo : 0x80, hi_k = k == 0 ? hi : 0xBF;
      if (j >= n || s[j] < lo_k || s[j] > hi_k) {
        ok = false;
        break;
      }
      c = (c << 6) | (s[j] & 0x3F);
    }
    // A truncated or broken sequence: its valid prefix becomes one U+FFFD; resume at the offending byte.
    out.push_back(ok ? c : kReplacementChar);
    i = j;
  }
}

std::u32string decode_utf8_lossy(std::string_view bytes) {
  std::u32string out;
  decode_utf8_lossy(bytes, out);
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  std::u32string tmp;
  decode_utf8_lossy(bytes, tmp);
  std::string back = to_utf8(tmp);
  return back == bytes;
}

void append_utf8(char32_t c, std::string& out) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(c, out);
  return out;
}

void append_lowercase(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
  } else if (c == 0x130) {
    out.push_back(U'i');  // LATIN CAPITAL LETTER I WITH DOT ABOVE: SpecialCasing's unconditional mapping
    out.push_back(0x307);
  } else if (char_flags(c) & CHAR_CASED) {
    out.push_back(static_cast<char32_t>(u_tolower(static_cast<UChar32>(c))));
  } else {
    out.push_back(c);
  }
}

void append_nfd(char32_t c, std::u32string& out) {
  const icu::Normalizer2* nfd = nfd_instance();
  icu::UnicodeString d;
  if (!(char_flags(c) & CHAR_DECOMP) || nfd == nullptr ||
      !nfd->getDecomposition(static_cast<UChar32>(c), d)) {
    out.push_back(c);
    return;
  }
  for (int32_t i = 0; i < d.length();) {
    const UChar32 cp = d.char32At(i);
    out.push_back(static_cast<char32_t>(cp));
    i += U16_LENGTH(cp);
  }
}

}  // namespace bertfit::tok
