// BertModel::last_layer_cls_only (model/cls_rows_layer.cpp): the last layer computed on the [CLS] rows after
// attention gives the full layer's logits, loss and gradients; BertModel::skip_layers_above_features: a
// `layer` feature's model runs no layer above it, with the full model's results. Every value is expected
// EQUAL (==, not within a tolerance): the skipped rows only ever contributed exact zeros (their gradient is
// zero; each output row is its own FMA chain; the sums over rows keep their order), so a different value
// means a step that is not the full layer's (a dropout mask keyed by the wrong position, a row taken from the
// wrong place, a missing gradient term). Only a zero's sign may differ, which == ignores. Dropout is on in
// training, batches are padded, and each case also checks that the [CLS]-row path did run (hidden[L] zero
// outside [CLS]).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bertfit/error.h"
#include "core/rng.h"
#include "model/bert_model.h"

namespace bertfit {
namespace {

struct Case {
  const char* name;
  ModelFamily family;
  HeadOptions opts;
  int64_t chunks;
};

ModelConfig config_for(ModelFamily family) {
  ModelConfig c = family == ModelFamily::ROBERTA ? roberta_defaults() : ModelConfig{};
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.intermediate_size = 48;
  c.max_position_embeddings = 40;
  c.hidden_dropout_prob = 0.2f;
  c.attention_probs_dropout_prob = 0.2f;
  c.id2label = {"a", "b", "c"};
  return c;
}

struct Inputs {
  std::vector<int32_t> ids, labels;
  std::vector<uint8_t> mask;
};

// How the batch is padded: sequence b has T - b real tokens then padding (RIGHT); or sequence 1 is padded at
// the front instead, its position 0 padding (LEFT); or sequence 1 has a padded position in the middle (HOLE:
// its [CLS] is real, but its mask is not a prefix).
enum class Pad { RIGHT, LEFT, HOLE };

Inputs make_inputs(const ModelConfig& c, int64_t B, int64_t T, int64_t docs, Pad pad) {
  Rng rng(3);
  Inputs in;
  in.ids.resize(B * T);
  in.mask.resize(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      bool real = t < T - b;
      if (pad == Pad::LEFT && b == 1) real = t >= 2;
      if (pad == Pad::HOLE && b == 1) real = t != 3;
      in.ids[b * T + t] =
          real ? static_cast<int32_t>(3 + rng.below(45)) : static_cast<int32_t>(c.pad_token_id);
      in.mask[b * T + t] = real;
    }
  for (int64_t d = 0; d < docs; ++d) in.labels.push_back(static_cast<int32_t>(d % 3));
  return in;
}

struct Outputs {
  std::vector<float> logits, grads, last;
  float loss = 0;
  int64_t layers_run = 0;
  bool cls_query = false;  // the [CLS]-row layer ran Q and attention at the [CLS] queries only
};

// cls_only: last_layer_cls_only (and skip_layers_above_features); cls_query: last_layer_cls_query_only.
Outputs run(const Case& k, bool cls_only, bool training, bool padding_free, Pad pad = Pad::RIGHT,
            bool cls_query = true) {
  const ModelConfig c = config_for(k.family);
  const int64_t B = 6, T = 11, C = c.hidden_size;
  BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION, k.opts);
  m.init_weights(21);
  Rng rng(9);  // larger weights than HF's 0.02: every path carries values well away from zero
  for (size_t i = 0; i < m.buffer_floats(); ++i) m.params()[i] += static_cast<float>(0.05 * rng.normal());
  m.last_layer_cls_only = cls_only;
  m.last_layer_cls_query_only = cls_query;
  m.skip_layers_above_features = cls_only;
  m.padding_free_inference = padding_free;
  m.dropout_seed = 77;
  m.reserve(B, T, -1, training ? ArenaUse::TRAINING : ArenaUse::INFERENCE);
  const Inputs in = make_inputs(c, B, T, B / k.chunks, pad);
  Batch batch{B, T, in.ids.data(), nullptr, in.mask.data(), training ? in.labels.data() : nullptr, k.chunks};
  Outputs r;
  r.loss = m.forward(batch, training, /*step=*/5);
  r.logits.assign(m.logits(), m.logits() + m.logits_rows() * 3);
  r.layers_run = m.layers_run();
  r.cls_query = m.last_forward_cls_query_only();
  const float* h = m.hidden_state(r.layers_run);
  r.last.assign(h, h + B * T * C);
  if (training) {
    m.zero_grad();
    m.backward();
    r.grads.assign(m.grads(), m.grads() + m.buffer_floats());
  }
  return r;
}

void expect_equal(const std::vector<float>& full, const std::vector<float>& cls, const char* what) {
  ASSERT_EQ(full.size(), cls.size()) << what;
  size_t differ = 0, first = 0;
  for (size_t i = 0; i < full.size(); ++i)
    if (!(full[i] == cls[i]) && differ++ == 0) first = i;
  EXPECT_EQ(differ, 0u) << what << ": first at " << first << ": full " << full[first] << ", [CLS] rows "
                        << cls[first];
}

// Row 1 * T (a real token, not [CLS]) of the last hidden state: zero when only [CLS] rows were computed.
bool row_is_zero(const std::vector<float>& last, int64_t row, int64_t C) {
  for (int64_t c = 0; c < C; ++c)
    if (last[row * C + c] != 0.0f) return false;
  return true;
}

const Case kCases[] = {
    {"bert_pooler", ModelFamily::BERT, {FeatureKind::POOLER}, 1},
    {"bert_last4_concat", ModelFamily::BERT, {FeatureKind::LAST4_CONCAT}, 1},
    {"bert_last4_max", ModelFamily::BERT, {FeatureKind::LAST4_MAX}, 1},
    {"bert_all_concat", ModelFamily::BERT, {FeatureKind::ALL_CONCAT}, 1},
    {"roberta_cls", ModelFamily::ROBERTA, {FeatureKind::CLS}, 1},
    {"bert_chunks_attention", ModelFamily::BERT, {FeatureKind::POOLER, -1, ChunkPooling::ATTENTION}, 2},
    {"bert_chunks_max", ModelFamily::BERT, {FeatureKind::CLS, -1, ChunkPooling::MAX}, 3},
};

TEST(ClsRowsLayer, TrainingGivesTheFullLayersLossLogitsAndGradients) {
  const int64_t C = config_for(ModelFamily::BERT).hidden_size, T = 11;
  for (const Case& k : kCases)
    for (bool query : {true, false}) {
      SCOPED_TRACE(std::string(k.name) + (query ? ", [CLS] queries" : ", every query"));
      const Outputs full = run(k, false, true, false), cls = run(k, true, true, false, Pad::RIGHT, query);
      EXPECT_FALSE(row_is_zero(full.last, 1, C));
      EXPECT_TRUE(row_is_zero(cls.last, 1, C)) << "the [CLS]-row layer did not run";
      EXPECT_EQ(cls.cls_query, query);
      EXPECT_TRUE(full.loss == cls.loss) << full.loss << " vs " << cls.loss;
      expect_equal(full.logits, cls.logits, "logits");
      expect_equal(full.grads, cls.grads, "gradients");
      for (int64_t b = 0; b < 6; ++b)  // the [CLS] rows themselves: the full layer's bits
        for (int64_t c = 0; c < C; ++c) ASSERT_EQ(full.last[b * T * C + c], cls.last[b * T * C + c]);
    }
}

TEST(ClsRowsLayer, InferenceGivesTheFullLayersLogitsPaddedOrPaddingFree) {
  const int64_t C = config_for(ModelFamily::BERT).hidden_size;
  for (const Case& k : kCases)
    for (bool padding_free : {false, true})
      for (bool query : {true, false}) {
        SCOPED_TRACE(std::string(k.name) + (padding_free ? " padding-free" : " padded") +
                     (query ? ", [CLS] queries" : ", every query"));
        const Outputs full = run(k, false, false, padding_free),
                      cls = run(k, true, false, padding_free, Pad::RIGHT, query);
        EXPECT_TRUE(row_is_zero(cls.last, 1, C)) << "the [CLS]-row layer did not run";
        EXPECT_EQ(cls.cls_query, query);
        expect_equal(full.logits, cls.logits, "logits");
      }
}

// Padding-free inference with a sequence whose position 0 is padding: its [CLS] row is not among the computed
// rows, so the whole layer runs (the padded layout's row there is what the features read).
TEST(ClsRowsLayer, PaddingFreeWithLeftPaddingComputesEveryRow) {
  const int64_t C = config_for(ModelFamily::BERT).hidden_size;
  const Case& k = kCases[0];
  const Outputs full = run(k, false, false, true, Pad::LEFT), cls = run(k, true, false, true, Pad::LEFT);
  EXPECT_FALSE(row_is_zero(cls.last, 2, C));  // row 2 of sequence 0: computed
  expect_equal(full.logits, cls.logits, "logits");
  expect_equal(full.last, cls.last, "last hidden state");
}

// Padding-free inference with a padded position inside a sequence: the [CLS] rows after attention, but Q and
// attention on every row (attention moves such rows to the padded layout), with the full layer's logits.
TEST(ClsRowsLayer, PaddingFreeWithAHoleKeepsEveryQuery) {
  const int64_t C = config_for(ModelFamily::BERT).hidden_size;
  const Case& k = kCases[0];
  const Outputs full = run(k, false, false, true, Pad::HOLE), cls = run(k, true, false, true, Pad::HOLE);
  EXPECT_TRUE(row_is_zero(cls.last, 1, C)) << "the [CLS]-row layer did not run";
  EXPECT_FALSE(cls.cls_query);
  expect_equal(full.logits, cls.logits, "logits");
}

// Features that read every token keep the whole layer.
TEST(ClsRowsLayer, MeanTokensComputesEveryRow) {
  const int64_t C = config_for(ModelFamily::BERT).hidden_size;
  const Case k{"bert_mean_tokens", ModelFamily::BERT, {FeatureKind::MEAN_TOKENS}, 1};
  const Outputs full = run(k, false, true, false), cls = run(k, true, true, false);
  EXPECT_FALSE(row_is_zero(cls.last, 1, C));
  expect_equal(full.logits, cls.logits, "logits");
  expect_equal(full.grads, cls.grads, "gradients");
}

// A `layer` feature (hidden[2] of 4 layers): layers 3 and 4 are not run; the layer computing hidden[2] runs
// on the [CLS] rows. Everything equals the full model's, whose layers above the feature get exact zeros as
// gradients.
TEST(SkipLayersAboveFeatures, LayerFeatureGivesTheFullModelsResults) {
  const ModelConfig c = config_for(ModelFamily::BERT);
  const int64_t C = c.hidden_size;
  const Case k{"bert_layer2", ModelFamily::BERT, {FeatureKind::LAYER_CLS, 2}, 1};
  const Outputs full = run(k, false, true, false), skip = run(k, true, true, false);
  EXPECT_EQ(full.layers_run, c.num_hidden_layers);
  EXPECT_EQ(skip.layers_run, 2);
  EXPECT_TRUE(row_is_zero(skip.last, 1, C)) << "the [CLS]-row layer did not run";
  EXPECT_TRUE(full.loss == skip.loss) << full.loss << " vs " << skip.loss;
  expect_equal(full.logits, skip.logits, "logits");
  expect_equal(full.grads, skip.grads, "gradients");
  // The skipped layers' gradients: zero in both (so the comparison above covers them).
  BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION, k.opts);
  const float* top = m.param("bert.encoder.layer.3.output.dense.weight");
  const size_t off = static_cast<size_t>(top - m.params());
  EXPECT_EQ(skip.grads[off], 0.0f);
  EXPECT_EQ(full.grads[off], 0.0f);
  for (bool padding_free : {false, true}) {
    SCOPED_TRACE(padding_free ? "inference, padding-free" : "inference, padded");
    expect_equal(run(k, false, false, padding_free).logits, run(k, true, false, padding_free).logits,
                 "logits");
  }
}

TEST(SkipLayersAboveFeatures, HiddenStatesAboveTheFeatureAreNotComputed) {
  const ModelConfig c = config_for(ModelFamily::BERT);
  BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION, {FeatureKind::LAYER_CLS, 1});
  m.init_weights(1);
  m.reserve(2, 5, -1, ArenaUse::INFERENCE);
  const Inputs in = make_inputs(c, 2, 5, 2, Pad::RIGHT);
  m.forward({2, 5, in.ids.data(), nullptr, in.mask.data()}, false);
  EXPECT_EQ(m.layers_run(), 1);
  EXPECT_NO_THROW(m.hidden_state(1));
  EXPECT_THROW(m.hidden_state(4), Error);
}

}  // namespace
}  // namespace bertfit
