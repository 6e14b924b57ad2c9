// Metrics of HuggingFace's other problem types (config.json problem_type), with scikit-learn's / SciPy's
// definitions (tools/reference/gen_problem_metrics_golden.py checks them):
//  - multi_label_classification: a label is predicted when its probability is above the threshold (HF's
//    run_classification: logits > 0, i.e. sigmoid > 0.5); micro F1 from the counts summed over labels and
//    examples, macro F1 the mean of every label's F1 (sklearn f1_score on indicator matrices, zero_division
//    0), exact match the share of examples whose whole label set is right (sklearn accuracy_score);
//  - regression: mean squared error, Pearson's r, Spearman's rho (Pearson's r of the average ranks, ties
//    sharing their mean rank, as scipy.stats.spearmanr). A constant side has no correlation: 0 (SciPy: nan).
#pragma once

#include <cstdint>
#include <vector>

namespace bertfit {

struct MultiLabelMetrics {
  int64_t count = 0, num_labels = 0;
  double micro_f1 = 0, macro_f1 = 0, micro_precision = 0, micro_recall = 0, exact_match = 0;
  std::vector<double> f1;  // per label
};

// probs and targets [n, K] row-major (targets 0 / 1). Throws ConfigError when the sizes disagree.
MultiLabelMetrics multi_label_metrics(const std::vector<float>& probs, const std::vector<float>& targets,
                                      int64_t num_labels, double threshold);

struct RegressionMetrics {
  int64_t count = 0;
  double mse = 0, pearson = 0, spearman = 0;
};

RegressionMetrics regression_metrics(const std::vector<float>& predictions,
                                     const std::vector<float>& targets);

// Average ranks (1-based; ties get the mean of the ranks they span), as scipy.stats.rankdata.
std::vector<double> average_ranks(const std::vector<float>& x);

}  // namespace bertfit
