#include "train/optimizer.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/safetensors.h"

namespace bertfit {

double layerwise_lr(const OptimizerOptions& o, int depth, int num_layers) {
  if (depth > num_layers) return o.head_learning_rate > 0 ? o.head_learning_rate : o.learning_rate;
  return o.learning_rate * std::pow(o.layerwise_lr_decay, num_layers - depth);
}

Optimizer::Optimizer(const BertModel& model, const OptimizerOptions& options) : options_(options) {
  const int L = static_cast<int>(model.config().num_hidden_layers);
  for (const ParamEntry& e : model.table().entries()) {
    const float lr = static_cast<float>(layerwise_lr(options, e.depth, L));
    const float wd = e.no_decay ? 0.0f : static_cast<float>(options.weight_decay);
    // Spans include the alignment gaps between tensors: zeros with zero gradients stay zero under AdamW.
    if (!base_.empty() && base_.back().lr == lr && base_.back().weight_decay == wd) {
      base_.back().size = e.offset + e.numel - base_.back().offset;
    } else {
      base_.push_back({e.offset, e.numel, lr, wd});
    }
  }
  scaled_ = base_;
  m_.resize(model.buffer_floats());
  v_.resize(model.buffer_floats());
}

void Optimizer::step(BertModel& model, double lr_multiplier) {
  for (size_t i = 0; i < base_.size(); ++i) scaled_[i].lr = static_cast<float>(base_[i].lr * lr_multiplier);
  ++step_;
  adamw_step(model.params(), model.grads(), m_.data(), v_.data(), scaled_, options_.hyper, step_);
}

void Optimizer::save(const std::string& path) const {
  nlohmann::json groups = nlohmann::json::array();
  for (const ParamGroup& g : base_)
    groups.push_back(
        {{"offset", g.offset}, {"size", g.size}, {"lr", g.lr}, {"weight_decay", g.weight_decay}});
  auto flat = [&](const char* name, const AlignedBuffer<float>& b) {
    TensorRef t;
    t.name = name;
    t.dtype = DType::F32;
    t.shape = {static_cast<int64_t>(b.size())};
    t.data = reinterpret_cast<const uint8_t*>(b.data());
    t.nbytes = b.size() * sizeof(float);
    return t;
  };
  write_safetensors(path, {flat("exp_avg", m_), flat("exp_avg_sq", v_)},
                    {{"format", "bertfit-adamw"},
                     {"version", "1"},
                     {"step", std::to_string(step_)},
                     {"groups", groups.dump()}});
}

void Optimizer::load(const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  const auto& meta = f.metadata();
  auto it = meta.find("format");
  if (it == meta.end() || it->second != "bertfit-adamw")
    throw FormatError(path + ": not a bertfit optimizer state (metadata format != bertfit-adamw)");
  if (meta.count("version") == 0 || meta.at("version") != "1")
    throw FormatError(path + ": optimizer state version is not 1 (written by a newer bertfit?)");
  for (const char* name : {"exp_avg", "exp_avg_sq"}) {
    const TensorRef* t = f.find(name);
    if (!t) throw FormatError(path + ": tensor " + name + " missing");
    if (t->dtype != DType::F32 || t->shape != std::vector<int64_t>{static_cast<int64_t>(m_.size())})
      throw FormatError(path + ": tensor " + std::string(name) + " has shape " + shape_str(t->shape) +
                        ", this model needs [" + std::to_string(m_.size()) +
                        "] (another model's checkpoint?)");
    to_f32(*t, std::string(name) == "exp_avg" ? m_.data() : v_.data());
  }
  try {
    step_ = std::stoll(meta.at("step"));
  } catch (const std::exception&) {
    throw FormatError(path + ": metadata step is not an integer");
  }
}

}  // namespace bertfit
