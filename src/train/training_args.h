// The settings every training run shares, named after HuggingFace's TrainingArguments (so people who know the
// Trainer know these): model and output directory, optimisation, the loop (epochs / steps, evaluation,
// checkpoints, best model, early stopping, logging, resume), seed and threads. Fine-tuning (FinetuneArgs,
// finetune.h) and pre-training (PretrainArgs, pretrain.h) derive from it and add only their own fields; the
// command line declares these options once (cli/training_options.h), and to_json / validate exist once.
// Strings that name a choice (strategies, schedules) are enums here: they are parsed once, at the boundary
// (parse_choice), and an unknown name is a ConfigError naming the option and the choices.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/schedule.h"

namespace bertfit {

// HF's IntervalStrategy: when evaluations or checkpoints happen.
enum class IntervalStrategy { NO, STEPS, EPOCH };

[[noreturn]] void throw_unknown_choice(const std::string& option, const std::string& name,
                                       const std::string& choices);

// The names of an enum's values, in the order a help text lists them.
template <class E>
using ChoiceNames = std::vector<std::pair<E, const char*>>;

const ChoiceNames<IntervalStrategy>& interval_strategy_names();
const ChoiceNames<ScheduleKind>& schedule_kind_names();

// "no, steps, epoch"
template <class E>
std::string list_choices(const ChoiceNames<E>& names) {
  std::string s;
  for (const auto& [value, name] : names) s += (s.empty() ? "" : ", ") + std::string(name);
  return s;
}
// The value named `name`; throws ConfigError("option --<option>: unknown value "x" (choices: ...)").
template <class E>
E parse_choice(const std::string& option, const std::string& name, const ChoiceNames<E>& names) {
  for (const auto& [value, n] : names)
    if (name == n) return value;
  throw_unknown_choice(option, name, list_choices(names));
}
template <class E>
std::string choice_name(E value, const ChoiceNames<E>& names) {
  for (const auto& [v, n] : names)
    if (v == value) return n;
  return "?";
}
// Throws the same ConfigError unless value is one of the choices (for names a library function parses later).
void check_choice(const std::string& option, const std::string& value,
                  std::initializer_list<const char*> choices);

// Writes fields into a training_args.json object under their own names: BF_JSON_FIELDS(j, seed, threads)
// is j["seed"] = seed; j["threads"] = threads (the names are the option names, so --config reads them back).
#define BF_JSON_FIELDS(j, ...) ::bertfit::put_json_fields(j, #__VA_ARGS__, __VA_ARGS__)
template <class... T>
void put_json_fields(nlohmann::ordered_json& j, const char* names, const T&... values) {
  std::string list = names;
  size_t pos = 0;
  auto next_name = [&] {
    const size_t start = list.find_first_not_of(", ", pos);
    const size_t end = list.find_first_of(", ", start);
    pos = end;
    return list.substr(start, end == std::string::npos ? std::string::npos : end - start);
  };
  ((j[next_name()] = values), ...);
}

// The defaults that differ between tasks (the paper's fine-tuning, BERT's and the seed's pre-training).
struct TaskDefaults {
  double learning_rate, weight_decay, num_train_epochs;
  int per_device_train_batch_size, per_device_eval_batch_size, max_seq_length;
};

struct TrainingArgs {
  TrainingArgs() = default;
  explicit TrainingArgs(const TaskDefaults& d)
      : max_seq_length(d.max_seq_length),
        learning_rate(d.learning_rate),
        weight_decay(d.weight_decay),
        num_train_epochs(d.num_train_epochs),
        per_device_train_batch_size(d.per_device_train_batch_size),
        per_device_eval_batch_size(d.per_device_eval_batch_size) {}
  // The stages to run (HF's run_classification / run_mlm flags). When none is given (none of these, nor
  // finetune's --do_predict), a run trains and then evaluates: bertfit's default, where HF's scripts would do
  // nothing. When any is given, exactly the stages given run.
  bool do_train = false;
  bool do_eval = false;
  bool runs_training() const { return do_train || !stage_flags_given(); }
  bool runs_final_evaluation() const { return do_eval || !stage_flags_given(); }
  virtual bool stage_flags_given() const { return do_train || do_eval; }
  // Model and output.
  std::string model_name_or_path;
  std::string output_dir;
  bool overwrite_output_dir = false;
  // Data. Tables (.tsv / .csv / .jsonl): columns by name; the texts of several columns are joined.
  std::string validation_file;
  std::string format = "auto";   // auto | tsv | csv | jsonl
  std::string quoting = "auto";  // auto (per file, data::TableOptions) | rfc4180 | none (bare quotes)
  std::vector<std::string> text_columns{"text"};
  std::string text_separator = ".";  // the seed: title + '.' + abstract
  // How many examples to use (HF run_glue's options; 0: all): a seeded subset, in file order.
  int64_t max_train_samples = 0;
  int64_t max_eval_samples = 0;
  int max_seq_length = 512;  // tokens per sequence, special tokens included
  // Model overrides (< 0: keep the model's).
  double hidden_dropout_prob = -1;
  double attention_probs_dropout_prob = -1;
  // Optimisation. The defaults differ per task (set by the derived structs' constructors).
  double learning_rate = 2e-5;
  double weight_decay = 0.0;  // never on biases and LayerNorm weights
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;  // 0: no clipping
  double warmup_ratio = 0.1;
  int64_t warmup_steps = 0;  // > 0 wins over warmup_ratio
  ScheduleKind lr_scheduler_type = ScheduleKind::LINEAR;
  // Length of the run, as HF: max_steps > 0 is the number of optimizer steps and overrides the epochs;
  // otherwise ceil(num_train_epochs x steps per epoch) (num_train_epochs 0: no step; the initial model is
  // written, e.g. the no-pre-training baseline).
  double num_train_epochs = 3;
  int64_t max_steps = -1;
  int per_device_train_batch_size = 32;
  int per_device_eval_batch_size = 64;
  int gradient_accumulation_steps = 1;
  uint64_t seed = 42;
  // The loop.
  IntervalStrategy eval_strategy = IntervalStrategy::EPOCH;
  int64_t eval_steps = 500;
  // Checkpoints (checkpoint-N/). Unset: at every evaluation (this tool's behaviour before it had the option),
  // or every save_steps with --eval_strategy no (HF's default); with load_best_model_at_end, saving must
  // happen at the evaluations (HF's rule, checked by validate).
  std::optional<IntervalStrategy> save_strategy;
  int64_t save_steps = 500;  // save_strategy steps
  int save_total_limit = 2;  // 0: keep all; never deletes the best checkpoint
  bool load_best_model_at_end = true;
  int early_stopping_patience = 0;  // > 0: stop after that many evaluations without improvement
  int64_t logging_steps = 50;
  bool group_by_length = true;
  std::string resume_from_checkpoint;  // a checkpoint directory, or "latest"
  int threads = 0;                     // 0: all cores
  // Reports (HF's names): "tensorboard" (or "all") writes TensorBoard event files (train/loss, eval/accuracy,
  // ... at the global step, and the run's arguments as text) to logging_dir; "none" writes none.
  std::vector<std::string> report_to = {"none"};
  // "": HF's default, output_dir/runs/<Mon DD_HH-MM-SS>_<host>, taken when the run starts (so a rerun from
  // training_args.json gets a directory of its own, as a new TensorBoard run).
  std::string logging_dir;
  bool reports_to(const std::string& integration) const;
  // Data-parallel (mpirun): gradients are summed over the ranks in buckets of this many MiB, each started as
  // soon as the backward has finished it (0: one bucket after the backward). HF/DDP's default.
  double ddp_bucket_cap_mb = 25;
  // Data-parallel: 1 shards the optimizer state over the ranks (ZeRO stage 1; train/zero_optimizer.h), 0 not.
  int zero_stage = 0;
  bool bf16 = false;  // --bf16: BertModel::matmul_precision = BF16 (float master weights and optimizer)

  // The checkpoint schedule actually used: save_strategy / save_steps when given, else those of evaluation.
  IntervalStrategy effective_save_strategy() const;
  int64_t effective_save_steps() const;

  virtual ~TrainingArgs() = default;
  // Every field, keyed by its option name (a run's training_args.json; --config reads it back): the shared
  // ones, then the task's own (own_fields_to_json).
  nlohmann::ordered_json to_json() const;
  virtual void own_fields_to_json(nlohmann::ordered_json* /*j*/) const {}
  // Throws ConfigError naming the option for values out of range.
  void validate() const;
};

}  // namespace bertfit
