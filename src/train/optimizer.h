// AdamW over the model's flat buffers with parameter groups: HF Trainer's no-decay rule (biases and LayerNorm
// weights), the paper's layer-wise decreasing learning rate (xi from the top layer down through the
// embeddings) and a separate learning rate for the task head (the seed's get_parameters). Adjacent parameters
// with the same rate and decay are merged into one span, so a step is a handful of vectorised passes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"
#include "kernels/adamw.h"
#include "model/bert_model.h"

namespace bertfit {

struct OptimizerOptions {
  double learning_rate = 2e-5;
  double head_learning_rate = -1;   // < 0: learning_rate
  double layerwise_lr_decay = 1.0;  // xi
  double weight_decay = 0.0;
  AdamWHyper hyper;
};

// Base learning rate of a parameter at `depth` (0 = embeddings, 1..L = encoder layers, L+1 = pooler and
// head): lr * xi^(L - depth) for depth <= L, the head rate above. So the top layer trains at lr, the layer
// below at xi * lr, ..., the embeddings at xi^L * lr.
double layerwise_lr(const OptimizerOptions& o, int depth, int num_layers);

class Optimizer {
 public:
  Optimizer(const BertModel& model, const OptimizerOptions& options);
  // One AdamW step with every group's rate multiplied by lr_multiplier (the schedule's value for this step),
  // on the gradients times grad_scale (the clipping factor, kernels/adamw.h's clip_coefficient; the gradient
  // buffer itself is not scaled).
  void step(BertModel& model, double lr_multiplier, float grad_scale = 1.0f);
  int64_t steps() const { return step_; }
  // The base (unscheduled) groups: spans of the buffers with their lr and weight decay.
  const std::vector<ParamGroup>& groups() const { return base_; }
  // optimizer.safetensors: exp_avg and exp_avg_sq as flat tensors, step and group layout in the metadata.
  void save(const std::string& path) const;
  // Throws FormatError naming the file when it does not match this model's layout.
  void load(const std::string& path);

  // ZeRO stage 1 (train/zero_optimizer.h): keep the state of [begin, end) of the buffers only (the rest is
  // freed) and update only those parameters; the updated values are bitwise those of the whole-buffer step
  // (AdamW is elementwise). end = 0: the whole buffer again (state of the rest zeroed). save() and load()
  // need the whole state: unshard() first.
  void shard(size_t begin, size_t end);
  // Rebuilds the whole state: `fill` gets each whole-size buffer (exp_avg, exp_avg_sq) with this process's
  // shard in place and completes it (an all-gather of the ranks' shards).
  void unshard(const std::function<void(float* whole)>& fill);
  size_t shard_begin() const { return shard_begin_; }
  size_t shard_end() const { return shard_end_; }

 private:
  OptimizerOptions options_;
  std::vector<ParamGroup> base_, scaled_;
  AlignedBuffer<float> m_, v_;  // of [shard_begin_, shard_end_)
  size_t total_ = 0, shard_begin_ = 0, shard_end_ = 0;
  std::vector<ParamGroup> shard_base_;  // base_ clipped to the shard, offsets from shard_begin_
  int64_t step_ = 0;
};

}  // namespace bertfit
