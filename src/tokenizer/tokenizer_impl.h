// Internal representation of a loaded tokenizer: the pipeline of tokenizer.json as plain structs
// (FORMATS.md 2c), plus the derived lookup structures. Loading (load.cpp) fills the config part and calls
// finalize(); encoding (pipeline.cpp, models.cpp, post_process.cpp) only reads it, so one instance serves
// every thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bertfit/tokenizer.h"

namespace bertfit {

namespace tok {

// string -> id with lookups by string_view (no allocation per lookup). Insert overwrites, as HashMap does.
class StrMap {
 public:
  void insert(std::string_view key, int32_t id);
  int32_t find(std::string_view key) const;  // -1 when absent
  size_t size() const { return size_; }
  size_t max_key_bytes() const { return max_key_bytes_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t offset = 0, length = 0;
    int32_t id = -1;  // -1: empty
  };
  void grow();
  std::vector<Slot> slots_;
  std::string arena_;
  size_t size_ = 0, max_key_bytes_ = 0;
};

// (left id, right id) -> (merge rank, merged id): open addressing with a multiplicative hash; the BPE
// inner loop looks pairs up constantly (std::unordered_map was a third of the BPE time).
class PairMap {
 public:
  void reserve(size_t n);
  void insert(int32_t a, int32_t b, int32_t rank, int32_t merged);  // overwrites (a later merge wins)
  // nullptr when the pair has no merge; else {rank, merged id}.
  const int32_t* find(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(a, b);
    for (size_t i = (k * 0x9E3779B97F4A7C15ull) >> shift_;; i = (i + 1) & (slots_.size() - 1)) {
      const Slot& s = slots_[i];
      if (s.key == k) return s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }
  void clear() { slots_.clear(), size_ = 0; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  struct Slot {
    uint64_t key = kEmpty;
    int32_t value[2] = {0, 0};
  };
  std::vector<Slot> slots_;
  size_t size_ = 0;
  int shift_ = 64;
};

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

struct BertNormalizerConfig {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  int strip_accents = -1;  // -1: null (follows lowercase), 0: false, 1: true
  bool lowercase = true;
  bool strips_accents() const { return strip_accents < 0 ? lowercase : strip_accents == 1; }
};

enum class PreTokenizerKind { NONE, BERT, BYTE_LEVEL };
enum class ModelKind { WORDPIECE, BPE };
enum class PostKind { NONE, TEMPLATE, BERT, ROBERTA, BYTE_LEVEL };

struct TemplateItem {
  bool is_special = false;
  std::string id;  // "A" / "B" for sequences, the special token's key otherwise
  int32_t type_id = 0;
};
struct TemplateSpecial {
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
};
struct PostProcessorConfig {
  PostKind kind = PostKind::NONE;
  std::vector<TemplateItem> single, pair;           // TEMPLATE
  std::map<std::string, TemplateSpecial> specials;  // TEMPLATE
  std::string cls_token, sep_token;                 // BERT, ROBERTA
  int32_t cls_id = -1, sep_id = -1;
  bool trim_offsets = true, add_prefix_space = false;  // ROBERTA, BYTE_LEVEL
};

// A piece of normalized text: code points and, for each, the index of the original code point it came from.
struct NormText {
  std::u32string chars;
  std::vector<uint32_t> align;
  void clear() {
    chars.clear();
    align.clear();
  }
  void push(char32_t c, uint32_t a) {
    chars.push_back(c);
    align.push_back(a);
  }
};

class ByteLevelRegex;  // byte_level.cpp

}  // namespace tok

class TokenizerImpl {
 public:
  // ---- configuration (what tokenizer.json says)
  tok::ModelKind model_kind = tok::ModelKind::WORDPIECE;
  tok::StrMap vocab;                 // model vocabulary
  std::vector<std::string> vocab_r;  // id -> token for the model vocabulary ("" for holes)
  // WordPiece
  std::string wp_unk_token = "[UNK]";
  std::string wp_prefix = "##";
  int wp_max_input_chars_per_word = 100;
  // BPE
  std::optional<std::string> bpe_unk_token;
  std::string bpe_prefix, bpe_suffix;
  bool bpe_fuse_unk = false, bpe_ignore_merges = false;
  std::vector<std::pair<std::string, std::string>> merges;
  // Pipeline
  std::optional<tok::BertNormalizerConfig> normalizer;
  tok::PreTokenizerKind pre_tokenizer = tok::PreTokenizerKind::NONE;
  bool bl_add_prefix_space = false, bl_trim_offsets = true, bl_use_regex = true;
  tok::PostProcessorConfig post;
  std::string decoder_json = "null";   // kept verbatim for save()
  std::vector<tok::AddedToken> added;  // sorted by id
  // Roles (tokenizer_config.json / special_tokens_map.json, or deduced from the added tokens)
  std::string cls_token, sep_token, pad_token, mask_token, unk_token, bos_token, eos_token;
  int64_t model_max_length = 512;
  std::string source;  // the file or directory it was loaded from, for error messages

  // ---- derived (finalize())
  void finalize();
  ~TokenizerImpl();
  TokenizerImpl() = default;
  TokenizerImpl(const TokenizerImpl&) = delete;
  TokenizerImpl& operator=(const TokenizerImpl&) = delete;

  // Encodes one sequence without special tokens; type ids = type_id, sequence ids = seq.
  void encode_sequence(std::string_view text, int32_t type_id, int8_t seq, Encoding& out) const;
  Encoding post_process(Encoding a, const Encoding* b, bool add_special_tokens) const;
  int num_special_tokens(bool pair) const;
  int32_t token_to_id(std::string_view token) const;  // added tokens first, then the model; -1 if none
  std::string id_to_token(int32_t id) const;
  int64_t vocab_size_with_added() const;
  int64_t id_upper_bound() const;
  int32_t role_id(const std::string& token) const { return token.empty() ? -1 : token_to_id(token); }

  // Normalizes orig[begin, end) and appends to out (with alignments into orig).
  void normalize(const std::u32string& orig, size_t begin, size_t end, tok::NormText& out) const;

 private:
  friend struct PipelineAccess;
  struct Matcher {  // added tokens of one kind (normalized or not), leftmost-longest
    std::vector<std::u32string> patterns;
    std::vector<int32_t> token_index;                             // index into `added`
    std::unordered_map<char32_t, std::vector<int32_t>> by_first;  // pattern indices, longest first
    bool empty() const { return patterns.empty(); }
  };
  struct Match {
    size_t begin, end;
    int32_t added_index;
  };
  void find_added(const char32_t* s, size_t n, const Matcher& m, std::vector<Match>& out) const;
  void pre_tokenize_and_model(const tok::NormText& norm, size_t begin, size_t end, int32_t type_id,
                              int8_t seq, int32_t& word, Encoding& out) const;
  void wordpiece(const tok::NormText& norm, size_t begin, size_t end, int32_t type_id, int8_t seq,
                 int32_t word, Encoding& out) const;
  void bpe_word(const uint8_t* bytes, const uint32_t* byte_align, size_t n, int32_t type_id, int8_t seq,
                int32_t word, Encoding& out) const;

  Matcher plain_matcher_, normalized_matcher_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::unordered_map<int32_t, int32_t> added_by_id_;  // id -> index into added
  tok::PairMap merge_map_;                            // (left id, right id) -> rank, new id
  std::array<int32_t, 256> byte_ids_{};  // BPE: id of each byte's GPT-2 character, -1 if not in the vocab
  std::unique_ptr<tok::ByteLevelRegex> regex_;
  int32_t unk_model_id_ = -1;
  uint64_t instance_id_ = 0;  // distinguishes tokenizers in the per-thread BPE word cache
};

// Shared by load.cpp and save.cpp.
namespace tok {
// GPT-2's bytes_to_unicode: the printable character standing for byte b.
char32_t byte_to_char(uint8_t b);
// Inverse; -1 for characters that stand for no byte.
int char_to_byte(char32_t c);
std::string read_file(const std::string& path);  // throws FormatError naming the file
}  // namespace tok

}  // namespace bertfit
