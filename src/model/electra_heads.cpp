// ELECTRA's discriminator head (ElectraForPreTraining), forward and backward. The other ELECTRA heads reuse
// BertModel's: the generator (ElectraForMaskedLM) is the masked-LM head at the embedding width
// (mlm_head.cpp), the classifier (ElectraForSequenceClassification) RoBERTa's with GELU
// (classification_head.cpp). Per token (all B*T rows, h = the last hidden state):
//
//   logit = dense_prediction(act(dense(h)))          act = config.hidden_act (GELU), one logit per token
//   loss  = sum over rows with attention_mask 1 and a label (0 / 1) of BCEWithLogits(logit, label) / norm
//
// norm: the caller's normaliser, else the number of such rows (HF: BCEWithLogitsLoss's mean over the
// active tokens). Pre-training weighs this loss by passing norm = tokens / discriminator_loss_weight.
#include <algorithm>
#include <cmath>
#include <string>

#include "bertfit/error.h"
#include "core/profiler.h"
#include "kernels/activation.h"
#include "kernels/cross_entropy.h"
#include "kernels/linear.h"
#include "model/bert_model.h"

namespace bertfit {

void BertModel::add_discriminator_params(int depth) {
  const int64_t C = config_.hidden_size;
  table_.add("discriminator_predictions.dense.weight", {C, C}, depth);
  table_.add("discriminator_predictions.dense.bias", {C}, depth);
  table_.add("discriminator_predictions.dense_prediction.weight", {1, C}, depth);
  table_.add("discriminator_predictions.dense_prediction.bias", {1}, depth);
}

float BertModel::discriminator_forward(const int32_t* labels, float normalizer) {
  const int64_t C = config_.hidden_size;
  const float* last = hidden_[config_.num_hidden_layers];
  BERTFIT_TIMED("head.discriminator.fwd", {
    linear_forward(head_pre_, last, P(head_off_.dense_w), P(head_off_.dense_b), N_, C, C);
    gelu_forward(head_act_, head_pre_, N_ * C);
    linear_forward(logits_, head_act_, P(head_off_.out_w), P(head_off_.out_b), N_, C, 1);
  });
  logits_rows_ = N_;
  if (!labels) return 0.0f;
  int64_t n = 0;
  for (int64_t r = 0; r < N_; ++r) {
    const int32_t y = labels[r];
    if (y != 0 && y != 1 && y != kIgnoreIndex)
      throw ShapeError("labels: replaced-token detection takes 1 (replaced), 0 (original) or -100, got " +
                       std::to_string(y) + " at row " + std::to_string(r));
    labels_[r] = mask_[r] ? y : kIgnoreIndex;
    n += labels_[r] != kIgnoreIndex;
  }
  if (normalizer <= 0) normalizer = static_cast<float>(std::max<int64_t>(n, 1));
  // BCEWithLogits(z, y) = max(z, 0) - z y + log(1 + exp(-|z|)); d/dz = sigmoid(z) - y. Summed in row order
  // in double (deterministic, and exact enough for sums over many tokens).
  double sum = 0;
  for (int64_t r = 0; r < N_; ++r) {
    if (labels_[r] == kIgnoreIndex) {
      row_loss_[r] = 0;
      if (training_) dlogits_[r] = 0;
      continue;
    }
    const double z = logits_[r], y = labels_[r];
    const double l = std::max(z, 0.0) - z * y + std::log1p(std::exp(-std::fabs(z)));
    row_loss_[r] = static_cast<float>(l);
    sum += l;
    if (training_) dlogits_[r] = static_cast<float>((1.0 / (1.0 + std::exp(-z)) - y) / normalizer);
  }
  return static_cast<float>(sum / normalizer);
}

void BertModel::discriminator_backward(float* dlast) {
  const int64_t C = config_.hidden_size;
  const float* last = hidden_[config_.num_hidden_layers];
  BERTFIT_TIMED("head.discriminator.bwd", {
    linear_backward(head_grad_, G(head_off_.out_w), G(head_off_.out_b), dlogits_, head_act_,
                    P(head_off_.out_w), N_, C, 1);
    gelu_backward(head_grad_, head_pre_, head_grad_, N_ * C);
    linear_backward(dlast, G(head_off_.dense_w), G(head_off_.dense_b), head_grad_, last, P(head_off_.dense_w),
                    N_, C, C);
  });
}

}  // namespace bertfit
