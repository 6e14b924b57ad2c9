// Classification metrics: one case worked out by hand (every zero_division rule), then golden values and
// report strings computed by scikit-learn 1.2 (tools/data/gen_metrics_golden.py).
#include "train/metrics.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"

namespace bertfit {
namespace {

// Both sides compute the same ratios of small integers in double; only the summation order of the averages
// differs (numpy sums pairwise), which moves the last bits: 1e-12 is far above that and far below any
// real difference (one example in 500 changes a metric by >= 1e-4).
constexpr double kTol = 1e-12;

TEST(TrainMetrics, HandComputedZeroDivisionCase) {
  // Class 2 is never predicted, class 3 is predicted but has no support, class 4 is absent from both.
  const std::vector<int64_t> y = {0, 0, 1, 1, 2, 2, 2, 0}, p = {0, 1, 1, 1, 0, 1, 3, 3};
  const ClassificationMetrics m = compute_metrics(p, y, 5);
  EXPECT_DOUBLE_EQ(m.accuracy, 3.0 / 8);
  EXPECT_DOUBLE_EQ(m.error_rate, 5.0 / 8);
  // class 0: tp 1, predicted 2, support 3
  EXPECT_DOUBLE_EQ(m.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(m.per_class[0].recall, 1.0 / 3);
  EXPECT_NEAR(m.per_class[0].f1, 0.4, kTol);
  // class 1: tp 2, predicted 4, support 2
  EXPECT_NEAR(m.per_class[1].f1, 2.0 / 3, kTol);
  // class 2: no predictions -> precision 0 (zero_division=0); class 3: no support -> recall 0
  EXPECT_EQ(m.per_class[2].precision, 0.0);
  EXPECT_EQ(m.per_class[2].f1, 0.0);
  EXPECT_EQ(m.per_class[3].recall, 0.0);
  EXPECT_EQ(m.per_class[3].support, 0);
  EXPECT_EQ(m.reported, (std::vector<bool>{true, true, true, true, false}));
  // Averages over the 4 reported classes.
  EXPECT_NEAR(m.macro.f1, (0.4 + 2.0 / 3) / 4, kTol);
  EXPECT_NEAR(m.weighted.f1, (3 * 0.4 + 2 * 2.0 / 3) / 8, kTol);
  EXPECT_NEAR(m.micro.f1, m.accuracy, kTol);
  EXPECT_EQ(m.confusion_at(2, 0), 1);
  EXPECT_EQ(m.confusion_at(2, 3), 1);
  EXPECT_EQ(m.confusion_at(0, 3), 1);
}

TEST(TrainMetrics, RejectsBadInput) {
  EXPECT_THROW(compute_metrics({0, 1}, {0}, 2), ConfigError);
  EXPECT_THROW(compute_metrics({0, 2}, {0, 1}, 2), ConfigError);
  EXPECT_THROW(compute_metrics({0}, {-1}, 2), ConfigError);
  EXPECT_THROW(compute_metrics({}, {}, 0), ConfigError);
  EXPECT_EQ(compute_metrics({}, {}, 3).count, 0);
}

TEST(TrainMetrics, ConfusionMatrixText) {
  const ClassificationMetrics m = compute_metrics({0, 1, 1}, {0, 0, 1}, 2);
  EXPECT_EQ(format_confusion_matrix(m, {"neg", "pos"}),
            "true \\ pred 0 1\n"
            "0 neg       1 1\n"
            "1 pos       0 1\n");
}

std::vector<int64_t> ints(const nlohmann::json& j) {
  return j.get<std::vector<int64_t>>();
}

TEST(TrainMetrics, MatchesScikitLearnGolden) {
  std::ifstream in(BERTFIT_FIXTURES "/data/metrics_golden.json");
  ASSERT_TRUE(in) << "missing fixture";
  const auto golden = nlohmann::json::parse(in);
  ASSERT_GE(golden["cases"].size(), 9u);
  for (const auto& c : golden["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const int64_t C = c["num_classes"];
    const auto names = c["names"].get<std::vector<std::string>>();
    const ClassificationMetrics m = compute_metrics(ints(c["predictions"]), ints(c["labels"]), C);
    EXPECT_NEAR(m.accuracy, c["accuracy"].get<double>(), kTol);
    for (int64_t k = 0; k < C; ++k) {
      EXPECT_NEAR(m.per_class[k].precision, c["per_class"]["precision"][k].get<double>(), kTol) << k;
      EXPECT_NEAR(m.per_class[k].recall, c["per_class"]["recall"][k].get<double>(), kTol) << k;
      EXPECT_NEAR(m.per_class[k].f1, c["per_class"]["f1"][k].get<double>(), kTol) << k;
      EXPECT_EQ(m.per_class[k].support, c["per_class"]["support"][k].get<int64_t>()) << k;
      EXPECT_EQ(m.reported[k], c["reported"][k].get<bool>()) << k;
    }
    const std::pair<const char*, const Averages*> avgs[] = {
        {"macro", &m.macro}, {"micro", &m.micro}, {"weighted", &m.weighted}};
    for (const auto& [key, a] : avgs) {
      EXPECT_NEAR(a->precision, c[key]["precision"].get<double>(), kTol) << key;
      EXPECT_NEAR(a->recall, c[key]["recall"].get<double>(), kTol) << key;
      EXPECT_NEAR(a->f1, c[key]["f1"].get<double>(), kTol) << key;
    }
    EXPECT_EQ(m.confusion, ints(c["confusion"]));
    // sklearn prints supports as floats ("2.0") when nothing is right (see the generator): values only then.
    if (c["report_float_support"].get<bool>()) continue;
    EXPECT_EQ(classification_report(m, names, 2), c["report_2"].get<std::string>());
    EXPECT_EQ(classification_report(m, names, 4), c["report_4"].get<std::string>());
    EXPECT_EQ(classification_report(m, {}, 2), c["report_ids_2"].get<std::string>());
  }
}

}  // namespace
}  // namespace bertfit
