// bertfit: fine-tune BERT-family models for text classification. Entry point of the command line.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "cli/config_file.h"

int main(int argc, char** argv) {
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
  bertfit::cli::add_dataset_command(app);
  bertfit::cli::add_tokenize_command(app);
  bertfit::cli::add_inspect_command(app);
  bertfit::cli::add_pretrain_command(app);
  try {
    // `--config FILE` of any command becomes ordinary options (cli/config_file.h); argv[0] stays first.
    std::vector<std::string> args(argv + 1, argv + argc);
    args = bertfit::cli::expand_config_args(args);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const bertfit::Error& e) {
    std::fprintf(stderr, "bertfit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bertfit: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
