// Fine-tuning for sequence classification, as HuggingFace's Trainer with run_classification.py does it, with
// the paper's strategies as options (Sun et al. 2019: lr 2e-5, warm-up 0.1, batch 24, up to 4 epochs, max
// length 512, head+tail 128 + 382): data -> tokens -> the TrainingLoop (training_loop.h) with a
// classification task -> output_dir in HF's layout. Settings are saved as training_args.json in every run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "model/bert_model.h"
#include "train/encoded_data.h"
#include "train/hf_model_dir.h"
#include "train/metrics.h"
#include "train/multitask_args.h"
#include "train/optimizer.h"
#include "train/problem_metrics.h"
#include "train/training_args.h"
#include "train/training_loop.h"
#include "train/tricks.h"

namespace bertfit {

// exact_match: multi-label (accuracy is exact match there, as sklearn); mse, pearson, spearman: regression.
enum class ClassificationMetric {
  ACCURACY,
  MACRO_F1,
  MICRO_F1,
  WEIGHTED_F1,
  LOSS,
  EXACT_MATCH,
  MSE,
  PEARSON,
  SPEARMAN
};
const ChoiceNames<ClassificationMetric>& classification_metric_names();

// The shared settings (TrainingArgs) with fine-tuning's defaults, and fine-tuning's own.
struct FinetuneArgs : TrainingArgs {
  FinetuneArgs();
  // Data: TSV / CSV / JSONL, columns by name (validation_file, format, quoting, text columns: TrainingArgs).
  std::string train_file;
  // HF run_classification's --do_predict: the final model (after training, or model_name_or_path, a
  // fine-tuned classifier, without --do_train) labels test_file (labels not needed) into
  // output_dir/predict_results.txt (index, prediction, as HF), and, with an id_column, the submission CSV
  // output_dir/submission.csv (id_column,label_column headers).
  bool do_predict = false;
  std::string test_file;
  int64_t max_predict_samples = 0;  // > 0: the test file's first rows (HF)
  std::string text_pair_column;
  std::string label_column = "label";
  std::string id_column;
  double validation_split = 0.1;   // carved from train (stratified) when no validation file is given
  int64_t few_shot_per_class = 0;  // > 0: a stratified subset of the training data, k per class
  double few_shot_fraction = 0;    // > 0: that share of every class
  // Long texts.
  // HF run_glue's option: pad every batch to max_seq_length tokens instead of the longest sequence of the
  // batch (dynamic padding), in training and evaluation. Padding is masked, so the model computes the same
  // function up to float rounding (dropout masks, keyed by the element's index in the padded tensor, differ);
  // only the time grows. Off by default (HF's run_glue defaults to on).
  bool pad_to_max_length = false;
  std::string truncation = "head_tail";  // head | tail | head_tail
  // head_tail: the first head_length text tokens + the last (max - specials - head_length). -1: a quarter of
  // the text tokens, rounded (the paper's 128 + 382 at max_seq_length 512; 32 + 94 at 128). A head_length
  // that leaves no tail is an error (check_encode_options), never silently head-only.
  int head_length = -1;
  std::string chunk_pooling = "none";  // none | mean | max | attention: hierarchical long-text encoding
  int max_chunks = 8;
  // Classifier features.
  std::string features = "default";  // default | pooler | cls | layer | last4-concat | last4-mean | last4-max
                                     // | all-concat | mean-tokens
  int feature_layer = -1;
  // Optimisation.
  double head_learning_rate = -1;  // < 0: learning_rate (the seed's "improvement 2": 1e-4)
  double layerwise_lr_decay =
      1.0;  // xi: layer k-1 gets xi * the lr of layer k, from the top down to the embeddings
  double classifier_dropout = -1;  // < 0: keep the model's
  double label_smoothing_factor = 0;
  // Unset: accuracy for single-label classification (the paper's measure), loss for multi-label and
  // regression (HF's default; exact match is 0 at every early evaluation). best_metric() resolves it.
  std::optional<ClassificationMetric> metric_for_best_model;
  TrickArgs tricks;  // competition tricks (tricks.h), saved flat in training_args.json
  // HF's problem_type (problem_type.h), written to config.json: single_label_classification |
  // multi_label_classification (labels as lists, sigmoid + BCE) | regression (one output, MSE).
  std::string problem_type = "single_label_classification";
  double multi_label_threshold = 0.5;  // a label is predicted when its probability is above this
  MultitaskArgs multitask;  // --task NAME=TRAIN_FILE ...: multi-task fine-tuning (train/multitask.h)

  bool stage_flags_given() const override { return do_train || do_eval || do_predict; }
  ClassificationMetric best_metric() const;
  bool greater_is_better() const {
    const ClassificationMetric m = best_metric();
    return m != ClassificationMetric::LOSS && m != ClassificationMetric::MSE;
  }
  void own_fields_to_json(nlohmann::ordered_json* j) const override;
  // Throws ConfigError naming the option for values out of range or unknown names.
  void validate() const;
};

struct EvalOutput {
  bool has_labels = false;
  double loss = 0;  // mean cross-entropy over labelled examples
  ClassificationMetrics metrics;
  std::vector<int64_t> predictions;  // one per example, in input order
  std::vector<float> probs;  // [n, num_labels], in input order (multi-label: sigmoid; regression: value)
  double runtime = 0;        // seconds
  // problem_type multi_label_classification / regression (metrics then holds nothing).
  ProblemType problem = ProblemType::SINGLE_LABEL;
  MultiLabelMetrics multi_label;
  RegressionMetrics regression;
};

// Runs the model (eval mode, no dropout) over the examples in batches of batch_size documents, each padded
// to its longest sequence, or to pad_to_length tokens when that is > 0 (the model must be reserved for it).
// The model's config.problem_type decides the outputs (multi-label: a label above multi_label_threshold is
// predicted; predictions then stay -1).
EvalOutput run_evaluation(BertModel& model, const std::vector<EncodedExample>& examples, int batch_size,
                          int32_t pad_id, const std::string& progress_name, int64_t pad_to_length = 0,
                          double multi_label_threshold = 0.5);
double metric_value(const EvalOutput& e, ClassificationMetric metric);

// One optimizer step over micro-batches (gradient accumulation) of a classification task: the loss of every
// micro-batch is normalised by the number of labelled documents of the whole step, so the gradients are those
// of one large batch. Returns the step's loss (the large batch's mean loss) and writes the gradient norm
// before clipping. Micro-batches are padded as run_evaluation's batches (pad_to_length > 0: to that many
// tokens).
float accumulate_and_step(BertModel& model, Optimizer& opt, const std::vector<EncodedExample>& examples,
                          const std::vector<std::vector<int64_t>>& micro_batches, int32_t pad_id,
                          double max_grad_norm, double lr_multiplier, uint64_t step_key, double* grad_norm,
                          int64_t pad_to_length = 0);

struct FinetuneResult {
  std::string output_dir;
  std::string best_checkpoint;
  double best_metric = 0;
  int64_t global_step = 0;
  double train_loss = 0;                          // mean over all steps, resumed parts included
  std::string predictions_file, submission_file;  // --do_predict: what was written ("" when not)
  EvalOutput final_eval;  // on the validation data with the final (best, when load_best_model_at_end) model
};

// The whole run: reads data and model, trains, evaluates, writes output_dir (HF layout). Throws
// bertfit::Error subclasses with file / option names on bad input. hooks: the loop's seams (tests, and the
// features that plug into them).
FinetuneResult finetune(const FinetuneArgs& args, const LoopHooks& hooks = {});

// The model a fine-tuning run starts from, single-task and multi-task alike: config.json with the run's
// labels, problem type and dropout overrides; the classifier settings (head, encoding) from the options,
// written into the config so that evaluate / predict encode as training did; the model loaded with its head
// and `extra_heads` (multi-task's; BertModel::select_head), its dropout seed, precision and label smoothing
// set; the encoding options, checked. `resuming`: the head comes from a checkpoint (no "newly initialised"
// note).
struct FinetuneModel {
  ModelConfig config;
  ClassifierSettings settings;
  LoadedModel loaded;
  EncodeOptions encode;
};
FinetuneModel load_finetune_model(const FinetuneArgs& args, const Tokenizer& tok, const LabelMap& labels,
                                  ProblemType problem, const std::vector<ExtraHead>& extra_heads,
                                  bool resuming);

// AdamW's settings from the options (rates, layer-wise decay, head rate, weight decay, betas, epsilon).
OptimizerOptions finetune_optimizer_options(const FinetuneArgs& args);

// The pieces of a run that cross-validation and pseudo-labels (cross_validation.h, pseudo_labels.h) share:
// the data files' columns and format, the test file as --do_predict reads it (--max_predict_samples
// applied, labels not read), and --do_predict's outputs (predict_results.txt, submission.csv).
data::DatasetSpec finetune_dataset_spec(const FinetuneArgs& args);
Dataset read_finetune_test_file(const FinetuneArgs& args);
void write_finetune_predictions(const FinetuneArgs& args, const Dataset& test_ds,
                                const std::vector<std::string>& predicted, FinetuneResult* result);

}  // namespace bertfit
