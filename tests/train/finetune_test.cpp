// End-to-end proofs that the fine-tuning options do what they say (issue: fine-tuning, point 7), on synthetic
// tasks generated here with a tiny BERT initialised from scratch:
//  - the label is decided by a word near the END of a long text: tail and head+tail truncation learn it
//    (> 95% validation accuracy), head-only truncation cannot see it and stays near chance;
//  - the label is decided by a word in the MIDDLE chunk of a 3-chunk document: hierarchical encoding with
//    chunk pooling learns it;
//  - gradient accumulation over uneven micro-batches gives the large batch's loss and gradients;
//  - layer-wise learning rates are lr * xi^(L - depth), the head has its own rate;
//  - resuming from a checkpoint gives bitwise the same final weights as the uninterrupted run.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "bertfit/io/config_json.h"
#include "core/rng.h"
#include "train/batching.h"
#include "train/model_factory.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

constexpr int kWords = 100;

std::string word(int i) {
  return "w" + std::to_string(i);
}

// A tokenizer over w0..w99 plus the two label words, and a tiny randomly initialised BERT (as after
// pre-training from scratch: a masked-LM directory, so the classifier head is new).
std::string make_model(const fs::path& root) {
  fs::create_directories(root / "tok");
  std::ofstream v(root / "tok" / "vocab.txt");
  v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  for (int i = 0; i < kWords; ++i) v << word(i) << "\n";
  v << "alpha\nbeta\n";
  v.close();
  const Tokenizer tok = Tokenizer::from_directory((root / "tok").string());
  ModelConfig c = named_config("tiny", ModelFamily::BERT, tok, 64);
  c.hidden_size = 64;
  c.intermediate_size = 128;
  init_model_dir(c, HeadKind::MASKED_LM, tok, 1, (root / "model").string());
  return (root / "model").string();
}

// n rows of `length` random words; the label word ("alpha" = pos, "beta" = neg) sits at `position`.
void write_data(const fs::path& path, int n, int length, int position, uint64_t seed) {
  Rng rng(seed);
  std::ofstream f(path);
  f << "id\ttext\tlabel\n";
  for (int i = 0; i < n; ++i) {
    const bool pos = rng.below(2) == 1;
    f << "d" << i << "\t";
    for (int t = 0; t < length; ++t) {
      if (t) f << ' ';
      f << (t == position ? (pos ? "alpha" : "beta") : word(static_cast<int>(rng.below(kWords))));
    }
    f << "\t" << (pos ? "pos" : "neg") << "\n";
  }
}

class Finetune : public ::testing::Test {
 protected:
  // A directory per test: ctest runs each test of this file as its own process, possibly at the same time.
  void SetUp() override {
    root_ = fs::path(BERTFIT_BINARY_DIR) / "test-finetune" /
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    model_ = make_model(root_);
  }
  TrainingArgs args(const std::string& name) {
    TrainingArgs a;
    a.model_name_or_path = model_;
    a.output_dir = (root_ / name).string();
    a.overwrite_output_dir = true;
    a.id_column = "id";
    a.max_seq_length = 32;
    a.learning_rate =
        1e-3;  // a tiny model from scratch, not a pre-trained one: the paper's 2e-5 is for BERT-base
    a.per_device_train_batch_size = 32;
    a.num_train_epochs = 8;
    a.logging_steps = 1000;
    a.threads = 2;
    return a;
  }
  fs::path root_;
  std::string model_;
};

TEST_F(Finetune, TruncationDecidesWhatTheModelCanSee) {
  // 60 words, the label word third from the end; 32 positions hold 30 words.
  write_data(root_ / "end_train.tsv", 800, 60, 57, 1);
  write_data(root_ / "end_dev.tsv", 200, 60, 57, 2);
  double acc[3];
  const char* modes[3] = {"tail", "head_tail", "head"};
  for (int m = 0; m < 3; ++m) {
    TrainingArgs a = args(std::string("trunc-") + modes[m]);
    a.train_file = (root_ / "end_train.tsv").string();
    a.validation_file = (root_ / "end_dev.tsv").string();
    a.truncation = modes[m];
    a.head_length = 10;  // head_tail: the first 10 and the last 20 words
    acc[m] = finetune(a).final_eval.metrics.accuracy;
  }
  EXPECT_GT(acc[0], 0.95) << "tail";
  EXPECT_GT(acc[1], 0.95) << "head_tail";
  // Chance is 0.5; 200 balanced-ish examples: 0.65 is > 4 standard deviations (0.035) above it.
  EXPECT_LT(acc[2], 0.65) << "head";
}

TEST_F(Finetune, HierarchicalPoolingSeesTheMiddleChunk) {
  // 90 words = 3 chunks of 30 (chunks of 32 positions); the label word is in the middle of chunk 2, which
  // no truncation of 32 positions keeps.
  write_data(root_ / "mid_train.tsv", 800, 90, 45, 3);
  write_data(root_ / "mid_dev.tsv", 200, 90, 45, 4);
  for (const char* pooling : {"mean", "attention"}) {
    TrainingArgs a = args(std::string("chunks-") + pooling);
    a.train_file = (root_ / "mid_train.tsv").string();
    a.validation_file = (root_ / "mid_dev.tsv").string();
    a.chunk_pooling = pooling;
    a.max_chunks = 3;
    a.features = "cls";  // the paper: the last layer's [CLS] of each chunk
    a.per_device_train_batch_size = 16;
    a.num_train_epochs = 6;
    EXPECT_GT(finetune(a).final_eval.metrics.accuracy, 0.95) << pooling;
  }
}

TEST_F(Finetune, AccumulationEqualsTheLargeBatch) {
  write_data(root_ / "acc.tsv", 29, 20, 5, 5);
  TrainingArgs a = args("unused");
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
  TrainingArgs a = args("early-stop");
  a.train_file = (root_ / "es_train.tsv").string();
  a.validation_file = (root_ / "es_dev.tsv").string();
  a.truncation = "head";
  a.eval_strategy = "steps";
  a.eval_steps = 2;
  a.max_steps = 200;
  a.early_stopping_patience = 2;
  a.save_total_limit = 1;
  a.metric_for_best_model = "accuracy";
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
  TrainingArgs a = args("resume-full");
  a.train_file = (root_ / "res_train.tsv").string();
  a.validation_file = (root_ / "res_dev.tsv").string();
  a.eval_strategy = "steps";
  a.eval_steps = 5;
  a.max_steps = 17;  // 7 steps per epoch: the checkpoint at step 10 is mid-epoch
  a.save_total_limit = 0;
  a.load_best_model_at_end = false;
  a.gradient_accumulation_steps = 2;
  a.per_device_train_batch_size = 16;
  finetune(a);
  TrainingArgs b = a;
  b.output_dir = (root_ / "resume-part").string();
  b.resume_from_checkpoint = a.output_dir + "/checkpoint-10";
  finetune(b);
  auto bytes = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  const std::string wa = bytes(a.output_dir + "/model.safetensors"),
                    wb = bytes(b.output_dir + "/model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == wb) << "resumed run's final weights differ from the uninterrupted run's";
  // And the checkpoint really was mid-way (weights at step 10 differ from the final ones).
  EXPECT_FALSE(bytes(a.output_dir + "/checkpoint-10/model.safetensors") == wa);
}

}  // namespace
}  // namespace bertfit
