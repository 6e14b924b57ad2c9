#include "report/run_report.h"

#include <filesystem>
#include <fstream>
#include <map>

#include "bertfit/error.h"
#include "core/atomic_file.h"

namespace fs = std::filesystem;

namespace bertfit {

extern const char* const kReportPageHtml;

namespace {

// A JSON file of the run, or null when it is absent (and not required).
nlohmann::json read_json(const std::string& path, bool required, const std::string& dir) {
  std::ifstream in(path);
  if (!in) {
    if (required)
      throw FormatError(dir + ": not a training run directory (no " + fs::path(path).filename().string() +
                        ")");
    return nullptr;
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(path + ": not valid JSON: " + e.what());
  }
}

// JSON for a <script type="application/json"> element: '<' only occurs inside strings, where \u003c is the
// same character, so no "</script>" or "<!--" in a label name can end the element early. Invalid UTF-8 (a
// hand-edited file) is replaced rather than refused.
std::string script_json(const nlohmann::json& j) {
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void replace_once(std::string* s, const std::string& what, const std::string& with) {
  const size_t at = s->find(what);
  if (at == std::string::npos) throw std::logic_error("report page: no " + what);
  s->replace(at, what.size(), with);
}

}  // namespace

RunData read_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw FormatError(dir + ": not a directory (a run's output_dir is)");
  RunData r;
  r.dir = dir;
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  r.name = p.filename().string();
  r.trainer_state = read_json(dir + "/trainer_state.json", true, dir);
  if (!r.trainer_state.is_object() || !r.trainer_state.contains("log_history") ||
      !r.trainer_state["log_history"].is_array())
    throw FormatError(dir + "/trainer_state.json: no log_history array");
  r.training_args = read_json(dir + "/training_args.json", false, dir);
  r.eval_results = read_json(dir + "/eval_results.json", false, dir);
  r.token_lengths = read_json(dir + "/token_lengths.json", false, dir);
  r.config = read_json(dir + "/config.json", false, dir);
  r.kind = r.training_args.is_object() && r.training_args.contains("mlm_probability") ? "masked_lm"
                                                                                      : "classification";
  return r;
}

std::string render_report_html(const std::vector<RunData>& runs, const std::string& title) {
  // Runs of the same directory name elsewhere are told apart by their parent's name.
  std::map<std::string, int> seen;
  for (const RunData& r : runs) ++seen[r.name];
  nlohmann::json data;
  data["title"] = title;
  data["runs"] = nlohmann::json::array();
  for (const RunData& r : runs) {
    nlohmann::json j;
    std::string name = r.name;
    if (seen[name] > 1) {
      fs::path p = fs::path(r.dir).lexically_normal();
      if (p.filename().empty()) p = p.parent_path();
      name = (p.parent_path().filename() / p.filename()).string();
    }
    j["name"] = name;
    j["dir"] = r.dir;
    j["kind"] = r.kind;
    j["log_history"] = r.trainer_state["log_history"];
    for (const char* k : {"best_metric", "best_model_checkpoint", "global_step", "epoch"})
      if (r.trainer_state.contains(k)) j[k] = r.trainer_state[k];
    j["training_args"] = r.training_args;
    j["eval_results"] = r.eval_results;
    j["token_lengths"] = r.token_lengths;
    nlohmann::json model = nlohmann::json::object();
    if (r.config.is_object())
      for (const char* k : {"model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
                            "intermediate_size", "vocab_size", "max_position_embeddings"})
        if (r.config.contains(k)) model[k] = r.config[k];
    j["model"] = std::move(model);
    data["runs"].push_back(std::move(j));
  }
  std::string page = kReportPageHtml;
  // The data first: the title placeholder comes earlier in the page, so it is found before any copy of it
  // inside the data.
  replace_once(&page, "{{BERTFIT_DATA}}", script_json(data));
  replace_once(&page, "{{TITLE}}", html_escape(title));
  return page;
}

void write_report(const std::vector<std::string>& run_dirs, const std::string& output,
                  const std::string& title) {
  if (run_dirs.empty()) throw ConfigError("report: give at least one run directory");
  std::vector<RunData> runs;
  for (const std::string& d : run_dirs) runs.push_back(read_run(d));
  write_file_atomic(output, render_report_html(runs, title));
}

}  // namespace bertfit
