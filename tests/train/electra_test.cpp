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
#include "electra_test_util.h"
#include "train/electra_pretrain.h"
#include "train/hf_model_dir.h"
#include "train/pretrain.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

using namespace electra_test;

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
