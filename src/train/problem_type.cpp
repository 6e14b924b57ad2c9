// Multi-label and regression data (problem_type.h).
#include "train/problem_type.h"

#include <cmath>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"

namespace bertfit {

ProblemType parse_problem_type(const std::string& name) {
  if (name == "single_label_classification") return ProblemType::SINGLE_LABEL;
  if (name == "multi_label_classification") return ProblemType::MULTI_LABEL;
  if (name == "regression") return ProblemType::REGRESSION;
  throw ConfigError("option --problem_type: \"" + name +
                    "\" is not one of single_label_classification, multi_label_classification, regression");
}

namespace {
std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
}  // namespace

std::vector<std::string> split_multi_label(const std::string& cell, const std::string& where) {
  std::vector<std::string> out;
  const std::string t = trim(cell);
  if (!t.empty() && t[0] == '[') {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(t);
    } catch (const nlohmann::json::exception&) {
      throw FormatError(where + ": label " + t + " is not a JSON list");
    }
    if (!j.is_array()) throw FormatError(where + ": label " + t + " is not a JSON list");
    for (const auto& v : j) {
      if (v.is_string())
        out.push_back(v.get<std::string>());
      else if (v.is_number_integer())
        out.push_back(v.dump());
      else
        throw FormatError(where + ": label list " + t + " holds " + v.dump() + ", not a label");
    }
  } else {
    size_t start = 0;
    while (start <= t.size()) {
      const size_t comma = t.find(',', start);
      const std::string item =
          trim(t.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (!item.empty()) out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  for (const auto& l : out)
    if (l.empty()) throw FormatError(where + ": an empty label in " + t);
  return out;
}

LabelMap multi_label_map(const Dataset& ds) {
  if (!ds.has_labels) throw ConfigError(ds.path + ": has no label column, so no labels can be collected");
  std::vector<std::string> all;
  for (const auto& ex : ds.examples)
    for (auto& l : split_multi_label(ex.label, data::where(ds, ex))) all.push_back(std::move(l));
  if (all.empty()) throw ConfigError(ds.path + ": no example has a label");
  return LabelMap::from_labels(all);
}

void set_problem_targets(const Dataset& ds, ProblemType type, const LabelMap* labels,
                         std::vector<EncodedExample>* examples) {
  for (size_t i = 0; i < examples->size(); ++i) {
    EncodedExample& e = (*examples)[i];
    const data::Example& ex = ds.examples[i];
    if (!ds.has_labels) {
      e.label = -100;
      continue;
    }
    e.label = 0;
    if (type == ProblemType::MULTI_LABEL) {
      e.targets.assign(static_cast<size_t>(labels->size()), 0.0f);
      for (const auto& l : split_multi_label(ex.label, data::where(ds, ex))) {
        int64_t id = -1;
        try {
          id = labels->id(l);
        } catch (const std::exception&) {
          id = -1;
        }
        if (id < 0)
          throw FormatError(data::where(ds, ex) + ": unknown label '" + l + "' (not in the training labels)");
        e.targets[static_cast<size_t>(id)] = 1.0f;
      }
    } else if (type == ProblemType::REGRESSION) {
      const std::string t = trim(ex.label);
      size_t used = 0;
      double v = 0;
      try {
        v = std::stod(t, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != t.size() || !std::isfinite(v))
        throw FormatError(data::where(ds, ex) + ": regression label '" + ex.label + "' is not a number");
      e.targets = {static_cast<float>(v)};
    }
  }
}

std::string format_problem_prediction(ProblemType type, const float* row, const LabelMap& labels,
                                      double threshold) {
  if (type == ProblemType::REGRESSION) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(row[0]));
    return buf;
  }
  std::string s;
  for (int64_t k = 0; k < labels.size(); ++k)
    if (row[k] > threshold) s += (s.empty() ? "" : ",") + labels.label(k);
  return s;
}

}  // namespace bertfit
