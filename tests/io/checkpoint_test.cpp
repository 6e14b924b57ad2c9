// Checkpoint directories: weights-file preference, sharded indexes, binding with HF's name conventions
// (prefix present or absent, gamma/beta, tied decoder, buffers, other heads), one error listing every
// problem, and the atomic directory save (including a process killed in the middle of it).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <numeric>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "io_test_util.h"
#include "tiny_model_config.h"

using namespace bertfit;
using bertfit::test::expect_error;
namespace fs = std::filesystem;

namespace {

// Owns float data for named tensors, so TensorRefs can point at it.
struct Store {
  std::vector<std::vector<float>> data;
  std::vector<TensorRef> refs;
  void add(const std::string& name, std::vector<int64_t> shape, float base) {
    const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
    data.emplace_back(n);
    std::iota(data.back().begin(), data.back().end(), base);
    refs.push_back({name, DType::F32, std::move(shape), nullptr, static_cast<size_t>(n) * 4, {}});
  }
  std::vector<TensorRef> views() {
    for (size_t i = 0; i < refs.size(); ++i) refs[i].data = reinterpret_cast<const uint8_t*>(data[i].data());
    return refs;
  }
};

// The parameters of a 1-layer BERT with H=4 as HF names them, plus a 3-label classifier.
const std::vector<std::pair<std::string, std::vector<int64_t>>> kBertParams = {
    {"bert.embeddings.word_embeddings.weight", {10, 4}},
    {"bert.embeddings.position_embeddings.weight", {8, 4}},
    {"bert.embeddings.LayerNorm.weight", {4}},
    {"bert.embeddings.LayerNorm.bias", {4}},
    {"bert.encoder.layer.0.attention.self.query.weight", {4, 4}},
    {"bert.encoder.layer.0.output.LayerNorm.weight", {4}},
    {"bert.pooler.dense.weight", {4, 4}},
    {"classifier.weight", {3, 4}},
    {"classifier.bias", {3}},
};

struct Model {
  std::vector<std::vector<float>> buffers;
  std::vector<ExpectedTensor> expected;
  explicit Model(bool head_optional = true) {
    for (const auto& [name, shape] : kBertParams) {
      const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
      buffers.emplace_back(n, -999.0f);
    }
    for (size_t i = 0; i < kBertParams.size(); ++i)
      expected.push_back({kBertParams[i].first, kBertParams[i].second, buffers[i].data(),
                          head_optional && kBertParams[i].first.rfind("classifier", 0) == 0});
  }
  const std::vector<float>& buf(const std::string& name) const {
    for (size_t i = 0; i < expected.size(); ++i)
      if (expected[i].name == name) return buffers[i];
    throw std::runtime_error(name);
  }
};

std::string write_dir(const std::string& tag, Store& s, const std::string& file = "model.safetensors") {
  const std::string dir = test::temp_dir(tag);
  write_safetensors(dir + "/" + file, s.views(), {{"format", "pt"}});
  return dir;
}

}  // namespace

TEST(Checkpoint, ExactNamesLoadAndConvert) {
  Store s;
  float base = 0;
  for (const auto& [name, shape] : kBertParams) s.add(name, shape, base += 100);
  s.add("bert.embeddings.position_ids", {1, 8}, 0);
  const std::string dir = write_dir("exact", s);
  Checkpoint c = Checkpoint::open(dir);
  EXPECT_EQ(c.format(), WeightsFormat::SAFETENSORS);
  EXPECT_EQ(c.weights_file(), dir + "/model.safetensors");
  EXPECT_EQ(c.metadata().at("format"), "pt");
  Model m;
  LoadReport r = load_into(c, "bert", m.expected);
  EXPECT_TRUE(r.missing_initialized.empty());
  EXPECT_EQ(r.ignored, std::vector<std::string>{"bert.embeddings.position_ids"});
  EXPECT_EQ(m.buf("classifier.bias"), (std::vector<float>{900, 901, 902}));
  EXPECT_EQ(m.buf("bert.embeddings.LayerNorm.weight")[3], 303.0f);
}

TEST(Checkpoint, BaseModelWithoutPrefixOldNamesAndOtherHeads) {
  // A base BertModel saved without "bert.", with old gamma/beta names, plus a pre-training head.
  Store s;
  s.add("embeddings.word_embeddings.weight", {10, 4}, 1);
  s.add("embeddings.position_embeddings.weight", {8, 4}, 2);
  s.add("embeddings.LayerNorm.gamma", {4}, 3);
  s.add("embeddings.LayerNorm.beta", {4}, 4);
  s.add("encoder.layer.0.attention.self.query.weight", {4, 4}, 5);
  s.add("encoder.layer.0.output.LayerNorm.gamma", {4}, 6);
  s.add("pooler.dense.weight", {4, 4}, 7);
  s.add("cls.predictions.decoder.weight", {10, 4}, 1);
  s.add("cls.seq_relationship.weight", {2, 4}, 8);
  const std::string dir = write_dir("base", s);
  Model m;
  LoadReport r = load_into(Checkpoint::open(dir), "bert", m.expected);
  EXPECT_EQ(r.missing_initialized, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_EQ(r.ignored,
            (std::vector<std::string>{"cls.predictions.decoder.weight", "cls.seq_relationship.weight"}));
  EXPECT_EQ(m.buf("bert.embeddings.LayerNorm.bias")[0], 4.0f);
  EXPECT_EQ(m.buf("bert.encoder.layer.0.output.LayerNorm.weight")[1], 7.0f);
  EXPECT_EQ(m.buf("classifier.weight")[0], -999.0f);  // untouched: the caller initialises it
}

TEST(Checkpoint, PrefixedCheckpointIntoBareEncoderAndTiedBias) {
  Store s;
  s.add("roberta.embeddings.word_embeddings.weight", {10, 4}, 1);
  s.add("lm_head.dense.weight", {4, 4}, 2);
  s.add("lm_head.decoder.bias", {10}, 3);  // the head bias stored only under its tied name
  const std::string dir = write_dir("tied", s);
  std::vector<float> emb(40), bias(10), dense(16);
  LoadReport r = load_into(Checkpoint::open(dir), "roberta",
                           {{"embeddings.word_embeddings.weight", {10, 4}, emb.data(), false},
                            {"lm_head.dense.weight", {4, 4}, dense.data(), false},
                            {"lm_head.bias", {10}, bias.data(), false}});
  EXPECT_EQ(emb[1], 2.0f);
  EXPECT_EQ(bias[9], 12.0f);
  EXPECT_TRUE(r.ignored.empty());
}

TEST(Checkpoint, EveryProblemInOneError) {
  Store s;
  for (const auto& [name, shape] : kBertParams) {
    if (name == "bert.pooler.dense.weight") continue;  // missing
    if (name == "classifier.weight")
      s.add(name, {2, 4}, 0);  // mis-shaped (2 labels, model has 3)
    else
      s.add(name, shape, 0);
  }
  s.add("bert.encoder.layer.1.attention.self.query.weight", {4, 4}, 0);  // unexpected: a second layer
  s.refs[2].dtype = DType::I32;  // mis-typed LayerNorm weight (same byte size as F32)
  const std::string dir = write_dir("all", s);
  Model m(/*head_optional=*/false);
  expect_error<FormatError>([&] { load_into(Checkpoint::open(dir), "bert", m.expected); },
                            {dir + "/model.safetensors", "1 missing, 1 unexpected, 1 mis-shaped, 1 mis-typed",
                             "missing: bert.pooler.dense.weight [4, 4]",
                             "unexpected: bert.encoder.layer.1.attention.self.query.weight",
                             "mis-shaped: classifier.weight: checkpoint [2, 4], model [3, 4]",
                             "mis-typed: bert.embeddings.LayerNorm.weight: I32"});
  // With HF's ignore_mismatched_sizes, an optional head of another size is re-initialised instead.
  Model opt;
  Store ok;
  for (const auto& [name, shape] : kBertParams)
    ok.add(name, name == "classifier.weight" ? std::vector<int64_t>{2, 4} : shape, 0);
  const std::string dir2 = write_dir("reinit", ok);
  expect_error<FormatError>([&] { load_into(Checkpoint::open(dir2), "bert", opt.expected); }, {"mis-shaped"});
  LoadReport r = load_into(Checkpoint::open(dir2), "bert", opt.expected, /*reinit_mismatched_optional=*/true);
  EXPECT_EQ(r.missing_initialized, std::vector<std::string>{"classifier.weight"});
}

TEST(Checkpoint, WrongFamilyGetsAHint) {
  Store s;
  s.add("roberta.embeddings.word_embeddings.weight", {10, 4}, 0);
  const std::string dir = write_dir("hint", s);
  Model m;
  expect_error<FormatError>([&] { load_into(Checkpoint::open(dir), "bert", m.expected); },
                            {"missing: bert.embeddings.word_embeddings.weight", "under \"roberta.\""});
}

TEST(Checkpoint, HalfPrecisionCheckpointsConvert) {
  std::vector<uint16_t> h = {f32_to_f16(0.5f), f32_to_f16(-2.0f), f32_to_f16(3.0f), f32_to_f16(1.0f)};
  std::vector<uint16_t> b = {f32_to_bf16(0.5f), f32_to_bf16(-2.0f), f32_to_bf16(3.0f), f32_to_bf16(1.0f)};
  const std::string dir = test::temp_dir("half");
  write_safetensors(
      dir + "/model.safetensors",
      {{"bert.embeddings.LayerNorm.weight", DType::F16, {4}, reinterpret_cast<uint8_t*>(h.data()), 8, {}},
       {"bert.embeddings.LayerNorm.bias", DType::BF16, {4}, reinterpret_cast<uint8_t*>(b.data()), 8, {}}},
      {});
  std::vector<float> w(4), bias(4);
  load_into(Checkpoint::open(dir), "bert",
            {{"bert.embeddings.LayerNorm.weight", {4}, w.data(), false},
             {"bert.embeddings.LayerNorm.bias", {4}, bias.data(), false}});
  EXPECT_EQ(w, (std::vector<float>{0.5f, -2.0f, 3.0f, 1.0f}));
  EXPECT_EQ(bias, w);
}

TEST(Checkpoint, ShardedIndex) {
  Store a, b;
  a.add("bert.embeddings.word_embeddings.weight", {10, 4}, 1);
  b.add("classifier.weight", {3, 4}, 2);
  const std::string dir = test::temp_dir("shards");
  write_safetensors(dir + "/model-00001-of-00002.safetensors", a.views(), {{"format", "pt"}});
  write_safetensors(dir + "/model-00002-of-00002.safetensors", b.views(), {{"format", "pt"}});
  test::write_text(dir + "/model.safetensors.index.json",
                   R"({"metadata":{"total_size":208},"weight_map":{"bert.embeddings.word_embeddings.weight":
                   "model-00001-of-00002.safetensors","classifier.weight":"model-00002-of-00002.safetensors"}})");
  Checkpoint c = Checkpoint::open(dir);
  EXPECT_EQ(c.format(), WeightsFormat::SAFETENSORS_SHARDED);
  EXPECT_EQ(c.files().size(), 2u);
  ASSERT_NE(c.find("classifier.weight"), nullptr);
  EXPECT_EQ(to_f32(*c.find("classifier.weight"))[11], 13.0f);
  test::write_text(
      dir + "/model.safetensors.index.json",
      R"({"weight_map":{"bert.embeddings.word_embeddings.weight":"model-00002-of-00002.safetensors"}})");
  expect_error<FormatError>([&] { Checkpoint::open(dir); },
                            {"index.json", "bert.embeddings.word_embeddings.weight is not in model-00002"});
  test::write_text(dir + "/model.safetensors.index.json", R"({"weight_map":{"x":"../../etc/passwd"}})");
  expect_error<FormatError>([&] { Checkpoint::open(dir); }, {"not a plain file name"});
}

TEST(Checkpoint, PreferenceAndTorchBin) {
  const std::string dir = test::temp_dir("pref");
  fs::copy_file(std::string(BERTFIT_FIXTURES) + "/io/bin/tiny.bin", dir + "/pytorch_model.bin");
  Checkpoint bin = Checkpoint::open(dir);
  EXPECT_EQ(bin.format(), WeightsFormat::TORCH_BIN);
  EXPECT_NE(bin.find("dense.weight_t"), nullptr);
  Store s;
  s.add("x", {2}, 0);
  write_safetensors(dir + "/model.safetensors", s.views(), {});
  EXPECT_EQ(Checkpoint::open(dir).format(), WeightsFormat::SAFETENSORS);  // safetensors wins, as in HF
  EXPECT_EQ(Checkpoint::open(dir + "/pytorch_model.bin").format(), WeightsFormat::TORCH_BIN);  // a file path
  const std::string empty = test::temp_dir("none");
  expect_error<FormatError>([&] { Checkpoint::open(empty); },
                            {empty, "no weights found", "pytorch_model.bin"});
}

namespace {
ModelConfig small_config() {
  return test::tiny_classifier_config(test::tiny_model_config(10, 4, 1, 1, 8, 8), {"neg", "mid", "pos"});
}
}  // namespace

TEST(SaveModelDir, WritesLoadableDirectoryAndCarriesFilesOver) {
  const std::string root = test::temp_dir("save");
  const std::string dir = root + "/out";
  Store s;
  for (const auto& [name, shape] : kBertParams) s.add(name, shape, 1);
  s.add("cls.predictions.decoder.weight", {10, 4}, 0);  // tied copy: dropped
  save_model_dir(dir, small_config(), s.views(),
                 [](const std::string& d) { test::write_text(d + "/vocab.txt", "[PAD]\n"); });
  EXPECT_EQ(read_config_json(dir + "/config.json").id2label, small_config().id2label);
  Checkpoint c = Checkpoint::open(dir);
  EXPECT_EQ(c.tensors().size(), kBertParams.size());
  EXPECT_EQ(c.find("cls.predictions.decoder.weight"), nullptr);
  EXPECT_TRUE(fs::exists(dir + "/vocab.txt"));

  // Second save over it: vocab.txt and a subdirectory survive, a stale pytorch_model.bin does not.
  test::write_text(dir + "/pytorch_model.bin", "stale");
  fs::create_directories(dir + "/checkpoint-5");
  test::write_text(dir + "/checkpoint-5/x", "keep");
  ModelConfig c2 = small_config();
  c2.id2label = {"a", "b", "c"};
  save_model_dir(dir, c2, s.views());
  EXPECT_EQ(read_config_json(dir + "/config.json").id2label, c2.id2label);
  EXPECT_TRUE(fs::exists(dir + "/vocab.txt"));
  EXPECT_FALSE(fs::exists(dir + "/pytorch_model.bin"));
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-5/x"));
  int entries = 0;
  for (auto& e : fs::directory_iterator(root)) entries += 1 + 0 * e.is_directory();
  EXPECT_EQ(entries, 1);  // no staging or old directory left
  for (auto& e : fs::directory_iterator(dir))
    EXPECT_NE(e.path().filename().string().rfind(".bertfit-save-", 0), 0u) << e.path();

  // Saved through a symlink and as "dir/.": the directory keeps its inode (a mount point, a volume, or ".",
  // cannot be renamed), the symlink stays a symlink, the files are the new ones.
  fs::create_directory_symlink("out", root + "/link");
  auto inode = [](const std::string& path) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st.st_ino;
  };
  const auto before = inode(dir);
  ModelConfig c3 = small_config();
  c3.id2label = {"x", "y", "z"};
  save_model_dir(root + "/link", c3, s.views());
  EXPECT_TRUE(fs::is_symlink(root + "/link"));
  EXPECT_TRUE(fs::equivalent(root + "/link", dir));
  EXPECT_EQ(read_config_json(dir + "/config.json").id2label, c3.id2label);
  EXPECT_EQ(inode(dir), before);
  ModelConfig c4 = small_config();
  c4.id2label = {"p", "q", "r"};
  save_model_dir(dir + "/.", c4, s.views());
  EXPECT_EQ(read_config_json(dir + "/config.json").id2label, c4.id2label);
  EXPECT_TRUE(fs::exists(dir + "/checkpoint-5/x"));
  EXPECT_EQ(inode(dir), before);
}

TEST(SaveModelDir, FailureOrCrashLeavesPreviousDirectoryIntact) {
  const std::string root = test::temp_dir("crash");
  const std::string dir = root + "/out";
  Store s;
  for (const auto& [name, shape] : kBertParams) s.add(name, shape, 1);
  save_model_dir(dir, small_config(), s.views());
  const auto before_cfg = test::read_bytes(dir + "/config.json");
  const auto before_w = test::read_bytes(dir + "/model.safetensors");
  ModelConfig other = small_config();
  other.hidden_dropout_prob = 0.3f;
  Store t;
  for (const auto& [name, shape] : kBertParams) t.add(name, shape, 50);
  // An exception mid-save: nothing changes, the staging directory is removed.
  EXPECT_THROW(
      save_model_dir(dir, other, t.views(), [](const std::string&) { throw FormatError("disk full"); }),
      FormatError);
  EXPECT_EQ(test::read_bytes(dir + "/config.json"), before_cfg);
  EXPECT_EQ(test::read_bytes(dir + "/model.safetensors"), before_w);
  // A process killed mid-save (after the new weights are written, before the swap): the old dir is intact.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    save_model_dir(dir, other, t.views(), [](const std::string&) { ::kill(::getpid(), SIGKILL); });
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(test::read_bytes(dir + "/config.json"), before_cfg);
  EXPECT_EQ(test::read_bytes(dir + "/model.safetensors"), before_w);
  Model m;
  load_into(Checkpoint::open(dir), "bert", m.expected);
  EXPECT_EQ(m.buf("classifier.bias")[0], 1.0f);
  // The killed save's staging directory inside dir is removed by the next save.
  const std::string left = dir + "/.bertfit-save-" + std::to_string(pid);
  EXPECT_TRUE(fs::exists(left));
  save_model_dir(dir, other, t.views());
  EXPECT_FALSE(fs::exists(left));
  EXPECT_EQ(read_config_json(dir + "/config.json").hidden_dropout_prob, 0.3f);
}
