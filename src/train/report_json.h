// What a run writes for programs and for the HTML report (report/run_report.h), as JSON:
//  * a classifier's per-class scores and its confusion matrix with the label names (evaluate --output,
//    predict --metrics, eval_results.json);
//  * token-length histograms of the encoded data with the truncation point (token_lengths.json of a
//    fine-tuning run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "train/encoded_data.h"
#include "train/metrics.h"

namespace bertfit {

// {"labels": [names by class id],
//  "per_class": [{"label", "precision", "recall", "f1", "support", "predicted"}, ...] (by class id, every
//  class), "confusion_matrix": {"rows": "true", "columns": "predicted", "labels": [...], "matrix": [[count]]}
//    (matrix[t][p]: examples of true class t predicted as p, sklearn's confusion_matrix)}
// A class id without a name is named by its id.
nlohmann::ordered_json classification_details_json(const ClassificationMetrics& m,
                                                   const std::vector<std::string>& names);

// The averages as sklearn's classification_report(output_dict=True) names them, flattened:
// {"macro_precision", "macro_recall", "macro_f1", "micro_...", "weighted_..."}.
nlohmann::ordered_json classification_averages_json(const ClassificationMetrics& m);

// The metrics of a labelled evaluation, as evaluate --output and predict --metrics write them: accuracy,
// error_rate, macro_f1, micro_f1, weighted_f1, loss, the averages' precision and recall, then the details
// above (labels, per_class, confusion_matrix).
nlohmann::ordered_json evaluation_json(const ClassificationMetrics& m, double loss,
                                       const std::vector<std::string>& names);

// A histogram of the content tokens per example before truncation (EncodedExample::tokens), one bin per
// `bin` tokens: {"bin_width", "bins": [[first length of the bin, count], ...] (non-empty bins only),
// "count", "over_limit"}; `limit` is the content tokens kept per sequence (the truncation point).
nlohmann::ordered_json token_length_histogram_json(const std::vector<EncodedExample>& examples, int64_t limit,
                                                   int64_t bin);

}  // namespace bertfit
