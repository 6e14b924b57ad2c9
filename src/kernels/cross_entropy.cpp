#include "kernels/cross_entropy.h"

#include <cmath>
#include <string>

#include "bertfit/error.h"

namespace bertfit {

int64_t count_labelled(const int32_t* labels, int64_t N) {
  int64_t n = 0;
  for (int64_t i = 0; i < N; ++i) n += labels[i] != kIgnoreIndex;
  return n;
}

float cross_entropy_forward_backward(float* dlogits, float* row_loss, const float* logits, const int32_t* labels,
                                     int64_t N, int64_t V, float label_smoothing, float normalizer) {
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] != kIgnoreIndex && (labels[i] < 0 || labels[i] >= V))
      throw ShapeError("cross_entropy: label[" + std::to_string(i) + "] = " + std::to_string(labels[i]) +
                       " is outside [0, " + std::to_string(V) + ")");
  const float eps = label_smoothing;
  const float inv_norm = 1.0f / normalizer;
#pragma omp parallel for schedule(static)
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
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
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
  }
}

}  // namespace bertfit
