#include "train/training_args.h"

#include <cmath>

#include "bertfit/error.h"

namespace bertfit {

void throw_unknown_choice(const std::string& option, const std::string& name, const std::string& choices) {
  throw ConfigError("option --" + option + ": unknown value \"" + name + "\" (choices: " + choices + ")");
}

const ChoiceNames<IntervalStrategy>& interval_strategy_names() {
  static const ChoiceNames<IntervalStrategy> names = {
      {IntervalStrategy::NO, "no"}, {IntervalStrategy::STEPS, "steps"}, {IntervalStrategy::EPOCH, "epoch"}};
  return names;
}

const ChoiceNames<ScheduleKind>& schedule_kind_names() {
  static const ChoiceNames<ScheduleKind> names = {
      {ScheduleKind::LINEAR, "linear"},
      {ScheduleKind::COSINE, "cosine"},
      {ScheduleKind::CONSTANT, "constant"},
      {ScheduleKind::CONSTANT_WITH_WARMUP, "constant_with_warmup"}};
  return names;
}

bool TrainingArgs::reports_to(const std::string& integration) const {
  for (const std::string& r : report_to)
    if (r == integration || r == "all") return true;
  return false;
}

// Unset: at every evaluation; without evaluations, every save_steps steps (HF's default strategy), so that a
// long run without validation (pre-training, --eval_strategy no) can still be resumed.
IntervalStrategy TrainingArgs::effective_save_strategy() const {
  if (save_strategy) return *save_strategy;
  return eval_strategy == IntervalStrategy::NO ? IntervalStrategy::STEPS : eval_strategy;
}

int64_t TrainingArgs::effective_save_steps() const {
  return save_strategy || eval_strategy == IntervalStrategy::NO ? save_steps : eval_steps;
}

nlohmann::ordered_json TrainingArgs::to_json() const {
  nlohmann::ordered_json j;
  BF_JSON_FIELDS(j, do_train, do_eval, model_name_or_path, output_dir, overwrite_output_dir, validation_file,
                 format, quoting, text_columns, text_separator, max_train_samples, max_eval_samples,
                 max_seq_length, hidden_dropout_prob, attention_probs_dropout_prob, learning_rate,
                 weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm, warmup_ratio,
                 warmup_steps);
  j["lr_scheduler_type"] = choice_name(lr_scheduler_type, schedule_kind_names());
  BF_JSON_FIELDS(j, num_train_epochs, max_steps, per_device_train_batch_size, per_device_eval_batch_size,
                 gradient_accumulation_steps, seed);
  j["eval_strategy"] = choice_name(eval_strategy, interval_strategy_names());
  BF_JSON_FIELDS(j, eval_steps);
  // The schedule actually used, so that a rerun from this file saves the same checkpoints.
  j["save_strategy"] = choice_name(effective_save_strategy(), interval_strategy_names());
  j["save_steps"] = effective_save_steps();
  BF_JSON_FIELDS(j, save_total_limit, load_best_model_at_end, early_stopping_patience, logging_steps,
                 group_by_length, resume_from_checkpoint, threads, ddp_bucket_cap_mb, zero_stage, bf16);
  BF_JSON_FIELDS(j, report_to, logging_dir);
  own_fields_to_json(&j);
  return j;
}

namespace {
void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}
}  // namespace

void check_choice(const std::string& option, const std::string& value,
                  std::initializer_list<const char*> choices) {
  std::string list;
  for (const char* c : choices) {
    if (value == c) return;
    list += (list.empty() ? "" : ", ") + std::string(c);
  }
  throw_unknown_choice(option, value, list);
}

void TrainingArgs::validate() const {
  require(!output_dir.empty(), "output_dir", "is required");
  check_choice("format", format, {"auto", "tsv", "csv", "jsonl"});
  check_choice("quoting", quoting, {"auto", "rfc4180", "none", "csv", "quoted"});
  require(!text_columns.empty(), "text_columns", "needs at least one column");
  require(max_seq_length >= 8, "max_seq_length", "must be at least 8");
  require(max_train_samples >= 0, "max_train_samples", "must be >= 0 (0: all)");
  require(max_eval_samples >= 0, "max_eval_samples", "must be >= 0 (0: all)");
  require(hidden_dropout_prob < 1, "hidden_dropout_prob", "must be < 1 (< 0: the model's)");
  require(attention_probs_dropout_prob < 1, "attention_probs_dropout_prob", "must be < 1 (< 0: the model's)");
  require(learning_rate > 0 && std::isfinite(learning_rate), "learning_rate", "must be > 0");
  require(weight_decay >= 0, "weight_decay", "must be >= 0");
  require(adam_beta1 >= 0 && adam_beta1 < 1, "adam_beta1", "must be in [0, 1)");
  require(adam_beta2 >= 0 && adam_beta2 < 1, "adam_beta2", "must be in [0, 1)");
  require(adam_epsilon > 0, "adam_epsilon", "must be > 0");
  require(max_grad_norm >= 0, "max_grad_norm", "must be >= 0 (0: no clipping)");
  require(warmup_ratio >= 0 && warmup_ratio <= 1, "warmup_ratio", "must be in [0, 1]");
  require(warmup_steps >= 0, "warmup_steps", "must be >= 0");
  require(num_train_epochs >= 0 && std::isfinite(num_train_epochs), "num_train_epochs",
          "must be >= 0 (with --max_steps > 0 it is ignored)");
  require(per_device_train_batch_size >= 1, "per_device_train_batch_size", "must be >= 1");
  require(per_device_eval_batch_size >= 1, "per_device_eval_batch_size", "must be >= 1");
  require(gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1");
  require(eval_strategy != IntervalStrategy::STEPS || eval_steps > 0, "eval_steps",
          "must be > 0 with --eval_strategy steps");
  require(effective_save_strategy() != IntervalStrategy::STEPS || effective_save_steps() > 0, "save_steps",
          "must be > 0 with --save_strategy steps");
  // The best model can only be loaded at the end when every evaluation has its checkpoint (HF's rule).
  if (load_best_model_at_end && eval_strategy != IntervalStrategy::NO) {
    const IntervalStrategy save = effective_save_strategy();
    require(save == eval_strategy, "save_strategy",
            "must be the --eval_strategy (" + choice_name(eval_strategy, interval_strategy_names()) +
                ") with --load_best_model_at_end, got " + choice_name(save, interval_strategy_names()));
    // Stricter than HF (a multiple): every evaluation then has its checkpoint, so the best one is on disk.
    require(save != IntervalStrategy::STEPS || effective_save_steps() == eval_steps, "save_steps",
            "must be --eval_steps with --load_best_model_at_end");
  }
  require(save_total_limit >= 0, "save_total_limit", "must be >= 0 (0: keep all)");
  require(zero_stage == 0 || zero_stage == 1, "zero_stage", "must be 0 or 1 (optimizer state sharded)");
  require(ddp_bucket_cap_mb >= 0, "ddp_bucket_cap_mb", "must be >= 0 (0: one bucket after the backward)");
  require(early_stopping_patience >= 0, "early_stopping_patience", "must be >= 0 (0: never stop early)");
  require(early_stopping_patience == 0 || eval_strategy != IntervalStrategy::NO, "early_stopping_patience",
          "needs evaluations (--eval_strategy steps or epoch)");
  require(logging_steps >= 1, "logging_steps", "must be >= 1");
  require(threads >= 0, "threads", "must be >= 0 (0: all cores)");
  for (const std::string& r : report_to) check_choice("report_to", r, {"none", "all", "tensorboard"});
}

}  // namespace bertfit
