// ModelConfig validation and family defaults (parsing config.json is src/io/config_json.cpp).
#include "bertfit/config.h"

#include "bertfit/error.h"

namespace bertfit {

namespace {
void require(bool ok, const std::string& field, const std::string& why) {
  if (!ok) throw ConfigError("config: " + field + " " + why);
}
}  // namespace

void ModelConfig::validate() const {
  require(vocab_size > 0, "vocab_size", "must be > 0, got " + std::to_string(vocab_size));
  require(hidden_size > 0, "hidden_size", "must be > 0, got " + std::to_string(hidden_size));
  require(num_hidden_layers > 0, "num_hidden_layers",
          "must be > 0, got " + std::to_string(num_hidden_layers));
  require(num_attention_heads > 0, "num_attention_heads",
          "must be > 0, got " + std::to_string(num_attention_heads));
  require(hidden_size % num_attention_heads == 0, "hidden_size",
          "(" + std::to_string(hidden_size) + ") must be divisible by num_attention_heads (" +
              std::to_string(num_attention_heads) + ")");
  require(intermediate_size > 0, "intermediate_size",
          "must be > 0, got " + std::to_string(intermediate_size));
  require(max_position_embeddings > 0, "max_position_embeddings", "must be > 0");
  require(type_vocab_size > 0, "type_vocab_size", "must be > 0, got " + std::to_string(type_vocab_size));
  require(layer_norm_eps > 0, "layer_norm_eps", "must be > 0");
  require(hidden_dropout_prob >= 0 && hidden_dropout_prob < 1, "hidden_dropout_prob", "must be in [0, 1)");
  require(attention_probs_dropout_prob >= 0 && attention_probs_dropout_prob < 1,
          "attention_probs_dropout_prob", "must be in [0, 1)");
  require(classifier_dropout < 1, "classifier_dropout", "must be in [0, 1) or null");
  require(hidden_act == "gelu", "hidden_act",
          "\"" + hidden_act + "\" is not supported (only \"gelu\", exact erf GELU as BERT and RoBERTa use)");
  require(position_embedding_type == "absolute", "position_embedding_type",
          "\"" + position_embedding_type + "\" is not supported (only \"absolute\")");
  require(family == ModelFamily::ELECTRA || embedding_size < 0 || embedding_size == hidden_size,
          "embedding_size", "is ELECTRA's: BERT and RoBERTa embed at hidden_size");
  require(embedding_size < 0 || embedding_size > 0, "embedding_size", "must be > 0");
  require(pad_token_id >= 0 && pad_token_id < vocab_size, "pad_token_id", "must be a valid token id");
  if (family == ModelFamily::ROBERTA)
    require(max_position_embeddings > pad_token_id + 1, "max_position_embeddings",
            "must exceed pad_token_id + 1 for RoBERTa positions");
}

ModelConfig roberta_defaults() {
  ModelConfig c;
  c.family = ModelFamily::ROBERTA;
  c.vocab_size = 50265;
  c.max_position_embeddings = 514;
  c.type_vocab_size = 1;
  c.layer_norm_eps = 1e-5f;
  c.pad_token_id = 1;
  c.bos_token_id = 0;
  c.eos_token_id = 2;
  return c;
}

ModelConfig electra_defaults() {
  ModelConfig c;
  c.family = ModelFamily::ELECTRA;
  c.embedding_size = 128;
  c.hidden_size = 256;
  c.num_attention_heads = 4;
  c.intermediate_size = 1024;
  return c;
}

}  // namespace bertfit
