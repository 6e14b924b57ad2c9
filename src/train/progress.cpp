#include "train/progress.h"

#include <algorithm>
#include <cstdio>
#include <mutex>
#include "core/threading.h"

namespace bertfit {

std::string format_duration(double seconds) {
  if (seconds < 0 || seconds > 1e7) return "--:--";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", s / 60, s % 60);
  return buf;
}

namespace {
std::mutex sink_mutex;
std::shared_ptr<LogSink>& installed_sink() {
  static std::shared_ptr<LogSink> sink;
  return sink;
}
std::shared_ptr<LogSink> current_sink() {
  std::lock_guard<std::mutex> lock(sink_mutex);
  return installed_sink();
}
}  // namespace

std::shared_ptr<LogSink> set_log_sink(std::shared_ptr<LogSink> sink) {
  std::lock_guard<std::mutex> lock(sink_mutex);
  std::swap(installed_sink(), sink);
  return sink;
}

void log_message(const std::string& text) {
  if (auto sink = current_sink()) sink->message(text);
}

Progress::Progress(std::string what, int64_t total, int64_t log_every, std::string unit)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      log_every_(log_every > 0 ? log_every : 1),
      start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::line(int64_t done, const std::string& extra) const {
  const double t = elapsed_seconds();
  const int64_t since = done - (start_done_ < 0 ? 0 : start_done_);
  // Under 50 ms a rate is noise (a small file read in microseconds printed "63885.52 MiB/s"): "-" instead.
  const bool timed = t >= 0.05;
  const double rate = timed ? static_cast<double>(since) / t : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1;
  char rate_text[32] = "-";
  if (timed) std::snprintf(rate_text, sizeof rate_text, "%.2f", rate);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %lld/%lld [%3.0f%%] %s %s/s, %s elapsed, ETA %s", what_.c_str(),
                static_cast<long long>(done), static_cast<long long>(total_),
                total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 0.0, rate_text,
                unit_.c_str(), format_duration(t).c_str(), format_duration(eta).c_str());
  return std::string(buf) + extra;
}

void Progress::update(int64_t done, const std::string& extra) {
  if (start_done_ < 0) {
    start_done_ = done > 0 ? done - 1 : 0;  // a resumed run starts mid-way: rates from here
    last_done_ = start_done_;
  }
  // Milestones where done passes a multiple of log_every (the training loop's logging steps, also after a
  // resume; work counted in larger increments, e.g. bytes) and at the end.
  const bool milestone = done / log_every_ != last_done_ / log_every_ || done == total_;
  last_done_ = done;
  auto sink = current_sink();
  if (!sink) return;
  sink->progress(line(done, extra), milestone);
}

void PhaseProgress::operator()(const std::string& phase, int64_t done, int64_t total) {
  const bool bytes = phase == "read";
  if (phase != phase_) {
    finish();
    phase_ = phase;
    const int64_t t = bytes ? (total + (1 << 20) - 1) >> 20 : total;
    progress_ = std::make_unique<Progress>(what_ + " " + phase, t, std::max<int64_t>(t / 10, 1),
                                           bytes ? "MiB" : "it");
    progress_->update(0);  // rates from the phase's start
    last_ = 0;
  }
  // MiB rounded down, except the end: total MiB are rounded up.
  const int64_t d = !bytes ? done : done >= total ? (total + (1 << 20) - 1) >> 20 : done >> 20;
  if (d == last_) return;  // e.g. the trainer's closing call at the count it already reported
  last_ = d;
  progress_->update(d);
}

std::function<void(int64_t, int64_t)> file_read_progress(const std::string& path, int64_t min_bytes) {
  struct State {
    std::unique_ptr<Progress> progress;
    int64_t last_mib = -1;
  };
  auto state = std::make_shared<State>();
  return [state, path, min_bytes](int64_t done, int64_t total) {
    if (total < min_bytes) return;
    const int64_t total_mib = (total + (1 << 20) - 1) >> 20;  // rounded up, so the end shows the whole file
    if (!state->progress) {
      state->progress =
          std::make_unique<Progress>("read " + path, total_mib, std::max<int64_t>(total_mib / 10, 1), "MiB");
      state->progress->update(0);  // rates from the start of reading
      state->last_mib = 0;
    }
    const int64_t mib = done >= total ? total_mib : done >> 20;
    if (mib != state->last_mib) state->progress->update(mib);
    state->last_mib = mib;
    if (done >= total) {
      state->progress->finish();
      state->progress.reset();
    }
  };
}

void PhaseProgress::finish() {
  if (progress_) progress_->finish();
  progress_.reset();
  phase_.clear();
}

void Progress::message(const std::string& text) {
  log_message(text);
}

void Progress::finish(const std::string& extra) {
  auto sink = current_sink();
  if (!sink) return;
  sink->progress_end();
  sink->message(what_ + " done in " + format_duration(elapsed_seconds()) + extra);
}

void parallel_for_with_progress(const std::string& what, const std::string& unit, int64_t n, int threads,
                                const std::function<void(int64_t)>& body) {
  constexpr int64_t kBlock = 4096;
  // Below five blocks (a second or two of tokenizing on two cores) a display would only flash by.
  std::unique_ptr<Progress> progress;
  if (n >= 5 * kBlock)
    progress = std::make_unique<Progress>(what, n, (n / 10 + kBlock - 1) / kBlock * kBlock, unit);
  if (progress) progress->update(0);
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    parallel_for_dynamic(
        start, end, 64, true, [&](int64_t i) { body(i); }, threads > 0 ? threads : 1);
    if (progress) progress->update(end);
  }
  if (progress) progress->finish();
}

}  // namespace bertfit
