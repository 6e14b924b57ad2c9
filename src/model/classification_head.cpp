// The sequence-classification head of BertModel, forward and backward:
//
//   f = features(hidden states)                  features.h: pooler input, CLS of a layer, ...
//   BERT with POOLER: x = tanh(pooler(f))        (HF's BertForSequenceClassification), else x = f
//   chunks > 1:       x = chunk_pool(x over each document's chunks)
//   BERT:             logits = classifier(dropout(x))
//   RoBERTa:          logits = out_proj(dropout(tanh(dense(dropout(x)))))   (RobertaClassificationHead)
//   ELECTRA:          the same with GELU for tanh (ElectraClassificationHead; no pooler)
//   loss:             kernels/classification_loss.h (cross-entropy, or the competition tricks' losses)
//
// Dropout rate: classifier_dropout when set, else hidden_dropout_prob (both heads, as HF). Multi-sample
// dropout runs the part after x S times with masks of its own per sample (head_site) and averages.
#include <algorithm>
#include <cstring>
#include <string>

#include "bertfit/error.h"
#include "kernels/activation.h"
#include "kernels/classification_loss.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/linear.h"
#include "model/bert_model.h"

namespace bertfit {

namespace {
constexpr uint64_t kHeadSite = 1u << 20;  // dropout sites of the heads, after every encoder layer's
// Site k (0: before the head, 1: RoBERTa's inner dropout) of head sample s: sample 0 has the head's usual
// sites, multi-sample dropout's further samples the pairs after them.
uint64_t head_site(int64_t s, int k) {
  return kHeadSite + 2 * static_cast<uint64_t>(s) + k;
}
}  // namespace

void BertModel::head_sample_forward(const float* x, int64_t s, float* logits) {
  const int64_t C = config_.hidden_size, NL = config_.num_labels(), Fin = head_in_dim_, R = docs_;
  const float p = dropout_p(config_.effective_classifier_dropout());
  dropout_forward(cls_.drop1, x, R * Fin, p, site_key(head_site(s, 0)));
  if (config_.family == ModelFamily::BERT) {
    linear_forward(logits, cls_.drop1, P(head_off_.out_w), P(head_off_.out_b), R, Fin, NL);
  } else {
    linear_forward(cls_.act, cls_.drop1, P(head_off_.dense_w), P(head_off_.dense_b), R, Fin, C);
    if (config_.family == ModelFamily::ELECTRA) {  // act keeps the pre-activation for gelu_backward
      gelu_forward(cls_.drop2, cls_.act, R * C);
      dropout_forward(cls_.drop2, cls_.drop2, R * C, p, site_key(head_site(s, 1)));
    } else {
      tanh_forward(cls_.act, cls_.act, R * C);
      dropout_forward(cls_.drop2, cls_.act, R * C, p, site_key(head_site(s, 1)));
    }
    linear_forward(logits, cls_.drop2, P(head_off_.out_w), P(head_off_.out_b), R, C, NL);
  }
}

void BertModel::head_sample_backward(int64_t s, const float* dlogits, float* dx) {
  const int64_t C = config_.hidden_size, NL = config_.num_labels(), Fin = head_in_dim_, R = docs_;
  const float p = dropout_p(config_.effective_classifier_dropout());
  if (config_.family == ModelFamily::BERT) {
    linear_backward(dx, G(head_off_.out_w), G(head_off_.out_b), dlogits, cls_.drop1, P(head_off_.out_w), R,
                    Fin, NL);
  } else {
    linear_backward(cls_.g2, G(head_off_.out_w), G(head_off_.out_b), dlogits, cls_.drop2, P(head_off_.out_w),
                    R, C, NL);
    dropout_backward(cls_.g2, cls_.g2, R * C, p, site_key(head_site(s, 1)));
    if (config_.family == ModelFamily::ELECTRA)
      gelu_backward(cls_.g2, cls_.act, cls_.g2, R * C);
    else
      tanh_backward(cls_.g2, cls_.act, cls_.g2, R * C);
    linear_backward(dx, G(head_off_.dense_w), G(head_off_.dense_b), cls_.g2, cls_.drop1, P(head_off_.dense_w),
                    R, Fin, C);
  }
  dropout_backward(dx, dx, R * Fin, p, site_key(head_site(s, 0)));
}

float BertModel::classification_forward(const int32_t* labels, float normalizer) {
  const int64_t C = config_.hidden_size, NL = config_.num_labels(), Fin = head_in_dim_;
  const float p = dropout_p(config_.effective_classifier_dropout());
  std::vector<const float*>& hs = hidden_const_;
  hs.assign(hidden_.begin(), hidden_.end());
  features_forward(cls_.feat, cls_.argmax, hs, mask_, B_, T_, C, head_options_.features, feature_layers_);
  float* x = cls_.feat;
  if (head_options_.features == FeatureKind::POOLER) {
    linear_forward(cls_.pooled, cls_.feat, P(head_off_.dense_w), P(head_off_.dense_b), B_, C, C);
    tanh_forward(cls_.pooled, cls_.pooled, B_ * C);
    x = cls_.pooled;
  }
  if (chunks_ > 1) {
    chunk_pool_forward(cls_.doc, cls_.chunk_argmax, cls_.chunk_w, x, chunk_mask_,
                       head_off_.chunk_attention ? P(head_off_.chunk_attention) : nullptr, docs_, chunks_,
                       Fin, head_options_.chunk_pooling);
    x = cls_.doc;
  }
  const int64_t R = docs_;  // rows entering the head: documents (= sequences without chunking)
  head_x_ = x;
  logits_rows_ = R;
  // Without dropout every sample is the same function: one is enough.
  head_samples_ = training_ && p > 0 ? std::max(1, multi_sample_dropout) : 1;
  const int64_t S = head_samples_;
  ClassificationLossOptions lo;
  lo.label_smoothing = label_smoothing;
  const ProblemType problem = config_.problem_type;
  if (training_) {
    if (!class_weights.empty() && static_cast<int64_t>(class_weights.size()) != NL)
      throw ShapeError("class_weights: " + std::to_string(class_weights.size()) + " weights for " +
                       std::to_string(NL) + " labels");
    lo.class_weights = class_weights.empty() ? nullptr : class_weights.data();
    lo.focal_gamma = focal_gamma;
    lo.rdrop_alpha = rdrop_alpha;
  }
  if (labels) {
    std::copy(labels, labels + R, labels_);
    if (problem != ProblemType::SINGLE_LABEL) {
      if (!targets_)
        throw ShapeError(
            "forward: a multi_label_classification or regression model needs the batch's targets");
      if (!lo.plain() || label_smoothing > 0)
        throw Error(
            "class weights, focal loss, R-Drop and label smoothing are single-label classification's");
      if (problem == ProblemType::REGRESSION && NL != 1)
        throw ShapeError("regression: the model has " + std::to_string(NL) + " outputs, regression takes 1");
    }
    if (normalizer <= 0) normalizer = classification_normalizer(labels_, R, NL, lo);
  }
  // One sample's loss: the single-label tricks' loss, or the problem type's.
  auto sample_loss = [&](float* dlogits, float norm) {
    switch (problem) {
      case ProblemType::MULTI_LABEL:
        return bce_with_logits_loss(dlogits, row_loss_, logits_, targets_, labels_, R, NL, norm);
      case ProblemType::REGRESSION:
        return mse_loss(dlogits, row_loss_, logits_, targets_, labels_, R, norm);
      case ProblemType::SINGLE_LABEL:
        break;
    }
    return classification_loss(dlogits, row_loss_, logits_, labels_, R, NL, lo, norm);
  };
  if (S == 1) {
    head_sample_forward(x, 0, logits_);
    if (!labels) return 0.0f;
    return sample_loss(training_ ? dlogits_ : nullptr, normalizer);
  }
  // Multi-sample dropout: loss = mean over samples of each sample's loss, logits = mean of the samples'.
  msd_logits_.assign(static_cast<size_t>(R * NL), 0.0f);
  msd_dlogits_.resize(static_cast<size_t>(S * R * NL));
  double loss = 0;
  for (int64_t s = 0; s < S; ++s) {
    head_sample_forward(x, s, logits_);
    if (labels) loss += sample_loss(msd_dlogits_.data() + s * R * NL, normalizer * static_cast<float>(S));
    for (int64_t k = 0; k < R * NL; ++k) msd_logits_[k] += logits_[k] / static_cast<float>(S);
  }
  std::copy(msd_logits_.begin(), msd_logits_.end(), logits_);
  return static_cast<float>(loss);
}

void BertModel::classification_backward(float* dlast) {
  const int64_t C = config_.hidden_size, NL = config_.num_labels(), Fin = head_in_dim_;
  const int64_t R = docs_;
  std::fill(dlast, dlast + N_ * C, 0.0f);
  float* dx = cls_.g1;  // gradient w.r.t. the head input x, [R, Fin]
  if (head_samples_ == 1) {
    head_sample_backward(0, dlogits_, dx);
  } else {
    // Each sample's activations again (they are R rows: cheaper than keeping S copies), its backward, the
    // head-input gradients summed. The scratch logits keep logits() the samples' mean.
    msd_dx_.resize(static_cast<size_t>(R * Fin));
    std::vector<float>& scratch = msd_logits_;
    for (int64_t s = 0; s < head_samples_; ++s) {
      head_sample_forward(head_x_, s, scratch.data());
      head_sample_backward(s, msd_dlogits_.data() + s * R * NL, s == 0 ? dx : msd_dx_.data());
      if (s > 0)
        for (int64_t k = 0; k < R * Fin; ++k) dx[k] += msd_dx_[k];
    }
  }
  // Undo the chunk pooling: per-sequence gradient of the head input, [B, Fin].
  float* dseq = dx;
  if (chunks_ > 1) {
    const float* xin = head_options_.features == FeatureKind::POOLER ? cls_.pooled : cls_.feat;
    chunk_pool_backward(cls_.doc_grad, head_off_.chunk_attention ? G(head_off_.chunk_attention) : nullptr, dx,
                        xin, cls_.chunk_argmax, cls_.chunk_w, chunk_mask_,
                        head_off_.chunk_attention ? P(head_off_.chunk_attention) : nullptr, docs_, chunks_,
                        Fin, head_options_.chunk_pooling);
    dseq = cls_.doc_grad;
  }
  if (head_options_.features == FeatureKind::POOLER) {
    tanh_backward(dseq, cls_.pooled, dseq, B_ * C);
    linear_backward(cls_.feat_grad, G(head_off_.dense_w), G(head_off_.dense_b), dseq, cls_.feat,
                    P(head_off_.dense_w), B_, C, C);
  } else {
    std::memcpy(cls_.feat_grad, dseq, B_ * feature_dim_ * sizeof(float));
  }
}

void BertModel::feature_backward_into(float* dhidden, int64_t l) {
  features_backward(dhidden, l, cls_.feat_grad, cls_.argmax, mask_, B_, T_, config_.hidden_size,
                    head_options_.features, feature_layers_);
}

}  // namespace bertfit
