// Loads a parity fixture written by tools/reference/torch_bert.py (or torch_tricks.py, torch_electra.py) into
// a BertModel.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bertfit/io/safetensors.h"
#include "model/bert_model.h"

namespace bertfit::testing {

struct Fixture {
  SafetensorsFile file;
  ModelConfig config;
  HeadKind head = HeadKind::SEQUENCE_CLASSIFICATION;
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids, types, labels;
  std::vector<uint8_t> mask;
  nlohmann::json adamw;

  // dir: the fixtures' folder under tests/fixtures (the competition tricks' goldens are in "tricks").
  explicit Fixture(const std::string& name, const std::string& dir = "parity")
      : file(SafetensorsFile::open(std::string(BERTFIT_FIXTURES) + "/" + dir + "/" + name + ".safetensors")) {
    const auto j = nlohmann::json::parse(file.metadata().at("config"));
    config.family = j.at("model_type") == "roberta"   ? ModelFamily::ROBERTA
                    : j.at("model_type") == "electra" ? ModelFamily::ELECTRA
                                                      : ModelFamily::BERT;
    if (j.contains("embedding_size")) config.embedding_size = j.at("embedding_size");
    config.vocab_size = j.at("vocab_size");
    config.hidden_size = j.at("hidden_size");
    config.num_hidden_layers = j.at("num_hidden_layers");
    config.num_attention_heads = j.at("num_attention_heads");
    config.intermediate_size = j.at("intermediate_size");
    config.hidden_dropout_prob = j.at("hidden_dropout_prob");
    config.attention_probs_dropout_prob = j.at("attention_probs_dropout_prob");
    config.max_position_embeddings = j.at("max_position_embeddings");
    config.type_vocab_size = j.at("type_vocab_size");
    config.layer_norm_eps = j.at("layer_norm_eps");
    config.pad_token_id = j.at("pad_token_id");
    if (j.contains("classifier_dropout")) config.classifier_dropout = j.at("classifier_dropout");
    const int64_t nl = j.at("num_labels");
    for (int64_t i = 0; i < nl; ++i) config.id2label.push_back("LABEL_" + std::to_string(i));
    const std::string h = file.metadata().at("head");
    head = h == "mlm"    ? HeadKind::MASKED_LM
           : h == "disc" ? HeadKind::REPLACED_TOKEN_DETECTION
                         : HeadKind::SEQUENCE_CLASSIFICATION;
    adamw = nlohmann::json::parse(file.metadata().at("adamw"));
    const TensorRef* t = file.find("input.input_ids");
    B = t->shape[0];
    T = t->shape[1];
    ids = to_i32("input.input_ids");
    types = to_i32("input.token_type_ids");
    labels = to_i32("input.labels");
    for (int32_t m : to_i32("input.attention_mask")) mask.push_back(static_cast<uint8_t>(m));
  }

  std::vector<int32_t> to_i32(const std::string& name) const {
    std::vector<int32_t> out;
    for (int64_t v : bertfit::to_i64(*file.find(name))) out.push_back(static_cast<int32_t>(v));
    return out;
  }
  std::vector<float> f32(const std::string& name) const {
    const TensorRef* t = file.find(name);
    if (!t) ADD_FAILURE() << "fixture has no tensor " << name;
    return t ? bertfit::to_f32(*t) : std::vector<float>{};
  }
  // Floats per row of logits(): vocabulary (masked LM), one (replaced-token detection) or the labels.
  int64_t logit_width() const {
    return head == HeadKind::MASKED_LM                  ? config.vocab_size
           : head == HeadKind::REPLACED_TOKEN_DETECTION ? 1
                                                        : config.num_labels();
  }
  Batch batch() const { return Batch{B, T, ids.data(), types.data(), mask.data(), labels.data()}; }

  // Copies every parameter (prefix "" or e.g. "expected.after_adamw.") into the model; fails the test if a
  // model parameter is missing from the fixture or a fixture parameter is unknown to the model.
  void load_params(BertModel& m, const std::string& prefix = "") const {
    std::set<std::string> wanted;
    for (const ParamEntry& e : m.table().entries()) {
      wanted.insert(e.name);
      const TensorRef* t = file.find(prefix + e.name);
      ASSERT_NE(t, nullptr) << "fixture lacks " << prefix + e.name;
      ASSERT_EQ(t->shape, e.shape) << e.name;
      bertfit::to_f32(*t, m.params() + e.offset);
    }
    for (const TensorRef& t : file.tensors()) {
      const bool is_param = t.name.find('.') != std::string::npos && t.name.rfind("input.", 0) != 0 &&
                            t.name.rfind("expected.", 0) != 0 && t.name.rfind("grad.", 0) != 0;
      if (is_param) {
        EXPECT_TRUE(wanted.count(t.name)) << "model has no parameter " << t.name;
      }
    }
  }
};

}  // namespace bertfit::testing
