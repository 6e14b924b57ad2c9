// HuggingFace's problem types for sequence classification (config.json "problem_type"), on the data side:
// labels of a multi-label task are lists (a JSON list in JSONL, ["a", "b"], or comma-separated text "a,b"
// in any format; "[]" for none), a regression task's label is a number. They become EncodedExample::targets
// (multi-hot over the sorted label set, or the value) and the label marker 0 (labelled) / -100.
#pragma once

#include <string>
#include <vector>

#include "bertfit/config.h"
#include "train/encoded_data.h"

namespace bertfit {

// HF's names: single_label_classification | multi_label_classification | regression. Throws ConfigError
// naming --problem_type.
ProblemType parse_problem_type(const std::string& name);

// The labels of one multi-label cell. `where` ("file:line") names it in errors (FormatError).
std::vector<std::string> split_multi_label(const std::string& cell, const std::string& where);

// The label set of a multi-label data set: every label of every example, sorted as LabelMap sorts.
LabelMap multi_label_map(const Dataset& ds);

// Fills label (0, or -100 without a label column) and targets of every encoded example from its data set row
// (same order): multi-hot over `labels` for MULTI_LABEL, the number for REGRESSION. A label outside `labels`
// or a non-number is a FormatError naming the file and line.
void set_problem_targets(const Dataset& ds, ProblemType type, const LabelMap* labels,
                         std::vector<EncodedExample>* examples);

// One prediction as text: the labels above the threshold joined by ',' (multi-label), or the value
// (regression, %.6g).
std::string format_problem_prediction(ProblemType type, const float* row, const LabelMap& labels,
                                      double threshold);

}  // namespace bertfit
