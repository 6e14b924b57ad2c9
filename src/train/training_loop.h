// The one training loop of bertfit, as HuggingFace's Trainer runs it, for every task: fine-tuning
// (finetune.h) and masked-LM pre-training (pretrain.h) are TrainingTask adapters over it.
//
// Per epoch: plan_train_batches (seeded by (seed, epoch), length-grouped). Per optimizer step: the task gives
// the step's micro-batches and their loss normaliser (the number of loss items of the whole step: labelled
// documents, masked tokens), so that accumulation gives exactly the large batch's gradients -> forward /
// backward of each -> step hooks -> gradient hook -> clip_grad_norm -> AdamW x schedule(step) -> step hooks.
// Evaluation and checkpoints by eval_strategy / save_strategy, the best checkpoint by the task's metric and
// direction (kept through rotation, loaded at the end), early stopping, the mean loss of every logging
// window in trainer_state.json and on the console, and exact resume: a checkpoint's step says everything
// (batch order and dropout masks are functions of (seed, epoch / step)), so resumed runs end bitwise equal to
// uninterrupted ones.
//
// Seams: StepHook (the competition tricks: FGM / PGD perturbation, weight averaging; tricks.h), GradientHook
// (the data-parallel gradient reduction, before clipping; dist/), LogHistorySink (TensorBoard and the run
// report: every log_history entry as it is made). Text for people goes through the LogSink (progress.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bertfit/tokenizer.h"
#include "model/bert_model.h"
#include "train/encoded_data.h"
#include "train/optimizer.h"
#include "train/training_args.h"

namespace bertfit {

// An evaluation's named metrics, logged as <prefix>_<name> (eval_loss, eval_accuracy, eval_perplexity).
struct EvalMetrics {
  std::vector<std::pair<std::string, double>> values;
  double runtime = 0;   // seconds
  int64_t samples = 0;  // examples evaluated (for <prefix>_samples_per_second)
  // What is not one number (per-class scores, the confusion matrix with its labels): written into
  // eval_results.json as <prefix>_<key>, never into log_history (HF's entries hold numbers).
  nlohmann::json details = nlohmann::json::object();
  // Throws std::out_of_range naming the metric when it is not among the values.
  double value(const std::string& name) const;
  // HF's log_history entry: {epoch, <prefix>_<name>..., <prefix>_runtime, <prefix>_samples_per_second, step}.
  nlohmann::json log_entry(const std::string& prefix, double epoch, int64_t step) const;
  // eval_results.json: the "eval" log entry with the details; without epoch and step when nothing was trained
  // (--do_eval alone: HF omits the epoch then).
  nlohmann::json eval_results(double epoch, int64_t step, bool trained = true) const;
};

// The metric that picks the best checkpoint and its direction.
struct BestModelMetric {
  std::string name;
  bool greater_is_better = false;
};

// What the loop needs from a task.
class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  // The training examples; the loop plans their batches.
  virtual const std::vector<EncodedExample>& train_examples() const = 0;
  // The batches of an epoch in training order (indices into train_examples()): a pure function of (seed,
  // epoch) with the same number of batches every epoch (resume recomputes it). Default: plan_train_batches
  // over all the examples (ceil(n / batch_size) batches); multi-task fine-tuning keeps each batch to one
  // task.
  virtual std::vector<std::vector<int64_t>> plan_epoch(int batch_size, bool group_by_length, uint64_t seed,
                                                       int64_t epoch) const;
  virtual int64_t batches_per_epoch(int batch_size) const;
  // Begins an optimizer step over these micro-batches (indices into train_examples) of `epoch` and returns
  // the step's loss normaliser: the number of loss items in all of them (at least 1).
  virtual float begin_step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t epoch) = 0;
  // Writes the model input of micro-batch k of the step begun last; false when it has no loss item (it
  // would add nothing to the loss or the gradients) and is skipped. The batch stays valid until the next
  // call.
  virtual bool micro_batch(BertModel& model, size_t k, Batch* batch) = 0;
  // Held-out evaluation (eval mode, no dropout); `what` names its progress display ("eval", "final eval").
  virtual bool has_eval_data() const = 0;
  virtual EvalMetrics evaluate(BertModel& model, const std::string& what) = 0;
  virtual BestModelMetric best_metric() const = 0;
  // The console's words for an evaluation ("loss 0.3100, accuracy 0.9100, macro-F1 0.9000").
  virtual std::string describe(const EvalMetrics& e) const = 0;
  // Evaluate once before the first step of a fresh run (pre-training: the held-out loss to beat).
  virtual bool evaluate_on_start() const { return false; }
  // The progress display's name ("train", "pretrain").
  virtual std::string progress_name() const { return "train"; }
  // A line after training (padding statistics), or "".
  virtual std::string training_summary() const { return ""; }
  // State beside the model (ELECTRA's generator): written into every checkpoint (checkpoint: with its
  // optimizer state) and the output directory after the model, before trainer_state.json; read back on
  // resume (checkpoint: true) and when the best checkpoint is loaded at the end (false).
  virtual void save_state(const std::string& /*dir*/, bool /*checkpoint*/) {}
  virtual void load_state(const std::string& /*dir*/, bool /*checkpoint*/) {}
};

// The step being taken, for step hooks.
struct StepContext {
  BertModel& model;
  Optimizer& optimizer;
  TrainingTask& task;
  const std::vector<std::vector<int64_t>>& micro_batches;
  int64_t global_step;    // steps taken before this one
  float loss_normalizer;  // the task's normaliser of this step
  uint64_t dropout_key;   // micro-batch k of this step draws dropout masks from dropout_key + k
  double loss;            // the step's loss so far (sum of the micro-batches' normalised losses)
  double lr_multiplier;   // the schedule's value for this step
  // The micro-batches this process computes: all of them, or its share in data-parallel training
  // (dist/data_parallel.h; the loss and the gradients are summed over the ranks after the step hooks).
  size_t micro_begin = 0, micro_end = 0;
};

class StepHook {
 public:
  virtual ~StepHook() = default;
  // After the step's forward and backward passes, before the gradient hook and clipping. May run more
  // passes that add to the gradients (adversarial perturbation, a second forward pass) through
  // ctx.task.micro_batch, and may add to ctx.loss.
  virtual void after_backward(StepContext& /*ctx*/) {}
  // After the optimizer step (weight averaging: EMA, SWA).
  virtual void after_optimizer_step(StepContext& /*ctx*/) {}
  // Weights to evaluate and save in place of the trained ones (weight averaging swaps its average in), and
  // back: the loop calls swap_in / swap_out around every evaluation and checkpoint's model file, and swap_in
  // (for good) before the final model is chosen, evaluated and written.
  virtual void swap_in(BertModel& /*model*/) {}
  virtual void swap_out(BertModel& /*model*/) {}
  // The hook's state in a checkpoint directory (written before the optimizer state, the checkpoint's
  // completion mark), read back on resume after the checkpoint's weights are loaded into the model.
  virtual void save_state(const std::string& /*checkpoint_dir*/, BertModel& /*model*/) {}
  virtual void load_state(const std::string& /*checkpoint_dir*/, BertModel& /*model*/) {}
};

// Called with the accumulated gradients (the model's whole gradient buffer) before clipping (with several
// ranks: after LoopHooks::gradient_reducer has summed them over the ranks).
using GradientHook = std::function<void(float* grads, int64_t count)>;
// Receives every entry appended to trainer_state.json's log_history, as it is made.
using LogHistorySink = std::function<void(const nlohmann::json& entry)>;

namespace dist {
class BucketedReducer;
}
class ZeroOptimizerStep;

struct LoopHooks {
  std::vector<std::shared_ptr<StepHook>> step_hooks;
  GradientHook gradient_hook;
  LogHistorySink log_history_sink;
  // Data-parallel (set by TrainingLoop when dist::world() has several ranks): sums the gradients over the
  // ranks, in buckets started during the backward of a rank's only micro-batch when no step hook may still
  // add gradients, else after the step hooks; before gradient_hook.
  std::shared_ptr<dist::BucketedReducer> gradient_reducer;
  // Data-parallel with --zero_stage 1 (instead of gradient_reducer): sums, clips and steps each rank's shard
  // (train/zero_optimizer.h).
  std::shared_ptr<ZeroOptimizerStep> zero_step;
};

// One optimizer step: zero_grad, forward / backward of every micro-batch normalised by the step's loss
// items, the hooks, clipping to max_grad_norm (0: none), AdamW with the rates x lr_multiplier. Returns the
// step's loss (the large batch's mean) and writes the gradient norm before clipping. The micro-batches'
// gradients are added one micro-batch at a time, each computed on its own (BertModel::begin_separate_grads).
// With several ranks (dist::world()) each computes its contiguous share of the micro-batches (dist::shard).
double optimizer_step(BertModel& model, Optimizer& opt, TrainingTask& task,
                      const std::vector<std::vector<int64_t>>& micro_batches, int64_t epoch,
                      int64_t global_step, double max_grad_norm, double lr_multiplier, const LoopHooks& hooks,
                      double* grad_norm);

// Two runs writing one output_dir would mix their checkpoints and final files without a word (one run
// loading the other's best checkpoint). Locks the directory (flock on its own descriptor: no file is added
// to it) until the process ends; throws ConfigError when another process holds it. The lock goes with the
// process, so a kill -9 leaves none behind. Called by prepare_output_dir (and the k-fold run's directory).
void lock_output_dir(const std::string& dir);

// Validates the output directory for a run and creates it: an existing non-empty directory needs
// --overwrite_output_dir or --resume_from_checkpoint; a file in its place or a directory that cannot be
// created is a bertfit error naming the path. Returns the checkpoint to resume from ("" for a fresh run;
// "latest" resolved).
std::string prepare_output_dir(const TrainingArgs& args);

struct LoopResult {
  int64_t global_step = 0;
  double epoch = 0;
  bool resumed = false;
  bool has_best = false;
  double best_metric = 0;
  std::string best_checkpoint;
  std::optional<EvalMetrics> initial_eval;  // evaluate_on_start
  std::optional<EvalMetrics> final_eval;    // of the model written to output_dir
  double train_loss = 0;                    // mean over all steps of the run, resumed parts included
};

class TrainingLoop {
 public:
  // args_json: the whole run's settings (the task's own fields too), written as training_args.json.
  // resume_checkpoint: from prepare_output_dir. The model is loaded from it by run().
  TrainingLoop(const TrainingArgs& args, nlohmann::ordered_json args_json, TrainingTask& task,
               BertModel& model, const Tokenizer& tokenizer, const OptimizerOptions& optimizer_options,
               std::string resume_checkpoint, LoopHooks hooks = {});
  // Steps of the whole run (HF: max_steps > 0, else ceil(num_train_epochs x steps per epoch)).
  int64_t total_steps() const { return total_steps_; }
  const Optimizer& optimizer() const { return opt_; }
  // Trains, then writes output_dir: the best model (load_best_model_at_end) or the last, its tokenizer,
  // trainer_state.json and, with held-out data, eval_results.json.
  LoopResult run();

 private:
  const TrainingArgs& args_;
  nlohmann::ordered_json args_json_;
  TrainingTask& task_;
  BertModel& model_;
  const Tokenizer& tokenizer_;
  Optimizer opt_;
  std::string resume_;
  LoopHooks hooks_;
  int64_t steps_per_epoch_ = 1, total_steps_ = 0;
};

}  // namespace bertfit
