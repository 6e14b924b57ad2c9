#include "train/model_factory.h"

#include "bertfit/error.h"
#include "train/hf_model_dir.h"

namespace bertfit {

ModelConfig named_config(const std::string& size, ModelFamily family, const Tokenizer& tok,
                         int64_t max_positions) {
  ModelConfig c = family == ModelFamily::ROBERTA ? roberta_defaults() : ModelConfig{};
  c.family = family;  // ELECTRA: BERT's other defaults, the embeddings at the hidden size unless set
  struct Size {
    const char* name;
    int64_t layers, hidden, heads;
  };
  static const Size sizes[] = {{"tiny", 2, 128, 2},
                               {"mini", 4, 256, 4},
                               {"small", 4, 512, 8},
                               {"medium", 8, 512, 8},
                               {"base", 12, 768, 12}};
  const Size* s = nullptr;
  for (const Size& x : sizes)
    if (size == x.name) s = &x;
  if (!s)
    throw ConfigError("unknown model size \"" + size + "\" (expected tiny, mini, small, medium or base)");
  c.num_hidden_layers = s->layers;
  c.hidden_size = s->hidden;
  c.num_attention_heads = s->heads;
  c.intermediate_size = 4 * s->hidden;
  c.vocab_size = tok.vocab_size();
  c.pad_token_id = tok.pad_id();
  if (family == ModelFamily::ROBERTA) {
    c.bos_token_id = tok.cls_id();
    c.eos_token_id = tok.sep_id();
    c.max_position_embeddings = max_positions + c.pad_token_id + 1;  // RoBERTa's positions start at pad + 1
  } else {
    c.max_position_embeddings = max_positions;
  }
  c.validate();
  return c;
}

void init_model_dir(const ModelConfig& config, HeadKind head, const Tokenizer& tok, uint64_t seed,
                    const std::string& dir) {
  BertModel m(config, head);
  m.init_weights(seed);
  save_pretrained(m, dir, &tok);
}

}  // namespace bertfit
