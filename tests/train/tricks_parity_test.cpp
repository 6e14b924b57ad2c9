// The competition tricks' losses against PyTorch (tools/reference/torch_tricks.py, goldens in
// tests/fixtures/tricks/): class-weighted cross-entropy with label smoothing, focal loss, multi-sample
// dropout on the head, R-Drop, and a combination of them, on the parity model (tiny BERT / RoBERTa, the
// padded batch of lengths 9, 5, 2) with the head's dropout on at 0.3 and the same masks on both sides (the
// reference draws bertfit's counter-hash masks), so the loss and every parameter gradient are deterministic
// and comparable.
//
// Tolerances are the parity test's (tests/parity/parity_test.cpp), for the same reasons: the loss 1e-5
// absolute (log-sum-exps of O(1) logits in double on our side, fp32 in torch), the logits 1e-4 absolute, each
// gradient 1e-3 of its tensor's norm (fp32 sums in other orders through 2 layers; observed ~1e-6). A wrong
// term (a missing KL direction, a weight on the wrong class, a sample's mask reused) moves them by O(0.01-1).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "../parity/fixture.h"
#include "bertfit/error.h"
#include "kernels/classification_loss.h"

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

// Every parameter gradient against the fixture's grad.<name>. As in parity_test.cpp: a gradient that is zero
// in exact arithmetic (the attention key biases: softmax ignores adding q.b_k to a whole row) is rounding
// noise on both sides, so below a floor of 1e-6 of the whole gradient's norm (fp32 noise is ~1e-7 of it) ours
// must be below the floor too instead of matching the noise.
void expect_gradients(const Fixture& f, const BertModel& m, const std::string& what) {
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
      EXPECT_LT(std::sqrt(our_norm), floor) << what << ": gradient of " << e.name << " should be zero";
    else
      EXPECT_LT(rel_error(m.grads() + e.offset, ref), 1e-3) << what << ": gradient of " << e.name;
  }
}

// The model with the fixture's weights and its trick settings.
struct TrickModel {
  Fixture f;
  nlohmann::json tricks;
  BertModel m;
  explicit TrickModel(const std::string& name)
      : f(name, "tricks"),
        tricks(nlohmann::json::parse(f.file.metadata().at("tricks"))),
        m(f.config, HeadKind::SEQUENCE_CLASSIFICATION) {
    m.reserve(f.B, f.T);
    f.load_params(m);
    m.dropout_seed = tricks.at("dropout_seed").get<uint64_t>();
    m.label_smoothing = tricks.at("label_smoothing").get<float>();
    m.class_weights = tricks.at("class_weights").get<std::vector<float>>();
    m.focal_gamma = tricks.at("focal_gamma").get<float>();
    m.rdrop_alpha = tricks.at("rdrop_alpha").get<float>();
    m.multi_sample_dropout = tricks.at("multi_sample_dropout").get<int>();
  }
};

class LossParity : public ::testing::TestWithParam<const char*> {};

TEST_P(LossParity, LossLogitsAndEveryGradientMatchPyTorch) {
  TrickModel t(GetParam());
  BertModel& m = t.m;
  m.zero_grad();
  // The default normaliser (documents, or their class weights) is the reference's mean.
  const float loss = m.forward(t.f.batch(), /*training=*/true, t.tricks.at("step").get<uint64_t>());
  m.backward();
  EXPECT_NEAR(loss, t.f.f32("expected.loss")[0], 1e-5);
  const auto logits = t.f.f32("expected.logits");
  ASSERT_EQ(static_cast<size_t>(m.logits_rows() * t.f.config.num_labels()), logits.size());
  for (size_t i = 0; i < logits.size(); ++i) EXPECT_NEAR(m.logits()[i], logits[i], 1e-4) << "logit " << i;
  expect_gradients(t.f, m, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Tricks, LossParity,
                         ::testing::Values("bert_weighted", "roberta_focal", "roberta_msd", "bert_rdrop",
                                           "roberta_rdrop_msd_weighted"));

// The goldens differ from plain cross-entropy: each setting is really exercised (a test that cannot fail
// would pass with the tricks ignored).
TEST(LossParity, EverySettingChangesTheLoss) {
  for (const char* name :
       {"bert_weighted", "roberta_focal", "roberta_msd", "bert_rdrop", "roberta_rdrop_msd_weighted"}) {
    TrickModel t(name);
    t.m.class_weights.clear();
    t.m.label_smoothing = t.m.focal_gamma = t.m.rdrop_alpha = 0;
    t.m.multi_sample_dropout = 1;
    const float plain = t.m.forward(t.f.batch(), true, t.tricks.at("step").get<uint64_t>(),
                                    t.tricks.at("rdrop_alpha").get<float>() > 0 ? t.f.B / 2.0f : 0.0f);
    EXPECT_GT(std::fabs(plain - t.f.f32("expected.loss")[0]), 1e-3) << name;
  }
}

// Evaluation reports the plain cross-entropy whatever the training objective (eval_loss compares across
// settings), and multi-sample dropout without dropout is one sample.
TEST(LossParity, EvaluationIgnoresTheTrainingObjective) {
  TrickModel t("roberta_rdrop_msd_weighted");
  const float with = t.m.forward(t.f.batch(), /*training=*/false);
  t.m.class_weights.clear();
  t.m.focal_gamma = t.m.rdrop_alpha = 0;
  t.m.multi_sample_dropout = 1;
  const float without = t.m.forward(t.f.batch(), /*training=*/false);
  EXPECT_EQ(with, without);
}

TEST(LossParity, BadSettingsAreErrors) {
  TrickModel t("bert_weighted");
  t.m.class_weights = {1.0f, 2.0f};  // 3 labels
  EXPECT_THROW(t.m.forward(t.f.batch(), true, 3), ShapeError);
  t.m.class_weights.clear();
  t.m.focal_gamma = 1.0f;  // with label smoothing 0.1
  EXPECT_THROW(t.m.forward(t.f.batch(), true, 3), Error);
  t.m.focal_gamma = 0;
  t.m.label_smoothing = 0;
  t.m.rdrop_alpha = 1.0f;  // 3 documents cannot be two passes of the same ones
  EXPECT_THROW(t.m.forward(t.f.batch(), true, 3), Error);
}

}  // namespace
}  // namespace bertfit
