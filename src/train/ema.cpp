// The weights' exponential moving average (ema.h).
#include "train/ema.h"

#include <algorithm>
#include <filesystem>

#include "bertfit/error.h"
#include "bertfit/io/safetensors.h"
#include "bertfit/io/tensor.h"
#include "core/threading.h"
#include "train/progress.h"

namespace bertfit {

namespace {
constexpr const char* kStateFile = "/ema_state.safetensors";
}

double WeightAverage::decay_at(int64_t n) const {
  return std::min(decay_, (1.0 + static_cast<double>(n)) / (10.0 + static_cast<double>(n)));
}

void WeightAverage::after_backward(StepContext& ctx) {
  // The average starts at the weights before the first update (here: before this step's optimizer step).
  if (shadow_.size() == ctx.model.buffer_floats()) return;
  shadow_.resize(ctx.model.buffer_floats());
  std::copy(ctx.model.params(), ctx.model.params() + ctx.model.buffer_floats(), shadow_.data());
}

void WeightAverage::after_optimizer_step(StepContext& ctx) {
  const float d = static_cast<float>(decay_at(updates_)), e = 1.0f - d;
  const float* p = ctx.model.params();
  float* s = shadow_.data();
  const int64_t n = static_cast<int64_t>(shadow_.size());
  // Element-wise: the same bits for any thread count.
  parallel_for(0, n, n >= 1 << 16, [&](int64_t i) { s[i] = d * s[i] + e * p[i]; });
  ++updates_;
}

void WeightAverage::swap_in(BertModel& model) {
  if (swapped_ || shadow_.size() != model.buffer_floats()) return;  // nothing averaged yet
  std::swap_ranges(model.params(), model.params() + model.buffer_floats(), shadow_.data());
  swapped_ = true;
}

void WeightAverage::swap_out(BertModel& model) {
  if (!swapped_) return;
  std::swap_ranges(model.params(), model.params() + model.buffer_floats(), shadow_.data());
  swapped_ = false;
}

void WeightAverage::save_state(const std::string& checkpoint_dir, BertModel& model) {
  if (shadow_.size() != model.buffer_floats()) return;
  // The raw training weights (the checkpoint's model file holds the average).
  const float* raw = swapped_ ? shadow_.data() : model.params();
  TensorRef t;
  t.name = "weights";
  t.dtype = DType::F32;
  t.shape = {static_cast<int64_t>(model.buffer_floats())};
  t.data = reinterpret_cast<const uint8_t*>(raw);
  t.nbytes = model.buffer_floats() * sizeof(float);
  write_safetensors(checkpoint_dir + kStateFile, {t},
                    {{"format", "bertfit-ema"},
                     {"version", "1"},
                     {"updates", std::to_string(updates_)},
                     {"decay", std::to_string(decay_)}});
}

void WeightAverage::load_state(const std::string& checkpoint_dir, BertModel& model) {
  const std::string path = checkpoint_dir + kStateFile;
  if (!std::filesystem::exists(path)) {
    log_message("note: " + checkpoint_dir +
                " has no weight average (saved without --ema_decay): the average starts at its weights");
    return;
  }
  const SafetensorsFile f = SafetensorsFile::open(path);
  const auto fmt = f.metadata().find("format");
  const auto upd = f.metadata().find("updates");
  const TensorRef* w = f.find("weights");
  if (fmt == f.metadata().end() || fmt->second != "bertfit-ema" || upd == f.metadata().end() || !w)
    throw FormatError(path + ": not a bertfit weight-average state (format bertfit-ema, tensor weights)");
  if (w->dtype != DType::F32 || w->shape.size() != 1 ||
      w->shape[0] != static_cast<int64_t>(model.buffer_floats()))
    throw FormatError(path + ": tensor weights does not match this model's " +
                      std::to_string(model.buffer_floats()) + " floats");
  int64_t updates = 0;
  try {
    updates = std::stoll(upd->second);
  } catch (const std::exception&) {
    throw FormatError(path + ": metadata updates \"" + upd->second + "\" is not a number");
  }
  // The model holds the checkpoint's model file, i.e. the average; the state file the raw weights.
  shadow_.resize(model.buffer_floats());
  std::copy(model.params(), model.params() + model.buffer_floats(), shadow_.data());
  to_f32(*w, model.params());
  updates_ = updates;
  swapped_ = false;
}

}  // namespace bertfit
