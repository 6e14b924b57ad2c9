// config.json <-> ModelConfig, the way transformers reads and writes it (FORMATS.md 2d,
// configuration_bert.py, PretrainedConfig). Reading fills missing keys with the HF class defaults of the
// model_type, checks every type and range, and names the file and the key in every error. Writing follows
// save_pretrained (use_diff=True): the model's own fields always, PretrainedConfig-level fields when they
// differ from its defaults, plus model_type, architectures, id2label/label2id (string keys), torch_dtype and
// transformers_version; keys sorted, indent 2, trailing newline (json.dumps(sort_keys=True, indent=2) +
// "\n").
#pragma once

#include <string>

#include "bertfit/config.h"

namespace bertfit {

// The transformers version written into config.json ("transformers_version").
inline constexpr const char* kTransformersVersion = "4.44.2";

// The defaults HF's BertConfig / RobertaConfig constructors use for keys absent from config.json.
// (RobertaConfig's class defaults differ from roberta-base's config values that roberta_defaults() returns:
// 512 positions, 2 token types, eps 1e-12, but vocab 50265, pad 1, bos 0, eos 2.)
ModelConfig hf_class_defaults(ModelFamily family);

// Parses config.json text; what names it in messages. Checks JSON types, model_type, id2label/label2id,
// problem_type and size bounds (sizes must be <= 2^31 so no later allocation can be absurd), but not
// ModelConfig::validate() (so `bertfit inspect` can show a config the engine would refuse).
// Throws ConfigError("<what>: <key>: <problem>").
ModelConfig parse_config_json(const std::string& text, const std::string& what);

// Reads, parses and validates (ModelConfig::validate) a config.json. Throws ConfigError naming the file.
ModelConfig read_config_json(const std::string& path);

// The config.json text for c (see the header comment for what is written).
std::string config_json_text(const ModelConfig& c);

// Writes config_json_text(c) to path atomically (temporary name, fsync, rename).
void write_config_json(const std::string& path, const ModelConfig& c);

// "bert" / "roberta".
const char* model_type_name(ModelFamily family);
// "regression" / "single_label_classification" / "multi_label_classification".
const char* problem_type_name(ProblemType p);

}  // namespace bertfit
