// The sequence-classification head of BertModel, forward and backward:
//
//   f = features(hidden states)                                  features.h: pooler input, CLS of a layer,
//   ... BERT with POOLER:  x = tanh(pooler(f))   else x = f          (HF's BertForSequenceClassification:
//   POOLER) chunks > 1:        x = chunk_pool(x over each document's chunks) BERT:     logits =
//   classifier(dropout(x)) RoBERTa:  logits = out_proj(dropout(tanh(dense(dropout(x)))))
//   (RobertaClassificationHead; no pooler)   ELECTRA: the same with GELU for tanh (ElectraClassificationHead)
//
// Dropout rate: classifier_dropout when set, else hidden_dropout_prob (both heads, as HF).
#include <algorithm>
#include <cstring>

#include "kernels/activation.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/linear.h"
#include "model/bert_model.h"

namespace bertfit {

namespace {
constexpr uint64_t kHeadSite = 1u << 20;  // dropout sites of the heads, after every encoder layer's
}

float BertModel::classification_forward(const int32_t* labels, float normalizer) {
  const int64_t C = config_.hidden_size, NL = config_.num_labels(), Fin = head_in_dim_;
  const float p = dropout_p(config_.effective_classifier_dropout());
  const bool bert = config_.family == ModelFamily::BERT;
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
  dropout_forward(cls_.drop1, x, R * Fin, p, site_key(kHeadSite));
  if (bert) {
    linear_forward(logits_, cls_.drop1, P(head_off_.out_w), P(head_off_.out_b), R, Fin, NL);
  } else {
    linear_forward(cls_.act, cls_.drop1, P(head_off_.dense_w), P(head_off_.dense_b), R, Fin, C);
    if (config_.family == ModelFamily::ELECTRA) {  // act keeps the pre-activation for gelu_backward
      gelu_forward(cls_.drop2, cls_.act, R * C);
      dropout_forward(cls_.drop2, cls_.drop2, R * C, p, site_key(kHeadSite + 1));
    } else {
      tanh_forward(cls_.act, cls_.act, R * C);
      dropout_forward(cls_.drop2, cls_.act, R * C, p, site_key(kHeadSite + 1));
    }
    linear_forward(logits_, cls_.drop2, P(head_off_.out_w), P(head_off_.out_b), R, C, NL);
  }
  head_x_ = x;
  logits_rows_ = R;
  if (!labels) return 0.0f;
  std::copy(labels, labels + R, labels_);
  const int64_t n = count_labelled(labels_, R);
  if (normalizer <= 0) normalizer = static_cast<float>(std::max<int64_t>(n, 1));
  return cross_entropy_forward_backward(training_ ? dlogits_ : nullptr, row_loss_, logits_, labels_, R, NL,
                                        label_smoothing, normalizer);
}

void BertModel::classification_backward(float* dlast) {
  const int64_t C = config_.hidden_size, NL = config_.num_labels(), Fin = head_in_dim_;
  const float p = dropout_p(config_.effective_classifier_dropout());
  const bool bert = config_.family == ModelFamily::BERT;
  const int64_t R = docs_;
  std::fill(dlast, dlast + N_ * C, 0.0f);
  float* dx = cls_.g1;  // gradient w.r.t. the head input x, [R, Fin]
  if (bert) {
    linear_backward(dx, G(head_off_.out_w), G(head_off_.out_b), dlogits_, cls_.drop1, P(head_off_.out_w), R,
                    Fin, NL);
  } else {
    linear_backward(cls_.g2, G(head_off_.out_w), G(head_off_.out_b), dlogits_, cls_.drop2, P(head_off_.out_w),
                    R, C, NL);
    dropout_backward(cls_.g2, cls_.g2, R * C, p, site_key(kHeadSite + 1));
    if (config_.family == ModelFamily::ELECTRA)
      gelu_backward(cls_.g2, cls_.act, cls_.g2, R * C);
    else
      tanh_backward(cls_.g2, cls_.act, cls_.g2, R * C);
    linear_backward(dx, G(head_off_.dense_w), G(head_off_.dense_b), cls_.g2, cls_.drop1, P(head_off_.dense_w),
                    R, Fin, C);
  }
  dropout_backward(dx, dx, R * Fin, p, site_key(kHeadSite));
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
