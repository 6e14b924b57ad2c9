// Stratified k-fold cross-validation for `bertfit finetune --k_folds K` (issue 15, item 5), as competitors
// run it: the training file is dealt into K folds that keep every class's share; fold k's model trains on the
// other K - 1 folds and is evaluated on fold k, so every training row is predicted exactly once by a model
// that never saw it (the out-of-fold predictions), and the K models' test predictions are averaged.
//
// Layout of output_dir:
//   training_args.json          the whole run's settings (k_folds, fold -1)
//   fold-<k>/                   a normal fine-tuned HF directory (fold k's settings: fold k), plus
//     fold.json                 which rows it was evaluated on (the split's identity, checked on resume)
//     oof_predictions.tsv       its predictions of fold k's rows (written last: the fold is finished)
//     test_predictions.tsv      --do_predict: its predictions of the test file
//   oof_predictions.tsv         every training row's out-of-fold prediction, in file order
//   cv_results.json             oof_accuracy, oof_macro_f1, ... and every fold's eval_* metrics
//   test_predictions.tsv, predict_results.txt, submission.csv   --do_predict: the folds' mean probabilities
// The prediction files are `bertfit predict --all_probs` files (train/ensemble.h), so `bertfit ensemble`
// takes them (e.g. to blend the CV run with other models), and --pseudo_label_file takes the test one.
//
// Resume: rerunning into the same output_dir needs --resume_from_checkpoint latest (or
// --overwrite_output_dir, which trains every fold again). Resuming skips finished folds, continues the
// unfinished one from its latest checkpoint, and refuses (ConfigError) when the saved settings or a fold's
// rows differ from this run's: folds of different splits are never mixed.
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/labels.h"
#include "train/finetune.h"

namespace bertfit {

// Deals rows with these class ids (in [0, num_classes)) into k folds: the rows of each class, in a seeded
// shuffled order, classes one after another, go to folds 0, 1, ..., k-1, 0, 1, ... in turn. So the folds are
// disjoint and cover every row, their sizes differ by at most one, and so do a class's counts in any two
// folds (stratified). Each fold's row indices are sorted ascending (file order). Depends only on (labels,
// k, seed). Throws ConfigError when k < 2, k > the number of rows, or a label is out of range.
std::vector<std::vector<int64_t>> stratified_folds(const std::vector<int64_t>& labels, int64_t num_classes,
                                                   int64_t k, uint64_t seed);

// Checks the settings --k_folds and --fold need (called by FinetuneArgs::validate): single-label
// classification, training, no --validation_file (each fold is its own validation set), no
// --max_eval_samples (the out-of-fold predictions need every row of a fold), --fold in [0, k_folds).
// Throws ConfigError naming the option.
void validate_cross_validation(const FinetuneArgs& args);

// finetune() of one fold (args.tricks.fold >= 0): the training rows become the other folds' rows and the
// validation rows fold `fold`'s, both in file order. `labels`: the training file's labels.
void select_fold(const FinetuneArgs& args, const data::LabelMap& labels, Dataset* train, Dataset* dev);

// The whole cross-validation (args.tricks.k_folds >= 2, fold -1): every fold through finetune(), the
// out-of-fold predictions and cv_results.json, and with --do_predict the averaged test predictions.
// Returns the out-of-fold evaluation as final_eval (its metrics, probabilities and predictions over the
// training file, in file order), the prediction files written and the folds' steps summed.
FinetuneResult cross_validate(const FinetuneArgs& args, const LoopHooks& hooks);

}  // namespace bertfit
