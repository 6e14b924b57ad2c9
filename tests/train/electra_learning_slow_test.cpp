// ELECTRA pre-training learns (tests/train/electra_test.cpp has the layout, errors and exact resume): on a
// corpus with a learnable structure the generator's MLM and the discriminator's replaced-token detection both
// fall far below what ignoring the context allows, and the output is an ElectraForPreTraining directory with
// the generator beside it, which fine-tuning loads. Labelled slow (about 8 s in a Release build on a loaded
// machine): not rerun under the sanitizers, where electra_test's resume test covers the same code paths.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "electra_test_util.h"
#include "train/hf_model_dir.h"
#include "train/pretrain.h"

namespace bertfit {
namespace {

using namespace electra_test;

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

}  // namespace
}  // namespace bertfit
