#include "kernels/adamw.h"

#include <algorithm>
#include <cmath>

namespace bertfit {

void adamw_step(float* params, const float* grads, float* m, float* v, const std::vector<ParamGroup>& groups,
                const AdamWHyper& hyper, int64_t step) {
  // Scalars as torch computes them: bias corrections in double (Python floats), then used as float scalars.
  const double bc1 = 1.0 - std::pow(static_cast<double>(hyper.beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(hyper.beta2), static_cast<double>(step));
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float b1 = hyper.beta1, b2 = hyper.beta2, eps = hyper.eps;
  for (const ParamGroup& g : groups) {
    const float decay = static_cast<float>(1.0 - static_cast<double>(g.lr) * g.weight_decay);
    const float step_size = static_cast<float>(g.lr / bc1);
    float* p = params + g.offset;
    const float* gr = grads + g.offset;
    float* mm = m + g.offset;
    float* vv = v + g.offset;
    const int64_t n = static_cast<int64_t>(g.size);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const float gi = gr[i];
      p[i] *= decay;
      mm[i] = mm[i] * b1 + gi * (1.0f - b1);
      vv[i] = vv[i] * b2 + gi * gi * (1.0f - b2);
      const float denom = std::sqrt(vv[i]) / bc2_sqrt + eps;
      p[i] -= step_size * (mm[i] / denom);
    }
  }
}

namespace {
constexpr int kNormChunks = 256;  // fixed, independent of the thread count
}

double grad_norm(const float* g, size_t n) {
  double partial[kNormChunks];
  const size_t chunk = (n + kNormChunks - 1) / kNormChunks;
#pragma omp parallel for schedule(static)
  for (int c = 0; c < kNormChunks; ++c) {
    const size_t lo = std::min(n, c * chunk), hi = std::min(n, lo + chunk);
    double s = 0;
    for (size_t i = lo; i < hi; ++i) s += static_cast<double>(g[i]) * g[i];
    partial[c] = s;
  }
  double total = 0;
  for (int c = 0; c < kNormChunks; ++c) total += partial[c];
  return std::sqrt(total);
}

double clip_grad_norm(float* g, size_t n, double max_norm) {
  const double norm = grad_norm(g, n);
  if (max_norm > 0 && norm > max_norm) {
    const float coef = static_cast<float>(max_norm / (norm + 1e-6));
    const int64_t nn = static_cast<int64_t>(n);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nn; ++i) g[i] *= coef;
  }
  return norm;
}

}  // namespace bertfit
