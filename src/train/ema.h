// The exponential moving average of the weights (issue 15), a step hook of the training loop: after every
// optimizer step n (0, 1, ...), shadow = d * shadow + (1 - d) * weights with d = min(decay, (1 + n) / (10 +
// n)) (the usual warm-up: the first averages follow the weights closely), the shadow starting at the weights
// before the first step. Evaluation, checkpoints' model files, the best model and the saved model use the
// average (the loop swaps it in around them); training continues on the raw weights.
//
// Resume: a checkpoint's model.safetensors holds the average (what is served and picked as the best), and
// ema_state.safetensors the raw training weights with the number of updates; a resumed run loads both back,
// so it continues bitwise as the uninterrupted run.
#pragma once

#include <cstdint>
#include <string>

#include "core/aligned_buffer.h"
#include "train/training_loop.h"

namespace bertfit {

class WeightAverage : public StepHook {
 public:
  explicit WeightAverage(double decay) : decay_(decay) {}
  void after_backward(StepContext& ctx) override;
  void after_optimizer_step(StepContext& ctx) override;
  void swap_in(BertModel& model) override;
  void swap_out(BertModel& model) override;
  void save_state(const std::string& checkpoint_dir, BertModel& model) override;
  void load_state(const std::string& checkpoint_dir, BertModel& model) override;

  // The averaged weights (the model's buffer layout; empty before the first step) and updates made.
  const AlignedBuffer<float>& average() const { return shadow_; }
  int64_t updates() const { return updates_; }
  // The decay of update n: min(decay, (1 + n) / (10 + n)).
  double decay_at(int64_t n) const;

 private:
  double decay_;
  AlignedBuffer<float> shadow_;
  int64_t updates_ = 0;
  bool swapped_ = false;
};

}  // namespace bertfit
