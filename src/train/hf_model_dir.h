// HuggingFace model directories in and out of a BertModel: the binding of checkpoint tensors (src/io) to the
// model's parameter table, and the "bertfit" block of config.json that records how a classifier was built
// (features, chunk pooling, truncation) so that evaluate / predict encode and pool exactly as training did.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bertfit/config.h"
#include "bertfit/tokenizer.h"
#include "model/bert_model.h"

namespace bertfit {

// Inference settings of a fine-tuned classifier, stored under "bertfit" in config.json (HF ignores the key).
struct ClassifierSettings {
  HeadOptions head;
  int max_seq_length = 512;
  std::string truncation = "head_tail";  // head | tail | head_tail
  int head_length = 128;
  int max_chunks = 0;  // > 0 with chunk pooling: chunks per document
  // problem_type multi_label_classification: a label is predicted when its probability is above this (the
  // run's --multi_label_threshold; written only for multi-label models, 0.5 when absent: HF's logits > 0).
  double multi_label_threshold = 0.5;
};

ClassifierSettings read_classifier_settings(const ModelConfig& config);
// Writes the settings under config.json's "bertfit"; the multi-label threshold when the config's problem type
// is multi-label, or with_threshold (a multi-task model whose multi-label head is not head 0: each task's
// directory gets this config).
void write_classifier_settings(ModelConfig* config, const ClassifierSettings& s, bool with_threshold = false);

struct LoadedModel {
  std::unique_ptr<BertModel> model;
  std::vector<std::string> initialized;  // parameters not in the checkpoint, initialised as HF does
  std::vector<std::string> ignored;      // checkpoint tensors the model does not use
};

// Reads DIR/config.json and the weights (any format src/io reads) into a model with the given head.
// config_override, when given, replaces the directory's config (new labels, dropout overrides). Task-head
// parameters absent from the checkpoint (or with another number of labels) are initialised with
// normal(0, initializer_range) from init_seed, and listed in `initialized`.
LoadedModel load_pretrained(const std::string& dir, HeadKind head, const HeadOptions& options,
                            const ModelConfig* config_override = nullptr, uint64_t init_seed = 42);

// Writes config.json (architectures set from the head), model.safetensors and, when given, the tokenizer
// files into dir, atomically. A model with extra classification heads (multi-task) is written whole, with
// the labels of its own head (head 0) in config.json, whichever head is selected.
void save_pretrained(const BertModel& model, const std::string& dir, const Tokenizer* tokenizer);

// Multi-task fine-tuning (BertModel::select_head): classification head k of the model as a plain HF
// sequence-classification directory: the shared encoder, head k's own parameters under HF's names, and
// config.json with head k's labels (the other heads are left out).
void save_pretrained_head(const BertModel& model, int64_t head, const std::string& dir,
                          const Tokenizer* tokenizer);

}  // namespace bertfit
