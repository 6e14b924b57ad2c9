// Ensembles of prediction files (train/ensemble.h): the weighted mean and the rank average worked out by
// hand, columns matched by label name, the file format read back as written, and mismatches as errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bertfit/error.h"
#include "train/ensemble.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

PredictionTable table(std::vector<std::string> labels, std::vector<double> probs) {
  PredictionTable t;
  t.ids = {"a", "b", "c"};
  t.labels = std::move(labels);
  t.probs = std::move(probs);
  return t;
}

TEST(Ensemble, WeightedMeanMatchesColumnsByName) {
  const PredictionTable x = table({"neg", "pos"}, {0.9, 0.1, 0.4, 0.6, 0.2, 0.8});
  // The same labels in the other column order.
  const PredictionTable y = table({"pos", "neg"}, {0.3, 0.7, 0.8, 0.2, 0.5, 0.5});
  const PredictionTable e = ensemble_predictions({x, y}, {1, 3}, EnsembleMethod::MEAN, {"x", "y"});
  ASSERT_EQ(e.labels, (std::vector<std::string>{"neg", "pos"}));
  const std::vector<double> want = {(0.9 + 3 * 0.7) / 4, (0.1 + 3 * 0.3) / 4, (0.4 + 3 * 0.2) / 4,
                                    (0.6 + 3 * 0.8) / 4, (0.2 + 3 * 0.5) / 4, (0.8 + 3 * 0.5) / 4};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(e.probs[i], want[i], 1e-15) << i;
  EXPECT_EQ(predicted_labels(e), (std::vector<std::string>{"neg", "pos", "pos"}));
}

TEST(Ensemble, RankAverageUsesOrdersNotScales) {
  // y is x's probabilities squashed towards 0.5: the same order, so the rank ensemble equals x's ranks.
  const PredictionTable x = table({"n", "p"}, {0.9, 0.1, 0.4, 0.6, 0.2, 0.8});
  const PredictionTable y = table({"n", "p"}, {0.55, 0.45, 0.50, 0.50, 0.51, 0.49});
  const PredictionTable e = ensemble_predictions({x, y}, {}, EnsembleMethod::RANK, {});
  // Class n: x ranks (3, 2, 1) / 3; y ranks (3, 1, 2) / 3 -> means (1, 0.5, 0.5).
  EXPECT_DOUBLE_EQ(e.probs[0], 1.0);
  EXPECT_DOUBLE_EQ(e.probs[2], 0.5);
  EXPECT_DOUBLE_EQ(e.probs[4], 0.5);
  // Class p: x ranks (1, 2, 3) / 3; y (1, 3, 2) / 3 (0.50 > 0.49 > 0.45).
  EXPECT_DOUBLE_EQ(e.probs[1], 1.0 / 3);
  EXPECT_DOUBLE_EQ(e.probs[3], 2.5 / 3);
  EXPECT_DOUBLE_EQ(e.probs[5], 2.5 / 3);
}

TEST(Ensemble, FilesRoundTripAndBadInputIsAnError) {
  const fs::path dir = fs::temp_directory_path() / ("bertfit-ensemble-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const PredictionTable x = table({"neg", "pos"}, {0.9, 0.1, 0.4, 0.6, 0.25, 0.75});
  write_prediction_file((dir / "x.tsv").string(), x);
  const PredictionTable r = read_prediction_file((dir / "x.tsv").string());
  EXPECT_EQ(r.ids, x.ids);
  EXPECT_EQ(r.labels, x.labels);
  for (size_t i = 0; i < x.probs.size(); ++i) EXPECT_NEAR(r.probs[i], x.probs[i], 5e-7);  // %.6f
  std::ofstream(dir / "bad.tsv")
      << "id\tlabel\tprobability\tp_neg\tp_pos\na\tneg\t0.9\t0.9\t0.1\nb\tpos\t0.6\tx\t0.6\n";
  try {
    read_prediction_file((dir / "bad.tsv").string());
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:3: p_neg = 'x'"), std::string::npos) << e.what();
  }
  PredictionTable other = x;
  other.ids[1] = "z";
  EXPECT_THROW(ensemble_predictions({x, other}, {}, EnsembleMethod::MEAN, {}), ConfigError);
  PredictionTable relabelled = x;
  relabelled.labels = {"neg", "neutral"};
  EXPECT_THROW(ensemble_predictions({x, relabelled}, {}, EnsembleMethod::MEAN, {}), ConfigError);
  EXPECT_THROW(ensemble_predictions({x, x}, {1}, EnsembleMethod::MEAN, {}), ConfigError);
  EXPECT_THROW(ensemble_predictions({x, x}, {1, 0}, EnsembleMethod::MEAN, {}), ConfigError);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bertfit
