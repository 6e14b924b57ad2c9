// `--config FILE` for every command: the file's settings become command-line options, placed before the
// user's own arguments, and options given on the command line win. Accepted forms:
//  - JSON: an object of option -> value (a run's own training_args.json reruns that run);
//  - TOML / INI subset: `key = value` lines (strings in quotes, numbers, true/false, ["a", "b"] arrays);
//    `[section]` headers and `#` / `;` comments are ignored.
// Keys are option names without dashes (`learning_rate`); arrays become comma-separated values.
#pragma once

#include <string>
#include <vector>

namespace bertfit::cli {

// Returns argv with every `--config FILE` (or `--config=FILE`) replaced by the file's options.
// Throws ConfigError naming the file and line of a malformed entry.
std::vector<std::string> expand_config_args(const std::vector<std::string>& args);

}  // namespace bertfit::cli
