// `bertfit report RUN_DIR [RUN_DIR ...] --output report.html`: one self-contained HTML page about finished
// runs (finetune / pretrain output directories), overlaid for comparison (report/run_report.h).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "dist/communicator.h"
#include "report/run_report.h"

namespace bertfit::cli {

void add_report_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "report",
      "Write one self-contained HTML page (works offline) comparing runs: training curves, confusion matrix, "
      "per-class scores, token lengths, settings");
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto output = std::make_shared<std::string>("report.html");
  auto title = std::make_shared<std::string>("bertfit report");
  cmd->add_option("runs", *dirs,
                  "Run directories (a finetune or pretrain --output_dir; a --k_folds one stands for its "
                  "fold-* runs)")
      ->required();
  cmd->add_option("--output,-o", *output, "The HTML file to write")->capture_default_str();
  cmd->add_option("--title", *title, "The page's title")->capture_default_str();
  cmd->callback([dirs, output, title] {
    // A cross-validation directory (finetune --k_folds) holds a run per fold, fold-0 .. fold-<k-1>, and no
    // trainer_state.json of its own: it stands for them.
    std::vector<std::string> runs;
    for (const std::string& d : *dirs) {
      namespace fs = std::filesystem;
      std::vector<std::string> folds;
      if (!fs::exists(fs::path(d) / "trainer_state.json") && fs::exists(fs::path(d) / "cv_results.json"))
        for (int k = 0; fs::exists(fs::path(d) / ("fold-" + std::to_string(k)) / "trainer_state.json"); ++k)
          folds.push_back((fs::path(d) / ("fold-" + std::to_string(k))).string());
      if (folds.empty())
        runs.push_back(d);
      else
        runs.insert(runs.end(), folds.begin(), folds.end());
    }
    write_report(runs, *output, *title);
    std::printf("report: %s (%zu run%s)\n", output->c_str(), runs.size(), runs.size() == 1 ? "" : "s");
  });
}

// The report finetune and pretrain write into their output directory at the end of a run.
void write_run_report(const std::string& output_dir, const std::string& command) {
  // Only a training run has curves to show (--do_eval / --do_predict alone train nothing), and under mpirun
  // only rank 0 writes.
  if (dist::world().rank() != 0 || !std::filesystem::exists(output_dir + "/trainer_state.json")) return;
  const std::string path = output_dir + "/report.html";
  write_report({output_dir}, path, "bertfit " + command + ": " + output_dir);
  std::printf("report: %s\n", path.c_str());
}

}  // namespace bertfit::cli
