// The classification losses of the competition tricks (issue 15), on the head's logits [N, V]:
//  - class-weighted cross-entropy, as torch.nn.functional.cross_entropy(weight=w, label_smoothing=eps):
//    row loss w[y] * (1 - eps) * (-log p_y) + (eps / V) * sum_c w[c] * (-log p_c);
//  - focal loss (Lin et al. 2017), as F.nll_loss((1 - p)^gamma * log p, y, weight=w): row loss
//    -w[y] * (1 - p_y)^gamma * log p_y (no label smoothing: the two are refused together);
//  - R-Drop (Liang et al. 2021): rows [0, N/2) and [N/2, N) are two dropout passes of the same documents;
//    the loss is the mean of the two passes' losses plus alpha times the symmetric KL of each pair,
//    0.5 * (KL(p1 || p2) + KL(p2 || p1)) = 0.5 * sum_c (p1_c - p2_c) (log p1_c - log p2_c), over labelled
//    documents (each weighted by its class weight, as its cross-entropy).
// As cross_entropy.h, the loss is a SUM over rows divided by a caller-given normaliser (gradient
// accumulation): the number of labelled documents of the step, or the sum of their class weights with
// class weights (torch's weighted mean); documents, not rows, with R-Drop (classification_normalizer). Logits
// are few (documents x labels): a plain serial loop in double.
#pragma once

#include <cstdint>

namespace bertfit {

struct ClassificationLossOptions {
  const float* class_weights = nullptr;  // [V]; null: every class 1
  float label_smoothing = 0;
  float focal_gamma = 0;  // > 0: focal loss
  float rdrop_alpha = 0;  // > 0: the rows are two passes (see above); N must be even
  bool plain() const { return !class_weights && focal_gamma == 0 && rdrop_alpha == 0; }
};

// Writes row_loss[N] (R-Drop: row i < N/2 holds its pair's KL term) and dlogits = d(loss)/d(logits) when
// non-null; returns sum(row_loss) / normalizer. Plain options call cross_entropy_forward_backward (the same
// bits as before these options existed). Labels outside [0, V) throw ShapeError; focal with label smoothing,
// and R-Drop with an odd N or unequal labels in a pair, throw Error.
// The normaliser of these rows alone: sum of the labelled rows' class weights (1 each without weights),
// halved with R-Drop (each document is in two rows).
// Labels outside [0, V) throw ShapeError.
float classification_normalizer(const int32_t* labels, int64_t N, int64_t V,
                                const ClassificationLossOptions& options);

float classification_loss(float* dlogits, float* row_loss, const float* logits, const int32_t* labels,
                          int64_t N, int64_t V, const ClassificationLossOptions& options, float normalizer);

// HuggingFace's other problem types (config.json problem_type), per labelled row (labels[i] != kIgnoreIndex
// marks the rows that have a target), summed and divided by the normaliser (documents):
//  - multi_label_classification: BCEWithLogitsLoss over the V outputs, targets[N, V] in {0, 1} (any value in
//    [0, 1] works): row loss = mean_v [max(x, 0) - x t + log(1 + exp(-|x|))], so loss = torch's mean over N x
//    V;
//  - regression: MSELoss with V = 1, targets[N]: row loss = (x - t)^2.
float bce_with_logits_loss(float* dlogits, float* row_loss, const float* logits, const float* targets,
                           const int32_t* labels, int64_t N, int64_t V, float normalizer);
float mse_loss(float* dlogits, float* row_loss, const float* logits, const float* targets,
               const int32_t* labels, int64_t N, float normalizer);

}  // namespace bertfit
