// Data options shared by `evaluate` and `predict`. Unset options default to what the model was trained with
// (training_args.json in the model directory), so `bertfit predict --model out --file test.tsv` just works.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace bertfit::cli {

struct DataOptions {
  std::string file, format, quoting, text_separator, text_pair_column, label_column, id_column;
  std::vector<std::string> text_columns;
  int batch_size = 32;
  int threads = 0;

  void add_to(CLI::App* cmd, bool labels);
  // The dataset spec, with unset fields taken from model_dir/training_args.json (or the library defaults).
  data::DatasetSpec spec(const std::string& model_dir, bool with_labels) const;
};

}  // namespace bertfit::cli
