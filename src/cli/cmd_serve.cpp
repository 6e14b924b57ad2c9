// `bertfit serve`: a fine-tuned classifier as an HTTP service with text-embeddings-inference's API
// (src/serve/server.h). SIGTERM / SIGINT stop it gracefully: no new connections, the requests received are
// answered, exit 0.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <thread>

#include "bertfit/error.h"
#include "cli/commands.h"
#include "core/threading.h"
#include "serve/server.h"
#include "train/classifier.h"

namespace bertfit::cli {

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve a fine-tuned model over HTTP (text-embeddings-inference's API: POST /predict, /tokenize, "
      "GET /info, /health, /metrics)");
  auto model = std::make_shared<std::string>();
  auto o = std::make_shared<serve::ServeOptions>();
  auto threads = std::make_shared<int>(0);
  auto payload = std::make_shared<int64_t>(static_cast<int64_t>(o->payload_limit));
  cmd->add_option("--model,--model-id,--model_id", *model,
                  "Fine-tuned model directory (bertfit finetune's output)")
      ->required();
  cmd->add_option("--port,-p", o->port, "Port (0: any free port, printed at start)")->capture_default_str();
  cmd->add_option("--host,--hostname", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option(
         option_names("max_batch_tokens"), o->max_batch_tokens,
         "Token budget of one forward pass: inputs x longest sequence (padding included); 0: 4096, or one "
         "input of the model's longest kind (max_seq_length x chunks) when that is more")
      ->capture_default_str();
  cmd->add_option(option_names("max_batch_requests"), o->max_batch_requests,
                  "Most inputs in one forward pass (0: only the token budget limits)")
      ->capture_default_str();
  cmd->add_option(option_names("max_concurrent_requests"), o->max_concurrent_requests,
                  "Requests in progress at once; more are refused with 429")
      ->capture_default_str();
  cmd->add_option(option_names("max_client_batch_size"), o->max_client_batch_size,
                  "Inputs per request; more are refused with 413")
      ->capture_default_str();
  cmd->add_option(option_names("payload_limit"), *payload,
                  "Request body bytes; larger bodies are refused with 413")
      ->capture_default_str();
  cmd->add_flag(
      option_names("auto_truncate"), o->auto_truncate,
      "Truncate (as the model was fine-tuned) inputs over the length limit when a request does not say; "
      "otherwise they are refused with 413");
  cmd->add_option(option_names("read_timeout"), o->read_timeout_s,
                  "Seconds a client may send nothing before it is dropped")
      ->capture_default_str();
  cmd->add_option(option_names("write_timeout"), o->write_timeout_s,
                  "Seconds a client may read nothing before it is dropped")
      ->capture_default_str();
  cmd->add_option(option_names("keep_alive_timeout"), o->keep_alive_timeout_s,
                  "Seconds an idle kept-alive connection stays open")
      ->capture_default_str();
  cmd->add_option("--threads", *threads, "Threads of the forward pass (0: all cores)")->capture_default_str();
  cmd->callback([=] {
    o->model_id = *model;
    if (*payload < 1) throw ConfigError("--payload-limit must be at least 1 (bytes)");
    o->payload_limit = static_cast<size_t>(*payload);
    // Every thread started from here on inherits the blocked signals; one thread takes them with sigwait, so
    // a signal never interrupts a request thread or the forward pass.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    set_num_threads(*threads);
    Classifier c = load_classifier(*model);
    serve::Server server(c, *o);
    const int port = server.bind();
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&stop_signals, &sig);
      std::fprintf(stderr, "serve: %s received, finishing the requests in progress\n",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
      server.stop();
    });
    std::fprintf(stderr,
                 "serve: %s (%zu labels) listening on http://%s:%d (POST /predict, /tokenize; GET /info, "
                 "/health, /metrics)\n",
                 model->c_str(), c.labels.id2label().size(), o->host.c_str(), port);
    std::fflush(stderr);
    server.run();
    waiter.join();
    std::fprintf(stderr, "serve: stopped\n");
  });
}

}  // namespace bertfit::cli
