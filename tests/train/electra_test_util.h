// Helpers of the ELECTRA pre-training tests (electra_test.cpp, electra_learning_slow_test.cpp).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/rng.h"
#include "train/pretrain.h"

namespace bertfit::electra_test {

namespace fs = std::filesystem;

inline std::string test_dir(const std::string& name) {
  // Unique per process: other worktrees and runs execute the same test at the same time.
  const std::string d =
      std::string(BERTFIT_BINARY_DIR) + "/electra_test/" + name + "." + std::to_string(::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// As pretrain_test's corpus: each line is one topic's words in a fixed order, so a replaced word is visible
// from its context, and a masked word is determined by it.
constexpr int kTopics = 16, kLength = 8;
struct Corpus {
  std::string dir, tokenizer, text;
};
inline Corpus make_corpus(const std::string& name, int lines) {
  Corpus c;
  c.dir = test_dir(name);
  c.tokenizer = c.dir + "/tok";
  fs::create_directories(c.tokenizer);
  {
    std::ofstream v(c.tokenizer + "/vocab.txt");
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << s << "\n";
    for (int t = 0; t < kTopics; ++t)
      for (int p = 0; p < kLength; ++p) v << "t" << t << "w" << p << "\n";
  }
  c.text = c.dir + "/corpus.txt";
  std::ofstream f(c.text);
  Rng rng(5);
  for (int i = 0; i < lines; ++i) {
    const int t = static_cast<int>(rng.below(kTopics));
    for (int p = 0; p < kLength; ++p) f << (p ? " " : "") << "t" << t << "w" << p;
    f << "\n";
  }
  return c;
}

inline PretrainArgs electra_args(const Corpus& c, const std::string& out) {
  PretrainArgs a;
  a.objective = "electra";
  a.tokenizer_name = c.tokenizer;
  a.train_file = {c.text};
  a.output_dir = out;
  a.hidden_size = 64;
  a.embedding_size = 32;  // embeddings_project in both models
  a.num_hidden_layers = 2;
  a.num_attention_heads = 4;
  a.intermediate_size = 128;
  a.max_position_embeddings = 16;
  a.max_seq_length = 16;
  a.hidden_dropout_prob = 0;
  a.attention_probs_dropout_prob = 0;
  a.learning_rate = 2e-3;
  a.weight_decay = 0;
  a.per_device_train_batch_size = 32;
  a.validation_split_percentage = 10;
  a.threads = 1;
  return a;
}

}  // namespace bertfit::electra_test
