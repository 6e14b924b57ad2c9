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
#include "tiny_word_model.h"
#include "train/finetune.h"

namespace bertfit::finetune_test {

namespace fs = std::filesystem;
using test::word;

constexpr int kWords = 100;  // the model's filler words (tiny_word_model.h's default shape)

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
    model_ = test::make_word_model(root_);  // w0..w99, alpha, beta; 64 positions, hidden 64
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
