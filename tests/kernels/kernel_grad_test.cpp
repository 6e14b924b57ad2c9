// Finite-difference gradient checks, one per kernel (tolerance rationale in grad_check.h).
#include <gtest/gtest.h>

#include <cstring>

#include "bertfit/error.h"
#include "core/threading.h"
#include "grad_check.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/layernorm.h"
#include "kernels/linear.h"

namespace bertfit {
namespace {

using testing::expect_gradient;
using testing::random_vector;
using testing::weighted_sum;

TEST(KernelGrad, Linear) {
  const int64_t N = 6, IC = 5, OC = 4;
  auto x = random_vector(N * IC, 1), W = random_vector(OC * IC, 2), b = random_vector(OC, 3);
  auto r = random_vector(N * OC, 4);
  std::vector<float> out(N * OC);
  auto loss = [&] {
    linear_forward(out.data(), x.data(), W.data(), b.data(), N, IC, OC);
    return weighted_sum(out, r);
  };
  std::vector<float> dx(N * IC), dW(OC * IC, 0), db(OC, 0);
  linear_backward(dx.data(), dW.data(), db.data(), r.data(), x.data(), W.data(), N, IC, OC);
  expect_gradient("linear dinp", x, dx, loss);
  expect_gradient("linear dW", W, dW, loss);
  expect_gradient("linear db", b, db, loss);
  // Parameter gradients accumulate: a second backward doubles them.
  linear_backward(dx.data(), dW.data(), db.data(), r.data(), x.data(), W.data(), N, IC, OC);
  std::vector<float> dW1(OC * IC, 0), db1(OC, 0);
  linear_backward(dx.data(), dW1.data(), db1.data(), r.data(), x.data(), W.data(), N, IC, OC);
  for (int64_t i = 0; i < OC; ++i) EXPECT_FLOAT_EQ(db[i], 2 * db1[i]);
}

TEST(KernelGrad, LayerNorm) {
  const int64_t N = 5, C = 7;
  const float eps = 1e-5f;
  auto x = random_vector(N * C, 11, 2.0f), w = random_vector(C, 12), b = random_vector(C, 13);
  auto r = random_vector(N * C, 14);
  std::vector<float> out(N * C), mean(N), rstd(N);
  auto loss = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, eps);
    return weighted_sum(out, r);
  };
  loss();
  std::vector<float> dx(N * C), dw(C, 0), db(C, 0);
  layernorm_backward(dx.data(), dw.data(), db.data(), r.data(), x.data(), w.data(), mean.data(), rstd.data(),
                     N, C);
  expect_gradient("layernorm dinp", x, dx, loss);
  expect_gradient("layernorm dw", w, dw, loss);
  expect_gradient("layernorm db", b, db, loss);
}

TEST(KernelGrad, Gelu) {
  const int64_t n = 50;
  auto x = random_vector(n, 21, 2.0f), r = random_vector(n, 22);
  std::vector<float> out(n), dx(n);
  auto loss = [&] {
    gelu_forward(out.data(), x.data(), n);
    return weighted_sum(out, r);
  };
  gelu_backward(dx.data(), x.data(), r.data(), n);
  // h = 1e-3 here: GELU's curvature near 0 is large enough that h = 1e-2 costs ~1e-3 of truncation error.
  expect_gradient("gelu", x, dx, loss, 1e-3f);
  // Exact erf GELU, not the tanh approximation: gelu(1) = 0.8413447 (Phi(1)), tanh form gives 0.8411920.
  float one = 1.0f, g;
  gelu_forward(&g, &one, 1);
  EXPECT_NEAR(g, 0.8413447f, 1e-6f);  // 1e-6: a few float ulps at 0.84
}

TEST(KernelGrad, Tanh) {
  const int64_t n = 40;
  auto x = random_vector(n, 31), r = random_vector(n, 32);
  std::vector<float> out(n), dx(n);
  auto loss = [&] {
    tanh_forward(out.data(), x.data(), n);
    return weighted_sum(out, r);
  };
  loss();
  tanh_backward(dx.data(), out.data(), r.data(), n);
  expect_gradient("tanh", x, dx, loss, 1e-3f);
}

TEST(KernelGrad, DropoutIsAFixedMaskScaledByKeepProbability) {
  const int64_t n = 200000;
  const float p = 0.1f;
  std::vector<float> x(n, 1.0f), out(n);
  dropout_forward(out.data(), x.data(), n, p, 1234);
  int64_t kept = 0;
  for (float v : out) {
    ASSERT_TRUE(v == 0.0f || std::fabs(v - 1.0f / 0.9f) < 1e-6f);
    kept += v != 0.0f;
  }
  // Binomial(n, 0.9): sd = sqrt(n*0.09) = 134; 5 sd is a 1-in-3.5-million false alarm.
  EXPECT_NEAR(static_cast<double>(kept), 0.9 * n, 5 * 134.0);
  // Backward applies the same mask; the same key gives the same mask for any thread count.
  std::vector<float> d(n);
  dropout_backward(d.data(), x.data(), n, p, 1234);
  EXPECT_EQ(0, std::memcmp(d.data(), out.data(), n * sizeof(float)));
  const int saved = num_threads();
  set_num_threads(1);
  std::vector<float> out1(n);
  dropout_forward(out1.data(), x.data(), n, p, 1234);
  set_num_threads(saved);
  EXPECT_EQ(0, std::memcmp(out1.data(), out.data(), n * sizeof(float)));
  // Another key, another mask.
  dropout_forward(out1.data(), x.data(), n, p, 1235);
  EXPECT_NE(0, std::memcmp(out1.data(), out.data(), n * sizeof(float)));
}

TEST(KernelGrad, DropoutResidual) {
  const int64_t n = 64;
  const float p = 0.25f;
  auto x = random_vector(n, 41), res = random_vector(n, 42), r = random_vector(n, 43);
  std::vector<float> out(n);
  auto loss = [&] {
    dropout_residual_forward(out.data(), x.data(), res.data(), n, p, 77);
    return weighted_sum(out, r);
  };
  std::vector<float> dx(n);
  dropout_backward(dx.data(), r.data(), n, p, 77);
  expect_gradient("dropout_residual dx", x, dx, loss);
  expect_gradient("dropout_residual dresidual", res, r, loss);  // residual gradient passes through unchanged
}

TEST(KernelGrad, Embedding) {
  const int64_t B = 2, T = 5, C = 6, V = 9, P = 8, TV = 2;
  std::vector<int32_t> ids = {3, 1, 4, 1, 5, 2, 6, 5, 3, 0}, type = {0, 0, 1, 1, 1, 0, 0, 0, 1, 1};
  std::vector<int32_t> pos(B * T);
  bert_position_ids(pos.data(), B, T);
  auto wte = random_vector(V * C, 51), wpe = random_vector(P * C, 52), wtt = random_vector(TV * C, 53);
  auto r = random_vector(B * T * C, 54);
  std::vector<float> out(B * T * C);
  auto loss = [&] {
    embedding_forward(out.data(), ids.data(), pos.data(), type.data(), wte.data(), wpe.data(), wtt.data(),
                      B * T, C);
    return weighted_sum(out, r);
  };
  std::vector<float> dte(V * C, 0), dpe(P * C, 0), dtt(TV * C, 0);
  embedding_backward(dte.data(), dpe.data(), dtt.data(), r.data(), ids.data(), pos.data(), type.data(), B * T,
                     C);
  expect_gradient("embedding dwte", wte, dte, loss);
  expect_gradient("embedding dwpe", wpe, dpe, loss);
  expect_gradient("embedding dwtt", wtt, dtt, loss);
  EXPECT_THROW(check_ids("input_ids", ids.data(), B * T, 6), ShapeError);
}

TEST(KernelGrad, RobertaPositionIds) {
  // pad = 1: real tokens count from pad+1 = 2, padding keeps 1 (HF create_position_ids_from_input_ids).
  std::vector<int32_t> ids = {0, 7, 8, 2, 1, 1, 0, 9, 2, 1, 1, 1};
  std::vector<int32_t> pos(12);
  roberta_position_ids(pos.data(), ids.data(), 2, 6, 1);
  std::vector<int32_t> expect = {2, 3, 4, 5, 1, 1, 2, 3, 4, 1, 1, 1};
  EXPECT_EQ(pos, expect);
}

void attention_case(float p) {
  AttentionShape s{2, 5, 8, 2};
  const int64_t n_qkv = s.B * s.T * 3 * s.C;
  auto qkv = random_vector(n_qkv, 61);
  std::vector<uint8_t> mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};  // second sequence padded after 3 tokens
  auto r = random_vector(s.B * s.T * s.C, 62);
  std::vector<float> ctx(s.B * s.T * s.C), probs(s.B * s.NH * s.T * s.T);
  std::vector<float> scratch(attention_scratch_floats(s.T, num_threads()));
  auto loss = [&] {
    attention_forward(ctx.data(), probs.data(), qkv.data(), mask.data(), s, p, 99, scratch.data());
    return weighted_sum(ctx, r);
  };
  loss();
  // Probabilities of padded keys are exactly zero, and each row sums to one.
  for (int64_t h = 0; h < s.NH; ++h)
    for (int64_t i = 0; i < s.T; ++i) {
      const float* row = probs.data() + ((1 * s.NH + h) * s.T + i) * s.T;
      EXPECT_EQ(row[3], 0.0f);
      EXPECT_EQ(row[4], 0.0f);
      EXPECT_NEAR(row[0] + row[1] + row[2], 1.0f, 1e-6f);  // 1e-6: three float roundings of O(1) values
    }
  std::vector<float> dqkv(n_qkv);
  attention_backward(dqkv.data(), nullptr, r.data(), qkv.data(), probs.data(), mask.data(), s, p, 99,
                     scratch.data());
  expect_gradient(p > 0 ? "attention dqkv (dropout 0.3)" : "attention dqkv", qkv, dqkv, loss);
}

TEST(KernelGrad, Attention) {
  attention_case(0.0f);
}
TEST(KernelGrad, AttentionWithDropout) {
  attention_case(0.3f);
}

TEST(KernelGrad, CrossEntropy) {
  const int64_t N = 6, V = 5;
  auto logits = random_vector(N * V, 71, 2.0f);
  std::vector<int32_t> labels = {0, 4, kIgnoreIndex, 2, 2, 1};
  for (float smoothing : {0.0f, 0.1f}) {
    std::vector<float> row(N), d(N * V);
    const float norm = static_cast<float>(count_labelled(labels.data(), N));
    auto loss = [&] {
      return static_cast<double>(cross_entropy_forward_backward(nullptr, row.data(), logits.data(),
                                                                labels.data(), N, V, smoothing, norm));
    };
    cross_entropy_forward_backward(d.data(), row.data(), logits.data(), labels.data(), N, V, smoothing, norm);
    expect_gradient(smoothing > 0 ? "cross_entropy (smoothing 0.1)" : "cross_entropy", logits, d, loss,
                    1e-3f);
    for (int64_t v = 0; v < V; ++v) EXPECT_EQ(d[2 * V + v], 0.0f);  // ignored row has no gradient
  }
  std::vector<int32_t> bad = {7};
  std::vector<float> row(1);
  EXPECT_THROW(cross_entropy_forward_backward(nullptr, row.data(), logits.data(), bad.data(), 1, V, 0, 1),
               ShapeError);
}

}  // namespace
}  // namespace bertfit
