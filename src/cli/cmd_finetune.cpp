// `bertfit finetune`: fine-tune a BERT / RoBERTa directory for text classification (the paper's strategies as
// options named after HuggingFace's TrainingArguments; both `--learning_rate` and `--learning-rate` work).
// The options every training run shares are declared in cli/training_options.cpp; these are fine-tuning's
// own.
#include <cstdio>
#include <filesystem>
#include <string>

#include "bertfit/io/config_json.h"
#include "bertfit/io/inspect.h"
#include "cli/commands.h"
#include "cli/multitask_options.h"
#include "cli/training_options.h"
#include "train/finetune.h"

namespace bertfit::cli {

void add_finetune_options(CLI::App* cmd, FinetuneArgs* a) {
  add_training_options(cmd, a);
  cmd->get_option("--model_name_or_path")->required();
  auto* g = "Data";
  cmd->add_option(option_names("train_file"), a->train_file,
                  "Training data: .tsv, .csv or .jsonl (required to train)")
      ->group(g);
  cmd->add_flag(option_names("do_predict"), a->do_predict,
                "Label --test_file with the final model (alone: with --model_name_or_path, a fine-tuned "
                "classifier): output_dir/predict_results.txt (and submission.csv with --id_column)")
      ->group(g);
  cmd->add_option(option_names("test_file"), a->test_file,
                  "--do_predict: the file to label (labels not needed)")
      ->group(g);
  cmd->add_option(option_names("max_predict_samples"), a->max_predict_samples,
                  "--do_predict: label only the first this many test rows, as HF (0: all)")
      ->group(g);
  cmd->add_option(option_names("text_pair_column"), a->text_pair_column, "Second text of a sentence pair")
      ->group(g);
  cmd->add_option(option_names("label_column"), a->label_column, "Label column")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("problem_type"), a->problem_type,
                  "HF's problem_type: single_label_classification | multi_label_classification (labels as "
                  "lists: [\"a\", \"b\"] or a,b; sigmoid + BCE) | regression (a number; MSE)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("multi_label_threshold"), a->multi_label_threshold,
                  "multi_label_classification: a label is predicted above this probability")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("id_column"), a->id_column, "Id column")->group(g);
  cmd->add_option(option_names("validation_split"), a->validation_split,
                  "Share of train held out (stratified, seeded) when no validation file is given")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("few_shot_per_class"), a->few_shot_per_class, "Train on k examples per class")
      ->group(g);
  cmd->add_option(option_names("few_shot_fraction"), a->few_shot_fraction,
                  "Train on this share of every class")
      ->group(g);
  g = "Long texts";
  cmd->add_option(option_names("pad_to_max_length"), a->pad_to_max_length,
                  "Pad every batch to max_seq_length instead of its longest sequence (HF run_glue's option): "
                  "the same model function up to float rounding (dropout draws other masks), slower")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("truncation"), a->truncation, "head | tail | head_tail")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("head_length"), a->head_length,
                  "head_tail: text tokens kept from the head (-1: a quarter of them, the paper's 128 at "
                  "length 512)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(
         option_names("chunk_pooling"), a->chunk_pooling,
         "Hierarchical: split into chunks of max_seq_length, pool their [CLS] by mean | max | attention")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("max_chunks"), a->max_chunks, "Chunks per document at most")
      ->capture_default_str()
      ->group(g);
  g = "Classifier features";
  cmd->add_option(
         option_names("features"), a->features,
         "default | pooler | cls | layer | last4-concat | last4-mean | last4-max | all-concat | mean-tokens")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("feature_layer"), a->feature_layer,
                  "--features layer: which hidden state's [CLS]: 0 = the embeddings, 1..L the layers, "
                  "negative from the top as hidden_states[i] (-1: the last)")
      ->group(g);
  g = "Optimisation";
  cmd->add_option(
         option_names("head_learning_rate"), a->head_learning_rate,
         "Learning rate of the task head (default: --learning_rate; e.g. 1e-4 above a low encoder rate)")
      ->group(g);
  cmd->add_option(
         option_names("layerwise_lr_decay"), a->layerwise_lr_decay,
         "xi: each layer below gets xi times the rate of the one above, down to the embeddings (paper: 0.95)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("classifier_dropout"), a->classifier_dropout)->group(g);
  cmd->add_option(option_names("label_smoothing_factor"), a->label_smoothing_factor)
      ->capture_default_str()
      ->group(g);
  g = "Competition tricks";
  TrickArgs* t = &a->tricks;
  cmd->add_option(option_names("class_weights"), t->class_weights,
                  "Class-weighted cross-entropy: auto (n / (K * count)) or one weight per label in "
                  "config.json's label order, comma-separated")
      ->group(g);
  cmd->add_option(option_names("focal_gamma"), t->focal_gamma,
                  "Focal loss -(1 - p)^gamma log p (with --class_weights as its alpha); 0: off")
      ->group(g);
  cmd->add_option(option_names("rdrop_alpha"), t->rdrop_alpha,
                  "R-Drop: two dropout passes per document, their mean loss + alpha x symmetric KL; 0: off")
      ->group(g);
  cmd->add_option(option_names("multi_sample_dropout"), t->multi_sample_dropout,
                  "Head dropout samples (rate: --classifier_dropout), their losses averaged; 1: off")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("adversarial"), t->adversarial,
                  "Adversarial training on the word embeddings: none | fgm | pgd")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("adv_epsilon"), t->adv_epsilon,
                  "FGM: the perturbation's norm; PGD: the ball's radius")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("adv_alpha"), t->adv_alpha, "PGD: the norm of one ascent step")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("adv_steps"), t->adv_steps, "PGD: ascent steps K")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("ema_decay"), t->ema_decay,
                  "Evaluate and save the weights' moving average with this decay (warm-up min(decay, "
                  "(1+n)/(10+n))); 0: off")
      ->group(g);
  cmd->add_option(option_names("k_folds"), t->k_folds,
                  "Stratified k-fold cross-validation (>= 2): a model per fold in output_dir/fold-<k>, the "
                  "out-of-fold predictions (oof_predictions.tsv, cv_results.json with the problem type's "
                  "metrics) and with --do_predict the folds' mean test predictions; folds keep each class's "
                  "share, each label's (multi-label: iterative stratification) or the target's quantiles "
                  "(regression); not with --validation_file; 0: off")
      ->group(g);
  cmd->add_option(option_names("fold"), t->fold,
                  "With --k_folds: train only this fold (0-based) into output_dir, evaluated on its rows "
                  "(-1: every fold)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("pseudo_label_file"), t->pseudo_label_file,
                  "Pseudo-labels: a prediction file of the run's problem type (bertfit predict / ensemble, a "
                  "--k_folds run's test_predictions.tsv); its confident --pseudo_label_data rows join the "
                  "training data with the predicted label: single-label: probability >= "
                  "--pseudo_label_threshold; multi-label (p_<label> columns): every label's probability >= "
                  "the threshold or <= 1 - it, labelled with the labels above 0.5; regression: every row's "
                  "value, or see --pseudo_label_max_std")
      ->group(g);
  cmd->add_option(option_names("pseudo_label_data"), t->pseudo_label_data,
                  "Pseudo-labels: the file whose rows the prediction ids name (e.g. the test file; same "
                  "columns as --train_file, labels not needed)")
      ->group(g);
  cmd->add_option(option_names("pseudo_label_threshold"), t->pseudo_label_threshold,
                  "Pseudo-labels: the least probability of a row that is added (multi-label: of every "
                  "label's side, in (0.5, 1]; not for regression)")
      ->capture_default_str()
      ->group(g);
  cmd->add_option(option_names("pseudo_label_max_std"), t->pseudo_label_max_std,
                  "Pseudo-labels, regression: add only the rows whose ensemble members agree, std <= this "
                  "(the std column of bertfit ensemble's or a --k_folds run's test predictions); 0: every "
                  "row")
      ->capture_default_str()
      ->group(g);
  const ChoiceNames<ClassificationMetric>& metrics = classification_metric_names();
  cmd->add_option_function<std::string>(
         option_names("metric_for_best_model"),
         [a, &metrics](const std::string& v) {
           // HF's Trainer takes "eval_accuracy" for "accuracy" (it adds the prefix when missing).
           const std::string name = v.rfind("eval_", 0) == 0 ? v.substr(5) : v;
           a->metric_for_best_model = parse_choice("metric_for_best_model", name, metrics);
         },
         "The metric that picks the best checkpoint, with or without HF's eval_ prefix (" +
             list_choices(metrics) + "; default: accuracy, loss for multi-label and regression as HF)")
      ->group("Loop");
  add_multitask_options(cmd, &a->multitask);
}

namespace {
// An evaluation's headline metrics for the problem type (single-label: accuracy and macro-F1).
std::string headline(const EvalOutput& e) {
  char buf[160];
  if (e.problem == ProblemType::MULTI_LABEL)
    std::snprintf(buf, sizeof buf, "exact match %.4f, micro-F1 %.4f, macro-F1 %.4f",
                  e.multi_label.exact_match, e.multi_label.micro_f1, e.multi_label.macro_f1);
  else if (e.problem == ProblemType::REGRESSION)
    std::snprintf(buf, sizeof buf, "mse %.4f, pearson %.4f, spearman %.4f", e.regression.mse,
                  e.regression.pearson, e.regression.spearman);
  else
    std::snprintf(buf, sizeof buf, "accuracy %.4f, macro-F1 %.4f", e.metrics.accuracy, e.metrics.macro.f1);
  return buf;
}
}  // namespace

void add_finetune_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "finetune",
      "Fine-tune a BERT/RoBERTa model directory for text classification (writes a HuggingFace directory)");
  auto a = std::make_shared<FinetuneArgs>();
  add_finetune_options(cmd, a.get());
  cmd->callback([a] {
    const FinetuneResult r = finetune(*a);
    if (a->tricks.k_folds >= 2 && a->tricks.fold < 0) {  // cross-validation: a model and a report per fold
      std::printf("models: %s/fold-0 .. fold-%lld (steps: %lld in all)\n", r.output_dir.c_str(),
                  static_cast<long long>(a->tricks.k_folds - 1), static_cast<long long>(r.global_step));
      std::printf("out-of-fold: %s (%s/cv_results.json)\n", headline(r.final_eval).c_str(),
                  r.output_dir.c_str());
      if (!r.predictions_file.empty()) std::printf("predictions: %s\n", r.predictions_file.c_str());
      if (!r.submission_file.empty()) std::printf("submission: %s\n", r.submission_file.c_str());
      for (int64_t k = 0; k < a->tricks.k_folds; ++k)
        write_run_report(r.output_dir + "/fold-" + std::to_string(k), "finetune");
      return;
    }
    std::printf("model: %s (step %lld)\n", r.output_dir.c_str(), static_cast<long long>(r.global_step));
    // Where transformers' class would compute something else (features other than its own, chunks).
    if (const std::string cfg = r.output_dir + "/config.json";
        a->runs_training() && std::filesystem::exists(cfg))
      if (const std::string d = transformers_difference(read_config_json(cfg)); !d.empty())
        std::printf("note: %s\n", d.c_str());
    if (!r.final_eval.predictions.empty())
      std::printf("validation: %s, loss %.4f\n", headline(r.final_eval).c_str(), r.final_eval.loss);
    if (!r.predictions_file.empty()) std::printf("predictions: %s\n", r.predictions_file.c_str());
    if (!r.submission_file.empty()) std::printf("submission: %s\n", r.submission_file.c_str());
    write_run_report(r.output_dir, "finetune");
  });
}

}  // namespace bertfit::cli
