// The command-line options of the settings every training run shares (TrainingArgs), declared once for
// `finetune` and `pretrain`; each command adds only its own (cmd_finetune.cpp, cmd_pretrain.cpp). Every
// option takes HuggingFace's underscored name and the dashed spelling; choices (strategies, schedules,
// metrics) are parsed into their enums here, and an unknown one is a ConfigError naming the option and the
// choices.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "cli/commands.h"
#include "train/training_args.h"

namespace bertfit::cli {

// An option whose value is one of `names`, stored as its enum in *target (the help lists the choices).
template <class E>
CLI::Option* add_choice_option(CLI::App* cmd, const std::string& name, E* target, const ChoiceNames<E>& names,
                               const std::string& help, const std::string& more_names = "") {
  return cmd
      ->add_option_function<std::string>(
          option_names(name) + more_names,
          [name, target, &names](const std::string& v) { *target = parse_choice(name, v, names); },
          help + " (" + list_choices(names) + ")")
      ->default_str(choice_name(*target, names));
}

// The shared options, bound to *a (its current values are the defaults shown). `block_size_alias`: pretrain's
// run_mlm name for --max_seq_length.
void add_training_options(CLI::App* cmd, TrainingArgs* a, bool block_size_alias = false);

}  // namespace bertfit::cli
