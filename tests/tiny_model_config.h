// Model configurations small enough for unit tests, shared by the test areas (one definition instead of a
// copy per file). Tests include it as "tiny_model_config.h" (tests/ is on every test's include path).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bertfit/config.h"

namespace bertfit::test {

// A BERT encoder of the given sizes (HF field names), no labels.
inline ModelConfig tiny_model_config(int64_t vocab_size, int64_t hidden_size, int64_t num_hidden_layers,
                                     int64_t num_attention_heads, int64_t intermediate_size,
                                     int64_t max_position_embeddings) {
  ModelConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = hidden_size;
  c.num_hidden_layers = num_hidden_layers;
  c.num_attention_heads = num_attention_heads;
  c.intermediate_size = intermediate_size;
  c.max_position_embeddings = max_position_embeddings;
  return c;
}

// The same with a sequence-classification head over these labels (as a fine-tuned HF directory has).
inline ModelConfig tiny_classifier_config(ModelConfig c, std::vector<std::string> id2label) {
  c.id2label = std::move(id2label);
  c.architectures = {"BertForSequenceClassification"};
  return c;
}

}  // namespace bertfit::test
