// Ensembles of models' predictions (issue 15, `bertfit ensemble`), for every HF problem_type:
//  - single-label classification: the per-class probabilities of several models over the same rows, averaged
//    (optionally weighted) or rank-averaged, and the label of the highest score;
//  - multi-label classification: each label's sigmoid probability averaged (weighted), and the labels above
//    the threshold (as `bertfit predict`);
//  - regression: the values averaged (weighted), with the members' weighted standard deviation per row (how
//    much they disagree: --pseudo_label_max_std selects rows by it).
// The inputs are `bertfit predict` files (single- and multi-label with --all_probs) and the output is one
// too, so ensembles chain. A file's problem type shows in its header:
//   single-label  id, label, probability, p_<label>...   (probability: of the predicted label)
//   multi-label   id, label, p_<label>...                (label: the labels above the threshold, ','-joined)
//   regression    id, label[, std]                       (label: the value; std: an ensemble's spread)
#pragma once

#include <string>
#include <vector>

#include "bertfit/config.h"

namespace bertfit {

struct PredictionTable {
  ProblemType problem = ProblemType::SINGLE_LABEL;
  std::vector<std::string> ids;
  std::vector<std::string> labels;  // class names (the p_<label> columns, in file order); regression: none
  std::vector<double> probs;        // [rows, labels]: softmax (single-label) or sigmoid (multi-label)
  std::vector<double> values;       // regression: the predicted value of each row
  std::vector<double> spread;       // regression: the members' standard deviation per row (empty: unknown)
  double threshold = 0.5;           // multi-label: a label is predicted when its probability is above it
  bool rank_scores = false;         // probs hold EnsembleMethod::RANK's scores, not probabilities
  size_t rows() const { return ids.size(); }
};

// Reads a prediction file (the header decides its problem type, above). Throws FormatError naming the file
// and line for a missing header column, a row of the wrong width, a value that is not a number in [0, 1]
// (a probability) or not a finite number (a regression value, a std), a duplicated label, or a single-label
// file without the p_<label> columns (bertfit predict --all_probs writes them), or a file of rank scores.
PredictionTable read_prediction_file(const std::string& path);

enum class EnsembleMethod {
  MEAN,  // sum_m w_m p_m / sum_m w_m (regression: of the values)
  RANK,  // single-label only: per model and class, the average rank of each row's probability among the
         // rows, divided by the number of rows (in (0, 1]); then the weighted mean of those. Scores, not
         // probabilities: for metrics that only need an order (AUC) or models whose probabilities are on
         // different scales. A threshold on such scores (multi-label) would predict each label for a fixed
         // share of the rows, and a regression value's rank is not a value: both are refused.
};

// The ensemble of tables of one problem type over the same ids in the same order and the same label set
// (columns matched by name: the first table's order is kept). weights: empty (all 1) or one > 0 per table.
// `names` names the tables in errors. The result keeps the first table's threshold (set it for another).
// Regression: spread = the weighted standard deviation of the members' values, sqrt(sum w (v - mean)^2 /
// sum w). Throws ConfigError for mismatches (rows, labels, problem types) and for RANK on multi-label or
// regression tables.
PredictionTable ensemble_predictions(const std::vector<PredictionTable>& tables,
                                     const std::vector<double>& weights, EnsembleMethod method,
                                     const std::vector<std::string>& names);

// Each row's prediction as `bertfit predict` writes it: the label of the highest score (single-label, the
// first on ties), the labels above the threshold joined by ',' ("" for none; multi-label), the value
// (regression, %.6g).
std::vector<std::string> predicted_labels(const PredictionTable& t);

// The name of a table's problem type for messages ("single-label", "multi-label", "regression").
const char* prediction_kind(ProblemType p);

// Writes `t` as `bertfit predict --all_probs` would for its problem type (header above); regression adds the
// std column when t.spread is set. Rank scores are written under score and s_<label> instead of probability
// and p_<label>: read_prediction_file refuses them (averaged with probabilities they would mean nothing).
// Atomic (a temporary file, then renamed).
void write_prediction_file(const std::string& path, const PredictionTable& t);

}  // namespace bertfit
