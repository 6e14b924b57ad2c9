// Every setting of a fine-tuning run, named after HuggingFace's TrainingArguments where one exists (so people
// who know the Trainer know these), with the paper's defaults (Sun et al. 2019: lr 2e-5, warm-up 0.1,
// batch 24, up to 4 epochs, max length 512, head+tail 128 + 382). Saved as training_args.json in every run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bertfit {

struct TrainingArgs {
  // Model and output.
  std::string model_name_or_path;
  std::string output_dir;
  bool overwrite_output_dir = false;
  // Data: TSV / CSV / JSONL, columns by name.
  std::string train_file, validation_file;
  std::string format = "auto";      // auto | tsv | csv | jsonl
  std::string quoting = "rfc4180";  // rfc4180 | none (competition TSVs with bare quotes)
  std::vector<std::string> text_columns{"text"};
  std::string text_separator = ".";  // the seed: title + '.' + abstract
  std::string text_pair_column;
  std::string label_column = "label";
  std::string id_column;
  double validation_split = 0.1;   // carved from train (stratified) when no validation file is given
  int64_t few_shot_per_class = 0;  // > 0: a stratified subset of the training data, k per class
  double few_shot_fraction = 0;    // > 0: that share of every class
  // Long texts.
  int max_seq_length = 512;
  // HF run_glue's option: pad every batch to max_seq_length tokens instead of the longest sequence of the
  // batch (dynamic padding), in training and evaluation. Padding is masked, so the model computes the same
  // function up to float rounding (dropout masks, keyed by the element's index in the padded tensor, differ);
  // only the time grows. Off by default (HF's run_glue defaults to on).
  bool pad_to_max_length = false;
  std::string truncation = "head_tail";  // head | tail | head_tail
  int head_length = 128;                 // head_tail: first 128 tokens + the last (max - 2 - 128)
  std::string chunk_pooling = "none";    // none | mean | max | attention: hierarchical long-text encoding
  int max_chunks = 8;
  // Classifier features.
  std::string features = "default";  // default | pooler | cls | layer | last4-concat | last4-mean | last4-max
                                     // | all-concat | mean-tokens
  int feature_layer = -1;
  // Optimisation.
  double learning_rate = 2e-5;
  double head_learning_rate = -1;  // < 0: learning_rate (the seed's "improvement 2": 1e-4)
  double layerwise_lr_decay =
      1.0;  // xi: layer k-1 gets xi * the lr of layer k, from the top down to the embeddings
  double weight_decay = 0.0;  // never on biases and LayerNorm weights
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double max_grad_norm = 1.0;
  double warmup_ratio = 0.1;
  int64_t warmup_steps = 0;                  // > 0 wins over warmup_ratio
  std::string lr_scheduler_type = "linear";  // linear | cosine | constant | constant_with_warmup
  double num_train_epochs = 4;
  int64_t max_steps = -1;
  int per_device_train_batch_size = 24;
  int per_device_eval_batch_size = 32;
  int gradient_accumulation_steps = 1;
  double hidden_dropout_prob = -1;           // < 0: keep the model's
  double attention_probs_dropout_prob = -1;  // < 0: keep the model's
  double classifier_dropout = -1;            // < 0: keep the model's
  double label_smoothing_factor = 0;
  uint64_t seed = 42;
  // The loop.
  std::string eval_strategy = "epoch";  // no | steps | epoch (a checkpoint is saved at every evaluation)
  int64_t eval_steps = 500;
  int save_total_limit = 2;  // never deletes the best checkpoint
  bool load_best_model_at_end = true;
  std::string metric_for_best_model = "accuracy";  // accuracy | macro_f1 | micro_f1 | weighted_f1 | loss
  int early_stopping_patience = 0;  // > 0: stop after that many evaluations without improvement
  int64_t logging_steps = 50;
  bool group_by_length = true;
  std::string resume_from_checkpoint;  // a checkpoint directory, or "latest"
  int threads = 0;                     // 0: all cores

  bool greater_is_better() const { return metric_for_best_model != "loss"; }
  nlohmann::ordered_json to_json() const;
  // Throws ConfigError naming the option for values out of range or unknown names.
  void validate() const;
};

}  // namespace bertfit
