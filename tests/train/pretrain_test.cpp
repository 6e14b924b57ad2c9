// Masked-LM pre-training end to end (train/pretrain): on a generated corpus with a learnable structure the
// held-out MLM loss falls far below the unigram entropy of the masked tokens; resuming from a checkpoint
// gives the same final weights as the uninterrupted run; continuing from a classifier checkpoint initialises
// the MLM head; the output is a BertForMaskedLM directory that fine-tuning loads; blocks are cut as
// documented. (The loss and gradients themselves equal the PyTorch reference: tests/parity, fixtures
// bert_mlm / roberta_mlm.)
#include "train/pretrain.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "core/rng.h"
#include "train/hf_model_dir.h"
#include "train/model_factory.h"

namespace fs = std::filesystem;

namespace bertfit {
namespace {

constexpr int kTopics = 16, kLength = 8;

std::string test_dir(const std::string& name) {
  const std::string d = std::string(BERTFIT_BINARY_DIR) + "/pretrain_test/" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string word(int topic, int pos) {
  return "t" + std::to_string(topic) + "w" + std::to_string(pos);
}

// A corpus where every line is one topic's words in a fixed order: a masked word is determined by any
// unmasked word of its line (the topic) and its position, but each of the kTopics * kLength words is
// equally frequent, so a model that ignores the context cannot beat the unigram entropy log(128).
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
      for (int p = 0; p < kLength; ++p) v << word(t, p) << "\n";
  }
  c.text = c.dir + "/corpus.txt";
  std::ofstream f(c.text);
  Rng rng(5);
  for (int i = 0; i < lines; ++i) {
    const int t = static_cast<int>(rng.below(kTopics));
    for (int p = 0; p < kLength; ++p) f << (p ? " " : "") << word(t, p);
    f << "\n";
    if (i % 97 == 0) f << "   \n";  // blank lines are skipped
  }
  return c;
}

PretrainArgs small_args(const Corpus& c, const std::string& out) {
  PretrainArgs a;
  a.tokenizer_name = c.tokenizer;
  a.train_file = {c.text};
  a.output_dir = out;
  a.hidden_size = 64;
  a.num_hidden_layers = 2;
  a.num_attention_heads = 2;
  a.intermediate_size = 128;
  a.max_position_embeddings = 16;
  a.max_seq_length = 16;
  a.hidden_dropout_prob = 0;
  a.attention_probs_dropout_prob = 0;
  a.learning_rate = 2e-3;
  a.weight_decay = 0;
  a.per_device_train_batch_size = 32;
  a.validation_split_percentage = 10;
  a.threads = 1;  // a tiny model: one thread avoids OpenMP waits when the machine is shared
  return a;
}

// The entropy (nats) of the distribution of the masked tokens, over the corpus's blocks masked once.
double unigram_entropy_of_masked(const Corpus& c, const PretrainArgs& a) {
  const Tokenizer tok = Tokenizer::from_directory(c.tokenizer);
  const auto blocks = make_blocks(tok, read_text_lines(c.text), a.max_seq_length, true, 1);
  MaskingOptions mo;
  const MlmMasker masker(tok, mo);
  std::map<int32_t, int64_t> counts;
  int64_t n = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto& ids = blocks[i].seqs[0].ids;
    std::vector<int32_t> out(ids.size()), labels(ids.size());
    masker.mask(ids.data(), ids.size(), nullptr, out.data(), labels.data(), 0, i);
    for (int32_t l : labels)
      if (l != kMlmIgnore) ++counts[l], ++n;
  }
  double h = 0;
  for (const auto& [id, k] : counts) {
    const double p = static_cast<double>(k) / n;
    h -= p * std::log(p);
  }
  return h;
}

TEST(Pretrain, HeldOutLossFallsFarBelowTheUnigramEntropy) {
  const Corpus c = make_corpus("learn", 2400);
  PretrainArgs a = small_args(c, c.dir + "/out");
  a.num_train_epochs = 6;
  a.save_total_limit = 1;
  const PretrainResult r = pretrain(a);
  const double h = unigram_entropy_of_masked(c, a);
  // 128 equally frequent words: the entropy is close to log(128) = 4.85 nats.
  EXPECT_NEAR(h, std::log(128.0), 0.05);
  // Before training the model knows nothing: about log(vocab) = log(133) = 4.89, at least the unigram
  // entropy (minus sampling noise of the few thousand held-out masked tokens).
  EXPECT_GT(r.initial_eval.loss, 0.95 * h);
  // "Well below": the structure determines each masked word, so a model that uses its context reaches a
  // small fraction of the entropy (measured: about 0.05 nats); a fifth of it still needs the context.
  EXPECT_LT(r.final_eval.loss, 0.2 * h) << "initial " << r.initial_eval.loss;
  EXPECT_NEAR(r.final_eval.perplexity, std::exp(r.final_eval.loss), 1e-9);
  EXPECT_GT(r.eval_blocks, 200);
  // The output is a BertForMaskedLM directory with the tokenizer; fine-tuning loads it (a new classifier
  // head is initialised, the encoder comes from the file).
  const ModelConfig cfg = read_config_json(a.output_dir + "/config.json");
  ASSERT_EQ(cfg.architectures.size(), 1u);
  EXPECT_EQ(cfg.architectures[0], "BertForMaskedLM");
  EXPECT_TRUE(fs::exists(a.output_dir + "/vocab.txt"));
  EXPECT_TRUE(fs::exists(a.output_dir + "/eval_results.json"));
  const LoadedModel m = load_pretrained(a.output_dir, HeadKind::SEQUENCE_CLASSIFICATION, {});
  EXPECT_FALSE(m.initialized.empty());
  for (const auto& n : m.initialized) EXPECT_EQ(n.find("encoder"), std::string::npos) << n;
  // save_total_limit 1: one checkpoint is left, the best (never deleted).
  int checkpoints = 0;
  for (const auto& e : fs::directory_iterator(a.output_dir))
    checkpoints += e.path().filename().string().rfind("checkpoint-", 0) == 0;
  EXPECT_EQ(checkpoints, 1);
  EXPECT_TRUE(fs::is_directory(r.best_checkpoint));
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(Pretrain, ResumeGivesTheSameWeightsAsTheUninterruptedRun) {
  const Corpus c = make_corpus("resume", 600);
  PretrainArgs a = small_args(c, c.dir + "/full");
  a.max_steps = 24;
  a.eval_strategy = IntervalStrategy::STEPS;
  a.eval_steps = 10;
  a.save_total_limit = 0;
  a.load_best_model_at_end = false;
  a.whole_word_mask = true;
  a.hidden_dropout_prob = 0.1;  // dropout keyed by step: resume must reproduce it too
  a.gradient_accumulation_steps = 2;
  a.per_device_train_batch_size = 8;
  pretrain(a);
  // The "interrupted" run: the same run, then everything after checkpoint-10 removed.
  PretrainArgs b = a;
  b.output_dir = c.dir + "/resumed";
  pretrain(b);
  fs::remove_all(b.output_dir + "/checkpoint-20");
  fs::remove(b.output_dir + "/model.safetensors");
  b.resume_from_checkpoint = b.output_dir + "/checkpoint-10";
  const PretrainResult r = pretrain(b);
  EXPECT_EQ(r.global_step, 24);
  const std::string wa = read_bytes(a.output_dir + "/model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == read_bytes(b.output_dir + "/model.safetensors")) << "resumed weights differ";
  EXPECT_TRUE(read_bytes(a.output_dir + "/checkpoint-20/model.safetensors") ==
              read_bytes(b.output_dir + "/checkpoint-20/model.safetensors"));
}

TEST(Pretrain, ContinuesFromAClassifierCheckpoint) {
  const Corpus c = make_corpus("continue", 300);
  const Tokenizer tok = Tokenizer::from_directory(c.tokenizer);
  ModelConfig cfg = named_config("tiny", ModelFamily::BERT, tok, 16);
  const std::string start = c.dir + "/start";
  init_model_dir(cfg, HeadKind::SEQUENCE_CLASSIFICATION, tok, 1, start);
  PretrainArgs a = small_args(c, c.dir + "/out");
  a.tokenizer_name.clear();  // the model directory's tokenizer
  a.model_name_or_path = start;
  a.hidden_size = a.num_hidden_layers = a.num_attention_heads = a.intermediate_size = 0;
  a.max_steps = 3;
  const PretrainResult r = pretrain(a);
  EXPECT_EQ(r.global_step, 3);
  const ModelConfig out = read_config_json(a.output_dir + "/config.json");
  EXPECT_EQ(out.architectures[0], "BertForMaskedLM");
  EXPECT_EQ(out.num_hidden_layers, 2);
  // The encoder started from the checkpoint: its embeddings moved only by 3 small steps.
  const LoadedModel before = load_pretrained(start, HeadKind::NONE, {});
  const LoadedModel after = load_pretrained(a.output_dir, HeadKind::NONE, {});
  const auto& e = before.model->table().at("bert.embeddings.word_embeddings.weight");
  double diff = 0;
  for (size_t i = 0; i < static_cast<size_t>(e.numel); ++i)
    diff = std::max<double>(
        diff, std::fabs(before.model->params()[e.offset + i] - after.model->params()[e.offset + i]));
  // Adam moves a weight by about lr (at most a few lr) per step: 3 steps of lr <= 2e-3 stay far below 0.02,
  // while a re-initialised table (normal(0, 0.02) drawn again) would differ by ~0.1 somewhere.
  EXPECT_GT(diff, 0);
  EXPECT_LT(diff, 0.02);
}

TEST(Pretrain, BlocksLineByLineAndConcatenated) {
  const std::string dir = test_dir("blocks");
  {
    std::ofstream v(dir + "/vocab.txt");
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"}) v << s << "\n";
  }
  const Tokenizer tok = Tokenizer::from_directory(dir);
  const std::vector<std::string> lines = {"a b a b a b a b a b", "a", "b b"};
  // Line by line, block 6: the 10-token line becomes 3 blocks of at most 4 content tokens each.
  const auto lbl = make_blocks(tok, lines, 6, true, 1);
  ASSERT_EQ(lbl.size(), 5u);
  EXPECT_EQ(lbl[0].seqs[0].ids, (std::vector<int32_t>{2, 5, 6, 5, 6, 3}));
  EXPECT_EQ(lbl[2].seqs[0].ids, (std::vector<int32_t>{2, 5, 6, 3}));
  EXPECT_EQ(lbl[3].seqs[0].ids, (std::vector<int32_t>{2, 5, 3}));
  // Concatenated: [CLS] line [SEP] for each line, joined (12 + 3 + 4 = 19 tokens), cut every 8.
  const auto cat = make_blocks(tok, lines, 8, false, 1);
  ASSERT_EQ(cat.size(), 3u);
  EXPECT_EQ(cat[0].length(), 8);
  EXPECT_EQ(cat[2].length(), 3);
  EXPECT_EQ(cat[1].seqs[0].ids, (std::vector<int32_t>{6, 5, 6, 3, 2, 5, 3, 2}));
}

TEST(Pretrain, ANewModelWithoutATokenizerGetsOneTrainedOnItsText) {
  // The README's model from nothing: no --tokenizer, no training steps; a WordPiece vocabulary is trained on
  // the text and the output directory is a model finetune can load.
  const Corpus c = make_corpus("new_model", 40);
  PretrainArgs a = small_args(c, c.dir + "/out");
  a.tokenizer_name.clear();
  a.vocab_size = 200;
  a.max_steps = -1;
  a.num_train_epochs = 0;
  pretrain(a);
  const Tokenizer tok = Tokenizer::from_directory(a.output_dir);
  EXPECT_GT(tok.vocab_size(), 5);
  EXPECT_LE(tok.vocab_size(), 200);
  EXPECT_TRUE(std::filesystem::exists(a.output_dir + "/model.safetensors"));
  EXPECT_EQ(read_config_json(a.output_dir + "/config.json").vocab_size, tok.vocab_size());
}

TEST(Pretrain, DoEvalAloneEvaluatesTheGivenModelAndTrainsNothing) {
  const Corpus c = make_corpus("eval_only", 40);
  PretrainArgs a = small_args(c, c.dir + "/out");
  a.tokenizer_name.clear();
  a.vocab_size = 200;
  a.max_steps = -1;
  a.num_train_epochs = 0;
  pretrain(a);  // a new model, its held-out loss evaluated at the end
  PretrainArgs e = small_args(c, c.dir + "/eval");
  e.tokenizer_name.clear();
  e.model_name_or_path = a.output_dir;
  e.hidden_size = e.num_hidden_layers = e.num_attention_heads = e.intermediate_size = 0;  // the model's
  e.do_eval = true;
  pretrain(e);
  EXPECT_FALSE(std::filesystem::exists(e.output_dir + "/model.safetensors"));
  std::ifstream in(e.output_dir + "/eval_results.json");
  const auto j = nlohmann::json::parse(in);
  std::ifstream in0(a.output_dir + "/eval_results.json");
  const auto j0 = nlohmann::json::parse(in0);
  EXPECT_EQ(j.at("eval_loss").get<double>(), j0.at("eval_loss").get<double>());  // same model, same data
}

TEST(Pretrain, BadInputIsAClearError) {
  const Corpus c = make_corpus("errors", 20);
  PretrainArgs a = small_args(c, c.dir + "/out");
  a.train_file = {c.dir + "/missing.txt"};
  try {
    pretrain(a);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.txt"), std::string::npos);
  }
  a = small_args(c, c.dir + "/out3");
  a.mlm_probability = 0;
  EXPECT_THROW(pretrain(a), ConfigError);
}

}  // namespace
}  // namespace bertfit
