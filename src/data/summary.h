// What was read, printed before training: rows, classes with their counts, text lengths in characters
// (Unicode code points). Token statistics are computed by the trainer with the same LengthStats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/labels.h"

namespace bertfit::data {

struct LengthStats {
  int64_t count = 0;
  int64_t min = 0, max = 0;
  double mean = 0;
  // Nearest-rank percentiles (the smallest value with at least p% of the values <= it).
  int64_t p50 = 0, p90 = 0, p95 = 0, p99 = 0;
  int64_t total = 0;
  // Share of values above a limit (e.g. the model's maximum length); -1 when no limit was given.
  double share_over_limit = -1;
  int64_t limit = 0;
};

// Statistics of `values` (any order); `limit` > 0 also fills share_over_limit.
LengthStats length_stats(std::vector<int64_t> values, int64_t limit = 0);

struct DataSummary {
  std::string path;
  int64_t rows = 0;
  int64_t skipped = 0;
  std::vector<std::string> class_names;  // label-map order
  std::vector<int64_t> class_counts;     // same order; all zero when the data set has no labels
  LengthStats text_chars;
  LengthStats pair_chars;  // count 0 without pairs
};

// `labels` may be null (unlabelled data) or the label map of the task; labels unknown to it are not
// counted here (LabelMap::encode reports them).
DataSummary summarize(const Dataset& ds, const LabelMap* labels);

// Human-readable, several lines, e.g.
//   train.tsv: 48,000 rows, 39 classes (0 rows skipped)
//   text length (chars): min 12  mean 1,024.5  p50 980  p95 2,010  max 9,500
//   classes: cs.AI 2,000 (4.2%), ...
std::string format_summary(const DataSummary& s);
std::string format_length_stats(const LengthStats& s, const std::string& unit);

}  // namespace bertfit::data
