// Data summaries (see summary.h).
#include "data/summary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/utf8.h"

namespace bertfit::data {

namespace {

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return (v < 0 ? "-" : "") + out;
}

int64_t nearest_rank(const std::vector<int64_t>& sorted, double p) {
  const size_t n = sorted.size();
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

}  // namespace

LengthStats length_stats(std::vector<int64_t> values, int64_t limit) {
  LengthStats s;
  s.count = static_cast<int64_t>(values.size());
  s.limit = limit;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  for (const int64_t v : values) s.total += v;
  s.mean = static_cast<double>(s.total) / static_cast<double>(s.count);
  s.p50 = nearest_rank(values, 50);
  s.p90 = nearest_rank(values, 90);
  s.p95 = nearest_rank(values, 95);
  s.p99 = nearest_rank(values, 99);
  if (limit > 0) {
    const auto over = values.end() - std::upper_bound(values.begin(), values.end(), limit);
    s.share_over_limit = static_cast<double>(over) / static_cast<double>(s.count);
  }
  return s;
}

DataSummary summarize(const Dataset& ds, const LabelMap* labels) {
  DataSummary s;
  s.path = ds.path;
  s.rows = static_cast<int64_t>(ds.examples.size());
  s.skipped = static_cast<int64_t>(ds.skipped.size());
  if (labels) {
    s.class_names = labels->id2label();
    s.class_counts.assign(s.class_names.size(), 0);
  }
  std::vector<int64_t> text_len, pair_len;
  text_len.reserve(ds.examples.size());
  for (const auto& ex : ds.examples) {
    text_len.push_back(utf8_length(ex.text));
    if (ds.has_pairs) pair_len.push_back(utf8_length(ex.text_pair));
    if (labels && ds.has_labels) {
      const int64_t id = labels->id(ex.label);
      if (id >= 0) ++s.class_counts[static_cast<size_t>(id)];
    }
  }
  s.text_chars = length_stats(std::move(text_len));
  s.pair_chars = length_stats(std::move(pair_len));
  return s;
}

std::string format_length_stats(const LengthStats& s, const std::string& unit) {
  char mean[64];
  std::snprintf(mean, sizeof mean, "%.1f", s.mean);
  std::string out = "length (" + unit + "): min " + with_commas(s.min) + "  mean " + mean + "  p50 " +
                    with_commas(s.p50) + "  p90 " + with_commas(s.p90) + "  p95 " + with_commas(s.p95) +
                    "  p99 " + with_commas(s.p99) + "  max " + with_commas(s.max);
  if (s.share_over_limit >= 0) {
    char share[64];
    std::snprintf(share, sizeof share, "%.1f%%", 100.0 * s.share_over_limit);
    out += "  over " + with_commas(s.limit) + ": " + share;
  }
  return out;
}

std::string format_summary(const DataSummary& s) {
  std::string out = s.path + ": " + with_commas(s.rows) + " rows";
  if (!s.class_names.empty())
    out += ", " + with_commas(static_cast<int64_t>(s.class_names.size())) + " classes";
  out += " (" + with_commas(s.skipped) + " bad rows skipped)\n";
  out += "  text " + format_length_stats(s.text_chars, "chars") + "\n";
  if (s.pair_chars.count > 0) out += "  second text " + format_length_stats(s.pair_chars, "chars") + "\n";
  if (!s.class_names.empty()) {
    out += "  classes:";
    for (size_t i = 0; i < s.class_names.size(); ++i) {
      char share[32];
      std::snprintf(
          share, sizeof share, "%.1f%%",
          s.rows ? 100.0 * static_cast<double>(s.class_counts[i]) / static_cast<double>(s.rows) : 0.0);
      out += (i % 4 == 0 ? "\n    " : "  ") + s.class_names[i] + " " + with_commas(s.class_counts[i]) + " (" +
             share + ")";
    }
    out += "\n";
  }
  return out;
}

}  // namespace bertfit::data
