// FGM and PGD on the word embeddings (adversarial.h).
#include "train/adversarial.h"

#include <algorithm>
#include <cmath>

namespace bertfit {

namespace {

double norm2(const float* x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return std::sqrt(s);
}

// The step's micro-batches forward and backward again (gradients accumulate), with their own dropout keys.
void run_passes(StepContext& ctx) {
  Batch b;
  for (size_t k = 0; k < ctx.micro_batches.size(); ++k) {
    if (!ctx.task.micro_batch(ctx.model, k, &b)) continue;
    ctx.model.forward(b, /*training=*/true, ctx.dropout_key + k, ctx.loss_normalizer);
    ctx.model.backward();
  }
}

}  // namespace

void AdversarialTraining::after_backward(StepContext& ctx) {
  BertModel& m = ctx.model;
  const std::string name = m.prefix() + ".embeddings.word_embeddings.weight";
  const size_t n = static_cast<size_t>(m.table().at(name).numel);
  float* E = m.param(name);
  const float* g = m.grad(name);
  last_r_.clear();
  const double gn = norm2(g, n);
  if (!(gn > 0) || !std::isfinite(gn)) return;  // no direction to move in
  backup_.assign(E, E + n);
  last_r_.resize(n);
  if (o_.kind == AdversarialOptions::Kind::FGM) {
    const double s = o_.epsilon / gn;
    for (size_t i = 0; i < n; ++i) {
      E[i] = backup_[i] + static_cast<float>(s * g[i]);
      last_r_[i] = E[i] - backup_[i];
    }
    run_passes(ctx);
  } else {
    float* G = m.grads();
    const size_t total = m.buffer_floats();
    clean_grads_.assign(G, G + total);
    bool added = false;
    for (int t = 0; t < o_.steps; ++t) {
      const double cn = norm2(g, n);
      if (!(cn > 0) || !std::isfinite(cn)) break;
      const double s = o_.alpha / cn;
      for (size_t i = 0; i < n; ++i) E[i] += static_cast<float>(s * g[i]);
      for (size_t i = 0; i < n; ++i) last_r_[i] = E[i] - backup_[i];
      const double rn = norm2(last_r_.data(), n);
      if (rn > o_.epsilon) {
        const double p = o_.epsilon / rn;
        for (size_t i = 0; i < n; ++i) {
          E[i] = backup_[i] + static_cast<float>(p * last_r_[i]);
          last_r_[i] = E[i] - backup_[i];
        }
      }
      // The last pass adds to the clean gradients; the others only give the next ascent direction.
      if (t + 1 < o_.steps) {
        m.zero_grad();
      } else {
        std::copy(clean_grads_.begin(), clean_grads_.end(), G);
        added = true;
      }
      run_passes(ctx);
    }
    // An adversarial pass without gradient on E stopped the ascent early: the step keeps its clean gradients.
    if (!added) std::copy(clean_grads_.begin(), clean_grads_.end(), G);
  }
  std::copy(backup_.begin(), backup_.end(), E);
}

}  // namespace bertfit
