// ZeRO stage 1 for data-parallel training (--zero_stage 1; DeepSpeed's name; Marian's sharded sync-SGD and
// llm.c do the same): each rank keeps the AdamW state (exp_avg, exp_avg_sq: two floats per parameter) of
// one shard of the parameters only, so the state per rank is 1/N of it. A step: the ranks' gradients summed
// into each shard's owner only (a reduce-scatter: the all-to-all and rank-order sums of dist::OrderedSum,
// without its all-gather), the global gradient norm from every rank's partial sums, clipping and AdamW on
// the shard, then an all-gather of the updated parameters.
//
// Exact: the shards are whole chunks of grad_norm's fixed chunks (kernels/adamw.h), so the ranks' partials
// are grad_norm's own and the norm, the clipping factor and every parameter's update have the bits of the
// unsharded step: the weights equal those without ZeRO, hence those of one process accumulating.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/bert_model.h"
#include "train/optimizer.h"

namespace bertfit {

class ZeroOptimizerStep {
 public:
  ZeroOptimizerStep(dist::Communicator& comm, BertModel& model, Optimizer& opt);
  // Drops the state outside this rank's shard (after a resumed run loaded the whole state).
  void shard_state();
  // After the step's backward and step hooks: reduce-scatter, norm, clipping, AdamW on the shard, all-gather
  // of the parameters. Returns the gradient norm before clipping (every rank the same value).
  double step(double max_grad_norm, double lr_multiplier);
  // For a checkpoint (every rank calls it): the whole state on every rank, until shard_state().
  void unshard_state();
  size_t shard_begin() const { return static_cast<size_t>(offsets_[comm_.rank()]); }
  size_t shard_end() const { return shard_begin() + static_cast<size_t>(counts_[comm_.rank()]); }

 private:
  dist::Communicator& comm_;
  BertModel& model_;
  Optimizer& opt_;
  int64_t n_ = 0;
  std::vector<int64_t> counts_, offsets_;              // each rank's shard of the buffers (elements)
  std::vector<int64_t> chunk_counts_, chunk_offsets_;  // and of the norm's chunks, as floats of doubles
  std::vector<float> recv_;
};

}  // namespace bertfit
