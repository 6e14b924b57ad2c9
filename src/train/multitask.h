// Multi-task fine-tuning, the paper's third experiment (Sun et al. 2019, section 5.3, "BERT-MFiT"): one
// shared encoder (embeddings, layers and BERT's pooler), a private classification head per task, each
// optimizer step's micro-batches drawn from the tasks in proportion to their sizes, metrics per task. Each
// task has its own HF problem_type (--task_problem_type NAME=TYPE, default --problem_type): a single-label
// head (softmax, cross-entropy), a multi-label one (sigmoid per label, BCE) or a regression one (one output,
// MSE), its loss chosen by the head a micro-batch trains (ExtraHead::problem_type). The
// paper then fine-tunes each task again at a lower rate ("-FiT"): each task's output directory is a plain
// fine-tuned classifier to start that run from.
//
// `bertfit finetune --task NAME=TRAIN_FILE ...` (multitask_args.h) runs it as a TrainingTask over the one
// TrainingLoop, so checkpoints, resume, schedules, layer-wise rates, accumulation, logging and the
// competition tricks work as in single-task fine-tuning:
//  - the model holds every head in its one parameter buffer (HeadOptions::extra_heads; BertModel::select_head
//    switches the head a micro-batch trains), so the optimizer, EMA, checkpoints and resume cover all heads;
//  - each batch holds one task's documents (plan_multitask_batches); a step's micro-batches may come from
//    different tasks, each through its own head, the loss normalised by all of the step's documents;
//  - evaluation runs every task's validation data through its head: the metrics of its problem type
//    (eval_<task>_accuracy, ..._macro_f1; _exact_match, _micro_f1; _mse, _pearson, _spearman; and _loss)
//    and each metric's unweighted mean over the tasks that report it (eval_accuracy: the single-label
//    tasks' accuracy and the multi-label tasks' exact match; eval_pearson: the regression tasks'; eval_loss:
//    every task's), which --metric_for_best_model picks from;
//  - output_dir holds the multi-task model (every head; config.json names the first task's labels, so it
//    also serves the first task) and output_dir/<task>/, per task, a plain HF sequence-classification
//    directory (the shared encoder and that task's head, its labels, config.json's problem_type and
//    num_labels its task's): `bertfit evaluate / predict` and HF's AutoModelForSequenceClassification load
//    each unchanged, with the task's loss.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "train/encoded_data.h"
#include "train/finetune.h"
#include "train/multitask_args.h"

namespace bertfit {

// The batches of one epoch over tasks whose examples are the consecutive ranges [task_begin[t],
// task_begin[t+1]) of `examples`: each task's range planned on its own (plan_train_batches, seeded per task
// and epoch), then all the tasks' batches in one seeded shuffle. Every example is in exactly one batch per
// epoch, every batch holds one task's examples, and task t has ceil(n_t / batch_size) of them: batches come
// from the tasks in proportion to their sizes at every point of the epoch in expectation (MT-DNN's
// sampling). A pure function of (seed, epoch), so resume recomputes it. batch_task, when given, receives the
// task of each batch.
std::vector<std::vector<int64_t>> plan_multitask_batches(const std::vector<EncodedExample>& examples,
                                                         const std::vector<int64_t>& task_begin,
                                                         int batch_size, bool group_by_length, uint64_t seed,
                                                         int64_t epoch,
                                                         std::vector<int64_t>* batch_task = nullptr);

// Checks the multi-task settings against the run's others (called by FinetuneArgs::validate when --task is
// given): ConfigError naming the option for what a multi-task run does not take (--train_file,
// --validation_file, --do_predict, subsets; focal loss, R-Drop and label smoothing when a task is not
// single-label classification; a --metric_for_best_model no task reports).
void validate_multitask(const FinetuneArgs& args);

struct TaskEval {
  std::string name;
  EvalOutput eval;  // on the task's validation data, with the final model
};

struct MultitaskResult {
  FinetuneResult run;                  // final_eval stays empty: see tasks
  std::vector<TaskEval> tasks;         // in --task order
  std::vector<std::string> task_dirs;  // output_dir/<task>
};

// The whole multi-task run (finetune() calls it when --task is given). Throws bertfit::Error subclasses
// naming the file / option on bad input.
MultitaskResult finetune_multitask(const FinetuneArgs& args, const LoopHooks& hooks = {});

}  // namespace bertfit
