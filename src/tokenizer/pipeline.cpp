// The encoding pipeline of HuggingFace's TokenizerImpl::encode_single_sequence, step by step:
//   1. added tokens with normalized=false are found in the original text (leftmost-longest, with
//      single_word / lstrip / rstrip exactly as added_vocabulary.rs find_matches);
//   2. each remaining piece is normalized (BertNormalizer), then added tokens with normalized=true are found
//      in it;
//   3. the pre-tokenizer splits each remaining piece into words (BertPreTokenizer, or ByteLevel's regex);
//   4. the model turns each word into tokens (WordPiece here, BPE in models.cpp).
// Every normalized character remembers the original character it came from (no HF normalizer merges
// characters), so offsets are exact char offsets into the original text, as HF's Encoding reports them.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>

#include "bertfit/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace bertfit {
namespace tok {

void StrMap::insert(std::string_view key, int32_t id) {
  if ((size_ + 1) * 4 >= slots_.size() * 3) grow();
  const uint64_t h = std::hash<std::string_view>{}(key);
  size_t mask = slots_.size() - 1, i = h & mask;
  while (slots_[i].id >= 0) {
    Slot& s = slots_[i];
    if (s.hash == h && std::string_view(arena_.data() + s.offset, s.length) == key) {
      s.id = id;
      return;
    }
    i = (i + 1) & mask;
  }
  slots_[i] = Slot{h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id};
  arena_.append(key);
  ++size_;
  max_key_bytes_ = std::max(max_key_bytes_, key.size());
}

int32_t StrMap::find(std::string_view key) const {
  if (slots_.empty()) return -1;
  const uint64_t h = std::hash<std::string_view>{}(key);
  size_t mask = slots_.size() - 1, i = h & mask;
  while (slots_[i].id >= 0) {
    const Slot& s = slots_[i];
    if (s.hash == h && s.length == key.size() &&
        std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0)
      return s.id;
    i = (i + 1) & mask;
  }
  return -1;
}

void StrMap::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap *= 2;
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(cap, Slot{});
  shift_ = 64 - __builtin_ctzll(cap);
  size_ = 0;
  for (const Slot& s : old)
    if (s.key != kEmpty)
      insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.value[0],
             s.value[1]);
}

void PairMap::insert(int32_t a, int32_t b, int32_t rank, int32_t merged) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(std::max<size_t>(16, size_ * 2 + 2));
  const uint64_t k = key(a, b);
  size_t i = (k * 0x9E3779B97F4A7C15ull) >> shift_;
  while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & (slots_.size() - 1);
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i].key = k;
  slots_[i].value[0] = rank;
  slots_[i].value[1] = merged;
}

}  // namespace tok

using tok::char_flags;
using tok::NormText;

TokenizerImpl::~TokenizerImpl() = default;

namespace {

void push_token(Encoding& out, int32_t id, std::string value, uint32_t start, uint32_t end, int32_t word,
                int32_t type_id, int8_t seq) {
  out.ids.push_back(id);
  out.tokens.push_back(std::move(value));
  out.offsets.emplace_back(start, end);
  out.word_ids.push_back(word);
  out.type_ids.push_back(type_id);
  out.attention_mask.push_back(1);
  out.special_tokens_mask.push_back(0);
  out.sequence_ids.push_back(seq);
}

bool is_ws(char32_t c) {
  return (char_flags(c) & tok::CHAR_WHITESPACE) != 0;
}
bool is_word(char32_t c) {
  return (char_flags(c) & tok::CHAR_WORD) != 0;
}

}  // namespace

void TokenizerImpl::normalize(const std::u32string& orig, size_t begin, size_t end, NormText& out) const {
  if (!normalizer) {
    for (size_t i = begin; i < end; ++i) out.push(orig[i], static_cast<uint32_t>(i));
    return;
  }
  const tok::BertNormalizerConfig& n = *normalizer;
  const bool strip = n.strips_accents();
  std::u32string stage, stage2;
  for (size_t i = begin; i < end; ++i) {
    char32_t c = orig[i];
    const uint32_t a = static_cast<uint32_t>(i);
    uint8_t f = char_flags(c);
    // clean_text: drop NUL, U+FFFD and controls; whitespace becomes a plain space.
    if (n.clean_text) {
      if (c == 0 || c == tok::kReplacementChar || (f & tok::CHAR_CONTROL)) continue;
      if (f & tok::CHAR_WHITESPACE) c = ' ', f = char_flags(' ');
    }
    if (c < 0x80) {  // ASCII: no decomposition, no marks, lowercase is A-Z only
      out.push(n.lowercase && c >= 'A' && c <= 'Z' ? c + 32 : c, a);
      continue;
    }
    stage.clear();
    if (n.handle_chinese_chars && (f & tok::CHAR_CJK)) {
      stage.push_back(' ');
      stage.push_back(c);
      stage.push_back(' ');
    } else {
      stage.push_back(c);
    }
    if (strip) {  // NFD of each character, then drop non-spacing marks (Unicode 8.0 Mn)
      stage2.clear();
      for (char32_t s : stage) tok::append_nfd(s, stage2);
      stage.clear();
      for (char32_t s : stage2)
        if (!(char_flags(s) & tok::CHAR_MN)) stage.push_back(s);
    }
    if (n.lowercase) {
      stage2.clear();
      for (char32_t s : stage) tok::append_lowercase(s, stage2);
      stage.swap(stage2);
    }
    for (char32_t s : stage) out.push(s, a);
  }
}

void TokenizerImpl::find_added(const char32_t* s, size_t n, const Matcher& m, std::vector<Match>& out) const {
  // Leftmost-longest, non-overlapping (aho-corasick MatchKind::LeftmostLongest); a match rejected by
  // single_word is still consumed, as in find_matches, which skips it after the iterator produced it.
  size_t pos = 0, start_offset = 0;
  while (pos < n) {
    auto it = m.by_first.find(s[pos]);
    if (it == m.by_first.end()) {
      ++pos;
      continue;
    }
    int32_t found = -1;
    for (int32_t p : it->second) {  // longest first
      const std::u32string& pat = m.patterns[p];
      if (pat.size() <= n - pos && std::equal(pat.begin(), pat.end(), s + pos)) {
        found = p;
        break;
      }
    }
    if (found < 0) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + m.patterns[found].size();
    pos = stop;
    const tok::AddedToken& t = added[m.token_index[found]];
    if (t.single_word) {
      const bool start_space = start == 0 || !is_word(s[start - 1]);
      const bool stop_space = stop == n || !is_word(s[stop]);
      if (!start_space || !stop_space) continue;
    }
    if (t.lstrip) {
      size_t ns = start;
      while (ns > 0 && is_ws(s[ns - 1])) --ns;
      start = std::max(ns, start_offset);
    }
    if (t.rstrip) {
      while (stop < n && is_ws(s[stop])) ++stop;
      pos = stop;
    }
    out.push_back(Match{start, stop, m.token_index[found]});
    start_offset = stop;
  }
}

void TokenizerImpl::encode_sequence(std::string_view text, int32_t type_id, int8_t seq, Encoding& out) const {
  std::u32string orig;
  tok::decode_utf8_lossy(text, orig);
  std::vector<Match> plain, normalized;
  if (!plain_matcher_.empty()) find_added(orig.data(), orig.size(), plain_matcher_, plain);
  NormText norm;
  int32_t word = 0;
  auto text_piece = [&](size_t b, size_t e) {
    if (b >= e) return;
    norm.clear();
    normalize(orig, b, e, norm);
    normalized.clear();
    if (!normalized_matcher_.empty())
      find_added(norm.chars.data(), norm.chars.size(), normalized_matcher_, normalized);
    size_t last = 0;
    for (const Match& m : normalized) {
      pre_tokenize_and_model(norm, last, m.begin, type_id, seq, word, out);
      push_token(out, added[m.added_index].id,
                 tok::to_utf8(std::u32string_view(norm.chars).substr(m.begin, m.end - m.begin)),
                 norm.align[m.begin], norm.align[m.end - 1] + 1, word++, type_id, seq);
      last = m.end;
    }
    pre_tokenize_and_model(norm, last, norm.chars.size(), type_id, seq, word, out);
  };
  size_t last = 0;
  for (const Match& m : plain) {
    text_piece(last, m.begin);
    push_token(out, added[m.added_index].id,
               tok::to_utf8(std::u32string_view(orig).substr(m.begin, m.end - m.begin)),
               static_cast<uint32_t>(m.begin), static_cast<uint32_t>(m.end), word++, type_id, seq);
    last = m.end;
  }
  text_piece(last, orig.size());
}

void TokenizerImpl::pre_tokenize_and_model(const NormText& norm, size_t begin, size_t end, int32_t type_id,
                                           int8_t seq, int32_t& word, Encoding& out) const {
  if (begin >= end) return;
  if (pre_tokenizer == tok::PreTokenizerKind::BERT) {
    // Split on whitespace (removed), then isolate each punctuation character.
    size_t w = begin;
    for (size_t i = begin; i < end; ++i) {
      const uint8_t f = char_flags(norm.chars[i]);
      if (f & (tok::CHAR_WHITESPACE | tok::CHAR_PUNCT)) {
        if (w < i) wordpiece(norm, w, i, type_id, seq, word++, out);
        if (f & tok::CHAR_PUNCT) wordpiece(norm, i, i + 1, type_id, seq, word++, out);
        w = i + 1;
      }
    }
    if (w < end) wordpiece(norm, w, end, type_id, seq, word++, out);
    return;
  }
  // ByteLevel: optional prefix space (aligned with the piece's first character), UTF-8 bytes, regex split.
  thread_local std::vector<uint8_t> bytes;
  thread_local std::vector<uint32_t> balign;
  thread_local std::vector<std::pair<size_t, size_t>> parts;
  bytes.clear();
  balign.clear();
  if (bl_add_prefix_space && norm.chars[begin] != ' ') {
    bytes.push_back(' ');
    balign.push_back(norm.align[begin]);
  }
  std::string utf8;
  for (size_t i = begin; i < end; ++i) {
    utf8.clear();
    tok::append_utf8(norm.chars[i], utf8);
    for (char ch : utf8) {
      bytes.push_back(static_cast<uint8_t>(ch));
      balign.push_back(norm.align[i]);
    }
  }
  parts.clear();
  if (bl_use_regex) {
    regex_->split(bytes.data(), bytes.size(), parts);
  } else {
    parts.emplace_back(0, bytes.size());
  }
  // The split may reallocate nothing: bytes/balign are not touched while we walk the parts.
  for (const auto& [b, e] : parts)
    bpe_word(bytes.data() + b, balign.data() + b, e - b, type_id, seq, word++, out);
}

void TokenizerImpl::wordpiece(const NormText& norm, size_t begin, size_t end, int32_t type_id, int8_t seq,
                              int32_t word, Encoding& out) const {
  const size_t nchars = end - begin;
  const uint32_t ostart = norm.align[begin], oend = norm.align[end - 1] + 1;
  auto unk = [&] {
    if (unk_model_id_ < 0)
      throw Error("WordPiece: the unknown token '" + wp_unk_token + "' is not in the vocabulary of " +
                  source);
    push_token(out, unk_model_id_, wp_unk_token, ostart, oend, word, type_id, seq);
  };
  if (nchars > static_cast<size_t>(wp_max_input_chars_per_word)) return unk();
  thread_local std::string s;
  thread_local std::vector<uint32_t> pos;  // byte position of each char in s, plus the end
  s.clear();
  pos.clear();
  for (size_t i = begin; i < end; ++i) {
    pos.push_back(static_cast<uint32_t>(s.size()));
    tok::append_utf8(norm.chars[i], s);
  }
  pos.push_back(static_cast<uint32_t>(s.size()));
  const size_t max_bytes = vocab.max_key_bytes();
  const size_t first_token = out.ids.size();
  thread_local std::string buf;
  size_t start = 0;
  while (start < nchars) {
    buf.clear();
    if (start > 0) buf = wp_prefix;
    const size_t plen = buf.size();
    buf.append(s, pos[start], std::string::npos);
    size_t stop = nchars;
    int32_t id = -1;
    for (; stop > start; --stop) {
      const size_t len = plen + pos[stop] - pos[start];
      if (len > max_bytes) continue;  // longer than every vocabulary entry
      id = vocab.find(std::string_view(buf.data(), len));
      if (id >= 0) break;
    }
    if (id < 0) {  // one position without a piece: the whole word is unknown
      out.ids.resize(first_token);
      out.tokens.resize(first_token);
      out.offsets.resize(first_token);
      out.word_ids.resize(first_token);
      out.type_ids.resize(first_token);
      out.attention_mask.resize(first_token);
      out.special_tokens_mask.resize(first_token);
      out.sequence_ids.resize(first_token);
      return unk();
    }
    push_token(out, id, buf.substr(0, plen + pos[stop] - pos[start]), norm.align[begin + start],
               norm.align[begin + stop - 1] + 1, word, type_id, seq);
    start = stop;
  }
}

int32_t TokenizerImpl::token_to_id(std::string_view token) const {
  auto it = added_by_content_.find(std::string(token));
  if (it != added_by_content_.end()) return it->second;
  return vocab.find(token);
}

std::string TokenizerImpl::id_to_token(int32_t id) const {
  auto it = added_by_id_.find(id);
  if (it != added_by_id_.end()) return added[it->second].content;
  if (id >= 0 && static_cast<size_t>(id) < vocab_r.size()) return vocab_r[id];
  return {};
}

int64_t TokenizerImpl::vocab_size_with_added() const {
  int64_t n = static_cast<int64_t>(vocab.size());
  for (const tok::AddedToken& t : added)
    if (vocab.find(t.content) < 0) ++n;
  return n;
}

int64_t TokenizerImpl::id_upper_bound() const {
  int64_t n = static_cast<int64_t>(vocab_r.size());
  for (const tok::AddedToken& t : added) n = std::max<int64_t>(n, t.id + 1);
  return n;
}

void TokenizerImpl::finalize() {
  static std::atomic<uint64_t> next_instance{1};
  instance_id_ = next_instance++;
  if (model_kind == tok::ModelKind::WORDPIECE && pre_tokenizer != tok::PreTokenizerKind::BERT)
    throw FormatError(
        source + ": a WordPiece model needs the BertPreTokenizer (other pre-tokenizers are not supported)");
  if (model_kind == tok::ModelKind::BPE && pre_tokenizer != tok::PreTokenizerKind::BYTE_LEVEL)
    throw FormatError(
        source + ": a BPE model needs the ByteLevel pre-tokenizer (other pre-tokenizers are not supported)");
  std::sort(added.begin(), added.end(),
            [](const tok::AddedToken& a, const tok::AddedToken& b) { return a.id < b.id; });
  added_by_content_.clear();
  added_by_id_.clear();
  for (size_t i = 0; i < added.size(); ++i) {
    added_by_content_[added[i].content] = added[i].id;
    added_by_id_[added[i].id] = static_cast<int32_t>(i);
  }
  // Matchers: specials and plain added tokens alike, split by `normalized`; the normalized ones are matched
  // in their normalized form (refresh_added_tokens).
  plain_matcher_ = Matcher{};
  normalized_matcher_ = Matcher{};
  for (size_t i = 0; i < added.size(); ++i) {
    const tok::AddedToken& t = added[i];
    if (t.content.empty()) continue;
    std::u32string pat = tok::decode_utf8_lossy(t.content);
    Matcher& m = t.normalized ? normalized_matcher_ : plain_matcher_;
    if (t.normalized && normalizer) {
      NormText nt;
      normalize(pat, 0, pat.size(), nt);
      pat = nt.chars;
    }
    if (pat.empty()) continue;
    m.patterns.push_back(pat);
    m.token_index.push_back(static_cast<int32_t>(i));
  }
  for (Matcher* m : {&plain_matcher_, &normalized_matcher_}) {
    for (size_t p = 0; p < m->patterns.size(); ++p)
      m->by_first[m->patterns[p][0]].push_back(static_cast<int32_t>(p));
    for (auto& [c, list] : m->by_first) {
      // Longest first; for equal patterns aho-corasick reports the first added (lowest index).
      std::stable_sort(list.begin(), list.end(),
                       [&](int32_t a, int32_t b) { return m->patterns[a].size() > m->patterns[b].size(); });
    }
  }
  if (model_kind == tok::ModelKind::WORDPIECE) {
    unk_model_id_ = vocab.find(wp_unk_token);
  } else {
    unk_model_id_ = bpe_unk_token ? vocab.find(*bpe_unk_token) : -1;
    merge_map_.clear();
    merge_map_.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
      const auto& [a, b] = merges[r];
      const int32_t ia = vocab.find(a), ib = vocab.find(b);
      std::string merged = a + (b.size() >= bpe_prefix.size() ? b.substr(bpe_prefix.size()) : b);
      const int32_t im = vocab.find(merged);
      if (ia < 0 || ib < 0 || im < 0)
        throw FormatError(source + ": merge " + std::to_string(r + 1) + " '" + a + " " + b +
                          "' uses a token that is not in the vocabulary ('" +
                          (ia < 0   ? a
                           : ib < 0 ? b
                                    : merged) +
                          "')");
      merge_map_.insert(ia, ib, static_cast<int32_t>(r), im);  // a later duplicate wins, as HashMap::collect
    }
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      tok::append_utf8(tok::byte_to_char(static_cast<uint8_t>(b)), ch);
      byte_ids_[b] = vocab.find(ch);
    }
    if (!regex_) regex_ = std::make_unique<tok::ByteLevelRegex>();
  }
}

}  // namespace bertfit
