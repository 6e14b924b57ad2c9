#include "kernels/layernorm.h"

#include <algorithm>
#include <cmath>

#include "kernels/reduce.h"

namespace bertfit {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t N, int64_t C, float eps) {
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    // Two passes in float, as torch's CPU kernel accumulates; double would drift from the reference by ~1e-7.
    float m = 0;
    for (int64_t c = 0; c < C; ++c) m += x[c];
    m /= static_cast<float>(C);
    float v = 0;
    for (int64_t c = 0; c < C; ++c) {
      const float d = x[c] - m;
      v += d * d;
    }
    v /= static_cast<float>(C);
    const float s = 1.0f / std::sqrt(v + eps);
    float* o = out + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * w[c] + b[c];
    mean[n] = m;
    rstd[n] = s;
  }
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                        const float* mean, const float* rstd, int64_t N, int64_t C) {
  // Parameter gradients first (dinp may alias dout): column-parallel so the row sums are deterministic.
  const int64_t nblocks = (C + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kColumnBlock, c1 = std::min(C, c0 + kColumnBlock);
    float acc_w[kColumnBlock] = {0}, acc_b[kColumnBlock] = {0};
    for (int64_t n = 0; n < N; ++n) {
      const float* x = inp + n * C;
      const float* d = dout + n * C;
      const float m = mean[n], s = rstd[n];
      for (int64_t c = c0; c < c1; ++c) {
        acc_w[c - c0] += d[c] * (x[c] - m) * s;
        acc_b[c - c0] += d[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      dw[c] += acc_w[c - c0];
      db[c] += acc_b[c - c0];
    }
  }
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
    const float* d = dout + n * C;
    const float m = mean[n], s = rstd[n];
    float sum_g = 0, sum_gx = 0;
    for (int64_t c = 0; c < C; ++c) {
      const float g = d[c] * w[c];
      sum_g += g;
      sum_gx += g * (x[c] - m) * s;
    }
    sum_g /= static_cast<float>(C);
    sum_gx /= static_cast<float>(C);
    float* dx = dinp + n * C;
    for (int64_t c = 0; c < C; ++c) {
      const float xhat = (x[c] - m) * s;
      dx[c] = s * (d[c] * w[c] - sum_g - xhat * sum_gx);
    }
  }
}

}  // namespace bertfit
