// `bertfit finetune`'s multi-task options (train/multitask_args.h, train/multitask.h): the tasks and their
// per-task data settings, each a repeatable NAME=VALUE list.
#pragma once

#include <CLI/CLI.hpp>

#include "train/multitask_args.h"

namespace bertfit::cli {

void add_multitask_options(CLI::App* cmd, MultitaskArgs* m);

}  // namespace bertfit::cli
