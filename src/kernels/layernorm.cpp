// LayerNorm: AVX2 row kernels (layernorm_forward / layernorm_backward) and the plain loops they are tested
// against (the *_reference versions). The fast row sums use 8 float lanes combined in a fixed order, so they
// differ from the sequential sums in the last bits (tests/kernels/fast_kernels_test.cpp bounds it) but not
// between runs or thread counts: each row is reduced by one thread, whatever the split.
#include "kernels/layernorm.h"
#include "core/threading.h"

#include "core/simd.h"

#include <algorithm>
#include <cmath>

#include "core/vec_math.h"
#include "kernels/dropout.h"
#include "kernels/reduce.h"

namespace bertfit {

namespace {

float row_sum(const float* x, int64_t C) {
  __m256 acc = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + c));
  float s = vec::hsum_ps(acc);
  for (; c < C; ++c) s += x[c];
  return s;
}

float row_centered_sq(const float* x, float m, int64_t C) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + c), vm);
    acc = _mm256_fmadd_ps(d, d, acc);
  }
  float s = vec::hsum_ps(acc);
  for (; c < C; ++c) s += (x[c] - m) * (x[c] - m);
  return s;
}

// Parameter gradients, column-parallel with rows summed in order (deterministic); shared by both versions.
void layernorm_param_grads(float* dw, float* db, const float* dout, const float* inp, const float* mean,
                           const float* rstd, int64_t N, int64_t C) {
  const int64_t nblocks = (C + kColumnBlock - 1) / kColumnBlock;
  parallel_for(0, nblocks, N * C >= kParallelMinWork, [&](int64_t blk) {
    const int64_t c0 = blk * kColumnBlock, c1 = std::min(C, c0 + kColumnBlock);
    float acc_w[kColumnBlock] = {0}, acc_b[kColumnBlock] = {0};
    for (int64_t n = 0; n < N; ++n) {
      const float* x = inp + n * C;
      const float* d = dout + n * C;
      const float m = mean[n], s = rstd[n];
      for (int64_t c = c0; c < c1; ++c) {
        acc_w[c - c0] += d[c] * ((x[c] - m) * s);
        acc_b[c - c0] += d[c];
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      dw[c] += acc_w[c - c0];
      db[c] += acc_b[c - c0];
    }
  });
}

// One row of layernorm_forward: o = (x - m) * s * w + b. o may alias x.
void layernorm_row(float* o, float& mean, float& rstd, const float* x, const float* w, const float* b,
                   int64_t C, float eps) {
  // Two passes in float (mean, then centred squares), as torch's CPU kernel accumulates in float.
  const float m = row_sum(x, C) / static_cast<float>(C);
  const float v = row_centered_sq(x, m, C) / static_cast<float>(C);
  const float s = 1.0f / std::sqrt(v + eps);
  const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(s);
  int64_t c = 0;
  for (; c + 8 <= C; c += 8) {
    const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
    _mm256_storeu_ps(o + c, _mm256_fmadd_ps(xhat, _mm256_loadu_ps(w + c), _mm256_loadu_ps(b + c)));
  }
  for (; c < C; ++c) o[c] = std::fma((x[c] - m) * s, w[c], b[c]);
  mean = m;
  rstd = s;
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b,
                       int64_t N, int64_t C, float eps) {
  parallel_for(0, N, N * C >= kParallelMinWork,
               [&](int64_t n) { layernorm_row(out + n * C, mean[n], rstd[n], inp + n * C, w, b, C, eps); });
}

void dropout_add_layernorm_forward(float* out, float* sum, float* mean, float* rstd, const float* x,
                                   const float* residual, int64_t N, int64_t C, const int32_t* rows, float p,
                                   uint64_t key, const float* w, const float* b, float eps) {
  parallel_for(0, N, N * C >= kParallelMinWork, [&](int64_t n) {
    float* s = sum + n * C;
    const float* xr = x + n * C;
    const float* rr = residual + n * C;
    if (p > 0.0f) {  // row n's mask is that of elements (rows ? rows[n] : n) * C + j, as dropout_rows_*'s
      const uint64_t row = rows ? static_cast<uint64_t>(rows[n]) : static_cast<uint64_t>(n);
      dropout_span(s, xr, rr, C, p, key, row * static_cast<uint64_t>(C));
    } else {  // the identity: x + residual, dropout_residual_forward's sum
      int64_t c = 0;
      for (; c + 8 <= C; c += 8)
        _mm256_storeu_ps(s + c, _mm256_add_ps(_mm256_loadu_ps(xr + c), _mm256_loadu_ps(rr + c)));
      for (; c < C; ++c) s[c] = xr[c] + rr[c];
    }
    // The row was just written: LayerNorm reads it from L1.
    layernorm_row(out + n * C, mean[n], rstd[n], s, w, b, C, eps);
  });
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int64_t N, int64_t C) {
  // Parameter gradients first (dinp may alias dout).
  layernorm_param_grads(dw, db, dout, inp, mean, rstd, N, C);
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w.
  parallel_for(0, N, N * C >= kParallelMinWork, [&](int64_t n) {
    const float* x = inp + n * C;
    const float* d = dout + n * C;
    const float m = mean[n], s = rstd[n];
    const __m256 vm = _mm256_set1_ps(m), vs = _mm256_set1_ps(s);
    __m256 acc_g = _mm256_setzero_ps(), acc_gx = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(d + c), _mm256_loadu_ps(w + c));
      const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
      acc_g = _mm256_add_ps(acc_g, g);
      acc_gx = _mm256_fmadd_ps(g, xhat, acc_gx);
    }
    float sum_g = vec::hsum_ps(acc_g), sum_gx = vec::hsum_ps(acc_gx);
    for (int64_t t = c; t < C; ++t) {
      const float g = d[t] * w[t];
      sum_g += g;
      sum_gx += g * ((x[t] - m) * s);
    }
    sum_g /= static_cast<float>(C);
    sum_gx /= static_cast<float>(C);
    float* dx = dinp + n * C;
    const __m256 vsg = _mm256_set1_ps(sum_g), vsgx = _mm256_set1_ps(sum_gx);
    for (c = 0; c + 8 <= C; c += 8) {
      const __m256 g = _mm256_mul_ps(_mm256_loadu_ps(d + c), _mm256_loadu_ps(w + c));
      const __m256 xhat = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vm), vs);
      _mm256_storeu_ps(dx + c,
                       _mm256_mul_ps(vs, _mm256_sub_ps(_mm256_sub_ps(g, vsg), _mm256_mul_ps(xhat, vsgx))));
    }
    for (; c < C; ++c) {
      const float xhat = (x[c] - m) * s;
      dx[c] = s * (d[c] * w[c] - sum_g - xhat * sum_gx);
    }
  });
}

void layernorm_forward_reference(float* out, float* mean, float* rstd, const float* inp, const float* w,
                                 const float* b, int64_t N, int64_t C, float eps) {
  for (int64_t n = 0; n < N; ++n) {
    const float* x = inp + n * C;
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

void layernorm_backward_reference(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                                  const float* w, const float* mean, const float* rstd, int64_t N,
                                  int64_t C) {
  layernorm_param_grads(dw, db, dout, inp, mean, rstd, N, C);
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
