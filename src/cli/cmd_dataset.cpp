// `bertfit dataset debian`: builds the demo's real data set (Debian package descriptions, competition TSV
// layout) from the apt lists. The rules (text, de-duplication, split) are documented in src/data/debian.h
// and docs/data.md.
#include <cstdio>

#include "cli/commands.h"
#include "data/debian.h"

namespace bertfit::cli {

void add_dataset_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("dataset", "Build data sets for the demo and experiments");
  cmd->require_subcommand(1);
  auto* deb = cmd->add_subcommand(
      "debian",
      "Debian package descriptions as a classification task: title = short description, abstract = long "
      "description, categories = Section. Reads the apt lists (run `apt-get update -o Acquire::Languages=en` "
      "first) and writes train.tsv, dev.tsv, test.tsv (no labels), test_labels.tsv and dataset.json");
  auto opts = std::make_shared<data::DebianDatasetOptions>();
  deb->add_option("--out", opts->out_dir, "Output directory (created if missing)")->required();
  deb->add_option("--lists", opts->lists_dir, "apt lists directory")->capture_default_str();
  deb->add_option("--seed", opts->seed, "Seed of the split and the row order")->capture_default_str();
  deb->add_option("--dev", opts->dev_fraction, "Share of the rows for dev.tsv (stratified)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  deb->add_option("--test", opts->test_fraction, "Share of the rows for test.tsv (stratified)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  deb->add_option(
         "--min-per-class", opts->min_per_class,
         "Drop categories with fewer rows (0: the least that gives each category a dev and a test row)")
      ->capture_default_str();
  deb->callback([opts] {
    const data::DebianDatasetReport report = data::build_debian_dataset(*opts);
    std::printf("%s", data::format_debian_report(report).c_str());
    std::printf("wrote %s/{train,dev,test,test_labels}.tsv and dataset.json\n", opts->out_dir.c_str());
  });
}

}  // namespace bertfit::cli
