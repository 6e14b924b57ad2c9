// The synthetic tasks' model, shared by the fine-tuning tests (train: finetune, tricks, multitask, cross-
// validation; cli: problem types): a WordPiece vocabulary of the words w0, w1, ... plus the tasks' label
// words, and a randomly initialised tiny BERT over it saved as a masked-LM directory (as after pre-training
// from scratch, so fine-tuning adds a new classifier head). Include as "tiny_word_model.h".
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"
#include "train/model_factory.h"

namespace bertfit::test {

// The i-th filler word of the synthetic texts.
inline std::string word(int i) {
  return "w" + std::to_string(i);
}

struct WordModelShape {
  int words = 100;                                        // filler words w0 .. w(words - 1)
  std::vector<std::string> label_words{"alpha", "beta"};  // in the vocabulary after them
  int64_t max_positions = 64, hidden = 64, intermediate = 128;
  int64_t layers = 0, heads = 0;  // 0: the "tiny" preset's
};

// Writes root/tok (vocab.txt) and root/model; returns the model directory. Initialised with seed 1: every
// call with the same shape makes the same weights.
inline std::string make_word_model(const std::filesystem::path& root, const WordModelShape& shape = {}) {
  std::filesystem::create_directories(root / "tok");
  std::ofstream v(root / "tok" / "vocab.txt");
  v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < shape.words; ++i) v << word(i) << "\n";
  for (const auto& w : shape.label_words) v << w << "\n";
  v.close();
  const Tokenizer tok = Tokenizer::from_directory((root / "tok").string());
  ModelConfig c = named_config("tiny", ModelFamily::BERT, tok, shape.max_positions);
  c.hidden_size = shape.hidden;
  c.intermediate_size = shape.intermediate;
  if (shape.layers > 0) c.num_hidden_layers = shape.layers;
  if (shape.heads > 0) c.num_attention_heads = shape.heads;
  init_model_dir(c, HeadKind::MASKED_LM, tok, 1, (root / "model").string());
  return (root / "model").string();
}

}  // namespace bertfit::test
