// What a mistyped command line most likely meant: after CLI11's own message ("A subcommand is required",
// "The following arguments were not expected: ..."), a line naming the unknown command or option and the
// closest one that exists, as git and cargo do.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace bertfit::cli {

// Levenshtein distance between a and b (insertions, deletions, substitutions of one byte each).
size_t edit_distance(const std::string& a, const std::string& b);

// The hint for a parse error of `app` (after parse(), --config files expanded into its arguments) given
// `typed`, what the user typed: "unknown command 'fintune' (did you mean finetune?)" or "unknown option
// --num_train_epoch: did you mean --num_train_epochs?", naming options that came from a --config file as
// such; "" when there is nothing to add.
std::string parse_error_hint(const CLI::App& app, const std::vector<std::string>& typed);

}  // namespace bertfit::cli
