#include "kernels/dropout.h"

#include "core/rng.h"

namespace bertfit {

void dropout_forward(float* out, const float* inp, int64_t n, float p, uint64_t key) {
  if (p <= 0.0f) {
    if (out != inp)
      for (int64_t i = 0; i < n; ++i) out[i] = inp[i];
    return;
  }
  const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = counter_uniform(key, i) >= p ? inp[i] * scale : 0.0f;
}

void dropout_backward(float* dinp, const float* dout, int64_t n, float p, uint64_t key) {
  dropout_forward(dinp, dout, n, p, key);  // the same linear map: mask and scale
}

void dropout_residual_forward(float* out, const float* x, const float* residual, int64_t n, float p,
                              uint64_t key) {
  if (p <= 0.0f) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] + residual[i];
    return;
  }
  const float scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = residual[i] + (counter_uniform(key, i) >= p ? x[i] * scale : 0.0f);
}

}  // namespace bertfit
