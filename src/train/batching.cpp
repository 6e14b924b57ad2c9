#include "train/batching.h"

#include <algorithm>
#include <numeric>
#include <string>

#include "bertfit/error.h"
#include "core/rng.h"

namespace bertfit {

std::vector<std::vector<int64_t>> plan_train_batches(const std::vector<EncodedExample>& examples,
                                                     int batch_size, bool group_by_length, uint64_t seed,
                                                     int64_t epoch) {
  return plan_train_batches(examples, 0, static_cast<int64_t>(examples.size()), batch_size, group_by_length,
                            seed, epoch);
}

std::vector<std::vector<int64_t>> plan_train_batches(const std::vector<EncodedExample>& examples,
                                                     int64_t begin, int64_t end, int batch_size,
                                                     bool group_by_length, uint64_t seed, int64_t epoch) {
  const int64_t n = end - begin;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), begin);
  Rng rng(splitmix64(seed) ^ splitmix64(0x5EED0000ull + static_cast<uint64_t>(epoch)));
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
  if (group_by_length) {
    const int64_t mega = 50 * static_cast<int64_t>(batch_size);
    for (int64_t s = 0; s < n; s += mega) {
      const auto first = order.begin() + s, last = order.begin() + std::min(n, s + mega);
      std::stable_sort(first, last,
                       [&](int64_t a, int64_t b) { return examples[a].length() > examples[b].length(); });
    }
  }
  std::vector<std::vector<int64_t>> batches;
  for (int64_t s = 0; s < n; s += batch_size)
    batches.emplace_back(order.begin() + s, order.begin() + std::min(n, s + batch_size));
  return batches;
}

std::vector<std::vector<int64_t>> plan_eval_batches(const std::vector<EncodedExample>& examples,
                                                    int batch_size) {
  const int64_t n = static_cast<int64_t>(examples.size());
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return examples[a].length() > examples[b].length(); });
  std::vector<std::vector<int64_t>> batches;
  for (int64_t s = 0; s < n; s += batch_size)
    batches.emplace_back(order.begin() + s, order.begin() + std::min(n, s + batch_size));
  return batches;
}

BatchShape batch_shape(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
                       int64_t pad_to_length) {
  BatchShape s;
  s.docs = static_cast<int64_t>(indices.size());
  int64_t longest = 1;
  for (int64_t i : indices) {
    s.chunks = std::max<int64_t>(s.chunks, static_cast<int64_t>(examples[i].seqs.size()));
    longest = std::max(longest, examples[i].length());
    if (pad_to_length > 0 && examples[i].length() > pad_to_length)
      throw ShapeError("batch padded to " + std::to_string(pad_to_length) + " tokens: example " +
                       std::to_string(i) + " has a sequence of " + std::to_string(examples[i].length()) +
                       " tokens");
  }
  s.length = pad_to_length > 0 ? pad_to_length : longest;
  return s;
}

BatchTokens batch_tokens(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
                         int64_t pad_to_length) {
  BatchTokens t;
  for (int64_t i : indices)
    for (const EncodedSequence& s : examples[i].seqs) t.real += static_cast<int64_t>(s.ids.size());
  t.computed = batch_shape(examples, indices, pad_to_length).positions();
  return t;
}

Batch BatchBuilder::build(const std::vector<EncodedExample>& examples, const std::vector<int64_t>& indices,
                          int32_t pad_id, bool with_labels, int64_t pad_to_length) {
  const BatchShape shape = batch_shape(examples, indices, pad_to_length);
  const int64_t K = shape.chunks, T = shape.length;
  const int64_t D = static_cast<int64_t>(indices.size()), B = D * K;
  ids_.assign(static_cast<size_t>(B * T), pad_id);
  types_.assign(static_cast<size_t>(B * T), 0);
  mask_.assign(static_cast<size_t>(B * T), 0);
  chunk_mask_.assign(static_cast<size_t>(B), 0);
  labels_.assign(static_cast<size_t>(D), -100);
  targets_.clear();
  for (int64_t d = 0; d < D; ++d) {
    const EncodedExample& ex = examples[indices[d]];
    labels_[d] = ex.label;
    targets_.insert(targets_.end(), ex.targets.begin(), ex.targets.end());
    for (int64_t k = 0; k < K; ++k) {
      const bool real = k < static_cast<int64_t>(ex.seqs.size());
      const EncodedSequence& s =
          ex.seqs[real ? k : 0];  // an unused chunk repeats the first, masked out of pooling
      const int64_t row = (d * K + k) * T;
      std::copy(s.ids.begin(), s.ids.end(), ids_.begin() + row);
      std::copy(s.types.begin(), s.types.end(), types_.begin() + row);
      std::fill(mask_.begin() + row, mask_.begin() + row + static_cast<int64_t>(s.ids.size()), 1);
      chunk_mask_[d * K + k] = real;
    }
  }
  Batch b;
  b.B = B;
  b.T = T;
  b.input_ids = ids_.data();
  b.token_type_ids = types_.data();
  b.attention_mask = mask_.data();
  b.labels = with_labels ? labels_.data() : nullptr;
  // Multi-label / regression targets, when every document has its row of them.
  const size_t per_doc = D > 0 ? examples[indices[0]].targets.size() : 0;
  if (with_labels && per_doc > 0 && targets_.size() == per_doc * static_cast<size_t>(D))
    b.targets = targets_.data();
  b.chunks = K;
  b.chunk_mask = chunk_mask_.data();
  return b;
}

}  // namespace bertfit
