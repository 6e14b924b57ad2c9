// Multi-label and regression metrics (train/problem_metrics.h) against scikit-learn 1.2 and SciPy
// (tools/reference/gen_problem_metrics_golden.py), and one case by hand. Tolerance 1e-9: both sides count
// integers and divide (F1s, exact match) or sum a few dozen values in double (MSE, correlations of float
// inputs converted exactly), so they agree to rounding of the last bits.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "train/problem_metrics.h"

namespace bertfit {
namespace {

TEST(ProblemMetrics, MultiLabelByHand) {
  // 2 examples x 3 labels. Example 0: truth {0, 2}, predicted {0, 1}; example 1: truth {1}, predicted {1}.
  const std::vector<float> probs = {0.9f, 0.6f, 0.2f, 0.1f, 0.7f, 0.4f};
  const std::vector<float> targets = {1, 0, 1, 0, 1, 0};
  const MultiLabelMetrics m = multi_label_metrics(probs, targets, 3, 0.5);
  // tp: label0 1, label1 1; fp: label1 1; fn: label2 1 -> micro F1 = 2*2 / (4 + 1 + 1).
  EXPECT_DOUBLE_EQ(m.micro_f1, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.macro_f1, (1.0 + 2.0 / 3.0 + 0.0) / 3.0);
  EXPECT_DOUBLE_EQ(m.exact_match, 0.5);
  EXPECT_THROW(multi_label_metrics(probs, {1, 0}, 3, 0.5), ConfigError);
}

TEST(ProblemMetrics, MatchScikitLearnAndScipy) {
  std::ifstream in(BERTFIT_FIXTURES "/tricks/problem_metrics_golden.json");
  ASSERT_TRUE(in) << "golden file missing";
  const auto g = nlohmann::json::parse(in);
  ASSERT_EQ(g["multi_label"].size(), 3u);
  for (const auto& c : g["multi_label"]) {
    const MultiLabelMetrics m =
        multi_label_metrics(c["probs"].get<std::vector<float>>(), c["targets"].get<std::vector<float>>(),
                            c["num_labels"].get<int64_t>(), c["threshold"].get<double>());
    const std::string n = c["name"];
    EXPECT_NEAR(m.micro_f1, c["micro_f1"].get<double>(), 1e-9) << n;
    EXPECT_NEAR(m.macro_f1, c["macro_f1"].get<double>(), 1e-9) << n;
    EXPECT_NEAR(m.micro_precision, c["micro_precision"].get<double>(), 1e-9) << n;
    EXPECT_NEAR(m.micro_recall, c["micro_recall"].get<double>(), 1e-9) << n;
    EXPECT_NEAR(m.exact_match, c["exact_match"].get<double>(), 1e-9) << n;
    const auto f1 = c["f1"].get<std::vector<double>>();
    ASSERT_EQ(m.f1.size(), f1.size());
    for (size_t k = 0; k < f1.size(); ++k) EXPECT_NEAR(m.f1[k], f1[k], 1e-9) << n << " label " << k;
  }
  ASSERT_EQ(g["regression"].size(), 3u);
  for (const auto& c : g["regression"]) {
    const RegressionMetrics m = regression_metrics(c["predictions"].get<std::vector<float>>(),
                                                   c["targets"].get<std::vector<float>>());
    const std::string n = c["name"];
    EXPECT_NEAR(m.mse, c["mse"].get<double>(), 1e-9) << n;
    EXPECT_NEAR(m.pearson, c["pearson"].get<double>(), 1e-9) << n;
    EXPECT_NEAR(m.spearman, c["spearman"].get<double>(), 1e-9) << n;
  }
}

TEST(ProblemMetrics, RanksShareTies) {
  EXPECT_EQ(average_ranks({3, 1, 3, 2}), (std::vector<double>{3.5, 1, 3.5, 2}));
  const RegressionMetrics constant = regression_metrics({1, 1, 1}, {1, 2, 3});
  EXPECT_EQ(constant.pearson, 0.0);
  EXPECT_EQ(constant.spearman, 0.0);
}

}  // namespace
}  // namespace bertfit
