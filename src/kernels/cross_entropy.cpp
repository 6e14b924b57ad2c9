// Softmax cross-entropy: the AVX2 kernel (float exps summed in double) and the plain double-precision loop it
// is tested against (cross_entropy_forward_backward_reference).
#include "kernels/cross_entropy.h"
#include "core/threading.h"

#include "core/simd.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "bertfit/error.h"
#include "core/vec_math.h"

namespace bertfit {

int64_t count_labelled(const int32_t* labels, int64_t N) {
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) n += labels[i] != kIgnoreIndex;
  return n;
}

namespace {
void check_labels(const int32_t* labels, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] != kIgnoreIndex && (labels[i] < 0 || labels[i] >= V))
      throw ShapeError("cross_entropy: label[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                       " is outside [0, " + std::to_string(V) + ")");
}
}  // namespace

float cross_entropy_forward_backward(float* dlogits, float* row_loss, const float* logits,
                                     const int32_t* labels, int64_t N, int64_t V, float label_smoothing,
                                     float normalizer) {
  check_labels(labels, N, V);
  const float eps = label_smoothing;
  const float inv_norm = 1.0f / normalizer;
  parallel_for_dynamic(0, N, 4, N * V >= kParallelMinWork, [&](int64_t i) {
    const float* x = logits + i * V;
    float* d = dlogits ? dlogits + i * V : nullptr;
    if (labels[i] == kIgnoreIndex) {
      row_loss[i] = 0;
      if (d) std::fill(d, d + V, 0.0f);
      return;
    }
    // Max, then sum(exp(x - max)) with float exps accumulated in double lanes (V can be 50k; the loss is
    // compared with torch at 1e-5), then log Z in double.
    __m256 vmx = _mm256_set1_ps(-INFINITY);
    int64_t v = 0;
    for (; v + 8 <= V; v += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(x + v));
    float mx = vec::hmax_ps(vmx);
    for (int64_t t = v; t < V; ++t) mx = x[t] > mx ? x[t] : mx;
    const __m256 vm = _mm256_set1_ps(mx);
    __m256d acc_lo = _mm256_setzero_pd(), acc_hi = _mm256_setzero_pd();
    __m256d acc_x_lo = _mm256_setzero_pd(), acc_x_hi = _mm256_setzero_pd();
    for (v = 0; v + 8 <= V; v += 8) {
      const __m256 xv = _mm256_loadu_ps(x + v);
      const __m256 e = vec::exp_ps(_mm256_sub_ps(xv, vm));
      acc_lo = _mm256_add_pd(acc_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
      acc_hi = _mm256_add_pd(acc_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
      if (eps > 0) {
        acc_x_lo = _mm256_add_pd(acc_x_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(xv)));
        acc_x_hi = _mm256_add_pd(acc_x_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1)));
      }
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(acc_lo, acc_hi));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    _mm256_storeu_pd(lanes, _mm256_add_pd(acc_x_lo, acc_x_hi));
    double sum_logits = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (int64_t t = v; t < V; ++t) {
      sum += vec::exp_scalar(x[t] - mx);
      sum_logits += x[t];
    }
    const double log_z = mx + std::log(sum);
    const double nll = log_z - x[labels[i]];
    double loss = nll;
    if (eps > 0) loss = (1.0 - eps) * nll + eps * (log_z - sum_logits / static_cast<double>(V));
    row_loss[i] = static_cast<float>(loss);
    if (d) {
      // softmax = exp(x - max) / sum: relative error ~3 ulp, far inside the gradient tolerance.
      const float inv_sum = static_cast<float>(1.0 / sum);
      const float uniform = eps / static_cast<float>(V);
      const __m256 vinv = _mm256_set1_ps(inv_sum), vu = _mm256_set1_ps(uniform),
                   vn = _mm256_set1_ps(inv_norm);
      for (v = 0; v + 8 <= V; v += 8) {
        const __m256 pr = _mm256_mul_ps(vec::exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + v), vm)), vinv);
        _mm256_storeu_ps(d + v, _mm256_mul_ps(_mm256_sub_ps(pr, vu), vn));
      }
      for (; v < V; ++v) d[v] = (vec::exp_scalar(x[v] - mx) * inv_sum - uniform) * inv_norm;
      d[labels[i]] -= (1.0f - eps) * inv_norm;
    }
  });
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += row_loss[i];
  return static_cast<float>(total / normalizer);
}

float cross_entropy_forward_backward_reference(float* dlogits, float* row_loss, const float* logits,
                                               const int32_t* labels, int64_t N, int64_t V,
                                               float label_smoothing, float normalizer) {
  check_labels(labels, N, V);
  const float eps = label_smoothing;
  const float inv_norm = 1.0f / normalizer;
  for (int64_t i = 0; i < N; ++i) {
    const float* x = logits + i * V;
    float* d = dlogits ? dlogits + i * V : nullptr;
    if (labels[i] == kIgnoreIndex) {
      row_loss[i] = 0;
      if (d)
        for (int64_t v = 0; v < V; ++v) d[v] = 0;
      continue;
    }
    float mx = x[0];
    for (int64_t v = 1; v < V; ++v) mx = x[v] > mx ? x[v] : mx;
    double sum = 0;  // double: V can be 50k and the loss is compared with torch at 1e-5
    for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(x[v] - mx));
    const double log_z = mx + std::log(sum);
    const double nll = log_z - x[labels[i]];
    double loss = nll;
    if (eps > 0) {
      double sum_logits = 0;
      for (int64_t v = 0; v < V; ++v) sum_logits += x[v];
      const double smooth = log_z - sum_logits / static_cast<double>(V);  // mean over classes of -log p
      loss = (1.0 - eps) * nll + eps * smooth;
    }
    row_loss[i] = static_cast<float>(loss);
    if (d) {
      const float uniform = eps / static_cast<float>(V);
      for (int64_t v = 0; v < V; ++v) {
        const float pr = static_cast<float>(std::exp(static_cast<double>(x[v]) - log_z));
        d[v] = (pr - uniform) * inv_norm;
      }
      d[labels[i]] -= (1.0f - eps) * inv_norm;
    }
  }
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += row_loss[i];
  return static_cast<float>(total / normalizer);
}

void softmax_rows(float* probs, const float* logits, int64_t N, int64_t V) {
  parallel_for(0, N, N * V >= kParallelMinWork, [&](int64_t i) {
    const float* x = logits + i * V;
    float* p = probs + i * V;
    float mx = x[0];
    for (int64_t v = 1; v < V; ++v) mx = x[v] > mx ? x[v] : mx;
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) {
      p[v] = std::exp(x[v] - mx);
      sum += p[v];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t v = 0; v < V; ++v) p[v] *= inv;
  });
}

}  // namespace bertfit
