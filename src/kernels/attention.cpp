// Multi-head attention core (see attention.h). The fast kernels vectorise the masked softmax (AVX-512 rows
// where it runs, AVX2 otherwise: the same bits) and its backward (AVX2) with core/vec_math*.h's exp, keep one
// (batch, head) per task so its T x T block stays in L2 between the score GEMM, the softmax, dropout and the
// PV GEMM, and in backward generate the dropout mask once (the reference regenerates it twice).
// attention_forward_reference / attention_backward_reference are the plain loops they are tested against
// (tests/kernels/fast_kernels_test.cpp).
#include "kernels/attention.h"
#include "core/threading.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/gemm.h"
#include "core/cpu_features.h"
#include "core/profiler.h"
#include "core/rng.h"
#include "core/vec_math.h"
#include "core/vec_math512.h"
#include "kernels/dropout.h"
#include "kernels/head_gemm.h"

namespace bertfit {

// Per thread: three T x T blocks (probabilities, dropped-out probabilities, the probability gradient) and a
// row of T key flags.
namespace {
int64_t head_scratch_floats(int64_t T) {
  return 3 * T * T + T + 16;
}
}  // namespace

int64_t attention_scratch_floats(int64_t T, int num_threads) {
  return head_scratch_floats(T) * num_threads;
}

namespace {

// Index of element (i, j) of head h of batch b in the flattened probs tensor: the dropout counter, so the
// mask of an element is the same in forward and backward.
inline uint64_t prob_index(const AttentionShape& s, int64_t b, int64_t h, int64_t i, int64_t j) {
  return static_cast<uint64_t>(((b * s.NH + h) * s.T + i) * s.T + j);
}

// Head h's Q, K and V (or their gradients) in a [rows, 3C] Q|K|V tensor, from the row `row0` of its sequence:
// each a [T, HS] block with row stride 3C.
template <class F>
struct HeadQkv {
  F *q, *k, *v;
};
template <class F>
HeadQkv<F> head_qkv(F* qkv, int64_t row0, int64_t h, int64_t C, int64_t HS) {
  F* q = qkv + row0 * 3 * C + h * HS;
  return {q, q + C, q + 2 * C};
}

// A softmax row's tail, elements [j, T) (fewer than 8): exp(row - mx) where kept (0 elsewhere), the vector
// bodies' expressions on one element, written back and added to the 8-lane sum as one more 8-float block
// (zeros past T) before the lanes are summed. Returns 1 / the row's sum. As a block, not one by one after the
// lanes: the row's sum then does not depend on T, only on the kept keys, so an example's probabilities are
// the same bits alone (T = its length) and padded to a longer T in a batch (masked keys add exact zeros in
// the same lanes): bertfit predict's outputs do not depend on --batch_size.
inline float exp_tail_inverse_sum(float* row, const float* keep, int64_t j, int64_t T, float mx,
                                  __m256 vsum) {
  alignas(32) float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (int64_t t = j; t < T; ++t) {
    const float e = keep[t] != 0.0f ? vec::exp_scalar(row[t] - mx) : 0.0f;
    row[t] = e;
    tail[t - j] = e;
  }
  if (j < T) vsum = _mm256_add_ps(vsum, _mm256_load_ps(tail));
  return 1.0f / vec::hsum_ps(vsum);
}

// row = softmax(row) over the keys with keep[j] = 1; keys with keep[j] = 0 get exactly 0 (see attention.h).
// Scalar tail computes the same expressions as the vector body.
void masked_softmax_row_avx2(float* row, const float* keep, int64_t T) {
  const __m256 ninf = _mm256_set1_ps(-INFINITY);
  __m256 vmx = ninf;
  int64_t j = 0;
  for (; j + 8 <= T; j += 8) {
    const __m256 k = _mm256_loadu_ps(keep + j);
    vmx = _mm256_max_ps(vmx, _mm256_blendv_ps(ninf, _mm256_loadu_ps(row + j),
                                              _mm256_cmp_ps(k, _mm256_setzero_ps(), _CMP_NEQ_OQ)));
  }
  float mx = vec::hmax_ps(vmx);
  for (int64_t t = j; t < T; ++t)
    if (keep[t] != 0.0f && row[t] > mx) mx = row[t];
  const __m256 vm = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= T; j += 8) {
    const __m256 e =
        _mm256_mul_ps(vec::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm)), _mm256_loadu_ps(keep + j));
    _mm256_storeu_ps(row + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  const float inv = exp_tail_inverse_sum(row, keep, j, T, mx, vsum);
  const __m256 vinv = _mm256_set1_ps(inv);
  for (j = 0; j + 8 <= T; j += 8) _mm256_storeu_ps(row + j, _mm256_mul_ps(_mm256_loadu_ps(row + j), vinv));
  for (; j < T; ++j) row[j] *= inv;
}

// The same row with 16 lanes for the max, the exps and the normalisation, and the same bits: the max is
// exact in any order; each element's exp and product are exp_ps's operations (core/vec_math512.h); the sum
// keeps masked_softmax_row_avx2's order (an 8-lane accumulator that adds each 16-float block's low half,
// then its high half, then one 8-float block if T % 16 >= 8, then the tail as an 8-float block). exp is most
// of a softmax row's cost: with 16 lanes BERT-base's attention forward at batch 8 went from 24 to 22 ms on
// Zen 5 (docs/benchmarks.md).
BERTFIT_AVX512 void masked_softmax_row_avx512(float* row, const float* keep, int64_t T) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  __m512 vmx = ninf;
  int64_t j = 0;
  for (; j + 16 <= T; j += 16) {
    const __mmask16 k = _mm512_cmp_ps_mask(_mm512_loadu_ps(keep + j), _mm512_setzero_ps(), _CMP_NEQ_OQ);
    vmx = _mm512_mask_max_ps(vmx, k, vmx, _mm512_loadu_ps(row + j));
  }
  float mx = _mm512_reduce_max_ps(vmx);
  for (int64_t t = j; t < T; ++t)
    if (keep[t] != 0.0f && row[t] > mx) mx = row[t];
  const __m512 vm = _mm512_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 16 <= T; j += 16) {
    const __m512 e =
        _mm512_mul_ps(vec::exp_ps512(_mm512_sub_ps(_mm512_loadu_ps(row + j), vm)), _mm512_loadu_ps(keep + j));
    _mm512_storeu_ps(row + j, e);
    vsum = _mm256_add_ps(vsum, _mm512_castps512_ps256(e));
    vsum = _mm256_add_ps(vsum, _mm512_extractf32x8_ps(e, 1));
  }
  if (j + 8 <= T) {
    const __m256 e = _mm256_mul_ps(vec::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row + j), _mm256_set1_ps(mx))),
                                   _mm256_loadu_ps(keep + j));
    _mm256_storeu_ps(row + j, e);
    vsum = _mm256_add_ps(vsum, e);
    j += 8;
  }
  const float inv = exp_tail_inverse_sum(row, keep, j, T, mx, vsum);
  const __m512 vinv = _mm512_set1_ps(inv);
  for (j = 0; j + 16 <= T; j += 16) _mm512_storeu_ps(row + j, _mm512_mul_ps(_mm512_loadu_ps(row + j), vinv));
  for (; j < T; ++j) row[j] *= inv;
}

void masked_softmax_row(float* row, const float* keep, int64_t T) {
  if (use_avx512())
    masked_softmax_row_avx512(row, keep, T);
  else
    masked_softmax_row_avx2(row, keep, T);
}

// d = P * (d - sum_j d P) * scale (softmax backward of one row, with the score scale folded in).
void softmax_backward_row(float* d, const float* pr, int64_t T, float scale) {
  __m256 vdot = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= T; j += 8) vdot = _mm256_fmadd_ps(_mm256_loadu_ps(d + j), _mm256_loadu_ps(pr + j), vdot);
  float dot = vec::hsum_ps(vdot);
  for (int64_t t = j; t < T; ++t) dot += d[t] * pr[t];
  const __m256 vd = _mm256_set1_ps(dot), vs = _mm256_set1_ps(scale);
  for (j = 0; j + 8 <= T; j += 8) {
    const __m256 r =
        _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(pr + j), _mm256_sub_ps(_mm256_loadu_ps(d + j), vd)), vs);
    _mm256_storeu_ps(d + j, r);
  }
  for (; j < T; ++j) d[j] = pr[j] * (d[j] - dot) * scale;
}

// One row of the probabilities' gradient, from dPd (the gradient of the dropped-out probabilities, in d) to
// dS (written over it). Through dropout (pd: that row of Pd, or null without dropout): dP = mask * keep_scale
// * dPd. Where P > 0 the mask is (Pd != 0) (a kept P times keep_scale >= 1 is never 0); where P == 0 the
// element's dS is P * (...) = 0 whatever dP is, so the mask does not need to be known there. Then softmax:
// dS = P * (dP - sum_j dP P), times the 1/sqrt(HS) scale.
void dropout_softmax_backward_row(float* d, const float* pr, const float* pd, int64_t T, float keep_scale,
                                  float scale) {
  if (pd) {
    const __m256 vk = _mm256_set1_ps(keep_scale), zero = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= T; j += 8) {
      const __m256 kept = _mm256_cmp_ps(_mm256_loadu_ps(pd + j), zero, _CMP_NEQ_OQ);
      _mm256_storeu_ps(d + j, _mm256_and_ps(kept, _mm256_mul_ps(_mm256_loadu_ps(d + j), vk)));
    }
    for (; j < T; ++j) d[j] = pd[j] != 0.0f ? d[j] * keep_scale : 0.0f;
  }
  softmax_backward_row(d, pr, T, scale);
}

// P[rows,T] = masked softmax(Q K^T / sqrt(HS)) of one (batch, head), for its first `rows` queries (T: all of
// them; 1: the first-query kernels below, whose row is the full block's first, bit for bit: each score is its
// own chain over HS whatever the rows, and each softmax row its own computation): the forward's computation,
// also used by the backward to recompute the probabilities bitwise identically instead of storing them.
void head_probabilities(float* P, const float* q, const float* k, const float* keep, int64_t rows, int64_t T,
                        int64_t HS, int64_t ld_qk, float scale) {
  // HF computes (Q K^T) / sqrt(HS); scaling in the GEMM (alpha) rounds the same way up to the last bit.
  head_gemm(false, true, rows, T, HS, scale, q, ld_qk, k, ld_qk, 0.0f, P, T);
  for (int64_t i = 0; i < rows; ++i) masked_softmax_row(P + i * T, keep, T);
}

// Per-thread scratch of the fast kernels: three T x T blocks and the key flags of the current batch row.
struct HeadScratch {
  float *a, *b, *c, *keep;
  HeadScratch(float* scratch, int64_t T) {
    float* base = scratch + static_cast<int64_t>(thread_index()) * head_scratch_floats(T);
    a = base;
    b = a + T * T;
    c = b + T * T;
    keep = c + T * T;
  }
};

}  // namespace

void attention_forward(float* ctx, float* probs, const float* qkv, const uint8_t* mask,
                       const AttentionShape& s, float p, uint64_t key, float* scratch) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  parallel_for(0, B * NH, B * NH * T * T * HS >= kParallelMinWork, [&](int64_t bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const auto [q, k, v] = head_qkv(qkv, b * T, h, C, HS);
    HeadScratch tmp(scratch, T);
    float* P = probs ? probs + bh * T * T : tmp.a;
    for (int64_t j = 0; j < T; ++j) tmp.keep[j] = mask[b * T + j] ? 1.0f : 0.0f;
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/probs");
      head_probabilities(P, q, k, tmp.keep, T, T, HS, C3, scale);
    }
    const float* Pd = P;
    if (p > 0) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/dropout");
      for (int64_t i = 0; i < T; ++i)
        dropout_span(tmp.b + i * T, P + i * T, nullptr, T, p, key, prob_index(s, b, h, i, 0));
      Pd = tmp.b;
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/pv_gemm");
    head_gemm(false, false, T, HS, T, 1.0f, Pd, T, v, C3, 0.0f, ctx + b * T * C + h * HS, C);
  });
}

void attention_forward_varlen(float* ctx, const float* qkv, const int32_t* offset, const int32_t* len,
                              int64_t B, int64_t T, int64_t C, int64_t NH, float* scratch) {
  const int64_t HS = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  int64_t work = 0;
  for (int64_t b = 0; b < B; ++b) work += int64_t{len[b]} * len[b] * NH * HS;
  parallel_for_dynamic(0, B * NH, 1, work >= kParallelMinWork, [&](int64_t bh) {
    const int64_t b = bh / NH, h = bh % NH, n = len[b];
    if (n == 0) return;
    // The softmax's width: the padded forward's vector chunks of 8 keys up to the last real key (the rest of
    // its row is masked chunks adding exactly 0), or all T keys when that chunk reaches past T (its scalar
    // tail then holds real keys, summed in the same order here).
    const int64_t width = std::min<int64_t>((n + 7) / 8 * 8, T);
    const auto [q, k, v] = head_qkv(qkv, offset[b], h, C, HS);
    HeadScratch tmp(scratch, T);
    float* P = tmp.a;  // [n, width]
    for (int64_t j = 0; j < width; ++j) tmp.keep[j] = j < n ? 1.0f : 0.0f;
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/probs");
      head_gemm(false, true, n, n, HS, scale, q, C3, k, C3, 0.0f, P, width);
      for (int64_t i = 0; i < n; ++i) {
        std::fill(P + i * width + n, P + (i + 1) * width, 0.0f);  // masked: any finite score gives 0
        masked_softmax_row(P + i * width, tmp.keep, width);
      }
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/pv_gemm");
    head_gemm(false, false, n, HS, n, 1.0f, P, width, v, C3, 0.0f, ctx + int64_t{offset[b]} * C + h * HS, C);
  });
}

void attention_backward(float* dqkv, float* ctx, const float* dctx, const float* qkv, const float* probs,
                        const uint8_t* mask, const AttentionShape& s, float p, uint64_t key, float* scratch) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
  parallel_for(0, B * NH, B * NH * T * T * HS >= kParallelMinWork, [&](int64_t bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const auto [q, k, v] = head_qkv(qkv, b * T, h, C, HS);
    const auto [dq, dk, dv] = head_qkv(dqkv, b * T, h, C, HS);
    const float* dO = dctx + b * T * C + h * HS;
    HeadScratch tmp(scratch, T);
    float* dP = tmp.a;
    float* Pd = tmp.b;
    const float* P = probs ? probs + bh * T * T : tmp.c;
    if (!probs) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/probs_recompute");
      for (int64_t j = 0; j < T; ++j) tmp.keep[j] = mask[b * T + j] ? 1.0f : 0.0f;
      head_probabilities(tmp.c, q, k, tmp.keep, T, T, HS, C3, scale);
    }
    if (p > 0) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/dropout");
      // Pd: the dropped-out probabilities as forward used them (the mask regenerated once from its key).
      for (int64_t i = 0; i < T; ++i)
        dropout_span(Pd + i * T, P + i * T, nullptr, T, p, key, prob_index(s, b, h, i, 0));
    } else {
      Pd = const_cast<float*>(P);  // read only below
    }
    if (ctx) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/ctx_recompute");
      // The forward's output again (same operands, same call: the same bits), for callers that do not keep
      // it.
      head_gemm(false, false, T, HS, T, 1.0f, Pd, T, v, C3, 0.0f, ctx + b * T * C + h * HS, C);
    }
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/dv_dp_gemm");
      // dV = Pd^T dO ; dPd = dO V^T
      head_gemm(true, false, T, HS, T, 1.0f, Pd, T, dO, C, 0.0f, dv, C3);
      head_gemm(false, true, T, T, HS, 1.0f, dO, C, v, C3, 0.0f, dP, T);
    }
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/softmax");
      for (int64_t i = 0; i < T; ++i)
        dropout_softmax_backward_row(dP + i * T, P + i * T, p > 0 ? Pd + i * T : nullptr, T, keep_scale,
                                     scale);
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/dq_dk_gemm");
    // dQ = dS K ; dK = dS^T Q
    head_gemm(false, false, T, HS, T, 1.0f, dP, T, k, C3, 0.0f, dq, C3);
    head_gemm(true, false, T, HS, T, 1.0f, dP, T, q, C3, 0.0f, dk, C3);
  });
}

// ---- the first query of each sequence only (see attention.h) ----

void attention_forward_first_query(float* ctx_first, const float* qkv, const uint8_t* mask,
                                   const AttentionShape& s, float p, uint64_t key, float* scratch) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  parallel_for(0, B * NH, B * NH * T * HS >= kParallelMinWork, [&](int64_t bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const auto [q, k, v] = head_qkv(qkv, b * T, h, C, HS);
    HeadScratch tmp(scratch, T);
    for (int64_t j = 0; j < T; ++j) tmp.keep[j] = mask[b * T + j] ? 1.0f : 0.0f;
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/probs");
      head_probabilities(tmp.a, q, k, tmp.keep, 1, T, HS, C3, scale);
    }
    const float* Pd = tmp.a;
    if (p > 0) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/dropout");
      dropout_span(tmp.b, tmp.a, nullptr, T, p, key, prob_index(s, b, h, 0, 0));
      Pd = tmp.b;
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/pv_gemm");
    head_gemm(false, false, 1, HS, T, 1.0f, Pd, T, v, C3, 0.0f, ctx_first + b * C + h * HS, C);
  });
}

void attention_forward_varlen_first_query(float* ctx_first, const float* qkv, const int32_t* offset,
                                          const int32_t* len, int64_t B, int64_t T, int64_t C, int64_t NH,
                                          float* scratch) {
  const int64_t HS = C / NH, C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  int64_t work = 0;
  for (int64_t b = 0; b < B; ++b) work += int64_t{len[b]} * NH * HS;
  parallel_for(0, B * NH, work >= kParallelMinWork, [&](int64_t bh) {
    const int64_t b = bh / NH, h = bh % NH, n = len[b];
    if (n == 0) return;
    const int64_t width = std::min<int64_t>((n + 7) / 8 * 8, T);  // attention_forward_varlen's (see there)
    const auto [q, k, v] = head_qkv(qkv, offset[b], h, C, HS);
    HeadScratch tmp(scratch, T);
    float* P = tmp.a;  // [1, width]
    for (int64_t j = 0; j < width; ++j) tmp.keep[j] = j < n ? 1.0f : 0.0f;
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/probs");
      head_gemm(false, true, 1, n, HS, scale, q, C3, k, C3, 0.0f, P, width);
      std::fill(P + n, P + width, 0.0f);
      masked_softmax_row(P, tmp.keep, width);
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/pv_gemm");
    head_gemm(false, false, 1, HS, n, 1.0f, P, width, v, C3, 0.0f, ctx_first + b * C + h * HS, C);
  });
}

// attention_backward with dctx zero outside each sequence's first row. In that computation every row i > 0 of
// dPd = dO V^T is a chain of +0 products, so +0; so are that row's dS (P >= 0 times +0) and, from them, dQ's
// rows i > 0 (written here as nothing: the caller reads Q's gradient at the first rows only). dV = Pd^T dO
// and dK = dS^T Q are chains over the queries i whose terms past i = 0 are Pd[i][j] * +0 and +0 * Q[i][d],
// zeros that leave the sum of the first term unchanged (a sum never reaches -0 from +0), so the K = 1
// products below give their bits; the first row's dPd, dS and dQ are the full block's first rows'.
void attention_backward_first_query(float* dqkv, float* ctx_first, const float* dctx_first, const float* qkv,
                                    const uint8_t* mask, const AttentionShape& s, float p, uint64_t key,
                                    float* scratch) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
  parallel_for(0, B * NH, B * NH * T * HS >= kParallelMinWork, [&](int64_t bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const auto [q, k, v] = head_qkv(qkv, b * T, h, C, HS);
    const auto [dq, dk, dv] = head_qkv(dqkv, b * T, h, C, HS);
    const float* dO = dctx_first + b * C + h * HS;
    HeadScratch tmp(scratch, T);
    float* P = tmp.c;
    float* dP = tmp.a;
    const float* Pd = P;
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/probs_recompute");
      for (int64_t j = 0; j < T; ++j) tmp.keep[j] = mask[b * T + j] ? 1.0f : 0.0f;
      head_probabilities(P, q, k, tmp.keep, 1, T, HS, C3, scale);
    }
    if (p > 0) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/dropout");
      dropout_span(tmp.b, P, nullptr, T, p, key, prob_index(s, b, h, 0, 0));
      Pd = tmp.b;
    }
    if (ctx_first) {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/ctx_recompute");
      head_gemm(false, false, 1, HS, T, 1.0f, Pd, T, v, C3, 0.0f, ctx_first + b * C + h * HS, C);
    }
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/dv_dp_gemm");
      head_gemm(true, false, T, HS, 1, 1.0f, Pd, T, dO, C, 0.0f, dv, C3);  // dV[j] = Pd[0][j] dO[0]
      head_gemm(false, true, 1, T, HS, 1.0f, dO, C, v, C3, 0.0f, dP, T);
    }
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/softmax");
      dropout_softmax_backward_row(dP, P, p > 0 ? Pd : nullptr, T, keep_scale, scale);
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.bwd/dq_dk_gemm");
    head_gemm(false, false, 1, HS, T, 1.0f, dP, T, k, C3, 0.0f, dq, C3);
    head_gemm(true, false, T, HS, 1, 1.0f, dP, T, q, C3, 0.0f, dk, C3);  // dK[j] = dS[0][j] Q[0]
  });
}

// ---- reference versions: the straightforward loops (scalar std::exp, masks regenerated where used) ----

void attention_forward_reference(float* ctx, float* probs, const float* qkv, const uint8_t* mask,
                                 const AttentionShape& s, float p, uint64_t key) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
  std::vector<float> tmp(T * T);
  for (int64_t bh = 0; bh < B * NH; ++bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const auto [q, k, v] = head_qkv(qkv, b * T, h, C, HS);
    float* P = probs + bh * T * T;
    const uint8_t* m = mask + b * T;
    gemm_reference(false, true, T, T, HS, scale, q, C3, k, C3, 0.0f, P, T);
    for (int64_t i = 0; i < T; ++i) {
      float* row = P + i * T;
      float mx = -INFINITY;
      for (int64_t j = 0; j < T; ++j)
        if (m[j]) mx = row[j] > mx ? row[j] : mx;
      float sum = 0;
      for (int64_t j = 0; j < T; ++j) {
        const float e = m[j] ? std::exp(row[j] - mx) : 0.0f;
        row[j] = e;
        sum += e;
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < T; ++j) row[j] *= inv;
    }
    for (int64_t i = 0; i < T * T; ++i)
      tmp[i] =
          p > 0 && counter_uniform(key, prob_index(s, b, h, i / T, i % T)) < p ? 0.0f : P[i] * keep_scale;
    gemm_reference(false, false, T, HS, T, 1.0f, tmp.data(), T, v, C3, 0.0f, ctx + b * T * C + h * HS, C);
  }
}

void attention_backward_reference(float* dqkv, const float* dctx, const float* qkv, const float* probs,
                                  const AttentionShape& s, float p, uint64_t key) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
  std::vector<float> Pd(T * T), dP(T * T);
  for (int64_t bh = 0; bh < B * NH; ++bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const auto [q, k, v] = head_qkv(qkv, b * T, h, C, HS);
    float* dq = dqkv + b * T * C3 + h * HS;
    const float* P = probs + bh * T * T;
    const float* dO = dctx + b * T * C + h * HS;
    auto kept = [&](int64_t i) {
      return !(p > 0) || counter_uniform(key, prob_index(s, b, h, i / T, i % T)) >= p;
    };
    for (int64_t i = 0; i < T * T; ++i) Pd[i] = kept(i) ? P[i] * keep_scale : 0.0f;
    gemm_reference(true, false, T, HS, T, 1.0f, Pd.data(), T, dO, C, 0.0f, dq + 2 * C, C3);
    gemm_reference(false, true, T, T, HS, 1.0f, dO, C, v, C3, 0.0f, dP.data(), T);
    for (int64_t i = 0; i < T; ++i) {
      float* d = dP.data() + i * T;
      const float* pr = P + i * T;
      for (int64_t j = 0; j < T; ++j) d[j] = kept(i * T + j) ? d[j] * keep_scale : 0.0f;
      float dot = 0;
      for (int64_t j = 0; j < T; ++j) dot += d[j] * pr[j];
      for (int64_t j = 0; j < T; ++j) d[j] = pr[j] * (d[j] - dot) * scale;
    }
    gemm_reference(false, false, T, HS, T, 1.0f, dP.data(), T, k, C3, 0.0f, dq, C3);
    gemm_reference(true, false, T, HS, T, 1.0f, dP.data(), T, q, C3, 0.0f, dq + C, C3);
  }
}

}  // namespace bertfit
