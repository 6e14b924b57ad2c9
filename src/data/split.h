// Stratified, seeded subsets of a labelled data set: a dev (and test) split carved from train, and few-shot
// subsets. They work on label ids only and return example indices, sorted ascending (file order), so the
// caller keeps whatever else it holds per example.
//
// Allocation (largest remainder, like sklearn's `_approximate_mode`, but our own and deterministic): part k
// gets round(f_k * N) examples in all; class c first gets floor(f_k * n_c), and the examples still owed go
// one each to the classes with the largest fractional parts f_k * n_c - floor(.) (ties: lower class id),
// never taking a class's last training example. So every class is represented in proportion, a class with
// f_k * n_c >= 1 is always in part k, and the result depends only on (labels, fractions, seed). Within a
// class, which examples go where is a seeded Fisher-Yates shuffle (core Rng, same on every machine).
#pragma once

#include <cstdint>
#include <vector>

namespace bertfit::data {

// parts[0] = the rest (train); parts[k] = the part of fractions[k-1]. Every fraction in (0, 1), sum < 1;
// labels in [0, num_classes). Throws ConfigError otherwise.
std::vector<std::vector<int64_t>> stratified_partition(const std::vector<int64_t>& labels,
                                                       int64_t num_classes,
                                                       const std::vector<double>& fractions, uint64_t seed);

struct TrainDevSplit {
  std::vector<int64_t> train;
  std::vector<int64_t> dev;
};
TrainDevSplit stratified_split(const std::vector<int64_t>& labels, int64_t num_classes, double dev_fraction,
                               uint64_t seed);

// Few-shot subset: per class, `per_class` examples (all of a smaller class) when per_class > 0, otherwise
// max(1, round(fraction * n_c)) with fraction in (0, 1]. Throws ConfigError when neither is valid.
std::vector<int64_t> few_shot_subset(const std::vector<int64_t>& labels, int64_t num_classes,
                                     int64_t per_class, double fraction, uint64_t seed);

}  // namespace bertfit::data
