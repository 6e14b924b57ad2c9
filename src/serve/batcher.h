// Dynamic batching: request threads queue their encoded inputs; one inference thread takes the OLDEST queued
// input and the queued inputs nearest to it in length (length grouping, as training's batches), every one
// that fits a token budget (--max-batch-tokens, counted as the positions the batch's activations take: rows x
// longest sequence, padding included) and --max-batch-requests inputs, runs them as one forward pass and
// hands each request its logits. Taking the oldest first means no input waits behind an unbounded stream of
// better-fitting ones. Taking all that fit: inference is padding-free (model/bert_model.h: the products and
// attention compute the real tokens only), so a pass costs its real tokens plus a fixed cost, which the more
// inputs share it the less each pays (measured: docs/benchmarks.md). An earlier rule weighed padding against
// that fixed cost, when padding was computed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "api/inference.h"
#include "serve/metrics.h"

namespace bertfit::serve {

struct BatcherOptions {
  int64_t max_batch_tokens = 4096;
  int64_t max_batch_requests = 0;  // 0: no limit but the token budget
};

class Batcher {
 public:
  // Starts the inference thread. The classifier must outlive the batcher; only this thread runs its model.
  Batcher(Classifier& c, const BatcherOptions& options, Metrics* metrics);
  ~Batcher();  // shutdown()

  struct Result {
    std::vector<float> logits;     // [inputs, num_labels]
    double queue_seconds = 0;      // mean over the inputs: enqueued -> its batch starts
    double inference_seconds = 0;  // mean over the inputs: the forward pass of its batch
  };
  // Queues the inputs and blocks until each has run. Throws ApiError (backend) when the model failed,
  // (unhealthy) after shutdown began.
  Result run(std::vector<EncodedExample> inputs);

  // Runs these inputs as one forward pass on the inference thread before any request (the caller's thread
  // waits): sizes the arena for the largest batch expected. Not counted in the metrics.
  void warm_up(std::vector<EncodedExample> inputs);

  // Refuses new work, finishes everything queued, stops the thread. Idempotent.
  void shutdown();
  int64_t queue_size() const;
  int64_t num_labels() const { return num_labels_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Job {
    std::vector<float> logits;
    size_t remaining = 0;
    double queue_seconds = 0, inference_seconds = 0;
    bool warm_up = false;  // not counted in the metrics
    std::exception_ptr error;
    std::condition_variable done;
  };
  struct Entry {
    Job* job;
    size_t index;
    EncodedExample ex;
    int64_t rows, length;  // its sequences (chunks) and its longest sequence
    Clock::time_point queued;
  };

  Result submit(std::vector<EncodedExample> inputs, bool warm_up);
  void loop();
  // Moves the next batch out of queue_ (lock held).
  std::vector<Entry> take_batch();

  api::BatchRunner runner_;
  BatcherOptions options_;
  Metrics* metrics_;
  int64_t num_labels_;
  mutable std::mutex m_;
  std::condition_variable work_;
  std::deque<Entry> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bertfit::serve
