// classification_loss (kernels/classification_loss.h) on its own: its gradient against central differences
// of its loss for every option (the PyTorch goldens of tests/train/tricks_parity_test.cpp check the values
// through the whole model), the plain options giving cross_entropy's very bits, and the limits of focal loss
// (gamma < 1 has an unbounded (1 - p)^(gamma - 1) factor; a confident correct row must give a finite, tiny
// gradient, not 0 * inf).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bertfit/error.h"
#include "grad_check.h"
#include "kernels/classification_loss.h"
#include "kernels/cross_entropy.h"

namespace bertfit {
namespace {

using testing::expect_gradient;
using testing::random_vector;

constexpr int64_t N = 6, V = 4;  // R-Drop: documents 0..2 in rows 0..2 and 3..5

void check(const ClassificationLossOptions& o, const char* what) {
  std::vector<float> logits = random_vector(N * V, 17, 1.5f);
  const std::vector<int32_t> labels = {2, 0, kIgnoreIndex, 2, 0, kIgnoreIndex};
  std::vector<float> d(N * V), rows(N);
  const float norm = classification_normalizer(labels.data(), N, V, o);
  classification_loss(d.data(), rows.data(), logits.data(), labels.data(), N, V, o, norm);
  // The loss is smooth in the logits and computed in double (rounded to float once): grad_check.h's 1e-2 of
  // the gradient's norm applies with its h = 1e-2.
  expect_gradient(what, logits, d, [&] {
    std::vector<float> r(N);
    return static_cast<double>(
        classification_loss(nullptr, r.data(), logits.data(), labels.data(), N, V, o, norm));
  });
}

TEST(ClassificationLoss, GradientsMatchFiniteDifferences) {
  const float w[V] = {0.5f, 2.0f, 1.25f, 0.8f};
  ClassificationLossOptions o;
  o.class_weights = w;
  o.label_smoothing = 0.1f;
  check(o, "weighted + smoothing");
  o.label_smoothing = 0;
  o.focal_gamma = 2.0f;
  check(o, "weighted focal");
  o.focal_gamma = 0.5f;
  check(o, "focal gamma 0.5");
  o.rdrop_alpha = 0.7f;
  check(o, "R-Drop + focal + weights");
  o.focal_gamma = 0;
  o.class_weights = nullptr;
  check(o, "R-Drop");
}

TEST(ClassificationLoss, MultiLabelAndRegressionGradientsMatchFiniteDifferences) {
  std::vector<float> logits = random_vector(N * V, 23, 2.0f);
  const std::vector<int32_t> labels = {0, 0, kIgnoreIndex, 0, 0, 0};
  std::vector<float> targets(N * V);
  for (int64_t k = 0; k < N * V; ++k) targets[k] = (k * 7) % 3 == 0 ? 1.0f : 0.0f;
  std::vector<float> d(N * V), rows(N);
  bce_with_logits_loss(d.data(), rows.data(), logits.data(), targets.data(), labels.data(), N, V, 5.0f);
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(d[2 * V + v], 0.0f) << "an unlabelled row has no gradient";
  expect_gradient("BCE with logits", logits, d, [&] {
    std::vector<float> r(N);
    return static_cast<double>(
        bce_with_logits_loss(nullptr, r.data(), logits.data(), targets.data(), labels.data(), N, V, 5.0f));
  });
  std::vector<float> values = random_vector(N, 29), dv(N);
  const std::vector<float> want = random_vector(N, 31);
  mse_loss(dv.data(), rows.data(), values.data(), want.data(), labels.data(), N, 5.0f);
  expect_gradient("MSE", values, dv, [&] {
    std::vector<float> r(N);
    return static_cast<double>(
        mse_loss(nullptr, r.data(), values.data(), want.data(), labels.data(), N, 5.0f));
  });
  // Extreme logits stay finite (log1p(exp(-|x|)), the sigmoid from the stable side).
  const std::vector<float> big = {90.0f, -90.0f, 0.0f, 1e4f};
  const std::vector<float> t01 = {0.0f, 1.0f, 1.0f, 0.0f};
  const std::vector<int32_t> one = {0};
  std::vector<float> db(V), r1(1);
  EXPECT_TRUE(
      std::isfinite(bce_with_logits_loss(db.data(), r1.data(), big.data(), t01.data(), one.data(), 1, V, 1)));
  for (float g : db) EXPECT_TRUE(std::isfinite(g));
}

TEST(ClassificationLoss, PlainOptionsAreCrossEntropyBitForBit) {
  const std::vector<float> logits = random_vector(N * V, 3);
  const std::vector<int32_t> labels = {1, 3, 0, kIgnoreIndex, 2, 2};
  ClassificationLossOptions o;
  o.label_smoothing = 0.2f;
  std::vector<float> d1(N * V), d2(N * V), r1(N), r2(N);
  const float a = classification_loss(d1.data(), r1.data(), logits.data(), labels.data(), N, V, o, 5.0f);
  const float b =
      cross_entropy_forward_backward(d2.data(), r2.data(), logits.data(), labels.data(), N, V, 0.2f, 5.0f);
  EXPECT_EQ(a, b);
  EXPECT_EQ(d1, d2);
  // Focal with gamma 0 is cross-entropy (up to the double vs. float-exp rounding of the fast kernel: 1e-6).
  o.label_smoothing = 0;
  const float w[V] = {1, 1, 1, 1};
  o.class_weights = w;  // weights of 1 take the general path
  const float c = classification_loss(d1.data(), r1.data(), logits.data(), labels.data(), N, V, o, 5.0f);
  const float e =
      cross_entropy_forward_backward(d2.data(), r2.data(), logits.data(), labels.data(), N, V, 0.0f, 5.0f);
  EXPECT_NEAR(c, e, 1e-6);
  for (int64_t i = 0; i < N * V; ++i) EXPECT_NEAR(d1[i], d2[i], 1e-6);
}

TEST(ClassificationLoss, ConfidentRowsStayFinite) {
  // p_y = 1 to double precision: q = 0, where (1 - p)^(gamma - 1) is infinite for gamma < 1.
  const std::vector<float> logits = {80.0f, 0.0f, -80.0f, 0.0f};
  const std::vector<int32_t> labels = {0};
  ClassificationLossOptions o;
  o.focal_gamma = 0.5f;
  std::vector<float> d(V), r(1);
  const float loss = classification_loss(d.data(), r.data(), logits.data(), labels.data(), 1, V, o, 1.0f);
  EXPECT_TRUE(std::isfinite(loss));
  for (float g : d) EXPECT_TRUE(std::isfinite(g));
}

TEST(ClassificationLoss, IdenticalPassesHaveNoKl) {
  // R-Drop of two identical passes is the plain loss: the KL term and its gradient vanish.
  std::vector<float> logits = random_vector(N * V / 2, 9);
  logits.insert(logits.end(), logits.begin(), logits.end());
  const std::vector<int32_t> labels = {1, 0, 3, 1, 0, 3};
  ClassificationLossOptions o, plain;
  o.rdrop_alpha = 5.0f;
  std::vector<float> d(N * V), r(N), dp(N * V / 2), rp(N / 2);
  const float a = classification_loss(d.data(), r.data(), logits.data(), labels.data(), N, V, o, 3.0f);
  const float b =
      classification_loss(dp.data(), rp.data(), logits.data(), labels.data(), N / 2, V, plain, 3.0f);
  EXPECT_NEAR(a, b, 1e-6);
  // Each pass carries half of the plain gradient.
  for (int64_t i = 0; i < N * V / 2; ++i) EXPECT_NEAR(d[i] + d[i + N * V / 2], dp[i], 1e-6);
}

TEST(ClassificationLoss, BadInputIsAnError) {
  const std::vector<float> logits(N * V, 0.0f);
  std::vector<float> r(N);
  ClassificationLossOptions o;
  o.focal_gamma = 1;
  const std::vector<int32_t> bad = {0, 1, 2, 3, 4, 0};
  EXPECT_THROW(classification_normalizer(bad.data(), N, V, o), ShapeError);
  EXPECT_THROW(classification_loss(nullptr, r.data(), logits.data(), bad.data(), N, V, o, 1), ShapeError);
  o.rdrop_alpha = 1;
  const std::vector<int32_t> unpaired = {0, 1, 2, 0, 1, 3};
  EXPECT_THROW(classification_loss(nullptr, r.data(), logits.data(), unpaired.data(), N, V, o, 1), Error);
}

}  // namespace
}  // namespace bertfit
