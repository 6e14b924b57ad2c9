// Batches: which examples go together (length-grouped, seeded per epoch, as HF's LengthGroupedSampler), and
// their assembly into padded model inputs (dynamic padding to the longest sequence of the batch, or to a
// fixed length as HF run_glue's pad_to_max_length).
#pragma once

#include <cstdint>
#include <vector>

#include "model/bert_model.h"
#include "train/encoded_data.h"

namespace bertfit {

// Training order of epoch `epoch`: a seeded permutation; with group_by_length, cut into mega-batches of
// 50 batches, each sorted by length (longest first) before being cut into batches, so batches hold texts of
// similar length and padding is small. A pure function of (seed, epoch): resuming recomputes it instead of
// replaying the data.
std::vector<std::vector<int64_t>> plan_train_batches(const std::vector<EncodedExample>& examples,
                                                     int batch_size, bool group_by_length, uint64_t seed,
                                                     int64_t epoch);
// The same over examples[begin, end) alone (the indices stay those of `examples`): multi-task fine-tuning
// plans each task's range on its own (train/multitask.h). The whole range gives the function above.
std::vector<std::vector<int64_t>> plan_train_batches(const std::vector<EncodedExample>& examples,
                                                     int64_t begin, int64_t end, int batch_size,
                                                     bool group_by_length, uint64_t seed, int64_t epoch);
// Evaluation: sorted by length (fast), every example exactly once.
std::vector<std::vector<int64_t>> plan_eval_batches(const std::vector<EncodedExample>& examples,
                                                    int batch_size);

// The shape a batch of `indices` is assembled in: `docs` documents of `chunks` sequences each (the most
// chunks of any of them), every sequence padded to `length` positions: the longest sequence of the batch
// (dynamic padding), or pad_to_length when it is > 0 (HF run_glue's pad_to_max_length; the chunk count stays
// dynamic). Throws ShapeError when a sequence is longer than pad_to_length.
struct BatchShape {
  int64_t docs = 0, chunks = 1, length = 1;
  int64_t rows() const { return docs * chunks; }
  int64_t positions() const { return rows() * length; }
};
BatchShape batch_shape(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
                       int64_t pad_to_length = 0);

// Tokens of a batch: `real` are those of its documents' own sequences, `computed` every position the model
// runs on (padding and the copies that fill unused chunks included).
struct BatchTokens {
  int64_t real = 0, computed = 0;
};
BatchTokens batch_tokens(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
                         int64_t pad_to_length = 0);

// Owns the padded buffers of one batch.
class BatchBuilder {
 public:
  // A batch of `indices` in batch_shape(examples, indices, pad_to_length): each example contributes `chunks`
  // sequences (its own chunks, then copies of its first chunk marked unused in chunk_mask). Padding id
  // `pad_id`, attention mask 0 there. Examples with targets (multi-label, regression) give Batch::targets.
  Batch build(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
              int32_t pad_id, bool with_labels, int64_t pad_to_length = 0);

 private:
  std::vector<int32_t> ids_, types_, labels_;
  std::vector<float> targets_;
  std::vector<uint8_t> mask_, chunk_mask_;
};

}  // namespace bertfit
