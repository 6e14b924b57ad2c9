#include "train/optimizer.h"

#include <algorithm>
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
  total_ = model.buffer_floats();
  shard(0, total_);
}

void Optimizer::shard(size_t begin, size_t end) {
  if (end == 0) begin = 0, end = total_;
  shard_begin_ = begin;
  shard_end_ = end;
  shard_base_.clear();
  for (const ParamGroup& g : base_) {
    const size_t lo = std::max(g.offset, begin), hi = std::min(g.offset + g.size, end);
    if (lo < hi) shard_base_.push_back({lo - begin, hi - lo, g.lr, g.weight_decay});
  }
  scaled_ = shard_base_;
  m_.resize(end - begin);  // zeroed; the old state is freed first
  v_.resize(end - begin);
}

void Optimizer::unshard(const std::function<void(float* whole)>& fill) {
  for (AlignedBuffer<float>* b : {&m_, &v_}) {
    AlignedBuffer<float> whole(total_);
    std::copy(b->data(), b->data() + (shard_end_ - shard_begin_), whole.data() + shard_begin_);
    fill(whole.data());
    *b = std::move(whole);
  }
  shard_begin_ = 0;
  shard_end_ = total_;
  shard_base_ = base_;
  scaled_ = base_;
}

void Optimizer::step(BertModel& model, double lr_multiplier, float grad_scale) {
  for (size_t i = 0; i < shard_base_.size(); ++i)
    scaled_[i].lr = static_cast<float>(shard_base_[i].lr * lr_multiplier);
  ++step_;
  adamw_step(model.params() + shard_begin_, model.grads() + shard_begin_, m_.data(), v_.data(), scaled_,
             options_.hyper, step_, grad_scale);
}

void Optimizer::save(const std::string& path) const {
  if (shard_begin_ != 0 || shard_end_ != total_)
    throw Error("Optimizer::save: the state is sharded (unshard() first)");
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
    if (shard_begin_ != 0 || shard_end_ != total_)
      throw Error("Optimizer::load: the state is sharded (unshard() first)");
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
