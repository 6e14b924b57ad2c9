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
  if (cls_query_only_) return cls_query_backward(l, dinp);
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

// ---- Q and attention at the [CLS] queries only (cls_query_only_) ----
//
// The rows after attention are the [CLS] rows', and a [CLS] row's attention output reads Q at that row only
// (and K, V at every row), so Q is computed on the B [CLS] rows and attention for one query per sequence
// (attention_*_first_query, kernels/attention.h). Each element of Q|K|V is its own chain over C, so
// splitting the fused product into K|V on every row and Q on B rows changes no bit. In the backward the
// gradient of Q is +0 outside [CLS] (attention.h), which makes the fused product's backward three products:
// Q's weight and bias gradients over the [CLS] rows (the dropped terms are +0 x x); K|V's on every row, and
// their part of dx, which outside [CLS] is the whole chain (Q's +0 terms come first and leave +0); at the
// [CLS] rows dx's chain runs over Q then K|V, so those rows are computed whole, from the residual gradient,
// and written over. Skipped: a third of the layer's Q|K|V products and 1 - 1/T of its attention.

void BertModel::cls_query_layer_forward(int64_t l) {
  const int64_t C = config_.hidden_size, C3 = 3 * C;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const float* x = hidden_[l];
  BERTFIT_TIMED("rows.fwd", gather_rows(cls_x_, x, cls_rows_, B_, C));
  // K|V on the rows_ rows into their columns of a.qkv; Q on the [CLS] rows (through cls_out_, free until the
  // layer's output) into theirs. Padding-free rows (rows_ < N_) have prefix masks here: attention in place.
  BERTFIT_TIMED("gemm.qkv.fwd", {
    encoder_linear_rows(a.qkv + C, C3, x, rows_, o.qkv_w, o.qkv_b, C, C3, C, 2 * C);
    encoder_linear_rows(cls_out_, C, cls_x_, B_, o.qkv_w, o.qkv_b, C, C3, 0, C);
  });
  BERTFIT_TIMED("rows.fwd", put_rows(a.qkv, C3, cls_out_, cls_rows_, B_, C));
  if (rows_ < N_)
    BERTFIT_TIMED("attention.fwd",
                  attention_forward_varlen_first_query(cls_ctx_, a.qkv, seq_offset_, seq_len_, B_, T_, C,
                                                       config_.num_attention_heads, attn_scratch_));
  else
    BERTFIT_TIMED("attention.fwd", attention_forward_first_query(
                                       cls_ctx_, a.qkv, mask_, {B_, T_, C, config_.num_attention_heads},
                                       dropout_p(config_.attention_probs_dropout_prob),
                                       site_key(layer_site(l, 0)), attn_scratch_));
  output_block_forward(l, B_, cls_ctx_, cls_x_, cls_out_, cls_pos_);
  BERTFIT_TIMED("rows.fwd", scatter_rows(hidden_[l + 1], cls_out_, cls_pos_, B_, N_, C));
}

// From cls_rows_backward: cls_ctx_ holds the [CLS] rows' ctx gradient, cls_g_ the attention output dense's
// output gradient, cls_g2_ the residual gradient at the [CLS] rows, which dinp already holds (zero
// elsewhere). Training runs padded ([CLS] of sequence b at row b * T).
void BertModel::cls_query_backward(int64_t l, float* dinp) {
  const int64_t C = config_.hidden_size, C3 = 3 * C, B = B_;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  // dqkv -> work_inter_ (Q columns at the [CLS] rows only); the [CLS] rows' ctx recomputed into cls_x_ (h1,
  // which output_block_backward put there, is dead).
  float* dqkv = work_inter_;
  float* ctx = cls_x_;
  BERTFIT_TIMED("attention.bwd",
                attention_backward_first_query(dqkv, ctx, cls_ctx_, a.qkv, mask_,
                                               {B_, T_, C, config_.num_attention_heads},
                                               dropout_p(config_.attention_probs_dropout_prob),
                                               site_key(layer_site(l, 0)), attn_scratch_));
  BERTFIT_TIMED("gemm.attn_out.bwd",
                linear_backward(nullptr, G(o.attn_out_w), G(o.attn_out_b), cls_g_, ctx, P(o.attn_out_w), B, C,
                                C, false, 0, 0, 0, matmul_precision));
  const float* x = hidden_for_backward(l, scratch_c_);
  const int64_t ld_cls_qkv = T_ * C3, ld_cls_x = T_ * C;  // the [CLS] rows of dqkv and x
  BERTFIT_TIMED("gemm.qkv.bwd", {
    linear_backward(nullptr, G(o.qkv_w), G(o.qkv_b), dqkv, x, nullptr, B, C, C, false, ld_cls_x, ld_cls_qkv,
                    0, matmul_precision);
    linear_backward(dinp, G(o.qkv_w) + C * C, G(o.qkv_b) + C, dqkv + C, x, P(o.qkv_w) + C * C, N_, C, 2 * C,
                    /*accumulate_dinp=*/true, 0, C3, 0, matmul_precision);
    linear_backward(cls_g2_, nullptr, nullptr, dqkv, nullptr, P(o.qkv_w), B, C, C3, /*accumulate_dinp=*/true,
                    0, ld_cls_qkv, 0, matmul_precision);
  });
  BERTFIT_TIMED("rows.bwd", put_rows(dinp, C, cls_g2_, cls_pos_, B, C));
}

}  // namespace bertfit
