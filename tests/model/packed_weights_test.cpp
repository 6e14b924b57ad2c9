// BertModel::pack_weights: with an inference arena sized for gemm_nt_small's batches, forward() rearranges
// the encoder's linear weights in place into gemm_nt_small's packed layout. The logits must be the unpacked
// model's, bit for bit (the same FMA chains), and the weights must never be seen in the packed order by
// anything else: params() / param() (const or not) give HF's layout back exactly, every change of the weights
// lands in the layout the next forward reads, and the arenas or settings that do not qualify never pack (a
// reader in the wrong layout would silently compute or save garbage).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend/cpu/gemm_nt_small.h"
#include "core/rng.h"
#include "model/bert_model.h"

namespace bertfit {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 60;
  c.hidden_size = 96;  // a multiple of the 48-row blocks (the [CLS]-query layer's Q and K|V row ranges)
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 150;  // a multiple of 6, not of 48: the last block of 6-row tiles is short
  c.max_position_embeddings = 40;
  c.id2label = {"a", "b", "c"};
  return c;
}

struct Runner {
  BertModel m;
  std::vector<int32_t> ids;
  std::vector<uint8_t> mask;
  static constexpr int64_t B = 3, T = 17;  // 51 rows: gemm_nt_small's regime (up to 160 for small weights)

  explicit Runner(bool pack) : m(small_config(), HeadKind::SEQUENCE_CLASSIFICATION) {
    m.pack_weights = pack;
    m.init_weights(5);
    Rng rng(8);
    ids.resize(B * T);
    mask.assign(B * T, 1);
    for (auto& id : ids) id = static_cast<int32_t>(3 + rng.below(50));
    for (int64_t t = T - 4; t < T; ++t) mask[2 * T + t] = 0;  // one padded sequence
    m.reserve(B, T, -1, ArenaUse::INFERENCE);
  }
  std::vector<float> infer() {
    const Batch batch{B, T, ids.data(), nullptr, mask.data(), nullptr};
    m.forward(batch, /*training=*/false);
    return std::vector<float>(m.logits(), m.logits() + m.logits_rows() * 3);
  }
  std::vector<float> weights() const {  // through the const accessor
    const BertModel& cm = m;
    return std::vector<float>(cm.params(), cm.params() + cm.buffer_floats());
  }
};

TEST(PackedWeights, InferenceGivesTheUnpackedLogitsAndParamsGiveHfLayoutBack) {
  Runner packed(true), plain(false);
  const std::vector<float> hf = plain.weights();
  EXPECT_EQ(packed.infer(), plain.infer());
  EXPECT_FALSE(plain.m.weights_packed());
  EXPECT_EQ(packed.m.weights_packed(), gemm_nt_small_available());
  EXPECT_TRUE(packed.m.last_forward_cls_query_only());  // the Q and K|V row ranges ran packed
  EXPECT_EQ(packed.infer(), plain.infer());
  // A const reader (a model saved through a const reference) gets HF's layout, exactly.
  EXPECT_EQ(packed.weights(), hf);
  EXPECT_FALSE(packed.m.weights_packed());
  // The next forward packs again: the same logits.
  EXPECT_EQ(packed.infer(), plain.infer());
  EXPECT_EQ(packed.m.weights_packed(), gemm_nt_small_available());
}

TEST(PackedWeights, EveryChangeOfTheWeightsIsSeenByTheNextForward) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512: nothing is packed";
  Runner packed(true), plain(false);
  const std::vector<float> before = packed.infer();
  ASSERT_TRUE(packed.m.weights_packed());

  // A write through param() (HF's layout: element 3 of the intermediate dense weight's first row).
  const std::string w = "bert.encoder.layer.1.intermediate.dense.weight";
  packed.m.param(w)[3] += 0.5f;
  plain.m.param(w)[3] += 0.5f;
  const std::vector<float> after = packed.infer();
  EXPECT_NE(after, before);
  EXPECT_EQ(after, plain.infer());

  // Through params(), as an optimizer step or a loader writes.
  const size_t at = packed.m.table().at("bert.encoder.layer.0.attention.self.query.weight").offset + 100;
  packed.m.params()[at] -= 0.25f;
  plain.m.params()[at] -= 0.25f;
  EXPECT_EQ(packed.infer(), plain.infer());

  // init_weights of some entries only: the others keep their values, in HF's layout.
  ASSERT_TRUE(packed.m.weights_packed());
  const std::vector<std::string> only = {w};
  packed.m.init_weights(6, &only);
  plain.m.init_weights(6, &only);
  EXPECT_EQ(packed.weights(), plain.weights());
  EXPECT_EQ(packed.infer(), plain.infer());
}

TEST(PackedWeights, OnlyWhereEveryProductRunsOnGemmNtSmall) {
  if (!gemm_nt_small_available()) GTEST_SKIP() << "no AVX-512: nothing is packed";
  Runner r(true);
  const std::vector<float> hf = Runner(false).weights();
  r.infer();
  ASSERT_TRUE(r.m.weights_packed());
  // An arena for 8 x 40 = 320 rows: above gemm_nt_small's 160, gemm_packed reads HF's layout: unpacked at the
  // reserve, and not packed by the forward.
  r.m.reserve(8, 40, -1, ArenaUse::INFERENCE);
  EXPECT_FALSE(r.m.weights_packed());
  EXPECT_EQ(r.weights(), hf);
  r.infer();
  EXPECT_FALSE(r.m.weights_packed());
  // Back to a small arena: packed again; then a training arena (the weights are about to change): unpacked.
  r.m.reserve(Runner::B, Runner::T, -1, ArenaUse::INFERENCE);
  r.infer();
  EXPECT_TRUE(r.m.weights_packed());
  r.m.reserve(Runner::B, Runner::T, -1, ArenaUse::TRAINING);
  EXPECT_FALSE(r.m.weights_packed());
  r.infer();
  EXPECT_FALSE(r.m.weights_packed());
  // bf16 products, or pack_weights turned off: the next forward unpacks.
  r.m.reserve(Runner::B, Runner::T, -1, ArenaUse::INFERENCE);
  r.infer();
  ASSERT_TRUE(r.m.weights_packed());
  r.m.matmul_precision = MatmulPrecision::BF16;
  r.infer();
  EXPECT_FALSE(r.m.weights_packed());
  r.m.matmul_precision = MatmulPrecision::FP32;
  r.infer();
  ASSERT_TRUE(r.m.weights_packed());
  r.m.pack_weights = false;
  r.infer();
  EXPECT_FALSE(r.m.weights_packed());
  EXPECT_EQ(r.weights(), hf);
}

TEST(PackedWeights, NotForShapesWhosePackedSizeDiffers) {
  // An intermediate size that is not a multiple of 6 would need padding rows: nothing is packed.
  ModelConfig c = small_config();
  c.intermediate_size = 100;
  BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION);
  m.init_weights(5);
  m.reserve(1, 10, -1, ArenaUse::INFERENCE);
  std::vector<int32_t> ids(10, 7);
  std::vector<uint8_t> mask(10, 1);
  m.forward(Batch{1, 10, ids.data(), nullptr, mask.data(), nullptr}, false);
  EXPECT_FALSE(m.weights_packed());
}

}  // namespace
}  // namespace bertfit
