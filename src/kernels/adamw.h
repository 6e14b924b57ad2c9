// AdamW exactly as torch.optim.AdamW (torch 1.13, single-tensor path), and global gradient-norm clipping.
// Both work on spans of the flat parameter / gradient / moment buffers (one span per parameter group).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace bertfit {

struct AdamWHyper {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

// A contiguous span of the flat buffers that shares one learning rate and weight decay.
struct ParamGroup {
  size_t offset = 0, size = 0;
  float lr = 0, weight_decay = 0;
};

// One AdamW update of params[offset, offset+size) of every group; step counts from 1 (bias correction).
//   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
//   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
// Adjacent groups with the same lr and weight decay are merged into one span and the update is vectorised;
// the result is bitwise identical to adamw_step_reference (same operations in the same order) for any thread
// count.
// grad_scale: the update uses g = grads[i] * grad_scale (a float multiply; grads is not written), exactly the
// values clip_grad_norm's in-place scaling would leave, so clipping costs no pass of its own (see
// clip_coefficient); 1 multiplies nothing.
void adamw_step(float* params, const float* grads, float* m, float* v, const std::vector<ParamGroup>& groups,
                const AdamWHyper& hyper, int64_t step, float grad_scale = 1.0f);
// The plain per-group, per-element loop (the oracle of the fast path).
void adamw_step_reference(float* params, const float* grads, float* m, float* v,
                          const std::vector<ParamGroup>& groups, const AdamWHyper& hyper, int64_t step,
                          float grad_scale = 1.0f);

// L2 norm of g[0, n), summed in double over fixed chunks combined in order: the same value for any thread
// count.
double grad_norm(const float* g, size_t n);
// The chunks: kGradNormChunks of grad_norm_chunk_size(n) elements (the last ones shorter or empty).
// grad_norm_partials writes the sums of squares of chunks [c_begin, c_end) of g[0, n) (g is the whole buffer;
// only those chunks are read) to partial[0 ..]: a process holding some chunks computes exactly grad_norm's
// partials for them (ZeRO-sharded optimizer state, train/zero_optimizer.h).
constexpr int kGradNormChunks = 256;
size_t grad_norm_chunk_size(size_t n);
void grad_norm_partials(const float* g, size_t n, int c_begin, int c_end, double* partial);
// torch.nn.utils.clip_grad_norm_: if norm > max_norm, g *= max_norm / (norm + 1e-6). Returns the norm before
// clipping. max_norm <= 0 disables clipping (the norm is still returned, for logging).
double clip_grad_norm(float* g, size_t n, double max_norm);
// clip_grad_norm's factor for a norm: float(max_norm / (norm + 1e-6)) when max_norm > 0 and norm > max_norm,
// else 1. The training loop passes it to adamw_step as grad_scale instead of scaling the gradients in place.
float clip_coefficient(double norm, double max_norm);

}  // namespace bertfit
