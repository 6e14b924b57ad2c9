// Each subcommand lives in its own file src/cli/cmd_<name>.cpp and registers itself on the app here.
// A command's callback does the work; errors from the library (bertfit::Error) reach main(), which prints
// them and exits non-zero.
#pragma once

#include <CLI/CLI.hpp>

namespace bertfit::cli {

void add_info_command(CLI::App& app);
void add_finetune_command(CLI::App& app);
void add_evaluate_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_dataset_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);  // tokenize, train-tokenizer
void add_inspect_command(CLI::App& app);   // inspect DIR (src/cli/cmd_inspect.cpp)
void add_pretrain_command(CLI::App& app);  // pretrain (src/cli/cmd_pretrain.cpp)

}  // namespace bertfit::cli
