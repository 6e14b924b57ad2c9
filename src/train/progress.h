// Progress of long work: on a terminal a one-line display redrawn at most 10 times a second (count, rate,
// ETA and whatever the caller adds, e.g. the loss); otherwise plain log lines every `log_every` units, so CI
// logs and files stay readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace bertfit {

class Progress {
 public:
  Progress(std::string what, int64_t total, int64_t log_every);
  // done units so far; extra is appended (" loss 0.53 lr 2e-05").
  void update(int64_t done, const std::string& extra = "");
  // Ends the display line (terminal) and prints the summary.
  void finish(const std::string& extra = "");
  // Prints a message without breaking the display.
  void message(const std::string& text);
  double elapsed_seconds() const;

 private:
  std::string line(int64_t done, const std::string& extra) const;
  std::string what_;
  int64_t total_, log_every_, start_done_ = -1, last_logged_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

// "1:02:03" / "02:03"
std::string format_duration(double seconds);

}  // namespace bertfit
