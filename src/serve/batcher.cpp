#include "serve/batcher.h"

#include <algorithm>
#include <numeric>

#include "serve/api_error.h"

namespace bertfit::serve {

Batcher::Batcher(Classifier& c, const BatcherOptions& options, Metrics* metrics)
    : runner_(c), options_(options), metrics_(metrics), num_labels_(runner_.num_labels()) {
  thread_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() {
  shutdown();
}

void Batcher::shutdown() {
  {
    std::lock_guard<std::mutex> lock(m_);
    stopping_ = true;
  }
  work_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Batcher::queue_size() const {
  std::lock_guard<std::mutex> lock(m_);
  return static_cast<int64_t>(queue_.size());
}

Batcher::Result Batcher::run(std::vector<EncodedExample> inputs) {
  return submit(std::move(inputs), false);
}

void Batcher::warm_up(std::vector<EncodedExample> inputs) {
  submit(std::move(inputs), true);
}

Batcher::Result Batcher::submit(std::vector<EncodedExample> inputs, bool warm_up) {
  Job job;
  job.warm_up = warm_up;
  const size_t n = inputs.size();
  job.logits.assign(n * static_cast<size_t>(num_labels_), 0.0f);
  job.remaining = n;
  Result r;
  if (n == 0) return r;
  std::unique_lock<std::mutex> lock(m_);
  if (stopping_) throw ApiError(503, ErrorType::UNHEALTHY, "the server is shutting down");
  const auto now = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    EncodedExample& e = inputs[i];
    const int64_t rows = std::max<int64_t>(1, static_cast<int64_t>(e.seqs.size()));
    const int64_t length = e.length();
    queue_.push_back({&job, i, std::move(e), rows, length, now});
  }
  if (metrics_) metrics_->set_queue_size(static_cast<int64_t>(queue_.size()));
  lock.unlock();
  work_.notify_one();
  lock.lock();
  job.done.wait(lock, [&] { return job.remaining == 0; });
  if (job.error) std::rethrow_exception(job.error);
  r.logits = std::move(job.logits);
  r.queue_seconds = job.queue_seconds / static_cast<double>(n);
  r.inference_seconds = job.inference_seconds / static_cast<double>(n);
  return r;
}

std::vector<Batcher::Entry> Batcher::take_batch() {
  std::vector<Entry> batch;
  // The oldest input always runs (even alone above the budget: the server checks at start that one input of
  // the longest kind fits); then its length neighbours, nearest first, while the padded batch fits.
  const int64_t len0 = queue_.front().length;
  std::vector<size_t> order(queue_.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin() + 1, order.end(), [&](size_t a, size_t b) {
    return std::llabs(queue_[a].length - len0) < std::llabs(queue_[b].length - len0);
  });
  int64_t docs = 0, max_rows = 0, max_len = 0;
  std::vector<size_t> chosen;
  for (size_t k = 0; k < order.size(); ++k) {
    const Entry& e = queue_[order[k]];
    const int64_t rows = std::max(max_rows, e.rows), len = std::max(max_len, e.length);
    if (k > 0) {
      if (options_.max_batch_requests > 0 && docs + 1 > options_.max_batch_requests) break;
      if (api::padded_tokens(docs + 1, rows, len) > options_.max_batch_tokens) continue;
    }
    chosen.push_back(order[k]);
    ++docs, max_rows = rows, max_len = len;
  }
  std::sort(chosen.begin(), chosen.end());
  batch.reserve(chosen.size());
  for (size_t i : chosen) batch.push_back(std::move(queue_[i]));
  // Erase the chosen entries, keeping the others in arrival order.
  size_t w = 0, c = 0;
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (c < chosen.size() && chosen[c] == i) {
      ++c;
      continue;
    }
    if (w != i) queue_[w] = std::move(queue_[i]);
    ++w;
  }
  queue_.resize(w);
  return batch;
}

void Batcher::loop() {
  std::vector<EncodedExample> examples;
  std::vector<float> logits;
  for (;;) {
    std::vector<Entry> batch;
    {
      std::unique_lock<std::mutex> lock(m_);
      work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      batch = take_batch();
      if (metrics_) metrics_->set_queue_size(static_cast<int64_t>(queue_.size()));
    }
    const auto start = Clock::now();
    examples.clear();
    int64_t max_rows = 0, max_len = 0;
    for (Entry& e : batch) {
      examples.push_back(std::move(e.ex));
      max_rows = std::max(max_rows, e.rows);
      max_len = std::max(max_len, e.length);
    }
    std::exception_ptr error;
    try {
      runner_.run(examples, &logits);
    } catch (const std::exception& ex) {
      error = std::make_exception_ptr(
          ApiError(424, ErrorType::BACKEND, std::string("inference failed: ") + ex.what()));
    }
    const auto end = Clock::now();
    const double inference = std::chrono::duration<double>(end - start).count();
    if (metrics_ && !batch.front().job->warm_up) {
      metrics_->batch_size.observe(static_cast<double>(batch.size()));
      metrics_->batch_tokens.observe(
          static_cast<double>(api::padded_tokens(static_cast<int64_t>(batch.size()), max_rows, max_len)));
      metrics_->batch_inference_duration.observe(inference);
    }
    std::lock_guard<std::mutex> lock(m_);
    for (size_t r = 0; r < batch.size(); ++r) {
      Entry& e = batch[r];
      Job& job = *e.job;
      if (error) {
        job.error = error;
      } else {
        std::copy(logits.begin() + static_cast<int64_t>(r) * num_labels_,
                  logits.begin() + static_cast<int64_t>(r + 1) * num_labels_,
                  job.logits.begin() + static_cast<int64_t>(e.index) * num_labels_);
      }
      job.queue_seconds += std::chrono::duration<double>(start - e.queued).count();
      job.inference_seconds += inference;
      if (--job.remaining == 0) job.done.notify_one();
    }
  }
}

}  // namespace bertfit::serve
