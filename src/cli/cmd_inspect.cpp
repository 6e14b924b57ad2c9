// `bertfit inspect DIR`: a HuggingFace model directory at a glance (architecture, sizes, parameters, dtype,
// labels, heads, tokenizer) and every problem found. Exits non-zero when there is a problem, so scripts can
// check a directory before training on it.
#include <cstdio>
#include <string>

#include "bertfit/error.h"
#include "bertfit/io/inspect.h"
#include "cli/commands.h"

namespace bertfit::cli {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a model directory and report any problem with it");
  static std::string dir;
  static bool tensors = false;
  cmd->add_option("dir", dir, "HuggingFace model directory (config.json, weights, tokenizer files)")
      ->required();
  cmd->add_flag("--tensors", tensors, "Also list every tensor with its dtype and shape");
  cmd->callback([] {
    const InspectReport r = inspect_model_dir(dir);
    std::fputs(format_inspect_report(r, tensors).c_str(), stdout);
    std::fflush(stdout);
    if (!r.problems.empty())
      throw FormatError(dir + ": " + std::to_string(r.problems.size()) + " problem(s) found (listed above)");
  });
}

}  // namespace bertfit::cli
