// config.json: real configs (bert-base-uncased, roberta-base, hfl/chinese-roberta-wwm-ext as published), HF's
// class defaults for missing keys, the written form (sorted, use_diff fields, string id2label keys) and a
// round trip, and precise errors for wrong types, negative sizes, bad problem_type and bad id2label keys.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "io_test_util.h"

using namespace bertfit;
using bertfit::test::expect_error;

namespace {
const std::string kConfigs = std::string(BERTFIT_FIXTURES) + "/io/configs/";

void expect_config_error(const std::string& json, const std::vector<std::string>& fragments) {
  expect_error<ConfigError>([&] { parse_config_json(json, "cfg.json"); }, fragments);
}
}  // namespace

TEST(ConfigJson, BertBaseUncased) {
  ModelConfig c = read_config_json(kConfigs + "bert-base-uncased.json");
  EXPECT_EQ(c.family, ModelFamily::BERT);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.layer_norm_eps, 1e-12f);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertForMaskedLM"});
  EXPECT_EQ(c.num_labels(), 2);
  EXPECT_FALSE(c.problem_type_set);
  EXPECT_EQ(c.bos_token_id, -1);
  EXPECT_EQ(c.extra_json.at("gradient_checkpointing"), "false");
  EXPECT_EQ(c.extra_json.count("transformers_version"), 0u);
}

TEST(ConfigJson, RobertaBase) {
  ModelConfig c = read_config_json(kConfigs + "roberta-base.json");
  EXPECT_EQ(c.family, ModelFamily::ROBERTA);
  EXPECT_EQ(c.max_position_embeddings, 514);
  EXPECT_EQ(c.type_vocab_size, 1);
  EXPECT_EQ(c.layer_norm_eps, 1e-5f);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  // roberta-base's config names every field; it agrees with roberta_defaults().
  ModelConfig d = roberta_defaults();
  EXPECT_EQ(c.vocab_size, d.vocab_size);
  EXPECT_EQ(c.max_position_embeddings, d.max_position_embeddings);
}

TEST(ConfigJson, ChineseRobertaWwmIsBert) {
  ModelConfig c = read_config_json(kConfigs + "chinese-roberta-wwm-ext.json");
  EXPECT_EQ(c.family, ModelFamily::BERT);  // model_type "bert" wins over the model's name
  EXPECT_EQ(c.vocab_size, 21128);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_EQ(c.extra_json.at("pooler_type"), "\"first_token_transform\"");
}

TEST(ConfigJson, MissingKeysTakeClassDefaults) {
  ModelConfig r = parse_config_json(R"({"model_type":"roberta"})", "x");
  EXPECT_EQ(r.vocab_size, 50265);
  EXPECT_EQ(r.max_position_embeddings, 512);  // RobertaConfig's class default, not roberta-base's 514
  EXPECT_EQ(r.pad_token_id, 1);
  ModelConfig b = parse_config_json(R"({"architectures":["BertForSequenceClassification"]})", "x");
  EXPECT_EQ(b.family, ModelFamily::BERT);
  ModelConfig inferred = parse_config_json(R"({"architectures":["RobertaForSequenceClassification"]})", "x");
  EXPECT_EQ(inferred.family, ModelFamily::ROBERTA);
}

TEST(ConfigJson, LabelsAndProblemType) {
  ModelConfig c = parse_config_json(
      R"({"model_type":"bert","id2label":{"1":"pos","0":"neg","2":"中性"},"label2id":{"neg":0,"pos":1,"中性":2},
          "problem_type":"multi_label_classification"})",
      "x");
  EXPECT_EQ(c.id2label, (std::vector<std::string>{"neg", "pos", "中性"}));
  EXPECT_EQ(c.num_labels(), 3);
  EXPECT_TRUE(c.problem_type_set);
  EXPECT_EQ(c.problem_type, ProblemType::MULTI_LABEL);
  ModelConfig n =
      parse_config_json(R"({"model_type":"bert","num_labels":1,"problem_type":"regression"})", "x");
  EXPECT_EQ(n.id2label, std::vector<std::string>{"LABEL_0"});
  EXPECT_EQ(n.problem_type, ProblemType::REGRESSION);
}

TEST(ConfigJson, WrittenFormAndRoundTrip) {
  ModelConfig c = read_config_json(kConfigs + "chinese-roberta-wwm-ext.json");
  c.id2label = {"neg", "pos", "中性"};
  c.architectures = {"BertForSequenceClassification"};
  c.problem_type = ProblemType::SINGLE_LABEL;
  c.problem_type_set = true;
  c.classifier_dropout = 0.2f;
  const std::string text = config_json_text(c);
  // Python's json.dumps(sort_keys=True, indent=2) + "\n": escaped non-ASCII, "key": value, floats shortest.
  EXPECT_NE(text.find("\"0\": \"neg\""), std::string::npos);
  EXPECT_NE(text.find("\"\\u4e2d\\u6027\": 2"), std::string::npos);
  EXPECT_NE(text.find("\"hidden_dropout_prob\": 0.1,"), std::string::npos);
  EXPECT_NE(text.find("\"classifier_dropout\": 0.2,"), std::string::npos);
  EXPECT_NE(text.find("\"layer_norm_eps\": 1e-12,"), std::string::npos);
  EXPECT_NE(text.find("\"model_type\": \"bert\""), std::string::npos);
  EXPECT_NE(text.find("\"transformers_version\": \""), std::string::npos);
  EXPECT_NE(text.find("\"pooler_type\": \"first_token_transform\""), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
  auto j = nlohmann::json::parse(text);
  std::string prev;
  for (auto it = j.begin(); it != j.end(); ++it) {
    EXPECT_LT(prev, it.key());
    prev = it.key();
  }
  const std::string dir = test::temp_dir("cfg");
  write_config_json(dir + "/config.json", c);
  ModelConfig back = read_config_json(dir + "/config.json");
  EXPECT_EQ(back.id2label, c.id2label);
  EXPECT_EQ(back.classifier_dropout, 0.2f);
  EXPECT_EQ(back.problem_type, ProblemType::SINGLE_LABEL);
  EXPECT_EQ(back.vocab_size, 21128);
  auto expected_extra = c.extra_json;
  expected_extra["use_cache"] = "true";  // BertConfig always writes use_cache
  EXPECT_EQ(back.extra_json, expected_extra);
  EXPECT_EQ(config_json_text(back), text);  // a second write is byte-identical
}

TEST(ConfigJson, PreciseErrors) {
  expect_config_error(R"({"model_type":"bert","hidden_size":"768"})",
                      {"cfg.json", "hidden_size", "must be an integer", "string"});
  expect_config_error(R"({"model_type":"bert","hidden_size":768.5})", {"hidden_size", "must be an integer"});
  expect_config_error(R"({"model_type":"bert","num_hidden_layers":-3})", {"num_hidden_layers", "> 0", "-3"});
  expect_config_error(R"({"model_type":"bert","vocab_size":99999999999})", {"vocab_size", "2^31"});
  expect_config_error(R"({"model_type":"bert","problem_type":"ranking"})",
                      {"problem_type", "\"ranking\"", "regression"});
  expect_config_error(R"({"model_type":"bert","id2label":{"a":"x"}})", {"id2label", "key \"a\""});
  expect_config_error(R"({"model_type":"bert","id2label":{"0":"x","2":"y"}})", {"id2label", "key \"2\""});
  expect_config_error(R"({"model_type":"bert","id2label":{"0":"x","01":"y"}})", {"id2label", "\"01\""});
  expect_config_error(R"({"model_type":"bert","id2label":{"0":1}})", {"id2label", "must be a string"});
  expect_config_error(R"({"model_type":"bert","id2label":{"0":"x","1":"x"}})", {"appears twice"});
  expect_config_error(R"({"model_type":"bert","id2label":{"0":"x"},"num_labels":3})",
                      {"num_labels", "disagrees"});
  expect_config_error(R"({"model_type":"gpt2"})", {"model_type", "\"gpt2\"", "not supported"});
  expect_config_error(R"({"hidden_size":768})", {"model_type", "missing"});
  expect_config_error(R"({"model_type":"bert","layer_norm_eps":"1e-12"})",
                      {"layer_norm_eps", "must be a number"});
  expect_config_error(R"({"model_type":"bert","label2id":{"a":"0"}})", {"label2id", "must be an integer"});
  expect_config_error(R"({"model_type":"bert","model_type":"roberta"})", {"duplicate key \"model_type\""});
  expect_config_error(R"({"model_type":"bert",})", {"cfg.json", "invalid JSON"});
  expect_config_error("[1]", {"must be a JSON object"});
  // Validation after parsing names the file too.
  const std::string dir = test::temp_dir("cfg");
  test::write_text(dir + "/config.json",
                   R"({"model_type":"bert","hidden_size":100,"num_attention_heads":12})");
  expect_error<ConfigError>([&] { read_config_json(dir + "/config.json"); },
                            {dir + "/config.json", "hidden_size", "divisible"});
  test::write_text(dir + "/config.json", R"({"model_type":"bert","hidden_act":"relu"})");
  expect_error<ConfigError>([&] { read_config_json(dir + "/config.json"); }, {"hidden_act", "relu"});
  expect_error<ConfigError>([&] { read_config_json(dir + "/missing.json"); },
                            {"missing.json", "cannot open"});
}
