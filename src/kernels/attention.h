// Multi-head self-attention core (between the fused QKV projection and the output dense layer):
//
//   S = Q K^T / sqrt(HS) (+ mask: padded keys get probability exactly 0), P = softmax(S), Pd = dropout(P),
//   ctx = Pd V, heads concatenated back into [B,T,C].
//
// qkv[B,T,3C] holds Q | K | V per token (head h of Q at columns h*HS .. h*HS+HS-1), so each head's matrices
// are read in place with a row stride of 3C: no head-split copies. One task per (batch, head); its products
// run serially in the task through head_gemm (kernels/head_gemm.h: AVX-512 tiles without packing, else
// gemm(), which runs serially inside a parallel region; the same bits either way).
//
// Masking: HF adds finfo(float32).min to the scores of padded keys; after the max-subtraction exp() of that
// is exactly 0 in fp32, so zeroing those probabilities is the same maths without the huge constant.
#pragma once

#include <cstdint>

namespace bertfit {

struct AttentionShape {
  int64_t B, T, C, NH;
  int64_t head_size() const { return C / NH; }
};

// Floats of scratch the fast kernels need: 3*T*T + T + 16 per thread.
int64_t attention_scratch_floats(int64_t T, int num_threads);

// ctx[B,T,C] (written); mask[B,T] 1 = token, 0 = pad. probs[B,NH,T,T]: where to save the pre-dropout
// probabilities, or null to keep them only per (batch, head) in scratch (the model does: the backward
// recomputes them, which costs one T x T x HS GEMM and a softmax per head and saves B*NH*T*T floats per
// layer). key: dropout key of this layer's attention probabilities (ignored when p == 0).
void attention_forward(float* ctx, float* probs, const float* qkv, const uint8_t* mask,
                       const AttentionShape& s, float p, uint64_t key, float* scratch);
// dqkv[B,T,3C] (written) from dctx[B,T,C]; the dropout mask is regenerated from key. probs: the forward's
// saved probabilities, or null to recompute them from qkv and mask (the same code on the same operands: the
// same bits as the forward's). ctx: if not null, the forward's ctx[B,T,C] is written again (one more
// T x HS x T GEMM per head), for callers that do not keep it between forward and backward.
void attention_backward(float* dqkv, float* ctx, const float* dctx, const float* qkv, const float* probs,
                        const uint8_t* mask, const AttentionShape& s, float p, uint64_t key, float* scratch);

// Padding-free inference (no dropout, no saved probabilities): sequence b is rows [offset[b], offset[b] +
// len[b]) of qkv [rows, 3C] and of ctx [rows, C] (written there; other rows untouched), its tokens attending
// to each other only: what attention_forward computes for a [B, T] batch whose sequence b has a mask of
// len[b] ones then zeros, bit for bit for the real rows (the same score chains over HS; each softmax row over
// the keys up to len rounded up to 8, or T, with the masked ones at exactly 0 as there; each context chain
// over the len real keys, where the padded one adds only zero products after them). T: that padded batch's
// length (>= every len); scratch as for attention_forward with that T.
void attention_forward_varlen(float* ctx, const float* qkv, const int32_t* offset, const int32_t* len,
                              int64_t B, int64_t T, int64_t C, int64_t NH, float* scratch);

// The first query of each sequence only ([CLS]: what a sequence classifier's last layer needs,
// model/cls_rows_layer.cpp), bit for bit the first rows of the kernels above:
// - attention_forward_first_query: ctx_first[B, C] (row b: sequence b's position 0) from qkv[B, T, 3C], whose
//   Q is read at each sequence's first row only (the other rows' Q need not have been computed); dropout as
//   attention_forward's (the same mask elements).
// - attention_forward_varlen_first_query: the same for attention_forward_varlen's layout (row offset[b]).
// - attention_backward_first_query: attention_backward for a dctx that is zero outside each sequence's first
//   row, from dctx_first[B, C]: dqkv's K and V columns on every row (exactly attention_backward's values, up
//   to a zero's sign), its Q columns on each sequence's first row only (the other rows' are +0 there, and
//   are left unwritten here); ctx_first[B, C], if not null, gets the forward's output again.
void attention_forward_first_query(float* ctx_first, const float* qkv, const uint8_t* mask,
                                   const AttentionShape& s, float p, uint64_t key, float* scratch);
void attention_forward_varlen_first_query(float* ctx_first, const float* qkv, const int32_t* offset,
                                          const int32_t* len, int64_t B, int64_t T, int64_t C, int64_t NH,
                                          float* scratch);
void attention_backward_first_query(float* dqkv, float* ctx_first, const float* dctx_first, const float* qkv,
                                    const uint8_t* mask, const AttentionShape& s, float p, uint64_t key,
                                    float* scratch);

// Plain single-threaded loops with gemm_reference and std::exp: the oracle of the fast kernels (no scratch).
void attention_forward_reference(float* ctx, float* probs, const float* qkv, const uint8_t* mask,
                                 const AttentionShape& s, float p, uint64_t key);
void attention_backward_reference(float* dqkv, const float* dctx, const float* qkv, const float* probs,
                                  const AttentionShape& s, float p, uint64_t key);

}  // namespace bertfit
