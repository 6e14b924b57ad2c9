// Classification metrics from predicted and true label ids, with sklearn's definitions (sklearn 1.2
// precision_recall_fscore_support / classification_report, zero_division=0):
//  * per class c: precision = tp / (tp + fp), recall = tp / (tp + fn), f1 = 2 p r / (p + r); a 0/0 is 0
//    (a class never predicted has precision 0, a class with no support recall 0);
//  * macro = unweighted mean over the *reported* classes, weighted = mean weighted by support, micro = from
//    the summed counts (equal to accuracy for single-label data);
//  * reported classes are those present in the labels or the predictions (sklearn's default labels=None):
//    a class absent from both would add a 0 that says nothing about the model. Per-class values still exist
//    for every class id (all 0 for an absent one);
//  * the confusion matrix is [true][predicted], as sklearn's confusion_matrix.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bertfit {

struct ClassMetrics {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;    // examples whose true label is this class
  int64_t predicted = 0;  // examples predicted as this class
};

struct Averages {
  double precision = 0, recall = 0, f1 = 0;
};

struct ClassificationMetrics {
  int64_t num_classes = 0;
  int64_t count = 0;  // number of examples
  double accuracy = 0, error_rate = 0;
  Averages macro, micro, weighted;
  std::vector<ClassMetrics> per_class;  // one per class id
  std::vector<bool> reported;           // class present in labels or predictions
  std::vector<int64_t> confusion;       // num_classes x num_classes, row = true class, column = predicted
  int64_t confusion_at(int64_t truth, int64_t pred) const { return confusion[truth * num_classes + pred]; }
};

// Throws ConfigError when the lengths differ, num_classes < 1, or an id is outside [0, num_classes).
// Empty input gives count 0 and all metrics 0.
ClassificationMetrics compute_metrics(const std::vector<int64_t>& predictions,
                                      const std::vector<int64_t>& labels, int64_t num_classes);

// sklearn's classification_report text (the same layout and rounding), for the reported classes.
// `names` (optional) gives the class names by id; otherwise the ids are printed.
std::string classification_report(const ClassificationMetrics& m, const std::vector<std::string>& names = {},
                                  int digits = 2);

// The confusion matrix as aligned text, rows = true class, columns = predicted, with the class names as row
// labels and ids as column headers (names can be long).
std::string format_confusion_matrix(const ClassificationMetrics& m,
                                    const std::vector<std::string>& names = {});

}  // namespace bertfit
