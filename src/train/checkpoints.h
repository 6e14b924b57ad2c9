// Checkpoints in HuggingFace Trainer's layout, shared by fine-tuning and pre-training:
// output_dir/checkpoint-<step>/ with the model directory files, optimizer.safetensors, trainer_state.json
// (the Trainer's shape, sorted keys, indent 2) and training_args.json; rotation that never deletes the best.
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "model/bert_model.h"
#include "train/optimizer.h"

namespace bertfit {

// The run-level numbers trainer_state.json repeats.
struct TrainerStateInfo {
  int64_t eval_steps = 0, logging_steps = 0, max_steps = 0, num_train_epochs = 0, train_batch_size = 0;
  int64_t save_steps = 0;  // the interval checkpoints are saved at (TrainingArgs::effective_save_steps)
  int early_stopping_patience = 0;
};

struct TrainerState {
  int64_t global_step = 0;
  double epoch = 0;
  bool has_best = false;
  double best_metric = 0;
  int64_t best_global_step = 0;
  std::string best_model_checkpoint;
  int patience_counter = 0;
  nlohmann::json log_history = nlohmann::json::array();

  // Counts one optimizer step's loss (after global_step was advanced); every logging_steps appends HF's
  // training entry {epoch, grad_norm, learning_rate, loss (mean since the last entry), step}.
  void record_step(double loss, double grad_norm, double learning_rate, int64_t logging_steps) {
    running_loss_ += loss;
    ++running_n_;
    run_loss_ += loss;
    ++run_n_;
    if (global_step % logging_steps != 0) return;
    log_history.push_back({{"epoch", epoch},
                           {"grad_norm", grad_norm},
                           {"learning_rate", learning_rate},
                           {"loss", running_loss_ / static_cast<double>(running_n_)},
                           {"step", global_step}});
    running_loss_ = 0;
    running_n_ = 0;
  }
  // Mean loss over the steps this process ran (HF's train_loss of the final log entry).
  double mean_train_loss() const { return run_n_ ? run_loss_ / static_cast<double>(run_n_) : 0.0; }

 private:
  double running_loss_ = 0, run_loss_ = 0;
  int64_t running_n_ = 0, run_n_ = 0;

 public:
  nlohmann::json to_json(const TrainerStateInfo& a) const {
    nlohmann::json j;
    j["best_global_step"] = has_best ? nlohmann::json(best_global_step) : nlohmann::json(nullptr);
    j["best_metric"] = has_best ? nlohmann::json(best_metric) : nlohmann::json(nullptr);
    // null, as HF's, also when the best evaluation had no checkpoint (saving at other steps).
    j["best_model_checkpoint"] = has_best && !best_model_checkpoint.empty()
                                     ? nlohmann::json(best_model_checkpoint)
                                     : nlohmann::json(nullptr);
    j["epoch"] = epoch;
    j["eval_steps"] = a.eval_steps;
    j["global_step"] = global_step;
    j["is_hyper_param_search"] = false;
    j["is_local_process_zero"] = true;
    j["is_world_process_zero"] = true;
    j["log_history"] = log_history;
    j["logging_steps"] = a.logging_steps;
    j["max_steps"] = a.max_steps;
    j["num_input_tokens_seen"] = 0;
    j["num_train_epochs"] = a.num_train_epochs;
    j["save_steps"] = a.save_steps;
    nlohmann::json control = {{"args",
                               {{"should_epoch_stop", false},
                                {"should_evaluate", false},
                                {"should_log", false},
                                {"should_save", true},
                                {"should_training_stop", false}}},
                              {"attributes", nlohmann::json::object()}};
    j["stateful_callbacks"] = {{"TrainerControl", control}};
    if (a.early_stopping_patience > 0)
      j["stateful_callbacks"]["EarlyStoppingCallback"] = {
          {"args",
           {{"early_stopping_patience", a.early_stopping_patience}, {"early_stopping_threshold", 0.0}}},
          {"attributes", {{"early_stopping_patience_counter", patience_counter}}}};
    j["total_flos"] = 0;
    j["train_batch_size"] = a.train_batch_size;
    j["trial_name"] = nullptr;
    j["trial_params"] = nullptr;
    return j;
  }

  static TrainerState from_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw FormatError(path + ": cannot open (not a checkpoint directory?)");
    nlohmann::json j;
    try {
      in >> j;
      TrainerState s;
      s.global_step = j.at("global_step").get<int64_t>();
      s.epoch = j.at("epoch").get<double>();
      s.has_best = !j.at("best_metric").is_null();
      if (s.has_best) {
        s.best_metric = j.at("best_metric").get<double>();
        s.best_model_checkpoint = j.at("best_model_checkpoint").get<std::string>();
        if (j.contains("best_global_step") && !j.at("best_global_step").is_null())
          s.best_global_step = j.at("best_global_step").get<int64_t>();
      }
      s.log_history = j.at("log_history");
      if (j.contains("stateful_callbacks") && j["stateful_callbacks"].contains("EarlyStoppingCallback"))
        s.patience_counter =
            j["stateful_callbacks"]["EarlyStoppingCallback"]["attributes"]["early_stopping_patience_counter"];
      return s;
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(path + ": malformed trainer state: " + e.what());
    }
  }
};

// The step of a checkpoint directory name: "checkpoint-<digits>" and nothing else, so the staging directory
// of a save that was killed ("checkpoint-500.tmp-4242") is never taken for checkpoint 500. -1 otherwise.
int64_t checkpoint_step(const std::string& name);

// A checkpoint is complete once trainer_state.json is in it: the loop writes it after the weights and the
// optimizer state, so a save killed half way leaves a directory without it, which cannot be resumed.
bool is_complete_checkpoint(const std::string& dir);

// The complete output_dir/checkpoint-<N> directories, oldest first.
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir);

// Removes what a run killed during a checkpoint save leaves in output_dir: staging directories
// "checkpoint-<N>.tmp-<pid>" and temporary files "<name>.tmp-<pid>" of processes that are no longer running,
// and checkpoint directories without trainer_state.json. Returns the paths removed. Called by
// find_latest_checkpoint and rotate_checkpoints, so every run that resumes or saves cleans up after a killed
// one.
std::vector<std::string> remove_checkpoint_leftovers(const std::string& output_dir);

// The newest complete output_dir/checkpoint-<N> ("" when none), after remove_checkpoint_leftovers.
std::string find_latest_checkpoint(const std::string& output_dir);
// Deletes the oldest checkpoints beyond `limit` (0: keep all), never `best` nor the newest; only complete
// checkpoints count (remove_checkpoint_leftovers runs first).
void rotate_checkpoints(const std::string& output_dir, int limit, const std::string& best);

// Checks that optimizer.safetensors at `path` was written for these parameter groups (offset, size, learning
// rate, weight decay: the layout its metadata records) before its moments are loaded: resuming with another
// --learning_rate, --layerwise_lr_decay, --head_learning_rate or --weight_decay would otherwise change the
// rates silently. Throws FormatError naming the file, the first group that differs and the options.
void check_optimizer_groups(const std::string& path, const std::vector<ParamGroup>& groups);
// check_optimizer_groups, then opt.load(path): what a resume calls.
void load_optimizer_state(Optimizer& opt, const std::string& path);
// Loads every parameter of the model from a model directory (all must be present).
void load_weights_into(BertModel& m, const std::string& dir);

}  // namespace bertfit
