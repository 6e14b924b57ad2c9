// `bertfit serve`: a fine-tuned classifier behind HTTP with text-embeddings-inference's API (TEI 1.x), so its
// clients work unchanged:
//   POST /predict   scores per label, most probable first (softmax, or the logits with raw_scores)
//   POST /tokenize  ids, token texts, special flags and byte offsets, per input
//   GET  /info      model type and id2label, max input length, the batching limits
//   GET  /health    200 while serving, 503 once shutdown began
//   GET  /metrics   Prometheus text (serve/metrics.h)
// Successful predictions carry TEI's timing headers (x-compute-time, x-tokenization-time, x-queue-time,
// x-inference-time in milliseconds; x-compute-tokens, x-compute-characters). Errors are TEI's JSON bodies
// (serve/api_error.h). Request threads (one per open connection, cpp-httplib's pool) decode and tokenize;
// one inference thread runs the dynamic batches (serve/batcher.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "serve/metrics.h"
#include "train/classifier.h"

namespace bertfit::serve {

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 8080;       // 0: any free port (bind() says which)
  std::string model_id;  // what /info reports (the model directory)
  // Positions per forward pass (rows x longest sequence); 0: 4096 (32 inputs of 128), or one input of the
  // model's longest kind (max_seq_length x chunks) when that is more. A pass takes every queued input that
  // fits, the oldest and its nearest in length first (batcher.h).
  int64_t max_batch_tokens = 0;
  int64_t max_batch_requests = 0;     // inputs per forward pass; 0: only the token budget limits
  int max_concurrent_requests = 128;  // /predict requests in progress at once; beyond: 429
  int max_client_batch_size = 32;     // inputs per request; beyond: 413
  size_t payload_limit = 2000000;     // request body bytes; beyond: 413 (TEI's default)
  bool auto_truncate = false;         // truncate when a request does not say (TEI's --auto-truncate)
  int read_timeout_s = 5;             // a client that sends nothing for this long is dropped
  int write_timeout_s = 5;            // a client that reads nothing for this long is dropped
  int keep_alive_timeout_s = 5;       // an idle kept-alive connection is closed after this long
  int http_threads = 0;               // request threads; 0: max_concurrent_requests + 8 (for /health etc.)
};

class Server {
 public:
  // Throws ConfigError for options that cannot work (a budget smaller than one input of the model's length).
  // Warms up before returning, as TEI does: one forward pass of the largest batch the budget holds (inputs of
  // the model's longest kind), so the arena is sized and touched before the first request.
  Server(Classifier& c, const ServeOptions& options);
  ~Server();
  // Binds host:port; returns the port. Throws Error when the address cannot be bound.
  int bind();
  // Serves until stop(): then stops accepting, answers the requests already received (their queued inputs
  // run), and returns. SIGPIPE is ignored from the first call on (a client that hangs up must not end the
  // process).
  void run();
  // Thread-safe; may be called before run() starts serving (run then returns at once).
  void stop();
  Metrics& metrics();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bertfit::serve
