// `bertfit serve` as users run it, through the built binary: its scores equal `bertfit predict`'s
// probabilities for the same texts, SIGTERM / SIGINT with requests in flight answers them and exits 0, and
// an address in use is an error (exit 1).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "serve_test_util.h"

extern char** environ;

namespace bertfit {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const std::string kBinary = std::string(BERTFIT_BINARY_DIR) + "/src/cli/bertfit";

const std::vector<std::string> kTexts = {
    "the movie was very good",
    "i hated it !",
    "a film",
    "the plot was not great but the actors were good",
    "awful",
    "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10 w11 w12 w13 w14 w15 w16 w17 w18 w19 w20 w21 w22 w23 w24 w25 w26",
    "very very good film and plot",
    "not bad",
    "the actors",
    "i liked it"};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A `bertfit serve` child process; its stderr goes to a file, read for the port it listens on.
struct ServeProcess {
  ServeProcess(const std::string& model, const std::string& log, std::vector<std::string> extra = {},
               int port = 0)
      : log(log) {
    std::vector<std::string> args = {kBinary,     "serve", "--model", model, "--port", std::to_string(port),
                                     "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, kBinary.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  // Waits for the "listening on http://host:PORT" line; 0 when the process ended or 60 s passed.
  int wait_port() {
    const std::regex re("listening on http://[^:]+:([0-9]+)");
    for (int i = 0; i < 6000 && pid > 0; ++i) {
      std::smatch m;
      const std::string s = slurp(log);
      if (std::regex_search(s, m, re)) return std::stoi(m[1]);
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        exit_status = status;
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }
  int wait_exit() {
    if (pid > 0) {
      waitpid(pid, &exit_status, 0);
      pid = -1;
    }
    return exit_status;
  }
  ~ServeProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
  std::string log;
  pid_t pid = -1;
  int exit_status = -1;
};

TEST(ServeCli, ScoresEqualPredictsProbabilities) {
  const std::string root = test::unique_dir("cli-predict");
  const std::string model = test::make_classifier_dir(root);
  {
    std::ofstream f(root + "/texts.tsv");
    f << "id\ttext\n";
    for (size_t i = 0; i < kTexts.size(); ++i) f << "t" << i << "\t" << kTexts[i] << "\n";
  }
  const std::string cmd = kBinary + " predict --model " + model + " --file " + root + "/texts.tsv --output " +
                          root + "/pred.tsv --all_probs --threads 2 > " + root + "/predict.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(root + "/predict.log");
  // pred.tsv: id, label, probability, p_negative, p_neutral, p_positive.
  std::ifstream pred(root + "/pred.tsv");
  std::string line;
  std::getline(pred, line);
  ASSERT_EQ(line, "id\tlabel\tprobability\tp_negative\tp_neutral\tp_positive");
  std::vector<std::map<std::string, double>> want;
  std::vector<std::string> want_label;
  while (std::getline(pred, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
    ASSERT_EQ(f.size(), 6u);
    want_label.push_back(f[1]);
    want.push_back(
        {{"negative", std::stod(f[3])}, {"neutral", std::stod(f[4])}, {"positive", std::stod(f[5])}});
  }
  ASSERT_EQ(want.size(), kTexts.size());

  ServeProcess p(model, root + "/serve.log");
  const int port = p.wait_port();
  ASSERT_GT(port, 0) << slurp(root + "/serve.log");
  httplib::Client cl("127.0.0.1", port);
  cl.set_read_timeout(60, 0);
  // One request per text, and all of them as one batch request: both score as predict does.
  json batch = json::array();
  for (const auto& t : kTexts) batch.push_back({t});
  auto res = cl.Post("/predict", json({{"inputs", batch}}).dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json all = json::parse(res->body);
  for (size_t i = 0; i < kTexts.size(); ++i) {
    res = cl.Post("/predict", json({{"inputs", kTexts[i]}, {"truncate", true}}).dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json one = json::parse(res->body);
    EXPECT_EQ(one[0]["label"], want_label[i]) << kTexts[i];
    for (const json& scores : {one, all[i]})
      for (const json& s : scores)
        // predict prints 6 decimals (std::to_string): 5e-7 of rounding; the served batch differs from
        // predict's (another size and row order), so a reduction may round differently, by a few ulps of
        // values below 1 (6e-8 each): 1e-6 covers both with room, and a wrong text or label is off by far
        // more.
        EXPECT_NEAR(s["score"].get<double>(), want[i].at(s["label"]), 1e-6) << kTexts[i];
  }
  EXPECT_EQ(cl.Get("/health")->status, 200);
  kill(p.pid, SIGINT);
  const int status = p.wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << slurp(root + "/serve.log");
}

TEST(ServeCli, SigtermFinishesTheRequestsInFlightAndExitsZero) {
  const std::string root = test::unique_dir("cli-sigterm");
  const std::string model = test::make_classifier_dir(root);
  ServeProcess p(model, root + "/serve.log");
  const int port = p.wait_port();
  ASSERT_GT(port, 0) << slurp(root + "/serve.log");
  json batch = json::array();
  for (int i = 0; i < 32; ++i)
    batch.push_back({kTexts[static_cast<size_t>(i) % kTexts.size()] + " and the plot"});
  const std::string body = json({{"inputs", batch}}).dump();
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&] {
      httplib::Client cl("127.0.0.1", port);
      cl.set_read_timeout(60, 0);
      auto res = cl.Post("/predict", body, "application/json");
      (res && res->status == 200 ? ok : failed)++;
    });
  // SIGTERM once all six are inside the server (te_request_count counts a request once it is decoded).
  httplib::Client probe("127.0.0.1", port);
  for (int i = 0; i < 3000; ++i) {
    auto m = probe.Get("/metrics");
    if (m && m->body.find("te_request_count{method=\"batch\"} 6") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(p.pid, SIGTERM);
  for (auto& c : clients) c.join();
  const int status = p.wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << slurp(root + "/serve.log");
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(failed, 0);
  const std::string log = slurp(root + "/serve.log");
  EXPECT_NE(log.find("SIGTERM received"), std::string::npos) << log;
  // Stopped: nothing listens on the port any more.
  httplib::Client after("127.0.0.1", port);
  after.set_connection_timeout(2, 0);
  EXPECT_FALSE(after.Get("/health"));
}

TEST(ServeCli, AnAddressInUseOrABadModelIsAnErrorExitOne) {
  const std::string root = test::unique_dir("cli-errors");
  const std::string model = test::make_classifier_dir(root);
  ServeProcess first(model, root + "/first.log");
  const int port = first.wait_port();
  ASSERT_GT(port, 0);
  ServeProcess second(model, root + "/second.log", {}, port);  // the first one's port
  EXPECT_EQ(second.wait_port(), 0);
  int status = second.wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_NE(slurp(root + "/second.log").find("cannot bind"), std::string::npos)
      << slurp(root + "/second.log");

  ServeProcess bad(root, root + "/bad.log");  // the root holds no config.json
  EXPECT_EQ(bad.wait_port(), 0);
  status = bad.wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << slurp(root + "/bad.log");
  ServeProcess budget(model, root + "/budget.log", {"--max-batch-tokens", "8"});
  EXPECT_EQ(budget.wait_port(), 0);
  status = budget.wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_NE(slurp(root + "/budget.log").find("--max-batch-tokens 8 cannot hold"), std::string::npos);
  kill(first.pid, SIGTERM);
  status = first.wait_exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace bertfit
