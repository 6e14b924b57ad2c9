// What `bertfit inspect DIR` reports about a HuggingFace model directory: architecture, sizes, parameter
// count, dtypes, labels, heads, tokenizer kind, and every problem found (a config the engine refuses, weights
// that do not match the config, a classifier whose size disagrees with the labels, a tokenizer with ids
// beyond the embeddings, metadata transformers would reject). Inspection never throws for a broken directory:
// what cannot be read becomes a problem in the report.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bertfit/config.h"

namespace bertfit {

struct InspectReport {
  std::string dir;
  bool has_config = false;
  ModelConfig config;
  std::string weights_file;    // empty when none could be opened
  std::string weights_format;  // "safetensors", "safetensors (3 shards)", "pytorch_model.bin", ...
  uint64_t weights_bytes = 0;  // total size of the weight files
  size_t num_tensors = 0;
  int64_t num_parameters = 0;            // float tensors, shared storages (tied weights) counted once
  std::map<std::string, size_t> dtypes;  // dtype name -> tensor count
  std::vector<std::string> heads;        // "pooler", "sequence classification (3 labels)", "masked LM", ...
  std::string tokenizer;                 // "WordPiece (tokenizer.json, 30522 tokens)", "none found"
  std::vector<std::pair<std::string, std::string>> tensor_list;  // name, "F32 [768, 768]" (file order)
  std::vector<std::string> problems;                             // each names the file and what is wrong
  std::vector<std::string> notes;  // worth knowing, not wrong (e.g. no tokenizer files)
};

// The HF parameter names and shapes of the embeddings + encoder (+ pooler) for a config, with the
// "bert."/"roberta." prefix: what a checkpoint of this config must contain.
std::vector<std::pair<std::string, std::vector<int64_t>>> hf_encoder_parameters(const ModelConfig& c,
                                                                                bool with_pooler);

// Where transformers' *ForSequenceClassification would compute something else than bertfit for a classifier
// saved with these settings (config.json's "bertfit" object: its features and chunk pooling), as a sentence
// for a note; "" where it computes the same (BERT on the pooler, RoBERTa / ELECTRA on [CLS], no chunks) or
// the config is no classifier. from_pretrained loads such a directory, with a random pooler or a classifier
// of another shape, so the difference is worth saying.
std::string transformers_difference(const ModelConfig& config);

InspectReport inspect_model_dir(const std::string& dir);

// The report as aligned "field  value" lines, problems last, for a person to read at a glance.
std::string format_inspect_report(const InspectReport& r, bool list_tensors);

}  // namespace bertfit
