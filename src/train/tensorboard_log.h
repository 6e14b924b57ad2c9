// --report_to tensorboard: HuggingFace's TensorBoardCallback on the training loop's log_history seam
// (LoopHooks::log_history_sink). Every log_history entry becomes scalars at the entry's global step, named as
// HF's rewrite_logs names them: eval_<name> -> eval/<name>, test_<name> -> test/<name>, anything else ->
// train/<name> (train/loss, train/learning_rate, train/grad_norm, train/epoch, eval/loss, eval/accuracy,
// eval/macro_f1, ...); "step" is the x axis, not a scalar. The run's arguments are the text summary "args",
// as HF writes them when training begins. The event files themselves: io/tfevents_writer.h.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "train/training_args.h"
#include "train/training_loop.h"

namespace bertfit {

// HF's default logging_dir: output_dir/runs/<Mon DD_HH-MM-SS>_<host> (datetime "%b%d_%H-%M-%S", local time).
std::string default_logging_dir(const std::string& output_dir);

// The tag an entry's key gets (HF's rewrite_logs).
std::string tensorboard_tag(const std::string& key);

// Opens an event file in args.logging_dir (or the default), writes the "args" text, and returns a sink that
// writes each entry's numbers as scalars, then passes the entry to `next` (when set). Throws FormatError
// naming the directory when it cannot be created.
LogHistorySink tensorboard_log_sink(const TrainingArgs& args, const nlohmann::ordered_json& args_json,
                                    LogHistorySink next);

}  // namespace bertfit
