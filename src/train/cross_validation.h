// Stratified k-fold cross-validation for `bertfit finetune --k_folds K` (issue 15, item 5), as competitors
// run it: the training file is dealt into K folds that keep the labels' distribution (every class's share;
// multi-label: every label's, by iterative stratification; regression: the target's quantiles); fold k's
// model trains on the other K - 1 folds and is evaluated on fold k, so every training row is predicted
// exactly once by a model that never saw it (the out-of-fold predictions), and the K models' test
// predictions are averaged (single-label: the class probabilities; multi-label: each label's probability,
// then --multi_label_threshold; regression: the values).
//
// Layout of output_dir:
//   training_args.json          the whole run's settings (k_folds, fold -1)
//   fold-<k>/                   a normal fine-tuned HF directory (fold k's settings: fold k), plus
//     fold.json                 which rows it was evaluated on (the split's identity, checked on resume)
//     oof_predictions.tsv       its predictions of fold k's rows (written last: the fold is finished)
//     test_predictions.tsv      --do_predict: its predictions of the test file
//   oof_predictions.tsv         every training row's out-of-fold prediction, in file order
//   cv_results.json             the problem type's metrics of the out-of-fold predictions (oof_accuracy,
//                               oof_macro_f1, ...; oof_exact_match, oof_micro_f1, ...; oof_mse,
//                               oof_pearson, oof_spearman), every fold's eval_* and their means and spreads
//   test_predictions.tsv, predict_results.txt, submission.csv   --do_predict: the folds' mean predictions
// The prediction files are `bertfit predict --all_probs` files of the problem type (train/ensemble.h; a
// regression mean adds the folds' spread, std), so `bertfit ensemble` takes them (e.g. to blend the CV run
// with other models), and --pseudo_label_file takes the test one.
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

// Multi-label rows (each a set of label ids in [0, num_labels)) into k folds by iterative stratification
// (Sechidis, Tsoumakas and Vlahavas 2011, as scikit-multilearn's IterativeStratification and the
// iterative-stratification package that competitors use): each fold wants n / k rows and count_l / k rows
// of every label l; the label with the fewest rows left goes first (the rare labels decide while the folds
// still have room for them), each of its rows to the fold that wants that label most (ties: the fold that
// wants the most rows, then a seeded draw), and that fold's wants of all the row's labels drop by one; rows
// without a label fill the folds that want the most rows. A label with at least k rows reaches every fold in
// practice (not a guarantee of the method), and fold sizes stay close to n / k. Sorted, disjoint, covering;
// depends only on (sets, k, seed). Throws ConfigError as stratified_folds, and when a fold would be empty.
std::vector<std::vector<int64_t>> multi_label_stratified_folds(const std::vector<std::vector<int64_t>>& sets,
                                                               int64_t num_labels, int64_t k, uint64_t seed);

// Regression rows into k folds stratified by quantile bins of the target: the rows sorted by value (ties in a
// seeded order) are cut into bins of k consecutive rows (the finest quantile bins that can give every fold
// one row of each; the last bin holds the n mod k left over), and each bin is dealt one row per fold (the
// bins are stratified_folds' classes). So every fold sees the whole range of the target, and the folds'
// sorted values interleave. Throws ConfigError as stratified_folds, and for a value that is not finite.
std::vector<std::vector<int64_t>> regression_stratified_folds(const std::vector<double>& targets, int64_t k,
                                                              uint64_t seed);

// The folds of a training file for --problem_type `problem` (`labels`: the run's label set, as finetune
// builds it): stratified_folds of the classes, multi_label_stratified_folds of the label sets, or
// regression_stratified_folds of the values. Label cells are parsed as finetune parses them (FormatError
// naming the file and line).
std::vector<std::vector<int64_t>> cross_validation_folds(const Dataset& train, ProblemType problem,
                                                         const data::LabelMap& labels, int64_t k,
                                                         uint64_t seed);

// Checks the settings --k_folds and --fold need (called by FinetuneArgs::validate): training, no
// --validation_file (each fold is its own validation set), no
// --max_eval_samples (the out-of-fold predictions need every row of a fold), --fold in [0, k_folds).
// Throws ConfigError naming the option.
void validate_cross_validation(const FinetuneArgs& args);

// finetune() of one fold (args.tricks.fold >= 0): the training rows become the other folds' rows and the
// validation rows fold `fold`'s, both in file order. `labels`: the training file's labels (the run's label
// set for its problem type).
void select_fold(const FinetuneArgs& args, const data::LabelMap& labels, Dataset* train, Dataset* dev);

// The whole cross-validation (args.tricks.k_folds >= 2, fold -1): every fold through finetune(), the
// out-of-fold predictions and cv_results.json, and with --do_predict the averaged test predictions.
// Returns the out-of-fold evaluation as final_eval (the problem type's metrics, its probabilities or values
// and single-label predictions over the training file, in file order), the prediction files written and the
// folds' steps summed.
FinetuneResult cross_validate(const FinetuneArgs& args, const LoopHooks& hooks);

}  // namespace bertfit
