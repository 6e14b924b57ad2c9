// Pseudo-labels as one command (issue 15, item 6): `bertfit finetune ... --pseudo_label_file PRED.tsv
// --pseudo_label_data test.tsv --pseudo_label_threshold 0.95` trains on the training rows plus the rows of
// the unlabelled file that the predictions label confidently, with their predicted label.
//
// PRED.tsv is a prediction file of the run's --problem_type as `bertfit predict`, `bertfit ensemble` and a
// cross-validation run's test_predictions.tsv write it (train/ensemble.h). Which rows pass, and their label:
//  - single-label: columns id, label, probability (the probability of that label; with `ensemble --method
//    rank` a rank score; predict with or without --all_probs). A row passes when probability >= threshold,
//    with its label;
//  - multi-label: columns id, p_<label> for every training label (predict --all_probs). A row passes when
//    it is confident about every label, each probability >= threshold or <= 1 - threshold (so the
//    threshold is in (0.5, 1]), and its label set is the labels above 0.5 (those >= threshold; possibly
//    none: a confident "no label" is a label set too). A row unsure about any one label is left out whole:
//    its other labels would otherwise train as confident negatives or positives they are not;
//  - regression: columns id, label (the value), and std (the spread of the ensemble that made the file:
//    `bertfit ensemble`, or a --k_folds run's test_predictions.tsv, the folds' spread). A value has no
//    probability, so --pseudo_label_threshold does not apply (an error when changed): every row passes,
//    or with --pseudo_label_max_std S > 0 the rows whose members agree, std <= S (the file must then have
//    the std column). Regression pseudo-labels are the ensemble's mean, the usual soft target; where the
//    members disagree the mean is a guess, which max_std keeps out.
// A row's id names the row of the data file (read with the run's columns: --id_column, or the 0-based row
// number without one, as predict numbered them); its labels must be training labels. The rows go to the
// training data only, after the validation split (and after --few_shot_* / --max_train_samples, which select
// real rows), never to the validation data, and with --k_folds to every fold's training rows, never to a
// fold's evaluation rows.
#pragma once

#include "data/labels.h"
#include "train/finetune.h"

namespace bertfit {

// Throws ConfigError naming the option: both files or neither, threshold in (0, 1] ((0.5, 1] for
// multi-label; unchanged for regression), max_std >= 0 and only for regression, training.
void validate_pseudo_labels(const FinetuneArgs& args);

struct PseudoLabelCounts {
  int64_t predictions = 0;         // rows of the prediction file
  int64_t added = 0;               // rows that passed
  std::vector<int64_t> per_class;  // added, by label id (multi-label: rows with the label; regression: none)
};

// Appends the rows that pass to *train (labels: the training labels of the run's problem type, which decide
// the label ids) with their pseudo-label in the label column's format (a class; a JSON list of labels; the
// value) and logs how many were added per class / label. Throws FormatError naming the file and line for a
// missing column, a probability or value that is not a number, an id not in the data file (or twice in it),
// or a label the training data does not have. No-op without --pseudo_label_file.
PseudoLabelCounts add_pseudo_labels(const FinetuneArgs& args, const LabelMap& labels, Dataset* train);

}  // namespace bertfit
