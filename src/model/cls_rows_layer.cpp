// The last encoder layer on the [CLS] rows only (BertModel::last_layer_cls_only, bert_model.h).
//
// A sequence classifier whose features read the last hidden state at [CLS] only needs, of the last layer,
// Q|K|V on every row (the [CLS] queries attend to every key) and the attention; the attention output, the
// FFN, the residuals and the LayerNorms are row by row, so they run on the B [CLS] rows. In the backward,
// the gradient of hidden[L] is zero outside the [CLS] rows (the features read nothing else), so the same
// steps back to the attention output see B rows, and the attention backward gets a ctx gradient that is zero
// outside them, as in the full layer (whose other rows hold exact zeros there). Every value is the full
// layer's: each row of a product is its own FMA chain and the weight gradients' chains over the rows only
// lose terms that are exactly zero (backend/cpu/gemm.h); LayerNorm works row by row and sums its parameter
// gradients over the rows in order; the dropout masks are keyed by the [B, T] position (cls_pos_).
// tests/model/cls_rows_layer_test.cpp compares the two for the forward, the loss and every gradient.
#include "core/profiler.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/dropout.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/rows.h"
#include "model/bert_model.h"

namespace bertfit {

namespace {
// encoder.cpp's dropout sites of layer l (0: attention probabilities, 1: attention output, 2: FFN output).
inline uint64_t layer_site(int64_t l, int k) {
  return 1 + 3 * static_cast<uint64_t>(l) + k;
}
}  // namespace

bool BertModel::use_cls_rows_layer() const {
  if (!last_layer_cls_only || head_ != HeadKind::SEQUENCE_CLASSIFICATION || output_hidden_states ||
      head_options_.features == FeatureKind::MEAN_TOKENS || config_.num_hidden_layers < 1)
    return false;
  if (rows_ < N_)  // padding-free: each sequence's [CLS] (position 0) must be one of the computed rows
    for (int64_t b = 0; b < B_; ++b)
      if (!mask_[b * T_]) return false;
  return true;
}

void BertModel::cls_rows_forward(int64_t l, const float* ctx) {
  const int64_t C = config_.hidden_size;
  BERTFIT_TIMED("rows.fwd", {
    gather_rows(cls_ctx_, ctx, cls_rows_, B_, C);
    gather_rows(cls_x_, hidden_[l], cls_rows_, B_, C);
  });
  // res1, inter_pre, res2 and the LayerNorm statistics of the B rows: the first B rows of the layer's.
  output_block_forward(l, B_, cls_ctx_, cls_x_, cls_out_, cls_pos_);
  BERTFIT_TIMED("rows.fwd", scatter_rows(hidden_[l + 1], cls_out_, cls_pos_, B_, N_, C));
}

// layer_backward's steps (encoder.cpp) with the [CLS] rows: dout, the gradient of hidden[l+1], is read at
// those rows only; dinp gets the gradient of hidden[l] on every row.
void BertModel::cls_rows_backward(int64_t l, const float* dout, float* dinp) {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size, B = B_;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const float eps = config_.layer_norm_eps;
  const float p_hidden = dropout_p(config_.hidden_dropout_prob);
  const AttentionShape shape{B_, T_, C, config_.num_attention_heads};
  const float p_attn = dropout_p(config_.attention_probs_dropout_prob);
  float* g = cls_g_;
  float* g2 = cls_g2_;

  BERTFIT_TIMED("rows.bwd", gather_rows(g2, dout, cls_pos_, B, C));
  // LN2: dres2 -> g (also the residual gradient reaching h1).
  BERTFIT_TIMED("layernorm.bwd", layernorm_backward(g, G(o.ln2_w), G(o.ln2_b), g2, a.res2, P(o.ln2_w),
                                                    a.mean2, a.rstd2, B, C));
  BERTFIT_TIMED("dropout.bwd", dropout_rows_residual_forward(g2, g, nullptr, B, C, cls_pos_, p_hidden,
                                                             site_key(layer_site(l, 2))));
  BERTFIT_TIMED("gelu.recompute", gelu_forward_and_derivative(work_inter_, a.inter_pre, a.inter_pre, B * I));
  BERTFIT_TIMED("gemm.ffn_out.bwd", linear_backward(work_inter_, G(o.out_w), G(o.out_b), g2, work_inter_,
                                                    P(o.out_w), B, I, C, false, 0, 0, 0, matmul_precision));
  BERTFIT_TIMED("gelu.bwd", gelu_backward_from_derivative(work_inter_, a.inter_pre, work_inter_, B * I));
  float* h1 = cls_x_;  // the forward's [CLS] inputs are dead
  BERTFIT_TIMED("layernorm.recompute",
                layernorm_forward(h1, a.mean1, a.rstd1, a.res1, P(o.ln1_w), P(o.ln1_b), B, C, eps));
  BERTFIT_TIMED("gemm.ffn_in.bwd",
                linear_backward(g, G(o.inter_w), G(o.inter_b), work_inter_, h1, P(o.inter_w), B, C, I,
                                /*accumulate_dinp=*/true, 0, 0, 0, matmul_precision));
  // LN1: dres1 -> g2, the residual gradient reaching x: dinp's [CLS] rows, zero elsewhere (the Q|K|V
  // backward adds to every row below).
  BERTFIT_TIMED("layernorm.bwd", layernorm_backward(g2, G(o.ln1_w), G(o.ln1_b), g, a.res1, P(o.ln1_w),
                                                    a.mean1, a.rstd1, B, C));
  BERTFIT_TIMED("rows.bwd", scatter_rows(dinp, g2, cls_pos_, B, N_, C));
  BERTFIT_TIMED("dropout.bwd", dropout_rows_residual_forward(g, g2, nullptr, B, C, cls_pos_, p_hidden,
                                                             site_key(layer_site(l, 1))));
  // dctx at the [CLS] rows (cls_ctx_), then on every row (zero elsewhere) into scratch_c_.
  BERTFIT_TIMED("gemm.attn_out.bwd", linear_backward(cls_ctx_, nullptr, nullptr, g, nullptr, P(o.attn_out_w),
                                                     B, C, C, false, 0, 0, 0, matmul_precision));
  BERTFIT_TIMED("rows.bwd", scatter_rows(scratch_c_, cls_ctx_, cls_pos_, B, N_, C));
  float* dqkv = work_inter_;
  float* ctx = work_c_;
  BERTFIT_TIMED("attention.bwd",
                attention_backward(dqkv, ctx, scratch_c_, a.qkv, /*probs=*/nullptr, mask_, shape, p_attn,
                                   site_key(layer_site(l, 0)), attn_scratch_));
  BERTFIT_TIMED("rows.bwd", gather_rows(cls_ctx_, ctx, cls_pos_, B, C));
  BERTFIT_TIMED("gemm.attn_out.bwd",
                linear_backward(nullptr, G(o.attn_out_w), G(o.attn_out_b), g, cls_ctx_, P(o.attn_out_w), B, C,
                                C, false, 0, 0, 0, matmul_precision));
  const float* x = hidden_for_backward(l, scratch_c_);
  BERTFIT_TIMED("gemm.qkv.bwd",
                linear_backward(dinp, G(o.qkv_w), G(o.qkv_b), dqkv, x, P(o.qkv_w), N_, C, 3 * C,
                                /*accumulate_dinp=*/true, 0, 0, 0, matmul_precision));
}

}  // namespace bertfit
