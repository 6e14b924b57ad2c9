// The settings of multi-task fine-tuning (`bertfit finetune --task NAME=TRAIN_FILE ...`; train/multitask.h
// runs it), kept apart from multitask.h so that FinetuneArgs can hold them. Every option is a list of
// NAME=VALUE entries (repeated, or comma-separated), so training_args.json stores each as a JSON array and
// `--config training_args.json` reruns the run:
//   --task NAME=TRAIN_FILE                  one per task, in head order (at least two)
//   --task_validation_file NAME=FILE        default: the task's own stratified --validation_split
//   --task_label_column NAME=COLUMN         default: --label_column
//   --task_text_columns NAME=COL[+COL...]   default: --text_columns (joined by --text_separator)
//   --task_text_pair_column NAME=COLUMN     default: --text_pair_column
//   --task_problem_type NAME=TYPE           default: --problem_type (single_label_classification |
//                                           multi_label_classification | regression, HF's names)
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bertfit {

// One task, every default resolved.
struct TaskSpec {
  std::string name;
  std::string train_file, validation_file;  // validation_file "": split from train_file
  std::string label_column;
  std::vector<std::string> text_columns;
  std::string text_pair_column;
  std::string problem_type = "single_label_classification";  // HF's name, checked
};

struct MultitaskArgs {
  std::vector<std::string> task, task_validation_file, task_label_column, task_text_columns,
      task_text_pair_column, task_problem_type;

  bool enabled() const { return !task.empty(); }
  void to_json(nlohmann::ordered_json* j) const;
  // The tasks with the shared columns as defaults. Throws ConfigError naming the option and the entry: an
  // entry without NAME=, a name that is not [A-Za-z0-9_.-]+ (it names a directory and metric keys) or is
  // "runs" / "checkpoint-*" (output_dir's own), a task given twice, a per-task entry for an unknown task,
  // fewer than two tasks, a problem type that is not one of HF's.
  std::vector<TaskSpec> resolve(const std::string& label_column, const std::vector<std::string>& text_columns,
                                const std::string& text_pair_column,
                                const std::string& problem_type = "single_label_classification") const;
};

}  // namespace bertfit
