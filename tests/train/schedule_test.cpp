// Learning-rate schedules against torch's LambdaLR driven with HuggingFace's lambdas
// (tools/data/gen_schedule_golden.py), plus the warm-up rule and a few values by hand.
#include "train/schedule.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"

namespace bertfit {
namespace {

TEST(TrainSchedule, HandValues) {
  // linear, 10 steps, 2 warm-up: 0, 0.5, then (10 - t) / 8.
  const LrSchedule lin(ScheduleKind::LINEAR, 10, 2);
  EXPECT_EQ(lin.multiplier(0), 0.0);
  EXPECT_EQ(lin.multiplier(1), 0.5);
  EXPECT_EQ(lin.multiplier(2), 1.0);
  EXPECT_EQ(lin.multiplier(6), 0.5);
  EXPECT_EQ(lin.multiplier(10), 0.0);
  EXPECT_EQ(lin.multiplier(12), 0.0);  // clamped, not negative
  // cosine, no warm-up: half-way is 0.5 (cos(pi/2) = 0 up to rounding).
  const LrSchedule cos(ScheduleKind::COSINE, 8, 0);
  EXPECT_NEAR(cos.multiplier(4), 0.5, 1e-15);  // 1e-15: the rounding of cos(pi / 2) in double
  EXPECT_EQ(LrSchedule(ScheduleKind::CONSTANT, 5, 3).multiplier(0), 1.0);  // constant ignores warm-up
  EXPECT_EQ(LrSchedule(ScheduleKind::CONSTANT_WITH_WARMUP, 5, 4).multiplier(2), 0.5);
  EXPECT_EQ(lin.lr(2e-5, 6), 1e-5);
}

TEST(TrainSchedule, WarmupStepsAsHuggingFace) {
  EXPECT_EQ(resolve_warmup_steps(0, 0.1, 1000), 100);
  EXPECT_EQ(resolve_warmup_steps(0, 0.1, 1001), 101);  // ceil(100.1)
  EXPECT_EQ(resolve_warmup_steps(0, 0.06, 37), 3);     // ceil(2.22)
  EXPECT_EQ(resolve_warmup_steps(7, 0.5, 100), 7);     // explicit steps win
  EXPECT_THROW(resolve_warmup_steps(-1, 0, 10), ConfigError);
  EXPECT_THROW(resolve_warmup_steps(0, 1.5, 10), ConfigError);
}

TEST(TrainSchedule, Names) {
  for (const char* n : {"linear", "cosine", "constant", "constant_with_warmup"})
    EXPECT_EQ(schedule_kind_name(parse_schedule_kind(n)), n);
  EXPECT_THROW(parse_schedule_kind("polynomial"), ConfigError);
  EXPECT_THROW(LrSchedule(ScheduleKind::LINEAR, 0, 0), ConfigError);
}

TEST(TrainSchedule, MatchesTorchLambdaLRGolden) {
  std::ifstream in(BERTFIT_FIXTURES "/data/schedule_golden.json");
  ASSERT_TRUE(in) << "missing fixture";
  const auto golden = nlohmann::json::parse(in);
  ASSERT_GE(golden["cases"].size(), 10u);
  for (const auto& c : golden["cases"]) {
    const std::string kind = c["kind"];
    SCOPED_TRACE(kind + " total " + std::to_string(c["total_steps"].get<int64_t>()));
    const int64_t total = c["total_steps"];
    const int64_t w = resolve_warmup_steps(c["warmup_steps_arg"], c["warmup_ratio"], total);
    EXPECT_EQ(w, c["warmup_steps"].get<int64_t>());
    const LrSchedule s(parse_schedule_kind(kind), total, w, c["num_cycles"]);
    const double base = c["base_lr"];
    const auto& lrs = c["lrs"];
    for (size_t t = 0; t < lrs.size(); ++t) {
      // LambdaLR computes base_lr * lambda(t) in double with the same formula; the product may round
      // differently only if our lambda differed in its last bit: 1e-15 relative allows exactly that.
      const double want = lrs[t];
      EXPECT_NEAR(s.lr(base, static_cast<int64_t>(t)), want, 1e-15 * std::abs(want) + 1e-300) << "step " << t;
    }
  }
}

}  // namespace
}  // namespace bertfit
