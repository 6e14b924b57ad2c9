#include "serve/server.h"

#include <httplib.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/inference.h"
#include "bertfit/error.h"
#include "kernels/cross_entropy.h"
#include "serve/batcher.h"
#include "serve/request.h"

namespace bertfit::serve {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kBacklog = 1024;  // pending connections (the kernel caps it at net.core.somaxconn)

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
std::string ms(double seconds) {
  return std::to_string(static_cast<int64_t>(seconds * 1000.0));
}

// "%.9g" prints every float so that it reads back to the same float.
void append_float(std::string* out, float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  *out += buf;
}

// Byte offset of each code point of valid UTF-8 text, and the end: offsets[i] .. offsets[i + 1] is char i.
std::vector<size_t> char_starts(const std::string& s) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) starts.push_back(i);
  starts.push_back(s.size());
  return starts;
}

// cpp-httplib 0.11.4 listens with a backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG, compiled into Debian's .so): a
// burst of more new connections than that has SYNs dropped, and the clients retry 1 s, 3 s, ... later
// (measured: 16 clients connecting at once took 7-10 s). Listening again on the bound socket raises it.
class HttpServer : public httplib::Server {
 public:
  void widen_backlog(int backlog) {
    const socket_t sock = svr_sock_;
    if (sock != INVALID_SOCKET) ::listen(sock, backlog);
  }
};

// Decrements the in-flight count when a request ends, however it ends.
struct InFlight {
  std::atomic<int>& n;
  ~InFlight() { --n; }
};

}  // namespace

// The default token budget: 32 inputs of 128 positions (docs/benchmarks.md, Serving: a budget of one input
// gave 0.58-0.62 of offline predict's throughput at concurrency 32 on the 2-core machine measured, this one
// 0.8).
constexpr int64_t kDefaultBatchTokens = 4096;

struct Server::Impl {
  Impl(Classifier& c, const ServeOptions& o)
      : c(c),
        o(o),
        metrics(api::max_input_tokens(c)),
        batcher(c, {o.max_batch_tokens, o.max_batch_requests}, &metrics) {
    for (const auto& l : c.labels.id2label()) quoted_labels.push_back(json(l).dump());
    max_input = api::max_input_tokens(c);
  }

  void respond_error(httplib::Response& res, const ApiError& e) {
    metrics.count_failure(e.failure_label());
    res.status = e.status();
    res.set_content(error_body(e.what(), e.type()), "application/json");
  }

  // cpp-httplib 0.11 lets a chunked body somewhat over --payload-limit through (measured: 115 bytes at a
  // limit of 100 answered 200; 215 refused): what it let through is refused here, with the same 413.
  void check_body_size(const httplib::Request& req) const {
    if (req.body.size() > o.payload_limit)
      throw ApiError(413, ErrorType::VALIDATION,
                     "request body larger than the limit of " + std::to_string(o.payload_limit) +
                         " bytes (--payload-limit)");
  }

  void predict(const httplib::Request& req, httplib::Response& res) {
    const auto start = Clock::now();
    InFlight guard{in_flight};
    try {
      if (++in_flight > o.max_concurrent_requests)
        throw ApiError(429, ErrorType::OVERLOADED,
                       "Model is overloaded: more than " + std::to_string(o.max_concurrent_requests) +
                           " concurrent requests (--max-concurrent-requests)");
      check_body_size(req);
      PredictRequest r = decode_predict_request(req.body);
      const std::string method = r.batch ? "batch" : "single";
      metrics.count_request(method);
      const size_t n = r.inputs.size();
      if (n > static_cast<size_t>(o.max_client_batch_size))
        throw ApiError(413, ErrorType::VALIDATION,
                       "batch size " + std::to_string(n) + " > maximum allowed batch size " +
                           std::to_string(o.max_client_batch_size))
            .with_label("batch_size");
      const bool truncate = r.truncate.value_or(o.auto_truncate);
      const auto t_tok = Clock::now();
      std::vector<EncodedExample> ex;
      try {
        ex = api::encode_inputs(c, r.inputs, 1);
      } catch (const Error& e) {
        throw ApiError(422, ErrorType::TOKENIZER, std::string("tokenization failed: ") + e.what());
      }
      const double tokenization = seconds_since(t_tok);
      int64_t tokens = 0, chars = 0;
      for (size_t i = 0; i < n; ++i) {
        const int64_t t = api::input_tokens(c, ex[i], r.inputs[i].pair);
        metrics.input_length.observe(static_cast<double>(t));
        tokens += std::min(t, max_input);
        chars += static_cast<int64_t>(char_starts(r.inputs[i].text).size() - 1 +
                                      (r.inputs[i].pair ? char_starts(r.inputs[i].text_pair).size() - 1 : 0));
        if (!truncate && t > max_input)
          throw ApiError(413, ErrorType::VALIDATION,
                         "`inputs` must have less than " + std::to_string(max_input) +
                             " tokens. Given: " + std::to_string(t) +
                             " (send \"truncate\": true to truncate as the model was trained)");
      }
      const Batcher::Result out = batcher.run(std::move(ex));
      const int64_t NL = batcher.num_labels();
      std::string body;
      body.reserve(n * static_cast<size_t>(NL) * 40 + 2);
      if (r.batch) body += '[';
      std::vector<float> scores(static_cast<size_t>(NL));
      std::vector<int64_t> order(static_cast<size_t>(NL));
      for (size_t i = 0; i < n; ++i) {
        const float* logits = out.logits.data() + static_cast<int64_t>(i) * NL;
        if (r.raw_scores)
          std::copy(logits, logits + NL, scores.begin());
        else
          softmax_rows(scores.data(), logits, 1, NL);  // as predict's probabilities
        for (float s : scores)
          if (!std::isfinite(s)) throw ApiError(424, ErrorType::BACKEND, "score is not finite");
        for (int64_t k = 0; k < NL; ++k) order[static_cast<size_t>(k)] = k;
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
          return scores[static_cast<size_t>(a)] > scores[static_cast<size_t>(b)];
        });
        if (i) body += ',';
        body += '[';
        for (int64_t k = 0; k < NL; ++k) {
          if (k) body += ',';
          body += "{\"label\":" + quoted_labels[static_cast<size_t>(order[k])] + ",\"score\":";
          append_float(&body, scores[static_cast<size_t>(order[k])]);
          body += '}';
        }
        body += ']';
      }
      if (r.batch) body += ']';
      const double total = seconds_since(start);
      res.set_header("x-compute-type", "cpu");
      res.set_header("x-compute-time", ms(total));
      res.set_header("x-total-time", ms(total));
      res.set_header("x-compute-characters", std::to_string(chars));
      res.set_header("x-compute-tokens", std::to_string(tokens));
      res.set_header("x-tokenization-time", ms(tokenization));
      res.set_header("x-queue-time", ms(out.queue_seconds));
      res.set_header("x-inference-time", ms(out.inference_seconds));
      res.set_content(body, "application/json");
      metrics.count_success(method);
      metrics.request_duration.observe(total);
      metrics.tokenization_duration.observe(tokenization);
      metrics.queue_duration.observe(out.queue_seconds);
      metrics.inference_duration.observe(out.inference_seconds);
    } catch (const ApiError& e) {
      respond_error(res, e);
    } catch (const std::exception& e) {
      respond_error(res, ApiError(424, ErrorType::BACKEND, e.what()));
    }
  }

  void tokenize(const httplib::Request& req, httplib::Response& res) {
    try {
      check_body_size(req);
      const TokenizeRequest r = decode_tokenize_request(req.body);
      if (r.inputs.size() > static_cast<size_t>(o.max_client_batch_size))
        throw ApiError(413, ErrorType::VALIDATION,
                       "batch size " + std::to_string(r.inputs.size()) + " > maximum allowed batch size " +
                           std::to_string(o.max_client_batch_size))
            .with_label("batch_size");
      json out = json::array();
      for (const std::string& text : r.inputs) {
        Encoding e;
        try {
          e = c.tokenizer->encode(text, r.add_special_tokens);
        } catch (const Error& err) {
          throw ApiError(422, ErrorType::TOKENIZER, std::string("tokenization failed: ") + err.what());
        }
        const std::vector<size_t> starts = char_starts(text);
        json tokens = json::array();
        for (size_t t = 0; t < e.size(); ++t) {
          const bool special = e.special_tokens_mask[t] != 0;
          json tok = {{"id", e.ids[t]}, {"special", special}};
          // TEI: a special token's own text and no offsets; another token's text is the input it covers.
          if (special) {
            tok["text"] = e.tokens[t];
            tok["start"] = nullptr;
            tok["stop"] = nullptr;
          } else {
            const size_t a = starts[std::min<size_t>(e.offsets[t].first, starts.size() - 1)];
            const size_t b = starts[std::min<size_t>(e.offsets[t].second, starts.size() - 1)];
            tok["text"] = text.substr(a, b - a);
            tok["start"] = a;
            tok["stop"] = b;
          }
          tokens.push_back(std::move(tok));
        }
        out.push_back(std::move(tokens));
      }
      res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    } catch (const ApiError& e) {
      respond_error(res, e);
    } catch (const std::exception& e) {
      respond_error(res, ApiError(424, ErrorType::BACKEND, e.what()));
    }
  }

  std::string info() const {
    json id2label = json::object(), label2id = json::object();
    const auto& labels = c.labels.id2label();
    for (size_t i = 0; i < labels.size(); ++i) {
      id2label[std::to_string(i)] = labels[i];
      label2id[labels[i]] = i;
    }
    json j = {{"model_id", o.model_id},
              {"model_sha", nullptr},
              {"model_dtype", c.model->is_int8() ? "int8" : "float32"},  // bertfit quantize's linear weights
              {"model_type", {{"classifier", {{"id2label", id2label}, {"label2id", label2id}}}}},
              {"max_concurrent_requests", o.max_concurrent_requests},
              {"max_input_length", max_input},
              {"max_batch_tokens", o.max_batch_tokens},
              {"max_batch_requests", o.max_batch_requests > 0 ? json(o.max_batch_requests) : json(nullptr)},
              {"max_client_batch_size", o.max_client_batch_size},
              {"auto_truncate", o.auto_truncate},
              {"tokenization_workers", threads},
              {"version", "bertfit-0.1.0"},
              {"sha", nullptr},
              {"docker_label", nullptr},
              {"truncation", c.settings.truncation},
              {"max_seq_length", c.settings.max_seq_length}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }

  Classifier& c;
  ServeOptions o;
  Metrics metrics;
  Batcher batcher;
  HttpServer http;
  std::vector<std::string> quoted_labels;
  int64_t max_input = 0;
  int threads = 0;
  std::atomic<int> in_flight{0};
  std::atomic<bool> stopping{false}, run_started{false}, listen_returned{false};
};

Server::Server(Classifier& c, const ServeOptions& given) {
  const int64_t longest = api::max_input_tokens(c);
  const int64_t one_input =
      c.settings.max_chunks > 0 ? c.settings.max_chunks * c.settings.max_seq_length : longest;
  ServeOptions options = given;
  if (options.max_batch_tokens == 0)
    options.max_batch_tokens = std::max<int64_t>(kDefaultBatchTokens, one_input);
  if (options.max_batch_tokens < one_input)
    throw ConfigError(
        "--max-batch-tokens " + std::to_string(options.max_batch_tokens) +
        " cannot hold one input of the model's longest kind (" + std::to_string(one_input) +
        " positions: max_seq_length " + std::to_string(c.settings.max_seq_length) +
        (c.settings.max_chunks > 0 ? " x " + std::to_string(c.settings.max_chunks) + " chunks" : "") + ")");
  if (options.port < 0 || options.port > 65535)
    throw ConfigError("--port " + std::to_string(options.port) + " is not a TCP port (0-65535)");
  if (options.max_concurrent_requests < 1) throw ConfigError("--max-concurrent-requests must be at least 1");
  if (options.max_client_batch_size < 1) throw ConfigError("--max-client-batch-size must be at least 1");
  if (options.max_batch_requests < 0) throw ConfigError("--max-batch-requests must be 0 (no limit) or more");
  impl_ = std::make_unique<Impl>(c, options);
  Impl& s = *impl_;
  {
    // The warm-up batch: inputs of the longest kind (a text longer than any limit, truncated or chunked as
    // the model was fine-tuned), as many as the budget and --max-batch-requests allow. It goes through the
    // batcher's queue like a request (so the inference thread and its runner size the arena and keep that
    // shape), before the server listens; its metrics are not counted.
    std::string text;
    for (int64_t i = 0; i < one_input + 8; ++i) text += "a ";
    int64_t docs = std::max<int64_t>(1, options.max_batch_tokens / one_input);
    if (options.max_batch_requests > 0) docs = std::min(docs, options.max_batch_requests);
    std::vector<api::TextInput> inputs(static_cast<size_t>(docs), api::TextInput{text, "", false});
    s.batcher.warm_up(api::encode_inputs(c, inputs, 1));
  }
  s.threads = options.http_threads > 0 ? options.http_threads : options.max_concurrent_requests + 8;
  const int threads = s.threads;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.http.set_payload_max_length(options.payload_limit);
  s.http.set_read_timeout(options.read_timeout_s, 0);
  s.http.set_write_timeout(options.write_timeout_s, 0);
  s.http.set_keep_alive_timeout(options.keep_alive_timeout_s);
  s.http.set_tcp_nodelay(true);
  // cpp-httplib's default sets SO_REUSEPORT too, so a second server on a port in use would bind and share
  // it silently. SO_REUSEADDR alone: restarting at once works, a port in use is an error.
  s.http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // `curl -d` sends application/x-www-form-urlencoded unless told otherwise, and cpp-httplib refuses such a
  // body over 8 KiB (a limit compiled into Debian's .so) with a 413 that would read as --payload-limit's. The
  // body is JSON whatever the header says: before the body is read (the pre-routing handler runs first), the
  // header says so. The request object is httplib's own non-const local, handed to us as const.
  s.http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response&) {
    if (req.get_header_value("Content-Type").rfind("application/x-www-form-urlencoded", 0) == 0) {
      auto& headers = const_cast<httplib::Request&>(req).headers;
      headers.erase("Content-Type");
      headers.emplace("Content-Type", "application/json");
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.http.Post("/predict", [&s](const httplib::Request& req, httplib::Response& res) { s.predict(req, res); });
  s.http.Post("/tokenize",
              [&s](const httplib::Request& req, httplib::Response& res) { s.tokenize(req, res); });
  s.http.Get("/info", [&s](const httplib::Request&, httplib::Response& res) {
    res.set_content(s.info(), "application/json");
  });
  s.http.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    if (s.stopping) {
      res.status = 503;
      res.set_content(error_body("unhealthy", ErrorType::UNHEALTHY), "application/json");
    } else {
      res.status = 200;
    }
  });
  s.http.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    s.metrics.set_queue_size(s.batcher.queue_size());
    res.set_content(s.metrics.render(), "text/plain; version=0.0.4");
  });
  // Refusals httplib decides itself (body too large, unknown route) get TEI's JSON body too.
  s.http.set_error_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 413) {
      s.metrics.count_failure("validation");
      res.set_content(error_body("request body larger than the limit of " +
                                     std::to_string(s.o.payload_limit) + " bytes (--payload-limit)",
                                 ErrorType::VALIDATION),
                      "application/json");
    } else if (res.status == 404 &&
               (req.path == "/predict" || req.path == "/tokenize" || req.path == "/info" ||
                req.path == "/health" || req.path == "/metrics")) {
      // An endpoint asked with another method: 405 with Allow, as TEI (axum) answers.
      const bool post = req.path == "/predict" || req.path == "/tokenize";
      res.status = 405;
      res.set_header("Allow", post ? "POST" : "GET");
      res.set_content(error_body(req.method + " " + req.path + ": method not allowed (" +
                                     (post ? "POST" : "GET") + " " + req.path + ")",
                                 ErrorType::VALIDATION),
                      "application/json");
    } else if (res.status == 404) {
      res.set_content(error_body("no such endpoint: " + req.method + " " + req.path +
                                     " (POST /predict, POST /tokenize, GET /info, /health, /metrics)",
                                 ErrorType::VALIDATION),
                      "application/json");
    } else {
      res.set_content(error_body("HTTP " + std::to_string(res.status), ErrorType::VALIDATION),
                      "application/json");
    }
  });
  s.http.set_exception_handler([&s](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    s.metrics.count_failure("backend");
    res.status = 500;
    res.set_content(error_body("internal error", ErrorType::BACKEND), "application/json");
  });
}

Server::~Server() {
  stop();
}

int Server::bind() {
  Impl& s = *impl_;
  if (s.o.port == 0) {
    const int port = s.http.bind_to_any_port(s.o.host);
    if (port < 0) throw Error("serve: cannot bind " + s.o.host + " on any port");
    s.http.widen_backlog(kBacklog);
    return port;
  }
  if (!s.http.bind_to_port(s.o.host, s.o.port))
    throw Error("serve: cannot bind " + s.o.host + ":" + std::to_string(s.o.port) +
                " (in use, or not an address of this machine)");
  s.http.widen_backlog(kBacklog);
  return s.o.port;
}

void Server::run() {
  Impl& s = *impl_;
  ::signal(SIGPIPE, SIG_IGN);
  s.run_started = true;
  if (!s.stopping) s.http.listen_after_bind();  // returns after stop(), its connections' requests answered
  s.listen_returned = true;
  s.batcher.shutdown();
}

void Server::stop() {
  Impl& s = *impl_;
  s.stopping = true;
  // A stop() between bind and the accept loop's start would be lost: wait until the loop runs (or ended).
  if (s.run_started)
    while (!s.http.is_running() && !s.listen_returned)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s.http.stop();
}

Metrics& Server::metrics() {
  return impl_->metrics;
}

}  // namespace bertfit::serve
