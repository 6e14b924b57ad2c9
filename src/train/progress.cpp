#include "train/progress.h"

#include <cstdio>
#include <mutex>

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

Progress::Progress(std::string what, int64_t total, int64_t log_every)
    : what_(std::move(what)),
      total_(total),
      log_every_(log_every > 0 ? log_every : 1),
      start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

std::string Progress::line(int64_t done, const std::string& extra) const {
  const double t = elapsed_seconds();
  const int64_t since = done - (start_done_ < 0 ? 0 : start_done_);
  const double rate = t > 0 ? static_cast<double>(since) / t : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : -1;
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %lld/%lld [%3.0f%%] %.2f it/s, %s elapsed, ETA %s", what_.c_str(),
                static_cast<long long>(done), static_cast<long long>(total_),
                total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 0.0, rate,
                format_duration(t).c_str(), format_duration(eta).c_str());
  return std::string(buf) + extra;
}

void Progress::update(int64_t done, const std::string& extra) {
  if (start_done_ < 0)
    start_done_ = done > 0 ? done - 1 : 0;  // a resumed run starts mid-way: rates from here
  auto sink = current_sink();
  if (!sink) return;
  // Milestones at multiples of log_every (the training loop's logging steps, also after a resume) and at the
  // end.
  sink->progress(line(done, extra), done % log_every_ == 0 || done == total_);
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

}  // namespace bertfit
