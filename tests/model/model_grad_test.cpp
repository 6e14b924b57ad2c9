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
  if (k.family == ModelFamily::ELECTRA) {  // embeddings 12 wide, projected to the hidden 16
    c.family = ModelFamily::ELECTRA;
    c.embedding_size = 12;
  }
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
  } else if (k.head == HeadKind::REPLACED_TOKEN_DETECTION) {  // replaced / original on every token
    for (int64_t i = 0; i < B * T; ++i) labels.push_back(static_cast<int32_t>(rng.below(4) == 0));
  } else {
    labels = {2, 0, 1, 1};
    labels.resize(B / k.chunks);
  }
  std::vector<uint8_t> chunk_mask(B, 1);
  if (k.chunks > 1) chunk_mask[3] = 0;  // the second document has one real chunk
  const Batch batch{B, T, ids.data(), nullptr, mask.data(), labels.data(), k.chunks, chunk_mask.data()};
  // The choices max pooling makes (which of the last four layers, or which chunk, wins each feature), and
  // the smallest lead of a winner over the runner-up: the loss is smooth in a parameter only as long as no
  // choice changes.
  const int64_t C = c.hidden_size, L = c.num_hidden_layers;
  double min_lead = 0;
  auto max_choices = [&] {
    std::vector<int> v;
    min_lead = INFINITY;
    auto pick = [&](const std::vector<float>& cand, const std::vector<bool>& ok) {
      int best = -1;
      for (int j = 0; j < static_cast<int>(cand.size()); ++j)
        if (ok[j] && (best < 0 || cand[j] > cand[best])) best = j;
      for (int j = 0; j < static_cast<int>(cand.size()); ++j)
        if (ok[j] && j != best) min_lead = std::min(min_lead, double(cand[best]) - cand[j]);
      v.push_back(best);
    };
    if (k.opts.features == FeatureKind::LAST4_MAX)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t d = 0; d < C; ++d) {
          std::vector<float> cand;
          for (int j = 0; j < 4; ++j) cand.push_back(m.hidden_state(L - 3 + j)[b * T * C + d]);
          pick(cand, std::vector<bool>(4, true));
        }
    if (k.opts.chunk_pooling == ChunkPooling::MAX)
      for (int64_t doc = 0; doc < B / k.chunks; ++doc)
        for (int64_t d = 0; d < C; ++d) {
          std::vector<float> cand;
          std::vector<bool> ok;
          for (int64_t r = doc * k.chunks; r < (doc + 1) * k.chunks; ++r) {
            cand.push_back(m.hidden_state(L)[r * T * C + d]);
            ok.push_back(chunk_mask[r] != 0);
          }
          pick(cand, ok);
        }
    return v;
  };
  // A point on a kink has no gradient to check: take the first dropout step (the masks move the point)
  // whose winners all lead by 1e-3, ~10x the largest feature change one h-step of a parameter causes here.
  uint64_t step = 1;
  for (;; ++step) {
    m.forward(batch, true, step);
    max_choices();
    if (min_lead >= 1e-3) break;
    ASSERT_LT(step, 20u) << k.name << ": no dropout step keeps max pooling away from ties";
  }
  const std::vector<int> choices = max_choices();
  m.zero_grad();
  m.forward(batch, true, step);
  m.backward();

  const float h = 1e-2f;
  double err2 = 0, ref2 = 0;
  int samples = 0, kinks = 0;
  bool crossed = false;  // some central difference since the last reset stepped across a max-pooling kink
  auto central = [&](size_t i, float dx) {
    const float saved = m.params()[i];
    m.params()[i] = saved + dx;
    const double lp = m.forward(batch, true, step);
    crossed |= max_choices() != choices;
    m.params()[i] = saved - dx;
    const double lm = m.forward(batch, true, step);
    crossed |= max_choices() != choices;
    m.params()[i] = saved;
    return (lp - lm) / (2.0 * dx);
  };
  for (const ParamEntry& e : m.table().entries()) {
    for (int s = 0; s < 3; ++s) {
      const size_t i = e.offset + static_cast<size_t>(rng.below(e.numel));
      crossed = false;
      const double num = central(i, h), ana = m.grads()[i];
      // Max-pooling features are only piecewise smooth: when a step crosses a kink (two candidates swap), the
      // difference quotient mixes the slopes of both sides and says nothing about the gradient. Such samples
      // are skipped, and below required to be rare. A crossing is seen directly (max_choices changes), and
      // also indirectly: differences with h, h/2 and h/4 disagree (the same tolerance as the check below: a
      // real error makes all three agree with each other and disagree with the analytic value, so it is
      // never skipped).
      ++samples;
      const double half = central(i, h / 2), quarter = central(i, h / 4);
      if (crossed ||
          std::max(std::fabs(num - half), std::fabs(num - quarter)) > 0.05 * std::fabs(num) + 2e-4) {
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

// ELECTRA: embeddings_project (embedding 12 -> hidden 16) under every head, the discriminator's
// replaced-token detection, the generator's masked LM at the embedding width, the GELU classifier with
// layer features and chunk pooling.
TEST(ModelGrad, ElectraHeads) {
  const auto ELECTRA = ModelFamily::ELECTRA;
  const auto CLS = HeadKind::SEQUENCE_CLASSIFICATION;
  const std::vector<Case> cases = {
      {"electra discriminator", ELECTRA, HeadKind::REPLACED_TOKEN_DETECTION, {}, 1},
      {"electra generator", ELECTRA, HeadKind::MASKED_LM, {}, 1},
      {"electra classifier", ELECTRA, CLS, {FeatureKind::CLS}, 1},
      {"electra last4-concat", ELECTRA, CLS, {FeatureKind::LAST4_CONCAT}, 1},
      {"electra layer 0 (projected embeddings)", ELECTRA, CLS, {FeatureKind::LAYER_CLS, 0}, 1},
      {"electra chunks attention", ELECTRA, CLS, {FeatureKind::CLS, -1, ChunkPooling::ATTENTION}, 2},
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
