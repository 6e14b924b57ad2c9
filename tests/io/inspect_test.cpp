// `bertfit inspect` as a library call: a consistent directory reports its sizes, parameter count, heads and
// tokenizer with no problem; each kind of breakage becomes a named problem instead of an exception.
#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/inspect.h"
#include "bertfit/io/safetensors.h"
#include "io_test_util.h"
#include "tiny_model_config.h"

using namespace bertfit;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny_config() {
  return test::tiny_classifier_config(test::tiny_model_config(12, 8, 2, 2, 16, 16), {"neg", "pos", "neu"});
}

// Writes a directory with every encoder tensor of `c`, a pooler and a classifier of `labels` rows.
int64_t write_model(const std::string& dir, const ModelConfig& c, int64_t labels,
                    const std::string& skip = "") {
  std::vector<std::vector<float>> data;
  std::vector<TensorRef> refs;
  int64_t params = 0;
  auto params_list = hf_encoder_parameters(c, true);
  params_list.push_back({"classifier.weight", {labels, c.hidden_size}});
  params_list.push_back({"classifier.bias", {labels}});
  for (auto& [name, shape] : params_list) {
    if (name == skip) continue;
    const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
    data.emplace_back(n, 0.5f);
    params += n;
    refs.push_back({name, DType::F32, shape, nullptr, static_cast<size_t>(n) * 4, {}});
  }
  for (size_t i = 0; i < refs.size(); ++i) refs[i].data = reinterpret_cast<const uint8_t*>(data[i].data());
  save_model_dir(dir, c, refs, [](const std::string& d) {
    std::string vocab;
    for (int i = 0; i < 12; ++i) vocab += "[tok" + std::to_string(i) + "]\n";
    test::write_text(d + "/vocab.txt", vocab);
  });
  return params;
}

}  // namespace

TEST(Inspect, ConsistentDirectory) {
  const std::string dir = test::temp_dir("inspect") + "/model";
  const int64_t params = write_model(dir, tiny_config(), 3);
  InspectReport r = inspect_model_dir(dir);
  EXPECT_TRUE(r.problems.empty()) << r.problems.front();
  EXPECT_EQ(r.num_parameters, params);
  EXPECT_EQ(r.dtypes.at("F32"), r.num_tensors);
  EXPECT_EQ(r.heads, (std::vector<std::string>{"pooler", "classifier (3 outputs)"}));
  EXPECT_EQ(r.tokenizer, "WordPiece (vocab.txt, 12 tokens)");
  const std::string text = format_inspect_report(r, false);
  for (const char* s :
       {"architecture bert (BertForSequenceClassification)", "2 layers, hidden 8, 2 heads of 4",
        "labels       3: neg pos neu", "problems     none", "tokenizer    WordPiece"})
    EXPECT_NE(text.find(s), std::string::npos) << s << "\n" << text;
}

TEST(Inspect, ProblemsAreReportedNotThrown) {
  const std::string root = test::temp_dir("inspect");
  // A missing layer tensor and a classifier sized for another label set.
  write_model(root + "/a", tiny_config(), 2, "bert.encoder.layer.1.output.dense.weight");
  InspectReport a = inspect_model_dir(root + "/a");
  ASSERT_EQ(a.problems.size(), 2u);
  EXPECT_NE(a.problems[0].find("classifier has 2 outputs but config.json has 3 labels"), std::string::npos);
  EXPECT_NE(a.problems[1].find("missing: bert.encoder.layer.1.output.dense.weight [8, 16]"),
            std::string::npos);
  // A config the engine refuses, and a tokenizer bigger than the embeddings.
  ModelConfig c = tiny_config();
  c.vocab_size = 10;
  write_model(root + "/b", c, 3);
  test::write_text(root + "/b/config.json", R"({"model_type":"bert","vocab_size":10,"hidden_size":8,
    "num_hidden_layers":2,"num_attention_heads":3,"intermediate_size":16,"max_position_embeddings":16,
    "id2label":{"0":"a","1":"b","2":"c"}})");
  InspectReport b = inspect_model_dir(root + "/b");
  std::string all;
  for (const auto& p : b.problems) all += p + "\n";
  EXPECT_NE(all.find("divisible by num_attention_heads"), std::string::npos) << all;
  EXPECT_NE(all.find("ids up to 11 but the embeddings have only 10 rows"), std::string::npos) << all;
  // Nothing readable at all.
  fs::create_directories(root + "/c");
  test::write_text(root + "/c/model.safetensors", "garbage");
  InspectReport e = inspect_model_dir(root + "/c");
  ASSERT_EQ(e.problems.size(), 2u);
  EXPECT_NE(e.problems[0].find("no config.json"), std::string::npos);
  EXPECT_NE(e.problems[1].find("HeaderTooSmall"), std::string::npos);
  EXPECT_EQ(e.notes.size(), 1u);  // no tokenizer files
  EXPECT_NE(format_inspect_report(e, false).find("PROBLEM"), std::string::npos);
  // An empty vocabulary: every tokenizer refuses it, so inspect must not say "problems none".
  write_model(root + "/d", tiny_config(), 3);
  test::write_text(root + "/d/vocab.txt", "");
  InspectReport d = inspect_model_dir(root + "/d");
  ASSERT_EQ(d.problems.size(), 1u);
  EXPECT_NE(d.problems[0].find("vocab.txt: empty"), std::string::npos) << d.problems[0];
}

TEST(Inspect, SaysWhereTransformersWouldComputeSomethingElse) {
  ModelConfig c = tiny_config();
  auto with = [&](ModelFamily family, const std::string& features, const std::string& chunks) {
    ModelConfig x = c;
    x.family = family;
    x.extra_json["bertfit"] = R"({"features":")" + features + R"(","chunk_pooling":")" + chunks + R"("})";
    return transformers_difference(x);
  };
  // transformers' own heads: BERT's pooler, RoBERTa's and ELECTRA's [CLS] head; no chunks.
  EXPECT_EQ(with(ModelFamily::BERT, "pooler", "none"), "");
  EXPECT_EQ(with(ModelFamily::ROBERTA, "cls", "none"), "");
  EXPECT_EQ(with(ModelFamily::ELECTRA, "cls", "none"), "");
  EXPECT_EQ(transformers_difference(c), "");  // no "bertfit" settings: nothing to say
  EXPECT_NE(with(ModelFamily::BERT, "cls", "none").find("would add a random pooler"), std::string::npos);
  EXPECT_NE(with(ModelFamily::ROBERTA, "last4-concat", "none").find("RobertaForSequenceClassification"),
            std::string::npos);
  EXPECT_NE(with(ModelFamily::BERT, "pooler", "attention").find("chunk_pooling 'attention'"),
            std::string::npos);
}

TEST(Inspect, TorchBinAndTiedWeightsCountedOnce) {
  const std::string dir = test::temp_dir("inspect");
  fs::copy_file(std::string(BERTFIT_FIXTURES) + "/io/bin/tiny.bin", dir + "/pytorch_model.bin");
  InspectReport r = inspect_model_dir(dir);
  EXPECT_EQ(r.weights_format, "torch zip");
  // tiny.bin: embeddings 20 + dense 12 + 3 + LayerNorm 3 + 3 + half 6 + bf16 4 + f64 2 + scalar 1 + param 2 =
  // 56 distinct floats; decoder.weight (tied), dense.weight_t (a .t() view) and emb_rows (a slice) lie inside
  // storages already counted. position_ids and flags are not floats; empty has no elements.
  EXPECT_EQ(r.num_parameters, 56);
  EXPECT_EQ(r.dtypes.at("I64"), 1u);
}
