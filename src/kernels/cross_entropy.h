// Softmax cross-entropy over class (or vocabulary) logits, as torch.nn.CrossEntropyLoss with ignore_index and
// label_smoothing. The loss is a SUM over rows divided by a caller-given normaliser, not a per-call mean:
// with gradient accumulation the normaliser is the number of labelled rows in the whole effective batch, so
// accumulated micro-batches give exactly the loss and gradients of the large batch (transformers#34191).
#pragma once

#include <cstdint>

namespace bertfit {

constexpr int32_t kIgnoreIndex = -100;

// Number of rows whose label is not kIgnoreIndex.
int64_t count_labelled(const int32_t* labels, int64_t N);

// logits[N,V], labels[N] (kIgnoreIndex rows are skipped). Writes row_loss[N] (0 for ignored rows) and returns
// sum(row_loss) / normalizer, summed in row order (deterministic). If dlogits is non-null, writes
// dlogits = d(loss)/d(logits) = (softmax - target) / normalizer, where target = (1-eps)*onehot + eps/V.
// Labels outside [0, V) throw ShapeError.
float cross_entropy_forward_backward(float* dlogits, float* row_loss, const float* logits,
                                     const int32_t* labels, int64_t N, int64_t V, float label_smoothing,
                                     float normalizer);

// The plain serial loop (exp in double everywhere): the oracle of the vectorised kernel above.
float cross_entropy_forward_backward_reference(float* dlogits, float* row_loss, const float* logits,
                                               const int32_t* labels, int64_t N, int64_t V,
                                               float label_smoothing, float normalizer);

// probs[N,V] = softmax(logits) row-wise (prediction).
void softmax_rows(float* probs, const float* logits, int64_t N, int64_t V);

}  // namespace bertfit
