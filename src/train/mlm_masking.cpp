#include "train/mlm_masking.h"

#include <algorithm>
#include <cmath>

#include "bertfit/error.h"
#include "core/rng.h"

namespace bertfit {

namespace {

constexpr uint8_t kContinues = 1, kStartsCjk = 2, kEndsCjk = 4, kSpecial = 8;

// Code points of a UTF-8 string; invalid or truncated sequences give U+FFFD (never CJK), so a hostile
// vocabulary entry cannot make this read out of bounds.
std::vector<uint32_t> decode_utf8(const std::string& s) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    const uint8_t b = static_cast<uint8_t>(s[i]);
    int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    uint32_t c = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      const uint8_t x = static_cast<uint8_t>(s[i + k]);
      if ((x >> 6) != 2) ok = false;
      c = (c << 6) | (x & 0x3F);
    }
    out.push_back(ok ? c : 0xFFFD);
    i += ok ? len : 1;
  }
  return out;
}

// GPT-2's bytes_to_unicode, inverted: the byte a byte-level symbol stands for (-1 if none).
int byte_of_symbol(uint32_t c) {
  if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)) return static_cast<int>(c);
  if (c < 256) return -1;
  const uint32_t n = c - 256;  // the n-th byte missing from the printable ranges, in ascending order
  if (n < 33) return static_cast<int>(n);               // 0..32
  if (n < 67) return static_cast<int>(127 + (n - 33));  // 127..160
  if (n == 67) return 173;
  return -1;
}

// Whether a byte string starts / ends with a CJK character. A token may hold part of a character (byte-level
// BPE splits rare characters); a lone lead byte counts as CJK when its range (E3..E9: U+3000..U+9FFF) is
// mostly CJK, the only information the token has.
void cjk_ends(const std::string& bytes, bool* starts, bool* ends) {
  *starts = *ends = false;
  if (bytes.empty()) return;
  const auto cps = decode_utf8(bytes);
  const uint8_t lead = static_cast<uint8_t>(bytes[0]);
  *starts = is_cjk_codepoint(cps.front()) || (cps.front() == 0xFFFD && lead >= 0xE3 && lead <= 0xE9);
  *ends = is_cjk_codepoint(cps.back());
}

uint64_t mask_key(uint64_t seed, uint64_t epoch, uint64_t example) {
  return splitmix64(seed ^ splitmix64(epoch * 0x9E3779B97F4A7C15ull + splitmix64(example ^ 0x6D6C6Dull)));
}

void check_probability(double p, const char* name) {
  if (!(p >= 0 && p <= 1))
    throw ConfigError(std::string(name) + " must be in [0, 1], got " + std::to_string(p));
}

}  // namespace

bool is_cjk_codepoint(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

MlmMasker::MlmMasker(const Tokenizer& tok, const MaskingOptions& options) : options_(options) {
  const int64_t n = tok.id_upper_bound();
  std::vector<std::string> vocab(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) vocab[i] = tok.id_to_token(static_cast<int32_t>(i));
  std::vector<int32_t> specials;
  for (int32_t id : {tok.cls_id(), tok.sep_id(), tok.pad_id(), tok.mask_id()})
    if (id >= 0) specials.push_back(id);
  mask_id_ = tok.mask_id();
  if (mask_id_ < 0) throw ConfigError("masked LM: the tokenizer has no mask token");
  init(vocab, tok.is_bert(), specials);
}

MlmMasker::MlmMasker(const std::vector<std::string>& vocab, bool wordpiece,
                     const std::vector<int32_t>& special_ids, int32_t mask_id, const MaskingOptions& options)
    : mask_id_(mask_id), options_(options) {
  init(vocab, wordpiece, special_ids);
}

void MlmMasker::init(const std::vector<std::string>& vocab, bool wordpiece,
                     const std::vector<int32_t>& special_ids) {
  check_probability(options_.mlm_probability, "mlm_probability");
  check_probability(options_.mask_replace_prob, "mask_replace_prob");
  check_probability(options_.random_replace_prob, "random_replace_prob");
  if (options_.mask_replace_prob + options_.random_replace_prob > 1 + 1e-12)
    throw ConfigError("mask_replace_prob + random_replace_prob must not exceed 1");
  if (vocab.empty()) throw ConfigError("masked LM: empty vocabulary");
  if (mask_id_ < 0 || mask_id_ >= static_cast<int32_t>(vocab.size()))
    throw ConfigError("masked LM: mask id " + std::to_string(mask_id_) + " outside the vocabulary");
  flags_.assign(vocab.size(), 0);
  for (size_t id = 0; id < vocab.size(); ++id) {
    const std::string& t = vocab[id];
    uint8_t f = 0;
    bool starts = false, ends = false;
    if (wordpiece) {
      const bool cont = t.size() > 2 && t.compare(0, 2, "##") == 0;
      if (cont) f |= kContinues;
      cjk_ends(cont ? t.substr(2) : t, &starts, &ends);
    } else {
      const auto cps = decode_utf8(t);
      // "Ġ" (U+0120) is the byte-level symbol of a space: the token begins a new word.
      if (!cps.empty() && cps.front() != 0x120) f |= kContinues;
      std::string bytes;
      for (uint32_t c : cps) {
        const int b = byte_of_symbol(c);
        if (b >= 0) bytes.push_back(static_cast<char>(b));
      }
      if (!bytes.empty() && bytes[0] == ' ') bytes.erase(0, 1);
      cjk_ends(bytes, &starts, &ends);
    }
    if (starts) f |= kStartsCjk;
    if (ends) f |= kEndsCjk;
    flags_[id] = f;
  }
  for (int32_t id : special_ids)
    if (id >= 0 && id < static_cast<int32_t>(flags_.size())) flags_[id] |= kSpecial;
  flags_[mask_id_] |= kSpecial;
}

bool MlmMasker::is_special(int32_t id) const {
  return id < 0 || id >= static_cast<int32_t>(flags_.size()) || (flags_[id] & kSpecial);
}

std::vector<int32_t> MlmMasker::words(const int32_t* ids, int64_t n, const uint8_t* attention) const {
  std::vector<int32_t> w(static_cast<size_t>(n), -1);
  int32_t cur = -1;
  bool prev_word_token = false;  // the previous position is a word token (not special / padding)
  bool prev_ends_cjk = false;
  for (int64_t i = 0; i < n; ++i) {
    if ((attention && !attention[i]) || is_special(ids[i])) {
      prev_word_token = false;
      continue;
    }
    const uint8_t f = flags_[ids[i]];
    const bool joins = prev_word_token && (f & kContinues) && !(f & kStartsCjk) && !prev_ends_cjk;
    if (!joins) ++cur;
    w[i] = cur;
    prev_word_token = true;
    prev_ends_cjk = (f & kEndsCjk) != 0;
  }
  return w;
}

int64_t MlmMasker::mask(const int32_t* ids_in, int64_t n, const uint8_t* attention, int32_t* ids_out,
                        int32_t* labels_out, uint64_t epoch, uint64_t example) const {
  Rng rng(mask_key(options_.seed, epoch, example));
  const double p = options_.mlm_probability, p_mask = options_.mask_replace_prob;
  // HF draws "random" among the tokens not replaced by the mask: P(random | not mask) = r / (1 - m).
  const double p_random_rest = p_mask < 1 ? options_.random_replace_prob / (1 - p_mask) : 0;
  const uint64_t V = flags_.size();
  std::vector<uint8_t> chosen(static_cast<size_t>(n), 0);
  if (!options_.whole_word) {
    for (int64_t i = 0; i < n; ++i)
      if (!(attention && !attention[i]) && !is_special(ids_in[i])) chosen[i] = rng.uniform() < p;
  } else {
    const std::vector<int32_t> w = words(ids_in, n, attention);
    std::vector<std::vector<int64_t>> groups;
    int64_t candidates = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (w[i] < 0) continue;
      if (static_cast<size_t>(w[i]) >= groups.size()) groups.resize(w[i] + 1);
      groups[w[i]].push_back(i);
      ++candidates;
    }
    if (candidates > 0) {
      // HF's _whole_word_mask: shuffle the words, take each that keeps the count within the target.
      for (size_t k = groups.size(); k > 1; --k) std::swap(groups[k - 1], groups[rng.below(k)]);
      const int64_t target =
          std::max<int64_t>(1, static_cast<int64_t>(std::llround(static_cast<double>(candidates) * p)));
      int64_t taken = 0;
      for (const auto& g : groups) {
        if (taken >= target) break;
        const int64_t len = static_cast<int64_t>(g.size());
        if (taken + len > target) continue;
        for (int64_t i : g) chosen[i] = 1;
        taken += len;
      }
    }
  }
  int64_t labelled = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t id = ids_in[i];
    if (!chosen[i]) {
      labels_out[i] = kMlmIgnore;
      ids_out[i] = id;
      continue;
    }
    labels_out[i] = id;
    ++labelled;
    if (rng.uniform() < p_mask)
      ids_out[i] = mask_id_;
    else if (rng.uniform() < p_random_rest)
      ids_out[i] = static_cast<int32_t>(rng.below(V));
    else
      ids_out[i] = id;
  }
  return labelled;
}

}  // namespace bertfit
