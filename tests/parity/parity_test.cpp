// Golden parity of the engine with the PyTorch reference (tools/reference/torch_bert.py, fixtures committed
// in tests/fixtures/parity/; ELECTRA's from tools/reference/torch_electra.py): tiny BERT, RoBERTa and ELECTRA
// (embedding_size 24 -> hidden 32 through embeddings_project, and 32 without it), classification, masked-LM
// (ELECTRA's generator) and replaced-token detection (ELECTRA's discriminator) heads, a padded batch of
// lengths 9, 5, 2, dropout off.
//
// Tolerances (the issue's, each justified for fp32 with O(1) activations):
//  - hidden states and logits, 1e-4 absolute: both sides round each op in fp32 (~6e-8 relative), but sum in
//    different orders (BLAS blocking vs. torch's kernels) through 2 layers and LayerNorms with rstd up to
//    ~10; observed differences are ~1e-6, so 1e-4 leaves a 100x margin while a wrong term gives O(0.1-1).
//  - loss, 1e-5 absolute: one log-sum-exp over O(1) logits.
//  - gradients, 1e-3 of each tensor's norm: backward sums over the batch in other orders again; relative to
//  the
//    norm so that tiny tensors (biases of rarely-used rows) don't fail on absolute noise.
//  - 10-step AdamW loss trajectory, 1e-4: the loss after updates of lr 1e-3 inherits the gradient differences
//    through Adam's m / sqrt(v), which is scale-free, so the differences stay at the 1e-6 level.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "bertfit/error.h"
#include "fixture.h"
#include "kernels/adamw.h"
#include "kernels/cross_entropy.h"

namespace bertfit {
namespace {

using testing::Fixture;

double rel_error(const float* a, const std::vector<float>& ref) {
  double e = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    e += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    r += static_cast<double>(ref[i]) * ref[i];
  }
  return r == 0 ? std::sqrt(e) : std::sqrt(e / r);
}

std::vector<ParamGroup> adamw_groups(const BertModel& m, float lr, float wd) {
  std::vector<ParamGroup> g;
  for (const ParamEntry& e : m.table().entries())
    g.push_back({e.offset, e.numel, lr, e.no_decay ? 0.0f : wd});
  return g;
}

class Parity : public ::testing::TestWithParam<const char*> {};

TEST_P(Parity, ForwardBackwardMatchesPyTorch) {
  Fixture f(GetParam());
  BertModel m(f.config, f.head);
  m.output_hidden_states = true;  // as HF's flag: every layer's hidden state is compared below
  m.reserve(f.B, f.T);
  f.load_params(m);
  const float loss = m.forward(f.batch(), /*training=*/true);
  m.backward();

  const int64_t C = f.config.hidden_size;
  for (int64_t l = 0; l <= f.config.num_hidden_layers; ++l) {
    const auto ref = f.f32("expected.hidden." + std::to_string(l));
    const float* h = m.hidden_state(l);
    double worst = 0;
    for (int64_t r = 0; r < f.B * f.T; ++r) {
      if (!f.mask[r]) continue;  // padded positions are garbage by design in both implementations
      for (int64_t c = 0; c < C; ++c)
        worst = std::max(worst, std::fabs(double(h[r * C + c]) - ref[r * C + c]));
    }
    EXPECT_LT(worst, 1e-4) << "hidden state " << l;
  }
  const auto ref_logits = f.f32("expected.logits");
  double worst = 0;
  if (f.head == HeadKind::MASKED_LM) {  // ours: labelled rows only; reference: every position
    const int64_t V = f.config.vocab_size;
    ASSERT_EQ(m.logits_rows(), count_labelled(f.labels.data(), f.B * f.T));
    for (int64_t i = 0; i < m.logits_rows(); ++i)
      for (int64_t v = 0; v < V; ++v)
        worst = std::max(worst,
                         std::fabs(double(m.logits()[i * V + v]) - ref_logits[m.labelled_rows()[i] * V + v]));
  } else if (f.head == HeadKind::REPLACED_TOKEN_DETECTION) {  // one logit per token; padding is garbage
    ASSERT_EQ(static_cast<size_t>(m.logits_rows()), ref_logits.size());
    for (size_t i = 0; i < ref_logits.size(); ++i)
      if (f.mask[i]) worst = std::max(worst, std::fabs(double(m.logits()[i]) - ref_logits[i]));
  } else {
    ASSERT_EQ(static_cast<size_t>(m.logits_rows() * f.config.num_labels()), ref_logits.size());
    for (size_t i = 0; i < ref_logits.size(); ++i)
      worst = std::max(worst, std::fabs(double(m.logits()[i]) - ref_logits[i]));
  }
  EXPECT_LT(worst, 1e-4) << "logits";
  EXPECT_NEAR(loss, f.f32("expected.loss")[0], 1e-5) << "loss";

  // A gradient that is zero in exact arithmetic has no meaningful relative error: the attention key biases
  // (softmax is invariant to adding q.b_k to every score of a row) come out as rounding noise ~1e-9 on both
  // sides. Below a floor of 1e-6 of the whole gradient's norm (fp32 noise is ~1e-7 of it), we require ours to
  // be below the floor as well instead.
  double total = 0;
  for (const ParamEntry& e : m.table().entries())
    for (float g : f.f32("grad." + e.name)) total += double(g) * g;
  const double floor = 1e-6 * std::sqrt(total);
  for (const ParamEntry& e : m.table().entries()) {
    const auto ref = f.f32("grad." + e.name);
    double ref_norm = 0, our_norm = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      ref_norm += double(ref[i]) * ref[i];
      our_norm += double(m.grads()[e.offset + i]) * m.grads()[e.offset + i];
    }
    if (std::sqrt(ref_norm) < floor)
      EXPECT_LT(std::sqrt(our_norm), floor) << "gradient of " << e.name << " should be zero";
    else
      EXPECT_LT(rel_error(m.grads() + e.offset, ref), 1e-3) << "gradient of " << e.name;
  }
}

// The model recomputes in its backward what it does not keep (attention probabilities and ctx, h1, the GELU
// output, hidden states between layers). Recomputing runs the forward's code on the forward's operands, so
// the results must be the same bits as with every hidden state kept (one recomputation fewer), not merely
// close.
TEST_P(Parity, RecomputedActivationsGiveTheSameBits) {
  Fixture f(GetParam());
  BertModel kept(f.config, f.head), lean(f.config, f.head);
  kept.output_hidden_states = true;
  kept.reserve(f.B, f.T);
  lean.reserve(f.B, f.T);
  EXPECT_LT(lean.arena_floats(), kept.arena_floats());
  f.load_params(kept);
  f.load_params(lean);
  EXPECT_EQ(kept.forward(f.batch(), true, 3), lean.forward(f.batch(), true, 3));
  kept.backward();
  lean.backward();
  const int64_t nlogits = kept.logits_rows() * f.logit_width();
  EXPECT_EQ(0, std::memcmp(kept.logits(), lean.logits(), nlogits * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(kept.grads(), lean.grads(), kept.buffer_floats() * sizeof(float)));
  EXPECT_THROW(lean.hidden_state(1), Error);  // not kept: an error, not stale data
}

// bertfit predict / evaluate reserve for inference: one set of layer buffers reused by every layer. The
// logits are the same bits as a training-sized arena's, in a smaller arena, and backward() refuses to run.
TEST_P(Parity, InferenceArenaGivesTheSameLogits) {
  Fixture f(GetParam());
  BertModel train(f.config, f.head), infer(f.config, f.head);
  train.reserve(f.B, f.T);
  infer.reserve(f.B, f.T, -1, ArenaUse::INFERENCE);
  EXPECT_LT(infer.arena_floats(), train.arena_floats());
  f.load_params(train);
  f.load_params(infer);
  EXPECT_EQ(train.forward(f.batch(), false), infer.forward(f.batch(), false));
  const int64_t nlogits = train.logits_rows() * f.logit_width();
  ASSERT_EQ(train.logits_rows(), infer.logits_rows());
  EXPECT_EQ(0, std::memcmp(train.logits(), infer.logits(), nlogits * sizeof(float)));
  infer.forward(f.batch(),
                true);  // a training forward runs (dropout), but there is nothing to go back through
  EXPECT_THROW(infer.backward(), Error);
}

TEST_P(Parity, AdamWTrajectoryMatchesPyTorch) {
  Fixture f(GetParam());
  BertModel m(f.config, f.head);
  m.reserve(f.B, f.T);
  f.load_params(m);
  const int steps = f.adamw.at("steps");
  const float lr = f.adamw.at("lr"), wd = f.adamw.at("weight_decay");
  const double max_norm = f.adamw.at("max_grad_norm");
  const auto groups = adamw_groups(m, lr, wd);
  AlignedBuffer<float> mom(m.buffer_floats()), var(m.buffer_floats());
  const auto ref = f.f32("expected.trajectory");
  ASSERT_EQ(ref.size(), static_cast<size_t>(steps));
  for (int s = 0; s < steps; ++s) {
    m.zero_grad();
    const float loss = m.forward(f.batch(), true, s);
    m.backward();
    clip_grad_norm(m.grads(), m.buffer_floats(), max_norm);
    adamw_step(m.params(), m.grads(), mom.data(), var.data(), groups, AdamWHyper{}, s + 1);
    EXPECT_NEAR(loss, ref[s], 1e-4) << "step " << s;
  }
  // The weights after 10 steps, relative to each tensor's norm: 1e-4, since every update is lr * a bounded
  // Adam ratio, and the ratios agree to ~1e-5 where gradients agree to ~1e-6.
  // Key biases are excluded: their gradient is rounding noise (see above), which Adam's m / sqrt(v) turns
  // into O(lr) steps of arbitrary sign on both sides; their effect on the loss is nil (the trajectory checks
  // that).
  for (const ParamEntry& e : m.table().entries()) {
    if (e.name.find("attention.self.key.bias") != std::string::npos) continue;
    EXPECT_LT(rel_error(m.params() + e.offset, f.f32("expected.after_adamw." + e.name)), 1e-4) << e.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Engine, Parity,
                         ::testing::Values("bert_cls", "roberta_cls", "bert_mlm", "roberta_mlm",
                                           "electra_cls", "electra_cls_noproj", "electra_mlm",
                                           "electra_disc"));

}  // namespace
}  // namespace bertfit
