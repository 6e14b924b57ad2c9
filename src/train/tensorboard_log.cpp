#include "train/tensorboard_log.h"

#include <unistd.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <utility>

#include "io/tfevents_writer.h"
#include "train/progress.h"

namespace bertfit {

std::string default_logging_dir(const std::string& output_dir) {
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  char when[64];
  std::strftime(when, sizeof when, "%b%d_%H-%M-%S", &local);
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::strcpy(host, "localhost");
  return output_dir + "/runs/" + when + "_" + host;
}

std::string tensorboard_tag(const std::string& key) {
  if (key.rfind("eval_", 0) == 0) return "eval/" + key.substr(5);
  if (key.rfind("test_", 0) == 0) return "test/" + key.substr(5);
  return "train/" + key;
}

LogHistorySink tensorboard_log_sink(const TrainingArgs& args, const nlohmann::ordered_json& args_json,
                                    LogHistorySink next) {
  const std::string dir = args.logging_dir.empty() ? default_logging_dir(args.output_dir) : args.logging_dir;
  auto writer = std::make_shared<TfEventsWriter>(dir);
  writer->add_text("args", args_json.dump(2));
  log_message("tensorboard: " + writer->path());
  return [writer, next = std::move(next)](const nlohmann::json& entry) {
    const int64_t step = entry.value("step", int64_t{0});
    for (const auto& [key, value] : entry.items())
      if (key != "step" && value.is_number())
        writer->add_scalar(tensorboard_tag(key), value.get<double>(), step);
    if (next) next(entry);
  };
}

}  // namespace bertfit
