#include "train/multitask.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "bertfit/error.h"
#include "bertfit/io/config_json.h"
#include "core/atomic_file.h"
#include "core/rng.h"
#include "core/threading.h"
#include "data/split.h"
#include "train/batching.h"
#include "train/hf_model_dir.h"
#include "train/problem_type.h"
#include "train/progress.h"
#include "train/report_json.h"
#include "train/training_loop.h"
#include "train/tricks.h"

namespace bertfit {

// ---- Settings (multitask_args.h) ----

void MultitaskArgs::to_json(nlohmann::ordered_json* out) const {
  nlohmann::ordered_json& j = *out;
  BF_JSON_FIELDS(j, task, task_validation_file, task_label_column, task_text_columns, task_text_pair_column,
                 task_problem_type);
}

namespace {

// NAME=VALUE of one entry of `option`.
std::pair<std::string, std::string> split_entry(const std::string& option, const std::string& entry) {
  const size_t eq = entry.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size())
    throw ConfigError("option --" + option + ": \"" + entry + "\" is not NAME=VALUE");
  return {entry.substr(0, eq), entry.substr(eq + 1)};
}

bool valid_task_name(const std::string& n) {
  if (n.empty() || n == "." || n == ".." || n == "runs" || n.rfind("checkpoint-", 0) == 0) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::vector<std::string> split_plus(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t p; (p = s.find('+', start)) != std::string::npos; start = p + 1)
    out.push_back(s.substr(start, p - start));
  out.push_back(s.substr(start));
  return out;
}

}  // namespace

std::vector<TaskSpec> MultitaskArgs::resolve(const std::string& label_column,
                                             const std::vector<std::string>& text_columns,
                                             const std::string& text_pair_column,
                                             const std::string& problem_type) const {
  std::vector<TaskSpec> tasks;
  std::map<std::string, size_t> index;
  for (const std::string& e : task) {
    auto [name, file] = split_entry("task", e);
    if (!valid_task_name(name))
      throw ConfigError("option --task: task name \"" + name +
                        "\" must be letters, digits, '_', '-' or '.' (it names output_dir/<task> and the "
                        "eval_<task>_... metrics), and not \"runs\" or \"checkpoint-*\"");
    if (index.count(name)) throw ConfigError("option --task: task \"" + name + "\" is given twice");
    index[name] = tasks.size();
    TaskSpec t;
    t.name = name;
    t.train_file = file;
    t.label_column = label_column;
    t.text_columns = text_columns;
    t.text_pair_column = text_pair_column;
    t.problem_type = problem_type;
    tasks.push_back(std::move(t));
  }
  if (tasks.size() < 2)
    throw ConfigError(
        "option --task: multi-task fine-tuning needs at least two tasks (one task: --train_file)");
  auto per_task = [&](const std::string& option, const std::vector<std::string>& entries, auto set) {
    std::set<std::string> seen;
    for (const std::string& e : entries) {
      const auto [name, value] = split_entry(option, e);
      const auto it = index.find(name);
      if (it == index.end())
        throw ConfigError("option --" + option + ": \"" + name + "\" is not a task given with --task");
      if (!seen.insert(name).second)
        throw ConfigError("option --" + option + ": task \"" + name + "\" is given twice");
      set(tasks[it->second], value);
    }
  };
  per_task("task_validation_file", task_validation_file,
           [](TaskSpec& t, const std::string& v) { t.validation_file = v; });
  per_task("task_label_column", task_label_column,
           [](TaskSpec& t, const std::string& v) { t.label_column = v; });
  per_task("task_text_columns", task_text_columns, [](TaskSpec& t, const std::string& v) {
    t.text_columns = split_plus(v);
    for (const auto& c : t.text_columns)
      if (c.empty()) throw ConfigError("option --task_text_columns: \"" + v + "\" has an empty column name");
  });
  per_task("task_text_pair_column", task_text_pair_column,
           [](TaskSpec& t, const std::string& v) { t.text_pair_column = v; });
  per_task("task_problem_type", task_problem_type,
           [](TaskSpec& t, const std::string& v) { t.problem_type = v; });
  for (const TaskSpec& t : tasks) {
    try {
      parse_problem_type(t.problem_type);
    } catch (const ConfigError&) {
      throw ConfigError("option --task_problem_type: task \"" + t.name + "\": \"" + t.problem_type +
                        "\" is not one of single_label_classification, multi_label_classification, "
                        "regression (default: --problem_type)");
    }
  }
  return tasks;
}

void validate_multitask(const FinetuneArgs& a) {
  const MultitaskArgs& m = a.multitask;
  if (!m.enabled()) {
    for (const auto* list : {&m.task_validation_file, &m.task_label_column, &m.task_text_columns,
                             &m.task_text_pair_column, &m.task_problem_type})
      if (!list->empty()) throw ConfigError("option --task_...: per-task settings need the tasks (--task)");
    return;
  }
  // Throws on a malformed entry.
  const std::vector<TaskSpec> tasks =
      m.resolve(a.label_column, a.text_columns, a.text_pair_column, a.problem_type);
  auto refuse = [](bool bad, const std::string& option, const std::string& why) {
    if (bad) throw ConfigError("option --" + option + " is not for multi-task fine-tuning (--task): " + why);
  };
  refuse(!a.train_file.empty(), "train_file", "each task names its own (--task NAME=TRAIN_FILE)");
  refuse(!a.validation_file.empty(), "validation_file",
         "give each task's with --task_validation_file NAME=FILE");
  refuse(a.do_predict, "do_predict",
         "label a test file with one task's directory: bertfit predict --model output_dir/<task>");
  refuse(!a.runs_training(), "do_eval",
         "without --do_train, evaluate one task's directory: bertfit evaluate --model output_dir/<task>");
  refuse(a.max_train_samples > 0 || a.max_eval_samples > 0, "max_train_samples",
         "subsets are single-task fine-tuning's");
  refuse(a.few_shot_per_class > 0 || a.few_shot_fraction > 0, "few_shot_per_class",
         "subsets are single-task fine-tuning's");
  // The single-label losses act on every head (the model's loss settings): refused when a task's head is
  // multi-label or regression. Class weights are per task: the single-label tasks get theirs.
  using M = ClassificationMetric;
  std::set<std::string> reported;  // the metric names some task reports (their means pick the best model)
  for (const TaskSpec& t : tasks) {
    const ProblemType p = parse_problem_type(t.problem_type);
    const std::string why = "is single-label classification's, and task " + t.name + " is " + t.problem_type +
                            " (it acts on every head)";
    if (p != ProblemType::SINGLE_LABEL) {
      if (a.tricks.focal_gamma != 0) throw ConfigError("option --focal_gamma " + why);
      if (a.tricks.rdrop_alpha != 0) throw ConfigError("option --rdrop_alpha " + why);
      if (a.label_smoothing_factor != 0) throw ConfigError("option --label_smoothing_factor " + why);
    }
    const std::vector<M> of_type =
        p == ProblemType::REGRESSION ? std::vector<M>{M::LOSS, M::MSE, M::PEARSON, M::SPEARMAN}
        : p == ProblemType::MULTI_LABEL
            ? std::vector<M>{M::LOSS, M::ACCURACY, M::EXACT_MATCH, M::MICRO_F1, M::MACRO_F1}
            : std::vector<M>{M::LOSS, M::ACCURACY, M::MACRO_F1, M::MICRO_F1, M::WEIGHTED_F1};
    for (M x : of_type) reported.insert(choice_name(x, classification_metric_names()));
  }
  const std::string metric = choice_name(a.best_metric(), classification_metric_names());
  if (!reported.count(metric)) {
    std::string names;
    for (const auto& n : reported) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("option --metric_for_best_model: no task reports " + metric +
                      " (its mean over the tasks that report it picks the best model): one of " + names);
  }
}

// ---- The sampler ----

std::vector<std::vector<int64_t>> plan_multitask_batches(const std::vector<EncodedExample>& examples,
                                                         const std::vector<int64_t>& task_begin,
                                                         int batch_size, bool group_by_length, uint64_t seed,
                                                         int64_t epoch, std::vector<int64_t>* batch_task) {
  const size_t T = task_begin.size() - 1;
  std::vector<std::vector<std::vector<int64_t>>> per_task(T);
  std::vector<int64_t> order;  // the task of each batch, then shuffled
  for (size_t t = 0; t < T; ++t) {
    // Each task's own order: its seed differs from the others' (and from a single-task run's).
    const uint64_t task_seed = splitmix64(seed ^ (0x3A5C000000000000ull + t));
    per_task[t] = plan_train_batches(examples, task_begin[t], task_begin[t + 1], batch_size, group_by_length,
                                     task_seed, epoch);
    order.insert(order.end(), per_task[t].size(), static_cast<int64_t>(t));
  }
  // A uniform shuffle of the tasks' batches: at every point of the epoch the next batch comes from task t
  // with probability (its batches left) / (all batches left), sizes-proportional sampling without
  // replacement.
  Rng rng(splitmix64(seed) ^ splitmix64(0x7A5C0000ull + static_cast<uint64_t>(epoch)));
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i)
    std::swap(order[i], order[rng.below(static_cast<uint64_t>(i + 1))]);
  std::vector<std::vector<int64_t>> batches;
  batches.reserve(order.size());
  std::vector<size_t> next(T, 0);
  for (int64_t t : order) batches.push_back(std::move(per_task[t][next[t]++]));
  if (batch_task) *batch_task = std::move(order);
  return batches;
}

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// The metrics a task reports for its problem type, under their single-task names (finetune.cpp's).
std::vector<std::pair<std::string, double>> task_metric_values(const EvalOutput& e) {
  if (e.problem == ProblemType::MULTI_LABEL)
    return {{"loss", e.loss},
            {"accuracy", e.multi_label.exact_match},
            {"exact_match", e.multi_label.exact_match},
            {"micro_f1", e.multi_label.micro_f1},
            {"macro_f1", e.multi_label.macro_f1}};
  if (e.problem == ProblemType::REGRESSION)
    return {{"loss", e.loss},
            {"mse", e.regression.mse},
            {"pearson", e.regression.pearson},
            {"spearman", e.regression.spearman}};
  return {{"loss", e.loss},
          {"accuracy", e.metrics.accuracy},
          {"error_rate", e.metrics.error_rate},
          {"macro_f1", e.metrics.macro.f1},
          {"micro_f1", e.metrics.micro.f1},
          {"weighted_f1", e.metrics.weighted.f1}};
}

// A task's evaluation for the log, by its problem type.
std::string describe_task(const std::string& name, ProblemType p, const EvalMetrics& e) {
  auto v = [&](const char* m) { return fmt("%.4f", e.value(name + "_" + m)); };
  if (p == ProblemType::MULTI_LABEL)
    return name + " micro-F1 " + v("micro_f1") + ", exact match " + v("exact_match");
  if (p == ProblemType::REGRESSION) return name + " pearson " + v("pearson") + ", mse " + v("mse");
  return name + " accuracy " + v("accuracy") + ", macro-F1 " + v("macro_f1");
}

// The training loop's task: the tasks' examples in consecutive ranges of one vector.
class MultitaskTask : public TrainingTask {
 public:
  struct Task {
    std::string name;
    ProblemType problem = ProblemType::SINGLE_LABEL;  // its head's (BertModel::select_head sets it)
    std::vector<std::string> labels;
    std::vector<EncodedExample> dev;
    std::vector<float> class_weights;  // [labels] or empty (always for multi-label and regression)
    std::string dir;                   // output_dir/<name>
    nlohmann::ordered_json args;       // its training_args.json (task_training_args)
  };

  MultitaskTask(std::vector<Task> tasks, std::vector<EncodedExample> train, std::vector<int64_t> task_begin,
                int32_t pad_id, int64_t pad_to_length, int eval_batch_size, ClassificationMetric metric,
                bool rdrop, double multi_label_threshold, BertModel& model, const Tokenizer& tokenizer)
      : tasks_(std::move(tasks)),
        train_(std::move(train)),
        begin_(std::move(task_begin)),
        pad_id_(pad_id),
        pad_to_length_(pad_to_length),
        eval_batch_size_(eval_batch_size),
        metric_(metric),
        rdrop_(rdrop),
        threshold_(multi_label_threshold),
        model_(model),
        tokenizer_(tokenizer) {}

  const std::vector<EncodedExample>& train_examples() const override { return train_; }
  std::vector<std::vector<int64_t>> plan_epoch(int batch_size, bool group_by_length, uint64_t seed,
                                               int64_t epoch) const override {
    return plan_multitask_batches(train_, begin_, batch_size, group_by_length, seed, epoch);
  }
  int64_t batches_per_epoch(int batch_size) const override {
    int64_t n = 0;
    for (size_t t = 0; t + 1 < begin_.size(); ++t)
      n += (begin_[t + 1] - begin_[t] + batch_size - 1) / batch_size;
    return n;
  }
  size_t task_of(int64_t example) const {
    return static_cast<size_t>(std::upper_bound(begin_.begin(), begin_.end(), example) - begin_.begin() - 1);
  }

  float begin_step(const std::vector<std::vector<int64_t>>& micro_batches, int64_t /*epoch*/) override {
    micro_ = &micro_batches;
    double labelled = 0;  // the step's documents (class weights: their sum, each by its task's weights)
    for (const auto& mb : micro_batches) {
      for (int64_t i : mb) {
        const auto& w = tasks_[task_of(i)].class_weights;
        if (train_[i].label >= 0) labelled += w.empty() ? 1.0 : w[train_[i].label];
      }
      const BatchTokens t = batch_tokens(train_, mb, pad_to_length_);
      tokens_.real += t.real;
      tokens_.computed += t.computed;
    }
    return labelled > 0 ? static_cast<float>(labelled) : 1.0f;
  }
  bool micro_batch(BertModel& model, size_t k, Batch* batch) override {
    const std::vector<int64_t>* idx = &(*micro_)[k];
    if (idx->empty()) return false;
    const size_t t = task_of(idx->front());  // a batch holds one task's documents (plan_multitask_batches)
    model.select_head(static_cast<int64_t>(t));
    model.class_weights = tasks_[t].class_weights;
    if (rdrop_) {  // documents d and d + D: the two passes of classification_loss.h
      twice_.assign(idx->begin(), idx->end());
      twice_.insert(twice_.end(), idx->begin(), idx->end());
      idx = &twice_;
    }
    *batch = builder_.build(train_, *idx, pad_id_, true, pad_to_length_);
    return true;
  }

  bool has_eval_data() const override {
    return std::any_of(tasks_.begin(), tasks_.end(), [](const Task& t) { return !t.dev.empty(); });
  }
  EvalMetrics evaluate(BertModel& model, const std::string& what) override {
    EvalMetrics m;
    last_.clear();
    // Each metric name's sum and count over the tasks that report it (a task's problem type decides its
    // metrics: a regression task has no accuracy, a single-label one no pearson).
    std::vector<std::pair<std::string, std::pair<double, int64_t>>> mean;
    for (size_t t = 0; t < tasks_.size(); ++t) {
      if (tasks_[t].dev.empty()) continue;
      model.select_head(static_cast<int64_t>(t));
      const EvalOutput e = run_evaluation(model, tasks_[t].dev, eval_batch_size_, pad_id_,
                                          what + " " + tasks_[t].name, pad_to_length_, threshold_);
      for (const auto& [name, v] : task_metric_values(e)) {
        auto it = std::find_if(mean.begin(), mean.end(), [&](const auto& x) { return x.first == name; });
        if (it == mean.end()) it = mean.insert(mean.end(), {name, {0.0, 0}});
        it->second.first += v;
        ++it->second.second;
        m.values.emplace_back(tasks_[t].name + "_" + name, v);
      }
      if (e.problem == ProblemType::SINGLE_LABEL) {
        const nlohmann::ordered_json details = classification_details_json(e.metrics, tasks_[t].labels);
        for (const auto& [key, value] : details.items()) m.details[tasks_[t].name + "_" + key] = value;
      } else if (e.problem == ProblemType::MULTI_LABEL) {  // each label's F1, as evaluate reports it
        nlohmann::ordered_json per;
        for (size_t l = 0; l < tasks_[t].labels.size() && l < e.multi_label.f1.size(); ++l)
          per[tasks_[t].labels[l]] = {{"f1", e.multi_label.f1[l]}};
        m.details[tasks_[t].name + "_per_label"] = per;
      }
      m.runtime += e.runtime;
      m.samples += static_cast<int64_t>(e.predictions.size());
      last_.push_back({tasks_[t].name, e});
    }
    model.select_head(0);
    // The unweighted means over the tasks first: the names --metric_for_best_model picks from.
    std::vector<std::pair<std::string, double>> means;
    for (const auto& [n, sum] : mean) means.emplace_back(n, sum.first / static_cast<double>(sum.second));
    m.values.insert(m.values.begin(), means.begin(), means.end());
    return m;
  }
  BestModelMetric best_metric() const override {  // loss and mse: lower is better
    return {choice_name(metric_, classification_metric_names()),
            metric_ != ClassificationMetric::LOSS && metric_ != ClassificationMetric::MSE};
  }
  std::string describe(const EvalMetrics& e) const override {
    std::string s;
    for (const TaskEval& t : last_) {
      const auto it =
          std::find_if(tasks_.begin(), tasks_.end(), [&](const Task& x) { return x.name == t.name; });
      s += describe_task(t.name, it->problem, e) + "; ";
    }
    s += "mean: loss " + fmt("%.4f", e.value("loss"));
    const std::string best = choice_name(metric_, classification_metric_names());
    if (best != "loss") s += ", " + best + " " + fmt("%.4f", e.value(best));
    return s;
  }
  std::string training_summary() const override {
    if (tokens_.computed == 0) return "";
    return "train tokens: " + std::to_string(tokens_.real) + " real, " + std::to_string(tokens_.computed) +
           " computed (" +
           fmt("%.1f", 100.0 * static_cast<double>(tokens_.computed - tokens_.real) /
                           static_cast<double>(tokens_.computed)) +
           "% padding)";
  }
  // output_dir (not a checkpoint: its model.safetensors already holds every head) gets a plain HF
  // classifier directory per task.
  void save_state(const std::string& dir, bool checkpoint) override {
    if (checkpoint) return;
    for (size_t t = 0; t < tasks_.size(); ++t) {
      const std::string task_dir = dir + "/" + tasks_[t].name;
      save_pretrained_head(model_, static_cast<int64_t>(t), task_dir, &tokenizer_);
      write_file_atomic(task_dir + "/training_args.json", tasks_[t].args.dump(2) + "\n");
    }
  }
  const std::vector<TaskEval>& last_evals() const { return last_; }

 private:
  std::vector<Task> tasks_;
  std::vector<EncodedExample> train_;
  std::vector<int64_t> begin_;
  int32_t pad_id_;
  int64_t pad_to_length_;
  int eval_batch_size_;
  ClassificationMetric metric_;
  bool rdrop_;
  double threshold_;
  BertModel& model_;
  const Tokenizer& tokenizer_;
  const std::vector<std::vector<int64_t>>* micro_ = nullptr;
  BatchBuilder builder_;
  BatchTokens tokens_;
  std::vector<int64_t> twice_;
  std::vector<TaskEval> last_;
};

// A task directory's training_args.json: the run's settings as the single-task run of that task (its files
// and columns, no --task lists), so that evaluate / predict read the task's columns from it, as they do from
// a single-task run's, and `finetune --config DIR/training_args.json --model DIR` fine-tunes the task further
// on its own (the paper's MFiT-FiT).
nlohmann::ordered_json task_training_args(nlohmann::ordered_json j, const TaskSpec& t,
                                          const std::string& dir) {
  j["output_dir"] = dir;
  j["train_file"] = t.train_file;
  j["validation_file"] = t.validation_file;
  j["label_column"] = t.label_column;
  j["text_columns"] = t.text_columns;
  j["text_pair_column"] = t.text_pair_column;
  j["problem_type"] = t.problem_type;
  for (const char* key : {"task", "task_validation_file", "task_label_column", "task_text_columns",
                          "task_text_pair_column", "task_problem_type"})
    j[key] = nlohmann::ordered_json::array();
  return j;
}

// Single-task fine-tuning's reading (format, quoting, separator, id column) with the task's own columns.
data::DatasetSpec task_dataset_spec(const FinetuneArgs& a, const TaskSpec& t) {
  data::DatasetSpec spec = finetune_dataset_spec(a);
  spec.text_columns = t.text_columns;
  spec.text_pair_column = t.text_pair_column;
  spec.label_column = t.label_column;
  return spec;
}

}  // namespace

MultitaskResult finetune_multitask(const FinetuneArgs& args, const LoopHooks& hooks) {
  args.validate();
  set_num_threads(args.threads);
  const int threads = num_threads();
  const std::string resume = prepare_output_dir(args);
  const std::vector<TaskSpec> specs =
      args.multitask.resolve(args.label_column, args.text_columns, args.text_pair_column, args.problem_type);

  // Data: each task's own file, labels and validation data (its file, or a share of its train: stratified by
  // class for single-label tasks, a seeded random one otherwise, as single-task fine-tuning splits).
  const Tokenizer tok = Tokenizer::from_directory(args.model_name_or_path);
  std::vector<Dataset> train_ds(specs.size()), dev_ds(specs.size());
  std::vector<LabelMap> labels(specs.size());
  std::vector<ProblemType> problems(specs.size());
  for (size_t t = 0; t < specs.size(); ++t) {
    const data::DatasetSpec spec = task_dataset_spec(args, specs[t]);
    train_ds[t] = read_data_file(specs[t].train_file, spec);
    problems[t] = parse_problem_type(specs[t].problem_type);
    const bool single = problems[t] == ProblemType::SINGLE_LABEL;
    labels[t] = problems[t] == ProblemType::MULTI_LABEL  ? multi_label_map(train_ds[t])
                : problems[t] == ProblemType::REGRESSION ? LabelMap::from_id2label({"LABEL_0"})
                                                         : LabelMap::from_dataset(train_ds[t]);
    if (!specs[t].validation_file.empty()) {
      dev_ds[t] = read_data_file(specs[t].validation_file, spec);
    } else if (args.validation_split > 0) {
      const auto ids =
          single ? labels[t].encode(train_ds[t]) : std::vector<int64_t>(train_ds[t].examples.size(), 0);
      const auto split =
          data::stratified_split(ids, single ? labels[t].size() : 1, args.validation_split, args.seed);
      Dataset tr = train_ds[t], dv = train_ds[t];
      tr.examples.clear();
      dv.examples.clear();
      for (int64_t i : split.train) tr.examples.push_back(train_ds[t].examples[i]);
      for (int64_t i : split.dev) dv.examples.push_back(train_ds[t].examples[i]);
      train_ds[t] = std::move(tr);
      dev_ds[t] = std::move(dv);
    }
  }

  // Model: the first task's head is the model's own, the others extra heads (BertModel::select_head), each
  // with its task's problem type (its loss); the encoding settings are single-task fine-tuning's, shared by
  // every task.
  std::vector<ExtraHead> extra_heads;
  for (size_t t = 1; t < specs.size(); ++t)
    extra_heads.push_back({"multitask." + specs[t].name + ".", labels[t].id2label(), problems[t]});
  FinetuneModel fm = load_finetune_model(args, tok, labels[0], problems[0], extra_heads, !resume.empty());
  const ClassifierSettings& settings = fm.settings;
  BertModel& model = *fm.loaded.model;
  const EncodeOptions& enc = fm.encode;

  // Tokens: the tasks' examples in consecutive ranges of one vector.
  std::vector<MultitaskTask::Task> tasks(specs.size());
  std::vector<EncodedExample> train;
  std::vector<int64_t> begin{0};
  int64_t longest = 1, max_k = 1;
  auto measure = [&](const std::vector<EncodedExample>& v) {
    for (const auto& e : v) {
      longest = std::max(longest, e.length());
      max_k = std::max<int64_t>(max_k, static_cast<int64_t>(e.seqs.size()));
    }
  };
  for (size_t t = 0; t < specs.size(); ++t) {
    const bool single = problems[t] == ProblemType::SINGLE_LABEL;
    auto ex = encode_examples(tok, train_ds[t], single ? &labels[t] : nullptr, enc, threads);
    if (!single) set_problem_targets(train_ds[t], problems[t], &labels[t], &ex);
    if (ex.empty())
      throw ConfigError(specs[t].train_file + ": no training examples (task " + specs[t].name + ")");
    std::vector<int64_t> counts(static_cast<size_t>(labels[t].size()), 0);
    for (const auto& e : ex)
      if (e.label >= 0) ++counts[static_cast<size_t>(e.label)];
    MultitaskTask::Task& task = tasks[t];
    task.name = specs[t].name;
    task.problem = problems[t];
    task.labels = labels[t].id2label();
    // Class weights are single-label's: a multi-label or regression head trains unweighted.
    if (single) task.class_weights = resolve_class_weights(args.tricks.class_weights, counts, task.labels);
    task.dev = encode_examples(tok, dev_ds[t], single ? &labels[t] : nullptr, enc, threads);
    if (!single) set_problem_targets(dev_ds[t], problems[t], &labels[t], &task.dev);
    task.dir = args.output_dir + "/" + task.name;
    task.args = task_training_args(args.to_json(), specs[t], task.dir);
    measure(ex);
    measure(task.dev);
    log_message("task " + task.name + ": " + std::to_string(ex.size()) + " train / " +
                std::to_string(task.dev.size()) + " validation examples, " +
                (problems[t] == ProblemType::REGRESSION ? std::string("regression")
                 : problems[t] == ProblemType::MULTI_LABEL
                     ? std::to_string(labels[t].size()) + " labels (multi-label)"
                     : std::to_string(labels[t].size()) + " classes") +
                " (" + specs[t].train_file + ", label column " + specs[t].label_column + ")");
    train.insert(train.end(), std::make_move_iterator(ex.begin()), std::make_move_iterator(ex.end()));
    begin.push_back(static_cast<int64_t>(train.size()));
  }
  apply_loss_tricks(args.tricks, {}, &model);  // class weights: per task, set with each micro-batch's head
  if (const std::string t = describe_tricks(args.tricks); !t.empty()) log_message(t);
  const int64_t pad_to_length = args.pad_to_max_length ? settings.max_seq_length : 0;
  model.reserve(std::max(args.per_device_train_batch_size * args.tricks.rows_per_document(),
                         static_cast<int64_t>(args.per_device_eval_batch_size)) *
                    max_k,
                std::max(longest, pad_to_length));

  // The loop, with single-task fine-tuning's optimizer settings.
  const OptimizerOptions oo = finetune_optimizer_options(args);
  std::vector<std::string> names, dirs;
  std::vector<std::vector<std::string>> label_names;
  for (const auto& t : tasks) {
    names.push_back(t.name);
    dirs.push_back(t.dir);
    label_names.push_back(t.labels);
  }
  MultitaskTask task(std::move(tasks), std::move(train), begin, tok.pad_id(), pad_to_length,
                     args.per_device_eval_batch_size, args.best_metric(), args.tricks.rdrop_alpha > 0,
                     args.multi_label_threshold, model, tok);
  LoopHooks all_hooks = hooks;
  for (auto& h : make_trick_hooks(args.tricks)) all_hooks.step_hooks.push_back(std::move(h));
  TrainingLoop loop(args, args.to_json(), task, model, tok, oo, resume, all_hooks);
  const LoopResult r = loop.run();

  MultitaskResult result;
  result.run.output_dir = args.output_dir;
  result.run.global_step = r.global_step;
  result.run.best_checkpoint = r.best_checkpoint;
  result.run.best_metric = r.best_metric;
  result.run.train_loss = r.train_loss;
  result.task_dirs = dirs;
  if (r.final_eval) {
    result.tasks = task.last_evals();
    for (const TaskEval& e : result.tasks) {
      const size_t t = static_cast<size_t>(std::find(names.begin(), names.end(), e.name) - names.begin());
      if (e.eval.problem == ProblemType::SINGLE_LABEL)
        log_message("validation " + e.name + ":\n" +
                    classification_report(e.eval.metrics, label_names[t], 4));
      else if (e.eval.problem == ProblemType::MULTI_LABEL)
        log_message("validation " + e.name + ": exact match " + fmt("%.4f", e.eval.multi_label.exact_match) +
                    ", micro-F1 " + fmt("%.4f", e.eval.multi_label.micro_f1) + ", macro-F1 " +
                    fmt("%.4f", e.eval.multi_label.macro_f1) + ", loss " + fmt("%.4f", e.eval.loss));
      else
        log_message("validation " + e.name + ": mse " + fmt("%.4f", e.eval.regression.mse) + ", pearson " +
                    fmt("%.4f", e.eval.regression.pearson) + ", spearman " +
                    fmt("%.4f", e.eval.regression.spearman) + ", loss " + fmt("%.4f", e.eval.loss));
    }
  }
  for (size_t t = 0; t < names.size(); ++t) log_message("task " + names[t] + ": " + dirs[t]);
  return result;
}

}  // namespace bertfit
