// pad_to_max_length (HF run_glue's option): every batch padded to max_seq_length instead of its longest
// sequence. Padding is masked (attention gives padded keys exactly 0 weight, the features read [CLS] or
// masked means), so a padded batch is the same function of the same tokens; only the summation order of the
// GEMMs and row sums changes with the length. These tests show that on logits, loss and gradients, that the
// batch really is padded (shape, masks, token counts), and that the trainer wires the option through
// training, evaluation and training_args.json.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "core/rng.h"
#include "train/batching.h"
#include "train/finetune.h"
#include "train/model_factory.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

constexpr int64_t kMaxLength = 64;  // the padded length (max_seq_length)
constexpr int64_t kVocab = 50;

// n examples of random lengths 3..40 over ids 5..kVocab-1 (clear of every special id of both families),
// labels 0..2.
std::vector<EncodedExample> random_examples(int n, uint64_t seed) {
  Rng rng(seed);
  std::vector<EncodedExample> out(static_cast<size_t>(n));
  for (auto& e : out) {
    EncodedSequence s;
    const int64_t len = 3 + static_cast<int64_t>(rng.below(38));
    for (int64_t t = 0; t < len; ++t) s.ids.push_back(5 + static_cast<int32_t>(rng.below(kVocab - 5)));
    s.types.assign(s.ids.size(), 0);
    e.seqs.push_back(std::move(s));
    e.label = static_cast<int32_t>(rng.below(3));
    e.tokens = len;
  }
  return out;
}

ModelConfig small_config(ModelFamily family) {
  ModelConfig c = family == ModelFamily::ROBERTA ? roberta_defaults() : ModelConfig{};
  c.vocab_size = kVocab;
  c.hidden_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 128;
  // RoBERTa's positions start after the padding id: pad_token_id + 1 extra rows.
  c.max_position_embeddings = kMaxLength + (family == ModelFamily::ROBERTA ? c.pad_token_id + 1 : 0);
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0;  // the same function both ways (see below)
  c.id2label = {"a", "b", "c"};
  return c;
}

struct Outputs {
  float eval_loss = 0, train_loss = 0;
  std::vector<float> logits, grads;
};

// unmask: attend to the padding too (what the comparison below must be able to tell apart).
Outputs run(BertModel& m, const std::vector<EncodedExample>& ex, int64_t pad_to_length, bool unmask = false) {
  std::vector<int64_t> all(ex.size());
  std::iota(all.begin(), all.end(), 0);
  BatchBuilder builder;
  Batch b = builder.build(ex, all, static_cast<int32_t>(m.config().pad_token_id), true, pad_to_length);
  const std::vector<uint8_t> ones(static_cast<size_t>(b.B * b.T), 1);
  if (unmask) b.attention_mask = ones.data();
  Outputs o;
  o.eval_loss = m.forward(b, /*training=*/false, 0, /*loss_normalizer=*/1.0f);
  o.logits.assign(m.logits(), m.logits() + b.B * m.config().num_labels());
  m.zero_grad();
  o.train_loss = m.forward(b, /*training=*/true, 0, static_cast<float>(ex.size()));
  m.backward();
  o.grads.assign(m.grads(), m.grads() + m.buffer_floats());
  return o;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]));
  return worst;
}

// Dropout is off in these models: its masks are keyed by the element's index in the [B, T] tensor, so with
// dropout a padded batch draws other (equally distributed) masks than the dynamically padded one; that is
// the only way the option changes a training run beyond rounding.
TEST(PadToMaxLength, SameLogitsLossAndGradientsAsDynamicPadding) {
  const auto ex = random_examples(12, 11);
  struct Case {
    ModelFamily family;
    const char* features;
  };
  // pooler ([CLS] through BERT's pooler), cls (RoBERTa's head), mean-tokens (a masked mean over every
  // position: the feature that would see padding if the mask were ignored).
  for (const Case& k : {Case{ModelFamily::BERT, "pooler"}, Case{ModelFamily::ROBERTA, "cls"},
                        Case{ModelFamily::BERT, "mean-tokens"}}) {
    SCOPED_TRACE(k.features);
    HeadOptions h;
    h.features = parse_feature_kind(k.features);
    BertModel m(small_config(k.family), HeadKind::SEQUENCE_CLASSIFICATION, h);
    m.init_weights(7);
    m.reserve(static_cast<int64_t>(ex.size()), kMaxLength);
    const Outputs dyn = run(m, ex, 0), padded = run(m, ex, kMaxLength);
    // Only the order of fp32 sums changes: the sums over keys (8-lane softmax row sums, the P V products)
    // run over 64 positions instead of the batch's longest (at most 40), the padded keys adding exact zeros
    // in another grouping, and OpenBLAS may tile the taller GEMMs differently. That is a few ulps per
    // operation, through 2 layers whose LayerNorms renormalise rather than amplify (measured here: the
    // logits agree to ~1 ulp, 1e-7 of their scale; the gradients to 5e-8 relative). The bounds are 1e-5
    // relative, ~80 ulps of fp32 (eps 1.2e-7): room for other BLAS kernels and CPUs, yet 100 times below
    // what attending to the padding changes (checked at the end: > 1e-3 of the scale; measured 1e-2).
    // The logits of this random initialisation are ~0.1, hence the bound relative to their largest.
    const double scale = max_abs_difference(dyn.logits, std::vector<float>(dyn.logits.size(), 0.0f));
    ASSERT_GT(scale, 0);
    ASSERT_EQ(dyn.logits.size(), padded.logits.size());
    for (size_t i = 0; i < dyn.logits.size(); ++i)
      EXPECT_NEAR(dyn.logits[i], padded.logits[i], 1e-5 * scale) << i;
    // The losses are ~ln 3 = 1.1: 1e-5 relative.
    EXPECT_NEAR(dyn.eval_loss, padded.eval_loss, 1e-5 * dyn.eval_loss);
    EXPECT_NEAR(dyn.train_loss, padded.train_loss, 1e-5 * dyn.train_loss);
    // Gradients: relative L2 error, as in the accumulation test (finetune_test.cpp).
    double e = 0, r = 0;
    for (size_t i = 0; i < dyn.grads.size(); ++i) {
      e += (double(dyn.grads[i]) - padded.grads[i]) * (double(dyn.grads[i]) - padded.grads[i]);
      r += double(dyn.grads[i]) * dyn.grads[i];
    }
    ASSERT_GT(r, 0);
    EXPECT_LT(std::sqrt(e / r), 1e-5);
    // The comparison can fail: the same padded batch with its padding attended to differs by far more.
    const Outputs unmasked = run(m, ex, kMaxLength, /*unmask=*/true);
    EXPECT_GT(max_abs_difference(dyn.logits, unmasked.logits), 1e-3 * scale);
  }
}

TEST(PadToMaxLength, BatchIsPaddedAndMasked) {
  const auto ex = random_examples(5, 3);
  const std::vector<int64_t> idx = {0, 1, 2, 3, 4};
  int64_t longest = 0, real = 0;
  for (const auto& e : ex) {
    longest = std::max(longest, e.length());
    real += e.length();
  }
  BatchBuilder builder;
  const Batch dyn = builder.build(ex, idx, 0, true);
  EXPECT_EQ(dyn.T, longest);
  const Batch b = builder.build(ex, idx, /*pad_id=*/0, true, kMaxLength);
  ASSERT_EQ(b.B, 5);
  ASSERT_EQ(b.T, kMaxLength);
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t t = 0; t < b.T; ++t) {
      const bool token = t < ex[r].length();
      EXPECT_EQ(b.attention_mask[r * b.T + t], token ? 1 : 0) << r << "," << t;
      EXPECT_EQ(b.input_ids[r * b.T + t], token ? ex[r].seqs[0].ids[t] : 0) << r << "," << t;
    }
  const BatchTokens dyn_tokens = batch_tokens(ex, idx), padded_tokens = batch_tokens(ex, idx, kMaxLength);
  EXPECT_EQ(dyn_tokens.real, real);
  EXPECT_EQ(dyn_tokens.computed, 5 * longest);
  EXPECT_EQ(padded_tokens.real, real);
  EXPECT_EQ(padded_tokens.computed, 5 * kMaxLength);
}

TEST(PadToMaxLength, SequenceLongerThanThePaddedLengthIsAnError) {
  const auto ex = random_examples(3, 5);
  const std::vector<int64_t> idx = {0, 1, 2};
  BatchBuilder builder;
  try {
    builder.build(ex, idx, 0, true, 2);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("padded to 2 tokens"), std::string::npos) << e.what();
  }
}

// The trainer: a run padded to max_seq_length trains and evaluates on padded batches (the model's arena must
// be reserved for them), ends where the dynamically padded run ends, and records the option.
TEST(PadToMaxLength, FinetuneIsPaddedEndsAlikeAndRecordsTheOption) {
  const fs::path root = fs::path(BERTFIT_BINARY_DIR) / "test-pad-to-max-length";
  fs::remove_all(root);
  fs::create_directories(root / "tok");
  {
    std::ofstream v(root / "tok" / "vocab.txt");
    v << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
    for (int i = 0; i < 40; ++i) v << "w" << i << "\n";
  }
  const Tokenizer tok = Tokenizer::from_directory((root / "tok").string());
  ModelConfig c = named_config("tiny", ModelFamily::BERT, tok, kMaxLength);
  c.hidden_size = 64;
  c.intermediate_size = 128;
  init_model_dir(c, HeadKind::MASKED_LM, tok, 1, (root / "model").string());
  for (const auto& [split, seed] : {std::pair<std::string, uint64_t>{"train", 1}, {"dev", 2}}) {
    Rng rng(seed);
    std::ofstream f(root / (split + ".tsv"));
    f << "text\tlabel\n";
    for (int i = 0; i < 40; ++i) {
      const int64_t len = 2 + static_cast<int64_t>(rng.below(30));
      for (int64_t t = 0; t < len; ++t) f << (t ? " " : "") << "w" << rng.below(40);
      f << "\t" << (rng.below(2) ? "pos" : "neg") << "\n";
    }
  }
  auto args = [&](const std::string& name, bool pad) {
    FinetuneArgs a;
    a.model_name_or_path = (root / "model").string();
    a.output_dir = (root / name).string();
    a.overwrite_output_dir = true;
    a.train_file = (root / "train.tsv").string();
    a.validation_file = (root / "dev.tsv").string();
    a.max_seq_length = static_cast<int>(kMaxLength);
    a.pad_to_max_length = pad;
    a.hidden_dropout_prob = a.attention_probs_dropout_prob = 0;  // the same function both ways
    a.learning_rate = 1e-3;
    a.per_device_train_batch_size = 8;
    a.num_train_epochs = 1;  // 5 steps
    a.threads = 2;
    return a;
  };
  const FinetuneResult dyn = finetune(args("dynamic", false)), padded = finetune(args("padded", true));
  EXPECT_EQ(dyn.global_step, 5);
  EXPECT_EQ(padded.global_step, 5);
  // Five AdamW steps from the same start on gradients that agree to ~5e-8 relative (the first test): AdamW's
  // update m / (sqrt(v) + eps) is invariant to the gradient's scale, so relative differences pass through
  // unamplified, and at lr 1e-3 they move the weights by ~1e-10. The evaluation loss (~0.69) and the
  // probabilities then agree to ~1e-8 (measured: the same 9 digits); 1e-6 leaves a margin of 100.
  EXPECT_NEAR(dyn.final_eval.loss, padded.final_eval.loss, 1e-6);
  ASSERT_EQ(dyn.final_eval.probs.size(), padded.final_eval.probs.size());
  for (size_t i = 0; i < dyn.final_eval.probs.size(); ++i)
    EXPECT_NEAR(dyn.final_eval.probs[i], padded.final_eval.probs[i], 1e-6) << i;

  for (const auto& [name, want] : {std::pair<std::string, bool>{"dynamic", false}, {"padded", true}}) {
    std::ifstream in(root / name / "training_args.json");
    ASSERT_TRUE(in) << name;
    const nlohmann::json j = nlohmann::json::parse(in);
    ASSERT_TRUE(j.contains("pad_to_max_length")) << name;
    EXPECT_EQ(j["pad_to_max_length"].get<bool>(), want) << name;
  }
}

}  // namespace
}  // namespace bertfit
