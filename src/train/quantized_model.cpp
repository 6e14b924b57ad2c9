#include "train/quantized_model.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "backend/cpu/gemm_int8.h"
#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"

namespace bertfit {

namespace {

// The four linear layers of an encoder layer, in the order Int8Layer holds them (Q, K, V form the first).
const char* const kLinearNames[] = {"attention.self.query",   "attention.self.key", "attention.self.value",
                                    "attention.output.dense", "intermediate.dense", "output.dense"};

std::string layer_prefix(const BertModel& m, int64_t l) {
  return m.prefix() + ".encoder.layer." + std::to_string(l) + ".";
}

std::string quant_method(const ModelConfig& config) {
  auto it = config.extra_json.find("quantization_config");
  if (it == config.extra_json.end()) return "";
  try {
    const auto j = nlohmann::json::parse(it->second);
    return j.contains("quant_method") ? j.at("quant_method").get<std::string>() : "(none given)";
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(std::string("config.json: field \"quantization_config\" is malformed: ") + e.what());
  }
}

// Builds and installs the model's Int8Layers from `read(name, &q, &s)`, which appends one weight's int8 rows
// and scales (and fills its float copy): Q, K, V concatenated row-wise, as the float buffer fuses them.
void set_int8_layers_from(
    BertModel& m,
    const std::function<void(const std::string&, std::vector<int8_t>*, std::vector<float>*)>& read) {
  std::vector<BertModel::Int8Layer> layers;
  for (int64_t l = 0; l < m.config().num_hidden_layers; ++l) {
    const std::string p = layer_prefix(m, l);
    BertModel::Int8Layer L;
    std::vector<int8_t> q;
    std::vector<float> s;
    for (int i = 0; i < 3; ++i) read(p + kLinearNames[i] + ".weight", &q, &s);
    L.qkv = Int8Weights(q.data(), s.data(), static_cast<int64_t>(s.size()), m.config().hidden_size);
    Int8Weights* rest[] = {&L.attn_out, &L.inter, &L.out};
    for (int i = 3; i < 6; ++i) {
      q.clear();
      s.clear();
      read(p + kLinearNames[i] + ".weight", &q, &s);
      const int64_t rows = static_cast<int64_t>(s.size());
      *rest[i - 3] = Int8Weights(q.data(), s.data(), rows, static_cast<int64_t>(q.size()) / rows);
    }
    layers.push_back(std::move(L));
  }
  m.set_int8_layers(std::move(layers));
}

}  // namespace

void quantize_in_memory(BertModel& m) {
  set_int8_layers_from(m, [&](const std::string& name, std::vector<int8_t>* q, std::vector<float>* s) {
    const ParamEntry& e = m.table().at(name);
    const int64_t rows = e.shape[0], cols = e.shape[1];
    const size_t q0 = q->size(), s0 = s->size();
    q->resize(q0 + static_cast<size_t>(rows * cols));
    s->resize(s0 + static_cast<size_t>(rows));
    float* w = m.params() + e.offset;
    quantize_rows(w, rows, cols, cols, q->data() + q0, cols, s->data() + s0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        w[r * cols + c] = static_cast<float>((*q)[q0 + r * cols + c]) * (*s)[s0 + r];
  });
}

bool has_quantization_config(const ModelConfig& config) {
  return config.extra_json.count("quantization_config") > 0;
}

void reject_quantized(const ModelConfig& config, const std::string& dir, const std::string& what) {
  if (!has_quantization_config(config)) return;
  throw ConfigError(dir + ": a quantized model (config.json quantization_config.quant_method = \"" +
                    quant_method(config) + "\"): " + what +
                    " needs float weights; use the float model it was made from (int8 models run in "
                    "evaluate, predict and serve only)");
}

std::vector<std::string> int8_weight_names(const BertModel& model) {
  std::vector<std::string> out;
  for (int64_t l = 0; l < model.config().num_hidden_layers; ++l)
    for (const char* n : kLinearNames) out.push_back(layer_prefix(model, l) + n + ".weight");
  return out;
}

void save_int8_model(const BertModel& model, const std::string& out_dir,
                     const std::function<void(const std::string&)>& write_extra) {
  const std::vector<std::string> names = int8_weight_names(model);
  const std::set<std::string> quantized(names.begin(), names.end());
  // Storage that outlives the TensorRefs: one int8 matrix and one scale vector per quantized weight.
  std::vector<std::vector<int8_t>> q_store;
  std::vector<std::vector<float>> s_store;
  q_store.reserve(names.size());
  s_store.reserve(names.size());
  std::vector<TensorRef> tensors;
  for (const ParamEntry& e : model.table().entries()) {
    const float* data = model.params() + e.offset;
    TensorRef t;
    t.name = e.name;
    t.shape = e.shape;
    if (!quantized.count(e.name)) {
      t.dtype = DType::F32;
      t.data = reinterpret_cast<const uint8_t*>(data);
      t.nbytes = e.numel * sizeof(float);
      tensors.push_back(std::move(t));
      continue;
    }
    const int64_t rows = e.shape[0], cols = e.shape[1];
    q_store.emplace_back(static_cast<size_t>(rows * cols));
    s_store.emplace_back(static_cast<size_t>(rows));
    quantize_rows(data, rows, cols, cols, q_store.back().data(), cols, s_store.back().data());
    t.dtype = DType::I8;
    t.data = reinterpret_cast<const uint8_t*>(q_store.back().data());
    t.nbytes = static_cast<size_t>(rows * cols);
    tensors.push_back(std::move(t));
    TensorRef s;
    s.name = e.name + "_scale";
    s.dtype = DType::F32;
    s.shape = {rows};
    s.data = reinterpret_cast<const uint8_t*>(s_store.back().data());
    s.nbytes = static_cast<size_t>(rows) * sizeof(float);
    tensors.push_back(std::move(s));
  }
  ModelConfig config = model.config();
  nlohmann::ordered_json q;
  q["quant_method"] = kInt8QuantMethod;
  q["format_version"] = kInt8FormatVersion;
  q["bits"] = 8;
  q["weights"] = "per_row_symmetric";  // int8 in [-127, 127], weight ~ int8 * <name>_scale[row]
  q["activations"] = "per_row_symmetric_dynamic";
  q["modules"] = std::vector<std::string>(std::begin(kLinearNames), std::end(kLinearNames));
  config.extra_json["quantization_config"] = q.dump();
  save_model_dir(out_dir, config, tensors, write_extra);
}

std::unique_ptr<BertModel> load_int8_model(const std::string& dir, const ModelConfig& config, HeadKind head,
                                           const HeadOptions& options) {
  auto it = config.extra_json.find("quantization_config");
  if (it == config.extra_json.end()) throw ConfigError(dir + "/config.json: no quantization_config");
  const std::string method = quant_method(config);
  if (method != kInt8QuantMethod)
    throw ConfigError(dir + "/config.json: quantization_config.quant_method \"" + method +
                      "\" is not one bertfit runs (it runs \"" + kInt8QuantMethod + "\")");
  try {
    const auto j = nlohmann::json::parse(it->second);
    const int version = j.value("format_version", 0);
    if (version != kInt8FormatVersion)
      throw ConfigError(dir + "/config.json: quantization_config.format_version " + std::to_string(version) +
                        ": this bertfit reads version " + std::to_string(kInt8FormatVersion));
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(dir + "/config.json: quantization_config is malformed: " + e.what());
  }
  auto model = std::make_unique<BertModel>(config, head, options);
  BertModel& m = *model;
  const std::vector<std::string> names = int8_weight_names(m);
  const std::set<std::string> quantized(names.begin(), names.end());
  const Checkpoint ckpt = Checkpoint::open(dir);
  std::vector<ExpectedTensor> expected;
  for (const ParamEntry& e : m.table().entries()) {
    if (!quantized.count(e.name)) {
      expected.push_back({e.name, e.shape, m.params() + e.offset, false});
      continue;
    }
    expected.push_back({e.name, e.shape, nullptr, false});  // I8: read below
    expected.push_back({e.name + "_scale", {e.shape[0]}, nullptr, false});
  }
  load_into(ckpt, m.prefix(),
            expected);  // every tensor present with its shape (or a FormatError listing all)
  auto tensor = [&](const std::string& name, DType want) -> const TensorRef& {
    const TensorRef* t = ckpt.find(name);
    if (!t) throw FormatError(ckpt.weights_file() + ": tensor " + name + " missing");
    if (t->dtype != want || !t->is_contiguous())
      throw FormatError(ckpt.weights_file() + ": tensor " + name + " is " + dtype_name(t->dtype) +
                        (t->is_contiguous() ? "" : " (strided)") +
                        ", an int8 model stores it as contiguous " + dtype_name(want));
    return *t;
  };
  // Reads one quantized weight: int8 rows and their scales appended to q / s; the float copy = int8 * scale.
  auto read = [&](const std::string& name, std::vector<int8_t>* q, std::vector<float>* s) {
    const TensorRef& tq = tensor(name, DType::I8);
    const TensorRef& ts = tensor(name + "_scale", DType::F32);
    const int64_t rows = tq.shape[0], cols = tq.shape[1];
    const size_t q0 = q->size(), s0 = s->size();
    q->resize(q0 + static_cast<size_t>(rows * cols));
    s->resize(s0 + static_cast<size_t>(rows));
    std::memcpy(q->data() + q0, tq.data, static_cast<size_t>(rows * cols));
    std::memcpy(s->data() + s0, ts.data, static_cast<size_t>(rows) * sizeof(float));
    for (int64_t r = 0; r < rows; ++r) {
      const float sc = (*s)[s0 + r];
      if (!std::isfinite(sc) || sc < 0.0f)
        throw FormatError(ckpt.weights_file() + ": tensor " + name + "_scale[" + std::to_string(r) +
                          "] = " + std::to_string(sc) + ", a scale must be finite and >= 0");
    }
    float* dst = m.param(name);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        dst[r * cols + c] = static_cast<float>((*q)[q0 + r * cols + c]) * (*s)[s0 + r];
  };
  set_int8_layers_from(m, read);
  return model;
}

}  // namespace bertfit
