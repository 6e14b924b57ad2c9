#include "train/training_args.h"

#include "bertfit/error.h"

namespace bertfit {

nlohmann::ordered_json TrainingArgs::to_json() const {
  nlohmann::ordered_json j;
#define BF_FIELD(x) j[#x] = x
  BF_FIELD(model_name_or_path);
  BF_FIELD(output_dir);
  BF_FIELD(overwrite_output_dir);
  BF_FIELD(train_file);
  BF_FIELD(validation_file);
  BF_FIELD(format);
  BF_FIELD(quoting);
  BF_FIELD(text_columns);
  BF_FIELD(text_separator);
  BF_FIELD(text_pair_column);
  BF_FIELD(label_column);
  BF_FIELD(id_column);
  BF_FIELD(validation_split);
  BF_FIELD(few_shot_per_class);
  BF_FIELD(few_shot_fraction);
  BF_FIELD(max_seq_length);
  BF_FIELD(pad_to_max_length);
  BF_FIELD(truncation);
  BF_FIELD(head_length);
  BF_FIELD(chunk_pooling);
  BF_FIELD(max_chunks);
  BF_FIELD(features);
  BF_FIELD(feature_layer);
  BF_FIELD(learning_rate);
  BF_FIELD(head_learning_rate);
  BF_FIELD(layerwise_lr_decay);
  BF_FIELD(weight_decay);
  BF_FIELD(adam_beta1);
  BF_FIELD(adam_beta2);
  BF_FIELD(adam_epsilon);
  BF_FIELD(max_grad_norm);
  BF_FIELD(warmup_ratio);
  BF_FIELD(warmup_steps);
  BF_FIELD(lr_scheduler_type);
  BF_FIELD(num_train_epochs);
  BF_FIELD(max_steps);
  BF_FIELD(per_device_train_batch_size);
  BF_FIELD(per_device_eval_batch_size);
  BF_FIELD(gradient_accumulation_steps);
  BF_FIELD(hidden_dropout_prob);
  BF_FIELD(attention_probs_dropout_prob);
  BF_FIELD(classifier_dropout);
  BF_FIELD(label_smoothing_factor);
  BF_FIELD(seed);
  BF_FIELD(eval_strategy);
  BF_FIELD(eval_steps);
  BF_FIELD(save_total_limit);
  BF_FIELD(load_best_model_at_end);
  BF_FIELD(metric_for_best_model);
  BF_FIELD(early_stopping_patience);
  BF_FIELD(logging_steps);
  BF_FIELD(group_by_length);
  BF_FIELD(resume_from_checkpoint);
  BF_FIELD(threads);
#undef BF_FIELD
  return j;
}

namespace {
void require(bool ok, const std::string& option, const std::string& why) {
  if (!ok) throw ConfigError("option --" + option + ": " + why);
}
bool one_of(const std::string& v, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (v == n) return true;
  return false;
}
}  // namespace

void TrainingArgs::validate() const {
  require(!model_name_or_path.empty(), "model_name_or_path", "is required");
  require(!output_dir.empty(), "output_dir", "is required");
  require(!train_file.empty(), "train_file", "is required");
  require(!text_columns.empty(), "text_columns", "needs at least one column");
  require(!label_column.empty(), "label_column", "is required for training");
  require(validation_split >= 0 && validation_split < 1, "validation_split", "must be in [0, 1)");
  require(max_seq_length >= 8, "max_seq_length", "must be at least 8");
  require(one_of(truncation, {"head", "tail", "head_tail", "head+tail"}), "truncation",
          "must be head, tail or head_tail, got \"" + truncation + "\"");
  require(head_length >= 0, "head_length", "must be >= 0 (it is clamped to max_seq_length - 2)");
  require(one_of(chunk_pooling, {"none", "mean", "max", "attention"}), "chunk_pooling",
          "must be none, mean, max or attention, got \"" + chunk_pooling + "\"");
  require(max_chunks >= 1, "max_chunks", "must be >= 1");
  require(learning_rate > 0, "learning_rate", "must be > 0");
  require(layerwise_lr_decay > 0 && layerwise_lr_decay <= 1, "layerwise_lr_decay", "must be in (0, 1]");
  require(weight_decay >= 0, "weight_decay", "must be >= 0");
  require(warmup_ratio >= 0 && warmup_ratio <= 1, "warmup_ratio", "must be in [0, 1]");
  require(one_of(lr_scheduler_type, {"linear", "cosine", "constant", "constant_with_warmup"}),
          "lr_scheduler_type", "must be linear, cosine, constant or constant_with_warmup");
  require(num_train_epochs > 0 || max_steps > 0, "num_train_epochs", "must be > 0 (or give --max_steps)");
  require(per_device_train_batch_size >= 1, "per_device_train_batch_size", "must be >= 1");
  require(per_device_eval_batch_size >= 1, "per_device_eval_batch_size", "must be >= 1");
  require(gradient_accumulation_steps >= 1, "gradient_accumulation_steps", "must be >= 1");
  require(label_smoothing_factor >= 0 && label_smoothing_factor < 1, "label_smoothing_factor",
          "must be in [0, 1)");
  require(one_of(eval_strategy, {"no", "steps", "epoch"}), "eval_strategy", "must be no, steps or epoch");
  require(eval_strategy != "steps" || eval_steps > 0, "eval_steps", "must be > 0 with --eval_strategy steps");
  require(one_of(metric_for_best_model, {"accuracy", "macro_f1", "micro_f1", "weighted_f1", "loss"}),
          "metric_for_best_model", "must be accuracy, macro_f1, micro_f1, weighted_f1 or loss");
  require(save_total_limit >= 0, "save_total_limit", "must be >= 0 (0: keep all)");
  require(logging_steps >= 1, "logging_steps", "must be >= 1");
}

}  // namespace bertfit
