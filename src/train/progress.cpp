#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

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

Progress::Progress(std::string what, int64_t total, int64_t log_every)
    : what_(std::move(what)),
      total_(total),
      log_every_(log_every > 0 ? log_every : 1),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

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
  if (start_done_ < 0) {  // a resumed run starts mid-way: rates count from here
    start_done_ = done > 0 ? done - 1 : 0;
    last_logged_ = done - 1;
  }
  if (tty_) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r%s\033[K", line(done, extra).c_str());
    std::fflush(stderr);
    drawn_ = true;
  } else if (done - last_logged_ >= log_every_ || done == total_) {
    last_logged_ = done;
    std::fprintf(stderr, "%s\n", line(done, extra).c_str());
  }
}

void Progress::message(const std::string& text) {
  if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(stderr, "%s\n", text.c_str());
  drawn_ = false;
}

void Progress::finish(const std::string& extra) {
  if (tty_ && drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
  std::fprintf(stderr, "%s done in %s%s\n", what_.c_str(), format_duration(elapsed_seconds()).c_str(),
               extra.c_str());
}

}  // namespace bertfit
