// The vectorised kernels against their plain reference versions (and against double-precision truth where the
// reference itself rounds badly), plus thread-count independence of the fast paths. Each tolerance says why.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/rng.h"
#include "core/threading.h"
#include "core/vec_math.h"
#include "kernels/activation.h"
#include "kernels/adamw.h"
#include "kernels/attention.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/layernorm.h"

namespace bertfit {
namespace {

std::vector<float> randn(size_t n, uint64_t seed, double sd = 1.0) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal() * sd);
  return v;
}

// ||a - b|| / ||b||: the error of a whole tensor relative to its size.
double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

double normal_cdf_truth(double x) {
  return 0.5 * std::erfc(-x / std::sqrt(2.0));
}

TEST(VecMath, ExpIsWithinThreeUlpAndScalarTwinAgrees) {
  // Cephes' expf reaches ~1-2 ulp; 3 ulp (3 * 2^-23 ~ 3.6e-7 relative) allows the final scaling's rounding.
  for (float x = -87.0f; x <= 88.0f; x += 0.001953125f) {
    float lanes[8];
    _mm256_storeu_ps(lanes, vec::exp_ps(_mm256_set1_ps(x)));
    const double truth = std::exp(static_cast<double>(x));
    ASSERT_LE(std::fabs(lanes[0] - truth), 3.6e-7 * truth) << "x = " << x;
    ASSERT_EQ(lanes[0], vec::exp_scalar(x)) << "x = " << x;  // tails compute the same formula
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, vec::exp_ps(_mm256_set1_ps(-INFINITY)));
  EXPECT_EQ(lanes[0], 0.0f);  // masked softmax entries rely on exp(-inf) = 0
  EXPECT_EQ(vec::exp_scalar(-200.0f), 0.0f);
}

TEST(VecMath, NormalCdfHasUniformRelativeAccuracy) {
  // Numerical Recipes' erfc: fractional error < 1.2e-7; plus exp (3.6e-7) and the final rounding: 6e-7. In
  // the negative tail the float argument -x^2/2 of exp carries the rounding of x/sqrt2 and of the argument
  // itself, a relative error of ~(x^2/2) * 2 * 6e-8: hence 6e-7 + 1.2e-7 x^2, still relative where 1 + erf(x)
  // in float would have no correct digit at all. Down to x = -12.5 (Phi = 4e-36; below, floats are denormal).
  for (float x = -12.5f; x <= 8.0f; x += 0.0009765625f) {
    float lanes[8];
    _mm256_storeu_ps(lanes, vec::normal_cdf_ps(_mm256_set1_ps(x)));
    const double truth = normal_cdf_truth(x);
    ASSERT_LE(std::fabs(lanes[0] - truth), (6e-7 + 1.2e-7 * x * x) * truth) << "x = " << x;
    ASSERT_EQ(lanes[0], vec::normal_cdf_scalar(x)) << "x = " << x;
  }
}

TEST(FastKernels, GeluForwardAndBackwardMatchTruthAndReference) {
  const int64_t n = 100003;  // not a multiple of 8 or of the chunk: exercises the scalar tails
  std::vector<float> x = randn(n, 1, 3.0), dout = randn(n, 2);
  std::vector<float> y(n), y_ref(n), d(n), d_ref(n);
  gelu_forward(y.data(), x.data(), n);
  gelu_forward_reference(y_ref.data(), x.data(), n);
  gelu_backward(d.data(), x.data(), dout.data(), n);
  gelu_backward_reference(d_ref.data(), x.data(), dout.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double xi = x[i], cdf = normal_cdf_truth(xi);
    const double pdf = std::exp(-0.5 * xi * xi) / std::sqrt(2 * M_PI);
    // gelu = x Phi(x): Phi's relative error (see NormalCdf above), plus one rounding.
    ASSERT_LE(std::fabs(y[i] - xi * cdf), (7e-7 + 1.2e-7 * xi * xi) * std::fabs(xi * cdf) + 1e-38)
        << "x = " << xi;
    // gelu' = Phi + x phi crosses 0 near x = -0.75, so the bound is absolute: both terms are <= 1.1 in size
    // with ~6e-7 relative error each.
    ASSERT_LE(std::fabs(d[i] - dout[i] * (cdf + xi * pdf)), 1.5e-6 * std::fabs(dout[i])) << "x = " << xi;
  }
  // The reference (float std::erf) agrees to its own rounding (~1e-7 of |x| near 0, worse only in the tail
  // where both are tiny): 1e-6 of the tensor's norm.
  EXPECT_LT(rel_error(y, y_ref), 1e-6);
  EXPECT_LT(rel_error(d, d_ref), 1e-6);

  // The split backward the model uses: forward output and derivative in one pass (derivative written over
  // the input, as the model does), then the product. Bit for bit the one-pass kernels above.
  std::vector<float> y2(n), deriv = x, d2(n);
  gelu_forward_and_derivative(y2.data(), deriv.data(), deriv.data(), n);
  gelu_backward_from_derivative(d2.data(), deriv.data(), dout.data(), n);
  EXPECT_TRUE(bitwise_equal(y2, y));
  EXPECT_TRUE(bitwise_equal(d2, d));
}

// The AVX-512 bodies compute the AVX2 formulas 16 lanes at a time: the same bits, whatever the CPU.
TEST(FastKernels, GeluIsTheSameBitsWithAvx512AndAvx2) {
  const int64_t n = 70001;  // a span tail that is neither 16- nor 8-aligned
  std::vector<float> x = randn(n, 11, 4.0), dout = randn(n, 12);
  auto run = [&](Isa isa) {
    set_max_isa(isa);
    std::vector<float> y(n), d(n), y2(n), deriv(n);
    gelu_forward(y.data(), x.data(), n);
    gelu_backward(d.data(), x.data(), dout.data(), n);
    gelu_forward_and_derivative(y2.data(), deriv.data(), x.data(), n);
    std::vector<float> all = y;
    all.insert(all.end(), d.begin(), d.end());
    all.insert(all.end(), y2.begin(), y2.end());
    all.insert(all.end(), deriv.begin(), deriv.end());
    return all;
  };
  const std::vector<float> wide = run(Isa::AVX512), narrow = run(Isa::AVX2);
  set_max_isa(Isa::AVX512);
  if (!use_avx512()) GTEST_SKIP() << "this CPU has no AVX-512: both runs took the AVX2 path";
  EXPECT_TRUE(bitwise_equal(wide, narrow));
}

TEST(FastKernels, LayerNormMatchesReference) {
  for (int64_t C : {768, 37}) {  // 37: tails
    const int64_t N = 64;
    std::vector<float> x = randn(N * C, 3, 2.0), w = randn(C, 4), b = randn(C, 5), dy = randn(N * C, 6);
    for (int64_t i = 0; i < N * C; ++i) x[i] += 3.0f;  // a mean offset, as residual streams have
    std::vector<float> y(N * C), y_ref(N * C), m(N), m_ref(N), r(N), r_ref(N);
    layernorm_forward(y.data(), m.data(), r.data(), x.data(), w.data(), b.data(), N, C, 1e-12f);
    layernorm_forward_reference(y_ref.data(), m_ref.data(), r_ref.data(), x.data(), w.data(), b.data(), N, C,
                                1e-12f);
    // 8-lane vs sequential float sums of C values: each differs by ~sqrt(C) ulp ~ 2e-6 relative at most.
    EXPECT_LT(rel_error(y, y_ref), 1e-5) << C;
    EXPECT_LT(rel_error(m, m_ref), 1e-5) << C;
    EXPECT_LT(rel_error(r, r_ref), 1e-5) << C;
    std::vector<float> dx(N * C), dx_ref(N * C), dw(C, 0.5f), dw_ref(C, 0.5f), db(C, 0.25f), db_ref(C, 0.25f);
    layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), m_ref.data(),
                       r_ref.data(), N, C);
    layernorm_backward_reference(dx_ref.data(), dw_ref.data(), db_ref.data(), dy.data(), x.data(), w.data(),
                                 m_ref.data(), r_ref.data(), N, C);
    EXPECT_LT(rel_error(dx, dx_ref), 1e-5) << C;  // the same two row sums, reordered
    EXPECT_TRUE(bitwise_equal(dw, dw_ref));       // parameter gradients: one shared deterministic kernel
    EXPECT_TRUE(bitwise_equal(db, db_ref));
  }
}

// The fused end of a sub-layer is the two passes it replaces, bit for bit: the dropout masks (with and
// without a row map), the residual sums, the statistics and the normalised rows; with 1 and 2 threads.
TEST(FastKernels, DropoutAddLayerNormIsTheTwoPassesItReplaces) {
  const int saved = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t C : {768, 37}) {  // 37: the 8-lane loops' tails
      const int64_t N = 48;
      const std::vector<float> x = randn(N * C, 21), res = randn(N * C, 22, 3.0), w = randn(C, 23),
                               b = randn(C, 24);
      std::vector<int32_t> rows(N);
      for (int64_t i = 0; i < N; ++i) rows[i] = static_cast<int32_t>(3 * i + 1);  // rows of a padded layout
      for (float p : {0.0f, 0.1f}) {
        for (const int32_t* row_map :
             {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(rows.data())}) {
          std::vector<float> sum(N * C), y(N * C), m(N), r(N), sum2(N * C), y2(N * C), m2(N), r2(N);
          dropout_add_layernorm_forward(y.data(), sum.data(), m.data(), r.data(), x.data(), res.data(), N, C,
                                        row_map, p, 77, w.data(), b.data(), 1e-12f);
          dropout_rows_residual_forward(sum2.data(), x.data(), res.data(), N, C, row_map, p, 77);
          layernorm_forward(y2.data(), m2.data(), r2.data(), sum2.data(), w.data(), b.data(), N, C, 1e-12f);
          const std::string what = "C " + std::to_string(C) + " p " + std::to_string(p) +
                                   (row_map ? " rows" : "") + " threads " + std::to_string(threads);
          EXPECT_TRUE(bitwise_equal(sum, sum2)) << what;
          EXPECT_TRUE(bitwise_equal(y, y2)) << what;
          EXPECT_TRUE(bitwise_equal(m, m2)) << what;
          EXPECT_TRUE(bitwise_equal(r, r2)) << what;
          if (p > 0) {  // the masks did drop something (else the comparison above proves little)
            int64_t dropped = 0;
            for (int64_t i = 0; i < N * C; ++i) dropped += sum[i] == res[i];
            EXPECT_GT(dropped, N * C / 20) << what;
          }
        }
      }
    }
  }
  set_num_threads(saved);
}

TEST(FastKernels, AttentionMatchesReferenceWithPaddingAndDropout) {
  const AttentionShape s{3, 37, 48, 4};  // T = 37: softmax tails; batch 1 and 2 padded
  const int64_t N = s.B * s.T, C3 = 3 * s.C;
  std::vector<float> qkv = randn(N * C3, 7), dctx = randn(N * s.C, 8);
  std::vector<uint8_t> mask(N, 1);
  for (int64_t t = 30; t < s.T; ++t) mask[1 * s.T + t] = 0;
  for (int64_t t = 5; t < s.T; ++t) mask[2 * s.T + t] = 0;
  for (float p : {0.0f, 0.1f}) {
    const int64_t PP = s.B * s.NH * s.T * s.T;
    std::vector<float> ctx(N * s.C), ctx_ref(N * s.C), probs(PP), probs_ref(PP);
    std::vector<float> scratch(attention_scratch_floats(s.T, num_threads()));
    attention_forward(ctx.data(), probs.data(), qkv.data(), mask.data(), s, p, 99, scratch.data());
    attention_forward_reference(ctx_ref.data(), probs_ref.data(), qkv.data(), mask.data(), s, p, 99);
    // sgemm vs double-accumulated reference GEMM and a 3-ulp exp: ~1e-7 relative; 1e-5 leaves 100x margin
    // while a wrong mask or a missed dropout element changes these by O(1e-2) or more.
    EXPECT_LT(rel_error(probs, probs_ref), 1e-5) << p;
    EXPECT_LT(rel_error(ctx, ctx_ref), 1e-5) << p;
    for (int64_t i = 0; i < s.T; ++i)
      EXPECT_EQ(probs[(2 * s.NH) * s.T * s.T + i * s.T + 10], 0.0f);  // padded key
    std::vector<float> dqkv(N * C3), dqkv_ref(N * C3);
    attention_backward(dqkv.data(), nullptr, dctx.data(), qkv.data(), probs_ref.data(), mask.data(), s, p, 99,
                       scratch.data());
    attention_backward_reference(dqkv_ref.data(), dctx.data(), qkv.data(), probs_ref.data(), s, p, 99);
    EXPECT_LT(rel_error(dqkv, dqkv_ref), 1e-5) << p;

    // What the model does: no saved probabilities (the backward recomputes them) and ctx written again by the
    // backward. Both must be bit for bit what the forward computed and what the saved-probabilities path
    // gives.
    std::vector<float> ctx_kept(N * s.C), ctx_again(N * s.C, -1.0f), dqkv_saved(N * C3),
        dqkv_recomputed(N * C3);
    attention_forward(ctx_kept.data(), nullptr, qkv.data(), mask.data(), s, p, 99, scratch.data());
    EXPECT_TRUE(bitwise_equal(ctx_kept, ctx)) << p;
    attention_backward(dqkv_saved.data(), nullptr, dctx.data(), qkv.data(), probs.data(), mask.data(), s, p,
                       99, scratch.data());
    attention_backward(dqkv_recomputed.data(), ctx_again.data(), dctx.data(), qkv.data(), nullptr,
                       mask.data(), s, p, 99, scratch.data());
    EXPECT_TRUE(bitwise_equal(dqkv_recomputed, dqkv_saved)) << p;
    EXPECT_TRUE(bitwise_equal(ctx_again, ctx)) << p;
  }
}

TEST(FastKernels, AttentionAvx512AndAvx2Agree) {
  // The softmax rows with 16 lanes (masked_softmax_row_avx512) must give the AVX2 rows' bits: T = 29 has a
  // 16-block, an 8-block and a scalar tail, T = 128 whole blocks only; a padded sequence masks keys.
  for (int64_t T : {29, 128}) {
    const AttentionShape s{2, T, 32, 2};
    const int64_t N = s.B * s.T, C3 = 3 * s.C;
    const std::vector<float> qkv = randn(N * C3, 40, 3.0);
    std::vector<uint8_t> mask(N, 1);
    for (int64_t t = T - 7; t < T; ++t) mask[s.T + t] = 0;
    std::vector<float> scratch(attention_scratch_floats(T, num_threads()));
    auto run = [&](Isa isa) {
      set_max_isa(isa);
      std::vector<float> ctx(N * s.C), probs(s.B * s.NH * T * T);
      attention_forward(ctx.data(), probs.data(), qkv.data(), mask.data(), s, 0.1f, 7, scratch.data());
      probs.insert(probs.end(), ctx.begin(), ctx.end());
      return probs;
    };
    const std::vector<float> wide = run(Isa::AVX512), narrow = run(Isa::AVX2);
    set_max_isa(Isa::AVX512);
    if (!use_avx512()) GTEST_SKIP() << "this CPU has no AVX-512: both runs took the AVX2 path";
    EXPECT_TRUE(bitwise_equal(wide, narrow)) << T;
  }
}

TEST(FastKernels, AdamWIsBitwiseTheReference) {
  // Groups with different lr / weight decay, adjacent (merged by the fast path) and with gaps, odd sizes.
  const size_t n = 5000;
  std::vector<ParamGroup> groups = {{0, 1001, 1e-3f, 0.01f},
                                    {1001, 999, 1e-3f, 0.01f},
                                    {2000, 7, 1e-3f, 0.0f},
                                    {2016, 2000, 5e-4f, 0.01f},
                                    {4100, 900, 1e-3f, 0.01f}};
  std::vector<float> p = randn(n, 9), p_ref = p, m(n, 0.0f), m_ref(n, 0.0f), v(n, 0.0f), v_ref(n, 0.0f);
  for (int64_t step = 1; step <= 3; ++step) {
    const std::vector<float> g = randn(n, 10 + step, 1e-3);
    adamw_step(p.data(), g.data(), m.data(), v.data(), groups, AdamWHyper{}, step);
    adamw_step_reference(p_ref.data(), g.data(), m_ref.data(), v_ref.data(), groups, AdamWHyper{}, step);
  }
  // The same IEEE operations in the same order: identical bits, not merely close.
  EXPECT_TRUE(bitwise_equal(p, p_ref));
  EXPECT_TRUE(bitwise_equal(m, m_ref));
  EXPECT_TRUE(bitwise_equal(v, v_ref));
}

TEST(FastKernels, AdamWGradScaleIsClippingInPlace) {
  // The training loop's fused clipping: adamw_step with grad_scale = clip_coefficient must leave exactly what
  // clip_grad_norm's in-place scaling followed by an unscaled step leaves (the same float multiply), on the
  // vector path (spans of 8) and the scalar tail (n % 8 != 0), and the reference must agree.
  const size_t n = 1003;
  const std::vector<ParamGroup> groups = {{0, 500, 1e-3f, 0.01f}, {500, 503, 5e-4f, 0.0f}};
  const std::vector<float> g = randn(n, 31, 0.5);
  const double norm = grad_norm(g.data(), n);
  const float coef = clip_coefficient(norm, 1.0);
  ASSERT_LT(coef, 1.0f);  // the norm (~0.5 sqrt(1003) ~ 16) is above 1: clipping happens
  EXPECT_EQ(clip_coefficient(norm, 0.0), 1.0f);       // max_norm <= 0: no clipping
  EXPECT_EQ(clip_coefficient(norm, 2 * norm), 1.0f);  // under the limit: no clipping
  std::vector<float> clipped = g;
  EXPECT_EQ(clip_grad_norm(clipped.data(), n, 1.0), norm);
  std::vector<float> p_in = randn(n, 32), m_in = randn(n, 33, 1e-3), v_in(n, 1e-6f);
  std::vector<float> p1 = p_in, m1 = m_in, v1 = v_in, p2 = p_in, m2 = m_in, v2 = v_in, p3 = p_in, m3 = m_in,
                     v3 = v_in;
  adamw_step(p1.data(), clipped.data(), m1.data(), v1.data(), groups, AdamWHyper{}, 3);
  adamw_step(p2.data(), g.data(), m2.data(), v2.data(), groups, AdamWHyper{}, 3, coef);
  adamw_step_reference(p3.data(), g.data(), m3.data(), v3.data(), groups, AdamWHyper{}, 3, coef);
  for (const auto* x : {&p2, &p3}) EXPECT_TRUE(bitwise_equal(*x, p1));
  for (const auto* x : {&m2, &m3}) EXPECT_TRUE(bitwise_equal(*x, m1));
  for (const auto* x : {&v2, &v3}) EXPECT_TRUE(bitwise_equal(*x, v1));
  // The scale is used: without it the step differs.
  std::vector<float> p4 = p_in, m4 = m_in, v4 = v_in;
  adamw_step(p4.data(), g.data(), m4.data(), v4.data(), groups, AdamWHyper{}, 3);
  EXPECT_FALSE(bitwise_equal(m4, m1));
}

TEST(FastKernels, DropoutSpanIsBitwiseTheReference) {
  // Integer hashing on every path (AVX-512 when the CPU has it, scalar otherwise): identical bits expected.
  const int64_t n = 1003;
  const std::vector<float> x = randn(n, 20), res = randn(n, 21);
  for (float p : {0.1f, 0.5f, 0.9f})
    for (uint64_t first : {0ull, 5ull, (1ull << 40) + 3}) {
      std::vector<float> a(n), b(n), c(n), d(n);
      dropout_span(a.data(), x.data(), nullptr, n, p, 77, first);
      dropout_span_reference(b.data(), x.data(), nullptr, n, p, 77, first);
      dropout_span(c.data(), x.data(), res.data(), n, p, 78, first);
      dropout_span_reference(d.data(), x.data(), res.data(), n, p, 78, first);
      EXPECT_TRUE(bitwise_equal(a, b)) << p << " " << first;
      EXPECT_TRUE(bitwise_equal(c, d)) << p << " " << first;
      int64_t kept = 0;
      for (float v : a) kept += v != 0.0f;
      // The keep rate is 1 - p within 5 standard deviations of a binomial(1003, 1 - p).
      EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 5 * std::sqrt(p * (1 - p) / n)) << p;
    }
}

TEST(FastKernels, GradNormMatchesDoubleSum) {
  const std::vector<float> g = randn(300001, 12);
  double truth = 0;
  for (float x : g) truth += static_cast<double>(x) * x;
  // Double accumulation of 3e5 squares: relative error ~1e-16 * sqrt(n); 1e-12 is generous yet catches a
  // dropped chunk (relative 1e-3 or more).
  EXPECT_NEAR(grad_norm(g.data(), g.size()), std::sqrt(truth), 1e-12 * std::sqrt(truth));
}

TEST(FastKernels, CrossEntropyMatchesReference) {
  const int64_t N = 9, V = 30523;
  std::vector<float> logits = randn(N * V, 13, 2.0);
  std::vector<int32_t> labels = {5, kIgnoreIndex, 30522, 0, 17, kIgnoreIndex, 100, 2000, 3};
  for (float smoothing : {0.0f, 0.1f}) {
    std::vector<float> d(N * V), d_ref(N * V), rl(N), rl_ref(N);
    const float loss = cross_entropy_forward_backward(d.data(), rl.data(), logits.data(), labels.data(), N, V,
                                                      smoothing, 7.0f);
    const float loss_ref = cross_entropy_forward_backward_reference(
        d_ref.data(), rl_ref.data(), logits.data(), labels.data(), N, V, smoothing, 7.0f);
    // log Z from float exps (3 ulp each) summed in double: ~4e-7 relative of Z, so ~4e-7 absolute in the
    // loss.
    EXPECT_NEAR(loss, loss_ref, 2e-6) << smoothing;
    // Softmax from a 3-ulp exp times 1/sum: ~5e-7 relative per element.
    EXPECT_LT(rel_error(d, d_ref), 2e-6) << smoothing;
    EXPECT_EQ(d[1 * V + 5], 0.0f);  // ignored rows get no gradient
  }
}

TEST(FastKernels, ResultsDoNotDependOnThreadCount) {
  const int saved = num_threads();
  auto run = [](int threads) {
    set_num_threads(threads);
    const int64_t n = 70001;
    std::vector<float> x = randn(n, 14), out(n), out2(n);
    gelu_forward(out.data(), x.data(), n);
    gelu_backward(out2.data(), x.data(), x.data(), n);
    std::vector<float> y(64 * 768), m(64), r(64), w(768, 1.1f), b(768, 0.1f);
    layernorm_forward(y.data(), m.data(), r.data(), x.data(), w.data(), b.data(), 64, 768, 1e-12f);
    out.insert(out.end(), out2.begin(), out2.end());
    out.insert(out.end(), y.begin(), y.end());
    return out;
  };
  const std::vector<float> one = run(1), two = run(2);
  set_num_threads(saved);
  EXPECT_TRUE(bitwise_equal(one, two));
}

}  // namespace
}  // namespace bertfit
