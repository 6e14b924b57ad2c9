// `bertfit report`: one self-contained HTML page (no network, no external script: the data as JSON and the
// script that draws it as inline SVG are inside the file) about one or more finished runs, overlaid for
// comparison: loss, learning rate, gradient norm and evaluation metrics over the global step; for
// classifiers the confusion matrix as a heat map (normalised by row, counts on hover) and the per-class
// precision / recall / F1 / support, worst first; the token-length histogram with the truncation point; the
// settings, those that differ between runs first.
//
// What it reads from a run directory (what finetune and pretrain write there): trainer_state.json (required:
// log_history), training_args.json, eval_results.json (per-class details: train/report_json.h),
// token_lengths.json, config.json.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bertfit {

struct RunData {
  std::string name;  // the directory's name (with its parent's when two runs share it)
  std::string dir;
  std::string kind;  // "classification" | "masked_lm"
  nlohmann::json trainer_state, training_args, eval_results, token_lengths, config;
};

// Throws FormatError naming the directory when it has no trainer_state.json, or a file that is not JSON.
RunData read_run(const std::string& dir);

// The page for these runs.
std::string render_report_html(const std::vector<RunData>& runs, const std::string& title);

// Reads the runs and writes the page atomically to `output`.
void write_report(const std::vector<std::string>& run_dirs, const std::string& output,
                  const std::string& title = "bertfit report");

}  // namespace bertfit
