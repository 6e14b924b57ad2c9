// Embeddings and encoder layers of BertModel, forward and backward (see the data flow in bert_model.h).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "backend/cpu/gemm_nt_small.h"
#include "bertfit/error.h"
#include "core/profiler.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"
#include "kernels/rows.h"
#include "model/bert_model.h"

namespace bertfit {

// ELECTRA with embedding_size != hidden_size: hidden[0] = embeddings_project(dropout(LN(sum))), the
// embeddings computed at their own width E into emb_out_.
void BertModel::embeddings_forward() {
  const int64_t C = config_.hidden_size, E = config_.embedding_width();
  float* out = config_.projects_embeddings() ? emb_out_ : hidden_[0];
  BERTFIT_TIMED("embeddings.fwd", {
    if (config_.family == ModelFamily::ROBERTA)
      roberta_position_ids(pos_ids_, ids_, B_, T_, static_cast<int32_t>(config_.pad_token_id));
    else
      bert_position_ids(pos_ids_, B_, T_);
    check_ids("position_ids", pos_ids_, N_, config_.max_position_embeddings);
    embedding_forward(emb_sum_, ids_, pos_ids_, type_ids_, P(emb_off_.word), P(emb_off_.position),
                      P(emb_off_.token_type), N_, E);
  });
  BERTFIT_TIMED("layernorm.fwd", layernorm_forward(out, emb_mean_, emb_rstd_, emb_sum_, P(emb_off_.ln_w),
                                                   P(emb_off_.ln_b), N_, E, config_.layer_norm_eps));
  BERTFIT_TIMED("dropout.fwd",
                dropout_forward(out, out, N_ * E, dropout_p(config_.hidden_dropout_prob), site_key(0)));
  if (config_.projects_embeddings())
    BERTFIT_TIMED("gemm.embeddings_project.fwd",
                  linear_forward(hidden_[0], emb_out_, P(emb_off_.proj_w), P(emb_off_.proj_b), N_, E, C));
}

void BertModel::embeddings_backward(const float* dhidden0) {
  const int64_t C = config_.hidden_size, E = config_.embedding_width();
  float* g = grad_c_;
  if (config_.projects_embeddings()) {
    g = emb_grad_;
    BERTFIT_TIMED("gemm.embeddings_project.bwd",
                  linear_backward(g, G(emb_off_.proj_w), G(emb_off_.proj_b), dhidden0, emb_out_,
                                  P(emb_off_.proj_w), N_, E, C));
    dhidden0 = g;
  }
  BERTFIT_TIMED("dropout.bwd",
                dropout_backward(g, dhidden0, N_ * E, dropout_p(config_.hidden_dropout_prob), site_key(0)));
  BERTFIT_TIMED("layernorm.bwd", layernorm_backward(g, G(emb_off_.ln_w), G(emb_off_.ln_b), g, emb_sum_,
                                                    P(emb_off_.ln_w), emb_mean_, emb_rstd_, N_, E));
  const int32_t pad = static_cast<int32_t>(config_.pad_token_id);
  BERTFIT_TIMED(
      "embeddings.bwd",
      embedding_backward(G(emb_off_.word), G(emb_off_.position), G(emb_off_.token_type), g, ids_, pos_ids_,
                         type_ids_, N_, E, pad, config_.family == ModelFamily::ROBERTA ? pad : -1));
}

void BertModel::set_int8_layers(std::vector<Int8Layer> layers) {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size;
  if (static_cast<int64_t>(layers.size()) != config_.num_hidden_layers)
    throw ConfigError("int8 weights for " + std::to_string(layers.size()) + " layers, the model has " +
                      std::to_string(config_.num_hidden_layers));
  for (const Int8Layer& q : layers)
    if (q.qkv.N() != 3 * C || q.qkv.K() != C || q.attn_out.N() != C || q.attn_out.K() != C ||
        q.inter.N() != I || q.inter.K() != C || q.out.N() != C || q.out.K() != I)
      throw ConfigError("int8 weights of a layer do not have the model's shapes");
  int8_layers_ = std::move(layers);
}

void BertModel::encoder_linear(float* out, const float* inp, int64_t n, size_t w_off, size_t b_off,
                               int64_t IC, int64_t OC, const Int8Weights* q, const Epilogue& ep) {
  if (q)
    gemm_int8(inp, n, IC, *q, P(b_off), out, OC, ep);
  else if (weights_packed_)
    gemm_nt_small_packed(n, OC, IC, inp, IC, P(w_off), P(b_off), false, out, OC, ep);
  else
    linear_forward(out, inp, P(w_off), P(b_off), n, IC, OC, 0, 0, matmul_precision, ep);
}

void BertModel::encoder_linear_rows(float* out, int64_t ld_out, const float* inp, int64_t n, size_t w_off,
                                    size_t b_off, int64_t IC, int64_t OC, int64_t row0, int64_t count) {
  if (!weights_packed_) {
    linear_forward(out, inp, P(w_off) + row0 * IC, P(b_off) + row0, n, IC, count, 0, ld_out,
                   matmul_precision);
    return;
  }
  // A range of whole 48-row blocks (or the last ones) of a packed matrix is itself packed (gemm_nt_small.h).
  if (row0 % kNtSmallBlockRows != 0 || (row0 + count != OC && count % kNtSmallBlockRows != 0))
    throw std::logic_error("encoder_linear_rows: rows " + std::to_string(row0) + "+" + std::to_string(count) +
                           " of a packed [" + std::to_string(OC) + ", " + std::to_string(IC) + "] matrix");
  gemm_nt_small_packed(n, count, IC, inp, IC, P(w_off) + row0 * IC, P(b_off) + row0, false, out, ld_out);
}

bool BertModel::packing_wanted() const {
  if (!pack_weights || arena_use_ != ArenaUse::INFERENCE || matmul_precision != MatmulPrecision::FP32 ||
      !int8_layers_.empty() || !gemm_nt_small_available())
    return false;
  const int64_t C = config_.hidden_size, I = config_.intermediate_size, rows = max_B_ * max_T_;
  // In-place needs the packed size to be the matrix's (whole 6-row tiles: N % 6 == 0); the [CLS]-query
  // layer multiplies Q and K|V as row ranges of Q|K|V, which are packed matrices when C % 48 == 0.
  return C % kNtSmallBlockRows == 0 && I % 6 == 0 && linear_packs_pay(rows, C, 3 * C) &&
         linear_packs_pay(rows, C, C) && linear_packs_pay(rows, C, I) && linear_packs_pay(rows, I, C);
}

namespace {

// Each of layer l's four linear weights: its offset, rows (out) and columns (in).
template <class Offsets, class F>
void for_each_encoder_weight(const Offsets& offsets, int64_t C, int64_t I, F&& f) {
  for (const auto& o : offsets) {
    f(o.qkv_w, 3 * C, C);
    f(o.attn_out_w, C, C);
    f(o.inter_w, I, C);
    f(o.out_w, C, I);
  }
}

}  // namespace

void BertModel::pack_weights_in_place() {
  if (weights_packed_) return;
  std::vector<float> tmp;
  for_each_encoder_weight(layer_off_, config_.hidden_size, config_.intermediate_size,
                          [&](size_t off, int64_t N, int64_t K) {
                            tmp.resize(static_cast<size_t>(nt_small_packed_floats(N, K)));  // == N K
                            nt_small_pack(N, K, params_.data() + off, K, tmp.data());
                            std::copy(tmp.begin(), tmp.end(), params_.data() + off);
                          });
  weights_packed_ = true;
}

// const: a const reader (a model saved through a const reference) must see HF's layout too; the values do not
// change, only their order in the buffer.
void BertModel::unpack_weights() const {
  if (!weights_packed_) return;
  float* p = const_cast<float*>(params_.data());
  std::vector<float> tmp;
  for_each_encoder_weight(layer_off_, config_.hidden_size, config_.intermediate_size,
                          [&](size_t off, int64_t N, int64_t K) {
                            tmp.assign(p + off, p + off + N * K);
                            nt_small_unpack(N, K, tmp.data(), p + off, K);
                          });
  weights_packed_ = false;
}

void BertModel::layer_forward(int64_t l) {
  if (cls_query_only_ && l == top_ - 1) return cls_query_layer_forward(l);
  const float* ctx = attention_block_forward(l);
  if (cls_rows_only_ && l == top_ - 1)
    cls_rows_forward(l, ctx);
  else
    output_block_forward(l, rows_, ctx, hidden_[l], hidden_[l + 1], nullptr);
}

const float* BertModel::attention_block_forward(int64_t l) {
  const int64_t C = config_.hidden_size;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const float* x = hidden_[l];
  // Work buffers: ctx in work_inter_ (dead before the GELU output goes there) or work_c_, which
  // output_block_forward's h1 takes only after the attention output's product has read ctx. Every step runs
  // on rows_ rows: all N_ positions, or the real tokens only (padding-free inference: x and the outputs are
  // then consecutive real-token rows; attention runs on them in place when every mask is a prefix, else its
  // operands move to the [B, T] layout and back: Q|K|V through work_inter_, ctx into work_c_).
  const int64_t n = rows_;
  const bool compact = n < N_;
  float* ctx = work_inter_;
  const Int8Layer* q = int8_layers_.empty() ? nullptr : &int8_layers_[l];

  const bool varlen = compact && prefix_masks_;  // each sequence's rows attend to each other in place
  BERTFIT_TIMED("gemm.qkv.fwd", encoder_linear(compact && !varlen ? work_inter_ : a.qkv, x, n, o.qkv_w,
                                               o.qkv_b, C, 3 * C, q ? &q->qkv : nullptr));
  if (varlen) {
    ctx = work_c_;
    BERTFIT_TIMED("attention.fwd", attention_forward_varlen(ctx, a.qkv, seq_offset_, seq_len_, B_, T_, C,
                                                            config_.num_attention_heads, attn_scratch_));
  } else {
    if (compact)  // padded rows zero: masked keys' probabilities are exactly 0, and 0 x V must not be NaN
      BERTFIT_TIMED("rows.fwd", scatter_rows(a.qkv, work_inter_, real_rows_, n, N_, 3 * C));
    BERTFIT_TIMED("attention.fwd", attention_forward(ctx, /*probs=*/nullptr, a.qkv, mask_,
                                                     {B_, T_, C, config_.num_attention_heads},
                                                     dropout_p(config_.attention_probs_dropout_prob),
                                                     site_key(layer_site(l, 0)), attn_scratch_));
    if (compact) {
      BERTFIT_TIMED("rows.fwd", gather_rows(work_c_, ctx, real_rows_, n, C));
      ctx = work_c_;
    }
  }
  return ctx;
}

void BertModel::output_block_forward(int64_t l, int64_t n, const float* ctx, const float* x, float* out,
                                     const int32_t* drop_rows) {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const float eps = config_.layer_norm_eps;
  const float p_hidden = dropout_p(config_.hidden_dropout_prob);
  const Int8Layer* q = int8_layers_.empty() ? nullptr : &int8_layers_[l];
  // The two dense outputs in scratch_c_, h1 in work_c_, the GELU output in work_inter_.
  float* h1 = work_c_;
  BERTFIT_TIMED("gemm.attn_out.fwd", encoder_linear(scratch_c_, ctx, n, o.attn_out_w, o.attn_out_b, C, C,
                                                    q ? &q->attn_out : nullptr));
  BERTFIT_TIMED("add_layernorm.fwd", dropout_add_layernorm_forward(
                                         h1, a.res1, a.mean1, a.rstd1, scratch_c_, x, n, C, drop_rows,
                                         p_hidden, site_key(layer_site(l, 1)), P(o.ln1_w), P(o.ln1_b), eps));
  // The GELU runs in the product's epilogue (gelu_forward's bits), which also keeps its input, inter_pre,
  // when a backward will need it.
  BERTFIT_TIMED("gemm.ffn_in.fwd",
                encoder_linear(work_inter_, h1, n, o.inter_w, o.inter_b, C, I, q ? &q->inter : nullptr,
                               {EpilogueOp::GELU, training_ ? a.inter_pre : nullptr, 0}));
  BERTFIT_TIMED("gemm.ffn_out.fwd",
                encoder_linear(scratch_c_, work_inter_, n, o.out_w, o.out_b, I, C, q ? &q->out : nullptr));
  BERTFIT_TIMED("add_layernorm.fwd", dropout_add_layernorm_forward(
                                         out, a.res2, a.mean2, a.rstd2, scratch_c_, h1, n, C, drop_rows,
                                         p_hidden, site_key(layer_site(l, 2)), P(o.ln2_w), P(o.ln2_b), eps));
}

const float* BertModel::hidden_for_backward(int64_t l, float* out) {
  if (hidden_kept_[l]) return hidden_[l];
  const LayerOffsets& o = layer_off_[l - 1];
  const LayerActs& a = layers_[l - 1];
  // The forward's call on the same operands: the same bits (the statistics are rewritten with their values).
  BERTFIT_TIMED("layernorm.recompute",
                layernorm_forward(out, a.mean2, a.rstd2, a.res2, P(o.ln2_w), P(o.ln2_b), N_,
                                  config_.hidden_size, config_.layer_norm_eps));
  return out;
}

// dout: gradient w.r.t. hidden[l+1]; writes dinp: gradient w.r.t. hidden[l]. Besides the layer's kept
// activations it uses grad_c_, scratch_c_, work_c_ and work_inter_; what each holds is said step by step.
void BertModel::layer_backward(int64_t l, const float* dout, float* dinp) {
  if (cls_rows_only_ && l == top_ - 1) return cls_rows_backward(l, dout, dinp);
  const int64_t C = config_.hidden_size;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const AttentionShape shape{B_, T_, C, config_.num_attention_heads};
  const float p_attn = dropout_p(config_.attention_probs_dropout_prob);

  // Back to the attention output: the residual gradient reaching x into dinp, the attention output dense's
  // output gradient into grad_c_ (h1 recomputed into work_c_).
  output_block_backward(l, N_, dout, dinp, grad_c_, work_c_, nullptr);
  // Attention output dense, input gradient only: dctx -> scratch_c_. Its weight gradient needs ctx, which the
  // attention backward recomputes (into work_c_) on its way.
  BERTFIT_TIMED("gemm.attn_out.bwd",
                linear_backward(scratch_c_, nullptr, nullptr, grad_c_, nullptr, P(o.attn_out_w), N_, C, C,
                                false, 0, 0, 0, matmul_precision));
  // dqkv -> work_inter_ (N x 3C), probabilities recomputed per head, ctx -> work_c_.
  float* dqkv = work_inter_;
  float* ctx = work_c_;
  BERTFIT_TIMED("attention.bwd",
                attention_backward(dqkv, ctx, scratch_c_, a.qkv, /*probs=*/nullptr, mask_, shape, p_attn,
                                   site_key(layer_site(l, 0)), attn_scratch_));
  BERTFIT_TIMED("gemm.attn_out.bwd",
                linear_backward(nullptr, G(o.attn_out_w), G(o.attn_out_b), grad_c_, ctx, P(o.attn_out_w), N_,
                                C, C, false, 0, 0, 0, matmul_precision));
  qkv_backward(l, dqkv, dinp);
}

void BertModel::output_block_backward(int64_t l, int64_t n, const float* dout, float* dres, float* dattn,
                                      float* h1, const int32_t* drop_rows) {
  const int64_t C = config_.hidden_size, I = config_.intermediate_size;
  const LayerOffsets& o = layer_off_[l];
  const LayerActs& a = layers_[l];
  const float eps = config_.layer_norm_eps;
  const float p_hidden = dropout_p(config_.hidden_dropout_prob);
  // LN2: dres2 -> dattn (it is also the residual gradient reaching h1).
  BERTFIT_TIMED("layernorm.bwd", layernorm_backward(dattn, G(o.ln2_w), G(o.ln2_b), dout, a.res2, P(o.ln2_w),
                                                    a.mean2, a.rstd2, n, C));
  // Through the FFN output dropout into dense2 (dres is free scratch until LN1's backward).
  BERTFIT_TIMED("dropout.bwd", dropout_rows_residual_forward(dres, dattn, nullptr, n, C, drop_rows, p_hidden,
                                                             site_key(layer_site(l, 2))));
  // The GELU output again (work_inter_), and its derivative over inter_pre (not needed after this).
  BERTFIT_TIMED("gelu.recompute", gelu_forward_and_derivative(work_inter_, a.inter_pre, a.inter_pre, n * I));
  // dense2: dW2 += d^T gelu_out first, then d(gelu_out) = d W2 written over the GELU output.
  BERTFIT_TIMED("gemm.ffn_out.bwd", linear_backward(work_inter_, G(o.out_w), G(o.out_b), dres, work_inter_,
                                                    P(o.out_w), n, I, C, false, 0, 0, 0, matmul_precision));
  BERTFIT_TIMED("gelu.bwd", gelu_backward_from_derivative(work_inter_, a.inter_pre, work_inter_, n * I));
  // h1 again, for dense1's weight gradient.
  BERTFIT_TIMED("layernorm.recompute",
                layernorm_forward(h1, a.mean1, a.rstd1, a.res1, P(o.ln1_w), P(o.ln1_b), n, C, eps));
  // dense1: dh1 = dres2 + d(inter_pre) W1, accumulated onto dattn.
  BERTFIT_TIMED("gemm.ffn_in.bwd",
                linear_backward(dattn, G(o.inter_w), G(o.inter_b), work_inter_, h1, P(o.inter_w), n, C, I,
                                /*accumulate_dinp=*/true, 0, 0, 0, matmul_precision));
  // LN1: dres1 -> dres (the residual gradient reaching x), then through the attention output's dropout.
  BERTFIT_TIMED("layernorm.bwd", layernorm_backward(dres, G(o.ln1_w), G(o.ln1_b), dattn, a.res1, P(o.ln1_w),
                                                    a.mean1, a.rstd1, n, C));
  BERTFIT_TIMED("dropout.bwd", dropout_rows_residual_forward(dattn, dres, nullptr, n, C, drop_rows, p_hidden,
                                                             site_key(layer_site(l, 1))));
}

void BertModel::qkv_backward(int64_t l, const float* dqkv, float* dinp) {
  const int64_t C = config_.hidden_size;
  const LayerOffsets& o = layer_off_[l];
  // Fused QKV: dx += dqkv Wqkv; dWqkv += dqkv^T x; dbqkv += colsum(dqkv) (Q|K|V weights and biases are
  // adjacent). x: hidden[l], recomputed into scratch_c_ (dctx is dead) when it was not kept.
  const float* x = hidden_for_backward(l, scratch_c_);
  BERTFIT_TIMED("gemm.qkv.bwd",
                linear_backward(dinp, G(o.qkv_w), G(o.qkv_b), dqkv, x, P(o.qkv_w), N_, C, 3 * C,
                                /*accumulate_dinp=*/true, 0, 0, 0, matmul_precision));
}

}  // namespace bertfit
