#include "kernels/attention.h"

#include <omp.h>

#include <cmath>

#include "backend/cpu/gemm.h"
#include "core/profiler.h"
#include "core/rng.h"

namespace bertfit {

int64_t attention_scratch_floats(int64_t T, int num_threads) {
  return 2 * T * T * num_threads;
}

namespace {
// Index of element (i, j) of head h of batch b in the flattened probs tensor: the dropout counter, so the
// mask of an element is the same in forward and backward.
inline uint64_t prob_index(const AttentionShape& s, int64_t b, int64_t h, int64_t i, int64_t j) {
  return static_cast<uint64_t>(((b * s.NH + h) * s.T + i) * s.T + j);
}
}  // namespace

void attention_forward(float* ctx, float* probs, const float* qkv, const uint8_t* mask,
                       const AttentionShape& s, float p, uint64_t key, float* scratch) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * NH; ++bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const float* q = qkv + b * T * C3 + h * HS;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* P = probs + bh * T * T;
    const uint8_t* m = mask + b * T;
    // HF computes (Q K^T) / sqrt(HS); scaling the product in the GEMM (alpha) rounds the same way per element
    // up to the last bit, well inside the parity tolerance.
    {
      BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/scores_gemm");
      gemm(false, true, T, T, HS, scale, q, C3, k, C3, 0.0f, P, T);
    }
    BERTFIT_PROFILE_THREAD_SCOPE("attention.fwd/softmax_dropout_pv");
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
    const float* Pd = P;
    if (p > 0) {
      float* tmp = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * T * T;
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j)
          tmp[i * T + j] =
              counter_uniform(key, prob_index(s, b, h, i, j)) >= p ? P[i * T + j] * keep_scale : 0.0f;
      Pd = tmp;
    }
    gemm(false, false, T, HS, T, 1.0f, Pd, T, v, C3, 0.0f, ctx + b * T * C + h * HS, C);
  }
}

void attention_backward(float* dqkv, const float* dctx, const float* qkv, const float* probs,
                        const AttentionShape& s, float p, uint64_t key, float* scratch) {
  const int64_t B = s.B, T = s.T, C = s.C, NH = s.NH, HS = s.head_size(), C3 = 3 * C;
  const float scale = 1.0f / std::sqrt(static_cast<float>(HS));
  const float keep_scale = p > 0 ? 1.0f / (1.0f - p) : 1.0f;
#pragma omp parallel for schedule(static)
  for (int64_t bh = 0; bh < B * NH; ++bh) {
    const int64_t b = bh / NH, h = bh % NH;
    const float* q = qkv + b * T * C3 + h * HS;
    const float* k = q + C;
    const float* v = q + 2 * C;
    float* dq = dqkv + b * T * C3 + h * HS;
    float* dk = dq + C;
    float* dv = dq + 2 * C;
    const float* P = probs + bh * T * T;
    const float* dO = dctx + b * T * C + h * HS;
    float* dP = scratch + static_cast<int64_t>(omp_get_thread_num()) * 2 * T * T;
    float* Pd = dP + T * T;
    // Pd: the dropped-out probabilities as forward used them.
    if (p > 0) {
      for (int64_t i = 0; i < T; ++i)
        for (int64_t j = 0; j < T; ++j)
          Pd[i * T + j] =
              counter_uniform(key, prob_index(s, b, h, i, j)) >= p ? P[i * T + j] * keep_scale : 0.0f;
    } else {
      Pd = const_cast<float*>(P);  // read only below
    }
    // dV = Pd^T dO ; dPd = dO V^T
    gemm(true, false, T, HS, T, 1.0f, Pd, T, dO, C, 0.0f, dv, C3);
    gemm(false, true, T, T, HS, 1.0f, dO, C, v, C3, 0.0f, dP, T);
    // Through dropout, then softmax: dS = P * (dP - sum_j dP*P), then the 1/sqrt(HS) scale.
    for (int64_t i = 0; i < T; ++i) {
      float* d = dP + i * T;
      const float* pr = P + i * T;
      if (p > 0)
        for (int64_t j = 0; j < T; ++j)
          d[j] = counter_uniform(key, prob_index(s, b, h, i, j)) >= p ? d[j] * keep_scale : 0.0f;
      float dot = 0;
      for (int64_t j = 0; j < T; ++j) dot += d[j] * pr[j];
      for (int64_t j = 0; j < T; ++j) d[j] = pr[j] * (d[j] - dot) * scale;
    }
    // dQ = dS K ; dK = dS^T Q
    gemm(false, false, T, HS, T, 1.0f, dP, T, k, C3, 0.0f, dq, C3);
    gemm(true, false, T, HS, T, 1.0f, dP, T, q, C3, 0.0f, dk, C3);
  }
}

}  // namespace bertfit
