// The competition tricks through `finetune` (issue 15), on the synthetic task of finetune_test.cpp (the label
// word at a fixed position of random words, a tiny BERT from scratch):
//  - every trick at once, with layer features, chunk pooling, layer-wise rates and accumulation, learns the
//    task and is
//    saved in training_args.json;
//  - the weights' average is what is evaluated and saved, while training runs on the raw weights (a run with
//    EMA trains exactly as one without: its checkpoint keeps those raw weights beside the average);
//  - resuming a run with EMA, PGD and R-Drop from a mid-epoch checkpoint ends bitwise equal to the
//    uninterrupted run;
//  - bad settings are errors naming the option.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "bertfit/io/tensor.h"
#include "core/rng.h"
#include "tiny_word_model.h"
#include "train/checkpoints.h"
#include "train/finetune.h"
#include "train/model_factory.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

using test::word;
constexpr int kWords = 100;  // the model's filler words (tiny_word_model.h's default shape)

// n rows of `length` random words, the label word at `position`; a share `pos_share` of them positive
// (imbalanced classes for the class weights).
void write_data(const fs::path& path, int n, int length, int position, uint64_t seed,
                double pos_share = 0.5) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const bool pos = rng.uniform() < pos_share;
    f << "d" << i << "\t";
    for (int t = 0; t < length; ++t) {
      if (t) f << ' ';
      f << (t == position ? (pos ? "alpha" : "beta") : word(static_cast<int>(rng.below(kWords))));
    }
    f << "\t" << (pos ? "pos" : "neg") << "\n";
  }
}

std::string bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class TrickFinetune : public ::testing::Test {
 protected:
  // A directory per test and process: other worktrees run the same tests at the same time.
  void SetUp() override {
    root_ = fs::path(BERTFIT_BINARY_DIR) / ("test-tricks-" + std::to_string(::getpid())) /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    model_ = test::make_word_model(root_);
  }
  void TearDown() override { fs::remove_all(root_.parent_path()); }
  FinetuneArgs args(const std::string& name) {
    FinetuneArgs a;
    a.model_name_or_path = model_;
    a.output_dir = (root_ / name).string();
    a.overwrite_output_dir = true;
    a.max_seq_length = 32;
    a.learning_rate = 1e-3;  // a tiny model from scratch (as finetune_test.cpp)
    a.per_device_train_batch_size = 16;
    a.logging_steps = 1000;
    a.threads = 2;
    return a;
  }
  fs::path root_;
  std::string model_;
};

TEST_F(TrickFinetune, AllTricksTogetherLearnAndAreSaved) {
  // 50 words = 2 chunks of 30 (chunks of 32 positions), the label word in the second: only the chunk
  // pooling sees it.
  write_data(root_ / "train.tsv", 320, 50, 40, 1, 0.3);
  write_data(root_ / "dev.tsv", 80, 50, 40, 2, 0.3);
  FinetuneArgs a = args("all");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.num_train_epochs = 6;
  a.features = "all-concat";
  a.chunk_pooling = "mean";
  a.max_chunks = 2;
  a.layerwise_lr_decay = 0.9;
  a.gradient_accumulation_steps = 2;
  a.classifier_dropout = 0.2;
  a.tricks.class_weights = "auto";
  a.tricks.focal_gamma = 1.0;
  a.tricks.rdrop_alpha = 0.5;
  a.tricks.multi_sample_dropout = 3;
  a.tricks.adversarial = "fgm";
  // epsilon is in the embeddings' own units: this tiny model's whole word-embedding matrix has a norm of ~1.7
  // (N(0, 0.02) x 107 x 64), so the default 1.0 (sized for BERT-base's matrix) would overwrite the label
  // words' rows; measured: 0.5 keeps it at the majority class with chunks, 0.05 learns.
  a.tricks.adv_epsilon = 0.05;
  a.tricks.ema_decay = 0.9;
  const FinetuneResult r = finetune(a);
  // The plain run of finetune_test.cpp learns this task completely; the tricks must not break learning.
  EXPECT_GT(r.final_eval.metrics.accuracy, 0.9);
  std::ifstream in(a.output_dir + "/training_args.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j.at("class_weights"), "auto");
  EXPECT_EQ(j.at("focal_gamma"), 1.0);
  EXPECT_EQ(j.at("rdrop_alpha"), 0.5);
  EXPECT_EQ(j.at("multi_sample_dropout"), 3);
  EXPECT_EQ(j.at("adversarial"), "fgm");
  EXPECT_EQ(j.at("adv_epsilon"), 0.05);
  EXPECT_EQ(j.at("ema_decay"), 0.9);
}

// The checkpoint's flat raw weights (ema_state.safetensors) against a model directory's weights.
void expect_state_equals_model(const std::string& state_file, const std::string& model_dir) {
  ModelConfig c = read_config_json(model_dir + "/config.json");
  BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION);
  load_weights_into(m, model_dir);
  const SafetensorsFile f = SafetensorsFile::open(state_file);
  const TensorRef* w = f.find("weights");
  ASSERT_NE(w, nullptr);
  const std::vector<float> raw = to_f32(*w);
  ASSERT_EQ(raw.size(), m.buffer_floats());
  for (const ParamEntry& e : m.table().entries())
    EXPECT_TRUE(std::equal(raw.begin() + e.offset, raw.begin() + e.offset + e.numel, m.params() + e.offset))
        << e.name;
}

TEST_F(TrickFinetune, EmaEvaluatesAndSavesTheAverageWhileTrainingTheRawWeights) {
  write_data(root_ / "train.tsv", 160, 30, 25, 3);
  write_data(root_ / "dev.tsv", 40, 30, 25, 4);
  FinetuneArgs a = args("plain");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.max_steps = 12;
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 6;
  a.load_best_model_at_end = false;
  FinetuneArgs b = a;
  b.output_dir = (root_ / "ema").string();
  b.tricks.ema_decay = 0.8;
  finetune(a);
  finetune(b);
  // Training is the same: the EMA run's raw weights at step 6 are the plain run's.
  expect_state_equals_model(b.output_dir + "/checkpoint-6/ema_state.safetensors",
                            a.output_dir + "/checkpoint-6");
  // What is saved and evaluated is not the raw weights.
  EXPECT_NE(bytes(a.output_dir + "/checkpoint-6/model.safetensors"),
            bytes(b.output_dir + "/checkpoint-6/model.safetensors"));
  EXPECT_NE(bytes(a.output_dir + "/model.safetensors"), bytes(b.output_dir + "/model.safetensors"));
  std::ifstream ia(a.output_dir + "/eval_results.json"), ib(b.output_dir + "/eval_results.json");
  EXPECT_NE(nlohmann::json::parse(ia).at("eval_loss"), nlohmann::json::parse(ib).at("eval_loss"));
}

TEST_F(TrickFinetune, ResumeWithEmaPgdAndRDropIsBitwise) {
  write_data(root_ / "train.tsv", 200, 30, 25, 6);
  write_data(root_ / "dev.tsv", 40, 30, 25, 7);
  FinetuneArgs a = args("full");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 5;
  a.max_steps = 13;  // 7 steps per epoch: the checkpoint at step 10 is mid-epoch
  a.save_total_limit = 0;
  a.load_best_model_at_end = false;
  a.gradient_accumulation_steps = 2;
  a.classifier_dropout = 0.2;
  a.tricks.ema_decay = 0.9;
  a.tricks.adversarial = "pgd";
  a.tricks.adv_steps = 2;
  a.tricks.rdrop_alpha = 1.0;
  a.tricks.multi_sample_dropout = 2;
  finetune(a);
  FinetuneArgs b = a;
  b.output_dir = (root_ / "part").string();
  b.resume_from_checkpoint = a.output_dir + "/checkpoint-10";
  finetune(b);
  const std::string wa = bytes(a.output_dir + "/model.safetensors"),
                    wb = bytes(b.output_dir + "/model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == wb) << "the resumed run's averaged weights differ from the uninterrupted run's";
  EXPECT_FALSE(bytes(a.output_dir + "/checkpoint-10/model.safetensors") == wa);
}

// Multi-label: label "a" when the text holds "alpha", "b" when it holds "beta" (both, one or none), the
// labels as comma-separated text in TSV. Regression: the target is the number of "alpha" words.
void write_multi_label(const fs::path& path, int n, uint64_t seed, bool regression) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const int alphas = static_cast<int>(rng.below(regression ? 4 : 2));
    const bool beta = rng.below(2) == 1;
    std::vector<std::string> words;
    for (int t = 0; t < 12; ++t) words.push_back(word(static_cast<int>(rng.below(kWords))));
    for (int k = 0; k < alphas; ++k) words[1 + rng.below(10)] = "alpha";
    if (beta && !regression) words[rng.below(12)] = "beta";
    int count = 0;
    for (const auto& w : words) count += w == "alpha";
    bool has_beta = false;
    for (const auto& w : words) has_beta = has_beta || w == "beta";
    f << "d" << i << "\t";
    for (size_t t = 0; t < words.size(); ++t) f << (t ? " " : "") << words[t];
    if (regression) {
      f << "\t" << count << "\n";
    } else {
      std::string l = count > 0 ? "a" : "";
      if (has_beta) l += l.empty() ? "b" : ",b";
      f << "\t" << (l.empty() ? "[]" : l) << "\n";
    }
  }
}

TEST_F(TrickFinetune, MultiLabelClassificationAsHuggingFace) {
  write_multi_label(root_ / "train.tsv", 400, 11, false);
  write_multi_label(root_ / "dev.tsv", 100, 12, false);
  write_multi_label(root_ / "test.tsv", 20, 13, false);
  FinetuneArgs a = args("multi");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.problem_type = "multi_label_classification";
  a.metric_for_best_model = ClassificationMetric::MICRO_F1;
  a.num_train_epochs = 5;
  a.tricks.multi_sample_dropout = 2;  // composes
  a.tricks.ema_decay = 0.5;
  a.do_train = a.do_eval = a.do_predict = true;  // HF stages: train, evaluate and predict
  a.test_file = (root_ / "test.tsv").string();
  a.id_column = "id";
  const FinetuneResult r = finetune(a);
  EXPECT_GT(r.final_eval.multi_label.micro_f1, 0.95);
  EXPECT_GT(r.final_eval.multi_label.exact_match, 0.9);
  std::ifstream in(a.output_dir + "/config.json");
  const auto c = nlohmann::json::parse(in);
  EXPECT_EQ(c.at("problem_type"), "multi_label_classification");
  EXPECT_EQ(c.at("id2label"), (nlohmann::json{{"0", "a"}, {"1", "b"}}));
  // Predictions are label sets: the test file's own labels, since the model has learned the task.
  std::ifstream truth(root_ / "test.tsv"), pred(a.output_dir + "/predict_results.txt");
  std::string t, p;
  std::getline(truth, t);
  std::getline(pred, p);
  int right = 0, n = 0;
  while (std::getline(truth, t) && std::getline(pred, p)) {
    const std::string want = t.substr(t.rfind('\t') + 1), got = p.substr(p.find('\t') + 1);
    right += (want == "[]" ? "" : want) == got;
    ++n;
  }
  EXPECT_EQ(n, 20);
  EXPECT_GE(right, 18);
}

TEST_F(TrickFinetune, RegressionAsHuggingFace) {
  write_multi_label(root_ / "train.tsv", 400, 21, true);
  write_multi_label(root_ / "dev.tsv", 100, 22, true);
  FinetuneArgs a = args("regression");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.problem_type = "regression";
  a.metric_for_best_model = ClassificationMetric::PEARSON;
  a.num_train_epochs = 5;
  const FinetuneResult r = finetune(a);
  EXPECT_GT(r.final_eval.regression.pearson, 0.9);
  EXPECT_GT(r.final_eval.regression.spearman, 0.85);
  std::ifstream in(a.output_dir + "/config.json");
  const auto c = nlohmann::json::parse(in);
  EXPECT_EQ(c.at("problem_type"), "regression");
  EXPECT_EQ(c.at("id2label").size(), 1u);
  // A regression label that is not a number names the file and line.
  std::ofstream(root_ / "bad.tsv") << "id\ttext\tlabel\nd0\tw1 w2\t1.5\nd1\tw3\thigh\n";
  a.train_file = (root_ / "bad.tsv").string();
  a.validation_file.clear();
  a.validation_split = 0;
  try {
    finetune(a);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:3"), std::string::npos) << e.what();
  }
}

TEST_F(TrickFinetune, BadSettingsAreErrorsNamingTheOption) {
  write_data(root_ / "train.tsv", 40, 10, 5, 8);
  auto error_of = [&](const std::function<void(FinetuneArgs&)>& set) -> std::string {
    FinetuneArgs a = args("bad");
    a.train_file = (root_ / "train.tsv").string();
    a.max_steps = 1;
    set(a);
    try {
      finetune(a);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of([](FinetuneArgs& a) { a.tricks.class_weights = "1,x"; }).find("--class_weights"),
            std::string::npos);
  const std::string count = error_of([](FinetuneArgs& a) { a.tricks.class_weights = "1,2,3"; });
  EXPECT_NE(count.find("3 weights for 2 labels (neg, pos)"), std::string::npos) << count;
  EXPECT_NE(error_of([](FinetuneArgs& a) {
              a.tricks.focal_gamma = 2;
              a.label_smoothing_factor = 0.1;
            }).find("--focal_gamma"),
            std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) { a.tricks.adversarial = "fsgm"; }).find("--adversarial"),
            std::string::npos);
  EXPECT_NE(error_of([](FinetuneArgs& a) { a.tricks.ema_decay = 1.0; }).find("--ema_decay"),
            std::string::npos);
  EXPECT_NE(
      error_of([](FinetuneArgs& a) { a.tricks.multi_sample_dropout = 0; }).find("--multi_sample_dropout"),
      std::string::npos);
}

}  // namespace
}  // namespace bertfit
