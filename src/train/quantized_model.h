// Int8 model directories (docs/quantization.md): `bertfit quantize` writes them from a fine-tuned
// classifier, load_classifier (train/classifier.h) reads them for evaluate, predict and serve.
//
// The format is a HuggingFace directory whose encoder linear weights (query, key, value,
// attention.output.dense, intermediate.dense, output.dense of every layer) are stored as I8 [out, in] under
// their usual names, each with a float scale per output row "<name>_scale" [out] (weight ~ int8 * scale);
// every other tensor is F32 as before. config.json carries
//   "quantization_config": {"quant_method": "bertfit_int8", "bits": 8, "weights": "per_row_symmetric",
//                           "activations": "per_row_symmetric_dynamic", "format_version": 1, "modules":
//                           [...]}
// which transformers refuses with an error naming the unknown quant_method, and which every bertfit command
// that cannot run it (finetune, pretrain: hf_model_dir's load_pretrained) refuses by name.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bertfit/config.h"
#include "model/bert_model.h"

namespace bertfit {

class LogSink;

inline constexpr const char* kInt8QuantMethod = "bertfit_int8";
inline constexpr int kInt8FormatVersion = 1;

// True when config.json has a "quantization_config" block (of any method: the caller decides what it can
// run).
bool has_quantization_config(const ModelConfig& config);
// Throws ConfigError naming dir when its config is quantized: for loaders that need float weights.
void reject_quantized(const ModelConfig& config, const std::string& dir, const std::string& what);

// The names of the quantized weights of a model (HF names, prefix included), in layer order.
std::vector<std::string> int8_weight_names(const BertModel& model);

// Writes the int8 directory of a float classifier: its tensors, quantized as above, its config.json with the
// quantization block, and its tokenizer (written by write_extra into the staging directory). Atomic.
void save_int8_model(const BertModel& model, const std::string& out_dir,
                     const std::function<void(const std::string&)>& write_extra);

// Reads an int8 directory into a model with the given head: float tensors as load_pretrained does, the
// int8 weights and scales checked (dtype, shape, finite non-negative scales) and packed
// (BertModel::set_int8_layers); the float copies of the quantized weights hold int8 * scale. Throws
// FormatError naming the tensor and file, ConfigError for another quant_method or format_version.
std::unique_ptr<BertModel> load_int8_model(const std::string& dir, const ModelConfig& config, HeadKind head,
                                           const HeadOptions& options);

// Quantizes a float model's encoder linear layers in place, as bertfit quantize followed by a load would
// (the same int8 weights and scales; the float copies become int8 * scale): benchmarks and tests.
void quantize_in_memory(BertModel& model);

}  // namespace bertfit
