// pytorch_model.bin: files written by torch.save (tools/io/make_bin_fixture.py, torch 1.13) read back with
// the values torch reported, shared storages and strided views as torch made them, the archive prefix found
// in both naming styles, the zip index cross-checked with libzip, and the unpickler's refusals.
#include <gtest/gtest.h>
#include <zip.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/pickle.h"
#include "bertfit/io/torch_bin.h"
#include "bertfit/io/zip.h"
#include "io_test_util.h"

using namespace bertfit;
using bertfit::test::expect_error;

namespace {
const std::string kBin = std::string(BERTFIT_FIXTURES) + "/io/bin/";

void check_against_expected(const TorchBinFile& f) {
  std::ifstream in(kBin + "tiny.expected.json");
  const auto expected = nlohmann::ordered_json::parse(in);
  ASSERT_EQ(f.tensors().size(), expected.size());
  size_t i = 0;
  for (auto it = expected.begin(); it != expected.end(); ++it, ++i) {
    const TensorRef& t = f.tensors()[i];
    SCOPED_TRACE(it.key());
    EXPECT_EQ(t.name, it.key());  // state-dict order
    EXPECT_EQ(dtype_name(t.dtype), it.value()["dtype"].get<std::string>());
    EXPECT_EQ(t.shape, it.value()["shape"].get<std::vector<int64_t>>());
    if (dtype_is_float(t.dtype)) {
      // Exact: torch printed each element as float(); f16/bf16/f32 are exact in f32, f64 rounds as float()
      // does.
      const auto want = it.value()["values"].get<std::vector<double>>();
      const auto got = to_f32(t);
      ASSERT_EQ(got.size(), want.size());
      for (size_t k = 0; k < got.size(); ++k) EXPECT_EQ(got[k], static_cast<float>(want[k])) << k;
    } else {
      EXPECT_EQ(to_i64(t), it.value()["values"].get<std::vector<int64_t>>());
    }
  }
}

std::string pk(const std::string& body) {
  return std::string("\x80\x02", 2) + body;
}
// BINUNICODE s, BININT1 v: built with explicit lengths because the bytes contain NULs.
std::string u(const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  return "X" + std::string(reinterpret_cast<const char*>(&n), 4) + s;
}
std::string k(int v) {
  return std::string("K") + static_cast<char>(v);
}
std::string storage_pid(const std::string& cls, const std::string& key, int numel) {
  return "(" + u("storage") + "ctorch\n" + cls + "\n" + u(key) + u("cpu") + k(numel) + "tQ";
}

void expect_pickle_error(const std::string& bytes, const std::vector<std::string>& fragments) {
  expect_error<FormatError>(
      [&] { pickle::unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.pkl"); },
      fragments);
}
}  // namespace

TEST(TorchBin, ReadsTorchSaveOutput) {
  auto f = TorchBinFile::open(kBin + "tiny.bin");
  EXPECT_EQ(f.archive_prefix(), "tiny");
  check_against_expected(f);
  // Tied weights share bytes; .t() is a strided view of the same storage; a slice starts 2 rows in.
  const TensorRef* emb = f.find("embeddings.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(f.find("decoder.weight")->data, emb->data);
  EXPECT_EQ(f.find("emb_rows")->data, emb->data + 2 * 4 * 4);
  EXPECT_EQ(f.find("dense.weight_t")->data, f.find("dense.weight")->data);
  EXPECT_EQ(f.find("dense.weight_t")->strides, (std::vector<int64_t>{1, 4}));
  EXPECT_TRUE(f.find("dense.weight")->strides.empty());
  // Payloads are 64-byte aligned in the file (torch's "FB" padding), so f32 views are aligned.
  for (const TensorRef& t : f.tensors())
    if (t.numel() > 0 && t.name != "emb_rows") {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 64, 0u) << t.name;
    }
}

TEST(TorchBin, PrefixIsNotHardCoded) {
  auto f = TorchBinFile::open(kBin + "archive.bin");
  EXPECT_EQ(f.archive_prefix(), "archive");
  check_against_expected(f);
}

void check_with_libzip(const std::string& path) {
  auto z = ZipArchive::open(path);
  int err = 0;
  zip_t* lz = zip_open(path.c_str(), ZIP_RDONLY, &err);
  ASSERT_NE(lz, nullptr);
  ASSERT_EQ(static_cast<size_t>(zip_get_num_entries(lz, 0)), z.entries().size());
  for (zip_int64_t i = 0; i < zip_get_num_entries(lz, 0); ++i) {
    zip_stat_t st;
    ASSERT_EQ(zip_stat_index(lz, i, 0, &st), 0);
    const ZipEntry* e = z.find(st.name);
    ASSERT_NE(e, nullptr) << st.name;
    EXPECT_EQ(e->size, st.size);
    EXPECT_EQ(e->crc32, st.crc);
    std::vector<char> buf(st.size + 1);
    zip_file_t* zf = zip_fopen_index(lz, i, 0);
    ASSERT_EQ(zip_fread(zf, buf.data(), st.size), static_cast<zip_int64_t>(st.size));
    zip_fclose(zf);
    EXPECT_EQ(std::memcmp(buf.data(), z.data(*e), st.size), 0) << st.name;
  }
  zip_close(lz);
}

TEST(TorchBin, ZipIndexAgreesWithLibzip) {
  check_with_libzip(kBin + "tiny.bin");
}

TEST(TorchBin, CorruptionIsDetected) {
  auto bytes = test::read_bytes(kBin + "tiny.bin");
  auto z = ZipArchive::parse(bytes.data(), bytes.size(), "mem");
  const ZipEntry* e = z.find("tiny/data/1");
  ASSERT_NE(e, nullptr);
  bytes[e->data_offset + 3] ^= 0x40;  // flip a bit inside a tensor payload
  expect_error<FormatError>([&] { TorchBinFile::parse(bytes.data(), bytes.size(), "flipped.bin"); },
                            {"flipped.bin", "tiny/data/1", "CRC-32 mismatch"});
}

TEST(Pickle, RefusesForbiddenGlobalsAndOpcodes) {
  expect_pickle_error(pk("cos\nsystem\n(X\x02\x00\x00\x00lst\x85R."),
                      {"t.pkl", "forbidden global os.system"});
  expect_pickle_error(pk("cbuiltins\neval\n."), {"forbidden global builtins.eval"});
  expect_pickle_error(pk("ctorch\nTensor\n."), {"forbidden global torch.Tensor"});
  expect_pickle_error(pk("cposix\nsystem\n."), {"forbidden"});
  expect_pickle_error(std::string("\x80\x04\x95", 3), {"protocol 4"});
  expect_pickle_error(pk("(i os\nsystem\n."), {"opcode 0x69 is not allowed"});
  expect_pickle_error(pk("h\x05."), {"memo key 5 was never stored"});
  expect_pickle_error(pk("X\xff\xff\xff\x7f"
                         "abc"),
                      {"runs past the end"});
  expect_pickle_error(pk("N"), {"truncated"});
  expect_pickle_error(pk("NN."), {"2 objects on the stack"});
  expect_pickle_error(pk("s."), {"stack underflow"});
  expect_pickle_error(pk("t."), {"no MARK"});
  expect_pickle_error(pk("ccollections\nOrderedDict\nK\x01\x85R."), {"OrderedDict() called with arguments"});
  expect_pickle_error(pk("]K\x01K\x02s."), {"SETITEM on a list"});
  expect_pickle_error(pk("\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09."), {"does not fit in 64 bits"});
  // A rebuilt tensor whose view runs past its storage (offset 5 of a 4-element storage).
  expect_pickle_error(pk("ctorch._utils\n_rebuild_tensor_v2\n(" + storage_pid("FloatStorage", "0", 4) + k(5) +
                         k(1) + "\x85" + k(1) + "\x85\x89}tR."),
                      {"reaches element 5 of a storage with 4 elements"});
}

TEST(Pickle, AcceptsWhatTorchWrites) {
  const std::string one = std::string("G\x3f\xf0", 3) + std::string(6, '\0');  // BINFLOAT 1.0 (big-endian)
  const auto p = pk("ccollections\nOrderedDict\n)R(" + u("w") + "ctorch._utils\n_rebuild_tensor_v2\n(" +
                    storage_pid("HalfStorage", "7", 6) + k(0) + k(2) + k(3) + "\x86" + k(1) + k(2) +
                    "\x86\x89}tRu}b" + one + "\x8a\x01\xff\x87.");
  auto r = pickle::unpickle(reinterpret_cast<const uint8_t*>(p.data()), p.size(), "ok.pkl");
  const auto& root = r.root_object();
  ASSERT_EQ(root.kind, pickle::Kind::TUPLE);
  const auto& d = r.at(root.items[0]);
  EXPECT_TRUE(d.ordered);
  ASSERT_EQ(d.items.size(), 2u);
  EXPECT_EQ(r.str(r.at(d.items[0])), "w");
  const auto& t = r.tensors[r.at(d.items[1]).ref];
  EXPECT_EQ(t.size, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(t.stride, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r.storages[t.storage].dtype, DType::F16);
  EXPECT_EQ(r.storages[t.storage].key, "7");
  EXPECT_EQ(r.at(root.items[1]).f, 1.0);
  EXPECT_EQ(r.at(root.items[2]).i, -1);
}

namespace {
std::string run_python(const std::string& script) {
  std::string out;
  FILE* p = popen(("/usr/bin/python3 -c \"" + script + "\"").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << script << "\n" << out;
  return out;
}
}  // namespace

TEST(TorchBinWriter, TorchLoadsWhatBertfitWrites) {
  const std::string dir = test::temp_dir("binw");
  const std::string path = dir + "/pytorch_model.bin";
  const float w[6] = {0.5f, -1, 2, 3.25f, -4, 5};
  const uint16_t h[2] = {f32_to_f16(1.5f), f32_to_f16(-2)};
  const uint16_t b[2] = {f32_to_bf16(0.25f), f32_to_bf16(-8)};
  const int64_t ids[4] = {0, 1, 2, 3};
  const uint8_t flags[2] = {1, 0};
  auto p = [](const void* d) { return static_cast<const uint8_t*>(d); };
  write_torch_bin(path, {{"w", DType::F32, {2, 3}, p(w), 24, {}},
                         {"w.t", DType::F32, {3, 2}, p(w), 24, {1, 3}},
                         {"h", DType::F16, {2}, p(h), 4, {}},
                         {"b", DType::BF16, {2}, p(b), 4, {}},
                         {"position_ids", DType::I64, {1, 4}, p(ids), 32, {}},
                         {"flags", DType::BOOL, {2}, p(flags), 2, {}},
                         {"scalar", DType::F32, {}, p(w + 3), 4, {}},
                         {"empty", DType::F32, {0, 3}, nullptr, 0, {}}});
  // bertfit reads it back.
  auto f = TorchBinFile::open(path);
  EXPECT_EQ(f.archive_prefix(), "pytorch_model");
  EXPECT_EQ(to_f32(*f.find("w.t")), (std::vector<float>{0.5f, 3.25f, -1, -4, 2, 5}));
  EXPECT_EQ(to_f32(*f.find("b")), (std::vector<float>{0.25f, -8}));
  EXPECT_EQ(to_i64(*f.find("position_ids")), (std::vector<int64_t>{0, 1, 2, 3}));
  // torch reads it, even in its restricted weights_only mode, and every payload is 64-byte aligned.
  const std::string out = run_python("import torch, json; sd = torch.load('" + path +
                                     "', weights_only=True); "
                                     "print(json.dumps({k: [str(v.dtype), list(v.shape), "
                                     "v.float().reshape(-1).tolist()] for k, v in sd.items()}))");
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["w"][0], "torch.float32");
  EXPECT_EQ(j["w"][2].get<std::vector<float>>(), (std::vector<float>{0.5f, -1, 2, 3.25f, -4, 5}));
  EXPECT_EQ(j["w.t"][1], (std::vector<int>{3, 2}));
  EXPECT_EQ(j["w.t"][2].get<std::vector<float>>(), (std::vector<float>{0.5f, 3.25f, -1, -4, 2, 5}));
  EXPECT_EQ(j["h"][0], "torch.float16");
  EXPECT_EQ(j["h"][2].get<std::vector<float>>(), (std::vector<float>{1.5f, -2}));
  EXPECT_EQ(j["b"][0], "torch.bfloat16");
  EXPECT_EQ(j["position_ids"][0], "torch.int64");
  EXPECT_EQ(j["flags"][0], "torch.bool");
  EXPECT_EQ(j["scalar"][1], std::vector<int>{});
  EXPECT_EQ(j["empty"][1], (std::vector<int>{0, 3}));
  auto z = ZipArchive::open(path);
  for (const ZipEntry& e : z.entries()) EXPECT_EQ(e.data_offset % 64, 0u) << e.name;
  check_with_libzip(path);
  expect_error<FormatError>(
      [&] {
        write_torch_bin(dir + "/x.bin", {{"c", DType::C64, {1}, p(w), 8, {}}});
      },
      {"x.bin", "C64", "no torch storage"});
}
