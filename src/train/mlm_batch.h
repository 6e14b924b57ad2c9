// Masked-LM batches of token blocks (pre-training, MLM and ELECTRA): padding, masking per (seed, epoch,
// block), and the masked-LM head's labelled-row reservation.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "model/bert_model.h"
#include "train/encoded_data.h"
#include "train/mlm_masking.h"

namespace bertfit {

// Padded, masked model inputs of a set of blocks.
class MlmBatchBuilder {
 public:
  // Returns the batch and writes the number of labelled positions.
  Batch build(const std::vector<EncodedExample>& blocks, const std::vector<int64_t>& indices,
              const MlmMasker& masker, int32_t pad_id, uint64_t epoch, int64_t* labelled) {
    int64_t T = 1;
    for (int64_t i : indices) T = std::max(T, blocks[i].length());
    const int64_t B = static_cast<int64_t>(indices.size());
    ids_.assign(static_cast<size_t>(B * T), pad_id);
    labels_.assign(static_cast<size_t>(B * T), kMlmIgnore);
    mask_.assign(static_cast<size_t>(B * T), 0);
    int64_t n_labelled = 0;
    for (int64_t r = 0; r < B; ++r) {
      const auto& ids = blocks[indices[r]].seqs[0].ids;
      const int64_t n = static_cast<int64_t>(ids.size());
      n_labelled += masker.mask(ids.data(), n, nullptr, ids_.data() + r * T, labels_.data() + r * T, epoch,
                                static_cast<uint64_t>(indices[r]));
      std::fill(mask_.begin() + r * T, mask_.begin() + r * T + n, uint8_t{1});
    }
    *labelled = n_labelled;
    Batch b;
    b.B = B;
    b.T = T;
    b.input_ids = ids_.data();
    b.attention_mask = mask_.data();
    b.labels = labels_.data();
    return b;
  }

 private:
  std::vector<int32_t> ids_, labels_;
  std::vector<uint8_t> mask_;
};

// Grows the model's labelled-row reservation when a batch needs more (masks are drawn per batch, so the
// count is known before the forward pass; growing is rare: the first reservation covers 15% + 8 sigma).
inline void ensure_rows(BertModel& model, int64_t max_B, int64_t max_T, int64_t* reserved, int64_t needed) {
  if (needed <= *reserved) return;
  *reserved = std::min(max_B * max_T, needed + needed / 4);
  model.reserve(max_B, max_T, *reserved);
}

inline int64_t initial_rows(int64_t B, int64_t T, double p) {
  const double n = static_cast<double>(B * T);
  return std::min<int64_t>(B * T, static_cast<int64_t>(n * p + 8 * std::sqrt(n * p * (1 - p)) + 16));
}

}  // namespace bertfit
