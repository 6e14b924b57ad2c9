// bertfit: fine-tune BERT-family models for text classification. Entry point of the command line.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/config_file.h"
#include "cli/suggest.h"
#include "core/aligned_buffer.h"
#include "core/wait_policy.h"
#include "dist/communicator.h"
#include "train/progress.h"

namespace {

// The library's messages and progress on stderr: on a terminal one progress line redrawn at most 10 times a
// second; otherwise (CI logs, files) a plain line at every milestone, so logs stay readable.
class StderrLogSink : public bertfit::LogSink {
 public:
  void message(const std::string& text) override {
    if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
    std::fprintf(stderr, "%s\n", text.c_str());
    drawn_ = false;
  }
  void progress(const std::string& text, bool milestone) override {
    if (!tty_) {
      if (milestone) std::fprintf(stderr, "%s\n", text.c_str());
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (!milestone && drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    std::fprintf(stderr, "\r%s\033[K", text.c_str());
    std::fflush(stderr);
    drawn_ = true;
  }
  void progress_end() override {
    if (tty_ && drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  bool tty_ = isatty(STDERR_FILENO) != 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_;
};

// bertfit's own kernels run on its own thread pool, which waits adaptively (core/wait_policy.h). OpenBLAS,
// used only with BERTFIT_GEMM=openblas, keeps libgomp's threads, and those spin by default: with libgomp's
// default BERT-base batch-1 inference ran 2.5-3x slower than with passive waiting when other processes
// shared the two cores (docs/benchmarks.md, OpenMP waiting). libgomp reads OMP_WAIT_POLICY when it is
// loaded, before main, so passive waiting is set by running the program again with it, once; a user's
// OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
void default_to_passive_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: go on with libgomp's default
  unsetenv("OMP_WAIT_POLICY");
}

}  // namespace

int main(int argc, char** argv) {
  default_to_passive_waiting(argv);
  CLI::App app{
      "bertfit: fine-tune BERT / RoBERTa for text classification, natively on CPUs.\n"
      "HuggingFace model directories in and out. Run `bertfit <command> --help` for each command."};
  app.name(
      "bertfit");  // arguments are parsed from a vector (after --config expansion): name the program here
  app.require_subcommand(1);
  app.set_version_flag("--version", "bertfit 0.1.0");
  bertfit::cli::add_info_command(app);
  bertfit::cli::add_finetune_command(app);
  bertfit::cli::add_evaluate_command(app);
  bertfit::cli::add_predict_command(app);
  bertfit::cli::add_ensemble_command(app);
  bertfit::cli::add_dataset_command(app);
  bertfit::cli::add_tokenize_command(app);
  bertfit::cli::add_inspect_command(app);
  bertfit::cli::add_pretrain_command(app);
  bertfit::cli::add_report_command(app);
  bertfit::cli::add_serve_command(app);
  bertfit::cli::add_quantize_command(app);
  bertfit::set_log_sink(std::make_shared<StderrLogSink>());
  // Under mpirun (a build with MPI): one rank of a data-parallel run. Rank 0 speaks for the job; a rank that
  // fails says so itself, naming its rank, and ends every rank (no rank is left waiting in a collective).
  std::string who = "bertfit";
  auto fail = [&](const char* kind, const char* what, int code) {
    std::fprintf(stderr, "%s: %s%s\n", who.c_str(), kind, what);
    if (bertfit::dist::world().size() > 1) bertfit::dist::world().abort(code);
    bertfit::dist::world().finalize();
    return code;
  };
  try {
    bertfit::dist::init_world(&argc, &argv);
    bertfit::dist::Communicator& comm = bertfit::dist::world();
    if (comm.size() > 1) {
      who = "bertfit (rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size()) + ")";
      if (comm.rank() != 0) {  // rank 0 reports for the job: the others' summaries would repeat it
        bertfit::set_log_sink(nullptr);
        if (!std::freopen("/dev/null", "w", stdout))
          throw bertfit::Error("cannot silence stdout of rank " + std::to_string(comm.rank()));
      }
      const std::string command = argc > 1 ? argv[1] : "";
      if (command != "finetune" && command != "pretrain" && command != "--help" && command != "-h" &&
          command != "--version")
        throw bertfit::ConfigError("`bertfit " + command +
                                   "` runs in one process: only finetune and pretrain run data-parallel "
                                   "under mpirun");
    }
    bertfit::wait_policy();  // an invalid BERTFIT_WAIT_POLICY / BERTFIT_SPIN_US is an error now, not mid-run
    bertfit::check_huge_pages_setting();  // and BERTFIT_HUGE_PAGES
    // `--config FILE` of any command becomes ordinary options (cli/config_file.h); argv[0] stays first.
    std::vector<std::string> args(argv + 1, argv + argc);
    args = bertfit::cli::expand_config_args(args);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    if (code != 0)
      if (const std::string hint =
              bertfit::cli::parse_error_hint(app, std::vector<std::string>(argv + 1, argv + argc));
          !hint.empty())
        std::fprintf(stderr, "%s\n", hint.c_str());
    if (code != 0 && bertfit::dist::world().size() > 1) bertfit::dist::world().abort(code);
    bertfit::dist::world().finalize();
    return code;
  } catch (const bertfit::Error& e) {
    return fail("error: ", e.what(), 1);
  } catch (const std::filesystem::filesystem_error& e) {
    // The user's file system (a read-only path, permission denied, a file where a directory should be):
    // what() names the operation and the path(s).
    return fail("error: ", e.what(), 1);
  } catch (const std::exception& e) {
    return fail("internal error: ", e.what(), 2);
  }
  bertfit::dist::world().finalize();
  return 0;
}
