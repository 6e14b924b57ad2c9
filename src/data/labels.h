// The label vocabulary of a classification task: id2label / label2id, as HuggingFace's config.json stores it.
//
// Order (decided here, because the issue left it open): the labels found in the training data, sorted.
// If every label is a decimal integer ("0", "7", "-1") they sort numerically, so labels 0..10 get ids 0..10,
// as pandas + sklearn's LabelEncoder give for an integer column; otherwise they sort by bytes (UTF-8 code
// point order, as Python's sorted() on str). Sorting makes the mapping independent of row order, so the same
// training file gives the same ids whatever its shuffling, and two runs agree. A model loaded with its own
// id2label keeps that order (from_id2label).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"

namespace bertfit::data {

class LabelMap {
 public:
  LabelMap() = default;
  // The distinct labels of a labelled data set, sorted as above. Throws ConfigError for an unlabelled set.
  static LabelMap from_dataset(const Dataset& ds);
  static LabelMap from_labels(const std::vector<std::string>& labels);  // distinct, sorted as above
  // Keeps the given order (a model's id2label); throws ConfigError on a duplicate or empty label.
  static LabelMap from_id2label(const std::vector<std::string>& id2label);

  int64_t size() const { return static_cast<int64_t>(id2label_.size()); }
  const std::vector<std::string>& id2label() const { return id2label_; }
  const std::string& label(int64_t id) const { return id2label_.at(static_cast<size_t>(id)); }
  // -1 when unknown.
  int64_t id(const std::string& label) const;

  // Label ids of every example. An example whose label is not in the map throws FormatError
  // "<file>:<line>: unknown label '<x>' (not in the training labels: a, b, ...)".
  std::vector<int64_t> encode(const Dataset& ds) const;

 private:
  std::vector<std::string> id2label_;
  std::unordered_map<std::string, int64_t> label2id_;
};

}  // namespace bertfit::data
