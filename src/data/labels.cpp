// Label vocabulary (see labels.h for the order).
#include "data/labels.h"

#include <algorithm>
#include <set>

#include "bertfit/error.h"

namespace bertfit::data {

namespace {

// A canonical decimal integer that fits in int64: optional '-', digits, no leading zeros, no '+'.
bool parse_int_label(const std::string& s, long long& out) {
  size_t i = s[0] == '-' ? 1 : 0;
  if (i == s.size() || s.size() - i > 18) return false;  // 18 digits always fit in int64
  if (s[i] == '0' && s.size() - i > 1) return false;
  if (s == "-0") return false;
  long long v = 0;
  for (size_t k = i; k < s.size(); ++k) {
    if (s[k] < '0' || s[k] > '9') return false;
    v = v * 10 + (s[k] - '0');
  }
  out = i ? -v : v;
  return true;
}

}  // namespace

LabelMap LabelMap::from_labels(const std::vector<std::string>& labels) {
  std::set<std::string> distinct(labels.begin(), labels.end());
  std::vector<std::string> sorted(distinct.begin(), distinct.end());
  bool all_int = !sorted.empty();
  std::vector<std::pair<long long, std::string>> ints;
  for (const auto& s : sorted) {
    long long v;
    if (s.empty() || !parse_int_label(s, v)) {
      all_int = false;
      break;
    }
    ints.emplace_back(v, s);
  }
  if (all_int) {
    std::sort(ints.begin(), ints.end());
    for (size_t i = 0; i < ints.size(); ++i) sorted[i] = ints[i].second;
  }
  return from_id2label(sorted);
}

LabelMap LabelMap::from_dataset(const Dataset& ds) {
  if (!ds.has_labels) throw ConfigError(ds.path + ": has no label column, so no labels can be collected");
  std::vector<std::string> labels;
  labels.reserve(ds.examples.size());
  for (const auto& ex : ds.examples) labels.push_back(ex.label);
  return from_labels(labels);
}

LabelMap LabelMap::from_id2label(const std::vector<std::string>& id2label) {
  LabelMap m;
  m.id2label_ = id2label;
  for (size_t i = 0; i < id2label.size(); ++i) {
    if (id2label[i].empty()) throw ConfigError("label " + std::to_string(i) + " is empty");
    if (!m.label2id_.emplace(id2label[i], static_cast<int64_t>(i)).second)
      throw ConfigError("label '" + id2label[i] + "' appears twice in id2label");
  }
  return m;
}

int64_t LabelMap::id(const std::string& label) const {
  const auto it = label2id_.find(label);
  return it == label2id_.end() ? -1 : it->second;
}

std::vector<int64_t> LabelMap::encode(const Dataset& ds) const {
  if (!ds.has_labels) throw ConfigError(ds.path + ": has no label column");
  std::vector<int64_t> ids;
  ids.reserve(ds.examples.size());
  for (const auto& ex : ds.examples) {
    const int64_t id = this->id(ex.label);
    if (id < 0) {
      std::string known;
      const size_t show = std::min<size_t>(id2label_.size(), 20);
      for (size_t i = 0; i < show; ++i) known += (i ? ", " : "") + id2label_[i];
      if (show < id2label_.size()) known += ", ... (" + std::to_string(id2label_.size()) + " in all)";
      throw FormatError(where(ds, ex) + ": unknown label '" + ex.label +
                        "' (not among the training labels: " + known + ")");
    }
    ids.push_back(id);
  }
  return ids;
}

}  // namespace bertfit::data
