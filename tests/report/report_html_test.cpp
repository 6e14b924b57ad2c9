// The HTML report's page (report/run_report.h): what it reads from a run directory and refuses, that the
// runs' data survives the trip into the page byte for byte (label names that look like HTML included) and
// cannot end its <script> element, and that the page loads nothing from outside. Drawing it is checked in a
// browser by report_e2e_test.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bertfit/error.h"
#include "report/run_report.h"

using namespace bertfit;
namespace fs = std::filesystem;

namespace {

std::string temp_dir() {
  std::string t = (fs::temp_directory_path() / "bertfit-report-XXXXXX").string();
  EXPECT_NE(mkdtemp(t.data()), nullptr);
  return t;
}

void write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

const std::string kHostile = "</script><script>alert(1)</script><!-- \"x\" & 'y'";

// A fine-tuning run's files, as finetune writes them.
std::string make_run(const std::string& dir) {
  nlohmann::json state;
  state["global_step"] = 4;
  state["log_history"] = {
      {{"epoch", 0.5}, {"grad_norm", 1.5}, {"learning_rate", 1e-3}, {"loss", 1.2}, {"step", 2}},
      {{"epoch", 1.0}, {"eval_accuracy", 0.5}, {"eval_loss", 1.1}, {"step", 4}}};
  write(dir + "/trainer_state.json", state.dump());
  write(dir + "/training_args.json", nlohmann::json{{"learning_rate", 1e-3}, {"output_dir", dir}}.dump());
  nlohmann::json eval;
  eval["eval_accuracy"] = 0.5;
  eval["eval_labels"] = {kHostile, "b"};
  eval["eval_confusion_matrix"] = {{"labels", {kHostile, "b"}}, {"matrix", {{1, 1}, {1, 1}}}};
  write(dir + "/eval_results.json", eval.dump());
  write(dir + "/config.json", R"({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 128})");
  return dir;
}

// The JSON inside the page's data element.
nlohmann::json page_data(const std::string& page) {
  const std::string open = "<script id=\"bertfit-data\" type=\"application/json\">";
  const size_t a = page.find(open);
  EXPECT_NE(a, std::string::npos);
  const size_t b = page.find("</script>", a);
  return nlohmann::json::parse(page.substr(a + open.size(), b - a - open.size()));
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(RunReport, DataReachesThePageUnchangedAndCannotEndItsScript) {
  const std::string dir = make_run(temp_dir() + "/ft");
  const RunData run = read_run(dir);
  EXPECT_EQ(run.name, "ft");
  EXPECT_EQ(run.kind, "classification");
  const std::string page = render_report_html({run}, "title <b>&");
  // Two script elements (the data, the drawing code), each closed once: the hostile label did not close one.
  EXPECT_EQ(count(page, "<script"), 2u);
  EXPECT_EQ(count(page, "</script>"), 2u);
  EXPECT_EQ(count(page, "<!--"), 1u);  // the page's own comment only
  EXPECT_NE(page.find("<title>title &lt;b&gt;&amp;</title>"), std::string::npos);
  const nlohmann::json data = page_data(page);
  ASSERT_EQ(data["runs"].size(), 1u);
  const auto& r = data["runs"][0];
  EXPECT_EQ(r["eval_results"]["eval_labels"][0], kHostile);
  EXPECT_EQ(r["log_history"], run.trainer_state["log_history"]);
  EXPECT_EQ(r["training_args"], run.training_args);
  EXPECT_EQ(r["model"]["num_hidden_layers"], 2);
  EXPECT_EQ(r["global_step"], 4);
  EXPECT_EQ(data["title"], "title <b>&");
}

TEST(RunReport, ThePageLoadsNothingFromOutside) {
  const std::string page = render_report_html({read_run(make_run(temp_dir() + "/ft"))}, "t");
  for (const char* outside :
       {"src=", "href=", "@import", "url(", "<link", "<iframe", "fetch(", "XMLHttpRequest"})
    EXPECT_EQ(page.find(outside), std::string::npos) << outside;
  // The one address is SVG's namespace name, which is never fetched.
  EXPECT_EQ(count(page, "http"), count(page, "http://www.w3.org/2000/svg"));
}

TEST(RunReport, RunsWithTheSameNameAreToldApartByTheirParent) {
  const std::string base = temp_dir();
  const RunData a = read_run(make_run(base + "/seed1/ft")), b = read_run(make_run(base + "/seed2/ft/"));
  const nlohmann::json data = page_data(render_report_html({a, b}, "t"));
  EXPECT_EQ(data["runs"][0]["name"], "seed1/ft");
  EXPECT_EQ(data["runs"][1]["name"], "seed2/ft");
}

TEST(RunReport, PretrainingRunsAreMaskedLm) {
  const std::string dir = make_run(temp_dir() + "/pt");
  write(dir + "/training_args.json", R"({"mlm_probability": 0.15})");
  EXPECT_EQ(read_run(dir).kind, "masked_lm");
}

TEST(RunReport, InvalidUtf8InAFileIsAnErrorNamingIt) {
  const std::string dir = make_run(temp_dir() + "/ft");
  write(dir + "/token_lengths.json", "{\"truncation\": \"a\xFF\"}");
  try {
    read_run(dir);
    FAIL() << "no error";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/token_lengths.json: not valid JSON"), std::string::npos)
        << e.what();
  }
}

TEST(RunReport, InvalidUtf8InTheTitleIsReplacedNotRefused) {
  // The title comes from the command line, unchecked: a stray byte must still give a page.
  const nlohmann::json data = page_data(render_report_html({read_run(make_run(temp_dir() + "/ft"))},
                                                           "a\xFF"
                                                           "b"));
  EXPECT_EQ(data["title"],
            "a\xEF\xBF\xBD"
            "b");  // U+FFFD
}

TEST(RunReport, BadRunDirectoriesAreErrorsNamingThem) {
  const std::string base = temp_dir();
  auto expect_error = [](const std::string& dir, const std::string& part) {
    try {
      read_run(dir);
      FAIL() << "no error for " << dir;
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_error(base + "/missing", base + "/missing: not a directory");
  fs::create_directories(base + "/empty");
  expect_error(base + "/empty", "no trainer_state.json");
  write(base + "/nolog/trainer_state.json", "{}");
  expect_error(base + "/nolog", "no log_history");
  const std::string bad = make_run(base + "/bad");
  write(bad + "/eval_results.json", "{\"eval_accuracy\": ");
  expect_error(bad, bad + "/eval_results.json: not valid JSON");
}

TEST(RunReport, WriteReportNeedsRunsAndWritesThePage) {
  const std::string base = temp_dir();
  EXPECT_THROW(write_report({}, base + "/r.html"), ConfigError);
  EXPECT_FALSE(fs::exists(base + "/r.html"));
  // A bad run among good ones: nothing is written.
  EXPECT_THROW(write_report({make_run(base + "/ft"), base + "/nope"}, base + "/r.html"), FormatError);
  EXPECT_FALSE(fs::exists(base + "/r.html"));
  write_report({base + "/ft"}, base + "/r.html", "mine");
  std::ifstream in(base + "/r.html");
  const std::string page((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(page_data(page)["title"], "mine");
}
