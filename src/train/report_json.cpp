#include "train/report_json.h"

#include <map>

namespace bertfit {

namespace {
std::string name_of(const std::vector<std::string>& names, int64_t c) {
  return static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] : std::to_string(c);
}
}  // namespace

nlohmann::ordered_json classification_details_json(const ClassificationMetrics& m,
                                                   const std::vector<std::string>& names) {
  nlohmann::ordered_json labels = nlohmann::ordered_json::array();
  for (int64_t c = 0; c < m.num_classes; ++c) labels.push_back(name_of(names, c));
  nlohmann::ordered_json per_class = nlohmann::ordered_json::array();
  for (int64_t c = 0; c < m.num_classes; ++c) {
    const ClassMetrics& k = m.per_class[static_cast<size_t>(c)];
    nlohmann::ordered_json row;
    row["label"] = name_of(names, c);
    row["precision"] = k.precision;
    row["recall"] = k.recall;
    row["f1"] = k.f1;
    row["support"] = k.support;
    row["predicted"] = k.predicted;
    per_class.push_back(std::move(row));
  }
  nlohmann::ordered_json matrix = nlohmann::ordered_json::array();
  for (int64_t t = 0; t < m.num_classes; ++t) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (int64_t p = 0; p < m.num_classes; ++p) row.push_back(m.confusion_at(t, p));
    matrix.push_back(std::move(row));
  }
  nlohmann::ordered_json cm;
  cm["rows"] = "true";
  cm["columns"] = "predicted";
  cm["labels"] = labels;
  cm["matrix"] = std::move(matrix);
  nlohmann::ordered_json j;
  j["labels"] = std::move(labels);
  j["per_class"] = std::move(per_class);
  j["confusion_matrix"] = std::move(cm);
  return j;
}

nlohmann::ordered_json classification_averages_json(const ClassificationMetrics& m) {
  nlohmann::ordered_json j;
  for (const auto& [name, a] : {std::pair<const char*, const Averages&>{"macro", m.macro},
                                {"micro", m.micro},
                                {"weighted", m.weighted}}) {
    j[std::string(name) + "_precision"] = a.precision;
    j[std::string(name) + "_recall"] = a.recall;
    j[std::string(name) + "_f1"] = a.f1;
  }
  return j;
}

nlohmann::ordered_json evaluation_json(const ClassificationMetrics& m, double loss,
                                       const std::vector<std::string>& names) {
  nlohmann::ordered_json j;
  j["accuracy"] = m.accuracy;
  j["error_rate"] = m.error_rate;
  j["macro_f1"] = m.macro.f1;
  j["micro_f1"] = m.micro.f1;
  j["weighted_f1"] = m.weighted.f1;
  j["loss"] = loss;
  // Named first: a range-for over .items() of a temporary would iterate a destroyed object.
  const nlohmann::ordered_json averages = classification_averages_json(m);
  const nlohmann::ordered_json details = classification_details_json(m, names);
  for (const auto& [k, v] : averages.items()) j[k] = v;
  for (const auto& [k, v] : details.items()) j[k] = v;
  return j;
}

nlohmann::ordered_json token_length_histogram_json(const std::vector<EncodedExample>& examples, int64_t limit,
                                                   int64_t bin) {
  if (bin < 1) bin = 1;
  std::map<int64_t, int64_t> bins;
  int64_t over = 0;
  for (const auto& e : examples) {
    ++bins[e.tokens / bin * bin];
    over += e.tokens > limit;
  }
  nlohmann::ordered_json j;
  j["bin_width"] = bin;
  j["bins"] = nlohmann::ordered_json::array();
  for (const auto& [start, count] : bins) j["bins"].push_back({start, count});
  j["count"] = examples.size();
  j["over_limit"] = over;
  return j;
}

}  // namespace bertfit
