// Fine-tuning for sequence classification, as HuggingFace's Trainer does it, with the paper's strategies as
// options (training_args.h): data -> tokens -> length-grouped batches -> forward / backward with exact
// gradient accumulation -> clipping -> AdamW with layer-wise rates -> schedule; evaluation, best-model
// tracking, early stopping, checkpoints in HF's layout with rotation, and exact resume.
#pragma once

#include <string>
#include <vector>

#include "model/bert_model.h"
#include "train/encoded_data.h"
#include "train/metrics.h"
#include "train/training_args.h"

namespace bertfit {

struct EvalOutput {
  bool has_labels = false;
  double loss = 0;  // mean cross-entropy over labelled examples
  train::ClassificationMetrics metrics;
  std::vector<int64_t> predictions;  // one per example, in input order
  std::vector<float> probs;          // [n, num_labels], in input order
  double runtime = 0;                // seconds
};

// Runs the model (eval mode, no dropout) over the examples in batches of batch_size documents, each padded
// to its longest sequence, or to pad_to_length tokens when that is > 0 (the model must be reserved for it).
EvalOutput run_evaluation(BertModel& model, const std::vector<EncodedExample>& examples, int batch_size,
                          int32_t pad_id, const std::string& progress_name, int64_t pad_to_length = 0);
// accuracy | macro_f1 | micro_f1 | weighted_f1 | loss
double metric_value(const EvalOutput& e, const std::string& name);

// One optimizer step over micro-batches (gradient accumulation): the loss of every micro-batch is normalised
// by the number of labelled documents of the whole step, so the gradients are those of one large batch.
// Returns the step's loss (the large batch's mean loss) and writes the gradient norm before clipping.
// Micro-batches are padded as run_evaluation's batches (pad_to_length > 0: to that many tokens).
class Optimizer;
float accumulate_and_step(BertModel& model, Optimizer& opt, const std::vector<EncodedExample>& examples,
                          const std::vector<std::vector<int64_t>>& micro_batches, int32_t pad_id,
                          double max_grad_norm, double lr_multiplier, uint64_t step_key, double* grad_norm,
                          int64_t pad_to_length = 0);

struct FinetuneResult {
  std::string output_dir;
  std::string best_checkpoint;
  double best_metric = 0;
  int64_t global_step = 0;
  EvalOutput final_eval;  // on the validation data with the final (best, when load_best_model_at_end) model
};

// The whole run: reads data and model, trains, evaluates, writes output_dir (HF layout). Throws
// bertfit::Error subclasses with file / option names on bad input.
FinetuneResult finetune(const TrainingArgs& args);

}  // namespace bertfit
