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

PredictionTable read_prediction_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open the prediction file");
  std::string line;
  if (!std::getline(in, line))
    throw FormatError(path + ": empty, expected a header id, label, probability, p_<label>...");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_tabs(line);
  PredictionTable t;
  std::vector<size_t> cols;
  size_t id_col = header.size();
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == "id") id_col = c;
    if (header[c].rfind("p_", 0) == 0) {
      t.labels.push_back(header[c].substr(2));
      cols.push_back(c);
    }
  }
  if (id_col == header.size() || cols.empty())
    throw FormatError(path +
                      ":1: needs the columns id and p_<label> for every label (bertfit predict --all_probs)");
  if (std::set<std::string>(t.labels.begin(), t.labels.end()).size() != t.labels.size())
    throw FormatError(path + ":1: a label's probability column appears twice");
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
    for (size_t k = 0; k < cols.size(); ++k) {
      const std::string& v = f[cols[k]];
      size_t used = 0;
      double p = -1;
      try {
        p = std::stod(v, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != v.size() || !(p >= 0 && p <= 1))
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
    if (!(w > 0) || !std::isfinite(w)) throw ConfigError("option --weights: every weight must be > 0");
  auto name = [&](size_t m) { return m < names.size() ? names[m] : "input " + std::to_string(m + 1); };
  const PredictionTable& first = tables[0];
  const size_t n = first.rows(), K = first.labels.size();
  PredictionTable out;
  out.ids = first.ids;
  out.labels = first.labels;
  out.probs.assign(n * K, 0.0);
  double wsum = 0;
  for (size_t m = 0; m < tables.size(); ++m) {
    const PredictionTable& t = tables[m];
    if (t.ids != first.ids)
      throw ConfigError("ensemble: " + name(m) + " has other rows than " + name(0) +
                        " (the same ids in the same order are needed)");
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
    const double w = weights.empty() ? 1.0 : weights[m];
    wsum += w;
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
  return out;
}

std::vector<std::string> predicted_labels(const PredictionTable& t) {
  const size_t K = t.labels.size();
  std::vector<std::string> out;
  for (size_t i = 0; i < t.rows(); ++i) {
    const auto* row = t.probs.data() + i * K;
    out.push_back(t.labels[static_cast<size_t>(std::max_element(row, row + K) - row)]);
  }
  return out;
}

void write_prediction_file(const std::string& path, const PredictionTable& t) {
  std::vector<std::string> header = {"id", "label", "probability"};
  for (const auto& l : t.labels) header.push_back("p_" + l);
  const auto labels = predicted_labels(t);
  const size_t K = t.labels.size();
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", v);
    return std::string(buf);
  };
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < t.rows(); ++i) {
    const auto* row = t.probs.data() + i * K;
    std::vector<std::string> r = {t.ids[i], labels[i], num(*std::max_element(row, row + K))};
    for (size_t k = 0; k < K; ++k) r.push_back(num(row[k]));
    rows.push_back(std::move(r));
  }
  data::write_tsv(path, header, rows);
}

}  // namespace bertfit
