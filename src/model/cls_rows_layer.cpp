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
#include "kernels/attention.h"
#include "kernels/linear.h"
#include "kernels/rows.h"
#include "model/bert_model.h"

namespace bertfit {

bool BertModel::use_cls_rows_layer() const {
  if (!last_layer_cls_only || head_ != HeadKind::SEQUENCE_CLASSIFICATION || output_hidden_states ||
      head_options_.features == FeatureKind::MEAN_TOKENS || top_ < 1)
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

// layer_backward (encoder.cpp) with the [CLS] rows: dout, the gradient of hidden[l+1], is read at those rows
// only; dinp gets the gradient of hidden[l] on every row.
void BertModel::cls_rows_backward(int64_t l, const float* dout, float* dinp) {
  const int64_t C = config_.hidden_size, B = B_;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const AttentionShape shape{B_, T_, C, config_.num_attention_heads};
  const float p_attn = dropout_p(config_.attention_probs_dropout_prob);

  BERTFIT_TIMED("rows.bwd", gather_rows(cls_g2_, dout, cls_pos_, B, C));
  // Back to the attention output on the B rows: the residual gradient reaching x into cls_g2_ (over the
  // gathered dout, read first), the attention output's gradient into cls_g_; h1 into cls_x_ (the forward's
  // [CLS] inputs are dead).
  output_block_backward(l, B, cls_g2_, cls_g2_, cls_g_, cls_x_, cls_pos_);
  // dinp: the residual gradient at the [CLS] rows, zero elsewhere (the Q|K|V backward adds to every row).
  BERTFIT_TIMED("rows.bwd", scatter_rows(dinp, cls_g2_, cls_pos_, B, N_, C));
  // dctx at the [CLS] rows (cls_ctx_), then on every row (zero elsewhere) into scratch_c_.
  BERTFIT_TIMED("gemm.attn_out.bwd",
                linear_backward(cls_ctx_, nullptr, nullptr, cls_g_, nullptr, P(o.attn_out_w), B, C, C, false,
                                0, 0, 0, matmul_precision));
  BERTFIT_TIMED("rows.bwd", scatter_rows(scratch_c_, cls_ctx_, cls_pos_, B, N_, C));
  float* dqkv = work_inter_;
  float* ctx = work_c_;
  BERTFIT_TIMED("attention.bwd",
                attention_backward(dqkv, ctx, scratch_c_, a.qkv, /*probs=*/nullptr, mask_, shape, p_attn,
                                   site_key(layer_site(l, 0)), attn_scratch_));
  BERTFIT_TIMED("rows.bwd", gather_rows(cls_ctx_, ctx, cls_pos_, B, C));
  BERTFIT_TIMED("gemm.attn_out.bwd",
                linear_backward(nullptr, G(o.attn_out_w), G(o.attn_out_b), cls_g_, cls_ctx_, P(o.attn_out_w),
                                B, C, C, false, 0, 0, 0, matmul_precision));
  qkv_backward(l, dqkv, dinp);
}

}  // namespace bertfit
