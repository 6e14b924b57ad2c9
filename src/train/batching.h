// Batches: which examples go together (length-grouped, seeded per epoch, as HF's LengthGroupedSampler), and
// their assembly into padded model inputs (dynamic padding to the longest sequence of the batch).
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
// Evaluation: sorted by length (fast), every example exactly once.
std::vector<std::vector<int64_t>> plan_eval_batches(const std::vector<EncodedExample>& examples,
                                                    int batch_size);

// Owns the padded buffers of one batch.
class BatchBuilder {
 public:
  // A batch of `indices`: each example contributes max_chunks_in_batch sequences (its own chunks, then copies
  // of its first chunk marked unused in chunk_mask). Padding id `pad_id`, attention mask 0 there.
  Batch build(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
              int32_t pad_id, bool with_labels);

 private:
  std::vector<int32_t> ids_, types_, labels_;
  std::vector<uint8_t> mask_, chunk_mask_;
};

}  // namespace bertfit
