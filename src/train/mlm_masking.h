// Masked-LM masking as HuggingFace's DataCollatorForLanguageModeling (and, as an option,
// DataCollatorForWholeWordMask) does it:
//  * each non-special, non-padding token is chosen with probability mlm_probability (0.15);
//  * a chosen token becomes the mask token with probability 0.8, a uniformly random id over the vocabulary
//    with probability 0.1 (it may be the token itself, as in HF), and stays unchanged otherwise;
//  * labels hold the original id where a token was chosen and -100 everywhere else.
// Whole-word masking chooses words instead (HF's algorithm: words in random order, taken while the number of
// chosen tokens stays within round(mlm_probability * candidate tokens), at least one) and then applies the
// 80/10/10 split to each token of the chosen words. A word is a WordPiece token plus its "##" continuations;
// every CJK character is its own word; for byte-level BPE a word starts at a token beginning with "Ġ" (or at
// a CJK character, or after a special token).
//
// Masks change every epoch but are a pure function of (seed, epoch, example index): resuming a run, or
// evaluating the held-out set with a fixed epoch key, reproduces exactly the same masks without any state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"

namespace bertfit {

constexpr int32_t kMlmIgnore = -100;

struct MaskingOptions {
  double mlm_probability = 0.15;
  double mask_replace_prob = 0.8;    // of the chosen tokens: become the mask token
  double random_replace_prob = 0.1;  // of the chosen tokens: become a random id (the rest are kept)
  bool whole_word = false;
  uint64_t seed = 42;
};

class MlmMasker {
 public:
  // From a tokenizer: its special ids ([CLS] [SEP] [PAD] [MASK] / <s> </s> <pad> <mask>) are never masked
  // (the unknown token is, as in HF's run_mlm), random ids are drawn from [0, vocab_size), word boundaries
  // come from the token strings. Throws ConfigError for probabilities outside [0, 1] or a tokenizer without a
  // mask token.
  MlmMasker(const Tokenizer& tok, const MaskingOptions& options);
  // The same from a vocabulary given by hand (id -> token string; tests, and tokenizers built in memory).
  // wordpiece: "##" continuations (else byte-level BPE with "Ġ" word starts).
  MlmMasker(const std::vector<std::string>& vocab, bool wordpiece, const std::vector<int32_t>& special_ids,
            int32_t mask_id, const MaskingOptions& options);

  // Masks one sequence of n tokens: writes the model's input to ids_out and the labels to labels_out (both
  // n long; ids_out may equal ids_in). attention (optional, n long): positions with 0 are padding, never
  // masked. Returns the number of labelled positions. Deterministic in (options.seed, epoch, example).
  int64_t mask(const int32_t* ids_in, int64_t n, const uint8_t* attention, int32_t* ids_out,
               int32_t* labels_out, uint64_t epoch, uint64_t example) const;

  // The word index of each position (-1 for special and padding positions), as whole-word masking sees it.
  std::vector<int32_t> words(const int32_t* ids, int64_t n, const uint8_t* attention) const;

  bool is_special(int32_t id) const;
  int32_t mask_id() const { return mask_id_; }
  int64_t vocab_size() const { return static_cast<int64_t>(flags_.size()); }
  const MaskingOptions& options() const { return options_; }

 private:
  void init(const std::vector<std::string>& vocab, bool wordpiece, const std::vector<int32_t>& special_ids);
  // Per id: bit 0 continues the previous word, bit 1 starts with a CJK character, bit 2 ends with one,
  // bit 3 special.
  std::vector<uint8_t> flags_;
  int32_t mask_id_ = -1;
  MaskingOptions options_;
};

// The CJK ranges of BERT's _is_chinese_char (the characters BertPreTokenizer isolates).
bool is_cjk_codepoint(uint32_t c);

}  // namespace bertfit
