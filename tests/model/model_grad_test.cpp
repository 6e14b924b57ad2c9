// Finite-difference check of the whole model's backward, for every classifier feature kind, chunk pooling and
// both families, with dropout ON (masks are a fixed function of the step key, so the loss is a deterministic,
// piecewise-smooth function of the parameters).
//
// Three elements of every parameter tensor are perturbed (h = 1e-2, central differences). The loss is fp32
// and goes through ~100 rounded ops, so it carries noise of ~1e-6 (measured: shrinking h to 1e-3 makes the
// disagreement GROW, the signature of rounding noise), i.e. ~5e-5 per difference; the truncation error of the
// smooth parts is O(h^2) relative, ~1e-3. Each element must agree within 5% of its value plus an absolute
// 2e-4 (4x the noise), and the sampled gradient vector as a whole within 2e-2 of its norm. A wrong or missing
// path gives errors of the order of the gradient itself (this test found a transposed-shape bug in the
// RoBERTa head with wide features, invisible to the parity test's default head).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "model/bert_model.h"

namespace bertfit {
namespace {

struct Case {
  const char* name;
  ModelFamily family;
  HeadKind head;
  HeadOptions opts;
  int64_t chunks;
};

void check_case(const Case& k) {
  ModelConfig c = k.family == ModelFamily::ROBERTA ? roberta_defaults() : ModelConfig{};
  c.vocab_size = 40;
  c.hidden_size = 16;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 2;
  c.intermediate_size = 20;
  c.max_position_embeddings = 24;
  c.id2label = {"x", "y", "z"};
  BertModel m(c, k.head, k.opts);
  m.init_weights(11);
  // Larger weights than HF's 0.02 so that every path carries a gradient well above fp32 noise.
  Rng rng(5);
  for (size_t i = 0; i < m.buffer_floats(); ++i) m.params()[i] += static_cast<float>(0.08 * rng.normal());
  const int64_t B = 4, T = 7;
  m.reserve(B, T);
  std::vector<int32_t> ids(B * T);
  std::vector<uint8_t> mask(B * T);
  const int32_t pad = static_cast<int32_t>(c.pad_token_id);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < T - 2 * b + (b == 3 ? 3 : 0);
      ids[b * T + t] = real ? static_cast<int32_t>(3 + rng.below(36)) : pad;
      mask[b * T + t] = real;
    }
  std::vector<int32_t> labels;
  if (k.head == HeadKind::MASKED_LM) {
    labels.assign(B * T, -100);
    for (int64_t i = 0; i < B * T; i += 3)
      if (mask[i]) labels[i] = static_cast<int32_t>(rng.below(40));
  } else {
    labels = {2, 0, 1, 1};
    labels.resize(B / k.chunks);
  }
  std::vector<uint8_t> chunk_mask(B, 1);
  if (k.chunks > 1) chunk_mask[3] = 0;  // the second document has one real chunk
  const Batch batch{B, T, ids.data(), nullptr, mask.data(), labels.data(), k.chunks, chunk_mask.data()};
  m.zero_grad();
  m.forward(batch, true, 1);
  m.backward();
  const float h = 1e-2f;
  double err2 = 0, ref2 = 0;
  int samples = 0, kinks = 0;
  auto central = [&](size_t i, float step) {
    const float saved = m.params()[i];
    m.params()[i] = saved + step;
    const double lp = m.forward(batch, true, 1);
    m.params()[i] = saved - step;
    const double lm = m.forward(batch, true, 1);
    m.params()[i] = saved;
    return (lp - lm) / (2.0 * step);
  };
  for (const ParamEntry& e : m.table().entries()) {
    for (int s = 0; s < 3; ++s) {
      const size_t i = e.offset + static_cast<size_t>(rng.below(e.numel));
      const double num = central(i, h), ana = m.grads()[i];
      // Max-pooling features are only piecewise smooth: when a step crosses a kink (two candidates swap),
      // differences with h, h/2 and h/4 disagree. Such samples say nothing about the gradient; skip them, and
      // below require them to be rare.
      ++samples;
      const double half = central(i, h / 2), quarter = central(i, h / 4);
      // (The same tolerance as the check below: a real error makes all three agree with each other and
      // disagree with the analytic value, so it is never skipped.)
      if (std::max(std::fabs(num - half), std::fabs(num - quarter)) > 0.05 * std::fabs(num) + 2e-4) {
        ++kinks;
        continue;
      }
      err2 += (num - ana) * (num - ana);
      ref2 += ana * ana;
      EXPECT_LE(std::fabs(num - ana), 0.05 * std::fabs(ana) + 2e-4)
          << k.name << ": gradient of " << e.name << "[" << i - e.offset << "]: numeric " << num
          << ", analytic " << ana;
    }
  }
  ASSERT_GT(ref2, 0.0);
  EXPECT_LE(kinks, samples / 10) << k.name << ": too many non-smooth samples";
  EXPECT_LT(std::sqrt(err2 / ref2), 2e-2) << k.name;
}

TEST(ModelGrad, EveryHeadVariant) {
  const auto BERT = ModelFamily::BERT, ROBERTA = ModelFamily::ROBERTA;
  const auto CLS = HeadKind::SEQUENCE_CLASSIFICATION;
  const std::vector<Case> cases = {
      {"bert pooler", BERT, CLS, {FeatureKind::POOLER}, 1},
      {"bert cls", BERT, CLS, {FeatureKind::CLS}, 1},
      {"bert layer 2", BERT, CLS, {FeatureKind::LAYER_CLS, 2}, 1},
      {"bert layer 0 (embeddings)", BERT, CLS, {FeatureKind::LAYER_CLS, 0}, 1},
      {"bert last4-concat", BERT, CLS, {FeatureKind::LAST4_CONCAT}, 1},
      {"bert last4-mean", BERT, CLS, {FeatureKind::LAST4_MEAN}, 1},
      {"bert last4-max", BERT, CLS, {FeatureKind::LAST4_MAX}, 1},
      {"bert all-concat", BERT, CLS, {FeatureKind::ALL_CONCAT}, 1},
      {"bert mean-tokens", BERT, CLS, {FeatureKind::MEAN_TOKENS}, 1},
      {"roberta head", ROBERTA, CLS, {FeatureKind::POOLER}, 1},
      {"roberta last4-concat", ROBERTA, CLS, {FeatureKind::LAST4_CONCAT}, 1},
      {"bert chunks mean", BERT, CLS, {FeatureKind::CLS, -1, ChunkPooling::MEAN}, 2},
      {"bert chunks max", BERT, CLS, {FeatureKind::CLS, -1, ChunkPooling::MAX}, 2},
      {"bert chunks attention", BERT, CLS, {FeatureKind::CLS, -1, ChunkPooling::ATTENTION}, 2},
      {"bert pooler chunks attention", BERT, CLS, {FeatureKind::POOLER, -1, ChunkPooling::ATTENTION}, 2},
      {"roberta chunks attention", ROBERTA, CLS, {FeatureKind::CLS, -1, ChunkPooling::ATTENTION}, 2},
      {"bert masked LM", BERT, HeadKind::MASKED_LM, {}, 1},
      {"roberta masked LM", ROBERTA, HeadKind::MASKED_LM, {}, 1},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    check_case(k);
  }
}

TEST(ModelGrad, FeatureWidths) {
  ModelConfig c;
  c.num_hidden_layers = 12;
  c.id2label = {"a", "b"};
  EXPECT_EQ(BertModel(c, HeadKind::SEQUENCE_CLASSIFICATION, {FeatureKind::LAST4_CONCAT})
                .table()
                .at("classifier.weight")
                .shape,
            (std::vector<int64_t>{2, 4 * 768}));
  EXPECT_EQ(BertModel(c, HeadKind::SEQUENCE_CLASSIFICATION, {FeatureKind::ALL_CONCAT})
                .table()
                .at("classifier.weight")
                .shape,
            (std::vector<int64_t>{2, 12 * 768}));
  // The default is exactly HF's BertForSequenceClassification (pooler present).
  EXPECT_NE(BertModel(c, HeadKind::SEQUENCE_CLASSIFICATION).table().find("bert.pooler.dense.weight"),
            nullptr);
  EXPECT_EQ(BertModel(c, HeadKind::SEQUENCE_CLASSIFICATION, {FeatureKind::CLS})
                .table()
                .find("bert.pooler.dense.weight"),
            nullptr);
}

}  // namespace
}  // namespace bertfit
