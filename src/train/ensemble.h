// Ensembles of classifiers' predictions (issue 15, `bertfit ensemble`): the per-class probabilities of
// several models over the same rows, averaged (optionally weighted) or rank-averaged, and the label of the
// highest score. The inputs are `bertfit predict --all_probs` files (id, label, probability, p_<label>...),
// and the output is one too, so ensembles chain.
#pragma once

#include <string>
#include <vector>

namespace bertfit {

struct PredictionTable {
  std::vector<std::string> ids;
  std::vector<std::string> labels;  // class names (the p_<label> columns, in file order)
  std::vector<double> probs;        // [rows, labels]
  size_t rows() const { return ids.size(); }
};

// Reads a `bertfit predict --all_probs` TSV. Throws FormatError naming the file and line for a missing
// header column, a row of the wrong width, a value that is not a number in [0, 1] or a duplicated label.
PredictionTable read_prediction_file(const std::string& path);

enum class EnsembleMethod {
  MEAN,  // sum_m w_m p_m / sum_m w_m
  RANK,  // per model and class, the average rank of each row's probability among the rows, divided by the
         // number of rows (in (0, 1]); then the weighted mean of those. Scores, not probabilities: for
         // metrics that only need an order (AUC) or models whose probabilities are on different scales.
};

// The ensemble of tables over the same ids in the same order and the same label set (columns matched by
// name: the first table's order is kept). weights: empty (all 1) or one > 0 per table. `names` names the
// tables in errors. Throws ConfigError for mismatches.
PredictionTable ensemble_predictions(const std::vector<PredictionTable>& tables,
                                     const std::vector<double>& weights, EnsembleMethod method,
                                     const std::vector<std::string>& names);

// The label of each row's highest score (the first on ties).
std::vector<std::string> predicted_labels(const PredictionTable& t);

// Writes `t` as `bertfit predict --all_probs` would: id, label, probability (of that label), p_<label>...
void write_prediction_file(const std::string& path, const PredictionTable& t);

}  // namespace bertfit
