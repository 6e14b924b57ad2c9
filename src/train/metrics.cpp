// Classification metrics and sklearn-style reports (see metrics.h for the definitions).
#include "train/metrics.h"

#include <algorithm>
#include <cstdio>

#include "bertfit/error.h"

namespace bertfit {

namespace {

double safe_div(double a, double b) {
  return b == 0 ? 0.0 : a / b;
}  // zero_division=0

double f1_of(double p, double r) {
  return p + r == 0 ? 0.0 : 2 * p * r / (p + r);
}

// Display width as Python's len() counts it (code points), so non-ASCII class names align as in sklearn.
size_t display_len(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string pad_left(const std::string& s, size_t width) {
  const size_t len = display_len(s);
  return len >= width ? s : std::string(width - len, ' ') + s;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string class_name(const std::vector<std::string>& names, int64_t c) {
  return static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] : std::to_string(c);
}

}  // namespace

ClassificationMetrics compute_metrics(const std::vector<int64_t>& predictions,
                                      const std::vector<int64_t>& labels, int64_t num_classes) {
  if (num_classes < 1) throw ConfigError("metrics: num_classes must be at least 1");
  if (predictions.size() != labels.size())
    throw ConfigError("metrics: " + std::to_string(predictions.size()) + " predictions but " +
                      std::to_string(labels.size()) + " labels");
  ClassificationMetrics m;
  m.num_classes = num_classes;
  m.count = static_cast<int64_t>(labels.size());
  const size_t C = static_cast<size_t>(num_classes);
  m.per_class.assign(C, {});
  m.reported.assign(C, false);
  m.confusion.assign(C * C, 0);
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    const int64_t t = labels[i], p = predictions[i];
    if (t < 0 || t >= num_classes || p < 0 || p >= num_classes)
      throw ConfigError("metrics: example " + std::to_string(i) + " has label " + std::to_string(t) +
                        " / prediction " + std::to_string(p) + ", outside [0, " +
                        std::to_string(num_classes) + ")");
    ++m.confusion[static_cast<size_t>(t) * C + static_cast<size_t>(p)];
    ++m.per_class[static_cast<size_t>(t)].support;
    ++m.per_class[static_cast<size_t>(p)].predicted;
    correct += t == p;
  }
  if (m.count == 0) return m;
  m.accuracy = static_cast<double>(correct) / static_cast<double>(m.count);
  m.error_rate = 1.0 - m.accuracy;
  int64_t reported = 0, tp_sum = 0, pred_sum = 0, true_sum = 0;
  for (size_t c = 0; c < C; ++c) {
    ClassMetrics& k = m.per_class[c];
    const int64_t tp = m.confusion[c * C + c];
    k.precision = safe_div(static_cast<double>(tp), static_cast<double>(k.predicted));
    k.recall = safe_div(static_cast<double>(tp), static_cast<double>(k.support));
    k.f1 = f1_of(k.precision, k.recall);
    m.reported[c] = k.support > 0 || k.predicted > 0;
    if (!m.reported[c]) continue;
    ++reported;
    tp_sum += tp;
    pred_sum += k.predicted;
    true_sum += k.support;
    m.macro.precision += k.precision;
    m.macro.recall += k.recall;
    m.macro.f1 += k.f1;
    const double w = static_cast<double>(k.support);
    m.weighted.precision += w * k.precision;
    m.weighted.recall += w * k.recall;
    m.weighted.f1 += w * k.f1;
  }
  m.macro.precision /= static_cast<double>(reported);
  m.macro.recall /= static_cast<double>(reported);
  m.macro.f1 /= static_cast<double>(reported);
  m.weighted.precision = safe_div(m.weighted.precision, static_cast<double>(true_sum));
  m.weighted.recall = safe_div(m.weighted.recall, static_cast<double>(true_sum));
  m.weighted.f1 = safe_div(m.weighted.f1, static_cast<double>(true_sum));
  m.micro.precision = safe_div(static_cast<double>(tp_sum), static_cast<double>(pred_sum));
  m.micro.recall = safe_div(static_cast<double>(tp_sum), static_cast<double>(true_sum));
  m.micro.f1 = f1_of(m.micro.precision, m.micro.recall);
  return m;
}

std::string classification_report(const ClassificationMetrics& m, const std::vector<std::string>& names,
                                  int digits) {
  // Layout of sklearn 1.2's classification_report: right-aligned name column as wide as the longest name or
  // "weighted avg", then 9-wide columns separated by one extra space.
  std::vector<int64_t> rows;
  for (int64_t c = 0; c < m.num_classes; ++c)
    if (m.reported[static_cast<size_t>(c)]) rows.push_back(c);
  size_t width = std::string("weighted avg").size();
  for (const int64_t c : rows) width = std::max(width, display_len(class_name(names, c)));
  width = std::max(width, static_cast<size_t>(digits));
  auto col = [](const std::string& s) { return " " + pad_left(s, 9); };
  std::string out =
      pad_left("", width) + " " + col("precision") + col("recall") + col("f1-score") + col("support");
  out += "\n\n";
  auto line = [&](const std::string& head, const std::string& p, const std::string& r, const std::string& f,
                  int64_t support) {
    return pad_left(head, width) + " " + col(p) + col(r) + col(f) + col(std::to_string(support)) + "\n";
  };
  for (const int64_t c : rows) {
    const ClassMetrics& k = m.per_class[static_cast<size_t>(c)];
    out += line(class_name(names, c), fixed(k.precision, digits), fixed(k.recall, digits),
                fixed(k.f1, digits), k.support);
  }
  out += "\n";
  // Single-label data: the micro row is accuracy, printed with blank precision and recall.
  out += line("accuracy", "", "", fixed(m.micro.f1, digits), m.count);
  out += line("macro avg", fixed(m.macro.precision, digits), fixed(m.macro.recall, digits),
              fixed(m.macro.f1, digits), m.count);
  out += line("weighted avg", fixed(m.weighted.precision, digits), fixed(m.weighted.recall, digits),
              fixed(m.weighted.f1, digits), m.count);
  return out;
}

std::string format_confusion_matrix(const ClassificationMetrics& m, const std::vector<std::string>& names) {
  size_t name_width = std::string("true \\ pred").size();
  for (int64_t c = 0; c < m.num_classes; ++c)
    name_width = std::max(name_width, display_len(std::to_string(c) + " " + class_name(names, c)));
  size_t cell = 1;
  for (const int64_t v : m.confusion) cell = std::max(cell, std::to_string(v).size());
  cell = std::max(cell, std::to_string(m.num_classes - 1).size());
  std::string out = pad_left("true \\ pred", name_width);
  for (int64_t c = 0; c < m.num_classes; ++c) out += " " + pad_left(std::to_string(c), cell);
  out += "\n";
  for (int64_t t = 0; t < m.num_classes; ++t) {
    std::string head = std::to_string(t) + " " + class_name(names, t);
    out += head + std::string(name_width > display_len(head) ? name_width - display_len(head) : 0, ' ');
    for (int64_t p = 0; p < m.num_classes; ++p)
      out += " " + pad_left(std::to_string(m.confusion_at(t, p)), cell);
    out += "\n";
  }
  return out;
}

}  // namespace bertfit
