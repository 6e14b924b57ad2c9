// Stratified partitions and few-shot subsets (see split.h for the allocation rule).
#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "bertfit/error.h"
#include "core/rng.h"

namespace bertfit::data {

namespace {

// Indices of each class, in file order, then shuffled per class with one seeded stream (classes in id order).
std::vector<std::vector<int64_t>> shuffled_by_class(const std::vector<int64_t>& labels, int64_t num_classes,
                                                    uint64_t seed) {
  if (num_classes <= 0) throw ConfigError("stratified split: num_classes must be positive");
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw ConfigError("stratified split: label " + std::to_string(labels[i]) + " of example " +
                        std::to_string(i) + " is outside [0, " + std::to_string(num_classes) + ")");
    by_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  }
  Rng rng(seed);
  for (auto& idx : by_class)
    for (size_t i = idx.size(); i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
  return by_class;
}

}  // namespace

std::vector<std::vector<int64_t>> stratified_partition(const std::vector<int64_t>& labels,
                                                       int64_t num_classes,
                                                       const std::vector<double>& fractions, uint64_t seed) {
  double sum = 0;
  for (const double f : fractions) {
    if (!(f > 0 && f < 1)) throw ConfigError("split fraction " + std::to_string(f) + " is not in (0, 1)");
    sum += f;
  }
  if (!(sum < 1)) throw ConfigError("split fractions add up to " + std::to_string(sum) + ", must be below 1");
  const auto by_class = shuffled_by_class(labels, num_classes, seed);
  const size_t C = by_class.size(), K = fractions.size();
  const double N = static_cast<double>(labels.size());
  // taken[c] = examples of class c already given to parts 1..k.
  std::vector<int64_t> taken(C, 0);
  std::vector<std::vector<int64_t>> count(K, std::vector<int64_t>(C, 0));
  for (size_t k = 0; k < K; ++k) {
    const int64_t target = static_cast<int64_t>(std::floor(fractions[k] * N + 0.5));
    int64_t given = 0;
    std::vector<std::pair<double, size_t>> remainder;  // (fractional part, class)
    for (size_t c = 0; c < C; ++c) {
      const int64_t n_c = static_cast<int64_t>(by_class[c].size());
      const double q = fractions[k] * static_cast<double>(n_c);
      // Never more than leaves one example of the class in train (a class of one stays in train).
      const int64_t room = std::max<int64_t>(0, n_c - 1 - taken[c]);
      count[k][c] = std::min<int64_t>(static_cast<int64_t>(std::floor(q)), room);
      given += count[k][c];
      remainder.emplace_back(q - std::floor(q), c);
    }
    std::stable_sort(remainder.begin(), remainder.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [frac, c] : remainder) {
      if (given >= target) break;
      if (frac <= 0) break;  // only classes owed a share get one
      const int64_t n_c = static_cast<int64_t>(by_class[c].size());
      if (taken[c] + count[k][c] + 1 > n_c - 1) continue;
      ++count[k][c];
      ++given;
    }
    for (size_t c = 0; c < C; ++c) taken[c] += count[k][c];
  }
  std::vector<std::vector<int64_t>> parts(K + 1);
  for (size_t c = 0; c < C; ++c) {
    size_t at = 0;
    for (size_t k = 0; k < K; ++k)
      for (int64_t j = 0; j < count[k][c]; ++j) parts[k + 1].push_back(by_class[c][at++]);
    for (; at < by_class[c].size(); ++at) parts[0].push_back(by_class[c][at]);
  }
  for (auto& p : parts) std::sort(p.begin(), p.end());
  return parts;
}

TrainDevSplit stratified_split(const std::vector<int64_t>& labels, int64_t num_classes, double dev_fraction,
                               uint64_t seed) {
  auto parts = stratified_partition(labels, num_classes, {dev_fraction}, seed);
  return {std::move(parts[0]), std::move(parts[1])};
}

std::vector<int64_t> few_shot_subset(const std::vector<int64_t>& labels, int64_t num_classes,
                                     int64_t per_class, double fraction, uint64_t seed) {
  if (per_class <= 0 && !(fraction > 0 && fraction <= 1))
    throw ConfigError("few-shot subset: give a count per class > 0 or a fraction in (0, 1], got count " +
                      std::to_string(per_class) + " and fraction " + std::to_string(fraction));
  const auto by_class = shuffled_by_class(labels, num_classes, seed);
  std::vector<int64_t> out;
  for (const auto& idx : by_class) {
    const int64_t n_c = static_cast<int64_t>(idx.size());
    int64_t k = per_class > 0 ? per_class
                              : std::max<int64_t>(1, static_cast<int64_t>(std::floor(fraction * n_c + 0.5)));
    k = std::min(k, n_c);
    out.insert(out.end(), idx.begin(), idx.begin() + k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bertfit::data
