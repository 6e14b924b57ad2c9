// Pseudo-labels as one command (issue 15, item 6): `bertfit finetune ... --pseudo_label_file PRED.tsv
// --pseudo_label_data test.tsv --pseudo_label_threshold 0.95` trains on the training rows plus the rows of
// the unlabelled file that the predictions label confidently, with their predicted label.
//
// PRED.tsv is a prediction file as `bertfit predict` (with or without --all_probs), `bertfit ensemble` and a
// cross-validation run's test_predictions.tsv write it: columns id, label, probability (the probability of
// that label; with `ensemble --method rank` a rank score). A row passes when probability >= threshold. Its
// id names the row of the data file (read with the run's columns: --id_column, or the 0-based row number
// without one, as predict numbered them); its label must be a training label. The rows go to the training
// data only, after the validation split (and after --few_shot_* / --max_train_samples, which select real
// rows), never to the validation data, and with --k_folds to every fold's training rows, never to a fold's
// evaluation rows. Single-label classification only.
#pragma once

#include "data/labels.h"
#include "train/finetune.h"

namespace bertfit {

// Throws ConfigError naming the option: both files or neither, threshold in (0, 1], single-label, training.
void validate_pseudo_labels(const FinetuneArgs& args);

struct PseudoLabelCounts {
  int64_t predictions = 0;         // rows of the prediction file
  int64_t added = 0;               // rows that passed the threshold
  std::vector<int64_t> per_class;  // added, by label id
};

// Appends the rows that pass to *train (labels: the training labels, which decide the label ids) and logs
// how many were added per class. Throws FormatError naming the file and line for a missing column, a
// probability that is not a number, an id not in the data file (or twice in it), or a label the training
// data does not have. No-op without --pseudo_label_file.
PseudoLabelCounts add_pseudo_labels(const FinetuneArgs& args, const LabelMap& labels, Dataset* train);

}  // namespace bertfit
