// Weighted / focal cross-entropy and R-Drop's paired loss (classification_loss.h): the plain double loop.
#include "kernels/classification_loss.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bertfit/error.h"
#include "kernels/cross_entropy.h"

namespace bertfit {

namespace {

void check_labels(const int32_t* labels, int64_t N, int64_t V) {
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] != kIgnoreIndex && (labels[i] < 0 || labels[i] >= V))
      throw ShapeError("classification loss: label[" + std::to_string(i) +
                       "] = " + std::to_string(labels[i]) + " is outside [0, " + std::to_string(V) + ")");
}

// log_softmax of one row, in double.
void log_softmax_row(double* lp, const float* x, int64_t V) {
  double mx = x[0];
  for (int64_t v = 1; v < V; ++v) mx = x[v] > mx ? x[v] : mx;
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(x[v]) - mx);
  const double log_z = mx + std::log(sum);
  for (int64_t v = 0; v < V; ++v) lp[v] = static_cast<double>(x[v]) - log_z;
}

// One labelled row's weighted (and smoothed) or focal loss; adds its gradient x `scale` to d (double).
double base_row(double* d, const double* lp, int32_t y, int64_t V, const ClassificationLossOptions& o,
                double scale) {
  const float* w = o.class_weights;
  const double wy = w ? w[y] : 1.0;
  if (o.focal_gamma > 0) {
    // L = -w_y (1 - p_y)^g log p_y; with q = 1 - p_y (from expm1: accurate when p_y is near 1),
    // dL/dz_j = w_y (delta_yj - p_j) [g p_y q^(g-1) log p_y - q^g]. As q -> 0 both terms vanish (q^(g-1) log
    // p_y ~ -q^g), so q == 0 contributes nothing (and no 0 * inf).
    const double g = o.focal_gamma, lpy = lp[y], q = -std::expm1(lpy), py = std::exp(lpy);
    const double qg = std::pow(q, g);
    const double loss = -wy * qg * lpy;
    if (d) {
      const double f = q > 0 ? wy * (g * py * std::pow(q, g - 1) * lpy - qg) : 0.0;
      for (int64_t j = 0; j < V; ++j) d[j] += scale * f * ((j == y ? 1.0 : 0.0) - std::exp(lp[j]));
    }
    return loss;
  }
  // L = (1 - eps) w_y (-log p_y) + (eps / V) sum_c w_c (-log p_c);
  // dL/dz_j = (1 - eps) w_y (p_j - delta_yj) + (eps / V) (W p_j - w_j), W = sum_c w_c.
  const double eps = o.label_smoothing;
  double loss = (1.0 - eps) * wy * -lp[y];
  double W = 0, smooth = 0;
  for (int64_t c = 0; c < V; ++c) {
    const double wc = w ? w[c] : 1.0;
    W += wc;
    smooth += wc * -lp[c];
  }
  loss += eps / static_cast<double>(V) * smooth;
  if (d)
    for (int64_t j = 0; j < V; ++j) {
      const double pj = std::exp(lp[j]), wj = w ? w[j] : 1.0;
      d[j] += scale *
              ((1.0 - eps) * wy * (pj - (j == y ? 1.0 : 0.0)) + eps / static_cast<double>(V) * (W * pj - wj));
    }
  return loss;
}

}  // namespace

float classification_normalizer(const int32_t* labels, int64_t N, int64_t V,
                                const ClassificationLossOptions& o) {
  check_labels(labels, N, V);
  double n = 0;
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] != kIgnoreIndex) n += o.class_weights ? o.class_weights[labels[i]] : 1.0;
  if (o.rdrop_alpha > 0) n *= 0.5;
  return static_cast<float>(n > 0 ? n : 1.0);
}

float classification_loss(float* dlogits, float* row_loss, const float* logits, const int32_t* labels,
                          int64_t N, int64_t V, const ClassificationLossOptions& o, float normalizer) {
  if (o.plain())
    return cross_entropy_forward_backward(dlogits, row_loss, logits, labels, N, V, o.label_smoothing,
                                          normalizer);
  if (o.focal_gamma > 0 && o.label_smoothing > 0)
    throw Error("classification loss: focal loss and label smoothing do not combine");
  check_labels(labels, N, V);
  const bool paired = o.rdrop_alpha > 0;
  if (paired && N % 2 != 0)
    throw Error("R-Drop: " + std::to_string(N) + " rows are not two passes of the same documents");
  const int64_t H = N / 2;
  if (paired)
    for (int64_t i = 0; i < H; ++i)
      if (labels[i] != labels[i + H])
        throw Error("R-Drop: rows " + std::to_string(i) + " and " + std::to_string(i + H) +
                    " (the two passes of one document) have different labels");
  // Each pass's loss counts half with R-Drop (the mean of the two passes).
  const double base_scale = paired ? 0.5 : 1.0, inv_norm = 1.0 / static_cast<double>(normalizer);
  std::vector<double> lp(static_cast<size_t>(N * V)), d(dlogits ? static_cast<size_t>(N * V) : 0, 0.0);
  for (int64_t i = 0; i < N; ++i) log_softmax_row(lp.data() + i * V, logits + i * V, V);
  std::vector<double> rows(static_cast<size_t>(N), 0.0);
  for (int64_t i = 0; i < N; ++i)
    if (labels[i] != kIgnoreIndex)
      rows[i] = base_scale * base_row(dlogits ? d.data() + i * V : nullptr, lp.data() + i * V, labels[i], V,
                                      o, base_scale);
  if (paired) {
    // S = 0.5 sum_c (p_c - q_c)(lp_c - lq_c), D = lp - lq:
    // dS/da_j = 0.5 [p_j (D_j - <p, D>) + p_j - q_j],  dS/db_j = 0.5 [q_j (<q, D> - D_j) + q_j - p_j].
    const double alpha = o.rdrop_alpha;
    std::vector<double> p(static_cast<size_t>(V)), q(static_cast<size_t>(V)), D(static_cast<size_t>(V));
    for (int64_t i = 0; i < H; ++i) {
      if (labels[i] == kIgnoreIndex) continue;
      const double *la = lp.data() + i * V, *lb = lp.data() + (i + H) * V;
      double S = 0, pD = 0, qD = 0;
      for (int64_t c = 0; c < V; ++c) {
        p[c] = std::exp(la[c]);
        q[c] = std::exp(lb[c]);
        D[c] = la[c] - lb[c];
        S += 0.5 * (p[c] - q[c]) * D[c];
        pD += p[c] * D[c];
        qD += q[c] * D[c];
      }
      // Weighted by the document's class weight, as its cross-entropy: the loss stays a weighted mean.
      const double aw = alpha * (o.class_weights ? o.class_weights[labels[i]] : 1.0);
      rows[i] += aw * S;
      if (dlogits) {
        double *da = d.data() + i * V, *db = d.data() + (i + H) * V;
        for (int64_t c = 0; c < V; ++c) {
          da[c] += aw * 0.5 * (p[c] * (D[c] - pD) + p[c] - q[c]);
          db[c] += aw * 0.5 * (q[c] * (qD - D[c]) + q[c] - p[c]);
        }
      }
    }
  }
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    row_loss[i] = static_cast<float>(rows[i]);
    total += rows[i];
  }
  if (dlogits)
    for (int64_t k = 0; k < N * V; ++k) dlogits[k] = static_cast<float>(d[k] * inv_norm);
  return static_cast<float>(total * inv_norm);
}

float bce_with_logits_loss(float* dlogits, float* row_loss, const float* logits, const float* targets,
                           const int32_t* labels, int64_t N, int64_t V, float normalizer) {
  const double inv_norm = 1.0 / static_cast<double>(normalizer), inv_v = 1.0 / static_cast<double>(V);
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    const bool labelled = labels[i] != kIgnoreIndex;
    double row = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double x = logits[i * V + v], t = labelled ? targets[i * V + v] : 0.0;
      if (labelled) row += std::max(x, 0.0) - x * t + std::log1p(std::exp(-std::fabs(x)));
      if (dlogits) {
        const double sig = x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
        dlogits[i * V + v] = labelled ? static_cast<float>((sig - t) * inv_v * inv_norm) : 0.0f;
      }
    }
    row_loss[i] = static_cast<float>(row * inv_v);
    total += row * inv_v;
  }
  return static_cast<float>(total * inv_norm);
}

float mse_loss(float* dlogits, float* row_loss, const float* logits, const float* targets,
               const int32_t* labels, int64_t N, float normalizer) {
  const double inv_norm = 1.0 / static_cast<double>(normalizer);
  double total = 0;
  for (int64_t i = 0; i < N; ++i) {
    const bool labelled = labels[i] != kIgnoreIndex;
    const double e = labelled ? static_cast<double>(logits[i]) - targets[i] : 0.0;
    row_loss[i] = static_cast<float>(e * e);
    total += e * e;
    if (dlogits) dlogits[i] = static_cast<float>(2.0 * e * inv_norm);
  }
  return static_cast<float>(total * inv_norm);
}

}  // namespace bertfit
