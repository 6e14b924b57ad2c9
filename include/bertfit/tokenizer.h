// Tokenizers that give exactly HuggingFace's ids (Rust `tokenizers` 0.23.2, the oracle of FORMATS.md 3):
// BERT WordPiece (BertNormalizer + BertPreTokenizer + WordPiece) and RoBERTa / GPT-2 byte-level BPE
// (ByteLevel pre-tokenizer through Oniguruma + BPE), with added / special tokens matched before the model,
// pairs, token type ids and character offsets into the original text.
//
// Offsets are HuggingFace's: Unicode code point (char) indices into the input text, [start, end). The input
// is UTF-8; invalid bytes are replaced by U+FFFD first (as Rust's String::from_utf8_lossy does) and offsets
// count the replaced text's code points.
//
// Thread safety: a Tokenizer is immutable after loading; every const method may be called from many threads.
// Errors: loading throws bertfit::FormatError naming the file (and line or JSON field); nothing here exits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bertfit {

// One sequence (or pair) as the model sees it. All vectors have the same length (the number of tokens).
struct Encoding {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;        // 0 for the first sequence, 1 for the second (BERT); RoBERTa: all 0
  std::vector<int32_t> attention_mask;  // 1 for real tokens, 0 for padding
  std::vector<uint8_t> special_tokens_mask;  // 1 for tokens the post-processor added ([CLS], </s>, pad ...)
  std::vector<std::pair<uint32_t, uint32_t>> offsets;  // char offsets into the text the token came from;
                                                       // (0,0) for specials
  std::vector<std::string> tokens;
  // For each token, the index of its pre-tokenized word within its own sequence (HF's word_ids), -1 for the
  // tokens the post-processor added. Pairs restart at 0 for the second sequence, as in HF.
  std::vector<int32_t> word_ids;
  // For each token, 0 (first text) or 1 (second text), -1 for added special tokens (HF's sequence_ids).
  std::vector<int8_t> sequence_ids;

  size_t size() const { return ids.size(); }
  // Appends `n` padding tokens (id pad_id, type 0, attention 0, special 1, offsets (0,0), word -1).
  void pad_to(size_t length, int32_t pad_id, const std::string& pad_token);
};

class TokenizerImpl;

// A loaded tokenizer. Copies share the same immutable state.
class Tokenizer {
 public:
  // dir/tokenizer.json when present, else dir/vocab.txt (WordPiece) or dir/vocab.json + dir/merges.txt
  // (byte-level BPE), configured from dir/tokenizer_config.json and dir/special_tokens_map.json (and
  // dir/added_tokens.json) as transformers' converters do.
  static Tokenizer from_directory(const std::string& dir);
  static Tokenizer from_tokenizer_json(const std::string& path);

  // add_special_tokens: wrap in [CLS] .. [SEP] / <s> .. </s> as the post-processor says.
  Encoding encode(std::string_view text, bool add_special_tokens = true) const;
  Encoding encode_pair(std::string_view a, std::string_view b, bool add_special_tokens = true) const;
  // Encodes each text independently on `threads` threads (<= 0: all cores). Same result as encode().
  std::vector<Encoding> encode_batch(const std::vector<std::string>& texts, int threads,
                                     bool add_special_tokens = true) const;

  // The tokens of one text before post-processing: no special tokens, HF's type id (0, or 1 for the second
  // text of a pair), offsets not yet trimmed. Cut these, then wrap them with post_process().
  Encoding encode_sequence(std::string_view text, bool second = false) const;
  // Adds the post-processor's special tokens around sequences from encode_sequence() and sets type ids;
  // `b` may be null. This is how truncation cuts first and wraps after. RoBERTa's offset trimming is
  // applied here (so never post-process the same tokens twice).
  Encoding post_process(Encoding a, const Encoding* b, bool add_special_tokens = true) const;
  // How many tokens post_process adds to a single sequence (pair = false) or a pair.
  int num_special_tokens(bool pair) const;

  int32_t cls_id() const;   // [CLS] / <s>
  int32_t sep_id() const;   // [SEP] / </s>
  int32_t pad_id() const;   // [PAD] / <pad>
  int32_t mask_id() const;  // [MASK] / <mask>
  int32_t unk_id() const;   // [UNK] / <unk>; -1 when the tokenizer has none
  // Number of distinct tokens, model vocabulary and added tokens together (HF get_vocab_size(true),
  // transformers' len(tokenizer)).
  int64_t vocab_size() const;
  // One more than the largest id (the embedding table needs at least this many rows).
  int64_t id_upper_bound() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // "" when the id is unknown
  bool is_bert() const;                       // WordPiece family (true) vs byte-level BPE family (false)
  std::string pad_token() const;
  std::string mask_token() const;
  // For each token of `e`, the index of the word it belongs to, -1 for specials (whole-word masking).
  std::vector<int32_t> word_ids(const Encoding& e) const;

  // Writes tokenizer.json, tokenizer_config.json, special_tokens_map.json and the vocabulary files
  // (vocab.txt, or vocab.json + merges.txt) into dir (created if needed); each file is written to a
  // temporary name, fsync'ed and renamed, so a reader never sees a half-written file.
  void save(const std::string& dir) const;

  const TokenizerImpl& impl() const { return *impl_; }
  explicit Tokenizer(std::shared_ptr<const TokenizerImpl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const TokenizerImpl> impl_;
};

// ---- Truncation and chunking (the paper's long-text strategies). Special tokens are added after cutting,
// so every result has at most max_length (chunk_length) tokens, specials included.
enum class Truncation {
  HEAD,       // keep the first max_length - specials tokens
  TAIL,       // keep the last ones
  HEAD_TAIL,  // keep the first head_length and the last (max_length - specials - head_length)
};
// head_length is used by HEAD_TAIL only (the paper: 128 + 382 for 512 positions); it is clamped to the room
// available. Throws ConfigError when max_length cannot hold the special tokens.
Encoding encode_truncated(const Tokenizer& tok, std::string_view text, int max_length, Truncation how,
                          int head_length = 128);
// Sentence pairs cut with HF's "longest_first" strategy: tokens are removed from the longer sequence first.
Encoding encode_pair_truncated(const Tokenizer& tok, std::string_view a, std::string_view b, int max_length);
// Consecutive chunks of up to chunk_length - specials content tokens each, each wrapped in special tokens,
// at most max_chunks of them (0 = all). An empty text gives one chunk holding only the special tokens.
// Throws ConfigError when chunk_length cannot hold the special tokens plus one token.
std::vector<Encoding> encode_chunks(const Tokenizer& tok, std::string_view text, int chunk_length,
                                    int max_chunks = 0);
// The same three on sequences already encoded without special tokens (tok.encode_sequence(text), and
// encode_sequence(b, true) for a pair's second text): a caller that also needs the untruncated length
// tokenizes once.
Encoding truncate_sequence(const Tokenizer& tok, Encoding sequence, int max_length, Truncation how,
                           int head_length = 128);
Encoding truncate_pair(const Tokenizer& tok, Encoding a, Encoding b, int max_length);
std::vector<Encoding> chunk_sequence(const Tokenizer& tok, const Encoding& sequence, int chunk_length,
                                     int max_chunks = 0);
// Parses "head" / "tail" / "head_tail" (also "head+tail"); throws ConfigError otherwise.
Truncation parse_truncation(std::string_view name);

// ---- Vocabulary training (pre-training from scratch). Corpus files are UTF-8 text, one document or
// sentence per line. Results are deterministic for a given corpus and options.
// Progress of vocabulary training for the caller's display (the library prints nothing): ("read", bytes read,
// bytes of all corpus files) while counting words, then ("merge", vocabulary entries, vocab_size). May be
// empty.
using TrainerProgress = std::function<void(const std::string& phase, int64_t done, int64_t total)>;

struct WordPieceTrainerOptions {
  int vocab_size = 30522;
  bool lowercase = true;  // BertNormalizer lowercase (and accent stripping, as HF's default)
  bool handle_chinese_chars = true;
  int min_frequency = 2;      // pairs seen fewer times are never merged
  int limit_alphabet = 1000;  // keep at most this many initial characters (the most frequent)
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  TrainerProgress progress;
};
// Trains a WordPiece vocabulary (BPE-style merges with the "##" continuation prefix, as HF's
// WordPieceTrainer) and writes a complete BERT tokenizer directory to out_dir (vocab.txt, tokenizer.json,
// tokenizer_config.json, special_tokens_map.json).
void train_wordpiece(const std::vector<std::string>& corpus_files, const WordPieceTrainerOptions& options,
                     const std::string& out_dir);

struct BpeTrainerOptions {
  int vocab_size = 50265;
  int min_frequency = 2;
  bool add_prefix_space = false;
  std::vector<std::string> special_tokens = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
  TrainerProgress progress;
};
// Trains a byte-level BPE (RoBERTa-style: the 256 byte symbols, then merges) and writes vocab.json,
// merges.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json to out_dir.
void train_bpe(const std::vector<std::string>& corpus_files, const BpeTrainerOptions& options,
               const std::string& out_dir);

}  // namespace bertfit
