// The hostile corpus: every malformed input (tools/io/make_hostile_corpus.py generates them into the build
// tree; tests/fixtures/io/hostile/ holds committed ones) must give the expected bertfit::Error whose message
// names the file and the problem, never a crash, and never a large allocation: the largest single allocation
// while loading is bounded by 1 MiB + 64 x the input's size (parsers are linear; no declared length is
// trusted).
#include <gtest/gtest.h>

#include <unistd.h>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "bertfit/io/safetensors.h"
#include "bertfit/io/torch_bin.h"
#include "io_test_util.h"

// GCC pairs our replaced operator new with the free() inside our operator delete and warns; the pair is ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
// Largest single allocation while `g_tracking` is set. Replacing the global operator new is allowed by the
// standard (and honoured by ASan, which intercepts the malloc underneath).
static std::atomic<bool> g_tracking{false};
static std::atomic<size_t> g_largest{0};
// Every replaceable form is replaced (plain, array, nothrow, aligned), so each new has its matching delete.
static void note(size_t n) {
  if (g_tracking.load(std::memory_order_relaxed) && n > g_largest.load(std::memory_order_relaxed))
    g_largest = n;
}
void* operator new(size_t n) {
  note(n);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  return operator new(n);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  note(n);
  return std::malloc(n ? n : 1);
}
void* operator new[](size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void* operator new(size_t n, std::align_val_t a) {
  note(n);
  const size_t al = static_cast<size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}

using namespace bertfit;
namespace fs = std::filesystem;

namespace {

struct Case {
  std::string path, loader, error;
  std::vector<std::string> fragments;
};

std::vector<Case> load_manifest(const std::string& dir) {
  std::ifstream in(dir + "/manifest.json");
  std::vector<Case> out;
  for (const auto& c : nlohmann::json::parse(in))
    out.push_back({dir + "/" + c["file"].get<std::string>(), c["loader"], c["error"], c["fragments"]});
  return out;
}

uint64_t input_size(const std::string& path) {
  if (!fs::is_directory(path)) return fs::file_size(path);
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(path)) n += e.is_regular_file() ? e.file_size() : 0;
  return n;
}

void load(const Case& c) {
  if (c.loader == "safetensors")
    SafetensorsFile::open(c.path);
  else if (c.loader == "torch_bin") {
    TorchBinFile f = TorchBinFile::open(c.path);
    for (const auto& t : f.tensors()) to_f32(t);
  } else if (c.loader == "config")
    read_config_json(c.path);
  else if (c.loader == "checkpoint")
    Checkpoint::open(c.path);
  else
    FAIL() << "unknown loader " << c.loader;
}

class Hostile : public ::testing::Test {
 protected:
  // One corpus per process: ctest runs each test of this file as its own process, in parallel.
  static void SetUpTestSuite() {
    dir_ =
        new std::string(std::string(BERTFIT_BINARY_DIR) + "/tests/io/hostile-" + std::to_string(::getpid()));
    fs::remove_all(*dir_);
    const std::string cmd = "/usr/bin/python3 " + std::string(BERTFIT_SOURCE_DIR) +
                            "/tools/io/make_hostile_corpus.py " + *dir_ + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    fs::remove_all(*dir_, ec);
    delete dir_;
  }
  static std::string* dir_;
};
std::string* Hostile::dir_ = nullptr;

void check(const Case& c) {
  SCOPED_TRACE(c.path);
  std::string message, type = "none";
  g_largest = 0;
  g_tracking = true;
  try {
    load(c);
  } catch (const ConfigError& e) {
    type = "ConfigError";
    message = e.what();
  } catch (const FormatError& e) {
    type = "FormatError";
    message = e.what();
  } catch (const std::exception& e) {
    type = std::string("other: ") + e.what();
  }
  g_tracking = false;
  if (std::getenv(
          "BERTFIT_HOSTILE_VERBOSE"))  // to read every message: BERTFIT_HOSTILE_VERBOSE=1 io_hostile_test
    std::printf("%-45s %8zu B max alloc | %s\n", fs::path(c.path).filename().c_str(), g_largest.load(),
                message.c_str());
  EXPECT_EQ(type, c.error) << message;
  const std::string name = fs::path(c.path).filename().string();
  EXPECT_NE(message.find(name), std::string::npos) << "message does not name the file: " << message;
  // Fragments must describe the problem, so they are looked for with the path taken out of the message.
  std::string problem = message;
  for (size_t at; (at = problem.find(c.path)) != std::string::npos;) problem.erase(at, c.path.size());
  for (size_t at; (at = problem.find(name)) != std::string::npos;) problem.erase(at, name.size());
  for (const auto& f : c.fragments)
    EXPECT_NE(problem.find(f), std::string::npos) << "no \"" << f << "\" in: " << message;
  EXPECT_LE(g_largest.load(), (1u << 20) + 64 * input_size(c.path)) << message;
}

}  // namespace

TEST_F(Hostile, GeneratedCorpus) {
  const auto cases = load_manifest(*dir_);
  EXPECT_GE(cases.size(), 30u);
  size_t st = 0, bin = 0, cfg = 0;
  for (const Case& c : cases) {
    check(c);
    st += c.loader == "safetensors";
    bin += c.loader == "torch_bin";
    cfg += c.loader == "config";
  }
  EXPECT_GE(st, 10u);
  EXPECT_GE(bin, 10u);
  EXPECT_GE(cfg, 5u);
}

TEST_F(Hostile, CommittedCorpus) {
  const auto cases = load_manifest(std::string(BERTFIT_FIXTURES) + "/io/hostile");
  EXPECT_GE(cases.size(), 1u);
  for (const Case& c : cases) check(c);
}

TEST_F(Hostile, Zip64ExtraFieldsAreRead) {
  // The same entries as tiny.bin, with sizes and offsets moved into ZIP64 extra fields.
  TorchBinFile a = TorchBinFile::open(*dir_ + "/valid_zip64.bin");
  TorchBinFile b = TorchBinFile::open(std::string(BERTFIT_FIXTURES) + "/io/bin/tiny.bin");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
    if (dtype_is_float(a.tensors()[i].dtype)) {
      EXPECT_EQ(to_f32(a.tensors()[i]), to_f32(b.tensors()[i]));
    }
  }
}
