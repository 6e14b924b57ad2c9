// Cross-checks with an independent implementation of the format: tools/io/safetensors_read.py (pure Python +
// numpy, run with /usr/bin/python3) reads what bertfit writes, and bertfit reads what it writes. Values must
// be bit-identical: both sides store and read the same IEEE bits, nothing is recomputed.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "io_test_util.h"

using namespace bertfit;

namespace {
const std::string kPython = "/usr/bin/python3";
const std::string kTool = std::string(BERTFIT_SOURCE_DIR) + "/tools/io/safetensors_read.py";

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  return out;
}
}  // namespace

TEST(PythonOracle, ReadsWhatBertfitWrites) {
  const std::string dir = test::temp_dir("py");
  std::vector<float> f = {0.1f, -3.5f, 1e-30f, 65504.0f, -0.0f, 7.25f};
  std::vector<uint16_t> h, b;
  for (float x : f) {
    h.push_back(f32_to_f16(x));
    b.push_back(f32_to_bf16(x));
  }
  const int64_t ids[3] = {0, 1, -7};
  const uint8_t flags[2] = {1, 0};
  auto p = [](const void* d) { return static_cast<const uint8_t*>(d); };
  write_safetensors(dir + "/m.safetensors",
                    {{"f32", DType::F32, {2, 3}, p(f.data()), 24, {}},
                     {"f16", DType::F16, {6}, p(h.data()), 12, {}},
                     {"bf16", DType::BF16, {3, 2}, p(b.data()), 12, {}},
                     {"ids", DType::I64, {1, 3}, p(ids), 24, {}},
                     {"flags", DType::BOOL, {2}, p(flags), 2, {}}},
                    {{"format", "pt"}});
  const auto j = nlohmann::json::parse(run(kPython + " " + kTool + " " + dir + "/m.safetensors --json"));
  EXPECT_EQ(j["metadata"]["format"], "pt");
  EXPECT_EQ(j["tensors"]["f32"]["shape"], (std::vector<int>{2, 3}));
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(j["tensors"]["f32"]["values"][i].get<float>(), f[i]);
    EXPECT_EQ(j["tensors"]["f16"]["values"][i].get<float>(), f16_to_f32(h[i]));
    EXPECT_EQ(j["tensors"]["bf16"]["values"][i].get<float>(), bf16_to_f32(b[i]));
  }
  EXPECT_EQ(j["tensors"]["ids"]["values"], (std::vector<int64_t>{0, 1, -7}));
  EXPECT_EQ(j["tensors"]["flags"]["values"], (std::vector<bool>{true, false}));
}

TEST(PythonOracle, BertfitReadsWhatPythonWrites) {
  const std::string dir = test::temp_dir("py");
  const std::string script =
      "import sys; sys.path.insert(0, '" + std::string(BERTFIT_SOURCE_DIR) +
      "/tools/io'); import numpy as np; "
      "import safetensors_read as st; st.save_file({'w': np.arange(12, dtype=np.float32).reshape(3, 4) / 8, "
      "'h': np.array([0.5, -1.0], np.float16), 'd': np.array([[1e-3]], np.float64), "
      "'i': np.array([3, -2], np.int32), 'b': np.array([True], bool)}, '" +
      dir + "/p.safetensors', {'format': 'pt'})";
  run(kPython + " -c \"" + script + "\"");
  auto f = SafetensorsFile::open(dir + "/p.safetensors");
  EXPECT_EQ(f.tensors().front().name, "d");  // the reference order: F64 first
  std::vector<float> w = to_f32(*f.find("w"));
  for (int i = 0; i < 12; ++i) EXPECT_EQ(w[i], i / 8.0f);
  EXPECT_EQ(to_f32(*f.find("h")), (std::vector<float>{0.5f, -1.0f}));
  EXPECT_EQ(to_f32(*f.find("d")), std::vector<float>{1e-3f});
  EXPECT_EQ(to_i64(*f.find("i")), (std::vector<int64_t>{3, -2}));
  EXPECT_EQ(to_i64(*f.find("b")), std::vector<int64_t>{1});
  // The two writers implement the reference layout independently: the bytes must be identical.
  EXPECT_EQ(serialize_safetensors(f.tensors(), f.metadata()), test::read_bytes(dir + "/p.safetensors"));
}

TEST(PythonOracle, ReadsSavedModelDirectory) {
  const std::string dir = test::temp_dir("py") + "/model";
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i) w[i] = 0.25f * i - 1;
  ModelConfig c;
  c.id2label = {"a", "b", "c"};
  save_model_dir(dir, c,
                 {{"classifier.weight", DType::F32, {3, 4}, reinterpret_cast<uint8_t*>(w.data()), 48, {}}});
  const std::string script =
      "import sys, json; sys.path.insert(0, '" + std::string(BERTFIT_SOURCE_DIR) +
      "/tools/io'); import safetensors_read as st; t = st.load_model_dir('" + dir +
      "'); c = json.load(open('" + dir +
      "/config.json')); print(json.dumps([t['classifier.weight'].reshape(-1).tolist(), "
      "c['id2label'], c['model_type']]))";
  const auto j = nlohmann::json::parse(run(kPython + " -c \"" + script + "\""));
  EXPECT_EQ(j[0].get<std::vector<float>>(), w);
  EXPECT_EQ(j[1]["2"], "c");
  EXPECT_EQ(j[2], "bert");
}
