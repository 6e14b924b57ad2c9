// Multi-task fine-tuning (issue 15 item 7; train/multitask.h):
//  - the sampler: every example once per epoch, one task per batch, each task's share of the batches equal to
//    its share of the data (and, over seeds, at every point of the epoch), a pure function of (seed, epoch);
//  - the --task options: defaults, per-task overrides, every malformed entry an error naming the option;
//  - end to end on a tiny BERT from scratch: two tasks whose labels hang on different words (and differ in
//    number: 2 and 3 classes) both learn far above chance through one encoder, each task's output directory
//    is a plain classifier of that task (load_classifier predicts what the run's final evaluation did), the
//    metrics carry the task's name, and a run resumed from a mid-run checkpoint ends bitwise equal;
//  - per-task problem types: a regression task and a multi-label task train through one encoder, each
//    reports its own kind of metrics (and the means over the tasks that report them), and each task's
//    directory says its problem_type and num_labels in config.json and reloads to predict what the run did.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "core/rng.h"
#include "model/bert_model.h"
#include "tiny_word_model.h"
#include "train/classifier.h"
#include "train/model_factory.h"
#include "train/multitask.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

// ---- The sampler ----

std::vector<EncodedExample> examples_of_lengths(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<EncodedExample> v(static_cast<size_t>(n));
  for (auto& e : v) {
    e.seqs.resize(1);
    e.seqs[0].ids.assign(2 + rng.below(30), 5);
    e.seqs[0].types.assign(e.seqs[0].ids.size(), 0);
    e.label = 0;
  }
  return v;
}

TEST(MultitaskSampler, EveryExampleOnceOneTaskPerBatchInProportion) {
  // Tasks of 300, 100 and 23 examples: 30, 10 and 3 batches of 10 (the last one of task 2 holds 3).
  const std::vector<int64_t> begin{0, 300, 400, 423};
  const auto ex = examples_of_lengths(423, 1);
  for (bool grouped : {false, true}) {
    std::vector<int64_t> batch_task;
    const auto plan = plan_multitask_batches(ex, begin, 10, grouped, 42, 3, &batch_task);
    ASSERT_EQ(plan.size(), 43u);
    ASSERT_EQ(batch_task.size(), plan.size());
    std::vector<int64_t> batches_of(3, 0), seen(423, 0);
    for (size_t b = 0; b < plan.size(); ++b) {
      const int64_t t = batch_task[b];
      ++batches_of[t];
      for (int64_t i : plan[b]) {
        EXPECT_TRUE(i >= begin[t] && i < begin[t + 1]) << "batch " << b << " mixes tasks";
        ++seen[i];
      }
    }
    EXPECT_EQ(batches_of, (std::vector<int64_t>{30, 10, 3}));
    for (int64_t i = 0; i < 423; ++i) EXPECT_EQ(seen[i], 1) << "example " << i;
  }
}

TEST(MultitaskSampler, DeterministicBySeedAndEpoch) {
  const std::vector<int64_t> begin{0, 120, 200};
  const auto ex = examples_of_lengths(200, 2);
  const auto a = plan_multitask_batches(ex, begin, 8, true, 7, 1);
  EXPECT_EQ(a, plan_multitask_batches(ex, begin, 8, true, 7, 1)) << "the same (seed, epoch), another plan";
  EXPECT_NE(a, plan_multitask_batches(ex, begin, 8, true, 8, 1)) << "another seed, the same plan";
  EXPECT_NE(a, plan_multitask_batches(ex, begin, 8, true, 7, 2)) << "another epoch, the same plan";
}

TEST(MultitaskSampler, TasksAreDrawnInProportionThroughoutTheEpoch) {
  // Task 0 has 30 of the 42 batches. Were the order not a uniform shuffle (e.g. the tasks one after the
  // other, or alternating), the first half of an epoch would not hold task 0's share. Over 400 seeds, the
  // mean number of task-0 batches among the first 21 is 21 * 30/42 = 15; a single epoch's count is
  // hypergeometric with variance 21 (30/42)(12/42)(21/41) = 2.20, so the mean of 400 has standard deviation
  // sqrt(2.20 / 400) = 0.074; 0.4 is 5.4 of them (a uniform shuffle fails this once in ~10^7), while tasks in
  // sequence would give 21 and strict alternation ~10.5.
  const std::vector<int64_t> begin{0, 300, 420};
  const auto ex = examples_of_lengths(420, 3);
  double sum = 0, sum_last = 0;
  const int kSeeds = 400;
  for (int s = 0; s < kSeeds; ++s) {
    std::vector<int64_t> task;
    plan_multitask_batches(ex, begin, 10, false, static_cast<uint64_t>(s), 0, &task);
    ASSERT_EQ(task.size(), 42u);
    for (int b = 0; b < 21; ++b) sum += task[b] == 0;
    for (int b = 21; b < 42; ++b) sum_last += task[b] == 0;
  }
  EXPECT_NEAR(sum / kSeeds, 15.0, 0.4);
  EXPECT_NEAR(sum_last / kSeeds, 15.0, 0.4);
}

// ---- The model's extra heads ----

// Head k of a model with two heads computes exactly what a one-head model of head k's labels computes (same
// weights): logits, loss and every gradient, bit for bit (the same operations on the same values; only the
// buffer offsets differ, and no kernel depends on them), and the other head's gradients stay zero. BERT's
// pooler is shared; RoBERTa's dense + out_proj are per head.
TEST(ExtraHeads, EachHeadIsAOneHeadModelAndGetsOnlyItsGradients) {
  for (ModelFamily family : {ModelFamily::BERT, ModelFamily::ROBERTA}) {
    ModelConfig c = family == ModelFamily::ROBERTA ? roberta_defaults() : ModelConfig{};
    c.vocab_size = 40;
    c.hidden_size = 16;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 2;
    c.intermediate_size = 20;
    c.max_position_embeddings = 24;
    c.id2label = {"x", "y"};
    const std::vector<std::string> other{"p", "q", "r"};
    HeadOptions opts;
    opts.extra_heads = {{"multitask.b.", other}};
    BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION, opts);
    m.init_weights(3);
    ASSERT_EQ(m.num_heads(), 2);
    const int64_t B = 3, T = 6;
    std::vector<int32_t> ids(B * T);
    std::vector<uint8_t> mask(B * T, 1);
    Rng rng(9);
    for (auto& id : ids) id = static_cast<int32_t>(3 + rng.below(36));
    mask[T - 1] = mask[T - 2] = 0;
    const std::vector<int32_t> labels{1, 0, 1};
    const Batch batch{B, T, ids.data(), nullptr, mask.data(), labels.data()};
    m.reserve(B, T);
    m.dropout_seed = 5;
    for (int64_t k = 0; k < 2; ++k) {
      ModelConfig ck = c;
      ck.id2label = k == 0 ? c.id2label : other;
      BertModel one(ck, HeadKind::SEQUENCE_CLASSIFICATION);
      const auto own = m.head_param_names(k);
      for (const ParamEntry& e : one.table().entries()) {
        const std::string name =
            k == 0 || e.name.rfind("classifier.", 0) != 0 ? e.name : "multitask.b." + e.name;
        ASSERT_EQ(m.table().at(name).numel, e.numel) << name;
        std::copy(m.param(name), m.param(name) + e.numel, one.param(e.name));
      }
      one.reserve(B, T);
      one.dropout_seed = 5;
      m.select_head(k);
      EXPECT_EQ(m.config().id2label, ck.id2label);
      m.zero_grad();
      one.zero_grad();
      const float loss = m.forward(batch, /*training=*/true, 7), loss_one = one.forward(batch, true, 7);
      EXPECT_EQ(loss, loss_one);
      const int64_t NL = static_cast<int64_t>(ck.id2label.size());
      EXPECT_TRUE(std::equal(m.logits(), m.logits() + B * NL, one.logits()));
      m.backward();
      one.backward();
      const std::vector<std::string> others = m.head_param_names(1 - k);
      for (const ParamEntry& e : m.table().entries()) {
        const bool other_head = std::find(others.begin(), others.end(), e.name) != others.end();
        const float* g = m.grad(e.name);
        if (other_head) {
          EXPECT_TRUE(std::all_of(g, g + e.numel, [](float x) { return x == 0.0f; })) << e.name;
          continue;
        }
        const std::string name = e.name.rfind("multitask.b.", 0) == 0 ? e.name.substr(12) : e.name;
        EXPECT_TRUE(std::equal(g, g + e.numel, one.grad(name)))
            << family_display_name(family) << " head " << k << ": " << e.name;
      }
      EXPECT_FALSE(own.empty());
    }
  }
}

// ---- The options ----

MultitaskArgs two_tasks() {
  MultitaskArgs m;
  m.task = {"sent=s.tsv", "topic=t.tsv"};
  return m;
}

TEST(MultitaskArgs, DefaultsAndPerTaskSettings) {
  MultitaskArgs m = two_tasks();
  m.task_validation_file = {"topic=t_dev.tsv"};
  m.task_label_column = {"topic=category"};
  m.task_text_columns = {"topic=title+body"};
  m.task_text_pair_column = {"sent=hypothesis"};
  m.task_problem_type = {"topic=multi_label_classification"};
  const auto t = m.resolve("label", {"text"}, "", "regression");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].name, "sent");
  EXPECT_EQ(t[0].train_file, "s.tsv");
  EXPECT_EQ(t[0].validation_file, "");
  EXPECT_EQ(t[0].label_column, "label");
  EXPECT_EQ(t[0].text_columns, std::vector<std::string>{"text"});
  EXPECT_EQ(t[0].text_pair_column, "hypothesis");
  EXPECT_EQ(t[1].validation_file, "t_dev.tsv");
  EXPECT_EQ(t[1].label_column, "category");
  EXPECT_EQ(t[1].text_columns, (std::vector<std::string>{"title", "body"}));
  EXPECT_EQ(t[1].text_pair_column, "");
  EXPECT_EQ(t[0].problem_type, "regression");  // --problem_type, the default
  EXPECT_EQ(t[1].problem_type, "multi_label_classification");
  // training_args.json keeps each list as it was given.
  nlohmann::ordered_json j;
  m.to_json(&j);
  EXPECT_EQ(j["task"].get<std::vector<std::string>>(), m.task);
  EXPECT_EQ(j["task_text_columns"].get<std::vector<std::string>>(), m.task_text_columns);
}

TEST(MultitaskArgs, MalformedEntriesNameTheOption) {
  auto error_of = [](const MultitaskArgs& m) {
    try {
      m.resolve("label", {"text"}, "");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  MultitaskArgs m;
  m.task = {"sent=s.tsv"};
  EXPECT_NE(error_of(m).find("at least two tasks"), std::string::npos) << error_of(m);
  m.task = {"sent=s.tsv", "s.tsv"};
  EXPECT_NE(error_of(m).find("--task: \"s.tsv\" is not NAME=VALUE"), std::string::npos) << error_of(m);
  m.task = {"sent=s.tsv", "sent=t.tsv"};
  EXPECT_NE(error_of(m).find("given twice"), std::string::npos) << error_of(m);
  for (const char* bad : {"a/b=t.tsv", "checkpoint-5=t.tsv", "runs=t.tsv", "..=t.tsv"}) {
    m.task = {"sent=s.tsv", bad};
    EXPECT_NE(error_of(m).find("task name"), std::string::npos) << bad << ": " << error_of(m);
  }
  m = two_tasks();
  m.task_label_column = {"other=x"};
  EXPECT_NE(error_of(m).find("--task_label_column: \"other\" is not a task"), std::string::npos)
      << error_of(m);
  m = two_tasks();
  m.task_text_columns = {"sent=a+"};
  EXPECT_NE(error_of(m).find("empty column"), std::string::npos) << error_of(m);
}

TEST(MultitaskArgs, FinetuneRefusesWhatAMultitaskRunDoesNotTake) {
  FinetuneArgs a;
  a.model_name_or_path = "m";
  a.output_dir = "o";
  a.multitask = two_tasks();
  EXPECT_NO_THROW(a.validate());
  FinetuneArgs b = a;
  b.train_file = "x.tsv";
  EXPECT_THROW(b.validate(), ConfigError);
  b = a;
  b.do_predict = true;
  b.test_file = "t.tsv";
  EXPECT_THROW(b.validate(), ConfigError);
  b = a;
  b.problem_type = "regression";  // the default of every task: fine, with a regression metric
  b.metric_for_best_model = ClassificationMetric::MSE;
  EXPECT_NO_THROW(b.validate());
  b = a;
  b.multitask.task_problem_type = {"topic=regression"};
  b.metric_for_best_model = ClassificationMetric::PEARSON;  // the topic task reports it
  EXPECT_NO_THROW(b.validate());
  b.metric_for_best_model = ClassificationMetric::EXACT_MATCH;  // no task is multi-label
  EXPECT_THROW(b.validate(), ConfigError);
  b.metric_for_best_model = ClassificationMetric::ACCURACY;  // the sent task's
  b.tricks.focal_gamma = 2;                                  // a single-label loss on every head
  EXPECT_THROW(b.validate(), ConfigError);
  b.tricks.focal_gamma = 0;
  b.multitask.task_problem_type = {"topic=ordinal"};
  EXPECT_THROW(b.validate(), ConfigError);
  b = a;
  b.multitask.task.clear();
  b.train_file = "x.tsv";
  b.multitask.task_label_column = {"sent=y"};
  EXPECT_THROW(b.validate(), ConfigError) << "per-task settings without tasks";
}

// ---- End to end ----

using test::word;
constexpr int kWords = 60;

// Two vocabularies of label words: the sentiment task's (alpha / beta) and the topic task's (gamma / delta /
// omega).
const std::vector<std::string> kSentWords{"alpha", "beta"}, kTopicWords{"gamma", "delta", "omega"};

std::string make_model(const fs::path& root) {
  test::WordModelShape shape;
  shape.words = kWords;
  shape.label_words = kSentWords;
  shape.label_words.insert(shape.label_words.end(), kTopicWords.begin(), kTopicWords.end());
  shape.max_positions = 32;
  shape.hidden = 32;
  shape.intermediate = 64;
  return test::make_word_model(root, shape);
}

// n rows of 12 random words, one of them (at a random place) the label word of the task's own vocabulary;
// the label in column `label_column`. (With both tasks' words in every text, the tiny model of hidden size
// 32 learns the topic task first and the sentiment task only after ~12 epochs at hidden size 64: a real
// interference, too slow for CI.)
void write_task(const fs::path& path, int n, bool sentiment, const std::string& label_column, uint64_t seed) {
  Rng rng(seed);
  const std::vector<std::string>& words = sentiment ? kSentWords : kTopicWords;
  const std::vector<std::string> labels =
      sentiment ? std::vector<std::string>{"neg", "pos"} : std::vector<std::string>{"sport", "art", "tech"};
  std::ofstream f(path);
  f << "id\ttext\t" << label_column << "\n";
  for (int i = 0; i < n; ++i) {
    const size_t y = rng.below(words.size());
    const int at = static_cast<int>(rng.below(12));
    f << "d" << i << "\t";
    for (int k = 0; k < 12; ++k)
      f << (k ? " " : "") << (k == at ? words[y] : word(static_cast<int>(rng.below(kWords))));
    f << "\t" << labels[y] << "\n";
  }
}

std::string bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

class Multitask : public ::testing::Test {
 protected:
  // Unique per process: other worktrees and ctest's parallel runs use the same build tree names.
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("bertfit-multitask-" + std::to_string(getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    model_ = make_model(root_);
    write_task(root_ / "sent_train.tsv", 240, true, "label", 11);
    write_task(root_ / "sent_dev.tsv", 100, true, "label", 12);
    write_task(root_ / "topic_train.tsv", 360, false, "category", 13);
    write_task(root_ / "topic_dev.tsv", 120, false, "category", 14);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(root_);
  }
  FinetuneArgs args(const std::string& name) {
    FinetuneArgs a;
    a.model_name_or_path = model_;
    a.output_dir = (root_ / name).string();
    a.overwrite_output_dir = true;
    a.id_column = "id";
    a.max_seq_length = 16;
    a.learning_rate = 2e-3;  // a tiny model from scratch, not a pre-trained one
    a.per_device_train_batch_size = 16;
    a.per_device_eval_batch_size = 64;
    a.logging_steps = 1000;
    a.threads = 2;
    a.multitask.task = {"sent=" + (root_ / "sent_train.tsv").string(),
                        "topic=" + (root_ / "topic_train.tsv").string()};
    a.multitask.task_validation_file = {"sent=" + (root_ / "sent_dev.tsv").string(),
                                        "topic=" + (root_ / "topic_dev.tsv").string()};
    a.multitask.task_label_column = {"topic=category"};
    return a;
  }
  fs::path root_;
  std::string model_;
};

TEST_F(Multitask, BothTasksLearnAndEachDirectoryServesItsTask) {
  FinetuneArgs a = args("run");
  a.num_train_epochs = 10;
  a.eval_strategy = IntervalStrategy::EPOCH;
  a.save_total_limit = 1;
  const MultitaskResult r = finetune_multitask(a);
  ASSERT_EQ(r.tasks.size(), 2u);
  // Chance is 0.5 (sentiment) and 1/3 (topic); a head that ignored its task's words would stay there.
  EXPECT_EQ(r.tasks[0].name, "sent");
  EXPECT_GT(r.tasks[0].eval.metrics.accuracy, 0.9);
  EXPECT_EQ(r.tasks[1].name, "topic");
  EXPECT_GT(r.tasks[1].eval.metrics.accuracy, 0.9);

  // eval_results.json and the log history name each task's metrics.
  const auto results = read_json(a.output_dir + "/eval_results.json");
  EXPECT_DOUBLE_EQ(results.at("eval_sent_accuracy").get<double>(), r.tasks[0].eval.metrics.accuracy);
  EXPECT_DOUBLE_EQ(results.at("eval_topic_macro_f1").get<double>(), r.tasks[1].eval.metrics.macro.f1);
  EXPECT_DOUBLE_EQ(results.at("eval_accuracy").get<double>(),
                   (r.tasks[0].eval.metrics.accuracy + r.tasks[1].eval.metrics.accuracy) / 2);
  EXPECT_TRUE(results.contains("eval_topic_confusion_matrix"));
  const auto state = read_json(a.output_dir + "/trainer_state.json");
  int evals = 0;
  for (const auto& e : state.at("log_history"))
    if (e.contains("eval_sent_accuracy") && e.contains("eval_topic_accuracy") && e.contains("eval_sent_loss"))
      ++evals;
  EXPECT_EQ(evals, 10) << "one evaluation per epoch, each with both tasks";

  // Each task's directory is a plain classifier of that task: its labels, no other head, and it predicts
  // what the run's final evaluation did.
  const std::vector<std::pair<std::string, std::string>> dev{{"sent", "sent_dev.tsv"},
                                                             {"topic", "topic_dev.tsv"}};
  for (size_t t = 0; t < 2; ++t) {
    const std::string dir = a.output_dir + "/" + dev[t].first;
    ASSERT_EQ(r.task_dirs[t], dir);
    const ModelConfig c = read_config_json(dir + "/config.json");
    EXPECT_EQ(c.id2label, t == 0 ? (std::vector<std::string>{"neg", "pos"})
                                 : (std::vector<std::string>{"art", "sport", "tech"}));
    const Checkpoint ck = Checkpoint::open(dir);
    for (const auto& tensor : ck.tensors())
      EXPECT_EQ(tensor.name.find("multitask."), std::string::npos) << tensor.name;
    // Its training_args.json is the task's single-task run (evaluate / predict read the columns from it).
    const auto targs = read_json(dir + "/training_args.json");
    EXPECT_EQ(targs.at("label_column"), t == 0 ? "label" : "category");
    EXPECT_EQ(targs.at("train_file"), (root_ / (t == 0 ? "sent_train.tsv" : "topic_train.tsv")).string());
    EXPECT_TRUE(targs.at("task").empty());
    Classifier clf = load_classifier(dir);
    data::DatasetSpec spec;
    spec.text_columns = {"text"};
    spec.label_column = t == 0 ? "label" : "category";
    spec.id_column = "id";
    const Dataset ds = read_data_file((root_ / dev[t].second).string(), spec);
    const EvalOutput e = classify(clf, encode_for(clf, ds, 2), 64, "predict");
    EXPECT_EQ(e.predictions, r.tasks[t].eval.predictions) << dev[t].first;
  }
  // The top level is the multi-task model (every head), serving the first task.
  EXPECT_EQ(read_config_json(a.output_dir + "/config.json").id2label,
            (std::vector<std::string>{"neg", "pos"}));
}

TEST_F(Multitask, ResumeRestoresEveryHead) {
  FinetuneArgs a = args("full");
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 4;
  a.max_steps = 10;  // 15 + 23 batches of 16 an epoch, 2 per step: the checkpoint at step 4 is mid-epoch
  a.save_total_limit = 0;
  a.load_best_model_at_end = false;
  a.gradient_accumulation_steps = 2;  // a step's two micro-batches may come from different tasks
  a.tricks.ema_decay = 0.9;           // a step hook with its own state, through the resume
  a.tricks.class_weights = "auto";    // per task, from its own counts (2 and 3 weights)
  finetune_multitask(a);
  FinetuneArgs b = a;
  b.output_dir = (root_ / "part").string();
  b.resume_from_checkpoint = a.output_dir + "/checkpoint-4";
  finetune_multitask(b);
  for (const char* f : {"/model.safetensors", "/sent/model.safetensors", "/topic/model.safetensors"}) {
    const std::string wa = bytes(a.output_dir + f), wb = bytes(b.output_dir + f);
    ASSERT_FALSE(wa.empty()) << f;
    EXPECT_TRUE(wa == wb) << f << ": the resumed run's final weights differ from the uninterrupted run's";
  }
  EXPECT_FALSE(bytes(a.output_dir + "/checkpoint-4/model.safetensors") ==
               bytes(a.output_dir + "/model.safetensors"));
  EXPECT_NE(bytes(a.output_dir + "/sent/model.safetensors"),
            bytes(a.output_dir + "/topic/model.safetensors"));
}

// A regression task (the label: how many "gamma" words the text holds, 0-3) or a multi-label one ("a" when
// "alpha" is in the text's first half, "b" when "beta" is in its second half), in rows of 12 random words.
void write_mixed_task(const fs::path& path, int n, bool regression, uint64_t seed) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext\tlabel\n";
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> words;
    for (int k = 0; k < 12; ++k) words.push_back(word(static_cast<int>(rng.below(kWords))));
    std::string label;
    if (regression) {
      const int gammas = static_cast<int>(rng.below(4));
      for (int k = 0; k < gammas; ++k) words[static_cast<size_t>(3 * k + rng.below(3))] = "gamma";
      label = std::to_string(gammas);
    } else {
      const bool a = rng.below(2) == 1, b = rng.below(2) == 1;
      if (a) words[rng.below(6)] = "alpha";
      if (b) words[6 + rng.below(6)] = "beta";
      label = a && b ? "a,b" : a ? "a" : b ? "b" : "[]";
    }
    f << "d" << i << "\t";
    for (size_t k = 0; k < words.size(); ++k) f << (k ? " " : "") << words[k];
    f << "\t" << label << "\n";
  }
}

TEST_F(Multitask, RegressionAndMultiLabelTasksEachWithTheirOwnLossAndMetrics) {
  write_mixed_task(root_ / "count_train.tsv", 160, true, 21);
  write_mixed_task(root_ / "count_dev.tsv", 48, true, 22);
  write_mixed_task(root_ / "tags_train.tsv", 400, false, 23);
  write_mixed_task(root_ / "tags_dev.tsv", 48, false, 24);
  FinetuneArgs a = args("mixed");
  // Hidden size 64 (the fixture's 32 learns one of the two labels and stalls on the other for 10 epochs,
  // as it does in a single-task run).
  test::WordModelShape shape;
  shape.words = kWords;
  shape.label_words = kSentWords;
  shape.label_words.insert(shape.label_words.end(), kTopicWords.begin(), kTopicWords.end());
  shape.max_positions = 32;
  a.model_name_or_path = test::make_word_model(root_ / "wide", shape);
  a.multitask.task = {"count=" + (root_ / "count_train.tsv").string(),
                      "tags=" + (root_ / "tags_train.tsv").string()};
  a.multitask.task_validation_file = {"count=" + (root_ / "count_dev.tsv").string(),
                                      "tags=" + (root_ / "tags_dev.tsv").string()};
  a.multitask.task_label_column.clear();
  a.multitask.task_problem_type = {"count=regression", "tags=multi_label_classification"};
  a.metric_for_best_model = ClassificationMetric::PEARSON;  // the regression task's
  a.load_best_model_at_end =
      false;  // the last epoch: the best by pearson may predate the tags task's learning
  a.multi_label_threshold = 0.4;
  a.num_train_epochs = 5;
  a.eval_strategy = IntervalStrategy::EPOCH;
  a.save_total_limit = 1;
  const MultitaskResult r = finetune_multitask(a);
  ASSERT_EQ(r.tasks.size(), 2u);
  const EvalOutput &count = r.tasks[0].eval, &tags = r.tasks[1].eval;
  EXPECT_EQ(count.problem, ProblemType::REGRESSION);
  EXPECT_EQ(tags.problem, ProblemType::MULTI_LABEL);
  // Both learn through the one encoder (a head that ignored its words would stay near pearson 0 and the
  // micro-F1 of predicting every label).
  EXPECT_GT(count.regression.pearson, 0.8) << "mse " << count.regression.mse;  // measured 0.91
  EXPECT_GT(tags.multi_label.micro_f1, 0.9);  // measured 0.99; predicting every label: 0.67

  // Each task's own kind of metrics, and each metric's mean over the tasks that report it.
  const auto results = read_json(a.output_dir + "/eval_results.json");
  EXPECT_DOUBLE_EQ(results.at("eval_count_pearson").get<double>(), count.regression.pearson);
  EXPECT_DOUBLE_EQ(results.at("eval_count_mse").get<double>(), count.regression.mse);
  EXPECT_DOUBLE_EQ(results.at("eval_tags_micro_f1").get<double>(), tags.multi_label.micro_f1);
  EXPECT_DOUBLE_EQ(results.at("eval_tags_exact_match").get<double>(), tags.multi_label.exact_match);
  EXPECT_DOUBLE_EQ(results.at("eval_pearson").get<double>(), count.regression.pearson);
  EXPECT_DOUBLE_EQ(results.at("eval_micro_f1").get<double>(), tags.multi_label.micro_f1);
  EXPECT_NEAR(results.at("eval_loss").get<double>(), (count.loss + tags.loss) / 2, 1e-12);
  EXPECT_FALSE(results.contains("eval_count_accuracy"));
  EXPECT_FALSE(results.contains("eval_tags_pearson"));
  EXPECT_TRUE(results.contains("eval_tags_per_label"));

  // Each task's directory is a plain HF classifier of its problem type (config.json's problem_type and
  // num_labels, as AutoModelForSequenceClassification reads them) that predicts what the run's final
  // evaluation did.
  const std::vector<std::tuple<std::string, std::string, ProblemType, std::vector<std::string>>> dirs{
      {"count", "regression", ProblemType::REGRESSION, {"LABEL_0"}},
      {"tags", "multi_label_classification", ProblemType::MULTI_LABEL, {"a", "b"}}};
  for (size_t t = 0; t < 2; ++t) {
    const auto& [name, type, problem, id2label] = dirs[t];
    const std::string dir = a.output_dir + "/" + name;
    const auto config = read_json(dir + "/config.json");
    EXPECT_EQ(config.at("problem_type"), type) << name;
    EXPECT_EQ(read_config_json(dir + "/config.json").id2label, id2label) << name;
    EXPECT_EQ(read_json(dir + "/training_args.json").at("problem_type"), type) << name;
    Classifier clf = load_classifier(dir, /*any_problem_type=*/true);
    EXPECT_EQ(clf.problem(), problem) << name;
    EXPECT_EQ(clf.settings.multi_label_threshold, 0.4);
    data::DatasetSpec spec;
    spec.text_columns = {"text"};
    spec.label_column = "label";
    spec.id_column = "id";
    const Dataset ds = read_data_file((root_ / (name + "_dev.tsv")).string(), spec);
    const EvalOutput e = classify(clf, encode_for(clf, ds, 2), 64, "predict");
    ASSERT_EQ(e.probs.size(), r.tasks[t].eval.probs.size()) << name;
    for (size_t i = 0; i < e.probs.size(); ++i)
      EXPECT_NEAR(e.probs[i], r.tasks[t].eval.probs[i], 1e-6) << name;
  }
  // The top level is head 0's: the regression task.
  EXPECT_EQ(read_json(a.output_dir + "/config.json").at("problem_type"), "regression");
}

}  // namespace
}  // namespace bertfit
