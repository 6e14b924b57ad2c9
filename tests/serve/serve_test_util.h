// A small fine-tuned classifier directory for the serving tests: a WordPiece vocabulary, a tiny BERT with a
// sequence-classification head and three labels, initialised from a seed (what `bertfit finetune` writes,
// without the training: the outputs need not be good, only computed the same way everywhere).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "bertfit/tokenizer.h"
#include "train/hf_model_dir.h"
#include "train/model_factory.h"

namespace bertfit::test {

inline std::string unique_dir(const std::string& name) {
  const std::filesystem::path p =
      std::filesystem::path(BERTFIT_BINARY_DIR) / "tests" / "serve" / (name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// max_chunks > 0 makes a hierarchical (chunked) model.
inline std::string make_classifier_dir(const std::string& root, int max_seq_length = 32, int max_chunks = 0,
                                       uint64_t seed = 3) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(root) / "tok");
  {
    std::ofstream v(fs::path(root) / "tok" / "vocab.txt");
    v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (const char* w : {"the",   "a",     "good", "bad",   "movie", "film",  "was",  "is", "not",
                          "great", "awful", "plot", "actor", "##s",   "##ing", "very", "!",  ".",
                          ",",     "and",   "but",  "i",     "liked", "hated", "it"})
      v << w << "\n";
    for (int i = 0; i < 40; ++i) v << "w" << i << "\n";
  }
  const Tokenizer tok = Tokenizer::from_directory((fs::path(root) / "tok").string());
  ModelConfig c = named_config("tiny", ModelFamily::BERT, tok, 64);
  c.hidden_size = 32;
  c.num_attention_heads = 2;
  c.intermediate_size = 64;
  c.id2label = {"negative", "neutral", "positive"};
  ClassifierSettings s;
  s.max_seq_length = max_seq_length;
  s.head_length = max_seq_length / 4;
  s.max_chunks = max_chunks;
  if (max_chunks > 0) s.head.chunk_pooling = ChunkPooling::MEAN;
  write_classifier_settings(&c, s);
  const std::string dir = (fs::path(root) / "model").string();
  init_model_dir(c, HeadKind::SEQUENCE_CLASSIFICATION, tok, seed, dir);
  return dir;
}

}  // namespace bertfit::test
