// End-to-end proofs that the fine-tuning options do what they say (issue: fine-tuning, point 7), on synthetic
// tasks generated here with a tiny BERT initialised from scratch (truncation and chunk pooling learning what
// they should: finetune_learning_slow_test.cpp):
//  - gradient accumulation over uneven micro-batches gives the large batch's loss and gradients;
//  - layer-wise learning rates are lr * xi^(L - depth), the head has its own rate;
//  - resuming from a checkpoint gives bitwise the same final weights as the uninterrupted run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "core/rng.h"
#include "finetune_test_util.h"
#include "train/batching.h"
#include "train/classifier.h"
#include "train/finetune.h"
#include "train/model_factory.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/training_loop.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

using namespace finetune_test;

TEST_F(Finetune, AccumulationEqualsTheLargeBatch) {
  write_data(root_ / "acc.tsv", 29, 20, 5, 5);
  FinetuneArgs a = args("unused");
  const Tokenizer tok = Tokenizer::from_directory(model_);
  data::DatasetSpec spec;
  spec.id_column = "id";
  const Dataset ds = data::read_dataset((root_ / "acc.tsv").string(), spec);
  const LabelMap labels = LabelMap::from_dataset(ds);
  EncodeOptions enc;
  enc.max_seq_length = 32;
  const auto ex = encode_examples(tok, ds, &labels, enc, 1);
  std::vector<int64_t> all(ex.size());
  std::iota(all.begin(), all.end(), 0);
  // Uneven micro-batches (10 + 7 + 8 + 4): averaging per-micro-batch means would weight them wrongly
  // (transformers#34191); normalising by the step's label count does not.
  const std::vector<std::vector<int64_t>> micro = {{all.begin(), all.begin() + 10},
                                                   {all.begin() + 10, all.begin() + 17},
                                                   {all.begin() + 17, all.begin() + 25},
                                                   {all.begin() + 25, all.end()}};
  auto run = [&](const std::vector<std::vector<int64_t>>& batches, std::vector<float>* grads) {
    ModelConfig c = read_config_json(model_ + "/config.json");
    c.id2label = labels.id2label();
    c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0;  // dropout off: the same function both ways
    BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION);
    m.init_weights(3);
    m.reserve(29, 32);
    Optimizer opt(m, OptimizerOptions{});
    double norm = 0;
    const float loss = accumulate_and_step(m, opt, ex, batches, tok.pad_id(), 0.0, 1.0, 0, &norm);
    grads->assign(m.grads(), m.grads() + m.buffer_floats());
    return loss;
  };
  std::vector<float> g_big, g_acc;
  const float l_big = run({all}, &g_big), l_acc = run(micro, &g_acc);
  // fp32 sums in another order: the loss agrees to a few ulps of ~0.7, the gradients to 1e-5 of their norm.
  EXPECT_NEAR(l_big, l_acc, 1e-6);
  double e = 0, r = 0;
  for (size_t i = 0; i < g_big.size(); ++i) {
    e += (double(g_big[i]) - g_acc[i]) * (double(g_big[i]) - g_acc[i]);
    r += double(g_big[i]) * g_big[i];
  }
  EXPECT_LT(std::sqrt(e / r), 1e-5);
}

TEST_F(Finetune, LayerwiseLearningRates) {
  ModelConfig c = read_config_json(model_ + "/config.json");
  c.num_hidden_layers = 4;
  c.id2label = {"a", "b"};
  BertModel m(c, HeadKind::SEQUENCE_CLASSIFICATION);
  OptimizerOptions o;
  o.learning_rate = 2e-5;
  o.layerwise_lr_decay = 0.95;
  o.head_learning_rate = 1e-4;
  o.weight_decay = 0.01;
  const Optimizer opt(m, o);
  for (const ParamEntry& e : m.table().entries()) {
    const ParamGroup* g = nullptr;
    for (const ParamGroup& x : opt.groups())
      if (e.offset >= x.offset && e.offset + e.numel <= x.offset + x.size) g = &x;
    ASSERT_NE(g, nullptr) << e.name;
    const double expect = e.depth > 4 ? 1e-4 : 2e-5 * std::pow(0.95, 4 - e.depth);
    EXPECT_NEAR(g->lr, expect, expect * 1e-6) << e.name;  // float storage of the rate: 1e-6 relative
    EXPECT_EQ(g->weight_decay, e.no_decay ? 0.0f : 0.01f) << e.name;
  }
  // Spot checks by name: the top layer gets lr, the embeddings xi^L * lr.
  EXPECT_EQ(m.table().at("bert.encoder.layer.3.output.dense.weight").depth, 4);
  EXPECT_EQ(m.table().at("bert.embeddings.word_embeddings.weight").depth, 0);
}

TEST_F(Finetune, EarlyStoppingAndCheckpointRotation) {
  // Head-only truncation cannot see the label (third word from the end of 60): accuracy stalls, so with
  // patience 2 the run stops long before max_steps; rotation keeps the best and the newest checkpoint only.
  write_data(root_ / "es_train.tsv", 320, 60, 57, 8);
  write_data(root_ / "es_dev.tsv", 64, 60, 57, 9);
  FinetuneArgs a = args("early-stop");
  a.train_file = (root_ / "es_train.tsv").string();
  a.validation_file = (root_ / "es_dev.tsv").string();
  a.truncation = "head";
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 2;
  a.max_steps = 200;
  a.early_stopping_patience = 2;
  a.save_total_limit = 1;
  a.metric_for_best_model = ClassificationMetric::ACCURACY;
  const FinetuneResult r = finetune(a);
  EXPECT_LT(r.global_step, 200);
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(a.output_dir))
    if (e.path().filename().string().rfind("checkpoint-", 0) == 0) kept.push_back(e.path().string());
  EXPECT_LE(kept.size(), 2u);
  EXPECT_TRUE(fs::is_directory(r.best_checkpoint)) << "the best checkpoint was deleted";
  EXPECT_TRUE(fs::is_directory(a.output_dir + "/checkpoint-" + std::to_string(r.global_step)))
      << "the newest checkpoint was deleted";
}

TEST_F(Finetune, ResumeGivesTheSameWeights) {
  write_data(root_ / "res_train.tsv", 200, 30, 25, 6);
  write_data(root_ / "res_dev.tsv", 40, 30, 25, 7);
  FinetuneArgs a = args("resume-full");
  a.train_file = (root_ / "res_train.tsv").string();
  a.validation_file = (root_ / "res_dev.tsv").string();
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 5;
  a.max_steps = 17;  // 7 steps per epoch: the checkpoint at step 10 is mid-epoch
  a.save_total_limit = 0;
  a.load_best_model_at_end = false;
  a.gradient_accumulation_steps = 2;
  a.per_device_train_batch_size = 16;
  finetune(a);
  FinetuneArgs b = a;
  b.output_dir = (root_ / "resume-part").string();
  b.resume_from_checkpoint = a.output_dir + "/checkpoint-10";
  finetune(b);
  const std::string wa = bytes(a.output_dir + "/model.safetensors"),
                    wb = bytes(b.output_dir + "/model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == wb) << "resumed run's final weights differ from the uninterrupted run's";
  // And the checkpoint really was mid-way (weights at step 10 differ from the final ones).
  EXPECT_FALSE(bytes(a.output_dir + "/checkpoint-10/model.safetensors") == wa);
}

// Records what the library tells its user (progress.h's sink), instead of printing it.
class RecordingSink : public LogSink {
 public:
  void message(const std::string& text) override { messages.push_back(text); }
  void progress(const std::string& text, bool milestone) override {
    if (milestone) milestones.push_back(text);
  }
  void progress_end() override {}
  bool said(const std::string& part) const {
    for (const auto& m : messages)
      if (m.find(part) != std::string::npos) return true;
    return false;
  }
  std::vector<std::string> messages, milestones;
};

// Installs a RecordingSink for the lifetime of this object.
struct ScopedRecording {
  std::shared_ptr<RecordingSink> sink = std::make_shared<RecordingSink>();
  std::shared_ptr<LogSink> previous = set_log_sink(sink);
  ~ScopedRecording() { set_log_sink(previous); }
};

TEST(FileReadProgress, ShowsMiBWithRateAndEtaAndEndsWithALine) {
  // Issue 17 item 5: reading a large data file shows progress; a small one shows nothing.
  ScopedRecording rec;
  const int64_t total = (int64_t{5} << 20) + 7;  // 5 MiB and a bit: 6 MiB when rounded up
  auto show = file_read_progress("big.tsv", /*min_bytes=*/0);
  for (int64_t done = int64_t{1} << 20; done < total; done += int64_t{1} << 20) show(done, total);
  show(total, total);
  ASSERT_FALSE(rec.sink->milestones.empty());
  EXPECT_EQ(rec.sink->milestones.back().rfind("read big.tsv 6/6 [100%]", 0), 0u)
      << rec.sink->milestones.back();
  EXPECT_NE(rec.sink->milestones.back().find("MiB/s"), std::string::npos);
  EXPECT_NE(rec.sink->milestones.back().find("ETA"), std::string::npos);
  EXPECT_TRUE(rec.sink->said("read big.tsv done in"));

  ScopedRecording quiet;
  auto small = file_read_progress("small.tsv");  // the default threshold: 32 MiB
  small(int64_t{1} << 20, total);
  small(total, total);
  EXPECT_TRUE(quiet.sink->milestones.empty());
  EXPECT_TRUE(quiet.sink->messages.empty());
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

TEST_F(Finetune, AResumedRunReportsTheWholeRun) {
  // Issue 11: after a resume, train_loss covered only the resumed part, the rates counted steps the process
  // did not run, and the "newly initialised classifier" warning came again (the head is the checkpoint's).
  write_data(root_ / "train.tsv", 200, 30, 25, 6);
  FinetuneArgs a = args("full");
  a.train_file = (root_ / "train.tsv").string();
  a.eval_strategy = IntervalStrategy::NO;
  a.save_strategy = IntervalStrategy::STEPS;  // checkpoints without evaluation
  a.save_steps = 4;
  a.save_total_limit = 0;
  a.max_steps = 10;
  a.logging_steps = 3;
  a.per_device_train_batch_size = 16;
  FinetuneResult full;
  {
    ScopedRecording rec;
    full = finetune(a);
    EXPECT_TRUE(rec.sink->said("newly initialised")) << "the first run must warn about the new head";
  }
  for (int step : {4, 8}) EXPECT_TRUE(fs::is_directory(a.output_dir + "/checkpoint-" + std::to_string(step)));
  // The last step too, though not a multiple of save_steps (HF's Trainer saves it), and trainer_state.json
  // names the interval used.
  EXPECT_TRUE(fs::is_directory(a.output_dir + "/checkpoint-10"));
  EXPECT_EQ(read_json(a.output_dir + "/trainer_state.json")["save_steps"], 4);
  FinetuneArgs b = a;
  b.output_dir = (root_ / "resumed").string();
  fs::create_directories(b.output_dir);
  fs::copy(a.output_dir + "/checkpoint-4", b.output_dir + "/checkpoint-4", fs::copy_options::recursive);
  b.resume_from_checkpoint = "latest";
  ScopedRecording rec;
  const FinetuneResult resumed = finetune(b);
  EXPECT_FALSE(rec.sink->said("newly initialised")) << "warned again on resume";
  // The same steps with the same losses (resume is bitwise), summed in the same order: equal doubles.
  EXPECT_EQ(resumed.train_loss, full.train_loss);
  const nlohmann::json history = read_json(b.output_dir + "/trainer_state.json")["log_history"];
  const nlohmann::json& summary = history.back();
  EXPECT_EQ(summary["train_loss"].get<double>(), full.train_loss);
  // Rates over what this process ran: 6 steps of 16 examples (13 batches per epoch of 200: none short here).
  // Both rates are count / the logged runtime, so their product with it gives the counts back to a few ulps.
  const double runtime = summary["train_runtime"].get<double>();
  EXPECT_NEAR(summary["train_steps_per_second"].get<double>() * runtime, 6.0, 1e-6);
  EXPECT_NEAR(summary["train_samples_per_second"].get<double>() * runtime, 6.0 * 16, 1e-6);
  // The logging windows continue across the resume: the entries at steps 6 and 9 equal the full run's.
  const nlohmann::json full_history = read_json(a.output_dir + "/trainer_state.json")["log_history"];
  auto loss_at = [](const nlohmann::json& h, int64_t step) {
    for (const auto& e : h)
      if (e.contains("loss") && e["step"] == step) return e["loss"].get<double>();
    return -1.0;
  };
  for (int step : {6, 9}) {
    EXPECT_GT(loss_at(full_history, step), 0) << step;
    EXPECT_EQ(loss_at(history, step), loss_at(full_history, step)) << step;
  }
}

TEST_F(Finetune, TheConsoleShowsTheLoggedWindowMean) {
  // Issue 11: the console showed the last step's loss, trainer_state.json the mean of the logging window.
  write_data(root_ / "train.tsv", 160, 30, 25, 6);
  FinetuneArgs a = args("console");
  a.train_file = (root_ / "train.tsv").string();
  a.eval_strategy = IntervalStrategy::NO;
  a.max_steps = 8;
  a.logging_steps = 4;
  a.per_device_train_batch_size = 16;
  ScopedRecording rec;
  finetune(a);
  const nlohmann::json history = read_json(a.output_dir + "/trainer_state.json")["log_history"];
  int checked = 0;
  for (const auto& e : history) {
    if (!e.contains("loss")) continue;
    char want[64];
    std::snprintf(want, sizeof want, "train %lld/8 ", static_cast<long long>(e["step"].get<int64_t>()));
    char loss[32];
    std::snprintf(loss, sizeof loss, " loss %.4f ", e["loss"].get<double>());
    bool found = false;
    for (const auto& line : rec.sink->milestones)
      if (line.rfind(want, 0) == 0) found = line.find(loss) != std::string::npos;
    EXPECT_TRUE(found) << "no console line " << want << "with" << loss;
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

// Records every optimizer's group rates the loop steps with, and counts the steps.
struct RateRecorder : StepHook {
  void after_optimizer_step(StepContext& ctx) override {
    ++steps;
    groups = ctx.optimizer.groups();
  }
  int steps = 0;
  std::vector<ParamGroup> groups;
};

TEST_F(Finetune, LayerwiseDecayAndHeadRateReachTheOptimizer) {
  // Deleting the wiring of --layerwise_lr_decay or --head_learning_rate in finetune() fails here.
  write_data(root_ / "train.tsv", 64, 20, 5, 6);
  FinetuneArgs a = args("lr-wiring");
  a.train_file = (root_ / "train.tsv").string();
  a.eval_strategy = IntervalStrategy::NO;
  a.max_steps = 1;
  a.layerwise_lr_decay = 0.5;
  a.head_learning_rate = 7e-3;
  auto recorder = std::make_shared<RateRecorder>();
  LoopHooks hooks;
  hooks.step_hooks.push_back(recorder);
  finetune(a, hooks);
  ASSERT_EQ(recorder->steps, 1);
  const ModelConfig c = read_config_json(model_ + "/config.json");
  const int L = static_cast<int>(c.num_hidden_layers);
  OptimizerOptions o;
  o.learning_rate = a.learning_rate;
  o.layerwise_lr_decay = a.layerwise_lr_decay;
  o.head_learning_rate = a.head_learning_rate;
  std::set<double> rates;
  for (const ParamGroup& g : recorder->groups) rates.insert(g.lr);
  // Every depth's rate is there: embeddings lr * 0.5^L, ..., the top layer lr, the head 7e-3 (float storage
  // of a rate: 1e-6 relative).
  for (int depth = 0; depth <= L + 1; ++depth) {
    const double want = layerwise_lr(o, depth, L);
    bool found = false;
    for (double r : rates) found = found || std::abs(r - want) <= want * 1e-6;
    EXPECT_TRUE(found) << "depth " << depth << ": no group with lr " << want;
  }
}

TEST_F(Finetune, TheGradientHookRunsBeforeClippingAndTheOptimizer) {
  // The seam of data-parallel training: a hook that zeroes the gradients (an all-reduce that returned
  // zeros) must leave the weights untouched (AdamW with zero moments and no weight decay moves nothing) and
  // the logged gradient norm 0.
  write_data(root_ / "train.tsv", 64, 20, 5, 6);
  FinetuneArgs a = args("grad-hook");
  a.train_file = (root_ / "train.tsv").string();
  a.eval_strategy = IntervalStrategy::NO;
  a.max_steps = 2;
  a.logging_steps = 1;
  a.save_strategy = IntervalStrategy::STEPS;
  a.save_steps = 1;
  a.save_total_limit = 0;
  int64_t calls = 0;
  LoopHooks hooks;
  hooks.gradient_hook = [&](float* g, int64_t n) {
    ++calls;
    std::fill(g, g + n, 0.0f);
  };
  std::vector<nlohmann::json> logged;
  hooks.log_history_sink = [&](const nlohmann::json& e) { logged.push_back(e); };
  finetune(a, hooks);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(bytes(a.output_dir + "/checkpoint-1/model.safetensors"),
            bytes(a.output_dir + "/checkpoint-2/model.safetensors"));
  // The log sink saw every entry trainer_state.json holds, in order.
  EXPECT_EQ(nlohmann::json(logged), read_json(a.output_dir + "/trainer_state.json")["log_history"]);
  ASSERT_GE(logged.size(), 2u);
  EXPECT_EQ(logged[0]["grad_norm"].get<double>(), 0.0);
}

TEST_F(Finetune, AnOutputDirThatCannotBeADirectoryIsAnErrorNamingIt) {
  write_data(root_ / "train.tsv", 16, 10, 5, 6);
  FinetuneArgs a = args("unused");
  a.train_file = (root_ / "train.tsv").string();
  a.output_dir = (root_ / "train.tsv").string();  // a file
  try {
    finetune(a);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(a.output_dir + " exists and is not a directory"), std::string::npos)
        << e.what();
  }
  a.output_dir = (root_ / "train.tsv" / "out").string();  // below a file: cannot be created
  try {
    finetune(a);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(a.output_dir + ": cannot create"), std::string::npos) << e.what();
  }
}

TEST_F(Finetune, DoPredictLabelsTheTestFileAsPredictWould) {
  // HF run_classification's one run: train, evaluate, predict. The predictions are the output model's: the
  // same labels as `bertfit predict` (load_classifier + classify) gives for that file.
  write_data(root_ / "train.tsv", 96, 20, 5, 6);
  write_data(root_ / "test.tsv", 30, 20, 5, 11);
  FinetuneArgs a = args("predict");
  a.train_file = (root_ / "train.tsv").string();
  a.max_steps = 6;
  a.do_train = a.do_eval = a.do_predict = true;
  a.test_file = (root_ / "test.tsv").string();
  a.max_predict_samples = 25;
  const FinetuneResult r = finetune(a);
  ASSERT_EQ(r.predictions_file, a.output_dir + "/predict_results.txt");
  ASSERT_EQ(r.submission_file, a.output_dir + "/submission.csv");
  auto lines = [](const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  };
  const auto predictions = lines(r.predictions_file), submission = lines(r.submission_file);
  ASSERT_EQ(predictions.size(), 26u);  // header + max_predict_samples
  EXPECT_EQ(predictions[0], "index\tprediction");
  ASSERT_EQ(submission.size(), 26u);
  EXPECT_EQ(submission[0], "id,label");
  // The same subset and labels through the evaluate / predict path.
  data::DatasetSpec spec;
  spec.id_column = "id";
  spec.label_column = "";
  Dataset test = data::read_dataset(a.test_file, spec);
  Classifier c = load_classifier(a.output_dir);
  const auto ex = encode_for(c, test, 1);
  const EvalOutput e = classify(c, ex, 8, "predict");
  std::map<std::string, std::string> want;
  for (size_t i = 0; i < ex.size(); ++i) want[test.examples[i].id] = c.labels.label(e.predictions[i]);
  for (size_t i = 1; i < submission.size(); ++i) {
    const size_t comma = submission[i].find(',');
    const std::string id = submission[i].substr(0, comma), label = submission[i].substr(comma + 1);
    ASSERT_TRUE(want.count(id)) << id;
    EXPECT_EQ(label, want[id]) << id;
    EXPECT_EQ(predictions[i], std::to_string(i - 1) + "\t" + label);
    // --max_predict_samples takes the first rows (HF): predict_results.txt's index is the row in the file.
    EXPECT_EQ(id, test.examples[i - 1].id) << i;
  }
}

TEST(FinetuneArgs, TheBestModelMetricDefaultsByProblemType) {
  FinetuneArgs a;
  EXPECT_EQ(a.best_metric(), ClassificationMetric::ACCURACY);  // the paper's measure
  a.problem_type = "regression";
  EXPECT_EQ(a.best_metric(), ClassificationMetric::LOSS);  // HF's default, as for multi-label
  EXPECT_FALSE(a.greater_is_better());
  a.problem_type = "multi_label_classification";
  EXPECT_EQ(a.best_metric(), ClassificationMetric::LOSS);
  a.metric_for_best_model = ClassificationMetric::MICRO_F1;  // given: kept
  EXPECT_EQ(a.best_metric(), ClassificationMetric::MICRO_F1);
  nlohmann::ordered_json j;
  a.own_fields_to_json(&j);
  EXPECT_EQ(j.at("metric_for_best_model"), "micro_f1");
}

TEST_F(Finetune, StagesRunAsGiven) {
  // HF's --do_train / --do_eval / --do_predict: when any is given, exactly those stages run. --do_train alone
  // writes no eval_results.json; --do_eval / --do_predict without --do_train use the given fine-tuned model
  // and give what the training run's final evaluation and prediction gave.
  write_data(root_ / "train.tsv", 96, 20, 5, 6);
  write_data(root_ / "dev.tsv", 40, 20, 5, 8);
  write_data(root_ / "test.tsv", 30, 20, 5, 11);
  FinetuneArgs a = args("stages_train");
  a.train_file = (root_ / "train.tsv").string();
  a.validation_file = (root_ / "dev.tsv").string();
  a.max_steps = 4;
  a.do_train = true;
  FinetuneResult r = finetune(a);
  EXPECT_FALSE(fs::exists(a.output_dir + "/eval_results.json"));
  EXPECT_EQ(r.global_step, 4);

  FinetuneArgs both = a;  // the same run with the final evaluation and prediction
  both.output_dir = (root_ / "stages_all").string();
  both.do_eval = both.do_predict = true;
  both.test_file = (root_ / "test.tsv").string();
  const FinetuneResult all = finetune(both);
  ASSERT_TRUE(fs::exists(both.output_dir + "/eval_results.json"));

  FinetuneArgs only = a;  // evaluate and predict with the trained model, no training
  only.do_train = false;
  only.do_eval = only.do_predict = true;
  only.train_file.clear();
  only.model_name_or_path = both.output_dir;
  only.test_file = both.test_file;
  only.output_dir = (root_ / "stages_eval").string();
  const FinetuneResult e = finetune(only);
  EXPECT_EQ(e.global_step, 0);
  EXPECT_FALSE(fs::exists(only.output_dir + "/model.safetensors"));
  EXPECT_EQ(e.final_eval.predictions, all.final_eval.predictions);
  EXPECT_DOUBLE_EQ(e.final_eval.metrics.accuracy, all.final_eval.metrics.accuracy);
  std::ifstream j(only.output_dir + "/eval_results.json");
  const auto got = nlohmann::json::parse(j);
  EXPECT_DOUBLE_EQ(got.at("eval_accuracy").get<double>(), all.final_eval.metrics.accuracy);
  EXPECT_FALSE(got.contains("epoch"));
  auto read = [](const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(read(only.output_dir + "/predict_results.txt"), read(both.output_dir + "/predict_results.txt"));

  FinetuneArgs bad = only;  // --do_eval alone needs held-out data
  bad.validation_file.clear();
  bad.output_dir = (root_ / "stages_bad").string();
  EXPECT_THROW(finetune(bad), ConfigError);
}

TEST_F(Finetune, ClassifierLoadsWhatTrainingWroteAndChecksItsInput) {
  // The evaluate / predict path (train/classifier): the settings training recorded come back, the
  // probabilities do not depend on the batch size (our GEMM's contract: an example's bits do not depend on
  // its batch position or the batch's padding), and bad input is an error naming what is wrong.
  write_data(root_ / "train.tsv", 96, 40, 37, 6);
  write_data(root_ / "dev.tsv", 30, 40, 37, 8);
  FinetuneArgs a = args("classifier");
  a.train_file = (root_ / "train.tsv").string();
  a.truncation = "tail";
  a.max_steps = 3;
  finetune(a);
  Classifier c = load_classifier(a.output_dir);
  EXPECT_EQ(c.settings.truncation, "tail");
  EXPECT_EQ(c.settings.max_seq_length, 32);
  EXPECT_EQ(c.labels.id2label(), (std::vector<std::string>{"neg", "pos"}));
  data::DatasetSpec spec;
  spec.id_column = "id";
  const Dataset dev = data::read_dataset((root_ / "dev.tsv").string(), spec);
  const auto ex = encode_for(c, dev, 1);
  ASSERT_EQ(ex.size(), 30u);
  EXPECT_EQ(ex[0].seqs[0].ids.size(), 32u);  // 40 words cut to the length limit
  const EvalOutput one = classify(c, ex, 1, "eval"), many = classify(c, ex, 7, "eval");
  EXPECT_EQ(one.probs, many.probs);
  EXPECT_EQ(one.predictions, many.predictions);

  std::ofstream(root_ / "bad_label.tsv") << "id\ttext\tlabel\nx\tw1 w2\tneutral\n";
  try {
    encode_for(c, data::read_dataset((root_ / "bad_label.tsv").string(), spec), 1);
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("bad_label.tsv:2: unknown label 'neutral'"), std::string::npos)
        << e.what();
  }
  try {
    load_classifier(model_);  // a masked-LM directory: no classifier head
    ADD_FAILURE() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("not a fine-tuned classifier"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bertfit
