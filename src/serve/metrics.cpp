#include "serve/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace bertfit::serve {

namespace {

// TEI's duration buckets (router/src/prometheus.rs): 35 of them, 1e-5 * 1.5^k for k = 1..35 (15 us .. 1.9 h).
std::vector<double> duration_buckets() {
  std::vector<double> b;
  double v = 0.00001;
  for (int i = 0; i < 35; ++i) b.push_back(v *= 1.5);
  return b;
}

std::vector<double> powers_of_two(int n, double at_most) {
  std::vector<double> b;
  for (int i = 0; i < n; ++i) {
    const double v = std::ldexp(1.0, i);
    if (v <= at_most) b.push_back(v);
  }
  return b;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string* out, const std::string& name, const char* type, const char* help) {
  *out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void labelled(std::string* out, const std::string& name, const char* label,
              const std::map<std::string, uint64_t>& values) {
  for (const auto& [k, v] : values)
    *out += name + "{" + label + "=\"" + k + "\"} " + std::to_string(v) + "\n";
}

}  // namespace

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(m_);
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  if (i < counts_.size()) ++counts_[i];  // le is inclusive; above the last bound only +Inf counts it
  ++count_;
  sum_ += v;
}

uint64_t Histogram::count() const {
  std::lock_guard<std::mutex> lock(m_);
  return count_;
}

void Histogram::render(const std::string& name, std::string* out) const {
  std::lock_guard<std::mutex> lock(m_);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    *out += name + "_bucket{le=\"" + number(bounds_[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  *out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  *out += name + "_sum " + number(sum_) + "\n";
  *out += name + "_count " + std::to_string(count_) + "\n";
}

Metrics::Metrics(int64_t max_input_length)
    : request_duration(duration_buckets()),
      tokenization_duration(duration_buckets()),
      queue_duration(duration_buckets()),
      inference_duration(duration_buckets()),
      input_length(powers_of_two(20, static_cast<double>(max_input_length))),
      batch_size(powers_of_two(13, 1e300)),
      batch_tokens(powers_of_two(21, 1e300)),
      batch_inference_duration(duration_buckets()) {}

void Metrics::count_request(const std::string& method) {
  std::lock_guard<std::mutex> lock(m_);
  ++requests_[method];
}
void Metrics::count_success(const std::string& method) {
  std::lock_guard<std::mutex> lock(m_);
  ++successes_[method];
}
void Metrics::count_failure(const std::string& err) {
  std::lock_guard<std::mutex> lock(m_);
  ++failures_[err];
}
void Metrics::set_queue_size(int64_t n) {
  std::lock_guard<std::mutex> lock(m_);
  queue_size_ = n;
}

uint64_t Metrics::counter(const std::string& name, const std::string& label) const {
  std::lock_guard<std::mutex> lock(m_);
  const auto& m = name == "te_request_count"     ? requests_
                  : name == "te_request_success" ? successes_
                                                 : failures_;
  auto it = m.find(label);
  return it == m.end() ? 0 : it->second;
}

std::string Metrics::render() const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(m_);
    header(&out, "te_request_count", "counter", "Requests received, by method (single input or batch)");
    labelled(&out, "te_request_count", "method", requests_);
    header(&out, "te_request_success", "counter", "Requests answered with 200, by method");
    labelled(&out, "te_request_success", "method", successes_);
    header(&out, "te_request_failure", "counter", "Requests refused or failed, by error type");
    labelled(&out, "te_request_failure", "err", failures_);
    header(&out, "te_queue_size", "gauge", "Inputs waiting for a batch");
    out += "te_queue_size " + std::to_string(queue_size_) + "\n";
  }
  const std::pair<const char*, const Histogram*> hs[] = {
      {"te_request_duration", &request_duration},
      {"te_request_tokenization_duration", &tokenization_duration},
      {"te_request_queue_duration", &queue_duration},
      {"te_request_inference_duration", &inference_duration},
      {"te_request_input_length", &input_length},
      {"te_batch_next_size", &batch_size},
      {"te_batch_next_tokens", &batch_tokens},
      {"te_batch_inference_duration", &batch_inference_duration},
  };
  const char* helps[] = {"Seconds from request to response (successful predictions)",
                         "Seconds spent encoding a request's texts",
                         "Seconds an input waited for its batch (mean over a request's inputs)",
                         "Seconds of the forward pass that ran an input (mean over a request's inputs)",
                         "Tokens per input, special tokens included, before truncation",
                         "Inputs per batch run",
                         "Positions per batch run (rows x longest sequence, padding included)",
                         "Seconds per batch forward pass"};
  for (size_t i = 0; i < std::size(hs); ++i) {
    header(&out, hs[i].first, "histogram", helps[i]);
    hs[i].second->render(hs[i].first, &out);
  }
  return out;
}

}  // namespace bertfit::serve
