#include "train/zero_optimizer.h"

#include <algorithm>
#include <cmath>

#include "core/threading.h"
#include "dist/data_parallel.h"
#include "kernels/adamw.h"

namespace bertfit {

ZeroOptimizerStep::ZeroOptimizerStep(dist::Communicator& comm, BertModel& model, Optimizer& opt)
    : comm_(comm), model_(model), opt_(opt), n_(static_cast<int64_t>(model.buffer_floats())) {
  const int W = comm.size();
  const int64_t chunk = static_cast<int64_t>(grad_norm_chunk_size(static_cast<size_t>(n_)));
  counts_.resize(W), offsets_.resize(W), chunk_counts_.resize(W), chunk_offsets_.resize(W);
  for (int r = 0; r < W; ++r) {
    const dist::Range c = dist::shard(kGradNormChunks, r, W);  // whole chunks per rank
    const int64_t lo = std::min(n_, c.begin * chunk), hi = std::min(n_, c.end * chunk);
    offsets_[r] = lo;
    counts_[r] = hi - lo;
    chunk_offsets_[r] = 2 * c.begin;  // doubles travel as pairs of floats
    chunk_counts_[r] = 2 * c.size();
  }
}

void ZeroOptimizerStep::shard_state() {
  opt_.shard(shard_begin(), shard_end());
}

void ZeroOptimizerStep::unshard_state() {
  opt_.unshard([&](float* whole) { comm_.all_gather_in_place(whole, counts_.data(), offsets_.data()); });
}

double ZeroOptimizerStep::step(double max_grad_norm, double lr_multiplier) {
  const int W = comm_.size(), me = comm_.rank();
  float* g = model_.grads();
  // Reduce-scatter: every rank's part of my shard, added in rank order into my shard of g.
  const int64_t mine = counts_[me];
  std::vector<int64_t> recv_counts(W, mine), recv_offsets(W);
  for (int r = 0; r < W; ++r) recv_offsets[r] = r * mine;
  recv_.resize(static_cast<size_t>(W * mine));
  comm_.all_to_all(g, counts_.data(), offsets_.data(), recv_.data(), recv_counts.data(), recv_offsets.data());
  float* out = g + offsets_[me];
  parallel_for(0, mine, mine * W >= kParallelMinWork, [&](int64_t i) {
    float s = recv_[i];
    for (int r = 1; r < W; ++r) s += recv_[r * mine + i];
    out[i] = s;
  });
  // The norm: grad_norm's chunk partials, each computed by the chunk's owner, combined in chunk order.
  std::vector<double> partial(kGradNormChunks, 0.0);
  const int c_begin = static_cast<int>(chunk_offsets_[me] / 2),
            c_end = c_begin + static_cast<int>(chunk_counts_[me] / 2);
  grad_norm_partials(g, static_cast<size_t>(n_), c_begin, c_end, partial.data() + c_begin);
  comm_.all_gather_in_place(reinterpret_cast<float*>(partial.data()), chunk_counts_.data(),
                            chunk_offsets_.data());
  double total = 0;
  for (double p : partial) total += p;
  const double norm = std::sqrt(total);
  // clip_grad_norm's factor, applied as AdamW reads my shard's gradients (the values in-place scaling would
  // leave).
  opt_.step(model_, lr_multiplier, clip_coefficient(norm, max_grad_norm));  // my shard of the parameters
  comm_.all_gather_in_place(model_.params(), counts_.data(), offsets_.data());
  return norm;
}

}  // namespace bertfit
