// Helpers of the fine-tuning tests (finetune_test.cpp, finetune_learning_slow_test.cpp): synthetic tasks
// whose label is one word at a chosen position, a tiny BERT initialised from scratch, and a fixture with a
// directory per test.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/rng.h"
#include "train/finetune.h"
#include "train/model_factory.h"

namespace bertfit::finetune_test {

namespace fs = std::filesystem;

constexpr int kWords = 100;

inline std::string word(int i) {
  return "w" + std::to_string(i);
}

// A tokenizer over w0..w99 plus the two label words, and a tiny randomly initialised BERT (as after
// pre-training from scratch: a masked-LM directory, so the classifier head is new).
inline std::string make_model(const fs::path& root) {
  fs::create_directories(root / "tok");
  std::ofstream v(root / "tok" / "vocab.txt");
  v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < kWords; ++i) v << word(i) << "\n";
  v << "alpha\nbeta\n";
  v.close();
  const Tokenizer tok = Tokenizer::from_directory((root / "tok").string());
  ModelConfig c = named_config("tiny", ModelFamily::BERT, tok, 64);
  c.hidden_size = 64;
  c.intermediate_size = 128;
  init_model_dir(c, HeadKind::MASKED_LM, tok, 1, (root / "model").string());
  return (root / "model").string();
}

// n rows of `length` random words; the label word ("alpha" = pos, "beta" = neg) sits at `position`.
inline void write_data(const fs::path& path, int n, int length, int position, uint64_t seed) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const bool pos = rng.below(2) == 1;
    f << "d" << i << "\t";
    for (int t = 0; t < length; ++t) {
      if (t) f << ' ';
      f << (t == position ? (pos ? "alpha" : "beta") : word(static_cast<int>(rng.below(kWords))));
    }
    f << "\t" << (pos ? "pos" : "neg") << "\n";
  }
}

inline std::string bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class Finetune : public ::testing::Test {
 protected:
  // A directory per test: ctest runs each test of this file as its own process, possibly at the same time.
  void SetUp() override {
    root_ = fs::path(BERTFIT_BINARY_DIR) / "test-finetune" /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    model_ = make_model(root_);
  }
  FinetuneArgs args(const std::string& name) {
    FinetuneArgs a;
    a.model_name_or_path = model_;
    a.output_dir = (root_ / name).string();
    a.overwrite_output_dir = true;
    a.id_column = "id";
    a.max_seq_length = 32;
    a.learning_rate =
        1e-3;  // a tiny model from scratch, not a pre-trained one: the paper's 2e-5 is for BERT-base
    a.per_device_train_batch_size = 32;
    a.num_train_epochs = 8;
    a.logging_steps = 1000;
    a.threads = 2;
    return a;
  }
  fs::path root_;
  std::string model_;
};

}  // namespace bertfit::finetune_test
