// What the library tells its user while it works, and where that goes. The library prints nothing itself:
// messages and progress displays go to the LogSink the program installs (the CLI's writes to stderr:
// cli/stderr_log_sink.h; a test's records), as ggml's and CTranslate2's log callbacks; with none installed,
// nothing is shown.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace bertfit {

class LogSink {
 public:
  virtual ~LogSink() = default;
  // A complete line: a note, a data summary, an evaluation result.
  virtual void message(const std::string& text) = 0;
  // A progress display's new state ("train 40/100 [ 40%] 2.1 it/s, ... loss 0.53"), replacing the previous
  // one. `milestone`: every log_every units and at the end, where a plain log (not a terminal) writes a line.
  virtual void progress(const std::string& text, bool milestone) = 0;
  // The progress display ends (a terminal moves past its line).
  virtual void progress_end() = 0;
};

// Installs the process's sink (nullptr: silence) and returns the previous one.
std::shared_ptr<LogSink> set_log_sink(std::shared_ptr<LogSink> sink);
// Sends a line to the installed sink.
void log_message(const std::string& text);

// Progress of long work: count, rate, ETA and whatever the caller adds (e.g. the loss), sent to the sink.
class Progress {
 public:
  // `unit` names what is counted in the rate ("it/s", "MiB/s"). A plain log (not a terminal) gets a line
  // each time `done` passes a multiple of log_every, and at the end.
  Progress(std::string what, int64_t total, int64_t log_every, std::string unit = "it");
  // done units so far; extra is appended (" loss 0.53 lr 2e-05").
  void update(int64_t done, const std::string& extra = "");
  // Ends the display and sends the summary line.
  void finish(const std::string& extra = "");
  // Sends a line (the sink keeps the display intact).
  void message(const std::string& text);
  double elapsed_seconds() const;

 private:
  std::string line(int64_t done, const std::string& extra) const;
  std::string what_, unit_;
  int64_t total_, log_every_, start_done_ = -1, last_done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Progress of work in named phases reported through a callback (the vocabulary trainer's "read" in bytes
// and "merge" in vocabulary entries, tokenizer.h): one display per phase, "<what> <phase>", with its rate
// and ETA; bytes are shown in MiB.
class PhaseProgress {
 public:
  explicit PhaseProgress(std::string what) : what_(std::move(what)) {}
  void operator()(const std::string& phase, int64_t done, int64_t total);
  void finish();

 private:
  std::string what_, phase_;
  int64_t last_ = -1;
  std::unique_ptr<Progress> progress_;
};

// body(i) for every i in [0, n) on `threads` threads of the pool (dynamic chunks of 64), in blocks of 4096
// with a progress display "<what>" counted in `unit` between blocks when n is large (tokenizing big files).
// body must not throw (catch inside, as encode_examples does).
void parallel_for_with_progress(const std::string& what, const std::string& unit, int64_t n, int threads,
                                const std::function<void(int64_t)>& body);

// A display "read <path> 12/40 [ 30%] 85.00 MiB/s, ... ETA 00:01" for data::DatasetSpec::on_progress
// (reading a data file, in MiB). Files under min_bytes show nothing: the reader gets through them in well
// under a second (about 100 MiB/s on this project's machines), where a display would only flash by.
std::function<void(int64_t done, int64_t total)> file_read_progress(const std::string& path,
                                                                    int64_t min_bytes = int64_t{32} << 20);

// "1:02:03" / "02:03"
std::string format_duration(double seconds);

}  // namespace bertfit
