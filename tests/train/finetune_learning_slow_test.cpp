// Fine-tuning learns what its long-text options promise (issue: fine-tuning, point 7), on synthetic tasks
// with a tiny BERT initialised from scratch:
//  - the label is decided by a word near the END of a long text: tail and head+tail truncation learn it
//    (> 95% validation accuracy), head-only truncation cannot see it and stays near chance;
//  - the label is decided by a word in the MIDDLE chunk of a 3-chunk document: hierarchical encoding with
//    chunk pooling learns it.
// Labelled slow (about 5 s each in a Release build, 90-130 s each under the sanitizers, a third of that
// pass's test time): not rerun in the sanitizer build, where the same code paths run in shorter tests
// (truncation and chunking: encoded_data_test; chunk pooling forward and backward: model_grad_test;
// hierarchical fine-tuning with tricks: tricks_finetune_test; the binary: cli e2e).
#include <gtest/gtest.h>

#include "finetune_test_util.h"

namespace bertfit {
namespace {

using namespace finetune_test;

TEST_F(Finetune, TruncationDecidesWhatTheModelCanSee) {
  // 60 words, the label word third from the end; 32 positions hold 30 words.
  write_data(root_ / "end_train.tsv", 800, 60, 57, 1);
  write_data(root_ / "end_dev.tsv", 200, 60, 57, 2);
  double acc[3];
  const char* modes[3] = {"tail", "head_tail", "head"};
  for (int m = 0; m < 3; ++m) {
    FinetuneArgs a = args(std::string("trunc-") + modes[m]);
    a.train_file = (root_ / "end_train.tsv").string();
    a.validation_file = (root_ / "end_dev.tsv").string();
    a.truncation = modes[m];
    a.head_length = 10;  // head_tail: the first 10 and the last 20 words
    acc[m] = finetune(a).final_eval.metrics.accuracy;
  }
  EXPECT_GT(acc[0], 0.95) << "tail";
  EXPECT_GT(acc[1], 0.95) << "head_tail";
  // Chance is 0.5; 200 balanced-ish examples: 0.65 is > 4 standard deviations (0.035) above it.
  EXPECT_LT(acc[2], 0.65) << "head";
}

TEST_F(Finetune, HierarchicalPoolingSeesTheMiddleChunk) {
  // 90 words = 3 chunks of 30 (chunks of 32 positions); the label word is in the middle of chunk 2, which
  // no truncation of 32 positions keeps.
  write_data(root_ / "mid_train.tsv", 800, 90, 45, 3);
  write_data(root_ / "mid_dev.tsv", 200, 90, 45, 4);
  for (const char* pooling : {"mean", "attention"}) {
    FinetuneArgs a = args(std::string("chunks-") + pooling);
    a.train_file = (root_ / "mid_train.tsv").string();
    a.validation_file = (root_ / "mid_dev.tsv").string();
    a.chunk_pooling = pooling;
    a.max_chunks = 3;
    a.features = "cls";  // the paper: the last layer's [CLS] of each chunk
    a.per_device_train_batch_size = 16;
    a.num_train_epochs = 6;
    EXPECT_GT(finetune(a).final_eval.metrics.accuracy, 0.95) << pooling;
  }
}

}  // namespace
}  // namespace bertfit
