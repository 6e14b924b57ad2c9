#include "train/trainer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "bertfit/io/checkpoint.h"
#include "bertfit/io/config_json.h"
#include "core/atomic_file.h"
#include "core/threading.h"
#include "data/split.h"
#include "kernels/cross_entropy.h"
#include "train/batching.h"
#include "train/checkpoints.h"
#include "train/optimizer.h"
#include "train/pretrained.h"
#include "train/progress.h"
#include "train/schedule.h"

namespace fs = std::filesystem;

namespace bertfit {

EvalOutput run_evaluation(BertModel& model, const std::vector<EncodedExample>& examples, int batch_size,
                          int32_t pad_id, const std::string& progress_name, int64_t pad_to_length) {
  EvalOutput out;
  const int64_t n = static_cast<int64_t>(examples.size());
  const int64_t NL = model.config().num_labels();
  out.has_labels = n > 0 && std::all_of(examples.begin(), examples.end(),
                                        [](const EncodedExample& e) { return e.label >= 0; });
  out.predictions.assign(static_cast<size_t>(n), -1);
  out.probs.assign(static_cast<size_t>(n * NL), 0.0f);
  const auto plan = plan_eval_batches(examples, batch_size);
  BatchBuilder builder;
  // Plain-log mode: a line every quarter of a long evaluation; short ones just print their final line.
  Progress progress(progress_name, static_cast<int64_t>(plan.size()),
                    std::max<int64_t>(25, static_cast<int64_t>(plan.size()) / 4));
  double loss_sum = 0;
  for (size_t bi = 0; bi < plan.size(); ++bi) {
    const auto& idx = plan[bi];
    const Batch b = builder.build(examples, idx, pad_id, out.has_labels, pad_to_length);
    loss_sum += model.forward(b, /*training=*/false, 0, /*loss_normalizer=*/1.0f);  // a sum over the batch
    const int64_t R = static_cast<int64_t>(idx.size());
    std::vector<float> p(static_cast<size_t>(R * NL));
    softmax_rows(p.data(), model.logits(), R, NL);
    for (int64_t r = 0; r < R; ++r) {
      const int64_t i = idx[r];
      std::copy(p.begin() + r * NL, p.begin() + (r + 1) * NL, out.probs.begin() + i * NL);
      out.predictions[i] =
          std::max_element(p.begin() + r * NL, p.begin() + (r + 1) * NL) - (p.begin() + r * NL);
    }
    progress.update(static_cast<int64_t>(bi + 1));
  }
  out.runtime = progress.elapsed_seconds();
  if (out.has_labels) {
    out.loss = loss_sum / static_cast<double>(std::max<int64_t>(n, 1));
    std::vector<int64_t> labels;
    for (const auto& e : examples) labels.push_back(e.label);
    out.metrics = train::compute_metrics(out.predictions, labels, NL);
  }
  return out;
}

double metric_value(const EvalOutput& e, const std::string& name) {
  if (name == "loss") return e.loss;
  if (name == "macro_f1") return e.metrics.macro.f1;
  if (name == "micro_f1") return e.metrics.micro.f1;
  if (name == "weighted_f1") return e.metrics.weighted.f1;
  return e.metrics.accuracy;
}

float accumulate_and_step(BertModel& model, Optimizer& opt, const std::vector<EncodedExample>& examples,
                          const std::vector<std::vector<int64_t>>& micro_batches, int32_t pad_id,
                          double max_grad_norm, double lr_multiplier, uint64_t step_key, double* grad_norm,
                          int64_t pad_to_length) {
  static thread_local BatchBuilder builder;
  int64_t labelled = 0;
  for (const auto& mb : micro_batches)
    for (int64_t i : mb) labelled += examples[i].label >= 0;
  const float normalizer = static_cast<float>(std::max<int64_t>(labelled, 1));
  model.zero_grad();
  double loss = 0;
  for (size_t k = 0; k < micro_batches.size(); ++k) {
    const Batch b = builder.build(examples, micro_batches[k], pad_id, true, pad_to_length);
    loss += model.forward(b, /*training=*/true, step_key * 4096 + k, normalizer);
    model.backward();
  }
  const double norm = clip_grad_norm(model.grads(), model.buffer_floats(), max_grad_norm);
  if (grad_norm) *grad_norm = norm;
  opt.step(model, lr_multiplier);
  return static_cast<float>(loss);
}

namespace {

void say(const std::string& s) {
  std::fprintf(stderr, "%s\n", s.c_str());
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

HeadOptions head_options_from(const TrainingArgs& a, ModelFamily family) {
  HeadOptions h;
  h.features = a.features == "default"
                   ? (family == ModelFamily::ROBERTA ? FeatureKind::CLS : FeatureKind::POOLER)
                   : parse_feature_kind(a.features);
  h.layer = a.feature_layer;
  h.chunk_pooling = parse_chunk_pooling(a.chunk_pooling);
  return h;
}

// The HF Trainer's trainer_state.json (sorted keys, indent 2; FORMATS.md 2e).
nlohmann::json eval_log(const EvalOutput& e, const std::string& prefix, double epoch, int64_t step) {
  nlohmann::json j;
  j["epoch"] = epoch;
  j[prefix + "_loss"] = e.loss;
  j[prefix + "_accuracy"] = e.metrics.accuracy;
  j[prefix + "_error_rate"] = e.metrics.error_rate;
  j[prefix + "_macro_f1"] = e.metrics.macro.f1;
  j[prefix + "_micro_f1"] = e.metrics.micro.f1;
  j[prefix + "_weighted_f1"] = e.metrics.weighted.f1;
  j[prefix + "_runtime"] = e.runtime;
  const double n = static_cast<double>(e.predictions.size());
  j[prefix + "_samples_per_second"] = e.runtime > 0 ? n / e.runtime : 0.0;
  j["step"] = step;
  return j;
}

}  // namespace

FinetuneResult finetune(const TrainingArgs& args) {
  args.validate();
  set_num_threads(args.threads);
  const int threads = num_threads();
  const bool resuming = !args.resume_from_checkpoint.empty();
  if (!resuming && fs::is_directory(args.output_dir) && !fs::is_empty(args.output_dir) &&
      !args.overwrite_output_dir)
    throw ConfigError("output_dir " + args.output_dir +
                      " exists and is not empty: pass --overwrite_output_dir, or --resume_from_checkpoint");
  fs::create_directories(args.output_dir);

  // Data.
  const Tokenizer tok = Tokenizer::from_directory(args.model_name_or_path);
  data::DatasetSpec spec;
  spec.table.format = data::parse_file_format(args.format);
  spec.table.quoting = data::parse_quoting(args.quoting);
  spec.text_columns = args.text_columns;
  spec.text_separator = args.text_separator;
  spec.text_pair_column = args.text_pair_column;
  spec.label_column = args.label_column;
  spec.id_column = args.id_column;
  Dataset train_ds = data::read_dataset(args.train_file, spec);
  const LabelMap labels = LabelMap::from_dataset(train_ds);
  Dataset dev_ds;
  if (!args.validation_file.empty()) {
    dev_ds = data::read_dataset(args.validation_file, spec);
  } else if (args.validation_split > 0) {
    const auto ids = labels.encode(train_ds);
    const auto split = data::stratified_split(ids, labels.size(), args.validation_split, args.seed);
    Dataset t = train_ds, d = train_ds;
    t.examples.clear();
    d.examples.clear();
    for (int64_t i : split.train) t.examples.push_back(train_ds.examples[i]);
    for (int64_t i : split.dev) d.examples.push_back(train_ds.examples[i]);
    train_ds = std::move(t);
    dev_ds = std::move(d);
  }
  if (args.few_shot_per_class > 0 || args.few_shot_fraction > 0) {
    const auto ids = labels.encode(train_ds);
    const auto keep =
        data::few_shot_subset(ids, labels.size(), args.few_shot_per_class, args.few_shot_fraction, args.seed);
    Dataset t = train_ds;
    t.examples.clear();
    for (int64_t i : keep) t.examples.push_back(train_ds.examples[i]);
    train_ds = std::move(t);
  }

  // Model.
  ModelConfig config = read_config_json(args.model_name_or_path + "/config.json");
  config.id2label = labels.id2label();
  if (args.hidden_dropout_prob >= 0)
    config.hidden_dropout_prob = static_cast<float>(args.hidden_dropout_prob);
  if (args.attention_probs_dropout_prob >= 0)
    config.attention_probs_dropout_prob = static_cast<float>(args.attention_probs_dropout_prob);
  if (args.classifier_dropout >= 0) config.classifier_dropout = static_cast<float>(args.classifier_dropout);
  const int64_t max_positions =
      config.max_position_embeddings - (config.family == ModelFamily::ROBERTA ? config.pad_token_id + 1 : 0);
  ClassifierSettings settings;
  settings.head = head_options_from(args, config.family);
  settings.max_seq_length = static_cast<int>(std::min<int64_t>(args.max_seq_length, max_positions));
  if (settings.max_seq_length < args.max_seq_length)
    say("note: max_seq_length " + std::to_string(args.max_seq_length) + " exceeds the model's " +
        std::to_string(max_positions) + " positions; using " + std::to_string(settings.max_seq_length));
  settings.truncation = args.truncation == "head+tail" ? "head_tail" : args.truncation;
  settings.head_length = std::min(args.head_length, settings.max_seq_length - 2);
  settings.max_chunks = settings.head.chunk_pooling == ChunkPooling::NONE ? 0 : args.max_chunks;
  write_classifier_settings(&config, settings);
  LoadedModel loaded = load_pretrained(args.model_name_or_path, HeadKind::SEQUENCE_CLASSIFICATION,
                                       settings.head, &config, args.seed);
  BertModel& model = *loaded.model;
  model.dropout_seed = args.seed;
  model.label_smoothing = static_cast<float>(args.label_smoothing_factor);
  if (!loaded.initialized.empty()) {
    std::string s = "newly initialised (not in the checkpoint), train them before use:";
    for (const auto& n : loaded.initialized) s += " " + n;
    say(s);
  }

  // Tokens.
  EncodeOptions enc;
  enc.max_seq_length = settings.max_seq_length;
  enc.truncation = parse_truncation(settings.truncation);
  enc.head_length = settings.head_length;
  enc.max_chunks = settings.max_chunks;
  const auto train_ex = encode_examples(tok, train_ds, &labels, enc, threads);
  const auto dev_ex = encode_examples(tok, dev_ds, &labels, enc, threads);
  if (train_ex.empty()) throw ConfigError(args.train_file + ": no training examples");
  {
    std::map<int32_t, int64_t> counts;
    for (const auto& e : train_ex) ++counts[e.label];
    say("data: " + std::to_string(train_ex.size()) + " train / " + std::to_string(dev_ex.size()) +
        " validation examples, " + std::to_string(labels.size()) + " classes (smallest class: " +
        std::to_string(std::min_element(counts.begin(), counts.end(),
                                        [](auto& a, auto& b) { return a.second < b.second; })
                           ->second) +
        " examples)");
    say("train " + format_length_stats(length_stats(train_ex, settings.max_seq_length - 2),
                                       settings.max_seq_length - 2));
    say("model: " + std::string(config.family == ModelFamily::BERT ? "BERT" : "RoBERTa") + ", " +
        std::to_string(config.num_hidden_layers) + " layers, hidden " + std::to_string(config.hidden_size) +
        ", " + std::to_string(model.table().num_parameters()) + " parameters; features " +
        feature_kind_name(settings.head.features) + ", " + settings.truncation +
        (settings.max_chunks ? ", chunks <= " + std::to_string(settings.max_chunks) + " pooled by " +
                                   chunk_pooling_name(settings.head.chunk_pooling)
                             : "") +
        "; " + std::to_string(threads) + " threads");
  }
  int64_t longest = 1, max_k = 1;
  for (const auto* set : {&train_ex, &dev_ex})
    for (const auto& e : *set) {
      longest = std::max(longest, e.length());
      max_k = std::max<int64_t>(max_k, static_cast<int64_t>(e.seqs.size()));
    }
  // pad_to_max_length (HF run_glue): every batch, training and evaluation, is padded to max_seq_length.
  const int64_t pad_to_length = args.pad_to_max_length ? settings.max_seq_length : 0;
  model.reserve(std::max(args.per_device_train_batch_size, args.per_device_eval_batch_size) * max_k,
                std::max(longest, pad_to_length));

  // Optimisation.
  OptimizerOptions oo;
  oo.learning_rate = args.learning_rate;
  oo.head_learning_rate = args.head_learning_rate;
  oo.layerwise_lr_decay = args.layerwise_lr_decay;
  oo.weight_decay = args.weight_decay;
  oo.hyper = {static_cast<float>(args.adam_beta1), static_cast<float>(args.adam_beta2),
              static_cast<float>(args.adam_epsilon)};
  Optimizer opt(model, oo);
  const int G = args.gradient_accumulation_steps;
  const int64_t batches_per_epoch =
      (static_cast<int64_t>(train_ex.size()) + args.per_device_train_batch_size - 1) /
      args.per_device_train_batch_size;
  const int64_t steps_per_epoch = (batches_per_epoch + G - 1) / G;
  const int64_t total_steps = args.max_steps > 0
                                  ? args.max_steps
                                  : static_cast<int64_t>(std::ceil(args.num_train_epochs * steps_per_epoch));
  const train::LrSchedule schedule(
      train::parse_schedule_kind(args.lr_scheduler_type), total_steps,
      train::resolve_warmup_steps(args.warmup_steps, args.warmup_ratio, total_steps));

  // State, fresh or resumed.
  TrainerStateInfo info;
  info.eval_steps = args.eval_steps;
  info.logging_steps = args.logging_steps;
  info.max_steps = total_steps;
  info.num_train_epochs = static_cast<int64_t>(std::ceil(args.num_train_epochs));
  info.train_batch_size = args.per_device_train_batch_size;
  info.early_stopping_patience = args.early_stopping_patience;
  TrainerState state;
  if (resuming) {
    const std::string ck = args.resume_from_checkpoint == "latest" ? find_latest_checkpoint(args.output_dir)
                                                                   : args.resume_from_checkpoint;
    if (ck.empty())
      throw ConfigError("--resume_from_checkpoint latest: no checkpoint-* in " + args.output_dir);
    load_weights_into(model, ck);
    opt.load(ck + "/optimizer.safetensors");
    state = TrainerState::from_file(ck + "/trainer_state.json");
    if (opt.steps() != state.global_step)
      throw FormatError(ck + ": optimizer step " + std::to_string(opt.steps()) +
                        " differs from trainer state step " + std::to_string(state.global_step));
    say("resuming from " + ck + " at step " + std::to_string(state.global_step));
  }
  {
    nlohmann::ordered_json j = args.to_json();
    write_file_atomic(args.output_dir + "/training_args.json", j.dump(2) + "\n");
  }

  const int32_t pad_id = tok.pad_id();
  const bool do_eval = args.eval_strategy != "no" && !dev_ex.empty();
  const std::string metric = args.metric_for_best_model;
  const bool greater = args.greater_is_better();
  bool stop = false;
  double last_norm = 0;
  Progress progress("train", total_steps, args.logging_steps);

  auto save_checkpoint = [&](const std::string& dir) {
    save_pretrained(model, dir, &tok);
    opt.save(dir + "/optimizer.safetensors");
    write_file_atomic(dir + "/trainer_state.json", state.to_json(info).dump(2) + "\n");
    write_file_atomic(dir + "/training_args.json", args.to_json().dump(2) + "\n");
  };
  int64_t last_eval_step = -1, samples_seen = 0;
  BatchTokens tokens_seen;  // of the steps this process ran: what padding costs
  auto evaluate_and_save = [&](double epoch) {
    last_eval_step = state.global_step;
    const EvalOutput e =
        run_evaluation(model, dev_ex, args.per_device_eval_batch_size, pad_id, "eval", pad_to_length);
    state.log_history.push_back(eval_log(e, "eval", epoch, state.global_step));
    const double v = metric_value(e, metric);
    const std::string ck = args.output_dir + "/checkpoint-" + std::to_string(state.global_step);
    const bool better = !state.has_best || (greater ? v > state.best_metric : v < state.best_metric);
    if (better) {
      state.has_best = true;
      state.best_metric = v;
      state.best_global_step = state.global_step;
      state.best_model_checkpoint = ck;
      state.patience_counter = 0;
    } else {
      ++state.patience_counter;
    }
    progress.message("eval at step " + std::to_string(state.global_step) + ": loss " + fmt("%.4f", e.loss) +
                     ", accuracy " + fmt("%.4f", e.metrics.accuracy) + ", macro-F1 " +
                     fmt("%.4f", e.metrics.macro.f1) + (better ? " (best)" : ""));
    save_checkpoint(ck);
    rotate_checkpoints(args.output_dir, args.save_total_limit, state.best_model_checkpoint);
    if (args.early_stopping_patience > 0 && state.patience_counter >= args.early_stopping_patience) {
      progress.message("early stopping: no improvement of " + metric + " in " +
                       std::to_string(state.patience_counter) + " evaluations");
      stop = true;
    }
  };

  const int64_t first_epoch = state.global_step / steps_per_epoch;
  for (int64_t epoch = first_epoch; !stop && state.global_step < total_steps; ++epoch) {
    const auto plan = plan_train_batches(train_ex, args.per_device_train_batch_size, args.group_by_length,
                                         args.seed, epoch);
    // Resume mid-epoch: skip the batches of the steps already taken (their order is recomputed, not
    // replayed).
    const int64_t first_step_in_epoch = state.global_step - epoch * steps_per_epoch;
    for (int64_t s = first_step_in_epoch; s < steps_per_epoch && state.global_step < total_steps && !stop;
         ++s) {
      std::vector<std::vector<int64_t>> micro;
      for (int64_t b = s * G; b < std::min<int64_t>((s + 1) * G, static_cast<int64_t>(plan.size())); ++b)
        micro.push_back(plan[b]);
      for (const auto& mb : micro) {
        samples_seen += static_cast<int64_t>(mb.size());
        const BatchTokens t = batch_tokens(train_ex, mb, pad_to_length);
        tokens_seen.real += t.real;
        tokens_seen.computed += t.computed;
      }
      const double mult = schedule.multiplier(state.global_step);
      const float loss =
          accumulate_and_step(model, opt, train_ex, micro, pad_id, args.max_grad_norm, mult,
                              static_cast<uint64_t>(state.global_step), &last_norm, pad_to_length);
      ++state.global_step;
      state.epoch =
          static_cast<double>(epoch) + static_cast<double>(s + 1) / static_cast<double>(steps_per_epoch);
      state.record_step(loss, last_norm, args.learning_rate * mult, args.logging_steps);
      progress.update(state.global_step,
                      " loss " + fmt("%.4f", loss) + " lr " + fmt("%.2e", args.learning_rate * mult));
      if (do_eval && args.eval_strategy == "steps" && state.global_step % args.eval_steps == 0)
        evaluate_and_save(state.epoch);
    }
    if (do_eval && args.eval_strategy == "epoch" && !stop &&
        (state.global_step % steps_per_epoch == 0 || state.global_step == total_steps))
      evaluate_and_save(state.epoch);
  }
  // The last step is always evaluated and saved, as in pre-training: with eval_strategy steps and a run that
  // does not end on a multiple of eval_steps, the final steps would otherwise never compete for the best
  // model.
  if (do_eval && !stop && state.global_step > 0 && last_eval_step != state.global_step)
    evaluate_and_save(state.epoch);
  progress.finish();
  if (tokens_seen.computed > 0)
    say("train tokens: " + std::to_string(tokens_seen.real) + " real, " +
        std::to_string(tokens_seen.computed) + " computed (" +
        fmt("%.1f", 100.0 * static_cast<double>(tokens_seen.computed - tokens_seen.real) /
                        static_cast<double>(tokens_seen.computed)) +
        "% padding; " +
        (pad_to_length > 0 ? "every batch padded to " + std::to_string(pad_to_length)
                           : std::string("batches padded to their longest sequence")) +
        ")");
  state.log_history.push_back(
      {{"epoch", state.epoch},
       {"step", state.global_step},
       {"total_flos", 0},
       {"train_loss", state.mean_train_loss()},
       {"train_runtime", progress.elapsed_seconds()},
       // Examples seen by the steps this process ran (fewer than epochs x data for max_steps or a resume).
       {"train_samples_per_second",
        static_cast<double>(samples_seen) / std::max(progress.elapsed_seconds(), 1e-9)},
       {"train_steps_per_second",
        static_cast<double>(state.global_step) / std::max(progress.elapsed_seconds(), 1e-9)}});

  FinetuneResult result;
  result.output_dir = args.output_dir;
  result.global_step = state.global_step;
  if (state.has_best && args.load_best_model_at_end && fs::is_directory(state.best_model_checkpoint)) {
    load_weights_into(model, state.best_model_checkpoint);
    say("loaded the best model: " + state.best_model_checkpoint + " (" + metric + " " +
        fmt("%.4f", state.best_metric) + ")");
  }
  result.best_checkpoint = state.best_model_checkpoint;
  result.best_metric = state.best_metric;
  save_pretrained(model, args.output_dir, &tok);
  write_file_atomic(args.output_dir + "/trainer_state.json", state.to_json(info).dump(2) + "\n");
  if (!dev_ex.empty()) {
    result.final_eval =
        run_evaluation(model, dev_ex, args.per_device_eval_batch_size, pad_id, "final eval", pad_to_length);
    nlohmann::json j = eval_log(result.final_eval, "eval", state.epoch, state.global_step);
    write_file_atomic(args.output_dir + "/eval_results.json", j.dump(2) + "\n");
    say("validation:\n" + train::classification_report(result.final_eval.metrics, labels.id2label(), 4));
  }
  return result;
}

}  // namespace bertfit
