// Ensembles of prediction files (train/ensemble.h): the weighted mean and the rank average worked out by
// hand, columns matched by label name, the file format read back as written, and mismatches as errors; for
// multi-label files the mean of each label's probability cut at the threshold, for regression files the
// weighted mean value and the members' weighted spread, and the rank average refused for both.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

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
  // Written under score / s_<label>, and refused as an input: averaged with probabilities they mean nothing.
  const fs::path dir = fs::temp_directory_path() / ("bertfit-ensemble-rank-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "rank.tsv").string();
  write_prediction_file(path, e);
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  EXPECT_EQ(header, "id\tlabel\tscore\ts_n\ts_p");
  try {
    read_prediction_file(path);
    ADD_FAILURE() << "rank scores read as probabilities";
  } catch (const FormatError& err) {
    EXPECT_NE(std::string(err.what()).find("rank.tsv:1: rank scores"), std::string::npos) << err.what();
  }
  fs::remove_all(dir);
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

PredictionTable multi(std::vector<double> probs, double threshold = 0.5) {
  PredictionTable t = table({"x", "y"}, std::move(probs));
  t.problem = ProblemType::MULTI_LABEL;
  t.threshold = threshold;
  return t;
}

PredictionTable regression(std::vector<double> values) {
  PredictionTable t;
  t.problem = ProblemType::REGRESSION;
  t.ids = {"a", "b", "c"};
  t.values = std::move(values);
  return t;
}

TEST(Ensemble, MultiLabelMeansEachLabelThenCutsAtTheThreshold) {
  const PredictionTable p = multi({0.9, 0.2, 0.6, 0.5, 0.1, 0.45});
  // The same labels in the other column order.
  PredictionTable q = multi({0.4, 0.7, 0.9, 0.2, 0.65, 0.3});
  q.labels = {"y", "x"};
  const PredictionTable e = ensemble_predictions({p, q}, {1, 3}, EnsembleMethod::MEAN, {"p", "q"});
  EXPECT_EQ(e.problem, ProblemType::MULTI_LABEL);
  ASSERT_EQ(e.labels, (std::vector<std::string>{"x", "y"}));
  // x: (0.9 + 3 * 0.7) / 4 = 0.75, (0.6 + 3 * 0.2) / 4 = 0.3, (0.1 + 3 * 0.3) / 4 = 0.25;
  // y: (0.2 + 3 * 0.4) / 4 = 0.35, (0.5 + 3 * 0.9) / 4 = 0.8, (0.45 + 3 * 0.65) / 4 = 0.6.
  const std::vector<double> want = {0.75, 0.35, 0.3, 0.8, 0.25, 0.6};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(e.probs[i], want[i], 1e-15) << i;
  // Each label on its own above the threshold (not the largest one): row a "x", b "y", c "y"; none at 0.9.
  EXPECT_EQ(predicted_labels(e), (std::vector<std::string>{"x", "y", "y"}));
  PredictionTable strict = e;
  strict.threshold = 0.7;
  EXPECT_EQ(predicted_labels(strict), (std::vector<std::string>{"x", "y", ""}));
  strict.threshold = 0.2;
  EXPECT_EQ(predicted_labels(strict), (std::vector<std::string>{"x,y", "x,y", "x,y"}));
}

TEST(Ensemble, RegressionMeansTheValuesWithTheirSpread) {
  const PredictionTable u = regression({1, 2, 3}), v = regression({3, 2, 0});
  const PredictionTable e = ensemble_predictions({u, v}, {}, EnsembleMethod::MEAN, {"u", "v"});
  EXPECT_EQ(e.problem, ProblemType::REGRESSION);
  EXPECT_EQ(e.values, (std::vector<double>{2, 2, 1.5}));
  EXPECT_EQ(e.spread, (std::vector<double>{1, 0, 1.5}));  // half the distance of two members
  EXPECT_EQ(predicted_labels(e), (std::vector<std::string>{"2", "2", "1.5"}));
  // Weighted 1 : 3: mean (1 + 9) / 4 = 2.5, spread sqrt((1.5^2 + 3 * 0.5^2) / 4) = sqrt(0.75).
  const PredictionTable w = ensemble_predictions({u, v}, {1, 3}, EnsembleMethod::MEAN, {"u", "v"});
  EXPECT_DOUBLE_EQ(w.values[0], 2.5);
  EXPECT_DOUBLE_EQ(w.spread[0], std::sqrt(0.75));
}

TEST(Ensemble, RankAndMixedProblemTypesAreErrors) {
  auto error_of = [](const std::vector<PredictionTable>& t, EnsembleMethod m) -> std::string {
    try {
      ensemble_predictions(t, {}, m, {"first", "second"});
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  const PredictionTable r = regression({1, 2, 3}), m = multi({0.9, 0.2, 0.6, 0.5, 0.1, 0.45});
  EXPECT_NE(error_of({r, r}, EnsembleMethod::RANK).find("--method rank: first holds regression"),
            std::string::npos);
  EXPECT_NE(error_of({m, m}, EnsembleMethod::RANK).find("--method rank: first holds multi-label"),
            std::string::npos);
  EXPECT_NE(
      error_of({m, r}, EnsembleMethod::MEAN).find("second holds regression predictions, first multi-label"),
      std::string::npos);
  const PredictionTable s = table({"x", "y"}, {0.9, 0.1, 0.4, 0.6, 0.2, 0.8});
  EXPECT_NE(
      error_of({s, m}, EnsembleMethod::MEAN).find("second holds multi-label predictions, first single-label"),
      std::string::npos);
}

TEST(Ensemble, MultiLabelAndRegressionFilesRoundTrip) {
  const fs::path dir = fs::temp_directory_path() / ("bertfit-ensemble-pt-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  // Multi-label: predict --all_probs's columns (no probability column), the label set above the threshold.
  const PredictionTable m = multi({0.9, 0.2, 0.6, 0.7, 0.1, 0.3}, 0.5);
  write_prediction_file((dir / "m.tsv").string(), m);
  EXPECT_EQ(
      slurp(dir / "m.tsv"),
      "id\tlabel\tp_x\tp_y\na\tx\t0.900000\t0.200000\nb\tx,y\t0.600000\t0.700000\nc\t\t0.100000\t0.300000\n");
  const PredictionTable mr = read_prediction_file((dir / "m.tsv").string());
  EXPECT_EQ(mr.problem, ProblemType::MULTI_LABEL);
  EXPECT_EQ(mr.labels, m.labels);
  EXPECT_EQ(mr.probs, m.probs);
  // Regression: id, label = the value (predict's %.6g), and an ensemble's std.
  PredictionTable r =
      ensemble_predictions({regression({1, 2, 3.25}), regression({3, 2, 0})}, {}, EnsembleMethod::MEAN, {});
  write_prediction_file((dir / "r.tsv").string(), r);
  EXPECT_EQ(slurp(dir / "r.tsv"), "id\tlabel\tstd\na\t2\t1\nb\t2\t0\nc\t1.625\t1.625\n");
  const PredictionTable rr = read_prediction_file((dir / "r.tsv").string());
  EXPECT_EQ(rr.problem, ProblemType::REGRESSION);
  EXPECT_EQ(rr.values, r.values);
  EXPECT_EQ(rr.spread, r.spread);
  EXPECT_TRUE(rr.labels.empty());
  write_prediction_file((dir / "plain.tsv").string(), regression({0.5, -1, 2}));
  EXPECT_EQ(slurp(dir / "plain.tsv"), "id\tlabel\na\t0.5\nb\t-1\nc\t2\n");  // predict's own layout
  // Bad files name the file and line.
  auto error_of = [&](const std::string& text) -> std::string {
    std::ofstream(dir / "bad.tsv") << text;
    try {
      read_prediction_file((dir / "bad.tsv").string());
    } catch (const FormatError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of("id\tlabel\na\t1.5\nb\tpos\n").find("bad.tsv:3: label = 'pos' is not a number"),
            std::string::npos);
  EXPECT_NE(error_of("id\tlabel\tp_x\na\tx\t1.5\n").find("bad.tsv:2: p_x = '1.5' is not a probability"),
            std::string::npos);
  EXPECT_NE(error_of("id\tlabel\tprobability\na\tx\t0.9\n").find("bad.tsv:1: a single-label file needs p_"),
            std::string::npos);
  EXPECT_NE(error_of("id\tlabel\tstd\na\t1\t-2\n").find("bad.tsv:2: std = '-2'"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace bertfit
