// Model configuration: the fields of HuggingFace's BertConfig / RobertaConfig that determine the maths.
// Defaults are BertConfig's (FORMATS.md 2d). Parsing and writing config.json live in src/io/config_json.cpp;
// this header is the typed struct every area shares (no string-keyed lookups in the core).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace bertfit {

// ELECTRA (Clark et al. 2020): BERT's encoder with embeddings of their own width (embedding_size, projected
// to hidden_size by embeddings_project when they differ) and ELECTRA's heads (src/model/electra_heads.cpp).
enum class ModelFamily { BERT, ROBERTA, ELECTRA };

enum class ProblemType { SINGLE_LABEL, MULTI_LABEL, REGRESSION };

struct ModelConfig {
  ModelFamily family = ModelFamily::BERT;  // config.json "model_type": "bert" | "roberta" | "electra"
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t embedding_size = -1;  // ELECTRA's embedding width; < 0 (BERT, RoBERTa): hidden_size
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";  // only exact erf GELU ("gelu") is supported
  float hidden_dropout_prob = 0.1f;
  float attention_probs_dropout_prob = 0.1f;
  float classifier_dropout = -1.0f;  // < 0: null in config.json, falls back to hidden_dropout_prob
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  float initializer_range = 0.02f;
  float layer_norm_eps = 1e-12f;
  int64_t pad_token_id = 0;
  int64_t bos_token_id = -1;  // -1: absent
  int64_t eos_token_id = -1;
  std::string position_embedding_type = "absolute";  // only "absolute" is supported
  ProblemType problem_type = ProblemType::SINGLE_LABEL;
  bool problem_type_set = false;      // false: null in config.json (HF infers it)
  std::vector<std::string> id2label;  // index = label id; empty: num_labels labels named LABEL_i
  std::vector<std::string> architectures;
  // Keys of config.json we do not interpret, kept verbatim (JSON text) so a round trip loses nothing.
  std::map<std::string, std::string> extra_json;

  int64_t num_labels() const { return id2label.empty() ? 2 : static_cast<int64_t>(id2label.size()); }
  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  int64_t embedding_width() const { return embedding_size > 0 ? embedding_size : hidden_size; }
  // ELECTRA with embedding_size != hidden_size: the embeddings_project Linear(embedding_size, hidden_size).
  bool projects_embeddings() const { return embedding_width() != hidden_size; }
  float effective_classifier_dropout() const {
    return classifier_dropout < 0 ? hidden_dropout_prob : classifier_dropout;
  }
  // Throws ConfigError naming the field when a value is out of range or inconsistent
  // (sizes <= 0, hidden_size not divisible by heads, probabilities outside [0, 1), unsupported act ...).
  void validate() const;
};

// RoBERTa's defaults (roberta-base): vocab 50265, 514 positions, 1 token type, eps 1e-5, pad 1, bos 0, eos 2.
ModelConfig roberta_defaults();
// "BERT", "RoBERTa", "ELECTRA": for messages.
inline const char* family_display_name(ModelFamily f) {
  return f == ModelFamily::BERT ? "BERT" : f == ModelFamily::ROBERTA ? "RoBERTa" : "ELECTRA";
}
// ElectraConfig's class defaults (electra-small discriminator's shape: embedding 128, hidden 256, 12 layers,
// 4 heads, intermediate 1024; vocabulary, positions, eps and pad as BERT's).
ModelConfig electra_defaults();

}  // namespace bertfit
