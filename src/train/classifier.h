// A fine-tuned classifier directory loaded for evaluation and prediction: the model with the head it was
// trained with, its tokenizer, its labels, and the encoding settings recorded in config.json ("bertfit").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bertfit/tokenizer.h"
#include "train/encoded_data.h"
#include "train/finetune.h"
#include "train/hf_model_dir.h"

namespace bertfit {

struct Classifier {
  std::unique_ptr<BertModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  ClassifierSettings settings;
  LabelMap labels;
};

// A float directory, or an int8 one written by bertfit quantize (train/quantized_model.h): the model runs
// its encoder's linear layers in int8 then; everything else is the same.
Classifier load_classifier(const std::string& dir);

// Encodes a data set with the classifier's settings (labels checked against the model's when present).
std::vector<EncodedExample> encode_for(const Classifier& c, const Dataset& ds, int threads);

// Reserves the model for these examples in batches of batch_size and runs it.
EvalOutput classify(Classifier& c, const std::vector<EncodedExample>& examples, int batch_size,
                    const std::string& progress_name);

}  // namespace bertfit
