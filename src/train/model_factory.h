// Models from scratch: named sizes (as BERT's miniatures: Turc et al. 2019) and a randomly initialised
// HuggingFace directory for a tokenizer, the starting point of pre-training from scratch (no pretrained
// weights can be downloaded on these machines).
#pragma once

#include <cstdint>
#include <string>

#include "bertfit/config.h"
#include "bertfit/tokenizer.h"
#include "model/bert_model.h"

namespace bertfit {

// tiny 2L/128H/2 heads, mini 4L/256H/4, small 4L/512H/8, medium 8L/512H/8, base 12L/768H/12; intermediate 4H.
// family picks BERT's or RoBERTa's other defaults (ELECTRA: BERT's); vocab size, pad id and positions follow
// the tokenizer.
ModelConfig named_config(const std::string& size, ModelFamily family, const Tokenizer& tok,
                         int64_t max_positions);

// Writes dir with config.json, model.safetensors (HF initialisation from seed) and the tokenizer files.
void init_model_dir(const ModelConfig& config, HeadKind head, const Tokenizer& tok, uint64_t seed,
                    const std::string& dir);

}  // namespace bertfit
