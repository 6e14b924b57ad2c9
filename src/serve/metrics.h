// The service's Prometheus metrics (text exposition format 0.0.4), named as text-embeddings-inference names
// them where it has one: te_request_count / te_request_success {method="single"|"batch"},
// te_request_failure {err=...}, the histograms te_request_duration, te_request_tokenization_duration,
// te_request_queue_duration, te_request_inference_duration (seconds, TEI's buckets: 1.5e-5 * 1.5^k),
// te_request_input_length (tokens), te_batch_next_size, te_batch_next_tokens, te_batch_inference_duration,
// and the gauge te_queue_size. Thread-safe; recording takes one short lock.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace bertfit::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds)
      : bounds_(std::move(upper_bounds)), counts_(bounds_.size()) {}
  void observe(double v);
  // Appends the _bucket / _sum / _count lines of `name`.
  void render(const std::string& name, std::string* out) const;
  uint64_t count() const;

 private:
  mutable std::mutex m_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative (render accumulates)
  uint64_t count_ = 0;
  double sum_ = 0;
};

class Metrics {
 public:
  explicit Metrics(int64_t max_input_length);

  void count_request(const std::string& method);
  void count_success(const std::string& method);
  void count_failure(const std::string& err);
  void set_queue_size(int64_t n);

  Histogram request_duration, tokenization_duration, queue_duration, inference_duration, input_length,
      batch_size, batch_tokens, batch_inference_duration;

  // The whole exposition, every metric with its # HELP and # TYPE lines.
  std::string render() const;
  uint64_t counter(const std::string& name, const std::string& label) const;  // for tests

 private:
  mutable std::mutex m_;
  std::map<std::string, uint64_t> requests_, successes_, failures_;
  int64_t queue_size_ = 0;
};

}  // namespace bertfit::serve
