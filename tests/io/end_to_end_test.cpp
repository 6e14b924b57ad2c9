// The end-to-end proofs, with the plain-PyTorch reference model (tools/reference/torch_bert.py) as
// the oracle, through tools/io/e2e_reference.py (/usr/bin/python3, torch 1.13):
//  1. a directory written by bertfit (save_model_dir) is read by a Python reader of the format (not bertfit)
//     and the reference model gives the same logits as bertfit;
//  2. a pytorch_model.bin written by torch.save of a reference model is read by bertfit (Checkpoint +
//  load_into)
//     and bertfit gives the logits the reference computed.
// Tolerance 1e-4 absolute on logits of magnitude ~1 (the bound): both sides compute in fp32 from the
// same bits, differing only in summation order (BLAS vs torch) over H=32 / I=37 terms, which costs ~1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "io_test_util.h"
#include "model/bert_model.h"

using namespace bertfit;

namespace {

const std::string kTool =
    "/usr/bin/python3 " + std::string(BERTFIT_SOURCE_DIR) + "/tools/io/e2e_reference.py";
constexpr float kTolerance = 1e-4f;

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd << "\n" << out;
  return out;
}

ModelConfig tiny(ModelFamily family) {
  ModelConfig c = family == ModelFamily::ROBERTA ? roberta_defaults() : ModelConfig();
  c.vocab_size = 99;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 37;
  c.max_position_embeddings = family == ModelFamily::ROBERTA ? 20 : 40;
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = 0.0f;
  c.id2label = {"a", "b", "c"};
  return c;
}

struct BatchData {
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids, types;
  std::vector<uint8_t> mask;
  Batch batch() const { return Batch{B, T, ids.data(), types.data(), mask.data(), nullptr}; }
  nlohmann::json json() const {
    nlohmann::json j;
    for (int64_t b = 0; b < B; ++b) {
      std::vector<int> i, m, t;
      for (int64_t k = 0; k < T; ++k) {
        i.push_back(ids[b * T + k]);
        m.push_back(mask[b * T + k]);
        t.push_back(types[b * T + k]);
      }
      j["input_ids"].push_back(i);
      j["attention_mask"].push_back(m);
      j["token_type_ids"].push_back(t);
    }
    return j;
  }
};

BatchData batch_from_json(const nlohmann::json& j) {
  BatchData d;
  d.B = static_cast<int64_t>(j["input_ids"].size());
  d.T = static_cast<int64_t>(j["input_ids"][0].size());
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.T; ++t) {
      d.ids.push_back(j["input_ids"][b][t]);
      d.mask.push_back(static_cast<uint8_t>(j["attention_mask"][b][t].get<int>()));
      d.types.push_back(j["token_type_ids"][b][t]);
    }
  return d;
}

std::vector<float> bertfit_logits(BertModel& m, const BatchData& d) {
  m.reserve(d.B, d.T);
  m.forward(d.batch(), /*training=*/false);
  const int64_t n = m.logits_rows() * m.config().num_labels();
  return std::vector<float>(m.logits(), m.logits() + n);
}

void compare(const std::vector<float>& ours, const nlohmann::json& theirs) {
  std::vector<float> flat;
  for (const auto& row : theirs)
    for (const auto& v : row) flat.push_back(v.get<float>());
  ASSERT_EQ(ours.size(), flat.size());
  float worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::fabs(ours[i] - flat[i]));
  EXPECT_LE(worst, kTolerance);
  std::printf("max |logit difference| = %.3g over %zu logits\n", static_cast<double>(worst), ours.size());
  float scale = 0;
  for (float v : flat) scale = std::max(scale, std::fabs(v));
  EXPECT_GT(scale, 0.1f);  // the logits carry signal, so agreement within 1e-4 means something
}

void written_by_bertfit_read_by_python(ModelFamily family) {
  const std::string dir = test::temp_dir("e2e") + "/model";
  BertModel m(tiny(family), HeadKind::SEQUENCE_CLASSIFICATION);
  // Weights ~ N(0, 0.1), LayerNorm weights around 1: larger than HF's init so every path carries signal.
  std::mt19937 rng(family == ModelFamily::ROBERTA ? 11 : 7);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  for (const ParamEntry& e : m.table().entries()) {
    const bool ln = e.name.find("LayerNorm.weight") != std::string::npos;
    for (size_t i = 0; i < e.numel; ++i) m.params()[e.offset + i] = normal(rng) + (ln ? 1.0f : 0.0f);
  }
  std::vector<TensorRef> tensors;
  for (const ParamEntry& e : m.table().entries())
    tensors.push_back({e.name,
                       DType::F32,
                       e.shape,
                       reinterpret_cast<const uint8_t*>(m.params() + e.offset),
                       e.numel * sizeof(float),
                       {}});
  ModelConfig config = m.config();
  save_model_dir(dir, config, tensors);

  BatchData d;
  d.B = 2;
  d.T = 7;
  const int pad = static_cast<int>(config.pad_token_id);
  d.ids = {5, 17, 42, 8, 63, 21, 9, 4, 77, 30, pad, pad, pad, pad};
  d.mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0};
  d.types.assign(14, 0);
  if (family == ModelFamily::BERT) d.types[4] = d.types[5] = d.types[6] = 1;
  test::write_text(dir + "/../batch.json", d.json().dump());
  const auto theirs = nlohmann::json::parse(run(kTool + " logits " + dir + " " + dir + "/../batch.json"));
  compare(bertfit_logits(m, d), theirs);
}

void torch_bin_read_by_bertfit(const std::string& family, int seed) {
  const std::string dir = test::temp_dir("e2e") + "/" + family;
  run(kTool + " make-bin " + dir + " " + family + " " + std::to_string(seed));
  const ModelConfig config = read_config_json(dir + "/config.json");
  BertModel m(config, HeadKind::SEQUENCE_CLASSIFICATION);
  std::vector<ExpectedTensor> expected;
  for (const ParamEntry& e : m.table().entries())
    expected.push_back({e.name, e.shape, m.params() + e.offset, false});
  const Checkpoint ckpt = Checkpoint::open(dir);
  EXPECT_EQ(ckpt.format(), WeightsFormat::TORCH_BIN);
  const LoadReport r = load_into(ckpt, m.prefix(), expected);
  EXPECT_TRUE(r.missing_initialized.empty());
  EXPECT_EQ(r.ignored, std::vector<std::string>{family + ".embeddings.position_ids"});
  std::ifstream in(dir + "/reference.json");
  const auto ref = nlohmann::json::parse(in);
  compare(bertfit_logits(m, batch_from_json(ref)), ref["logits"]);
}

}  // namespace

TEST(EndToEnd, BertDirectoryWrittenByBertfitReadByPython) {
  written_by_bertfit_read_by_python(ModelFamily::BERT);
}
TEST(EndToEnd, RobertaDirectoryWrittenByBertfitReadByPython) {
  written_by_bertfit_read_by_python(ModelFamily::ROBERTA);
}
TEST(EndToEnd, BertTorchSaveBinReadByBertfit) {
  torch_bin_read_by_bertfit("bert", 21);
}
TEST(EndToEnd, RobertaTorchSaveBinReadByBertfit) {
  torch_bin_read_by_bertfit("roberta", 22);
}
