// Multi-label and regression metrics (problem_metrics.h).
#include "train/problem_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "bertfit/error.h"

namespace bertfit {

namespace {
double f1_of(int64_t tp, int64_t fp, int64_t fn) {
  const int64_t d = 2 * tp + fp + fn;
  return d == 0 ? 0.0 : 2.0 * static_cast<double>(tp) / static_cast<double>(d);
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = x.size();
  if (n == 0) return 0;
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}
}  // namespace

MultiLabelMetrics multi_label_metrics(const std::vector<float>& probs, const std::vector<float>& targets,
                                      int64_t K, double threshold) {
  if (K < 1 || probs.size() != targets.size() || probs.size() % static_cast<size_t>(K) != 0)
    throw ConfigError("multi-label metrics: " + std::to_string(probs.size()) + " probabilities and " +
                      std::to_string(targets.size()) + " targets for " + std::to_string(K) + " labels");
  MultiLabelMetrics m;
  m.num_labels = K;
  m.count = static_cast<int64_t>(probs.size()) / K;
  std::vector<int64_t> tp(K), fp(K), fn(K);
  int64_t exact = 0;
  for (int64_t i = 0; i < m.count; ++i) {
    bool all = true;
    for (int64_t k = 0; k < K; ++k) {
      const bool p = probs[i * K + k] > threshold, t = targets[i * K + k] > 0.5f;
      tp[k] += p && t;
      fp[k] += p && !t;
      fn[k] += !p && t;
      all = all && p == t;
    }
    exact += all;
  }
  int64_t TP = 0, FP = 0, FN = 0;
  for (int64_t k = 0; k < K; ++k) {
    m.f1.push_back(f1_of(tp[k], fp[k], fn[k]));
    m.macro_f1 += m.f1.back() / static_cast<double>(K);
    TP += tp[k], FP += fp[k], FN += fn[k];
  }
  m.micro_f1 = f1_of(TP, FP, FN);
  m.micro_precision = TP + FP ? static_cast<double>(TP) / static_cast<double>(TP + FP) : 0.0;
  m.micro_recall = TP + FN ? static_cast<double>(TP) / static_cast<double>(TP + FN) : 0.0;
  m.exact_match = m.count ? static_cast<double>(exact) / static_cast<double>(m.count) : 0.0;
  return m;
}

std::vector<double> average_ranks(const std::vector<float>& x) {
  const size_t n = x.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && x[order[j + 1]] == x[order[i]]) ++j;
    const double mean_rank = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) r[order[k]] = mean_rank;
    i = j + 1;
  }
  return r;
}

RegressionMetrics regression_metrics(const std::vector<float>& predictions,
                                     const std::vector<float>& targets) {
  if (predictions.size() != targets.size())
    throw ConfigError("regression metrics: " + std::to_string(predictions.size()) + " predictions for " +
                      std::to_string(targets.size()) + " targets");
  RegressionMetrics m;
  m.count = static_cast<int64_t>(predictions.size());
  if (m.count == 0) return m;
  std::vector<double> p(predictions.begin(), predictions.end()), t(targets.begin(), targets.end());
  for (size_t i = 0; i < p.size(); ++i) m.mse += (p[i] - t[i]) * (p[i] - t[i]);
  m.mse /= static_cast<double>(m.count);
  m.pearson = pearson(p, t);
  m.spearman = pearson(average_ranks(predictions), average_ranks(targets));
  return m;
}

}  // namespace bertfit
