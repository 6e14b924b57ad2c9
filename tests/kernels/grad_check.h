// Finite-difference gradient checking for float kernels.
//
// The scalar under test is L = sum_i out_i * r_i with fixed random weights r (accumulated in double), so
// every output element contributes. Central differences in float: each perturbed evaluation is rounded to
// float (relative 6e-8 per output), so with h = 1e-2 the difference has an error of about sqrt(#outputs) *
// 6e-8 * |out| / h ~ 1e-5 for our sizes, and the truncation error is O(h^2 f''') ~ 1e-4 for the smooth
// kernels here. We therefore require the gradient, as a vector, to agree within 1e-2 of its norm (tolerance
// rationale: 50x the expected error, while any real bug - a wrong sign, a missing term, a wrong index - gives
// an error of the order of the norm itself).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace bertfit::testing {

inline std::vector<float> random_vector(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

inline double weighted_sum(const std::vector<float>& out, const std::vector<float>& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * r[i];
  return s;
}

// Compares `analytic` (dL/dx) with central differences of loss() over every element of x (x is perturbed in
// place and restored). At most max_checks elements, evenly spread, to keep large tensors fast.
inline void expect_gradient(const std::string& what, std::vector<float>& x,
                            const std::vector<float>& analytic, const std::function<double()>& loss,
                            float h = 1e-2f, double rel_tol = 1e-2, size_t max_checks = 400) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  const size_t stride = std::max<size_t>(1, x.size() / max_checks);
  double err2 = 0, ref2 = 0;
  size_t worst = 0;
  double worst_err = -1;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float saved = x[i];
    x[i] = saved + h;
    const double lp = loss();
    x[i] = saved - h;
    const double lm = loss();
    x[i] = saved;
    const double num = (lp - lm) / (2.0 * h);
    const double e = num - analytic[i];
    err2 += e * e;
    ref2 += static_cast<double>(analytic[i]) * analytic[i];
    if (std::fabs(e) > worst_err) worst_err = std::fabs(e), worst = i;
  }
  ASSERT_GT(ref2, 0.0) << what << ": analytic gradient is all zero, the check would be vacuous";
  const double rel = std::sqrt(err2 / ref2);
  EXPECT_LT(rel, rel_tol) << what << ": relative gradient error " << rel << " (worst element " << worst
                          << ", abs error " << worst_err << ", analytic " << analytic[worst] << ")";
}

}  // namespace bertfit::testing
