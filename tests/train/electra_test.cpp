// ELECTRA end to end: HuggingFace's layout in and out (config.json model_type "electra" with embedding_size,
// ElectraForPreTraining / ElectraForMaskedLM / ElectraForSequenceClassification tensor names, a save/load
// round trip, a discriminator directory loaded as a classifier), the generator's shape and sampling, and
// `pretrain --objective electra`: the discriminator learns replaced-token detection and the generator MLM on
// a corpus with a learnable structure, the output directories, and a resumed run ending bitwise equal to the
// uninterrupted one. (The maths of every ELECTRA head equals the PyTorch reference: tests/parity, fixtures
// electra_*; their gradients the finite differences: tests/model/model_grad_test ElectraHeads.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "core/rng.h"
#include "train/electra_pretrain.h"
#include "train/hf_model_dir.h"
#include "train/pretrain.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

std::string test_dir(const std::string& name) {
  // Unique per process: other worktrees and runs execute the same test at the same time.
  const std::string d =
      std::string(BERTFIT_BINARY_DIR) + "/electra_test/" + name + "." + std::to_string(::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

ModelConfig tiny_electra(int64_t embedding_size) {
  ModelConfig c;
  c.family = ModelFamily::ELECTRA;
  c.vocab_size = 50;
  c.embedding_size = embedding_size;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 40;
  c.max_position_embeddings = 16;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  return c;
}

TEST(ElectraLayout, ConfigJsonRoundTripAndErrors) {
  ModelConfig c = tiny_electra(24);
  const ModelConfig back = parse_config_json(config_json_text(c), "config.json");
  EXPECT_EQ(back.family, ModelFamily::ELECTRA);
  EXPECT_EQ(back.embedding_size, 24);
  EXPECT_EQ(back.hidden_size, 32);
  // ElectraConfig's class defaults fill what a config leaves out.
  const ModelConfig d = parse_config_json(R"({"model_type": "electra"})", "config.json");
  EXPECT_EQ(d.embedding_size, 128);
  EXPECT_EQ(d.hidden_size, 256);
  EXPECT_EQ(d.num_attention_heads, 4);
  EXPECT_EQ(d.intermediate_size, 1024);
  EXPECT_TRUE(d.projects_embeddings());
  // The family from the architectures alone.
  EXPECT_EQ(parse_config_json(R"({"architectures": ["ElectraForPreTraining"]})", "c").family,
            ModelFamily::ELECTRA);
  try {
    parse_config_json(R"({"model_type": "electra", "embedding_size": 0})", "config.json");
    FAIL() << "embedding_size 0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("embedding_size"), std::string::npos) << e.what();
  }
  ModelConfig bert;
  bert.embedding_size = 100;  // BERT has no embedding width of its own
  EXPECT_THROW(bert.validate(), ConfigError);
}

TEST(ElectraLayout, DiscriminatorSaveLoadRoundTripAndClassifierFromIt) {
  const std::string dir = test_dir("layout") + "/disc";
  BertModel m(tiny_electra(24), HeadKind::REPLACED_TOKEN_DETECTION);
  m.init_weights(3);
  save_pretrained(m, dir, nullptr);
  const ModelConfig cfg = read_config_json(dir + "/config.json");
  EXPECT_EQ(cfg.family, ModelFamily::ELECTRA);
  EXPECT_EQ(cfg.embedding_size, 24);
  ASSERT_EQ(cfg.architectures.size(), 1u);
  EXPECT_EQ(cfg.architectures[0], "ElectraForPreTraining");
  {
    const SafetensorsFile f = SafetensorsFile::open(dir + "/model.safetensors");
    std::set<std::string> names;
    for (const auto& t : f.tensors()) names.insert(t.name);
    for (const char* n :
         {"electra.embeddings.word_embeddings.weight", "electra.embeddings_project.weight",
          "electra.embeddings_project.bias", "electra.encoder.layer.1.output.LayerNorm.bias",
          "discriminator_predictions.dense.weight", "discriminator_predictions.dense_prediction.weight",
          "discriminator_predictions.dense_prediction.bias"})
      EXPECT_TRUE(names.count(n)) << n;
    EXPECT_EQ(f.find("electra.embeddings.word_embeddings.weight")->shape, (std::vector<int64_t>{50, 24}));
    EXPECT_EQ(f.find("electra.embeddings_project.weight")->shape, (std::vector<int64_t>{32, 24}));
    EXPECT_EQ(f.find("discriminator_predictions.dense_prediction.weight")->shape,
              (std::vector<int64_t>{1, 32}));
  }
  // Loaded back: the same parameters, bit for bit, and the same logits.
  LoadedModel back = load_pretrained(dir, HeadKind::REPLACED_TOKEN_DETECTION, {});
  EXPECT_TRUE(back.initialized.empty());
  EXPECT_TRUE(back.ignored.empty());
  ASSERT_EQ(back.model->buffer_floats(), m.buffer_floats());
  EXPECT_EQ(0, std::memcmp(back.model->params(), m.params(), m.buffer_floats() * sizeof(float)));
  const int64_t B = 2, T = 5;
  const std::vector<int32_t> ids = {2, 7, 9, 11, 3, 2, 8, 3, 0, 0};
  const std::vector<uint8_t> mask = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
  const Batch b{B, T, ids.data(), nullptr, mask.data(), nullptr};
  m.reserve(B, T);
  back.model->reserve(B, T);
  m.forward(b, false);
  back.model->forward(b, false);
  ASSERT_EQ(m.logits_rows(), B * T);
  EXPECT_EQ(0, std::memcmp(m.logits(), back.model->logits(), B * T * sizeof(float)));
  // The discriminator directory as a classifier (what finetune does): the encoder from the file, the
  // ElectraClassificationHead new, the discriminator's head unused.
  ModelConfig cc = cfg;
  cc.id2label = {"a", "b", "c"};
  LoadedModel cls = load_pretrained(dir, HeadKind::SEQUENCE_CLASSIFICATION, {}, &cc);
  EXPECT_EQ(std::set<std::string>(cls.initialized.begin(), cls.initialized.end()),
            (std::set<std::string>{"classifier.dense.weight", "classifier.dense.bias",
                                   "classifier.out_proj.weight", "classifier.out_proj.bias"}));
  EXPECT_EQ(cls.ignored.size(), 4u);
  for (const auto& n : cls.ignored) EXPECT_EQ(n.rfind("discriminator_predictions.", 0), 0u) << n;
  EXPECT_EQ(0, std::memcmp(cls.model->param("electra.embeddings_project.weight"),
                           m.param("electra.embeddings_project.weight"), 32 * 24 * sizeof(float)));
  // Saved as a classifier: HF's class name and the classifier's names.
  save_pretrained(*cls.model, dir + "-cls", nullptr);
  EXPECT_EQ(read_config_json(dir + "-cls/config.json").architectures[0], "ElectraForSequenceClassification");
  // The generator's layout: ElectraForMaskedLM, the decoder tied (not stored), its own bias.
  BertModel g(tiny_electra(24), HeadKind::MASKED_LM);
  g.init_weights(4);
  save_pretrained(g, dir + "-gen", nullptr);
  EXPECT_EQ(read_config_json(dir + "-gen/config.json").architectures[0], "ElectraForMaskedLM");
  const SafetensorsFile gf = SafetensorsFile::open(dir + "-gen/model.safetensors");
  EXPECT_EQ(gf.find("generator_predictions.dense.weight")->shape, (std::vector<int64_t>{24, 32}));
  EXPECT_EQ(gf.find("generator_predictions.LayerNorm.weight")->shape, (std::vector<int64_t>{24}));
  EXPECT_EQ(gf.find("generator_lm_head.bias")->shape, (std::vector<int64_t>{50}));
  EXPECT_EQ(gf.find("generator_lm_head.weight"), nullptr);
  fs::remove_all(fs::path(dir).parent_path());
}

TEST(ElectraLayout, GeneratorShapeFollowsTheRatio) {
  ModelConfig mini = tiny_electra(-1);
  mini.hidden_size = 256;
  mini.num_attention_heads = 4;
  mini.intermediate_size = 1024;
  const ModelConfig g = electra_generator_config(mini, 0.25);
  EXPECT_EQ(g.hidden_size, 64);
  EXPECT_EQ(g.num_attention_heads, 1);
  EXPECT_EQ(g.intermediate_size, 256);
  EXPECT_EQ(g.num_hidden_layers, mini.num_hidden_layers);
  EXPECT_EQ(g.embedding_width(), 256);  // the shared embeddings keep the discriminator's width
  EXPECT_TRUE(g.projects_embeddings());
  const ModelConfig third = electra_generator_config(mini, 1.0 / 3);
  EXPECT_EQ(third.hidden_size, 85);
  EXPECT_EQ(third.hidden_size % third.num_attention_heads, 0);
  EXPECT_THROW(electra_generator_config(mini, 0), ConfigError);
}

// Inverse-CDF sampling: over a grid of n uniforms, each token is drawn n * p times within one draw.
TEST(ElectraLayout, SamplingFollowsTheSoftmax) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.0f, -3.0f};
  double z = 0;
  for (float l : logits) z += std::exp(static_cast<double>(l));
  const int n = 100000;
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) ++counts[sample_from_logits(logits.data(), 5, (i + 0.5) / n)];
  for (size_t v = 0; v < logits.size(); ++v)
    EXPECT_NEAR(counts[v], n * std::exp(static_cast<double>(logits[v])) / z, 1.0) << v;
  EXPECT_EQ(sample_from_logits(logits.data(), 5, 0.0), 0);
  EXPECT_EQ(sample_from_logits(logits.data(), 5, 0.999999999), 4);
}

// As pretrain_test's corpus: each line is one topic's words in a fixed order, so a replaced word is visible
// from its context, and a masked word is determined by it.
constexpr int kTopics = 16, kLength = 8;
struct Corpus {
  std::string dir, tokenizer, text;
};
Corpus make_corpus(const std::string& name, int lines) {
  Corpus c;
  c.dir = test_dir(name);
  c.tokenizer = c.dir + "/tok";
  fs::create_directories(c.tokenizer);
  {
    std::ofstream v(c.tokenizer + "/vocab.txt");
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << s << "\n";
    for (int t = 0; t < kTopics; ++t)
      for (int p = 0; p < kLength; ++p) v << "t" << t << "w" << p << "\n";
  }
  c.text = c.dir + "/corpus.txt";
  std::ofstream f(c.text);
  Rng rng(5);
  for (int i = 0; i < lines; ++i) {
    const int t = static_cast<int>(rng.below(kTopics));
    for (int p = 0; p < kLength; ++p) f << (p ? " " : "") << "t" << t << "w" << p;
    f << "\n";
  }
  return c;
}

PretrainArgs electra_args(const Corpus& c, const std::string& out) {
  PretrainArgs a;
  a.objective = "electra";
  a.tokenizer_name = c.tokenizer;
  a.train_file = {c.text};
  a.output_dir = out;
  a.hidden_size = 64;
  a.embedding_size = 32;  // embeddings_project in both models
  a.num_hidden_layers = 2;
  a.num_attention_heads = 4;
  a.intermediate_size = 128;
  a.max_position_embeddings = 16;
  a.max_seq_length = 16;
  a.hidden_dropout_prob = 0;
  a.attention_probs_dropout_prob = 0;
  a.learning_rate = 2e-3;
  a.weight_decay = 0;
  a.per_device_train_batch_size = 32;
  a.validation_split_percentage = 10;
  a.threads = 1;
  return a;
}

TEST(ElectraPretrain, BothModelsLearnAndTheOutputIsAnElectraDirectory) {
  const Corpus c = make_corpus("learn", 1600);
  PretrainArgs a = electra_args(c, c.dir + "/out");
  a.num_train_epochs = 8;
  a.save_total_limit = 1;
  const PretrainResult r = pretrain(a);
  ASSERT_TRUE(r.final_eval.electra);
  ASSERT_TRUE(r.initial_eval.electra);
  // Before training the discriminator says "replaced" or "original" at random (about 0.69 nats) and the
  // generator knows nothing (about log(133) = 4.9 nats).
  EXPECT_GT(r.initial_eval.generator_loss, 4.0);
  EXPECT_GT(r.initial_eval.discriminator_loss, 0.5);
  // After: the generator uses the context. A model that ignores it cannot beat the unigram entropy, log(128)
  // = 4.85 nats; the 16-wide, one-head generator (64 x 0.25) measured 3.42 (a standalone MLM model of its
  // size: 3.08 in 5 epochs), so 0.8 of the entropy asks for context with a margin of 0.46 nats.
  EXPECT_LT(r.final_eval.generator_loss, 0.8 * std::log(128.0))
      << "initial " << r.initial_eval.generator_loss;
  // The discriminator against the best constant guess, whose loss is the binary entropy of the replaced
  // share p (0.35 nats at p = 0.11) and whose accuracy is 1 - p: measured 0.023 nats and 0.994 (0.889 for
  // the constant), so a quarter of the entropy and half the replaced tokens found leave 4x margins and still
  // fail a discriminator that does not read the tokens against their context.
  const double p = r.final_eval.replaced_share;
  ASSERT_GT(p, 0.02);
  ASSERT_LT(p, 0.15);  // at most the masked share (the masker's 15%)
  const double h = -(p * std::log(p) + (1 - p) * std::log(1 - p));
  EXPECT_LT(r.final_eval.discriminator_loss, 0.25 * h) << "initial " << r.initial_eval.discriminator_loss;
  EXPECT_GT(r.final_eval.discriminator_accuracy, 1 - p / 2);
  EXPECT_LT(r.final_eval.loss, 0.5 * r.initial_eval.loss);
  const std::string o = a.output_dir;
  const ModelConfig disc = read_config_json(o + "/config.json");
  EXPECT_EQ(disc.family, ModelFamily::ELECTRA);
  EXPECT_EQ(disc.architectures.at(0), "ElectraForPreTraining");
  EXPECT_EQ(disc.embedding_size, 32);
  const ModelConfig gen = read_config_json(o + "/generator/config.json");
  EXPECT_EQ(gen.architectures.at(0), "ElectraForMaskedLM");
  EXPECT_EQ(gen.hidden_size, 16);  // 64 x 0.25
  EXPECT_EQ(gen.num_attention_heads, 1);
  EXPECT_EQ(gen.embedding_size, 32);
  EXPECT_TRUE(fs::exists(o + "/generator/vocab.txt"));
  EXPECT_FALSE(fs::exists(o + "/generator/optimizer.safetensors"));  // only checkpoints keep it
  // Tied embeddings: the saved generator's are the discriminator's, bit for bit.
  {
    const SafetensorsFile d = SafetensorsFile::open(o + "/model.safetensors");
    const SafetensorsFile g = SafetensorsFile::open(o + "/generator/model.safetensors");
    for (const char* n : {"electra.embeddings.word_embeddings.weight", "electra.embeddings.LayerNorm.weight",
                          "electra.embeddings.position_embeddings.weight"})
      EXPECT_EQ(to_f32(*d.find(n)), to_f32(*g.find(n))) << n;
    EXPECT_NE(to_f32(*d.find("electra.embeddings_project.weight")).size(),
              to_f32(*g.find("electra.embeddings_project.weight")).size());
  }
  // Checkpoints keep the generator with its optimizer state.
  ASSERT_FALSE(r.best_checkpoint.empty());
  EXPECT_TRUE(fs::exists(r.best_checkpoint + "/generator/optimizer.safetensors"));
  // What finetune loads: the encoder from the file, a new classifier head.
  ModelConfig cc = disc;
  cc.id2label = {"a", "b"};
  const LoadedModel m = load_pretrained(o, HeadKind::SEQUENCE_CLASSIFICATION, {}, &cc);
  EXPECT_EQ(m.initialized.size(), 4u);
  for (const auto& n : m.initialized) EXPECT_EQ(n.rfind("classifier.", 0), 0u) << n;
  if (!HasFailure()) fs::remove_all(c.dir);
}

TEST(ElectraPretrain, ResumeGivesTheSameWeightsAsTheUninterruptedRun) {
  const Corpus c = make_corpus("resume", 400);
  PretrainArgs a = electra_args(c, c.dir + "/full");
  a.max_steps = 14;
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 6;
  a.save_total_limit = 0;
  a.load_best_model_at_end = false;
  a.hidden_dropout_prob = 0.1;  // both models' dropout keyed by step: resume must reproduce it
  a.gradient_accumulation_steps = 2;
  a.per_device_train_batch_size = 8;
  pretrain(a);
  PretrainArgs b = a;
  b.output_dir = c.dir + "/resumed";
  pretrain(b);
  fs::remove_all(b.output_dir + "/checkpoint-12");
  fs::remove(b.output_dir + "/model.safetensors");
  fs::remove_all(b.output_dir + "/generator");
  b.resume_from_checkpoint = b.output_dir + "/checkpoint-6";
  const PretrainResult r = pretrain(b);
  EXPECT_EQ(r.global_step, 14);
  for (const char* f :
       {"/model.safetensors", "/generator/model.safetensors",
        "/checkpoint-12/generator/optimizer.safetensors", "/checkpoint-12/optimizer.safetensors"}) {
    const std::string wa = read_bytes(a.output_dir + f);
    ASSERT_FALSE(wa.empty()) << f;
    EXPECT_TRUE(wa == read_bytes(b.output_dir + f)) << f << " differs after resuming";
  }
  if (!HasFailure()) fs::remove_all(c.dir);
}

TEST(ElectraPretrain, BadInputIsAClearError) {
  const Corpus c = make_corpus("bad", 50);
  PretrainArgs a = electra_args(c, c.dir + "/out");
  a.model_type = "roberta";
  EXPECT_THROW(pretrain(a), ConfigError);
  a = electra_args(c, c.dir + "/out2");
  a.generator_size_ratio = 1.5;
  EXPECT_THROW(pretrain(a), ConfigError);
  a = electra_args(c, c.dir + "/out3");
  a.discriminator_loss_weight = 0;
  EXPECT_THROW(pretrain(a), ConfigError);
  // Continuing a BERT model with the ELECTRA objective.
  ModelConfig bert;
  bert.vocab_size = 133;
  bert.hidden_size = 16;
  bert.num_hidden_layers = 1;
  bert.num_attention_heads = 1;
  bert.intermediate_size = 16;
  bert.max_position_embeddings = 16;
  BertModel m(bert, HeadKind::MASKED_LM);
  m.init_weights(1);
  const Tokenizer tok = Tokenizer::from_directory(c.tokenizer);
  save_pretrained(m, c.dir + "/bert", &tok);
  a = electra_args(c, c.dir + "/out4");
  a.hidden_size = 0;
  a.num_hidden_layers = 0;
  a.num_attention_heads = 0;
  a.intermediate_size = 0;
  a.embedding_size = 0;
  a.model_name_or_path = c.dir + "/bert";
  try {
    pretrain(a);
    FAIL() << "a BERT model continued with --objective electra";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ELECTRA"), std::string::npos) << e.what();
  }
  fs::remove_all(c.dir);
}

}  // namespace
}  // namespace bertfit
