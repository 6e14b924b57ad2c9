// Determinism: the same seed and thread count give bitwise-identical losses and weights across runs, with
// dropout on; and, as a contract of the engine (docs/architecture.md, "Determinism"), 1 and 2 threads give
// the same bits for training and for inference, an example's logits do not depend on the batch it is in, and
// AVX-512 and AVX2 give the same bits. (All three of these fail with BERTFIT_GEMM=openblas on an AMD EPYC
// with OPENBLAS_CORETYPE=Haswell.)
// Every kernel is thread-count independent by construction: every matrix product is one FMA chain per output
// in a fixed order (backend/cpu/gemm.h), reductions are column-parallel, dropout masks counter-based. None of
// this depends on OpenBLAS (whose bits change with OPENBLAS_CORETYPE and, for some kernels, the thread
// count).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/rng.h"
#include "core/threading.h"
#include "kernels/adamw.h"
#include "model/bert_model.h"

namespace bertfit {
namespace {

struct TrainRun {
  std::vector<float> losses;
  std::vector<float> params;
};

// The models of these tests: 4 heads, vocabulary 120, 3 labels, up to 64 positions.
ModelConfig small_config(int64_t C, int64_t layers = 2) {
  ModelConfig c;
  c.vocab_size = 120;
  c.hidden_size = C;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.intermediate_size = 3 * C / 2;
  c.max_position_embeddings = 64;
  c.id2label = {"a", "b", "c"};
  return c;
}

TrainRun train(HeadKind head, int threads, uint64_t seed, int64_t C = 64, int64_t B = 4, int64_t T = 32) {
  const int saved = num_threads();
  set_num_threads(threads);
  const ModelConfig c = small_config(C);
  BertModel m(c, head);  // dropout 0.1 everywhere (the config defaults)
  m.init_weights(7);
  m.dropout_seed = seed;
  m.reserve(B, T);
  Rng rng(3);
  std::vector<int32_t> ids(B * T), labels(head == HeadKind::MASKED_LM ? B * T : B);
  std::vector<uint8_t> mask(B * T);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < T - 5 * (b % 4);
      ids[b * T + t] = real ? static_cast<int32_t>(1 + rng.below(119)) : 0;
      mask[b * T + t] = real;
    }
  for (size_t i = 0; i < labels.size(); ++i)
    labels[i] = head == HeadKind::MASKED_LM ? (rng.uniform() < 0.2 && mask[i] ? ids[i] : -100)
                                            : static_cast<int32_t>(rng.below(3));
  std::vector<ParamGroup> groups;
  for (const ParamEntry& e : m.table().entries())
    groups.push_back({e.offset, e.numel, 1e-3f, e.no_decay ? 0.f : 0.01f});
  AlignedBuffer<float> mom(m.buffer_floats()), var(m.buffer_floats());
  TrainRun r;
  for (int s = 0; s < 5; ++s) {
    m.zero_grad();
    r.losses.push_back(m.forward({B, T, ids.data(), nullptr, mask.data(), labels.data()}, true, s));
    m.backward();
    clip_grad_norm(m.grads(), m.buffer_floats(), 1.0);
    adamw_step(m.params(), m.grads(), mom.data(), var.data(), groups, AdamWHyper{}, s + 1);
  }
  r.params.assign(m.params(), m.params() + m.buffer_floats());
  set_num_threads(saved);
  return r;
}

// The model of train() (same config and weights), inference on B x T tokens: the logits, rows of batch b
// first. Examples differ in length (padding masked), as in train().
struct Inputs {
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
};

Inputs make_inputs(int64_t B, int64_t T) {
  Rng rng(5);
  Inputs in{std::vector<int32_t>(B * T), std::vector<uint8_t>(B * T)};
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < T - 3 * (b % 5);
      in.ids[b * T + t] = real ? static_cast<int32_t>(1 + rng.below(119)) : 0;
      in.mask[b * T + t] = real;
    }
  return in;
}

std::vector<float> infer(HeadKind head, int threads, const Inputs& in, int64_t b0, int64_t B, int64_t T,
                         int64_t C = 128) {
  const int saved = num_threads();
  set_num_threads(threads);
  const ModelConfig c = small_config(C);
  BertModel m(c, head);
  m.init_weights(7);
  m.reserve(B, T);
  m.forward({B, T, in.ids.data() + b0 * T, nullptr, in.mask.data() + b0 * T, nullptr}, false);
  const int64_t cols = head == HeadKind::MASKED_LM ? c.vocab_size : 3;
  std::vector<float> out(m.logits(), m.logits() + m.logits_rows() * cols);
  set_num_threads(saved);
  return out;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Determinism, SameSeedSameThreadsIsBitwiseIdentical) {
  for (HeadKind head : {HeadKind::SEQUENCE_CLASSIFICATION, HeadKind::MASKED_LM}) {
    const TrainRun a = train(head, 2, 42), b = train(head, 2, 42);
    EXPECT_TRUE(bitwise_equal(a.losses, b.losses));
    EXPECT_TRUE(bitwise_equal(a.params, b.params));
  }
}

TEST(Determinism, DifferentDropoutSeedsDiffer) {
  const TrainRun a = train(HeadKind::SEQUENCE_CLASSIFICATION, 2, 42),
                 b = train(HeadKind::SEQUENCE_CLASSIFICATION, 2, 43);
  EXPECT_FALSE(bitwise_equal(a.params, b.params));  // dropout really is on and keyed by the seed
}

// The contract: 1 and 2 threads give the same bits, whatever OpenBLAS would do on this CPU (the test runs
// with the environment's OPENBLAS_CORETYPE, whatever it is).
TEST(Determinism, OneAndTwoThreadsAgree) {
  // Shapes large enough (GEMMs of 512 x 384 x 128) that the products really are split across threads.
  const TrainRun a = train(HeadKind::SEQUENCE_CLASSIFICATION, 1, 42, 128, 8, 64);
  const TrainRun b = train(HeadKind::SEQUENCE_CLASSIFICATION, 2, 42, 128, 8, 64);
  EXPECT_TRUE(bitwise_equal(a.losses, b.losses));
  EXPECT_TRUE(bitwise_equal(a.params, b.params));
}

TEST(Determinism, InferenceOneAndTwoThreadsAgree) {
  const Inputs in = make_inputs(8, 64);
  for (HeadKind head : {HeadKind::SEQUENCE_CLASSIFICATION, HeadKind::MASKED_LM}) {
    const std::vector<float> a = infer(head, 1, in, 0, 8, 64), b = infer(head, 2, in, 0, 8, 64);
    ASSERT_FALSE(a.empty());
    EXPECT_TRUE(bitwise_equal(a, b));
  }
}

// An example's logits are the same bits alone as inside a batch of 8 (512 token rows: the linear layers take
// gemm() there, gemm_nt_small for the 64 rows of one example; both compute the same FMA chains).
TEST(Determinism, InferenceDoesNotDependOnTheBatch) {
  const int64_t B = 8, T = 64;
  const Inputs in = make_inputs(B, T);
  for (HeadKind head : {HeadKind::SEQUENCE_CLASSIFICATION, HeadKind::MASKED_LM}) {
    const std::vector<float> all = infer(head, 2, in, 0, B, T);
    const size_t per = all.size() / B;
    for (int64_t b : {0, 3, 7}) {
      const std::vector<float> one = infer(head, 2, in, b, 1, T);
      ASSERT_EQ(one.size(), per);
      EXPECT_EQ(std::memcmp(one.data(), all.data() + b * per, per * sizeof(float)), 0) << "example " << b;
    }
  }
}

// An example's logits are the same bits alone (T = its length) as padded to a longer T inside a batch, as
// bertfit predict gives them at --batch_size 1 and 8: the masked keys add exact zeros, and each softmax row
// sums its tail as one more 8-float block, so the sum does not depend on T. Lengths 53 (T % 8 = 5) and 61
// (% 8 = 5, % 16 = 13) inside T = 64, on both vector widths; before, the tail was added after the lanes and
// 2 of 3 lengths differed in the last bits.
TEST(Determinism, InferenceDoesNotDependOnThePaddedLength) {
  const int64_t T = 64;
  for (Isa isa : {Isa::AVX512, Isa::AVX2}) {
    set_max_isa(isa);
    for (int64_t len : {53, 56, 61}) {
      Inputs padded = make_inputs(4, T);
      for (int64_t t = 0; t < T; ++t) padded.mask[t] = t < len;  // example 0: len real tokens
      for (int64_t t = len; t < T; ++t) padded.ids[t] = 0;
      Inputs alone{std::vector<int32_t>(padded.ids.begin(), padded.ids.begin() + len),
                   std::vector<uint8_t>(padded.mask.begin(), padded.mask.begin() + len)};
      for (HeadKind head : {HeadKind::SEQUENCE_CLASSIFICATION, HeadKind::MASKED_LM}) {
        const std::vector<float> in_batch = infer(head, 2, padded, 0, 4, T),
                                 one = infer(head, 2, alone, 0, 1, len);
        // Example 0's logits come first in the batch's ([CLS] row, or its positions' rows for the MLM head).
        ASSERT_LE(one.size(), in_batch.size());
        EXPECT_EQ(std::memcmp(one.data(), in_batch.data(), one.size() * sizeof(float)), 0)
            << "length " << len << (isa == Isa::AVX2 ? " (AVX2)" : "")
            << (head == HeadKind::MASKED_LM ? " MLM" : "");
      }
    }
  }
  set_max_isa(Isa::AVX512);
}

// Padding-free inference (BertModel::padding_free_inference) computes the layers' row-wise work on the real
// tokens only: every real token's hidden states, and so every logit read from them, keep the padded
// computation's bits, for each kind of feature (those that read [CLS], several layers, or mask-weighted
// tokens) and for the masked-LM head at the real positions. The batch mixes lengths (0 to 12 padded
// positions per sequence) and has 8 x 64 = 512 rows padded, 473 real: both sides take gemm().
TEST(Determinism, PaddingFreeInferenceGivesThePaddedBits) {
  const int64_t B = 8, T = 64, C = 128;
  Inputs in = make_inputs(B, T);
  const ModelConfig c = small_config(C, 4);
  struct Run {
    std::vector<float> logits, last;  // logits; the last hidden state at the real positions
  };
  auto run = [&](HeadKind head, FeatureKind features, bool padding_free) {
    HeadOptions options;
    options.features = features;
    BertModel m(c, head, options);
    m.init_weights(7);
    m.padding_free_inference = padding_free;
    // Every row of the last layer, so that all real tokens' hidden states are compared (the [CLS]-row last
    // layer has its own tests: tests/model/cls_rows_layer_test.cpp).
    m.last_layer_cls_only = false;
    m.reserve(B, T, -1, ArenaUse::INFERENCE);
    m.forward({B, T, in.ids.data(), nullptr, in.mask.data(), nullptr}, false);
    const int64_t cols = head == HeadKind::MASKED_LM ? c.vocab_size : 3;
    Run r;
    const float* h = m.hidden_state(c.num_hidden_layers);
    for (int64_t i = 0; i < B * T; ++i) {
      if (!in.mask[i]) continue;
      r.last.insert(r.last.end(), h + i * C, h + (i + 1) * C);
      if (head == HeadKind::MASKED_LM)
        r.logits.insert(r.logits.end(), m.logits() + i * cols, m.logits() + (i + 1) * cols);
    }
    if (head != HeadKind::MASKED_LM) r.logits.assign(m.logits(), m.logits() + m.logits_rows() * cols);
    return r;
  };
  for (FeatureKind f : {FeatureKind::POOLER, FeatureKind::LAST4_CONCAT, FeatureKind::MEAN_TOKENS}) {
    SCOPED_TRACE(feature_kind_name(f));
    const Run padded = run(HeadKind::SEQUENCE_CLASSIFICATION, f, false);
    const Run free = run(HeadKind::SEQUENCE_CLASSIFICATION, f, true);
    ASSERT_EQ(padded.last.size(), static_cast<size_t>(473 * C));
    EXPECT_TRUE(bitwise_equal(padded.logits, free.logits));
    EXPECT_TRUE(bitwise_equal(padded.last, free.last));
  }
  const Run padded = run(HeadKind::MASKED_LM, FeatureKind::POOLER, false);
  const Run free = run(HeadKind::MASKED_LM, FeatureKind::POOLER, true);
  ASSERT_EQ(padded.logits.size(), static_cast<size_t>(473 * c.vocab_size));
  EXPECT_TRUE(bitwise_equal(padded.logits, free.logits));
  EXPECT_TRUE(bitwise_equal(padded.last, free.last));
  // A sequence whose padding comes first (left padding): attention then runs on the padded layout.
  for (int64_t t = 0; t < 6; ++t) std::swap(in.mask[2 * T + t], in.mask[2 * T + T - 1 - t]);
  const Run padded_left = run(HeadKind::SEQUENCE_CLASSIFICATION, FeatureKind::MEAN_TOKENS, false);
  const Run free_left = run(HeadKind::SEQUENCE_CLASSIFICATION, FeatureKind::MEAN_TOKENS, true);
  EXPECT_TRUE(bitwise_equal(padded_left.logits, free_left.logits));
  EXPECT_TRUE(bitwise_equal(padded_left.last, free_left.last));
}

// Every kernel does the same IEEE operations with AVX-512 and with AVX2 (core/cpu_features.h; the GEMMs by
// gemm.h's contract), so capping the instruction set changes no bit of a training run or of inference.
TEST(Determinism, Avx512AndAvx2Agree) {
  set_max_isa(Isa::AVX512);
  if (!use_avx512()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const TrainRun a = train(HeadKind::MASKED_LM, 2, 42, 128, 8, 64);
  const Inputs in = make_inputs(8, 64);
  const std::vector<float> ia = infer(HeadKind::SEQUENCE_CLASSIFICATION, 2, in, 0, 8, 64);
  set_max_isa(Isa::AVX2);
  const TrainRun b = train(HeadKind::MASKED_LM, 2, 42, 128, 8, 64);
  const std::vector<float> ib = infer(HeadKind::SEQUENCE_CLASSIFICATION, 2, in, 0, 8, 64);
  set_max_isa(Isa::AVX512);
  EXPECT_TRUE(bitwise_equal(a.losses, b.losses));
  EXPECT_TRUE(bitwise_equal(a.params, b.params));
  EXPECT_TRUE(bitwise_equal(ia, ib));
}

}  // namespace
}  // namespace bertfit
