// The HTTP service in-process, through a real client on 127.0.0.1: TEI's response shapes, scores equal to the
// C++ API's (and so to predict's), the timing headers, /tokenize /info /health /metrics, the limits (413,
// 429), TEI's error bodies, and hostile clients: malformed, huge, deeply nested and invalid-UTF-8 bodies,
// clients that hang up mid-request, clients that stall, and a stop with requests in flight.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "bertfit/classifier.h"
#include "serve/batcher.h"
#include "serve/server.h"
#include "serve_test_util.h"

namespace bertfit::serve {
namespace {

using nlohmann::json;

const std::vector<std::string> kTexts = {"the movie was very good",
                                         "i hated it !",
                                         "a film",
                                         "the plot was not great but the actors were good and i liked it",
                                         "awful",
                                         "w1 w2 w3 w4 w5 w6 w7"};

struct Running {
  Running(const std::string& dir, ServeOptions o) : c(load_classifier(dir)), server(c, with_port0(o)) {
    port = server.bind();
    thread = std::thread([this] { server.run(); });
  }
  ~Running() {
    server.stop();
    thread.join();
  }
  static ServeOptions with_port0(ServeOptions o) {
    o.port = 0;
    return o;
  }
  httplib::Client client() const {
    httplib::Client cl("127.0.0.1", port);
    cl.set_read_timeout(30, 0);
    return cl;
  }
  Classifier c;
  Server server;
  int port = 0;
  std::thread thread;
};

const std::string& model_dir() {
  static const std::string dir = test::make_classifier_dir(test::unique_dir("server"));
  return dir;
}

httplib::Result post(const Running& r, const std::string& path, const std::string& body) {
  return r.client().Post(path.c_str(), body, "application/json");
}

// TEI's error body: {"error": "...", "error_type": type}.
void expect_error(const httplib::Result& res, int status, const std::string& type) {
  ASSERT_TRUE(res) << "no response";
  EXPECT_EQ(res->status, status) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j.at("error_type"), type) << res->body;
  EXPECT_FALSE(j.at("error").get<std::string>().empty());
}

std::string words(int n) {
  std::string t;
  for (int i = 0; i < n; ++i) t += (i ? " w" : "w") + std::to_string(i % 40);
  return t;
}

TEST(Batcher, GroupsTheOldestInputWithItsLengthNeighboursWithinTheBudget) {
  Classifier c = load_classifier(model_dir());
  Metrics m(32);
  Batcher b(c, {64, 0}, &m);
  // 5, 30, 6 and 29 tokens (words + [CLS] [SEP]), queued together. Oldest first (5) with its nearest (6):
  // 2 x 6 positions; then 30 with 29: 2 x 30 = 60 <= 64. Arrival-order pairs would compute 2 x 30 + 2 x 29.
  const std::vector<api::TextInput> in = {
      {words(3), "", false}, {words(28), "", false}, {words(4), "", false}, {words(27), "", false}};
  const Batcher::Result r = b.run(api::encode_inputs(c, in, 1));
  EXPECT_EQ(m.batch_size.count(), 2u);
  const std::string text = m.render();
  EXPECT_NE(text.find("te_batch_next_tokens_sum 72\n"), std::string::npos) << text;
  EXPECT_NE(text.find("te_batch_next_size_sum 4\n"), std::string::npos) << text;
  // Each input's logits are its own (in request order), as the API computes them alone.
  const TextClassifier api(model_dir(), {0, 1});
  for (size_t i = 0; i < in.size(); ++i) {
    const auto want = api.classify({in[i].text})[0].logits;
    for (size_t k = 0; k < 3; ++k)
      // A batch of two padded to the longer: the shorter's padded keys add exact zeros to its attention sums,
      // but a vectorised reduction over another length may round differently: ~10 ulps of logits below 1.
      EXPECT_NEAR(r.logits[i * 3 + k], want[k], 1e-6f) << i;
  }
  // A budget of one input of the model's length (32): the two short ones still share (2 x 6), the long ones
  // run alone.
  Metrics m1(32);
  Batcher one(c, {32, 0}, &m1);
  one.run(api::encode_inputs(c, in, 1));
  EXPECT_EQ(m1.batch_size.count(), 3u);
  // --max-batch-requests caps the count whatever the budget.
  Metrics m2(32);
  Batcher capped(c, {4096, 3}, &m2);
  capped.run(api::encode_inputs(c, in, 1));
  EXPECT_EQ(m2.batch_size.count(), 2u);
}

TEST(Batcher, TakesEveryQueuedInputThatFitsTheBudget) {
  Classifier c = load_classifier(model_dir());
  // 5, 30, 6 and 29 tokens again, a budget that holds all four (4 x 30 = 120 positions): one pass (inference
  // computes no padding, so sharing a pass only saves its fixed cost).
  const std::vector<api::TextInput> in = {
      {words(3), "", false}, {words(28), "", false}, {words(4), "", false}, {words(27), "", false}};
  Metrics big(32);
  Batcher all(c, {4096, 0}, &big);
  all.run(api::encode_inputs(c, in, 1));
  EXPECT_EQ(big.batch_size.count(), 1u);
  const std::string text = big.render();
  EXPECT_NE(text.find("te_batch_next_tokens_sum 120\n"), std::string::npos) << text;
  // The warm-up is one pass that the metrics do not count.
  Metrics w(32);
  Batcher warm(c, {4096, 0}, &w);
  warm.warm_up(api::encode_inputs(c, in, 1));
  EXPECT_EQ(w.batch_size.count(), 0u);
}

TEST(Server, PredictScoresAreTheApisProbabilitiesSortedByScore) {
  Running r(model_dir(), {});
  const TextClassifier api(model_dir(), {0, 1});  // one text per batch, as a lone request runs
  for (const std::string& text : kTexts) {
    auto res = post(r, "/predict", json({{"inputs", text}}).dump());
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json j = json::parse(res->body);
    const ClassifierResult want = api.classify({text}, 3)[0];
    ASSERT_EQ(j.size(), 3u);
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(j[k]["label"], want.top[k].label);
      // %.9g round-trips a float, and a lone input runs alone as the API's batch of one: the same float.
      EXPECT_EQ(j[k]["score"].get<float>(), want.top[k].probability) << text;
    }
    for (const char* h : {"x-compute-time", "x-queue-time", "x-inference-time", "x-tokenization-time",
                          "x-compute-tokens", "x-compute-characters", "x-total-time"})
      EXPECT_TRUE(res->has_header(h)) << h;
    EXPECT_GE(std::stoll(res->get_header_value("x-compute-tokens")), 3);
  }
}

TEST(Server, BatchesPairsAndRawScores) {
  Running r(model_dir(), {});
  const TextClassifier api(model_dir());
  json batch = json::array();
  for (const auto& t : kTexts) batch.push_back({t});
  auto res = post(r, "/predict", json({{"inputs", batch}, {"raw_scores", true}}).dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  ASSERT_EQ(j.size(), kTexts.size());
  const auto want = api.classify(kTexts, 3);
  for (size_t i = 0; i < kTexts.size(); ++i) {
    ASSERT_EQ(j[i].size(), 3u);
    for (size_t k = 0; k < 3; ++k) {
      const std::string label = j[i][k]["label"];
      const size_t id = static_cast<size_t>(std::find(api.labels().begin(), api.labels().end(), label) -
                                            api.labels().begin());
      ASSERT_LT(id, 3u);
      // The service batches these by its token budget, the API in one length-sorted batch: other batches,
      // other padding. A row's logits do not depend on its neighbours but reductions over another padded
      // length or GEMM blocking may round differently; 1e-5 absolute is ~100 ulps of logits below 1.
      EXPECT_NEAR(j[i][k]["score"].get<float>(), want[i].logits[id], 1e-5f);
      if (k) {
        EXPECT_GE(j[i][k - 1]["score"].get<float>(), j[i][k]["score"].get<float>());
      }
    }
  }
  // A flat pair is one input, scored as the API's pair.
  res = post(r, "/predict", R"({"inputs": ["the movie", "was good"]})");
  ASSERT_EQ(res->status, 200) << res->body;
  const json p = json::parse(res->body);
  const auto wp = api.classify_pairs({{"the movie", "was good"}}, 3)[0];
  EXPECT_EQ(p[0]["label"], wp.top[0].label);
  EXPECT_NEAR(p[0]["score"].get<float>(), wp.top[0].probability, 1e-6f);
}

TEST(Server, LimitsAndTruncation) {
  ServeOptions o;
  o.max_client_batch_size = 4;
  Running r(model_dir(), o);
  json batch = json::array();
  for (int i = 0; i < 5; ++i) batch.push_back({"good"});
  expect_error(post(r, "/predict", json({{"inputs", batch}}).dump()), 413, "validation");
  expect_error(post(r, "/tokenize", R"({"inputs": ["a", "b", "c", "d", "e"]})"), 413, "validation");
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "good ";
  auto res = post(r, "/predict", json({{"inputs", long_text}}).dump());
  expect_error(res, 413, "validation");
  EXPECT_NE(res->body.find("must have less than 32 tokens. Given: 102"), std::string::npos) << res->body;
  res = post(r, "/predict", json({{"inputs", long_text}, {"truncate", true}}).dump());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("x-compute-tokens"), "32");
  EXPECT_EQ(r.server.metrics().counter("te_request_failure", "batch_size"), 2u);
  EXPECT_EQ(r.server.metrics().counter("te_request_failure", "validation"), 1u);
}

TEST(Server, JsonSentAsAFormLikeCurlDashDSendsItIsReadAsJson) {
  // `curl -d` says application/x-www-form-urlencoded; cpp-httplib would refuse such a body over 8 KiB with a
  // 413. 12 KB of JSON (a long text, truncated) must be answered as it is with application/json.
  Running r(model_dir(), ServeOptions{});
  std::string long_text;
  for (int i = 0; i < 2400; ++i) long_text += "good ";
  const std::string body = json({{"inputs", long_text}, {"truncate", true}}).dump();
  ASSERT_GT(body.size(), 8192u);
  const auto as_form = r.client().Post("/predict", body, "application/x-www-form-urlencoded");
  ASSERT_TRUE(as_form);
  ASSERT_EQ(as_form->status, 200) << as_form->body;
  const auto as_json = post(r, "/predict", body);
  ASSERT_EQ(as_json->status, 200) << as_json->body;
  EXPECT_EQ(as_form->body, as_json->body);
}

TEST(Server, AChunkedBodyOverThePayloadLimitGets413) {
  // cpp-httplib checks the limit against Content-Length only; a chunked body (no length) is checked after.
  ServeOptions o;
  o.payload_limit = 100;
  Running r(model_dir(), o);
  // Just over the limit: cpp-httplib's own check of chunked bodies let 101-200 bytes through at a limit of
  // 100.
  const std::string body = json({{"inputs", words(28)}}).dump();
  ASSERT_GT(body.size(), 100u);
  ASSERT_LT(body.size(), 200u);
  auto chunked = [&](const std::string& b) {
    return r.client().Post(
        "/predict",
        [b](size_t offset, httplib::DataSink& sink) {
          sink.write(b.data() + offset, b.size() - offset);
          sink.done();
          return true;
        },
        "application/json");
  };
  expect_error(chunked(body), 413, "validation");
  const auto small = chunked(R"({"inputs": "good"})");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->status, 200) << small->body;
}

TEST(Server, AutoTruncateAndAChunkedModel) {
  const std::string dir = test::make_classifier_dir(test::unique_dir("server-chunks"), 16, 3);
  ServeOptions o;
  o.auto_truncate = true;
  Running r(dir, o);
  const TextClassifier api(dir, {0, 1});
  std::string text;
  for (int i = 0; i < 60; ++i) text += "w" + std::to_string(i % 40) + " ";  // 60 tokens: 3 chunks of 14, cut
  auto res = post(r, "/predict", json({{"inputs", text}}).dump());
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  const auto want = api.classify({text}, 3)[0];
  for (size_t k = 0; k < 3; ++k) EXPECT_EQ(j[k]["score"].get<float>(), want.top[k].probability);
  const json info = json::parse(r.client().Get("/info")->body);
  EXPECT_EQ(info["max_input_length"], 3 * 14 + 2);
  EXPECT_EQ(info["auto_truncate"], true);
}

TEST(Server, TokenizeInfoHealthMetrics) {
  Running r(model_dir(), {});
  auto res = post(r, "/tokenize", R"({"inputs": ["\u00e9 the movie", "a film"]})");
  ASSERT_EQ(res->status, 200) << res->body;
  const json t = json::parse(res->body);
  ASSERT_EQ(t.size(), 2u);
  const Encoding e = r.c.tokenizer->encode("\xC3\xA9 the movie");
  ASSERT_EQ(t[0].size(), e.size());
  for (size_t i = 0; i < e.size(); ++i) EXPECT_EQ(t[0][i]["id"], e.ids[i]);
  EXPECT_EQ(t[0][0]["text"], "[CLS]");
  EXPECT_EQ(t[0][0]["special"], true);
  EXPECT_TRUE(t[0][0]["start"].is_null());
  EXPECT_EQ(t[0][1]["text"], "\xC3\xA9");  // [UNK]: the input's own text it covers
  // Byte offsets (TEI's are Rust string slices): "movie" is chars 6..11 but bytes 7..12 after the 2-byte é.
  EXPECT_EQ(t[0][3]["text"], "movie");
  EXPECT_EQ(t[0][3]["start"], 7);
  EXPECT_EQ(t[0][3]["stop"], 12);
  res = post(r, "/tokenize", R"({"inputs": "a film", "add_special_tokens": false})");
  EXPECT_EQ(json::parse(res->body)[0].size(), 2u);

  const json info = json::parse(r.client().Get("/info")->body);
  EXPECT_EQ(info["model_type"]["classifier"]["id2label"]["2"], "positive");
  EXPECT_EQ(info["model_type"]["classifier"]["label2id"]["neutral"], 1);
  EXPECT_EQ(info["max_input_length"], 32);
  EXPECT_EQ(info["max_client_batch_size"], 32);
  EXPECT_TRUE(info["max_batch_requests"].is_null());
  EXPECT_EQ(r.client().Get("/health")->status, 200);

  post(r, "/predict", R"({"inputs": "good"})");
  post(r, "/predict", R"({"inputs": [["good"], ["bad"]]})");
  post(r, "/predict", R"({"inputs": 1})");
  res = r.client().Get("/metrics");
  ASSERT_EQ(res->status, 200);
  EXPECT_NE(res->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string m = res->body;
  for (const char* line :
       {"te_request_count{method=\"single\"} 1", "te_request_count{method=\"batch\"} 1",
        "te_request_success{method=\"single\"} 1", "te_request_failure{err=\"validation\"} 1",
        "te_request_duration_count 2", "te_request_queue_duration_count 2",
        "te_request_inference_duration_count 2", "te_request_tokenization_duration_count 2",
        "te_request_input_length_count 3", "te_batch_next_size_count", "te_queue_size 0",
        "# TYPE te_request_duration histogram", "te_request_duration_bucket{le=\"+Inf\"} 2"})
    EXPECT_NE(m.find(line), std::string::npos) << line << "\n" << m;
}

TEST(Server, HostileBodiesGetTeiErrorsAndTheServerKeepsServing) {
  ServeOptions o;
  o.payload_limit = 1 << 21;
  Running r(model_dir(), o);
  expect_error(post(r, "/predict", "{\"inputs\": [\"unterminated"), 400, "validation");
  expect_error(post(r, "/predict", "not json at all"), 400, "validation");
  expect_error(post(r, "/predict", ""), 400, "validation");
  expect_error(post(r, "/predict", "{\"inputs\": \"caf\xE9\"}"), 400, "validation");  // Latin-1, not UTF-8
  expect_error(post(r, "/predict", "{\"inputs\": " + std::string(1 << 20, '[') + "}"), 400, "validation");
  expect_error(post(r, "/predict", R"({"inputs": {"a": 1}})"), 422, "validation");
  expect_error(post(r, "/predict", R"({"inputs": [1, 2]})"), 422, "validation");
  expect_error(post(r, "/predict", R"({"inputs": "good", "truncate": 1})"), 422, "validation");
  expect_error(post(r, "/predict", R"({"inputs": ""})"), 400, "empty");
  expect_error(post(r, "/predict", R"({"inputs": []})"), 400, "empty");
  // Over the payload limit: refused before the body is read into the handler.
  auto res = post(r, "/predict", "{\"inputs\": \"" + std::string((1 << 21) + 10, 'a') + "\"}");
  expect_error(res, 413, "validation");
  // A 1 MB text under the limit: refused as too long, or truncated and scored.
  std::string mb;
  while (mb.size() < (1 << 20)) mb += "good film ";
  expect_error(post(r, "/predict", json({{"inputs", mb}}).dump()), 413, "validation");
  res = post(r, "/predict", json({{"inputs", mb}, {"truncate", true}}).dump());
  ASSERT_EQ(res->status, 200) << res->body;
  expect_error(r.client().Get("/nowhere"), 404, "validation");
  // An endpoint with another method: 405 and the method it takes (TEI, axum).
  const auto get_predict = r.client().Get("/predict");
  expect_error(get_predict, 405, "validation");
  EXPECT_EQ(get_predict->get_header_value("Allow"), "POST");
  const auto post_info = r.client().Post("/info", "{}", "application/json");
  expect_error(post_info, 405, "validation");
  EXPECT_EQ(post_info->get_header_value("Allow"), "GET");
  res = post(r, "/predict", R"({"inputs": "still serving"})");
  EXPECT_EQ(res->status, 200);
}

// A raw TCP connection to the server.
int connect_to(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(Server, ClientsThatHangUpMidRequestOrBeforeTheAnswer) {
  Running r(model_dir(), {});
  const std::string body = R"({"inputs": [["the movie was very good"], ["awful"]]})";
  const std::string request =
      "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t)
    clients.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        const int fd = connect_to(r.port);
        if (fd < 0) continue;
        // Hang up: in the headers, mid-body, or with the whole request sent (before the answer comes).
        const size_t cut = (t + i) % 3 == 0 ? 20 : (t + i) % 3 == 1 ? request.size() - 10 : request.size();
        (void)!write(fd, request.data(), cut);
        if ((t + i) % 2) {
          linger l{1, 0};  // RST instead of FIN
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        close(fd);
      }
    });
  for (auto& c : clients) c.join();
  // Every request thread is free again and the model still answers.
  for (int i = 0; i < 5; ++i) {
    auto res = post(r, "/predict", body);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
  }
}

TEST(Server, StalledClientsAreDroppedAfterTheReadTimeout) {
  ServeOptions o;
  o.http_threads = 2;
  o.read_timeout_s = 1;
  o.keep_alive_timeout_s = 2;
  Running r(model_dir(), o);
  // Both request threads held by clients that announce a body and send none of it.
  int stalled[2];
  for (int& fd : stalled) {
    fd = connect_to(r.port);
    ASSERT_GE(fd, 0);
    const std::string head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inp";
    ASSERT_EQ(write(fd, head.data(), head.size()), static_cast<ssize_t>(head.size()));
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto res = post(r, "/predict", R"({"inputs": "good"})");  // waits for a thread, then is answered
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // cpp-httplib holds a stalled connection's thread for the read timeout, then waits the keep-alive timeout
  // for a next request before closing it: 1 + 2 s here, and the waiting request is answered after that.
  EXPECT_LT(waited, 10.0);
  for (int fd : stalled) {
    char buf[256];
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
    }
    EXPECT_EQ(n, 0) << "the stalled connection was not closed by the server";
    close(fd);
  }
}

TEST(Server, MoreConcurrentRequestsThanAllowedGet429) {
  ServeOptions o;
  o.max_concurrent_requests = 1;
  Running r(model_dir(), o);
  // A slow request (a 1 MB text to tokenize) holds the only slot; small requests meanwhile are refused.
  std::string mb;
  while (mb.size() < (1 << 20)) mb += "good film ";
  std::atomic<bool> done{false};
  int slow_status = 0;
  std::thread slow([&] {
    auto res = post(r, "/predict", json({{"inputs", mb}, {"truncate", true}}).dump());
    slow_status = res ? res->status : -1;
    done = true;
  });
  // Its body is read and decoded (counted) before it tokenizes, which takes most of its time.
  while (r.server.metrics().counter("te_request_count", "single") == 0 && !done)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  int refused = 0, answered = 0;
  while (!done) {
    auto res = post(r, "/predict", R"({"inputs": "good"})");
    ASSERT_TRUE(res);
    if (res->status == 429) {
      ++refused;
      expect_error(res, 429, "overloaded");
    } else {
      EXPECT_EQ(res->status, 200);
      ++answered;
    }
  }
  slow.join();
  EXPECT_EQ(slow_status, 200);
  EXPECT_GT(refused, 0);
  EXPECT_EQ(r.server.metrics().counter("te_request_failure", "overloaded"), static_cast<uint64_t>(refused));
  EXPECT_EQ(post(r, "/predict", R"({"inputs": "good"})")->status, 200);
}

TEST(Server, StopAnswersTheRequestsInFlight) {
  auto r = std::make_unique<Running>(model_dir(), ServeOptions{});
  std::vector<std::thread> clients;
  std::atomic<int> ok{0}, other{0};
  json batch = json::array();
  for (int i = 0; i < 32; ++i) batch.push_back({kTexts[static_cast<size_t>(i) % kTexts.size()]});
  const std::string body = json({{"inputs", batch}}).dump();
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      auto res = post(*r, "/predict", body);
      (res && res->status == 200 ? ok : other)++;
    });
  // Stop once every request is in the server (counted after decoding).
  while (r->server.metrics().counter("te_request_count", "batch") < 8)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  r->server.stop();
  for (auto& c : clients) c.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(other, 0);
  r.reset();  // run() returned: the destructor joins it
}

}  // namespace
}  // namespace bertfit::serve
