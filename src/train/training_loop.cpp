#include "train/training_loop.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>

#include "bertfit/error.h"
#include "core/atomic_file.h"
#include "dist/communicator.h"
#include "dist/data_parallel.h"
#include "kernels/adamw.h"
#include "train/batching.h"
#include "train/checkpoints.h"
#include "train/hf_model_dir.h"
#include "train/progress.h"
#include "train/schedule.h"
#include "train/tensorboard_log.h"
#include "train/zero_optimizer.h"

namespace fs = std::filesystem;

namespace bertfit {

double EvalMetrics::value(const std::string& name) const {
  for (const auto& [n, v] : values)
    if (n == name) return v;
  throw std::out_of_range("evaluation has no metric \"" + name + "\"");
}

nlohmann::json EvalMetrics::log_entry(const std::string& prefix, double epoch, int64_t step) const {
  nlohmann::json j;
  j["epoch"] = epoch;
  for (const auto& [n, v] : values) j[prefix + "_" + n] = v;
  j[prefix + "_runtime"] = runtime;
  j[prefix + "_samples_per_second"] = runtime > 0 ? static_cast<double>(samples) / runtime : 0.0;
  j["step"] = step;
  return j;
}

nlohmann::json EvalMetrics::eval_results(double epoch, int64_t step, bool trained) const {
  nlohmann::json j = log_entry("eval", epoch, step);
  for (const auto& [key, value] : details.items()) j["eval_" + key] = value;
  if (!trained) {
    j.erase("epoch");
    j.erase("step");
  }
  return j;
}

double optimizer_step(BertModel& model, Optimizer& opt, TrainingTask& task,
                      const std::vector<std::vector<int64_t>>& micro_batches, int64_t epoch,
                      int64_t global_step, double max_grad_norm, double lr_multiplier, const LoopHooks& hooks,
                      double* grad_norm) {
  // Every rank begins the whole step: the normaliser counts the loss items of all its micro-batches.
  const float normalizer = task.begin_step(micro_batches, epoch);
  dist::Communicator& comm = dist::world();
  const dist::Range mine = dist::shard(static_cast<int64_t>(micro_batches.size()), comm.rank(), comm.size());
  StepContext ctx{model,
                  opt,
                  task,
                  micro_batches,
                  global_step,
                  normalizer,
                  static_cast<uint64_t>(global_step) * 4096,
                  0.0,
                  lr_multiplier,
                  static_cast<size_t>(mine.begin),
                  static_cast<size_t>(mine.end)};
  model.zero_grad();
  Batch b;
  bool first = true;
  dist::BucketedReducer* reducer = hooks.gradient_reducer.get();
  if (reducer) reducer->begin(model.grads());
  for (size_t k = ctx.micro_begin; k < ctx.micro_end; ++k) {
    if (!task.micro_batch(model, k, &b)) continue;
    // The first micro-batch's gradient goes straight into the zeroed buffer; each later one is computed on
    // its own and then added: g = ((g_0 + g_1) + g_2) + ..., what the ranks' ordered sum reproduces.
    if (!first) model.begin_separate_grads();
    // Data-parallel: the reduction overlaps the backward of a rank's only micro-batch (its gradients are
    // final as the backward leaves each layer), unless a step hook may still add to them.
    const bool overlap = reducer && first && k + 1 == ctx.micro_end && hooks.step_hooks.empty();
    if (overlap) model.on_gradients_ready = [reducer](int64_t offset) { reducer->ready_from(offset); };
    ctx.loss += model.forward(b, /*training=*/true, ctx.dropout_key + k, normalizer);
    model.backward();
    model.on_gradients_ready = nullptr;
    if (!first) model.end_separate_grads();
    first = false;
  }
  for (const auto& h : hooks.step_hooks) h->after_backward(ctx);
  if (reducer) reducer->finish();
  if (hooks.gradient_hook) hooks.gradient_hook(model.grads(), model.buffer_floats());
  if (comm.size() > 1) ctx.loss = dist::ordered_sum(comm, ctx.loss);
  double norm = 0;
  if (hooks.zero_step) {
    norm = hooks.zero_step->step(max_grad_norm, lr_multiplier);
  } else {
    // torch's clip_grad_norm_ then AdamW, with the clipping factor applied as AdamW reads each gradient (the
    // same values; one pass over the gradients fewer). The buffer keeps the unclipped gradients, which
    // nothing reads after the step (the next step zeroes them).
    norm = bertfit::grad_norm(model.grads(), model.buffer_floats());  // the parameter grad_norm shadows it
    opt.step(model, lr_multiplier, clip_coefficient(norm, max_grad_norm));
  }
  if (grad_norm) *grad_norm = norm;
  for (const auto& h : hooks.step_hooks) h->after_optimizer_step(ctx);
  return ctx.loss;
}

void lock_output_dir(const std::string& dir) {
  static std::mutex mutex;
  static std::set<std::string> held;  // this process's locks (a k-fold or multi-task run prepares several)
  std::error_code ec;
  const std::string key = fs::weakly_canonical(fs::absolute(dir, ec), ec).string();
  const std::lock_guard<std::mutex> guard(mutex);
  if (held.count(key)) return;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw FormatError(dir + ": cannot open the output directory: " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK)
      throw ConfigError("output_dir " + dir +
                        " is in use by another bertfit run (it holds the directory's lock): wait for it to "
                        "end, or give another --output_dir");
    throw FormatError(dir + ": cannot lock the output directory: " + std::strerror(err));
  }
  held.insert(key);  // the descriptor stays open: the lock lasts as long as the process
}

std::string prepare_output_dir(const TrainingArgs& args) {
  const std::string& dir = args.output_dir;
  std::error_code ec;
  const bool resuming = !args.resume_from_checkpoint.empty();
  // Data-parallel: rank 0 checks and creates the directory; the others only find the checkpoint (rank 0
  // may already be writing into the directory when they look, and a failure on rank 0 ends them all).
  const bool writer = dist::world().rank() == 0;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw ConfigError("option --output_dir: " + dir + " exists and is not a directory");
  if (writer && !resuming && fs::is_directory(dir, ec) && !fs::is_empty(dir, ec) &&
      !args.overwrite_output_dir)
    throw ConfigError("output_dir " + dir +
                      " exists and is not empty: pass --overwrite_output_dir, or --resume_from_checkpoint");
  if (writer) fs::create_directories(dir, ec);
  if (ec) throw FormatError(dir + ": cannot create the output directory: " + ec.message());
  if (writer && args.runs_training()) lock_output_dir(dir);
  if (writer && !resuming && args.runs_training()) {
    // --overwrite_output_dir trains again from the start: an earlier run's checkpoints go first. Left there,
    // the rotation would delete the older ones and keep its newest, which a later --resume_from_checkpoint
    // latest would take for this run's (HF's Trainer leaves them, with that outcome).
    // Not the checkpoint the run starts from (--model_name_or_path out/checkpoint-500 --output_dir out).
    std::vector<std::string> earlier;
    const fs::path model = fs::weakly_canonical(fs::absolute(args.model_name_or_path, ec), ec);
    for (const auto& [step, path] : list_checkpoints(dir)) {
      const fs::path ck = fs::weakly_canonical(fs::absolute(path, ec), ec);
      // The model is neither ck nor inside it when ck's components are not a prefix of the model's.
      if (std::mismatch(ck.begin(), ck.end(), model.begin(), model.end()).first != ck.end())
        earlier.push_back(path);
    }
    remove_checkpoint_leftovers(dir);
    for (const std::string& path : earlier) {
      fs::remove_all(path, ec);
      if (ec) throw FormatError(path + ": cannot remove this checkpoint of an earlier run: " + ec.message());
    }
    if (!earlier.empty())
      log_message("--overwrite_output_dir: removed " + std::to_string(earlier.size()) +
                  " checkpoint(s) of an earlier run from " + dir + " (" + earlier.front() +
                  (earlier.size() > 1 ? " ... " + earlier.back() : "") + ")");
  }
  if (!resuming) return "";
  const std::string ck =
      args.resume_from_checkpoint == "latest" ? find_latest_checkpoint(dir) : args.resume_from_checkpoint;
  if (ck.empty()) throw ConfigError("--resume_from_checkpoint latest: no checkpoint-* in " + dir);
  if (!fs::is_directory(ck, ec))
    throw ConfigError("option --resume_from_checkpoint: " + ck + " is not a directory");
  return ck;
}

namespace {

// trainer_state.json keeps what HF's TrainerState has; the loss sums a resumed run needs to continue its
// logging windows and its train_loss exactly go under stateful_callbacks, which HF ignores for callbacks it
// does not know.
constexpr const char* kLossCallback = "BertfitTrainLoss";

// The training loss: the mean of each logging window (HF logs that, and so does the console) and of the
// whole run.
struct LossTracker {
  double window_sum = 0, total_sum = 0;
  int64_t window_steps = 0, total_steps = 0;

  void add(double loss) {
    window_sum += loss;
    ++window_steps;
    total_sum += loss;
    ++total_steps;
  }
  double window_mean() const { return window_steps ? window_sum / static_cast<double>(window_steps) : 0.0; }
  double total_mean() const { return total_steps ? total_sum / static_cast<double>(total_steps) : 0.0; }
  void close_window() {
    window_sum = 0;
    window_steps = 0;
  }
  nlohmann::json to_json() const {
    return {{"args", nlohmann::json::object()},
            {"attributes",
             {{"window_loss_sum", window_sum},
              {"window_steps", window_steps},
              {"total_loss_sum", total_sum},
              {"total_steps", total_steps}}}};
  }
  // From a checkpoint's trainer_state.json (older checkpoints lack it: the sums restart).
  static LossTracker from_state_file(const std::string& path) {
    LossTracker t;
    std::ifstream in(path);
    nlohmann::json j;
    try {
      in >> j;
      const auto& a = j.at("stateful_callbacks").at(kLossCallback).at("attributes");
      t.window_sum = a.at("window_loss_sum").get<double>();
      t.window_steps = a.at("window_steps").get<int64_t>();
      t.total_sum = a.at("total_loss_sum").get<double>();
      t.total_steps = a.at("total_steps").get<int64_t>();
    } catch (const nlohmann::json::exception&) {
      return LossTracker{};
    }
    return t;
  }
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// VmRSS of /proc/self/status in MiB (0 when unreadable).
double resident_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  return 0;
}

bool at_interval(IntervalStrategy s, int64_t every, int64_t step, bool epoch_end) {
  switch (s) {
    case IntervalStrategy::NO:
      return false;
    case IntervalStrategy::STEPS:
      return step % every == 0;
    case IntervalStrategy::EPOCH:
      return epoch_end;
  }
  return false;
}

}  // namespace

std::vector<std::vector<int64_t>> TrainingTask::plan_epoch(int batch_size, bool group_by_length,
                                                           uint64_t seed, int64_t epoch) const {
  return plan_train_batches(train_examples(), batch_size, group_by_length, seed, epoch);
}

int64_t TrainingTask::batches_per_epoch(int batch_size) const {
  const auto n = static_cast<int64_t>(train_examples().size());
  return (n + batch_size - 1) / batch_size;
}

TrainingLoop::TrainingLoop(const TrainingArgs& args, nlohmann::ordered_json args_json, TrainingTask& task,
                           BertModel& model, const Tokenizer& tokenizer,
                           const OptimizerOptions& optimizer_options, std::string resume_checkpoint,
                           LoopHooks hooks)
    : args_(args),
      args_json_(std::move(args_json)),
      task_(task),
      model_(model),
      tokenizer_(tokenizer),
      opt_(model, optimizer_options),
      resume_(std::move(resume_checkpoint)),
      hooks_(std::move(hooks)) {
  // Data-parallel: every step has world-size times the micro-batches (HF: the global batch is
  // per_device_train_batch_size x gradient_accumulation_steps x ranks), and the gradients are summed over
  // the ranks before the hook the caller gave.
  dist::Communicator& comm = dist::world();
  if (comm.size() > 1) {
    // Buckets of --ddp_bucket_cap_mb (0: one bucket, reduced after the backward).
    const auto count = static_cast<int64_t>(model_.buffer_floats());
    const auto cap =
        args_.ddp_bucket_cap_mb > 0
            ? std::max<int64_t>(1, static_cast<int64_t>(args_.ddp_bucket_cap_mb * 1024 * 1024 / 4))
            : count + 1;
    if (args_.zero_stage == 1) {
      if (hooks_.gradient_hook)
        throw ConfigError(
            "option --zero_stage 1: a gradient hook needs the whole summed gradient, which no "
            "rank holds with a sharded optimizer");
      hooks_.zero_step = std::make_shared<ZeroOptimizerStep>(comm, model_, opt_);
    } else {
      hooks_.gradient_reducer =
          std::make_shared<dist::BucketedReducer>(comm, model_.gradient_ready_offsets(), count, cap);
    }
  }
  const int64_t B = args_.per_device_train_batch_size, G = args_.gradient_accumulation_steps * comm.size();
  const int64_t batches_per_epoch = task_.batches_per_epoch(static_cast<int>(B));
  steps_per_epoch_ = std::max<int64_t>((batches_per_epoch + G - 1) / G, 1);
  total_steps_ =
      args_.max_steps > 0
          ? args_.max_steps
          : static_cast<int64_t>(std::ceil(args_.num_train_epochs * static_cast<double>(steps_per_epoch_)));
}

LoopResult TrainingLoop::run() {
  const TrainingArgs& a = args_;
  const int64_t total = total_steps_, spe = steps_per_epoch_;
  const LrSchedule schedule(
      a.lr_scheduler_type, std::max<int64_t>(total, 1),
      resolve_warmup_steps(a.warmup_steps, a.warmup_ratio, std::max<int64_t>(total, 1)));
  const IntervalStrategy save_strategy = a.effective_save_strategy();
  const int64_t save_steps = a.effective_save_steps();
  TrainerStateInfo info;
  info.eval_steps = a.eval_steps;
  info.save_steps = a.effective_save_steps();
  info.logging_steps = a.logging_steps;
  info.max_steps = total;
  // HF's TrainerState: with max_steps, the epochs those steps reach (ceil(max_steps / steps per epoch)).
  info.num_train_epochs =
      a.max_steps > 0 ? (total + spe - 1) / spe : static_cast<int64_t>(std::ceil(a.num_train_epochs));
  info.train_batch_size = a.per_device_train_batch_size;
  info.early_stopping_patience = a.early_stopping_patience;

  TrainerState state;
  LossTracker losses;
  LoopResult result;
  if (!a.runs_training()) {
    // --do_eval alone: the given model evaluated; nothing trained, nothing saved but eval_results.json.
    if (!task_.has_eval_data())
      throw ConfigError("--do_eval without --do_train: there is no held-out data to evaluate on");
    result.final_eval = task_.evaluate(model_, "eval");
    const nlohmann::json j = result.final_eval->eval_results(0, 0, /*trained=*/false);
    if (dist::world().rank() == 0) write_file_atomic(a.output_dir + "/eval_results.json", j.dump(2) + "\n");
    log_message("eval: " + task_.describe(*result.final_eval));
    return result;
  }
  if (!resume_.empty()) {
    load_weights_into(model_, resume_);
    for (const auto& h : hooks_.step_hooks) h->load_state(resume_, model_);
    load_optimizer_state(opt_, resume_ + "/optimizer.safetensors");  // refuses other group rates
    task_.load_state(resume_, /*checkpoint=*/true);
    state = TrainerState::from_file(resume_ + "/trainer_state.json");
    // trainer_state.json names the best checkpoint as the saving run spelled its output_dir (as HF's does),
    // relative to that run's working directory. It lies beside the checkpoint resumed from.
    // (If nothing is there, e.g. a resume from another run's directory, the stored path is kept.)
    if (!state.best_model_checkpoint.empty()) {
      fs::path resumed(resume_), best(state.best_model_checkpoint);
      if (!resumed.has_filename()) resumed = resumed.parent_path();  // "out/checkpoint-6/"
      if (!best.has_filename()) best = best.parent_path();
      const std::string beside = (resumed.parent_path() / best.filename()).string();
      if (is_complete_checkpoint(beside) || !is_complete_checkpoint(state.best_model_checkpoint))
        state.best_model_checkpoint = beside;
    }
    if (opt_.steps() != state.global_step)
      throw FormatError(resume_ + ": optimizer step " + std::to_string(opt_.steps()) +
                        " differs from trainer state step " + std::to_string(state.global_step));
    losses = LossTracker::from_state_file(resume_ + "/trainer_state.json");
    result.resumed = true;
    log_message("resuming from " + resume_ + " at step " + std::to_string(state.global_step));
  }
  // Data-parallel: every rank must be running the same training (else collectives would hang or mix
  // runs); then they all start from rank 0's weights. Only rank 0 writes files.
  dist::Communicator& comm = dist::world();
  const bool writer = comm.rank() == 0;
  if (comm.size() > 1) {
    dist::RunFingerprint fp;
    uint64_t data_hash = dist::fnv1a(nullptr, 0);
    for (const EncodedExample& e : task_.train_examples()) {
      data_hash = dist::fnv1a(&e.label, sizeof e.label, data_hash);
      for (const auto& seq : e.seqs) {
        data_hash = dist::fnv1a(seq.ids.data(), seq.ids.size() * sizeof(seq.ids[0]), data_hash);
        data_hash = dist::fnv1a(seq.types.data(), seq.types.size() * sizeof(seq.types[0]), data_hash);
      }
    }
    fp.add("training data", data_hash);
    fp.add("settings (training_args.json)", args_json_.dump());
    fp.add("model size", static_cast<uint64_t>(model_.buffer_floats()));
    fp.add("start step (checkpoint)", static_cast<uint64_t>(state.global_step));
    fp.check_same_as_rank0(comm);
    comm.broadcast(model_.params(), static_cast<int64_t>(model_.buffer_floats() * sizeof(float)), 0);
    if (hooks_.zero_step) hooks_.zero_step->shard_state();  // after a resume's whole state was loaded
    log_message("data-parallel: " + comm.describe() + ", global batch " +
                std::to_string(a.per_device_train_batch_size * a.gradient_accumulation_steps * comm.size()) +
                (hooks_.zero_step ? std::string(", optimizer state sharded (ZeRO stage 1)")
                                  : ", gradients summed in " +
                                        std::to_string(hooks_.gradient_reducer->buckets()) + " bucket(s)"));
  }
  if (writer) write_file_atomic(a.output_dir + "/training_args.json", args_json_.dump(2) + "\n");

  auto state_json = [&] {
    nlohmann::json j = state.to_json(info);
    j["stateful_callbacks"][kLossCallback] = losses.to_json();
    return j.dump(2) + "\n";
  };
  LogHistorySink log_sink = hooks_.log_history_sink;
  if (a.reports_to("tensorboard")) log_sink = tensorboard_log_sink(a, args_json_, std::move(log_sink));
  auto append_log = [&](nlohmann::json entry) {
    if (log_sink) log_sink(entry);
    state.log_history.push_back(std::move(entry));
  };

  const bool do_eval = a.eval_strategy != IntervalStrategy::NO && task_.has_eval_data();
  const BestModelMetric best = task_.best_metric();
  if (do_eval && task_.evaluate_on_start() && resume_.empty() && total > 0) {
    result.initial_eval = task_.evaluate(model_, "eval");
    log_message("eval before training: " + task_.describe(*result.initial_eval));
  }

  Progress progress(task_.progress_name(), total, a.logging_steps);
  bool stop = false;
  int64_t last_eval_step = -1, last_save_step = -1, steps_run = 0, samples_run = 0;
  std::optional<EvalMetrics> last_eval;  // of the model as it was at last_eval_step
  // Evaluates (when `evaluate`) and saves a checkpoint (when `save`) at the current step.
  auto swap_in = [&] {
    for (const auto& h : hooks_.step_hooks) h->swap_in(model_);
  };
  auto swap_out = [&] {
    for (const auto& h : hooks_.step_hooks) h->swap_out(model_);
  };
  auto evaluate_and_save = [&](bool evaluate, bool save) {
    const std::string ck = a.output_dir + "/checkpoint-" + std::to_string(state.global_step);
    if (save) last_save_step = state.global_step;
    if (evaluate) {
      last_eval_step = state.global_step;
      swap_in();
      const EvalMetrics e = task_.evaluate(model_, "eval");
      swap_out();
      last_eval = e;
      append_log(e.log_entry("eval", state.epoch, state.global_step));
      const double v = e.value(best.name);
      const bool better =
          !state.has_best || (best.greater_is_better ? v > state.best_metric : v < state.best_metric);
      if (better) {
        state.has_best = true;
        state.best_metric = v;
        state.best_global_step = state.global_step;
        // Only a saved checkpoint can be the best one on disk (validate() makes every evaluation save when
        // the best model is loaded at the end).
        state.best_model_checkpoint = save ? ck : "";
        state.patience_counter = 0;
      } else {
        ++state.patience_counter;
      }
      progress.message("eval at step " + std::to_string(state.global_step) + ": " + task_.describe(e) +
                       (better ? " (best)" : ""));
      if (a.early_stopping_patience > 0 && state.patience_counter >= a.early_stopping_patience) {
        progress.message("early stopping: no improvement of " + best.name + " in " +
                         std::to_string(state.patience_counter) + " evaluations");
        stop = true;
      }
    }
    if (save && hooks_.zero_step) hooks_.zero_step->unshard_state();  // every rank: the whole state to save
    if (save && writer) {
      swap_in();
      // A checkpoint of this step from elsewhere (a resume from another run's directory) is replaced whole:
      // saved over, it would mix its optimizer state and trainer_state.json with this run's weights.
      fs::remove_all(ck);
      save_pretrained(model_, ck, &tokenizer_);
      swap_out();
      for (const auto& h : hooks_.step_hooks) h->save_state(ck, model_);
      opt_.save(ck + "/optimizer.safetensors");
      task_.save_state(ck, /*checkpoint=*/true);
      write_file_atomic(ck + "/trainer_state.json", state_json());
      write_file_atomic(ck + "/training_args.json", args_json_.dump(2) + "\n");
      rotate_checkpoints(a.output_dir, a.save_total_limit, state.best_model_checkpoint);
    }
    if (save && hooks_.zero_step) hooks_.zero_step->shard_state();
  };

  const int64_t G = a.gradient_accumulation_steps * comm.size();
  for (int64_t epoch = state.global_step / spe; !stop && state.global_step < total; ++epoch) {
    const auto plan = task_.plan_epoch(a.per_device_train_batch_size, a.group_by_length, a.seed, epoch);
    // Resume mid-epoch: skip the batches of the steps already taken (their order is recomputed, not
    // replayed).
    for (int64_t s = state.global_step - epoch * spe; s < spe && state.global_step < total && !stop; ++s) {
      std::vector<std::vector<int64_t>> micro;
      for (int64_t b = s * G; b < std::min<int64_t>((s + 1) * G, static_cast<int64_t>(plan.size())); ++b)
        micro.push_back(plan[b]);
      for (const auto& mb : micro) samples_run += static_cast<int64_t>(mb.size());
      const double mult = schedule.multiplier(state.global_step);
      double norm = 0;
      const double loss = optimizer_step(model_, opt_, task_, micro, epoch, state.global_step,
                                         a.max_grad_norm, mult, hooks_, &norm);
      ++state.global_step;
      ++steps_run;
      state.epoch = static_cast<double>(epoch) + static_cast<double>(s + 1) / static_cast<double>(spe);
      losses.add(loss);
      // The console shows what trainer_state.json logs: the mean loss of the current logging window.
      progress.update(state.global_step, " loss " + fmt("%.4f", losses.window_mean()) + " lr " +
                                             fmt("%.2e", a.learning_rate * mult));
      if (state.global_step % a.logging_steps == 0) {
        append_log({{"epoch", state.epoch},
                    {"grad_norm", norm},
                    {"learning_rate", a.learning_rate * mult},
                    {"loss", losses.window_mean()},
                    {"step", state.global_step}});
        losses.close_window();
      }
      const bool ev = do_eval && at_interval(a.eval_strategy, a.eval_steps, state.global_step, false);
      const bool sv = at_interval(save_strategy, save_steps, state.global_step, false);
      if (ev || sv) evaluate_and_save(ev, sv);
    }
    const bool epoch_end = state.global_step % spe == 0 || state.global_step == total;
    if (!stop && epoch_end) {
      const bool ev = do_eval && at_interval(a.eval_strategy, a.eval_steps, state.global_step, true) &&
                      a.eval_strategy == IntervalStrategy::EPOCH;
      const bool sv = save_strategy == IntervalStrategy::EPOCH;
      if (ev || sv) evaluate_and_save(ev, sv);
    }
  }
  // The last step is always evaluated (and saved, unless saving is off): with eval_strategy steps and a run
  // that does not end on a multiple of eval_steps, the final steps would otherwise never compete for the best
  // model.
  if (do_eval && !stop && state.global_step > 0 && last_eval_step != state.global_step && steps_run > 0)
    evaluate_and_save(true, save_strategy != IntervalStrategy::NO);
  // HF saves the last step with step-wise saving (DefaultFlowCallback), so a finished run can be extended
  // from its optimizer state.
  if (save_strategy == IntervalStrategy::STEPS && steps_run > 0 && last_save_step != state.global_step)
    evaluate_and_save(false, true);
  progress.finish();
  if (const std::string s = task_.training_summary(); !s.empty()) log_message(s);
  if (hooks_.gradient_reducer && steps_run > 0)
    log_message(
        "data-parallel: " + fmt("%.1f", 1e3 * hooks_.gradient_reducer->exposed_seconds() / steps_run) +
        " ms per step waiting for the gradient sums (not hidden behind the backward)");
  if (comm.size() > 1)  // what a rank holds, for ZeRO's saving (docs/scaling.md)
    log_message(
        "data-parallel: rank 0 resident memory " + fmt("%.0f", resident_mib()) + " MiB, optimizer state " +
        fmt("%.0f", 2.0 * static_cast<double>(opt_.shard_end() - opt_.shard_begin()) * 4 / (1 << 20)) +
        " MiB");
  // Rates over the steps this process ran (a resumed run did not run the earlier ones); the loss over all.
  const double runtime = progress.elapsed_seconds(), rate_time = std::max(runtime, 1e-9);
  result.train_loss = losses.total_mean();
  append_log({{"epoch", state.epoch},
              {"step", state.global_step},
              {"total_flos", 0},
              {"train_loss", result.train_loss},
              {"train_runtime", runtime},
              {"train_samples_per_second", static_cast<double>(samples_run) / rate_time},
              {"train_steps_per_second", static_cast<double>(steps_run) / rate_time}});

  result.global_step = state.global_step;
  result.epoch = state.epoch;
  swap_in();  // the final model is the average (a best checkpoint's weights are the average too)
  // The final model is the one the last evaluation saw unless a best checkpoint of another step is loaded
  // (the same condition on every rank: the step numbers are shared).
  bool final_model_evaluated = last_eval && last_eval_step == state.global_step;
  // Rank 0 decides whether the best checkpoint can be loaded, and tells the others (they wait on its
  // weights).
  int32_t load_best = state.has_best && a.load_best_model_at_end && !state.best_model_checkpoint.empty();
  if (load_best && writer && !is_complete_checkpoint(state.best_model_checkpoint)) {
    log_message("warning: the best checkpoint " + state.best_model_checkpoint + " (step " +
                std::to_string(state.best_global_step) +
                ") is gone or incomplete: the final model is the last step's, not the best one");
    load_best = 0;
  }
  if (comm.size() > 1) comm.broadcast(&load_best, sizeof load_best, 0);
  if (load_best) {
    // Rank 0 wrote it and reads it back; the others take its weights (their file system may not hold it).
    if (writer) {
      load_weights_into(model_, state.best_model_checkpoint);
      task_.load_state(state.best_model_checkpoint, /*checkpoint=*/false);
    }
    if (comm.size() > 1)
      comm.broadcast(model_.params(), static_cast<int64_t>(model_.buffer_floats() * sizeof(float)), 0);
    log_message("loaded the best model: " + state.best_model_checkpoint + " (" + best.name + " " +
                fmt("%.4f", state.best_metric) + ")");
    if (state.best_global_step != state.global_step) final_model_evaluated = false;
  }
  result.has_best = state.has_best;
  result.best_metric = state.best_metric;
  result.best_checkpoint = state.best_model_checkpoint;
  if (writer) {
    save_pretrained(model_, a.output_dir, &tokenizer_);
    task_.save_state(a.output_dir, /*checkpoint=*/false);
    write_file_atomic(a.output_dir + "/trainer_state.json", state_json());
  }
  if (task_.has_eval_data() && a.runs_final_evaluation()) {
    // Evaluation is deterministic for given weights, so the last evaluation of these weights is reused rather
    // than run again (a whole pass over the eval set: 12 s per run of `demo.sh --full`'s fine-tuning).
    result.final_eval = final_model_evaluated ? *last_eval : task_.evaluate(model_, "final eval");
    nlohmann::json j = result.final_eval->eval_results(state.epoch, state.global_step);
    if (result.initial_eval) j["initial_eval_loss"] = result.initial_eval->value("loss");
    if (writer) write_file_atomic(a.output_dir + "/eval_results.json", j.dump(2) + "\n");
  }
  return result;
}

}  // namespace bertfit
