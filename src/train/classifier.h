// A fine-tuned classifier directory loaded for evaluation and prediction: the model with the head it was
// trained with, its tokenizer, its labels, and the encoding settings recorded in config.json ("bertfit").
// Every HF problem_type (config.json): single-label classification, multi-label classification (labels
// above the saved threshold) and regression (the value).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bertfit/tokenizer.h"
#include "train/encoded_data.h"
#include "train/finetune.h"
#include "train/hf_model_dir.h"

namespace bertfit {

struct Classifier {
  std::unique_ptr<BertModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  ClassifierSettings settings;  // settings.multi_label_threshold: what classify predicts multi-label with
  LabelMap labels;
  ProblemType problem() const { return model->config().problem_type; }
};

// A float directory, or an int8 one written by bertfit quantize (train/quantized_model.h): the model runs
// its encoder's linear layers in int8 then; everything else is the same. Without any_problem_type, a
// multi-label or regression model is a ConfigError naming its problem type and the commands that take it
// (for callers that only handle class probabilities: serve, quantize, the C++ API).
Classifier load_classifier(const std::string& dir, bool any_problem_type = false);

// Encodes a data set with the classifier's settings. Labels, when present, are checked against the model's:
// class names (single-label), lists of them (multi-label) or numbers (regression) (problem_type.h).
std::vector<EncodedExample> encode_for(const Classifier& c, const Dataset& ds, int threads);

// Reserves the model for these examples in batches of batch_size and runs it (multi-label: predicted above
// c.settings.multi_label_threshold).
EvalOutput classify(Classifier& c, const std::vector<EncodedExample>& examples, int batch_size,
                    const std::string& progress_name);

// Row i's prediction as text: the class (single-label), the labels above the threshold joined by ','
// (multi-label; "" for none) or the value (regression).
std::string prediction_text(const Classifier& c, const EvalOutput& e, size_t i);

// Metrics of a labelled multi-label or regression evaluation as finetune reports them (problem_metrics.h),
// HF-style names: {"problem_type", "loss", and exact_match (= accuracy), micro_f1, macro_f1,
// micro_precision, micro_recall, threshold and per_label {label: {"f1"}} (multi-label) or mse, pearson,
// spearman (regression)}.
nlohmann::ordered_json problem_evaluation_json(const Classifier& c, const EvalOutput& e);
// The same as text for the console: a line of metrics (and per-label F1 lines for multi-label).
std::string describe_problem_evaluation(const Classifier& c, const EvalOutput& e);

}  // namespace bertfit
