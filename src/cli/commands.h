// Each subcommand lives in its own file src/cli/cmd_<name>.cpp and registers itself on the app here.
// A command's callback does the work; errors from the library (bertfit::Error) reach main(), which prints
// them and exits non-zero.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace bertfit {
struct FinetuneArgs;
struct PretrainArgs;
}  // namespace bertfit

namespace bertfit::cli {

// "--learning_rate,--learning-rate": HuggingFace's underscored option name and the dashed spelling.
inline std::string option_names(const std::string& underscored) {
  std::string dashed = underscored;
  for (char& c : dashed)
    if (c == '_') c = '-';
  return dashed == underscored ? "--" + underscored : "--" + underscored + ",--" + dashed;
}

void add_info_command(CLI::App& app);
void add_finetune_command(CLI::App& app);
// The finetune / pretrain options, bound to *a (tests parse training_args.json back through them).
void add_finetune_options(CLI::App* cmd, FinetuneArgs* a);
void add_pretrain_options(CLI::App* cmd, PretrainArgs* a);
void add_evaluate_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_ensemble_command(CLI::App& app);  // ensemble (src/cli/cmd_ensemble.cpp)
void add_dataset_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);  // tokenize, train-tokenizer
void add_inspect_command(CLI::App& app);   // inspect DIR (src/cli/cmd_inspect.cpp)
void add_pretrain_command(CLI::App& app);  // pretrain (src/cli/cmd_pretrain.cpp)
void add_report_command(CLI::App& app);    // report RUN_DIR... (src/cli/cmd_report.cpp)
// output_dir/report.html for one finished run (finetune, pretrain).
void write_run_report(const std::string& output_dir, const std::string& command);
void add_serve_command(CLI::App& app);     // serve (src/cli/cmd_serve.cpp)
void add_quantize_command(CLI::App& app);  // quantize IN_DIR OUT_DIR (src/cli/cmd_quantize.cpp)

}  // namespace bertfit::cli
