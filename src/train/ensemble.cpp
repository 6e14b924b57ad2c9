// Averaging prediction files (ensemble.h).
#include "train/ensemble.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <set>

#include "bertfit/error.h"
#include "data/submission.h"

namespace bertfit {

namespace {

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return out;
}

// Average ranks (1-based, ties share their mean) of x.
std::vector<double> ranks(const std::vector<double>& x) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> r(x.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && x[order[j + 1]] == x[order[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[order[k]] = (static_cast<double>(i + j) / 2.0) + 1.0;
    i = j + 1;
  }
  return r;
}

}  // namespace

const char* prediction_kind(ProblemType p) {
  switch (p) {
    case ProblemType::MULTI_LABEL:
      return "multi-label";
    case ProblemType::REGRESSION:
      return "regression";
    case ProblemType::SINGLE_LABEL:
      break;
  }
  return "single-label";
}

PredictionTable read_prediction_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open the prediction file");
  std::string line;
  if (!std::getline(in, line))
    throw FormatError(path +
                      ": empty, expected a header (id, label, then probability and p_<label>... for "
                      "single-label, p_<label>... for multi-label, nothing or std for regression)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_tabs(line);
  PredictionTable t;
  std::vector<size_t> cols;
  size_t id_col = header.size(), label_col = header.size(), probability_col = header.size(),
         std_col = header.size();
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "id") id_col = c;
    if (header[c] == "label") label_col = c;
    if (header[c] == "probability") probability_col = c;
    if (header[c] == "std") std_col = c;
    if (header[c].rfind("p_", 0) == 0) {
      t.labels.push_back(header[c].substr(2));
      cols.push_back(c);
    }
  }
  if (id_col == header.size()) throw FormatError(path + ":1: needs an id column (a bertfit predict file)");
  if (std::find(header.begin(), header.end(), "score") != header.end())
    throw FormatError(path +
                      ":1: rank scores (bertfit ensemble --method rank), not probabilities: averaged with "
                      "probabilities they would mean nothing; ensemble the files they were made from");
  // The problem type, from the columns predict writes for each (ensemble.h).
  if (!cols.empty())
    t.problem = probability_col < header.size() ? ProblemType::SINGLE_LABEL : ProblemType::MULTI_LABEL;
  else if (probability_col < header.size())
    throw FormatError(
        path + ":1: a single-label file needs p_<label> for every label (bertfit predict --all_probs)");
  else if (label_col == header.size())
    throw FormatError(path +
                      ":1: needs the columns id and p_<label> for every label (bertfit predict "
                      "--all_probs), or id and label (a regression file: the value)");
  else
    t.problem = ProblemType::REGRESSION;
  if (std::set<std::string>(t.labels.begin(), t.labels.end()).size() != t.labels.size())
    throw FormatError(path + ":1: a label's probability column appears twice");
  auto number = [](const std::string& v, double* out) {
    size_t used = 0;
    try {
      *out = std::stod(v, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    return used != 0 && used == v.size() && std::isfinite(*out);
  };
  int64_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto f = split_tabs(line);
    const std::string where = path + ":" + std::to_string(line_no);
    if (f.size() != header.size())
      throw FormatError(where + ": " + std::to_string(f.size()) + " fields, the header has " +
                        std::to_string(header.size()));
    t.ids.push_back(f[id_col]);
    if (t.problem == ProblemType::REGRESSION) {
      double v = 0;
      if (!number(f[label_col], &v))
        throw FormatError(where + ": label = '" + f[label_col] +
                          "' is not a number (a file without p_<label> columns is a regression file: id, "
                          "label = the value)");
      t.values.push_back(v);
      if (std_col < header.size()) {
        if (!number(f[std_col], &v) || v < 0)
          throw FormatError(where + ": std = '" + f[std_col] + "' is not a number >= 0");
        t.spread.push_back(v);
      }
      continue;
    }
    for (size_t k = 0; k < cols.size(); ++k) {
      const std::string& v = f[cols[k]];
      double p = -1;
      if (!number(v, &p) || !(p >= 0 && p <= 1))
        throw FormatError(where + ": p_" + t.labels[k] + " = '" + v + "' is not a probability in [0, 1]");
      t.probs.push_back(p);
    }
  }
  return t;
}

PredictionTable ensemble_predictions(const std::vector<PredictionTable>& tables,
                                     const std::vector<double>& weights, EnsembleMethod method,
                                     const std::vector<std::string>& names) {
  if (tables.empty()) throw ConfigError("ensemble: no inputs");
  if (!weights.empty() && weights.size() != tables.size())
    throw ConfigError("option --weights: " + std::to_string(weights.size()) + " weights for " +
                      std::to_string(tables.size()) + " inputs");
  for (double w : weights)
    if (!(w > 0) || !std::isfinite(w))
      throw ConfigError("option --weights: every weight must be a finite number > 0");
  auto name = [&](size_t m) { return m < names.size() ? names[m] : "input " + std::to_string(m + 1); };
  const PredictionTable& first = tables[0];
  const ProblemType problem = first.problem;
  if (method == EnsembleMethod::RANK && problem != ProblemType::SINGLE_LABEL)
    throw ConfigError(
        std::string("option --method rank: ") + name(0) + " holds " + prediction_kind(problem) +
        " predictions; rank averaging is single-label's (" +
        (problem == ProblemType::REGRESSION
             ? "a value's rank among the rows is not a value on the target's scale"
             : "rank scores are no probabilities: a threshold on them would predict each label for a fixed "
               "share of the rows") +
        "); use --method mean");
  const size_t n = first.rows(), K = first.labels.size();
  PredictionTable out;
  out.problem = problem;
  out.threshold = first.threshold;
  out.ids = first.ids;
  out.labels = first.labels;
  out.probs.assign(n * K, 0.0);
  out.rank_scores = method == EnsembleMethod::RANK;
  if (problem == ProblemType::REGRESSION) out.values.assign(n, 0.0);
  double wsum = 0;
  for (size_t m = 0; m < tables.size(); ++m) {
    const PredictionTable& t = tables[m];
    if (t.problem != problem)
      throw ConfigError("ensemble: " + name(m) + " holds " + prediction_kind(t.problem) + " predictions, " +
                        name(0) + " " + prediction_kind(problem) + " ones");
    if (t.ids != first.ids)
      throw ConfigError("ensemble: " + name(m) + " has other rows than " + name(0) +
                        " (the same ids in the same order are needed)");
    const double w = weights.empty() ? 1.0 : weights[m];
    wsum += w;
    if (problem == ProblemType::REGRESSION) {
      if (t.values.size() != n) throw ConfigError("ensemble: " + name(m) + " lacks values");
      for (size_t i = 0; i < n; ++i) out.values[i] += w * t.values[i];
      continue;
    }
    std::vector<size_t> col(K);
    if (t.labels.size() != K)
      throw ConfigError("ensemble: " + name(m) + " has " + std::to_string(t.labels.size()) + " labels, " +
                        name(0) + " " + std::to_string(K));
    for (size_t k = 0; k < K; ++k) {
      const auto it = std::find(t.labels.begin(), t.labels.end(), first.labels[k]);
      if (it == t.labels.end())
        throw ConfigError("ensemble: " + name(m) + " has no probability of label " + first.labels[k]);
      col[k] = static_cast<size_t>(it - t.labels.begin());
    }
    for (size_t k = 0; k < K; ++k) {
      std::vector<double> v(n);
      for (size_t i = 0; i < n; ++i) v[i] = t.probs[i * K + col[k]];
      if (method == EnsembleMethod::RANK) {
        v = ranks(v);
        for (double& x : v) x /= static_cast<double>(n);
      }
      for (size_t i = 0; i < n; ++i) out.probs[i * K + k] += w * v[i];
    }
  }
  for (double& p : out.probs) p /= wsum;
  if (problem == ProblemType::REGRESSION) {
    for (double& v : out.values) v /= wsum;
    // The members' weighted spread around the mean: how much they disagree on the row.
    out.spread.assign(n, 0.0);
    for (size_t m = 0; m < tables.size(); ++m) {
      const double w = weights.empty() ? 1.0 : weights[m];
      for (size_t i = 0; i < n; ++i) out.spread[i] += w * std::pow(tables[m].values[i] - out.values[i], 2);
    }
    for (double& s : out.spread) s = std::sqrt(s / wsum);
  }
  return out;
}

std::vector<std::string> predicted_labels(const PredictionTable& t) {
  const size_t K = t.labels.size();
  std::vector<std::string> out;
  for (size_t i = 0; i < t.rows(); ++i) {
    if (t.problem == ProblemType::REGRESSION) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", t.values[i]);  // as format_problem_prediction
      out.emplace_back(buf);
      continue;
    }
    const auto* row = t.probs.data() + i * K;
    if (t.problem == ProblemType::MULTI_LABEL) {
      std::string s;
      for (size_t k = 0; k < K; ++k)
        if (row[k] > t.threshold) s += (s.empty() ? "" : ",") + t.labels[k];
      out.push_back(std::move(s));
      continue;
    }
    out.push_back(t.labels[static_cast<size_t>(std::max_element(row, row + K) - row)]);
  }
  return out;
}

void write_prediction_file(const std::string& path, const PredictionTable& t) {
  const bool single = t.problem == ProblemType::SINGLE_LABEL;
  const bool regression = t.problem == ProblemType::REGRESSION;
  const bool with_spread = regression && t.spread.size() == t.rows() && t.rows() > 0;
  std::vector<std::string> header = {"id", "label"};
  if (single) header.push_back(t.rank_scores ? "score" : "probability");
  for (const auto& l : t.labels) header.push_back((t.rank_scores ? "s_" : "p_") + l);
  if (with_spread) header.push_back("std");
  const auto labels = predicted_labels(t);
  const size_t K = t.labels.size();
  auto num = [](const char* f, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, f, v);
    return std::string(buf);
  };
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < t.rows(); ++i) {
    std::vector<std::string> r = {t.ids[i], labels[i]};
    if (!regression) {
      const auto* row = t.probs.data() + i * K;
      if (single) r.push_back(num("%.6f", *std::max_element(row, row + K)));
      for (size_t k = 0; k < K; ++k) r.push_back(num("%.6f", row[k]));
    }
    if (with_spread) r.push_back(num("%.6g", t.spread[i]));
    rows.push_back(std::move(r));
  }
  data::write_tsv(path, header, rows);
}

}  // namespace bertfit
