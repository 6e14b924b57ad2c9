// TensorBoard event files (io/tfevents_writer.h, train/tensorboard_log.h) read back by an independent reader:
// tools/report/tfevents_reader.py, run with /usr/bin/python3, checks both masked CRC-32Cs of every record
// with its own bit-wise CRC and decodes the Event protobuf with Google's protobuf runtime (python3-protobuf)
// from TensorBoard's field numbers. Nothing of our writer is used to read.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "io/crc32c.h"
#include "io/tfevents_writer.h"
#include "train/tensorboard_log.h"

using namespace bertfit;
namespace fs = std::filesystem;

namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kReader = std::string(BERTFIT_SOURCE_DIR) + "/tools/report/tfevents_reader.py";

std::string temp_dir() {
  std::string t = (fs::temp_directory_path() / "bertfit-tfevents-XXXXXX").string();
  EXPECT_NE(mkdtemp(t.data()), nullptr);
  return t;
}

// Runs a command; returns its exit status and stdout (stderr joined).
int run(const std::string& cmd, std::string* out) {
  out->clear();
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

nlohmann::json read_events(const std::string& path) {
  std::string out;
  EXPECT_EQ(run(kPython + " " + kReader + " " + path, &out), 0) << out;
  return nlohmann::json::parse(out)["events"];
}

std::string only_event_file(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      files.push_back(e.path().string());
  EXPECT_EQ(files.size(), 1u);
  return files.empty() ? "" : files[0];
}

}  // namespace

// RFC 3720 (iSCSI) appendix B.4 and the usual check value: the same vectors as the reader's self-test, so
// both CRCs are pinned to the standard, not to each other.
TEST(Crc32c, KnownVectors) {
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c(digits.data(), digits.size()), 0xE3069283u);
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<unsigned char>(i);
    down[i] = static_cast<unsigned char>(31 - i);
  }
  EXPECT_EQ(crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(crc32c(up.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(crc32c(down.data(), 32), 0x113FDB5Cu);
  // Incremental = one pass.
  EXPECT_EQ(crc32c(digits.data() + 4, 5, crc32c(digits.data(), 4)), 0xE3069283u);
}

TEST(Crc32c, ReaderSelfTestPasses) {
  std::string out;
  EXPECT_EQ(run(kPython + " " + kReader + " --self-test", &out), 0) << out;
}

TEST(TfEvents, IndependentReaderReadsScalarsAndText) {
  const std::string dir = temp_dir() + "/logs";
  const std::string text = "{\n  \"learning_rate\": 2e-05,\n  \"label\": \"caf\xC3\xA9 </b>\"\n}";
  std::string path;
  {
    TfEventsWriter w(dir);
    path = w.path();
    w.add_text("args", text);
    w.add_scalar("train/loss", 0.6931471805599453, 5);
    w.add_scalar("train/learning_rate", 2e-5, 5);
    w.add_scalar("eval/accuracy", -1.5, 1LL << 40);  // a negative value, a step past 32 bits
    w.add_scalar("eval/loss", 0.0, 0);
  }
  EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir));
  EXPECT_EQ(fs::path(path).filename().string().rfind("events.out.tfevents.", 0), 0u);
  const nlohmann::json ev = read_events(path);
  ASSERT_EQ(ev.size(), 6u);
  EXPECT_EQ(ev[0]["file_version"], "brain.Event:2");
  EXPECT_GT(ev[0]["wall_time"].get<double>(), 1.6e9);  // seconds since 1970, as TensorBoard expects
  const auto& t = ev[1]["values"][0];
  EXPECT_EQ(t["tag"], "args/text_summary");
  EXPECT_EQ(t["plugin"], "text");
  EXPECT_EQ(t["dtype"], 7);  // DT_STRING
  EXPECT_EQ(t["shape"], nlohmann::json::array({1}));
  EXPECT_EQ(t["text"][0], text);
  struct Want {
    const char* tag;
    int64_t step;
    float value;  // simple_value is a float: the double rounded once
  };
  const Want want[] = {{"train/loss", 5, static_cast<float>(0.6931471805599453)},
                       {"train/learning_rate", 5, static_cast<float>(2e-5)},
                       {"eval/accuracy", 1LL << 40, -1.5f},
                       {"eval/loss", 0, 0.0f}};
  for (size_t i = 0; i < 4; ++i) {
    const auto& e = ev[i + 2];
    EXPECT_EQ(e["step"].get<int64_t>(), want[i].step);
    ASSERT_EQ(e["values"].size(), 1u);
    EXPECT_EQ(e["values"][0]["tag"], want[i].tag);
    EXPECT_EQ(e["values"][0]["simple_value"].get<float>(), want[i].value);
  }
}

// The reader really checks both CRCs (so the test above can fail): one flipped bit in the length, or in the
// record, is reported with its offset.
TEST(TfEvents, ReaderRejectsAFlippedBit) {
  const std::string dir = temp_dir();
  std::string path;
  {
    TfEventsWriter w(dir);
    path = w.path();
    w.add_scalar("train/loss", 1.0, 1);
  }
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // The first record: 8 bytes length, 4 CRC, the record, 4 CRC; then the scalar event's record.
  const uint64_t first = static_cast<unsigned char>(bytes[0]);
  const size_t second = 12 + first + 4;
  for (const auto& [offset, message] : std::vector<std::pair<size_t, std::string>>{
           {second + 1, "length CRC mismatch"}, {second + 12 + 3, "data CRC mismatch"}}) {
    std::string bad = bytes;
    bad[offset] = static_cast<char>(bad[offset] ^ 0x10);
    const std::string p = dir + "/events.out.tfevents.bad";
    std::ofstream(p, std::ios::binary) << bad;
    std::string out;
    EXPECT_EQ(run(kPython + " " + kReader + " " + p, &out), 1) << out;
    EXPECT_NE(out.find(message), std::string::npos) << out;
  }
  // A record cut short (a crash while writing) is reported, not misread.
  const std::string p = dir + "/events.out.tfevents.cut";
  std::ofstream(p, std::ios::binary) << bytes.substr(0, bytes.size() - 3);
  std::string out;
  EXPECT_EQ(run(kPython + " " + kReader + " " + p, &out), 1) << out;
  EXPECT_NE(out.find("truncated"), std::string::npos) << out;
}

TEST(TensorBoardLog, TagsAreHuggingFacesRewriteLogs) {
  EXPECT_EQ(tensorboard_tag("loss"), "train/loss");
  EXPECT_EQ(tensorboard_tag("learning_rate"), "train/learning_rate");
  EXPECT_EQ(tensorboard_tag("grad_norm"), "train/grad_norm");
  EXPECT_EQ(tensorboard_tag("epoch"), "train/epoch");
  EXPECT_EQ(tensorboard_tag("eval_loss"), "eval/loss");
  EXPECT_EQ(tensorboard_tag("eval_macro_f1"), "eval/macro_f1");
  EXPECT_EQ(tensorboard_tag("test_accuracy"), "test/accuracy");
  EXPECT_EQ(tensorboard_tag("train_runtime"), "train/train_runtime");  // HF: "train/" + every other key
}

TEST(TensorBoardLog, DefaultLoggingDirIsHuggingFaces) {
  // output_dir/runs/<Mon DD_HH-MM-SS>_<host>
  const std::string d = default_logging_dir("out");
  ASSERT_EQ(d.rfind("out/runs/", 0), 0u) << d;
  const std::string name = d.substr(9);
  ASSERT_GT(name.size(), 16u) << d;
  EXPECT_TRUE(std::isupper(static_cast<unsigned char>(name[0])) &&
              std::islower(static_cast<unsigned char>(name[1])))
      << d;
  EXPECT_EQ(name[5], '_') << d;
  EXPECT_EQ(name[8], '-') << d;
  EXPECT_EQ(name[11], '-') << d;
  EXPECT_EQ(name[14], '_') << d;
}

TEST(TensorBoardLog, SinkWritesEveryNumberOfAnEntryAtItsStepAndPassesItOn) {
  TrainingArgs args;
  args.output_dir = temp_dir();
  args.logging_dir = args.output_dir + "/tb";
  args.report_to = {"tensorboard"};
  nlohmann::ordered_json args_json;
  args_json["learning_rate"] = 2e-5;
  std::vector<nlohmann::json> passed;
  {
    const LogHistorySink sink =
        tensorboard_log_sink(args, args_json, [&](const nlohmann::json& e) { passed.push_back(e); });
    sink({{"epoch", 0.5}, {"grad_norm", 3.25}, {"learning_rate", 1e-5}, {"loss", 0.75}, {"step", 10}});
    sink({{"epoch", 1.0}, {"eval_loss", 0.5}, {"eval_accuracy", 0.875}, {"step", 20}, {"note", "text"}});
  }
  ASSERT_EQ(passed.size(), 2u);
  EXPECT_EQ(passed[1]["step"], 20);
  const nlohmann::json ev = read_events(only_event_file(args.logging_dir));
  EXPECT_EQ(nlohmann::json::parse(ev[1]["values"][0]["text"][0].get<std::string>()),
            nlohmann::json(args_json));
  std::map<std::pair<std::string, int64_t>, float> got;
  for (size_t i = 2; i < ev.size(); ++i)
    for (const auto& v : ev[i]["values"]) got[{v["tag"], ev[i]["step"].get<int64_t>()}] = v["simple_value"];
  const std::map<std::pair<std::string, int64_t>, float> want = {
      {{"train/epoch", 10}, 0.5f},    {{"train/grad_norm", 10}, 3.25f}, {{"train/learning_rate", 10}, 1e-5f},
      {{"train/loss", 10}, 0.75f},    {{"train/epoch", 20}, 1.0f},      {{"eval/loss", 20}, 0.5f},
      {{"eval/accuracy", 20}, 0.875f}};  // "step" is the x axis and "note" no number: neither is a scalar
  EXPECT_EQ(got, want);
}

TEST(TensorBoardLog, AnUnwritableLoggingDirIsAnErrorNamingIt) {
  TrainingArgs args;
  const std::string dir = temp_dir();
  std::ofstream(dir + "/file") << "x";
  args.output_dir = dir;
  args.logging_dir = dir + "/file/tb";  // under a regular file
  try {
    tensorboard_log_sink(args, {}, nullptr);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/file/tb"), std::string::npos) << e.what();
  }
}

TEST(TensorBoardLog, ReportToAcceptsHuggingFacesNames) {
  TrainingArgs a;
  a.output_dir = "out";
  EXPECT_FALSE(a.reports_to("tensorboard"));  // default: none
  a.report_to = {"all"};
  EXPECT_TRUE(a.reports_to("tensorboard"));
  a.report_to = {"wandb"};
  try {
    a.validate();
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--report_to"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("tensorboard"), std::string::npos) << e.what();
  }
}
