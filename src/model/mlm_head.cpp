// The masked-LM head of BertModel, forward and backward (classification: classification_head.cpp).
//   Masked LM (all three):  logits = LN(gelu(dense(h))) E^T + bias, E = word embeddings (tied decoder),
//                           computed on the labelled rows only: the loss and every gradient are those of
//                           HF's all-position logits, since unlabelled rows contribute nothing to either.
//                           ELECTRA's generator is the same maths with the transform's dense ending at the
//                           embedding width H (ElectraGeneratorPredictions + generator_lm_head); H = C else.
#include <algorithm>
#include <cstring>
#include <string>

#include "bertfit/error.h"
#include "core/profiler.h"
#include "kernels/activation.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "model/bert_model.h"

namespace bertfit {

float BertModel::mlm_forward(const int32_t* labels, float normalizer) {
  const int64_t C = config_.hidden_size, V = config_.vocab_size, H = config_.embedding_width();
  const float* last = hidden_[config_.num_hidden_layers];
  // Rows to predict: the labelled ones (all rows at inference, when there are no labels).
  int64_t M = 0;
  for (int64_t r = 0; r < N_; ++r)
    if (!labels || labels[r] != kIgnoreIndex) {
      if (M == max_M_)
        throw ShapeError("masked LM: more than the " + std::to_string(max_M_) +
                         " labelled rows reserved (reserve(..., max_labelled_rows))");
      mlm_index_[M] = static_cast<int32_t>(r);
      labels_[M] = labels ? labels[r] : kIgnoreIndex;
      ++M;
    }
  logits_rows_ = M;
  for (int64_t m = 0; m < M; ++m)
    std::memcpy(head_in_ + m * C, last + static_cast<int64_t>(mlm_index_[m]) * C, C * sizeof(float));
  BERTFIT_TIMED("head.mlm_transform.fwd", {
    linear_forward(head_pre_, head_in_, P(head_off_.dense_w), P(head_off_.dense_b), M, C, H);
    gelu_forward(head_act_, head_pre_, M * H);
    layernorm_forward(head_drop_, head_mean_, head_rstd_, head_act_, P(head_off_.ln_w), P(head_off_.ln_b), M,
                      H, config_.layer_norm_eps);
  });
  BERTFIT_TIMED("gemm.decoder.fwd",
                linear_forward(logits_, head_drop_, P(emb_off_.word), P(head_off_.bias), M, H, V));
  if (!labels) return 0.0f;
  if (normalizer <= 0) normalizer = static_cast<float>(std::max<int64_t>(M, 1));
  BERTFIT_PROFILE_SCOPE("loss");
  return cross_entropy_forward_backward(training_ ? dlogits_ : nullptr, row_loss_, logits_, labels_, M, V,
                                        0.0f, normalizer);
}

void BertModel::mlm_backward(float* dlast) {
  const int64_t C = config_.hidden_size, V = config_.vocab_size, M = logits_rows_,
                H = config_.embedding_width();
  std::fill(dlast, dlast + N_ * C, 0.0f);
  // Tied decoder: its weight gradient lands in the word-embedding gradient.
  BERTFIT_TIMED("gemm.decoder.bwd", linear_backward(head_grad_, G(emb_off_.word), G(head_off_.bias), dlogits_,
                                                    head_drop_, P(emb_off_.word), M, H, V));
  BERTFIT_TIMED("head.mlm_transform.bwd", {
    layernorm_backward(head_grad2_, G(head_off_.ln_w), G(head_off_.ln_b), head_grad_, head_act_,
                       P(head_off_.ln_w), head_mean_, head_rstd_, M, H);
    gelu_backward(head_grad2_, head_pre_, head_grad2_, M * H);
    linear_backward(head_grad_, G(head_off_.dense_w), G(head_off_.dense_b), head_grad2_, head_in_,
                    P(head_off_.dense_w), M, C, H);
  });
  for (int64_t m = 0; m < M; ++m)
    std::memcpy(dlast + static_cast<int64_t>(mlm_index_[m]) * C, head_grad_ + m * C, C * sizeof(float));
}

}  // namespace bertfit
