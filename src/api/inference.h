// Inference on a loaded fine-tuned classifier for callers that bring their own texts (the C++ API, the HTTP
// service): texts encoded exactly as `bertfit predict` encodes a file's rows (encode_for: the model's
// recorded truncation, pairs, chunks), and batches of any composition run with an arena that grows to fit
// them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/batching.h"
#include "train/classifier.h"

namespace bertfit::api {

// One input: a text, or a pair when `pair` is set.
struct TextInput {
  std::string text, text_pair;
  bool pair = false;
};

// Encodes the inputs with the classifier's recorded settings, through the code path `bertfit predict` uses
// (encode_for over an in-memory data set), on `threads` threads.
std::vector<EncodedExample> encode_inputs(const Classifier& c, const std::vector<TextInput>& inputs,
                                          int threads = 1);

// The most tokens (special tokens included) one input may have before the model's truncation or chunking
// would drop some: max_seq_length, or max_chunks chunks of it for a chunked (hierarchical) model.
int64_t max_input_tokens(const Classifier& c);
// The tokens `e` had before truncation, special tokens included (compare with max_input_tokens).
int64_t input_tokens(const Classifier& c, const EncodedExample& e, bool pair);

// Positions a batch of these examples computes: rows (documents x the most chunks) x the longest sequence.
// The token budget of the service's batches is counted in these.
int64_t padded_tokens(int64_t docs, int64_t max_chunks, int64_t max_length);

// Runs batches through one classifier's model. Not thread-safe: one runner per model, used by one thread at
// a time (the API holds a lock, the service has one inference thread).
class BatchRunner {
 public:
  explicit BatchRunner(Classifier& c) : c_(c) {}
  // Runs every example as ONE batch (padded to its longest sequence, as run_evaluation's batches) and writes
  // the logits, [examples.size(), num_labels] in order, into *logits. The model's arena grows when the batch
  // needs more rows or positions than it holds (keeping the larger shape while it stays within
  // keep_positions, else reserving exactly this batch's shape).
  void run(const std::vector<EncodedExample>& examples, std::vector<float>* logits);
  int64_t num_labels() const;
  // Positions above which the arena is sized for the batch at hand instead of the union of shapes seen.
  int64_t keep_positions = 1 << 15;

 private:
  Classifier& c_;
  BatchBuilder builder_;
  std::vector<int64_t> indices_;
  int64_t reserved_rows_ = 0, reserved_length_ = 0;
};

}  // namespace bertfit::api
