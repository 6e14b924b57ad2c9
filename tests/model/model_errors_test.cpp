// Shape and configuration errors name the tensor or field with expected and actual values; nothing is read
// out of bounds (this binary also runs under ASan + UBSan in CI).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "bertfit/error.h"
#include "model/bert_model.h"
#include "tiny_model_config.h"

namespace bertfit {
namespace {

ModelConfig tiny() {
  return test::tiny_model_config(50, 16, 1, 2, 24, 16);
}

template <typename E, typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "<no exception>";
}

TEST(ModelErrors, InvalidConfigNamesTheField) {
  ModelConfig c = tiny();
  c.num_attention_heads = 3;
  EXPECT_NE(message_of<ConfigError>([&] { BertModel m(c, HeadKind::NONE); }).find("num_attention_heads"),
            std::string::npos);
  c = tiny();
  c.hidden_act = "relu";
  EXPECT_NE(message_of<ConfigError>([&] { BertModel m(c, HeadKind::NONE); }).find("hidden_act"),
            std::string::npos);
  c = tiny();
  c.vocab_size = -3;
  EXPECT_NE(message_of<ConfigError>([&] { BertModel m(c, HeadKind::NONE); }).find("vocab_size"),
            std::string::npos);
}

TEST(ModelErrors, ShapeMismatchNamesTensorAndShapes) {
  const std::string msg = message_of<ShapeError>([] { check_shape("classifier.weight", {3, 16}, {2, 16}); });
  EXPECT_NE(msg.find("classifier.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[3, 16]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 16]"), std::string::npos) << msg;
}

TEST(ModelErrors, BatchOutsideReservationOrBadIds) {
  BertModel m(tiny(), HeadKind::SEQUENCE_CLASSIFICATION);
  m.init_weights(1);
  std::vector<int32_t> ids(2 * 8, 5), labels = {0, 1};
  std::vector<uint8_t> mask(2 * 8, 1);
  EXPECT_NE(message_of<ShapeError>([&] {
              m.forward({2, 8, ids.data(), nullptr, mask.data(), labels.data()}, true);
            }).find("reserve"),
            std::string::npos);
  m.reserve(2, 8);
  EXPECT_NE(message_of<ShapeError>([&] {
              m.forward({3, 8, ids.data(), nullptr, mask.data(), labels.data()}, true);
            }).find("[3, 8]"),
            std::string::npos);
  ids[7] = 50;  // == vocab_size
  EXPECT_NE(message_of<ShapeError>([&] {
              m.forward({2, 8, ids.data(), nullptr, mask.data(), labels.data()}, true);
            }).find("input_ids[7] = 50"),
            std::string::npos);
  ids[7] = 5;
  labels[1] = 2;  // num_labels is 2
  EXPECT_NE(message_of<ShapeError>([&] {
              m.forward({2, 8, ids.data(), nullptr, mask.data(), labels.data()}, true);
            }).find("label[1] = 2"),
            std::string::npos);
  EXPECT_THROW(m.reserve(1, 17), ShapeError);  // beyond max_position_embeddings
  EXPECT_NE(message_of<ShapeError>([&] { m.param("bert.pooler.dense.weightx"); }).find("unknown parameter"),
            std::string::npos);
}

TEST(ModelErrors, BackwardWithoutTrainingForwardThrows) {
  BertModel m(tiny(), HeadKind::SEQUENCE_CLASSIFICATION);
  m.init_weights(1);
  m.reserve(1, 4);
  std::vector<int32_t> ids(4, 5), labels = {1};
  std::vector<uint8_t> mask(4, 1);
  m.forward({1, 4, ids.data(), nullptr, mask.data(), labels.data()}, /*training=*/false);
  EXPECT_THROW(m.backward(), Error);
}

TEST(ModelErrors, InitMatchesHuggingFaceConventions) {
  ModelConfig c = tiny();
  BertModel m(c, HeadKind::MASKED_LM);
  m.init_weights(3);
  const float* ln = m.param("bert.embeddings.LayerNorm.weight");
  for (int i = 0; i < c.hidden_size; ++i) EXPECT_EQ(ln[i], 1.0f);
  const float* word = m.param("bert.embeddings.word_embeddings.weight");
  for (int i = 0; i < c.hidden_size; ++i) EXPECT_EQ(word[c.pad_token_id * c.hidden_size + i], 0.0f);
  double s2 = 0;
  const auto& e = m.table().at("bert.encoder.layer.0.intermediate.dense.weight");
  for (size_t i = 0; i < e.numel; ++i) s2 += double(m.params()[e.offset + i]) * m.params()[e.offset + i];
  // std of 384 normal(0, 0.02) draws: within 15% of 0.02 with overwhelming probability (sd of the estimate
  // ~3.6%).
  EXPECT_NEAR(std::sqrt(s2 / e.numel), 0.02, 0.003);
  EXPECT_EQ(m.table().find("cls.predictions.decoder.weight"), nullptr);  // tied: not a parameter of its own
}

}  // namespace
}  // namespace bertfit
