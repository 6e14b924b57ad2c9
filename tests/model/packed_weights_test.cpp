// BertModel::pack_weights: with an inference arena, the encoder's linear products that run on gemm_nt_small
// read weights packed for it (NtSmallPackedWeights). The logits must be the unpacked model's, bit for bit
// (the same FMA chains); the packs must exist only where they are used, and must never outlive a change of
// the weights (a stale pack would silently compute with the old weights): every way the model's weights
// change drops them, and the next inference packs the new ones.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu/gemm_nt_small.h"
#include "core/cpu_features.h"
#include "core/rng.h"
#include "model/bert_model.h"

namespace bertfit {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 60;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 100;  // not a multiple of the 6-row tiles nor of the 48-row blocks
  c.max_position_embeddings = 40;
  c.id2label = {"a", "b", "c"};
  return c;
}

struct Runner {
  BertModel m;
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  static constexpr int64_t B = 3, T = 17;  // 51 rows: gemm_nt_small's regime (up to 160 for small weights)

  Runner() : m(small_config(), HeadKind::SEQUENCE_CLASSIFICATION) {
    m.init_weights(5);
    Rng rng(8);
    ids.resize(B * T);
    mask.assign(B * T, 1);
    for (auto& id : ids) id = static_cast<int32_t>(3 + rng.below(50));
    for (int64_t t = T - 4; t < T; ++t) mask[2 * T + t] = 0;  // one padded sequence
  }
  std::vector<float> infer() {
    const Batch batch{B, T, ids.data(), nullptr, mask.data(), nullptr};
    m.forward(batch, /*training=*/false);
    return std::vector<float>(m.logits(), m.logits() + m.logits_rows() * 3);
  }
};

// Floats of an [N, K] matrix packed: N rounded up to whole 6-row tiles in its last 48-row block.
size_t packed_floats(int64_t N, int64_t K) {
  const int64_t rows = N / 48 * 48 + (N % 48 + 5) / 6 * 6;
  return static_cast<size_t>(rows * K);
}

TEST(PackedWeights, InferenceGivesTheUnpackedLogitsBitForBit) {
  Runner packed, plain;
  plain.m.pack_weights = false;
  packed.m.reserve(Runner::B, Runner::T, -1, ArenaUse::INFERENCE);
  plain.m.reserve(Runner::B, Runner::T, -1, ArenaUse::INFERENCE);
  EXPECT_EQ(packed.infer(), plain.infer());
  EXPECT_EQ(plain.m.packed_weight_bytes(), 0u);
  // Layer 0's four matrices and the last layer's attention output, intermediate and output dense (which run
  // on the [CLS] rows; its Q|K|V is multiplied as a K|V slice and a Q slice, unpacked), each with its rows
  // rounded up to whole 6-row tiles in its last 48-row block.
  const size_t qkv = packed_floats(192, 64), attn_out = packed_floats(64, 64), inter = packed_floats(100, 64),
               out = packed_floats(64, 100);
  EXPECT_EQ(packed.m.packed_weight_bytes(),
            gemm_nt_small_available() ? (qkv + 2 * (attn_out + inter + out)) * sizeof(float) : 0u);
  // Again: the packs are reused, the same bits.
  EXPECT_EQ(packed.infer(), plain.infer());
}

TEST(PackedWeights, NeverOutliveAChangeOfTheWeights) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512: nothing is packed";
  Runner packed, plain;
  plain.m.pack_weights = false;
  packed.m.reserve(Runner::B, Runner::T, -1, ArenaUse::INFERENCE);
  plain.m.reserve(Runner::B, Runner::T, -1, ArenaUse::INFERENCE);
  const std::vector<float> before = packed.infer();
  ASSERT_GT(packed.m.packed_weight_bytes(), 0u);

  // A write through param(): dropped at the call, and the next inference reads the new weights.
  const std::string w = "bert.encoder.layer.1.intermediate.dense.weight";
  packed.m.param(w)[3] += 0.5f;
  EXPECT_EQ(packed.m.packed_weight_bytes(), 0u);
  plain.m.param(w)[3] += 0.5f;
  const std::vector<float> after = packed.infer();
  EXPECT_NE(after, before);
  EXPECT_EQ(after, plain.infer());

  // Through params() (as an optimizer step or a loader writes): the same.
  packed.m.params()[packed.m.table().at(w).offset + 7] -= 0.25f;
  plain.m.params()[plain.m.table().at(w).offset + 7] -= 0.25f;
  EXPECT_EQ(packed.infer(), plain.infer());

  // init_weights, and a training forward: dropped.
  ASSERT_GT(packed.m.packed_weight_bytes(), 0u);
  packed.m.init_weights(6);
  EXPECT_EQ(packed.m.packed_weight_bytes(), 0u);
  plain.m.init_weights(6);
  EXPECT_EQ(packed.infer(), plain.infer());
  ASSERT_GT(packed.m.packed_weight_bytes(), 0u);
  const Batch batch{Runner::B, Runner::T, packed.ids.data(), nullptr, packed.mask.data(), nullptr};
  packed.m.forward(batch, /*training=*/true);
  EXPECT_EQ(packed.m.packed_weight_bytes(), 0u);

  // A training arena: nothing packed, even for an evaluation forward (the weights change between them).
  packed.m.reserve(Runner::B, Runner::T, -1, ArenaUse::TRAINING);
  packed.infer();
  EXPECT_EQ(packed.m.packed_weight_bytes(), 0u);
}

TEST(PackedWeights, OnlyForTheProductsThatUseThem) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512: nothing is packed";
  // 8 x 40 = 320 rows: above gemm_nt_small's 160 for small weights, so gemm_packed multiplies layer 0's
  // products and the last layer's Q|K|V, and none of them is packed (no memory spent for nothing); the last
  // layer's three products on the 8 [CLS] rows run on gemm_nt_small, packed.
  BertModel m(small_config(), HeadKind::SEQUENCE_CLASSIFICATION);
  m.init_weights(5);
  const int64_t B = 8, T = 40;
  m.reserve(B, T, -1, ArenaUse::INFERENCE);
  std::vector<int32_t> ids(B * T, 7);
  std::vector<uint8_t> mask(B * T, 1);
  const Batch batch{B, T, ids.data(), nullptr, mask.data(), nullptr};
  m.forward(batch, false);
  EXPECT_EQ(m.packed_weight_bytes(),
            (packed_floats(64, 64) + packed_floats(100, 64) + packed_floats(64, 100)) * sizeof(float));
}

}  // namespace
}  // namespace bertfit
