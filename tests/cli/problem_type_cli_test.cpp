// Through the built binary (issue 15, items 5 and 8):
//  - `bertfit evaluate` and `bertfit predict` on multi-label and regression models (a tiny BERT fine-tuned
//    here with finetune()): evaluate reports finetune's own metrics for the same model and data (its
//    eval_results.json is the oracle: the same weights, batches and metric code reached through another
//    path: the directory loaded back, the labels parsed by encode_for); predict writes the labels above the
//    threshold saved with the model (or --multi_label_threshold) and the values, the same as finetune
//    --do_predict did, as do finetune's --do_eval / --do_predict without training; serve still refuses
//    them by name;
//  - `bertfit finetune --k_folds 2` from the command line: the fold directories, out-of-fold file and the
//    summary line;
//  - `bertfit ensemble` of multi-label and regression models and files: a model directory with its own
//    predict file gives predict's labels / values; mean probabilities cut at the threshold (the option, or
//    the one saved with the models), mean values with their spread, the submission as predict writes it,
//    and --method rank refused for both.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/rng.h"
#include "tiny_word_model.h"
#include "train/finetune.h"
#include "train/model_factory.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

const std::string kBinary = std::string(BERTFIT_BINARY_DIR) + "/src/cli/bertfit";
using test::word;
constexpr int kWords = 40;

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Rows of 8 random words. Multi-label: "a" when "alpha" is in the text, "b" when "beta" is (a list, [] for
// none). Regression: the label is the number of "alpha" words (0-3). Single-label: pos / neg by alpha / beta
// at position 3.
enum class Task { MULTI, REGRESSION, SINGLE };
void write_data(const fs::path& path, int n, uint64_t seed, Task task) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext\tlabel\n";
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> words;
    for (int t = 0; t < 8; ++t) words.push_back(word(static_cast<int>(rng.below(kWords))));
    std::string label;
    if (task == Task::SINGLE) {
      const bool pos = rng.below(2) == 1;
      words[3] = pos ? "alpha" : "beta";
      label = pos ? "pos" : "neg";
    } else if (task == Task::REGRESSION) {
      const int alphas = static_cast<int>(rng.below(4));
      for (int k = 0; k < alphas; ++k) words[static_cast<size_t>(2 * k + 1)] = "alpha";
      label = std::to_string(alphas);
    } else {
      const bool a = rng.below(2) == 1, b = rng.below(2) == 1;
      if (a) words[rng.below(4)] = "alpha";
      if (b) words[4 + rng.below(4)] = "beta";
      label = a && b ? "[\"a\", \"b\"]" : a ? "[\"a\"]" : b ? "[\"b\"]" : "[]";
    }
    f << "r" << i << "\t";
    for (size_t t = 0; t < words.size(); ++t) f << (t ? " " : "") << words[t];
    f << "\t" << label << "\n";
  }
}

// Runs the binary with these arguments; returns the exit status, output in `log`.
int run(const std::vector<std::string>& args, const fs::path& log) {
  std::string cmd = "timeout 120 " + kBinary;
  for (const auto& a : args) cmd += " '" + a + "'";
  const int rc = std::system((cmd + " > '" + log.string() + "' 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The rows of a TSV (header dropped), split into fields.
std::vector<std::vector<std::string>> tsv_rows(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    rows.push_back(std::move(f));
  }
  return rows;
}

class ProblemTypeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(BERTFIT_BINARY_DIR) / ("test-ptcli-" + std::to_string(::getpid())) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    test::WordModelShape shape;
    shape.words = kWords;
    shape.max_positions = 16;
    shape.hidden = 64;
    shape.intermediate = 64;
    shape.layers = 2;
    shape.heads = 2;
    test::make_word_model(root_, shape);
  }
  void TearDown() override { fs::remove_all(root_.parent_path()); }
  // Fine-tunes on train.tsv with dev.tsv, and labels test.tsv (finetune --do_predict: the oracle).
  FinetuneArgs args(const std::string& problem) {
    FinetuneArgs a;
    a.model_name_or_path = (root_ / "model").string();
    a.output_dir = (root_ / "ft").string();
    a.train_file = (root_ / "train.tsv").string();
    a.validation_file = (root_ / "dev.tsv").string();
    a.test_file = (root_ / "test.tsv").string();
    a.do_train = a.do_eval = a.do_predict = true;
    a.problem_type = problem;
    a.max_seq_length = 16;
    a.learning_rate = 3e-3;
    a.per_device_train_batch_size = 8;
    a.per_device_eval_batch_size = 32;  // evaluate's default --batch_size: the same batches
    a.num_train_epochs = 25;  // 300 steps: the 2-layer model learns both labels (1 layer learns only "a")
    a.eval_strategy = IntervalStrategy::NO;
    a.load_best_model_at_end = false;
    a.logging_steps = 1000;
    a.threads = 2;
    a.id_column = "id";
    return a;
  }
  fs::path root_;
};

TEST_F(ProblemTypeCli, MultiLabelEvaluateAndPredictAsFinetune) {
  write_data(root_ / "train.tsv", 96, 1, Task::MULTI);
  write_data(root_ / "dev.tsv", 24, 2, Task::MULTI);
  write_data(root_ / "test.tsv", 24, 3, Task::MULTI);
  FinetuneArgs a = args("multi_label_classification");
  a.metric_for_best_model = ClassificationMetric::MICRO_F1;
  a.multi_label_threshold = 0.4;  // saved with the model; predict and evaluate must use it
  finetune(a);
  const fs::path ft = a.output_dir;
  EXPECT_EQ(read_json(ft / "config.json").at("bertfit").at("multi_label_threshold"), 0.4);

  ASSERT_EQ(run({"evaluate", "--model", ft.string(), "--file", (root_ / "dev.tsv").string(), "--output",
                 (root_ / "eval.json").string(), "--threads", "2"},
                root_ / "evaluate.log"),
            0)
      << slurp(root_ / "evaluate.log");
  const auto want = read_json(ft / "eval_results.json"), got = read_json(root_ / "eval.json");
  EXPECT_EQ(got.at("problem_type"), "multi_label_classification");
  EXPECT_EQ(got.at("examples"), 24);
  EXPECT_EQ(got.at("threshold"), 0.4);
  // The same model, batches and metric code: the same numbers (JSON doubles round-trip exactly). The loss
  // is a float sum of the same batches.
  for (const char* m : {"exact_match", "micro_f1", "macro_f1"})
    EXPECT_EQ(got.at(m).get<double>(), want.at(std::string("eval_") + m).get<double>()) << m;
  EXPECT_NEAR(got.at("loss").get<double>(), want.at("eval_loss").get<double>(), 1e-6);
  // Learnt (measured: 1.0; 12 epochs learn only "a", 0.85): a model that predicts every set alike fails.
  EXPECT_GT(got.at("micro_f1").get<double>(), 0.95);
  EXPECT_NE(slurp(root_ / "evaluate.log").find("exact match"), std::string::npos);

  ASSERT_EQ(run({"predict", "--model", ft.string(), "--file", (root_ / "test.tsv").string(), "--output",
                 (root_ / "pred.tsv").string(), "--all_probs", "--submission", (root_ / "sub.csv").string(),
                 "--metrics", (root_ / "m.json").string(), "--label_column", "label", "--threads", "2"},
                root_ / "predict.log"),
            0)
      << slurp(root_ / "predict.log");
  // The label sets: finetune --do_predict's, and exactly the labels whose probability is above 0.4.
  const auto rows = tsv_rows(root_ / "pred.tsv"), oracle = tsv_rows(ft / "predict_results.txt");
  ASSERT_EQ(rows.size(), 24u);
  ASSERT_EQ(oracle.size(), 24u);
  EXPECT_EQ(slurp(root_ / "pred.tsv").substr(0, 17), "id\tlabel\tp_a\tp_b\n");
  int nonempty = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 4u);
    EXPECT_EQ(rows[i][0], "r" + std::to_string(i));
    EXPECT_EQ(rows[i][1], oracle[i][1]) << "row " << i;
    std::string want_set;
    if (std::stod(rows[i][2]) > 0.4) want_set = "a";
    if (std::stod(rows[i][3]) > 0.4) want_set += want_set.empty() ? "b" : ",b";
    EXPECT_EQ(rows[i][1], want_set) << "row " << i;
    nonempty += !rows[i][1].empty();
  }
  EXPECT_GT(nonempty, 0);
  const auto m = read_json(root_ / "m.json");
  EXPECT_GT(m.at("micro_f1").get<double>(), 0.9);
  EXPECT_TRUE(m.at("predicted_counts").contains("a"));
  // An ensemble of the model directory with its own prediction file: the same label sets (cut at the
  // threshold saved with the model, 0.4), in predict --all_probs's layout.
  ASSERT_EQ(run({"ensemble", "--inputs", ft.string() + "," + (root_ / "pred.tsv").string(), "--file",
                 (root_ / "test.tsv").string(), "--output", (root_ / "ens.tsv").string(), "--threads", "2"},
                root_ / "ensemble.log"),
            0)
      << slurp(root_ / "ensemble.log");
  const auto ens = tsv_rows(root_ / "ens.tsv");
  ASSERT_EQ(ens.size(), rows.size());
  EXPECT_EQ(slurp(root_ / "ens.tsv").substr(0, 17), "id\tlabel\tp_a\tp_b\n");
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(ens[i][1], rows[i][1]) << "row " << i;
    EXPECT_NEAR(std::stod(ens[i][2]), std::stod(rows[i][2]), 1e-6) << "row " << i;
  }
  // The submission holds the same label sets, a set of two quoted (it holds the CSV's comma).
  std::string sub = "paperid,categories\n";
  for (const auto& r : rows)
    sub += r[0] + "," + (r[1].find(',') == std::string::npos ? r[1] : '"' + r[1] + '"') + "\n";
  EXPECT_EQ(slurp(root_ / "sub.csv"), sub);

  // --multi_label_threshold overrides the saved one: a threshold of 0.999 predicts (almost) nothing.
  ASSERT_EQ(run({"predict", "--model", ft.string(), "--file", (root_ / "test.tsv").string(), "--output",
                 (root_ / "pred_hi.tsv").string(), "--all_probs", "--multi_label_threshold", "0.999",
                 "--threads", "2"},
                root_ / "predict_hi.log"),
            0);
  for (const auto& r : tsv_rows(root_ / "pred_hi.tsv"))
    EXPECT_EQ(r[1].empty(), std::stod(r[2]) <= 0.999 && std::stod(r[3]) <= 0.999);

  // HF's stages without training (finetune --do_eval --do_predict on the fine-tuned directory) give the same
  // metrics and label sets.
  FinetuneArgs stages;
  stages.model_name_or_path = ft.string();
  stages.output_dir = (root_ / "stages").string();
  stages.validation_file = a.validation_file;
  stages.test_file = a.test_file;
  stages.id_column = "id";
  stages.do_eval = stages.do_predict = true;
  stages.per_device_eval_batch_size = 32;
  stages.threads = 2;
  finetune(stages);
  const auto again = read_json(root_ / "stages" / "eval_results.json");
  for (const char* m : {"eval_exact_match", "eval_micro_f1", "eval_macro_f1"})
    EXPECT_EQ(again.at(m).get<double>(), want.at(m).get<double>()) << m;
  EXPECT_EQ(slurp(root_ / "stages" / "predict_results.txt"), slurp(ft / "predict_results.txt"));

  // Serving takes single-label classifiers only: a clear error, exit 1.
  EXPECT_EQ(run({"serve", "--model", ft.string(), "--port", "0"}, root_ / "serve.log"), 1);
  EXPECT_NE(slurp(root_ / "serve.log").find("problem_type multi_label_classification"), std::string::npos)
      << slurp(root_ / "serve.log");
}

TEST_F(ProblemTypeCli, RegressionEvaluateAndPredictAsFinetune) {
  write_data(root_ / "train.tsv", 96, 4, Task::REGRESSION);
  write_data(root_ / "dev.tsv", 24, 5, Task::REGRESSION);
  write_data(root_ / "test.tsv", 12, 6, Task::REGRESSION);
  FinetuneArgs a = args("regression");
  a.metric_for_best_model = ClassificationMetric::PEARSON;
  finetune(a);
  const fs::path ft = a.output_dir;
  ASSERT_EQ(run({"evaluate", "--model", ft.string(), "--file", (root_ / "dev.tsv").string(), "--output",
                 (root_ / "eval.json").string(), "--threads", "2"},
                root_ / "evaluate.log"),
            0)
      << slurp(root_ / "evaluate.log");
  const auto want = read_json(ft / "eval_results.json"), got = read_json(root_ / "eval.json");
  EXPECT_EQ(got.at("problem_type"), "regression");
  for (const char* m : {"mse", "pearson", "spearman"})
    EXPECT_EQ(got.at(m).get<double>(), want.at(std::string("eval_") + m).get<double>()) << m;
  EXPECT_GT(got.at("pearson").get<double>(), 0.9);  // measured 0.999
  EXPECT_NE(slurp(root_ / "evaluate.log").find("pearson"), std::string::npos);

  ASSERT_EQ(run({"predict", "--model", ft.string(), "--file", (root_ / "test.tsv").string(), "--output",
                 (root_ / "pred.tsv").string(), "--threads", "2"},
                root_ / "predict.log"),
            0)
      << slurp(root_ / "predict.log");
  const auto rows = tsv_rows(root_ / "pred.tsv"), oracle = tsv_rows(ft / "predict_results.txt");
  ASSERT_EQ(rows.size(), 12u);
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), 2u);  // id, value
    EXPECT_EQ(rows[i][1], oracle[i][1]) << "row " << i;
  }
  // An ensemble of the model directory with its own prediction file: predict's values (mean of the same
  // value, once rounded to 6 digits) and their spread (~0).
  ASSERT_EQ(run({"ensemble", "--inputs", ft.string() + "," + (root_ / "pred.tsv").string(), "--file",
                 (root_ / "test.tsv").string(), "--output", (root_ / "ens.tsv").string(), "--submission",
                 (root_ / "ens.csv").string(), "--threads", "2"},
                root_ / "ensemble.log"),
            0)
      << slurp(root_ / "ensemble.log");
  const auto ens = tsv_rows(root_ / "ens.tsv");
  ASSERT_EQ(ens.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(ens[i].size(), 3u);  // id, value, std
    EXPECT_NEAR(std::stod(ens[i][1]), std::stod(rows[i][1]), 1e-4 * (1 + std::abs(std::stod(rows[i][1]))));
    EXPECT_LT(std::stod(ens[i][2]), 1e-4);
  }
  EXPECT_EQ(slurp(root_ / "ens.csv").substr(0, 19), "paperid,categories\n");
  // No probabilities to write: an error naming the option.
  EXPECT_EQ(run({"predict", "--model", ft.string(), "--file", (root_ / "test.tsv").string(), "--output",
                 (root_ / "p2.tsv").string(), "--all_probs"},
                root_ / "predict_probs.log"),
            1);
  EXPECT_NE(slurp(root_ / "predict_probs.log").find("--all_probs"), std::string::npos);
}

TEST_F(ProblemTypeCli, KFoldsFromTheCommandLine) {
  write_data(root_ / "train.tsv", 32, 7, Task::SINGLE);
  const std::string out = (root_ / "cv").string();
  ASSERT_EQ(run({"finetune", "--model_name_or_path", (root_ / "model").string(), "--train-file",
                 (root_ / "train.tsv").string(), "--output_dir", out, "--k-folds", "2", "--max_seq_length",
                 "16", "--max_steps", "2", "--threads", "2", "--eval_strategy", "no"},
                root_ / "cv.log"),
            0)
      << slurp(root_ / "cv.log");
  const std::string log = slurp(root_ / "cv.log");
  EXPECT_NE(log.find("out-of-fold: accuracy"), std::string::npos) << log;
  for (const char* f : {"/fold-0/model.safetensors", "/fold-1/model.safetensors", "/oof_predictions.tsv",
                        "/cv_results.json", "/training_args.json"})
    EXPECT_TRUE(fs::exists(out + f)) << f;
  EXPECT_EQ(tsv_rows(out + "/oof_predictions.tsv").size(), 32u);
  // bertfit report on the cross-validation directory: its two folds' runs.
  ASSERT_EQ(run({"report", out, "--output", (root_ / "cv.html").string()}, root_ / "report.log"), 0)
      << slurp(root_ / "report.log");
  EXPECT_NE(slurp(root_ / "report.log").find("(2 runs)"), std::string::npos) << slurp(root_ / "report.log");
  // A fold's training_args.json reruns that fold alone (--fold is an option).
  ASSERT_EQ(run({"finetune", "--config", out + "/fold-1/training_args.json", "--output_dir",
                 (root_ / "fold1-again").string()},
                root_ / "fold1.log"),
            0)
      << slurp(root_ / "fold1.log");
  EXPECT_EQ(slurp(root_ / "fold1-again" / "model.safetensors"), slurp(out + "/fold-1/model.safetensors"));
  // Not with a validation file: a clear error.
  EXPECT_EQ(run({"finetune", "--model_name_or_path", (root_ / "model").string(), "--train_file",
                 (root_ / "train.tsv").string(), "--validation_file", (root_ / "train.tsv").string(),
                 "--output_dir", (root_ / "bad").string(), "--k_folds", "2"},
                root_ / "bad.log"),
            1);
  EXPECT_NE(slurp(root_ / "bad.log").find("--validation_file"), std::string::npos);
}

TEST_F(ProblemTypeCli, EnsembleOfMultiLabelAndRegressionFiles) {
  const fs::path d = root_;
  std::ofstream(d / "r1.tsv") << "id\tlabel\nr0\t1\nr1\t2\n";
  std::ofstream(d / "r2.tsv") << "id\tlabel\nr0\t3\nr1\t2.5\n";
  ASSERT_EQ(run({"ensemble", "--inputs", (d / "r1.tsv").string() + "," + (d / "r2.tsv").string(), "--output",
                 (d / "r.tsv").string(), "--submission", (d / "r.csv").string()},
                d / "r.log"),
            0)
      << slurp(d / "r.log");
  EXPECT_EQ(slurp(d / "r.tsv"), "id\tlabel\tstd\nr0\t2\t1\nr1\t2.25\t0.25\n");
  EXPECT_EQ(slurp(d / "r.csv"), "paperid,categories\nr0,2\nr1,2.25\n");
  EXPECT_EQ(run({"ensemble", "--inputs", (d / "r1.tsv").string() + "," + (d / "r2.tsv").string(), "--method",
                 "rank", "--output", (d / "rank.tsv").string()},
                d / "rank.log"),
            1);
  EXPECT_NE(slurp(d / "rank.log").find("--method rank"), std::string::npos) << slurp(d / "rank.log");
  EXPECT_EQ(run({"ensemble", "--inputs", (d / "r1.tsv").string() + "," + (d / "r2.tsv").string(),
                 "--multi_label_threshold", "0.3", "--output", (d / "t.tsv").string()},
                d / "t.log"),
            1);

  // Multi-label: each label's mean probability (r0: a 0.8, b 0.4; r1: a 0.3, b 0.6), above the threshold.
  std::ofstream(d / "m1.tsv") << "id\tlabel\tp_a\tp_b\nr0\ta\t0.9\t0.3\nr1\tb\t0.2\t0.8\n";
  std::ofstream(d / "m2.tsv") << "id\tlabel\tp_a\tp_b\nr0\ta\t0.7\t0.5\nr1\t\t0.4\t0.4\n";
  const std::string inputs = (d / "m1.tsv").string() + "," + (d / "m2.tsv").string();
  ASSERT_EQ(run({"ensemble", "--inputs", inputs, "--output", (d / "m.tsv").string(), "--submission",
                 (d / "m.csv").string()},
                d / "m.log"),
            0)
      << slurp(d / "m.log");
  EXPECT_EQ(slurp(d / "m.tsv"),
            "id\tlabel\tp_a\tp_b\nr0\ta\t0.800000\t0.400000\nr1\tb\t0.300000\t0.600000\n");
  EXPECT_EQ(slurp(d / "m.csv"), "paperid,categories\nr0,a\nr1,b\n");
  ASSERT_EQ(run({"ensemble", "--inputs", inputs, "--multi_label_threshold", "0.35", "--submission",
                 (d / "m35.csv").string()},
                d / "m35.log"),
            0)
      << slurp(d / "m35.log");
  EXPECT_EQ(slurp(d / "m35.csv"), "paperid,categories\nr0,\"a,b\"\nr1,b\n");
  EXPECT_EQ(run({"ensemble", "--inputs", inputs, "--method", "rank", "--output", (d / "mr.tsv").string()},
                d / "mr.log"),
            1);
  // Mixing a multi-label file with a regression one names both.
  EXPECT_EQ(run({"ensemble", "--inputs", (d / "m1.tsv").string() + "," + (d / "r1.tsv").string(), "--output",
                 (d / "x.tsv").string()},
                d / "x.log"),
            1);
  EXPECT_NE(slurp(d / "x.log").find("regression"), std::string::npos) << slurp(d / "x.log");
}

}  // namespace
}  // namespace bertfit
