#include "cli/multitask_options.h"

#include "cli/commands.h"

namespace bertfit::cli {

void add_multitask_options(CLI::App* cmd, MultitaskArgs* m) {
  const auto* g = "Multi-task (docs/tricks.md)";
  // Comma-separated as well as repeated: training_args.json stores each list as a JSON array, which
  // --config turns back into comma-separated values.
  cmd->add_option(option_names("task"), m->task,
                  "NAME=TRAIN_FILE, once per task (at least two): one shared encoder, a head per task, "
                  "batches drawn in proportion to the tasks' sizes; output_dir/NAME is each task's model")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(option_names("task_validation_file"), m->task_validation_file,
                  "NAME=FILE: a task's held-out data (default: its stratified --validation_split)")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(option_names("task_label_column"), m->task_label_column,
                  "NAME=COLUMN: a task's label column (default: --label_column)")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(option_names("task_text_columns"), m->task_text_columns,
                  "NAME=COL[+COL...]: a task's text columns (default: --text_columns)")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(option_names("task_text_pair_column"), m->task_text_pair_column,
                  "NAME=COLUMN: a task's second text (default: --text_pair_column)")
      ->delimiter(',')
      ->group(g);
  cmd->add_option(option_names("task_problem_type"), m->task_problem_type,
                  "NAME=TYPE: a task's HF problem_type, single_label_classification | "
                  "multi_label_classification | regression: its head's loss, metrics and config.json "
                  "(default: --problem_type)")
      ->delimiter(',')
      ->group(g);
}

}  // namespace bertfit::cli
